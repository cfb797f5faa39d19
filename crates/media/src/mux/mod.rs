//! File writers for recorded frames: raw Annex B H.264/H.265 elementary streams, MJPEG
//! streams, and fragmented MP4 (playable up to the last complete fragment at any moment).
//!
//! [`annexb`] and [`mp4`] hold the format logic; [`FileWriter`] picks tracks for a format
//! chosen by file extension and drives the right writer, which is what `camgate dump` uses.

pub mod annexb;
mod boxes;
pub mod mp4;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use thiserror::Error;
use tracing::warn;

use crate::{Codec, Frame, MediaKind, TrackInfo};

pub use annexb::AnnexBWriter;
pub use mp4::{Fmp4Muxer, Mp4Options, Mp4Writer};

/// Why a file could not be written.
#[derive(Debug, Error)]
pub enum MuxError {
    /// Writing to the output failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The stream has no track this format can hold.
    #[error("{0}")]
    NoTrack(String),
}

/// An output file format, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Raw H.264 Annex B (`.h264`, `.264`).
    H264,
    /// Raw H.265 Annex B (`.h265`, `.265`, `.hevc`).
    H265,
    /// Concatenated JPEG images (`.mjpeg`, `.mjpg`).
    Mjpeg,
    /// Fragmented MP4 with video and optionally audio (`.mp4`, `.m4v`).
    Mp4,
}

impl FileFormat {
    /// The format for a path's extension (case-insensitive), if it is one we write.
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "h264" | "264" => FileFormat::H264,
            "h265" | "265" | "hevc" => FileFormat::H265,
            "mjpeg" | "mjpg" => FileFormat::Mjpeg,
            "mp4" | "m4v" => FileFormat::Mp4,
            _ => return None,
        })
    }

    /// True if the format can hold audio.
    pub fn has_audio(self) -> bool {
        self == FileFormat::Mp4
    }
}

enum Inner<W: Write> {
    AnnexB(AnnexBWriter<W>),
    Mjpeg {
        out: W,
        track: usize,
        frames: u64,
        bytes: u64,
    },
    Mp4(Mp4Writer<W>),
}

/// Writes a stream's frames to one output in a [`FileFormat`], choosing the tracks it holds.
pub struct FileWriter<W: Write> {
    inner: Inner<W>,
    tracks: Vec<usize>,
}

impl FileWriter<BufWriter<File>> {
    /// Creates (truncates) `path` for `tracks` in the format its extension names.
    pub fn create(path: &Path, tracks: &[TrackInfo], audio: bool) -> Result<Self, MuxError> {
        let format = FileFormat::from_path(path).ok_or_else(|| {
            MuxError::NoTrack(format!(
                "{}: unknown output format; use .h264/.264, .h265/.265/.hevc, .mjpeg or .mp4",
                path.display()
            ))
        })?;
        // Check the tracks before touching the file.
        select_tracks(format, tracks, audio)?;
        let file = File::create(path)?;
        FileWriter::new(BufWriter::new(file), format, tracks, audio)
    }
}

impl<W: Write> FileWriter<W> {
    /// A writer of `format` to `out` for a stream with these tracks; `audio` = false leaves
    /// audio out. Fails if the stream has no track the format can hold.
    pub fn new(
        out: W,
        format: FileFormat,
        tracks: &[TrackInfo],
        audio: bool,
    ) -> Result<Self, MuxError> {
        let chosen = select_tracks(format, tracks, audio)?;
        let inner = match format {
            FileFormat::H264 | FileFormat::H265 => {
                Inner::AnnexB(AnnexBWriter::new(out, chosen[0], &tracks[chosen[0]])?)
            }
            FileFormat::Mjpeg => Inner::Mjpeg {
                out,
                track: chosen[0],
                frames: 0,
                bytes: 0,
            },
            FileFormat::Mp4 => {
                let selected: Vec<(usize, TrackInfo)> =
                    chosen.iter().map(|&i| (i, tracks[i].clone())).collect();
                Inner::Mp4(Mp4Writer::new(out, &selected, Mp4Options::default())?)
            }
        };
        Ok(FileWriter {
            inner,
            tracks: chosen,
        })
    }

    /// The stream track indices this file holds (video first).
    pub fn tracks(&self) -> &[usize] {
        &self.tracks
    }

    /// Tells the writer a track's parameters changed mid-stream.
    pub fn update_track(&mut self, track: usize, info: &TrackInfo) {
        match &mut self.inner {
            Inner::AnnexB(w) => w.update_track(track, info),
            Inner::Mjpeg { .. } => {}
            Inner::Mp4(w) => w.update_track(track, info),
        }
    }

    /// Writes one frame; returns false if it was not written (a track this file does not
    /// hold, or a frame before the first video keyframe).
    pub fn write_frame(&mut self, frame: &Frame) -> Result<bool, MuxError> {
        match &mut self.inner {
            Inner::AnnexB(w) => w.write_frame(frame),
            Inner::Mjpeg {
                out,
                track,
                frames,
                bytes,
            } => {
                if frame.track != *track {
                    return Ok(false);
                }
                out.write_all(&frame.data)?;
                *frames += 1;
                *bytes += frame.data.len() as u64;
                Ok(true)
            }
            Inner::Mp4(w) => w.write_frame(frame),
        }
    }

    /// Frames written so far for a stream track.
    pub fn frames_written(&self, track: usize) -> u64 {
        match &self.inner {
            Inner::AnnexB(w) => {
                if track == w.track() {
                    w.frames_written()
                } else {
                    0
                }
            }
            Inner::Mjpeg {
                track: t, frames, ..
            } => {
                if track == *t {
                    *frames
                } else {
                    0
                }
            }
            Inner::Mp4(w) => w.frames_written(track),
        }
    }

    /// Bytes handed to the output so far (an MP4's last fragment is only counted once written).
    pub fn bytes_written(&self) -> u64 {
        match &self.inner {
            Inner::AnnexB(w) => w.bytes_written(),
            Inner::Mjpeg { bytes, .. } => *bytes,
            Inner::Mp4(w) => w.bytes_written(),
        }
    }

    /// Writes whatever is pending (an MP4's last fragment), flushes, and returns the output.
    pub fn finish(self) -> Result<W, MuxError> {
        match self.inner {
            Inner::AnnexB(w) => w.finish(),
            Inner::Mjpeg { mut out, .. } => {
                out.flush()?;
                Ok(out)
            }
            Inner::Mp4(w) => w.finish(),
        }
    }
}

/// The stream tracks a format holds: the first suitable video track, then (MP4 with audio)
/// the first AAC or G.711 track.
fn select_tracks(
    format: FileFormat,
    tracks: &[TrackInfo],
    audio: bool,
) -> Result<Vec<usize>, MuxError> {
    let names = || {
        let v: Vec<&str> = tracks.iter().map(TrackInfo::codec_name).collect();
        if v.is_empty() {
            "no tracks".to_string()
        } else {
            v.join(", ")
        }
    };
    let find = |want: fn(&Codec) -> bool| tracks.iter().position(|t| want(&t.codec));
    let video = match format {
        FileFormat::H264 => find(|c| matches!(c, Codec::H264 { .. })),
        FileFormat::H265 => find(|c| matches!(c, Codec::H265 { .. })),
        FileFormat::Mjpeg => find(|c| matches!(c, Codec::Jpeg)),
        FileFormat::Mp4 => {
            find(|c| matches!(c, Codec::H264 { .. } | Codec::H265 { .. } | Codec::Jpeg))
        }
    };
    let mut chosen = Vec::new();
    if let Some(v) = video {
        chosen.push(v);
    }
    if format == FileFormat::Mp4 && audio {
        if let Some(a) = find(|c| matches!(c, Codec::Aac { .. } | Codec::G711 { .. })) {
            chosen.push(a);
        }
        for (i, t) in tracks.iter().enumerate() {
            if t.kind() == MediaKind::Audio && !chosen.contains(&i) {
                warn!(
                    "mp4: leaving out track {i} ({}): only one audio track is written",
                    t.codec_name()
                );
            }
        }
    }
    if chosen.is_empty() || (format != FileFormat::Mp4 && video.is_none()) {
        let want = match format {
            FileFormat::H264 => "H.264 track",
            FileFormat::H265 => "H.265 track",
            FileFormat::Mjpeg => "JPEG track",
            FileFormat::Mp4 => "video or audio track",
        };
        return Err(MuxError::NoTrack(format!(
            "the stream has no {want} for a {format:?} file (it has: {})",
            names()
        )));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn h264() -> TrackInfo {
        TrackInfo::new(Codec::H264 {
            sps: Bytes::from_static(&[0x67, 0x42, 0, 0x1e]),
            pps: Bytes::from_static(&[0x68, 0xce]),
        })
    }

    fn pcma() -> TrackInfo {
        TrackInfo::new(Codec::G711 {
            law: crate::G711Law::A,
            rate: 8000,
            channels: 1,
        })
    }

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(
            FileFormat::from_path(Path::new("a.H264")),
            Some(FileFormat::H264)
        );
        assert_eq!(
            FileFormat::from_path(Path::new("a.hevc")),
            Some(FileFormat::H265)
        );
        assert_eq!(
            FileFormat::from_path(Path::new("x/a.mp4")),
            Some(FileFormat::Mp4)
        );
        assert_eq!(
            FileFormat::from_path(Path::new("a.mjpeg")),
            Some(FileFormat::Mjpeg)
        );
        assert_eq!(FileFormat::from_path(Path::new("a.avi")), None);
        assert_eq!(FileFormat::from_path(Path::new("h264")), None);
    }

    #[test]
    fn annexb_formats_need_their_codec() {
        let tracks = [pcma(), h264()];
        assert_eq!(
            select_tracks(FileFormat::H264, &tracks, true).unwrap(),
            vec![1]
        );
        let e = select_tracks(FileFormat::H265, &tracks, true).unwrap_err();
        assert!(e.to_string().contains("pcma, h264"), "{e}");
    }

    #[test]
    fn mp4_takes_video_then_audio_unless_audio_is_off() {
        let tracks = [pcma(), h264()];
        assert_eq!(
            select_tracks(FileFormat::Mp4, &tracks, true).unwrap(),
            vec![1, 0]
        );
        assert_eq!(
            select_tracks(FileFormat::Mp4, &tracks, false).unwrap(),
            vec![1]
        );
        assert_eq!(
            select_tracks(FileFormat::Mp4, &[pcma()], true).unwrap(),
            vec![0]
        );
        assert!(select_tracks(FileFormat::Mp4, &[pcma()], false).is_err());
    }
}
