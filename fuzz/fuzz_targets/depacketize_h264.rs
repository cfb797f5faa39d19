//! Fuzzes the h264 depacketizer with arbitrary RTP payloads, markers, and sequence and
//! timestamp jumps.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::Codec;

fuzz_target!(|data: &[u8]| {
    let codec = Codec::H264 {
        sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e]),
        pps: Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
    };
    camgate_fuzz::depacketize(&codec, data);
});
