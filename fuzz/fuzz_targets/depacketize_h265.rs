//! Fuzzes the h265 depacketizer with arbitrary RTP payloads, markers, and sequence and
//! timestamp jumps.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::Codec;

fuzz_target!(|data: &[u8]| {
    let codec = Codec::H265 {
        vps: Bytes::from_static(&[0x40, 0x01, 0x0c]),
        sps: Bytes::from_static(&[0x42, 0x01, 0x01]),
        pps: Bytes::from_static(&[0x44, 0x01, 0xc1]),
    };
    camgate_fuzz::depacketize(&codec, data);
});
