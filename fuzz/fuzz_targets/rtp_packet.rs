//! Fuzzes the RTP header parser and the RTCP compound packet parser.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::rtp::{RtpPacket, rtcp};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(Bytes::copy_from_slice(data)) {
        assert!(p.payload.len() + 12 <= data.len());
        // Serializing drops CSRCs, extension and padding; the packet itself must survive.
        assert_eq!(RtpPacket::parse(p.to_bytes()).as_ref(), Ok(&p));
    }
    let _ = rtcp::parse_compound(data);
});
