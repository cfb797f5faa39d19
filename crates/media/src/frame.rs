//! `Frame`: one access unit of one track, with its timestamp and a refcounted payload.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;

use crate::rtp::RtpChunk;
use crate::rtp::interleaved::WireFrame;

/// One access unit (a video picture, a JPEG image, or a block of audio) of one track.
///
/// Payload conventions by codec:
/// - H.264 / H.265: NAL units, each preceded by a 4-byte big-endian length ("AVC" format),
///   without start codes. Keyframes carry their parameter sets in-band.
/// - JPEG: a complete JFIF/baseline JPEG file (SOI .. EOI).
/// - G.711: the raw 8-bit samples.
/// - AAC: one raw access unit (no ADTS header).
#[derive(Debug)]
pub struct Frame {
    /// Index of the track in the stream's track list.
    pub track: usize,
    /// Presentation timestamp in the track's clock rate units.
    pub ts: i64,
    /// True for a random access point (IDR/IRAP picture; every JPEG and audio frame).
    pub keyframe: bool,
    /// The access unit, in the codec's convention above.
    pub data: Bytes,
    /// When the frame arrived from the source.
    pub received: Instant,
    /// RTP packetization of this frame, computed once and shared by every RTP reader.
    rtp: OnceLock<Arc<[RtpChunk]>>,
    /// Stream-wide interleaved packets of this frame, when the stream makes them.
    wire: OnceLock<WireFrame>,
}

impl Frame {
    /// A frame received now.
    pub fn new(track: usize, ts: i64, keyframe: bool, data: Bytes) -> Self {
        Frame {
            track,
            ts,
            keyframe,
            data,
            received: Instant::now(),
            rtp: OnceLock::new(),
            wire: OnceLock::new(),
        }
    }

    /// The same frame with another timestamp (used when the Hub rebases a new session).
    pub fn with_ts(self, ts: i64) -> Self {
        Frame {
            ts,
            rtp: OnceLock::new(),
            wire: OnceLock::new(),
            ..self
        }
    }

    /// The RTP packetization of this frame, computed on first use by `f` and cached.
    pub fn rtp_chunks(&self, f: impl FnOnce(&Frame) -> Vec<RtpChunk>) -> Arc<[RtpChunk]> {
        self.rtp.get_or_init(|| f(self).into()).clone()
    }

    /// The stream-wide interleaved packets of this frame, if the stream made them.
    pub fn wire(&self) -> Option<&WireFrame> {
        self.wire.get()
    }

    /// Attaches the stream-wide interleaved packets (only the first call has an effect).
    pub fn set_wire(&self, wire: WireFrame) {
        let _ = self.wire.set(wire);
    }
}
