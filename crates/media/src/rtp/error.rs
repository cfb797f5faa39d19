//! Packetizer and depacketizer errors, with the context needed to find the packet in a
//! capture: codec, RTP sequence number and timestamp, and a hex excerpt of the bytes.

use text::hex_excerpt;
use thiserror::Error;

use crate::codec::jpeg::JpegError;

/// What went wrong turning a frame into RTP payloads.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PacketizeErrorKind {
    /// `max_payload` cannot hold even the payload headers plus one byte.
    #[error("max_payload {max_payload} is too small (at least {min} needed)")]
    MaxPayloadTooSmall { max_payload: usize, min: usize },
    /// A frame that this payload format cannot split is larger than `max_payload`.
    #[error("frame of {len} bytes exceeds max_payload {max_payload} and cannot be split")]
    FrameTooLarge { len: usize, max_payload: usize },
    /// The frame payload does not follow the codec's frame convention.
    #[error("malformed frame payload: {0}")]
    Malformed(String),
    /// The JPEG cannot be carried as RFC 2435.
    #[error(transparent)]
    Jpeg(#[from] JpegError),
}

/// A frame that could not be packetized.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{codec} packetizer: {kind} (frame ts {ts}, payload {excerpt})")]
pub struct PacketizeError {
    /// Codec name ("h264", "jpeg", ...).
    pub codec: &'static str,
    /// The frame's timestamp.
    pub ts: i64,
    /// What went wrong.
    pub kind: PacketizeErrorKind,
    /// Hex of the frame payload's first bytes.
    pub excerpt: String,
}

/// What went wrong turning RTP packets into frames.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DepacketizeErrorKind {
    /// Packets were lost before this one; the access unit they touched was dropped.
    #[error("{lost} packet(s) lost (expected seq {expected}); damaged access unit dropped")]
    SequenceGap { expected: u16, lost: u16 },
    /// A late or duplicate packet; it was dropped.
    #[error("out-of-order or duplicate packet (expected seq {expected}); dropped")]
    Reordered { expected: u16 },
    /// A payload structure this depacketizer does not implement (e.g. interleaved mode).
    #[error("unsupported payload: {0}")]
    Unsupported(String),
    /// A payload that violates its RTP payload format.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// An access unit ended before its fragments were complete.
    #[error("incomplete access unit: {0}")]
    Incomplete(String),
}

/// A packet that could not be (fully) used. The depacketizer has already recovered: it
/// dropped what was damaged and the next `push` proceeds normally.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{codec} depacketizer: seq {sequence} ts {timestamp}: {kind} (payload {excerpt})")]
pub struct DepacketizeError {
    /// Codec name ("h264", "jpeg", ...).
    pub codec: &'static str,
    /// RTP sequence number of the packet that revealed the problem.
    pub sequence: u16,
    /// RTP timestamp of that packet.
    pub timestamp: u32,
    /// What went wrong.
    pub kind: DepacketizeErrorKind,
    /// Hex of the packet payload's first bytes.
    pub excerpt: String,
}

impl DepacketizeError {
    /// An error about `pkt`.
    pub fn new(codec: &'static str, pkt: &super::RtpPacket, kind: DepacketizeErrorKind) -> Self {
        DepacketizeError {
            codec,
            sequence: pkt.sequence,
            timestamp: pkt.timestamp,
            kind,
            excerpt: hex_excerpt(&pkt.payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depacketize_error_display_names_codec_and_sequence() {
        let pkt = super::super::RtpPacket {
            payload_type: 96,
            sequence: 4711,
            timestamp: 90000,
            ssrc: 1,
            marker: false,
            payload: bytes::Bytes::from_static(&[0x7d, 0x01]),
        };
        let e = DepacketizeError::new(
            "h264",
            &pkt,
            DepacketizeErrorKind::Unsupported("FU-B".into()),
        );
        assert_eq!(
            e.to_string(),
            "h264 depacketizer: seq 4711 ts 90000: unsupported payload: FU-B (payload 7d 01)"
        );
    }
}
