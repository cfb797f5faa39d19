//! Helpers shared by the media integration tests: running frames through `packetize` and
//! a depacketizer as a sender and receiver would.

#![allow(dead_code)]

use bytes::Bytes;
use media::rtp::{self, RtpChunk, RtpPacket};
use media::{Codec, Frame};

/// RTP packets for `chunks` of one frame, numbered from `*seq`, with RTP timestamp `ts`.
pub fn packets(chunks: &[RtpChunk], seq: &mut u16, ts: u32, pt: u8) -> Vec<RtpPacket> {
    chunks
        .iter()
        .map(|c| {
            let mut payload = c.head.to_vec();
            payload.extend_from_slice(&c.body);
            let p = RtpPacket {
                payload_type: pt,
                sequence: *seq,
                timestamp: ts,
                ssrc: 0x1234_5678,
                marker: c.marker,
                payload: Bytes::from(payload),
            };
            *seq = seq.wrapping_add(1);
            p
        })
        .collect()
}

/// Packetizes `frames`, serializes and reparses every packet, depacketizes them, and returns
/// the frames that come out.
pub fn round_trip(codec: &Codec, frames: &[Frame], max_payload: usize) -> Vec<Frame> {
    let mut d = rtp::depacketizer(codec, frames.first().map_or(0, |f| f.track));
    let mut seq = 65_000u16; // cross the sequence wraparound
    let mut out = Vec::new();
    for f in frames {
        let chunks = rtp::packetize(codec, f, max_payload).expect("packetize");
        for c in &chunks {
            assert!(
                c.len() <= max_payload,
                "chunk of {} > {max_payload}",
                c.len()
            );
        }
        for p in packets(&chunks, &mut seq, f.ts as u32, 96) {
            let wire = p.to_bytes();
            let parsed = RtpPacket::parse(wire).expect("reparse");
            assert_eq!(parsed, p);
            d.push(&parsed).expect("push");
        }
        out.extend(std::iter::from_fn(|| d.pull()));
    }
    out
}
