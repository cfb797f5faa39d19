//! Fuzzes the jpeg depacketizer with arbitrary RTP payloads, markers, and sequence and
//! timestamp jumps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::Codec;

fuzz_target!(|data: &[u8]| {
    let codec = Codec::Jpeg;
    camgate_fuzz::depacketize(&codec, data);
});
