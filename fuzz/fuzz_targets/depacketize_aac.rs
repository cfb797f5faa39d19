//! Fuzzes the aac depacketizer with arbitrary RTP payloads, markers, and sequence and
//! timestamp jumps.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::Codec;

fuzz_target!(|data: &[u8]| {
    let codec = Codec::Aac {
        config: Bytes::from_static(&[0x11, 0x90]),
        rate: 48000,
        channels: 2,
    };
    camgate_fuzz::depacketize(&codec, data);
});
