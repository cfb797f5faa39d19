//! `TrackInfo` and `Codec`: what a reader needs to know to decode one track.

use bytes::Bytes;
use serde::Serialize;

/// Video or audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Video,
    Audio,
}

/// A-law or µ-law G.711.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum G711Law {
    /// PCMA (A-law).
    A,
    /// PCMU (µ-law).
    U,
}

/// A codec and the parameters a decoder needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Codec {
    /// H.264 with its sequence and picture parameter sets (NAL units without start codes).
    H264 { sps: Bytes, pps: Bytes },
    /// H.265 with its video, sequence and picture parameter sets.
    H265 { vps: Bytes, sps: Bytes, pps: Bytes },
    /// Motion JPEG: every frame a baseline JPEG.
    Jpeg,
    /// G.711 at `rate` Hz (8000 for the static payload types).
    G711 {
        law: G711Law,
        rate: u32,
        channels: u8,
    },
    /// AAC with its AudioSpecificConfig.
    Aac {
        config: Bytes,
        rate: u32,
        channels: u8,
    },
}

/// One track of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    /// The codec and its parameters.
    pub codec: Codec,
}

impl TrackInfo {
    /// A track with this codec.
    pub fn new(codec: Codec) -> Self {
        TrackInfo { codec }
    }

    /// Video or audio.
    pub fn kind(&self) -> MediaKind {
        match self.codec {
            Codec::H264 { .. } | Codec::H265 { .. } | Codec::Jpeg => MediaKind::Video,
            Codec::G711 { .. } | Codec::Aac { .. } => MediaKind::Audio,
        }
    }

    /// The RTP clock rate of the track's timestamps.
    pub fn clock_rate(&self) -> u32 {
        match &self.codec {
            Codec::H264 { .. } | Codec::H265 { .. } | Codec::Jpeg => 90_000,
            Codec::G711 { rate, .. } | Codec::Aac { rate, .. } => *rate,
        }
    }

    /// A short codec name for APIs and logs ("h264", "h265", "jpeg", "pcma", "pcmu", "aac").
    pub fn codec_name(&self) -> &'static str {
        match &self.codec {
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
}
