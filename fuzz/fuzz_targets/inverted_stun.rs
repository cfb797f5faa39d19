//! Fuzzes the inverted-STUN parser (and its plain twin) and the datagram classifier with
//! arbitrary datagrams: whatever parses must write back to bytes that parse to the same message.

#![no_main]

use dahua_p2p::demux::{Kind, classify};
use dahua_p2p::stun::{StunMessage, relay_plain_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let kind = classify(data);
    if let Ok(m) = StunMessage::parse_inverted(data) {
        let wire = m.to_inverted_bytes();
        assert_eq!(StunMessage::parse_inverted(&wire).unwrap(), m);
        let _ = (m.aid(), m.address(), m.is_controlling());
        if kind != Kind::InvertedStun {
            assert!(data.first().is_none_or(|b| *b != 0xff && *b != 0xfe));
        }
    }
    if let Ok(m) = StunMessage::parse_plain(data) {
        assert_eq!(StunMessage::parse_plain(&m.to_plain_bytes()).unwrap(), m);
    }
    if let Some(reply) = relay_plain_reply(data) {
        assert_eq!(reply.len(), data.len());
    }
});
