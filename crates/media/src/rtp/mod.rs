//! RTP: packet header parsing/serialization, and per-codec packetizers and depacketizers
//! (RFC 6184 H.264, RFC 7798 H.265, RFC 2435 JPEG, RFC 3551 G.711, RFC 3640 AAC).
//!
//! Packetization is split so that fan-out is cheap: `packetize` turns a frame into
//! `RtpChunk`s once (payload header bytes + a slice of the frame's payload), and every
//! reader only writes its own 12-byte RTP header (sequence number, timestamp, SSRC) in front.

use bytes::Bytes;

/// The payload of one RTP packet, without the fixed 12-byte RTP header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpChunk {
    /// Payload header bytes that precede `body` (FU indicator/header, JPEG main header,
    /// AU-header section...); may be empty.
    pub head: Bytes,
    /// A slice of the frame's payload (shares the frame's buffer).
    pub body: Bytes,
    /// The RTP marker bit (last packet of an access unit for video).
    pub marker: bool,
}

impl RtpChunk {
    /// Payload length in bytes (head + body).
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// True if the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
