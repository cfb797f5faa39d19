//! Fuzzes the g711 depacketizer with arbitrary RTP payloads, markers, and sequence and
//! timestamp jumps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::{Codec, G711Law};

fuzz_target!(|data: &[u8]| {
    let codec = Codec::G711 {
        law: G711Law::A,
        rate: 8000,
        channels: 1,
    };
    camgate_fuzz::depacketize(&codec, data);
});
