//! RTP: packet header parsing/serialization, and per-codec packetizers and depacketizers
//! (RFC 6184 H.264, RFC 7798 H.265, RFC 2435 JPEG, RFC 3551 G.711, RFC 3640 AAC).
//!
//! Packetization is split so that fan-out is cheap: `packetize` turns a frame into
//! `RtpChunk`s once (payload header bytes + a slice of the frame's payload), and every
//! reader only writes its own 12-byte RTP header (sequence number, timestamp, SSRC) in front.

mod aac;
mod assembly;
mod error;
mod g711;
pub mod h264;
pub mod h265;
mod header;
pub mod interleaved;
mod jpeg;
mod nal;
pub mod rtcp;
mod seq;

use bytes::Bytes;

pub use error::{DepacketizeError, DepacketizeErrorKind, PacketizeError, PacketizeErrorKind};
pub use header::{HEADER_LEN, RtpError, RtpErrorKind, RtpPacket, put_header, write_header};
pub use nal::NalQuirks;
pub use seq::{SeqStatus, SeqTracker, TimestampUnwrapper};

use crate::Frame;
use crate::codec::aac::AudioSpecificConfig;
use crate::track::{Codec, G711Law};

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

/// Splits a frame into RTP payloads of at most `max_payload` bytes (the RTP header excluded).
/// The marker bit is set on the last packet of a video access unit and on every packet that
/// ends an AAC access unit. A frame the payload format cannot carry is an error.
pub fn packetize(
    codec: &Codec,
    frame: &Frame,
    max_payload: usize,
) -> Result<Vec<RtpChunk>, PacketizeError> {
    let data = &frame.data;
    let result = match codec {
        Codec::H264 { .. } => h264::packetize(data, max_payload),
        Codec::H265 { .. } => h265::packetize(data, max_payload),
        Codec::Jpeg => jpeg::packetize(data, max_payload),
        Codec::G711 { .. } => g711::packetize(data, max_payload),
        Codec::Aac { .. } => aac::packetize(data, max_payload),
    };
    result.map_err(|kind| PacketizeError {
        codec: codec_name(codec),
        ts: frame.ts,
        kind,
        excerpt: text::hex_excerpt(data),
    })
}

/// Turns the RTP packets of one track back into frames.
pub trait Depacketizer: Send {
    /// Consumes one packet, in arrival order. An error reports a problem with this packet or
    /// with packets lost before it; the depacketizer has already recovered (it dropped what
    /// was damaged) and frames completed by this packet are still available from `pull`.
    fn push(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeError>;
    /// The next completed frame, if any.
    fn pull(&mut self) -> Option<Frame>;
}

/// A depacketizer for `codec` producing frames of `track`, with the default camera quirks.
pub fn depacketizer(codec: &Codec, track: usize) -> Box<dyn Depacketizer> {
    depacketizer_with_quirks(codec, track, NalQuirks::default())
}

/// A depacketizer for `codec` producing frames of `track`, with the given H.264/H.265 quirks.
pub fn depacketizer_with_quirks(
    codec: &Codec,
    track: usize,
    quirks: NalQuirks,
) -> Box<dyn Depacketizer> {
    use assembly::AuDepacketizer;
    match codec {
        Codec::H264 { sps, pps } => Box::new(AuDepacketizer::new(
            h264::H264Builder::new(sps.clone(), pps.clone(), quirks),
            track,
        )),
        Codec::H265 { vps, sps, pps } => Box::new(AuDepacketizer::new(
            h265::H265Builder::new(vps.clone(), sps.clone(), pps.clone(), quirks),
            track,
        )),
        Codec::Jpeg => Box::new(AuDepacketizer::new(jpeg::JpegBuilder::default(), track)),
        Codec::G711 { .. } => Box::new(g711::G711Depacketizer::new(codec_name(codec), track)),
        Codec::Aac { config, .. } => {
            let frame_length = AudioSpecificConfig::parse(config)
                .map(|c| u32::from(c.frame_length))
                .unwrap_or(1024);
            Box::new(aac::AacDepacketizer::new(track, frame_length))
        }
    }
}

/// The short codec name used in errors.
fn codec_name(codec: &Codec) -> &'static str {
    match codec {
        Codec::H264 { .. } => "h264",
        Codec::H265 { .. } => "h265",
        Codec::Jpeg => "jpeg",
        Codec::G711 {
            law: G711Law::A, ..
        } => "pcma",
        Codec::G711 {
            law: G711Law::U, ..
        } => "pcmu",
        Codec::Aac { .. } => "aac",
    }
}
