//! Fragmented MP4 (ISO 14496-12 with `mvex`): an init segment (`ftyp` + `moov`) followed by
//! one `moof` + `mdat` per fragment, so a file cut after any complete fragment plays.
//!
//! [`Fmp4Muxer`] is the sans-IO core (frames in, bytes out), also usable for HTTP fMP4;
//! [`Mp4Writer`] drives it into an `io::Write`, flushing every fragment.
//!
//! Sample entries: `avc1` + `avcC` and `hvc1` + `hvcC` built from the track's parameter sets,
//! `mp4v` + `esds` (JPEG object type) for MJPEG, `mp4a` + `esds` for AAC, and `alaw`/`ulaw`
//! for G.711. A sample's duration is the delta to the next sample of its track; the last
//! sample of a track repeats the previous delta.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::MuxError;
use super::boxes::{
    put_matrix, put_u16, put_u32, put_u64, write_box, write_descriptor, write_full_box,
};
use crate::codec::{h264, h265};
use crate::{Codec, Frame, G711Law, MediaKind, TrackInfo};

/// Fragmenting options.
#[derive(Clone, Debug)]
pub struct Mp4Options {
    /// Start a new fragment at every video keyframe, and otherwise once the pending samples
    /// of the leading track span this long.
    pub fragment_duration: Duration,
}

impl Default for Mp4Options {
    fn default() -> Self {
        Mp4Options {
            fragment_duration: Duration::from_secs(1),
        }
    }
}

/// Queued sample bytes at which a fragment is written whatever the timestamps say.
const MAX_FRAGMENT_BYTES: usize = 64 << 20;

/// `trun` sample flags for a sync sample (depends on no other sample).
const SYNC_FLAGS: u32 = 0x0200_0000;
/// `trun` sample flags for a non-sync sample (depends on others, is_non_sync_sample).
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

struct Held {
    ts: i64,
    data: Bytes,
    keyframe: bool,
}

struct Queued {
    duration: u32,
    data: Bytes,
    flags: u32,
}

struct Mp4Track {
    /// The stream track index frames carry.
    source: usize,
    info: TrackInfo,
    timescale: u32,
    /// The sample held until the next one gives its duration.
    held: Option<Held>,
    queued: Vec<Queued>,
    /// The decode time of the first queued sample (tfdt), in `timescale` units.
    decode_time: Option<u64>,
    last_delta: Option<u32>,
    frames: u64,
    /// Visual size for the sample entry and `tkhd`.
    size: (u16, u16),
}

impl Mp4Track {
    fn is_video(&self) -> bool {
        self.info.kind() == MediaKind::Video
    }

    /// Duration for a sample with no successor: the previous delta or a codec default.
    fn default_duration(&self, data: &[u8]) -> u32 {
        if let Some(d) = self.last_delta {
            return d;
        }
        match &self.info.codec {
            Codec::Aac { .. } => 1024,
            Codec::G711 { channels, .. } => {
                (data.len() / usize::from((*channels).max(1))).max(1) as u32
            }
            _ => self.timescale / 25,
        }
    }

    /// Span of the queued and held samples, in `timescale` units.
    fn pending_span(&self, next_ts: i64) -> i64 {
        let queued: i64 = self.queued.iter().map(|q| i64::from(q.duration)).sum();
        match &self.held {
            Some(h) => queued + (next_ts - h.ts).max(0),
            None => queued,
        }
    }
}

/// Fragmented MP4 muxer: frames in, init segment and fragments out.
pub struct Fmp4Muxer {
    tracks: Vec<Mp4Track>,
    options: Mp4Options,
    /// Index of the track that decides fragment boundaries (the video track if any).
    lead: usize,
    init_written: bool,
    /// Waiting for the first video keyframe before accepting anything.
    started: bool,
    /// Time of the first accepted frame, in seconds, the zero of every track's timeline.
    origin: Option<f64>,
    sequence: u32,
}

impl Fmp4Muxer {
    /// A muxer for these `(stream track index, info)` pairs (at most one video track first,
    /// then audio; the order gives MP4 track ids 1, 2, ...).
    pub fn new(tracks: &[(usize, TrackInfo)], options: Mp4Options) -> Result<Self, MuxError> {
        if tracks.is_empty() {
            return Err(MuxError::NoTrack("mp4: no tracks to write".into()));
        }
        let mut out = Vec::with_capacity(tracks.len());
        for (source, info) in tracks {
            let size = match &info.codec {
                Codec::H264 { sps, .. } => match h264::Sps::parse(sps) {
                    Ok(s) => clamp_size(s.width, s.height),
                    Err(e) => {
                        warn!("mp4: track {source}: cannot read the H.264 SPS ({e}); size 0x0");
                        (0, 0)
                    }
                },
                Codec::H265 { sps, .. } => match h265::Sps::parse(sps) {
                    Ok(s) => clamp_size(s.width, s.height),
                    Err(e) => {
                        warn!("mp4: track {source}: cannot read the H.265 SPS ({e}); size 0x0");
                        (0, 0)
                    }
                },
                Codec::Jpeg | Codec::Aac { .. } | Codec::G711 { .. } => (0, 0),
            };
            if let Codec::Aac { config, .. } = &info.codec
                && config.is_empty()
            {
                return Err(MuxError::NoTrack(format!(
                    "mp4: track {source}: AAC without an AudioSpecificConfig"
                )));
            }
            out.push(Mp4Track {
                source: *source,
                timescale: info.clock_rate().max(1),
                info: info.clone(),
                held: None,
                queued: Vec::new(),
                decode_time: None,
                last_delta: None,
                frames: 0,
                size,
            });
        }
        let lead = out.iter().position(Mp4Track::is_video).unwrap_or(0);
        let has_video = out.iter().any(Mp4Track::is_video);
        Ok(Fmp4Muxer {
            tracks: out,
            options,
            lead,
            init_written: false,
            started: !has_video,
            origin: None,
            sequence: 0,
        })
    }

    /// Frames accepted so far for a stream track.
    pub fn frames_accepted(&self, source: usize) -> u64 {
        self.tracks
            .iter()
            .find(|t| t.source == source)
            .map_or(0, |t| t.frames)
    }

    /// Takes new parameters for a stream track. The sample entry is already written, so a
    /// change of picture size is only logged; in-band parameter sets carry the change.
    pub fn update_track(&mut self, source: usize, info: &TrackInfo) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.source == source)
            && t.info != *info
        {
            if self.init_written {
                warn!(
                    "mp4: track {source} parameters changed after the header was written; \
                     the file keeps the old sample entry (players use the in-band ones)"
                );
            } else {
                t.info = info.clone();
            }
        }
    }

    /// Adds a frame; appends the init segment and any fragment it completes to `out`.
    /// Returns false if the frame was not taken (not one of our tracks, or before the first
    /// video keyframe).
    pub fn push(&mut self, frame: &Frame, out: &mut Vec<u8>) -> bool {
        let Some(ti) = self.tracks.iter().position(|t| t.source == frame.track) else {
            return false;
        };
        if !self.started {
            if !(ti == self.lead && frame.keyframe) {
                return false;
            }
            self.started = true;
        }
        let timescale = self.tracks[ti].timescale;
        let origin = *self
            .origin
            .get_or_insert(frame.ts as f64 / f64::from(timescale));

        // Cut before a lead keyframe, or when the lead's pending samples span long enough.
        if ti == self.lead && self.tracks[ti].held.is_some() {
            let limit =
                (self.options.fragment_duration.as_secs_f64() * f64::from(timescale)) as i64;
            // Inter-coded video fragments at keyframes; JPEG and audio only by duration.
            let gop_codec = matches!(
                self.tracks[ti].info.codec,
                Codec::H264 { .. } | Codec::H265 { .. }
            );
            let cut = (gop_codec && frame.keyframe)
                || self.tracks[ti].pending_span(frame.ts) >= limit.max(1);
            if cut {
                self.release_held(ti, frame.ts);
                self.emit_fragment(out);
            }
        }

        let t = &mut self.tracks[ti];
        if t.held.is_some() {
            self.release_held(ti, frame.ts);
        }
        // However the timestamps go, a fragment stays far below the 32-bit sizes of `trun`
        // and `mdat` (and the memory it takes).
        let queued: usize = self
            .tracks
            .iter()
            .flat_map(|t| &t.queued)
            .map(|q| q.data.len())
            .sum();
        if queued >= MAX_FRAGMENT_BYTES {
            self.emit_fragment(out);
        }
        let t = &mut self.tracks[ti];
        if t.decode_time.is_none() && t.queued.is_empty() {
            let start = (frame.ts as f64 / f64::from(timescale) - origin) * f64::from(timescale);
            t.decode_time = Some(start.max(0.0).round() as u64);
        }
        if t.size == (0, 0)
            && matches!(t.info.codec, Codec::Jpeg)
            && let Some((w, h)) = jpeg_size(&frame.data)
        {
            t.size = (w, h);
        }
        t.held = Some(Held {
            ts: frame.ts,
            data: frame.data.clone(),
            keyframe: frame.keyframe,
        });
        t.frames += 1;
        true
    }

    /// Moves a track's held sample to the queue with its duration up to `next_ts`.
    fn release_held(&mut self, ti: usize, next_ts: i64) {
        let t = &mut self.tracks[ti];
        let Some(h) = t.held.take() else {
            return;
        };
        let delta = next_ts - h.ts;
        let duration = if delta > 0 {
            let d = u32::try_from(delta).unwrap_or(u32::MAX);
            t.last_delta = Some(d);
            d
        } else {
            let d = t.default_duration(&h.data);
            debug!(
                "mp4: track {}: timestamp went from {} to {next_ts}; using duration {d}",
                t.source, h.ts
            );
            d
        };
        let flags = if !t.is_video() || h.keyframe {
            SYNC_FLAGS
        } else {
            NON_SYNC_FLAGS
        };
        t.queued.push(Queued {
            duration,
            data: h.data,
            flags,
        });
    }

    /// Writes the init segment (if not yet) and a fragment of every queued sample.
    fn emit_fragment(&mut self, out: &mut Vec<u8>) {
        if !self.init_written {
            self.write_init(out);
            self.init_written = true;
        }
        if self.tracks.iter().all(|t| t.queued.is_empty()) {
            return;
        }
        self.sequence += 1;
        let moof_start = out.len();
        // (position of trun data_offset field, offset of the track's data within mdat payload)
        let mut patches = Vec::new();
        let mut data_len = 0usize;
        write_box(out, b"moof", |b| {
            write_full_box(b, b"mfhd", 0, 0, |b| put_u32(b, self.sequence));
            for (i, t) in self.tracks.iter().enumerate() {
                if t.queued.is_empty() {
                    continue;
                }
                write_box(b, b"traf", |b| {
                    // default-base-is-moof
                    write_full_box(b, b"tfhd", 0, 0x02_0000, |b| put_u32(b, i as u32 + 1));
                    write_full_box(b, b"tfdt", 1, 0, |b| {
                        put_u64(b, t.decode_time.unwrap_or(0));
                    });
                    // data-offset, sample-duration, sample-size, sample-flags present
                    write_full_box(b, b"trun", 0, 0x00_0701, |b| {
                        put_u32(b, t.queued.len() as u32);
                        patches.push((b.len(), data_len));
                        put_u32(b, 0);
                        for q in &t.queued {
                            put_u32(b, q.duration);
                            put_u32(b, q.data.len() as u32);
                            put_u32(b, q.flags);
                        }
                    });
                });
                data_len += t.queued.iter().map(|q| q.data.len()).sum::<usize>();
            }
        });
        let moof_len = out.len() - moof_start;
        for (pos, offset) in patches {
            let v = u32::try_from(moof_len + 8 + offset).expect("fragment larger than 4 GiB");
            out[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
        }
        let mdat_size = u32::try_from(8 + data_len).expect("fragment larger than 4 GiB");
        put_u32(out, mdat_size);
        out.extend_from_slice(b"mdat");
        for t in &mut self.tracks {
            let mut advance = 0u64;
            for q in t.queued.drain(..) {
                out.extend_from_slice(&q.data);
                advance += u64::from(q.duration);
            }
            if let Some(d) = t.decode_time.as_mut() {
                *d += advance;
            }
        }
    }

    /// Ends the file: the held samples get the previous delta as duration and go out in a
    /// last fragment (or just the init segment if nothing was ever accepted).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        for ti in 0..self.tracks.len() {
            if let Some(h) = &self.tracks[ti].held {
                let d = self.tracks[ti].default_duration(&h.data);
                let next = h.ts + i64::from(d);
                self.release_held(ti, next);
            }
        }
        self.emit_fragment(out);
    }

    /// Appends `ftyp` and `moov`.
    fn write_init(&self, out: &mut Vec<u8>) {
        write_box(out, b"ftyp", |b| {
            b.extend_from_slice(b"isom");
            put_u32(b, 0x200);
            for brand in [b"isom", b"iso6", b"iso2", b"mp41"] {
                b.extend_from_slice(brand);
            }
        });
        write_box(out, b"moov", |b| {
            write_full_box(b, b"mvhd", 0, 0, |b| {
                put_u32(b, 0); // creation_time
                put_u32(b, 0); // modification_time
                put_u32(b, 1000); // timescale
                put_u32(b, 0); // duration: unknown (fragmented)
                put_u32(b, 0x0001_0000); // rate 1.0
                put_u16(b, 0x0100); // volume 1.0
                b.extend_from_slice(&[0; 10]);
                put_matrix(b);
                b.extend_from_slice(&[0; 24]); // pre_defined
                put_u32(b, self.tracks.len() as u32 + 1); // next_track_ID
            });
            for (i, t) in self.tracks.iter().enumerate() {
                write_trak(b, i as u32 + 1, t);
            }
            write_box(b, b"mvex", |b| {
                for i in 0..self.tracks.len() {
                    write_full_box(b, b"trex", 0, 0, |b| {
                        put_u32(b, i as u32 + 1); // track_ID
                        put_u32(b, 1); // default_sample_description_index
                        put_u32(b, 0); // default_sample_duration
                        put_u32(b, 0); // default_sample_size
                        put_u32(b, 0); // default_sample_flags
                    });
                }
            });
        });
    }
}

fn clamp_size(w: u32, h: u32) -> (u16, u16) {
    (
        u16::try_from(w).unwrap_or(u16::MAX),
        u16::try_from(h).unwrap_or(u16::MAX),
    )
}

fn write_trak(b: &mut Vec<u8>, id: u32, t: &Mp4Track) {
    let video = t.is_video();
    write_box(b, b"trak", |b| {
        // flags: enabled, in movie
        write_full_box(b, b"tkhd", 0, 0x03, |b| {
            put_u32(b, 0); // creation_time
            put_u32(b, 0); // modification_time
            put_u32(b, id);
            put_u32(b, 0); // reserved
            put_u32(b, 0); // duration
            b.extend_from_slice(&[0; 8]);
            put_u16(b, 0); // layer
            put_u16(b, 0); // alternate_group
            put_u16(b, if video { 0 } else { 0x0100 }); // volume
            put_u16(b, 0);
            put_matrix(b);
            put_u32(b, u32::from(t.size.0) << 16);
            put_u32(b, u32::from(t.size.1) << 16);
        });
        write_box(b, b"mdia", |b| {
            write_full_box(b, b"mdhd", 0, 0, |b| {
                put_u32(b, 0);
                put_u32(b, 0);
                put_u32(b, t.timescale);
                put_u32(b, 0);
                put_u16(b, 0x55c4); // language "und"
                put_u16(b, 0);
            });
            write_full_box(b, b"hdlr", 0, 0, |b| {
                put_u32(b, 0);
                b.extend_from_slice(if video { b"vide" } else { b"soun" });
                b.extend_from_slice(&[0; 12]);
                b.extend_from_slice(if video {
                    b"VideoHandler\0".as_slice()
                } else {
                    b"SoundHandler\0".as_slice()
                });
            });
            write_box(b, b"minf", |b| {
                if video {
                    write_full_box(b, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8]));
                } else {
                    write_full_box(b, b"smhd", 0, 0, |b| put_u32(b, 0));
                }
                write_box(b, b"dinf", |b| {
                    write_full_box(b, b"dref", 0, 0, |b| {
                        put_u32(b, 1);
                        write_full_box(b, b"url ", 0, 1, |_| {});
                    });
                });
                write_box(b, b"stbl", |b| {
                    write_full_box(b, b"stsd", 0, 0, |b| {
                        put_u32(b, 1);
                        write_sample_entry(b, id, t);
                    });
                    write_full_box(b, b"stts", 0, 0, |b| put_u32(b, 0));
                    write_full_box(b, b"stsc", 0, 0, |b| put_u32(b, 0));
                    write_full_box(b, b"stsz", 0, 0, |b| {
                        put_u32(b, 0);
                        put_u32(b, 0);
                    });
                    write_full_box(b, b"stco", 0, 0, |b| put_u32(b, 0));
                });
            });
        });
    });
}

fn write_sample_entry(b: &mut Vec<u8>, id: u32, t: &Mp4Track) {
    match &t.info.codec {
        Codec::H264 { sps, pps } => write_visual_entry(b, b"avc1", t.size, |b| {
            write_box(b, b"avcC", |b| write_avcc(b, sps, pps));
        }),
        Codec::H265 { vps, sps, pps } => write_visual_entry(b, b"hvc1", t.size, |b| {
            write_box(b, b"hvcC", |b| write_hvcc(b, vps, sps, pps));
        }),
        Codec::Jpeg => write_visual_entry(b, b"mp4v", t.size, |b| {
            // ISO 14496-1 objectTypeIndication 0x6C: JPEG (ISO 10918-1).
            write_esds(b, id, 0x6c, 0x04, &[]);
        }),
        Codec::Aac {
            config,
            rate,
            channels,
        } => write_audio_entry(b, b"mp4a", *rate, *channels, |b| {
            // objectTypeIndication 0x40: MPEG-4 audio.
            write_esds(b, id, 0x40, 0x05, config);
        }),
        Codec::G711 {
            law,
            rate,
            channels,
        } => {
            let kind = match law {
                G711Law::A => b"alaw",
                G711Law::U => b"ulaw",
            };
            write_audio_entry(b, kind, *rate, *channels, |_| {});
        }
    }
}

fn write_visual_entry(
    b: &mut Vec<u8>,
    kind: &[u8; 4],
    (w, h): (u16, u16),
    extra: impl FnOnce(&mut Vec<u8>),
) {
    write_box(b, kind, |b| {
        b.extend_from_slice(&[0; 6]); // reserved
        put_u16(b, 1); // data_reference_index
        b.extend_from_slice(&[0; 16]); // pre_defined, reserved
        put_u16(b, w);
        put_u16(b, h);
        put_u32(b, 0x0048_0000); // 72 dpi
        put_u32(b, 0x0048_0000);
        put_u32(b, 0); // reserved
        put_u16(b, 1); // frame_count
        let mut name = [0u8; 32];
        let label = b"camgate";
        name[0] = label.len() as u8;
        name[1..=label.len()].copy_from_slice(label);
        b.extend_from_slice(&name);
        put_u16(b, 0x0018); // depth
        put_u16(b, 0xffff); // pre_defined = -1
        extra(b);
    });
}

fn write_audio_entry(
    b: &mut Vec<u8>,
    kind: &[u8; 4],
    rate: u32,
    channels: u8,
    extra: impl FnOnce(&mut Vec<u8>),
) {
    write_box(b, kind, |b| {
        b.extend_from_slice(&[0; 6]);
        put_u16(b, 1); // data_reference_index
        b.extend_from_slice(&[0; 8]); // reserved
        put_u16(b, u16::from(channels.max(1)));
        put_u16(b, 16); // samplesize
        put_u16(b, 0); // pre_defined
        put_u16(b, 0); // reserved
        put_u32(b, if rate <= 0xffff { rate << 16 } else { 0 });
        extra(b);
    });
}

/// `esds` with an ES descriptor for `object_type`/`stream_type` and optional decoder config.
fn write_esds(b: &mut Vec<u8>, id: u32, object_type: u8, stream_type: u8, config: &[u8]) {
    write_full_box(b, b"esds", 0, 0, |b| {
        write_descriptor(b, 0x03, |b| {
            put_u16(b, id as u16); // ES_ID
            b.push(0); // flags
            write_descriptor(b, 0x04, |b| {
                b.push(object_type);
                b.push((stream_type << 2) | 1); // streamType, upStream = 0, reserved = 1
                b.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
                put_u32(b, 0); // maxBitrate
                put_u32(b, 0); // avgBitrate
                if !config.is_empty() {
                    write_descriptor(b, 0x05, |b| b.extend_from_slice(config));
                }
            });
            write_descriptor(b, 0x06, |b| b.push(0x02)); // SLConfig: predefined MP4
        });
    });
}

/// AVCDecoderConfigurationRecord (ISO 14496-15 §5.3.3.1).
fn write_avcc(b: &mut Vec<u8>, sps: &[u8], pps: &[u8]) {
    b.push(1); // configurationVersion
    b.push(sps.get(1).copied().unwrap_or(0)); // AVCProfileIndication
    b.push(sps.get(2).copied().unwrap_or(0)); // profile_compatibility
    b.push(sps.get(3).copied().unwrap_or(0)); // AVCLevelIndication
    b.push(0xfc | 3); // lengthSizeMinusOne = 3
    b.push(0xe0 | 1); // one SPS
    put_u16(b, sps.len() as u16);
    b.extend_from_slice(sps);
    b.push(1); // one PPS
    put_u16(b, pps.len() as u16);
    b.extend_from_slice(pps);
    if let Ok(s) = h264::Sps::parse(sps)
        && matches!(s.profile_idc, 100 | 110 | 122 | 144)
    {
        let depth = s.bit_depth_luma.saturating_sub(8) & 7;
        b.push(0xfc | (s.chroma_format_idc & 3));
        b.push(0xf8 | depth); // bit_depth_luma_minus8
        b.push(0xf8 | depth); // bit_depth_chroma_minus8 (assumed equal)
        b.push(0); // no SPS extensions
    }
}

/// HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3.1).
fn write_hvcc(b: &mut Vec<u8>, vps: &[u8], sps: &[u8], pps: &[u8]) {
    let parsed = h265::Sps::parse(sps).ok();
    b.push(1); // configurationVersion
    match &parsed {
        Some(s) => {
            b.push((s.profile_space << 6) | (u8::from(s.tier_flag) << 5) | (s.profile_idc & 0x1f));
            put_u32(b, s.profile_compatibility_flags);
            b.extend_from_slice(&s.constraint_flags.to_be_bytes()[2..]);
            b.push(s.level_idc);
        }
        None => {
            warn!("mp4: cannot read the H.265 SPS; writing a generic hvcC header");
            b.push(1);
            put_u32(b, 0x6000_0000);
            b.extend_from_slice(&[0x90, 0, 0, 0, 0, 0]);
            b.push(93);
        }
    }
    put_u16(b, 0xf000); // min_spatial_segmentation_idc = 0
    b.push(0xfc); // parallelismType = 0 (unknown)
    let chroma = parsed.as_ref().map_or(1, |s| s.chroma_format_idc);
    b.push(0xfc | (chroma & 3));
    // Bit depth is not in h265::Sps; Main 10 (profile 2) is 10-bit, the rest assumed 8-bit.
    let depth = if parsed.as_ref().is_some_and(|s| s.profile_idc == 2) {
        2
    } else {
        0
    };
    b.push(0xf8 | depth);
    b.push(0xf8 | depth);
    put_u16(b, 0); // avgFrameRate: unknown
    // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 0, lengthSizeMinusOne 3
    b.push((1 << 3) | 3);
    b.push(3); // numOfArrays
    for (nal_type, nal) in [
        (h265::NAL_VPS, vps),
        (h265::NAL_SPS, sps),
        (h265::NAL_PPS, pps),
    ] {
        b.push(0x80 | nal_type); // array_completeness = 1
        put_u16(b, 1);
        put_u16(b, nal.len() as u16);
        b.extend_from_slice(nal);
    }
}

/// Width and height from a JPEG's start-of-frame marker.
fn jpeg_size(data: &[u8]) -> Option<(u16, u16)> {
    if data.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xff {
            return None;
        }
        let marker = data[i + 1];
        if marker == 0xff {
            i += 1;
            continue;
        }
        if marker == 0xd8 || marker == 0x01 || (0xd0..=0xd7).contains(&marker) {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        let is_sof = (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if is_sof {
            let seg = data.get(i + 4..i + 2 + len)?;
            let h = u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]);
            let w = u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]);
            return Some((w, h));
        }
        if marker == 0xda || len < 2 {
            return None;
        }
        i += 2 + len;
    }
    None
}

/// Writes a fragmented MP4 to an `io::Write`, flushing after every fragment.
pub struct Mp4Writer<W: Write> {
    out: W,
    mux: Fmp4Muxer,
    buf: Vec<u8>,
    bytes: u64,
    fragments: u64,
}

impl<W: Write> Mp4Writer<W> {
    /// A writer for these `(stream track index, info)` pairs (video first).
    pub fn new(
        out: W,
        tracks: &[(usize, TrackInfo)],
        options: Mp4Options,
    ) -> Result<Self, MuxError> {
        let mux = Fmp4Muxer::new(tracks, options)?;
        for (i, t) in tracks {
            info!("mp4: track {i}: {}", t.codec_name());
        }
        Ok(Mp4Writer {
            out,
            mux,
            buf: Vec::new(),
            bytes: 0,
            fragments: 0,
        })
    }

    /// See [`Fmp4Muxer::update_track`].
    pub fn update_track(&mut self, track: usize, info: &TrackInfo) {
        self.mux.update_track(track, info);
    }

    /// Adds a frame, writing any fragment it completes; returns false if it was not taken.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<bool, MuxError> {
        self.buf.clear();
        let taken = self.mux.push(frame, &mut self.buf);
        self.write_buf()?;
        Ok(taken)
    }

    fn write_buf(&mut self) -> Result<(), MuxError> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.out.flush()?;
            self.bytes += self.buf.len() as u64;
            self.fragments += 1;
        }
        Ok(())
    }

    /// Frames taken for a stream track (the last fragment is written by `finish`).
    pub fn frames_written(&self, track: usize) -> u64 {
        self.mux.frames_accepted(track)
    }

    /// Bytes written to the output.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Writes the last fragment, flushes, and returns the output.
    pub fn finish(mut self) -> Result<W, MuxError> {
        self.buf.clear();
        self.mux.finish(&mut self.buf);
        self.write_buf()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nal::avc_from_units;

    /// x264, 320x240 High profile (level 1.3).
    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0xf6, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00,
        0x20, 0x00, 0x00, 0x06, 0x41, 0xe2, 0x85, 0x49,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0];

    fn h264_track() -> TrackInfo {
        TrackInfo::new(Codec::H264 {
            sps: Bytes::from_static(SPS),
            pps: Bytes::from_static(PPS),
        })
    }

    fn pcma_track() -> TrackInfo {
        TrackInfo::new(Codec::G711 {
            law: G711Law::A,
            rate: 8000,
            channels: 1,
        })
    }

    /// Splits a buffer into top-level boxes (type, whole box).
    fn top_boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while data.len() >= 8 {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            out.push((data[4..8].try_into().unwrap(), &data[..size]));
            data = &data[size..];
        }
        assert!(data.is_empty(), "trailing bytes");
        out
    }

    fn find(data: &[u8], kind: &[u8; 4]) -> usize {
        data.windows(4)
            .position(|w| w == kind)
            .expect("box present")
            - 4
    }

    fn frame(track: usize, ts: i64, key: bool, body: &[u8]) -> Frame {
        Frame::new(track, ts, key, Bytes::copy_from_slice(body))
    }

    #[test]
    fn a_fragment_is_cut_by_size_when_timestamps_barely_advance() {
        // Timestamps one tick apart never reach the one-second cut: the queue held every
        // frame until the next keyframe, whose fragment (4.3 GiB here) overflowed the 32-bit
        // `mdat` size and panicked.
        let mut m = Fmp4Muxer::new(&[(0, h264_track())], Mp4Options::default()).unwrap();
        let body = Bytes::from(vec![0x41u8; 4 << 20]);
        let mut out = Vec::new();
        let mut mdats = Vec::new();
        for ts in 0..=1101 {
            out.clear();
            let key = ts == 0 || ts == 1101;
            assert!(m.push(&Frame::new(0, ts, key, body.clone()), &mut out));
            mdats.extend(
                top_boxes(&out)
                    .into_iter()
                    .filter(|(k, _)| k == b"mdat")
                    .map(|(_, b)| b.len()),
            );
        }
        assert!(mdats.len() > 60, "{} fragments", mdats.len());
        assert!(
            mdats
                .iter()
                .all(|&n| n <= MAX_FRAGMENT_BYTES + body.len() + 8),
            "{mdats:?}"
        );
    }

    #[test]
    fn waits_for_a_keyframe_then_fragments_at_each_keyframe() {
        let mut m = Fmp4Muxer::new(&[(0, h264_track())], Mp4Options::default()).unwrap();
        let mut out = Vec::new();
        let p = avc_from_units([&[0x41u8, 1][..]]);
        let i = avc_from_units([&[0x65u8, 2][..]]);
        assert!(!m.push(&frame(0, 0, false, &p), &mut out));
        assert!(m.push(&frame(0, 3600, true, &i), &mut out));
        assert!(m.push(&frame(0, 7200, false, &p), &mut out));
        assert!(out.is_empty(), "nothing before the first fragment ends");
        assert!(m.push(&frame(0, 10800, true, &i), &mut out));
        let boxes: Vec<_> = top_boxes(&out).into_iter().map(|(k, _)| k).collect();
        assert_eq!(&boxes, &[*b"ftyp", *b"moov", *b"moof", *b"mdat"]);
        let mut end = Vec::new();
        m.finish(&mut end);
        let boxes: Vec<_> = top_boxes(&end).into_iter().map(|(k, _)| k).collect();
        assert_eq!(&boxes, &[*b"moof", *b"mdat"]);
        assert_eq!(m.frames_accepted(0), 3);
    }

    #[test]
    fn trun_durations_come_from_timestamp_deltas_and_offsets_point_into_mdat() {
        let mut m = Fmp4Muxer::new(&[(0, h264_track())], Mp4Options::default()).unwrap();
        let mut out = Vec::new();
        let i = avc_from_units([&[0x65u8, 0xaa][..]]);
        let p = avc_from_units([&[0x41u8, 0xbb, 0xcc][..]]);
        m.push(&frame(0, 1000, true, &i), &mut out);
        m.push(&frame(0, 4000, false, &p), &mut out);
        m.push(&frame(0, 7600, true, &i), &mut out);
        let boxes = top_boxes(&out);
        let moof = boxes[2].1;
        let trun = &moof[find(moof, b"trun")..];
        assert_eq!(u32::from_be_bytes(trun[12..16].try_into().unwrap()), 2);
        let data_offset = u32::from_be_bytes(trun[16..20].try_into().unwrap()) as usize;
        let s1 = &trun[20..32];
        let s2 = &trun[32..44];
        assert_eq!(u32::from_be_bytes(s1[..4].try_into().unwrap()), 3000);
        assert_eq!(
            u32::from_be_bytes(s1[8..12].try_into().unwrap()),
            SYNC_FLAGS
        );
        assert_eq!(u32::from_be_bytes(s2[..4].try_into().unwrap()), 3600);
        assert_eq!(
            u32::from_be_bytes(s2[8..12].try_into().unwrap()),
            NON_SYNC_FLAGS
        );
        // data_offset is relative to the start of moof; moof and mdat are adjacent.
        let fragment = &out[out.len() - moof.len() - boxes[3].1.len()..];
        assert_eq!(&fragment[data_offset..data_offset + 6], &i[..]);
        // The last sample repeats the previous delta.
        let mut end = Vec::new();
        m.finish(&mut end);
        let trun = &end[find(&end, b"trun")..];
        assert_eq!(u32::from_be_bytes(trun[20..24].try_into().unwrap()), 3600);
    }

    #[test]
    fn audio_before_the_first_video_keyframe_is_dropped_and_both_tracks_share_a_fragment() {
        let tracks = [(1, h264_track()), (0, pcma_track())];
        let mut m = Fmp4Muxer::new(&tracks, Mp4Options::default()).unwrap();
        let mut out = Vec::new();
        assert!(!m.push(&frame(0, 0, true, &[0xd5; 160]), &mut out));
        let i = avc_from_units([&[0x65u8, 1][..]]);
        assert!(m.push(&frame(1, 0, true, &i), &mut out));
        assert!(m.push(&frame(0, 160, true, &[0xd5; 160]), &mut out));
        assert!(m.push(&frame(0, 320, true, &[0xd5; 160]), &mut out));
        m.finish(&mut out);
        let moof = top_boxes(&out)[2].1;
        assert_eq!(moof.windows(4).filter(|w| w == b"traf").count(), 2);
        assert!(out.windows(4).any(|w| w == b"alaw"));
        // The audio track starts 20 ms after the video (160 samples at 8 kHz).
        let second_traf = &moof[moof.windows(4).rposition(|w| w == b"traf").unwrap() - 4..];
        let tfdt = &second_traf[find(second_traf, b"tfdt")..];
        assert_eq!(u64::from_be_bytes(tfdt[12..20].try_into().unwrap()), 160);
    }

    #[test]
    fn avcc_carries_profile_level_and_the_parameter_sets() {
        let mut b = Vec::new();
        write_avcc(&mut b, SPS, PPS);
        assert_eq!(&b[..6], &[1, 0x64, 0x00, 0x0d, 0xff, 0xe1]);
        assert_eq!(&b[8..8 + SPS.len()], SPS);
        // High profile: chroma format and bit depth trailer.
        assert_eq!(&b[b.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
    }

    #[test]
    fn jpeg_size_reads_the_start_of_frame() {
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8, 0, 240, 1, 64, 1, 1, 0x22, 0,
        ];
        assert_eq!(jpeg_size(&jpeg), Some((320, 240)));
        assert_eq!(jpeg_size(&[0xff, 0xd8, 0xff]), None);
        assert_eq!(jpeg_size(b"not a jpeg"), None);
    }

    #[test]
    fn the_sps_gives_the_track_size() {
        let m = Fmp4Muxer::new(&[(0, h264_track())], Mp4Options::default()).unwrap();
        assert_eq!(m.tracks[0].size, (320, 240));
    }
}
