//! Raw H.264/H.265 elementary streams in Annex B form (`.h264`, `.h265`): every NAL unit
//! after a 4-byte start code, parameter sets before every keyframe, starting at a keyframe.

use std::io::Write;

use tracing::info;

use super::MuxError;
use crate::codec::nal::avc_to_annexb_into;
use crate::codec::{ensure_parameter_sets, h264, h265};
use crate::{Codec, Frame, TrackInfo};

/// Writes one H.264 or H.265 track of AVC-format frames as an Annex B byte stream.
pub struct AnnexBWriter<W: Write> {
    out: W,
    track: usize,
    codec: Codec,
    started: bool,
    frames: u64,
    bytes: u64,
    buf: Vec<u8>,
}

impl<W: Write> AnnexBWriter<W> {
    /// A writer of stream track `track` (H.264 or H.265) to `out`.
    pub fn new(out: W, track: usize, info: &TrackInfo) -> Result<Self, MuxError> {
        match info.codec {
            Codec::H264 { .. } | Codec::H265 { .. } => {}
            _ => {
                return Err(MuxError::NoTrack(format!(
                    "Annex B holds H.264 or H.265, not {}",
                    info.codec_name()
                )));
            }
        }
        Ok(AnnexBWriter {
            out,
            track,
            codec: info.codec.clone(),
            started: false,
            frames: 0,
            bytes: 0,
            buf: Vec::new(),
        })
    }

    /// The stream track this writer takes.
    pub fn track(&self) -> usize {
        self.track
    }

    /// Takes new parameter sets for the track (inserted before later keyframes that lack them).
    pub fn update_track(&mut self, track: usize, info: &TrackInfo) {
        if track == self.track
            && std::mem::discriminant(&info.codec) == std::mem::discriminant(&self.codec)
        {
            self.codec = info.codec.clone();
        }
    }

    /// Writes a frame of the track; returns false for other tracks and for frames before the
    /// first keyframe (which a decoder could not use).
    pub fn write_frame(&mut self, frame: &Frame) -> Result<bool, MuxError> {
        if frame.track != self.track {
            return Ok(false);
        }
        let keyframe = frame.keyframe || self.is_keyframe(&frame.data);
        if !self.started {
            if !keyframe {
                return Ok(false);
            }
            info!("annexb: starting at a keyframe (ts {})", frame.ts);
            self.started = true;
        }
        let data = if keyframe {
            ensure_parameter_sets(&self.codec, &frame.data)
        } else {
            frame.data.clone()
        };
        self.buf.clear();
        avc_to_annexb_into(&data, &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.frames += 1;
        self.bytes += self.buf.len() as u64;
        Ok(true)
    }

    fn is_keyframe(&self, data: &[u8]) -> bool {
        match self.codec {
            Codec::H264 { .. } => h264::is_keyframe(data),
            Codec::H265 { .. } => h265::is_keyframe(data),
            _ => false,
        }
    }

    /// Frames written.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Bytes written.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> Result<W, MuxError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nal::{annexb_units, avc_from_units};
    use bytes::Bytes;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn writer() -> AnnexBWriter<Vec<u8>> {
        let info = TrackInfo::new(Codec::H264 {
            sps: Bytes::from_static(SPS),
            pps: Bytes::from_static(PPS),
        });
        AnnexBWriter::new(Vec::new(), 0, &info).unwrap()
    }

    #[test]
    fn starts_at_a_keyframe_and_inserts_missing_parameter_sets() {
        let mut w = writer();
        let p = avc_from_units([&[0x41u8, 0x9a, 1][..]]);
        let idr = avc_from_units([&[0x65u8, 0x88, 2][..]]);
        assert!(!w.write_frame(&Frame::new(0, 0, false, p.clone())).unwrap());
        assert!(w.write_frame(&Frame::new(0, 3000, true, idr)).unwrap());
        assert!(w.write_frame(&Frame::new(0, 6000, false, p)).unwrap());
        assert!(
            !w.write_frame(&Frame::new(1, 6000, true, Bytes::new()))
                .unwrap()
        );
        assert_eq!(w.frames_written(), 2);
        let out = w.finish().unwrap();
        assert_eq!(&out[..4], &[0, 0, 0, 1]);
        let units = annexb_units(&out);
        assert_eq!(
            units,
            vec![SPS, PPS, &[0x65, 0x88, 2][..], &[0x41, 0x9a, 1][..]]
        );
    }

    #[test]
    fn keeps_parameter_sets_a_keyframe_already_has() {
        let mut w = writer();
        let idr = avc_from_units([SPS, PPS, &[0x65u8, 0x88][..]]);
        assert!(w.write_frame(&Frame::new(0, 0, true, idr)).unwrap());
        let out = w.finish().unwrap();
        assert_eq!(annexb_units(&out).len(), 3);
    }

    #[test]
    fn refuses_non_nal_codecs() {
        let info = TrackInfo::new(Codec::Jpeg);
        assert!(AnnexBWriter::new(Vec::new(), 0, &info).is_err());
    }
}
