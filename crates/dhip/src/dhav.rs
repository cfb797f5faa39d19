//! The DHAV container (Dahua `.dav` files and RPC_Loadfile streams): a streaming demuxer that
//! resynchronises on damage and hands out zero-copy payload slices, and a writer.
//!
//! A packet is a 24-byte header (`DHAV`, type, subtype, channel, sub-number, frame number,
//! total length L, packed date, u16 milliseconds, extension length, checksum), extension
//! records, the payload, and an 8-byte trailer (`dhav`, L again). Video payloads are Annex B
//! H.264/H.265 with the parameter sets in front of key frames.

use bytes::{BufMut, Bytes, BytesMut};

/// `DHAV`, the start of every packet.
pub const MAGIC: [u8; 4] = *b"DHAV";
/// `dhav`, the start of every trailer.
pub const TRAILER_MAGIC: [u8; 4] = *b"dhav";
/// Header bytes before the extension.
pub const HEADER_LEN: usize = 24;
/// Trailer bytes.
pub const TRAILER_LEN: usize = 8;
/// Exported files may start with `DAHUA` and a 0x400-byte file header.
pub const FILE_PREFIX: &[u8] = b"DAHUA";
/// Length of that file header.
pub const FILE_HEADER_LEN: usize = 0x400;
/// Largest packet the demuxer accepts; a larger length is damage.
pub const MAX_PACKET: usize = 16 << 20;

/// Sample rates by the index in audio extension records.
pub const SAMPLE_RATES: [u32; 13] = [
    8000, 4000, 8000, 11025, 16000, 20000, 22050, 32000, 44100, 48000, 96000, 192000, 64000,
];

/// Packet types (byte 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0xFD`: video key frame.
    VideoKey,
    /// `0xFC`: video P frame.
    VideoP,
    /// `0xFE`: video B frame.
    VideoB,
    /// `0xFB`: a JPEG picture.
    Jpeg,
    /// `0xF0`: audio.
    Audio,
    /// `0xF1`: auxiliary/private data (IVS, motion, metadata).
    Aux,
    /// `0xFA`: old MPEG-4 video.
    OldMpeg4,
    /// Anything else.
    Other(u8),
}

impl PacketType {
    /// From the type byte.
    pub fn from_byte(b: u8) -> PacketType {
        match b {
            0xFD => PacketType::VideoKey,
            0xFC => PacketType::VideoP,
            0xFE => PacketType::VideoB,
            0xFB => PacketType::Jpeg,
            0xF0 => PacketType::Audio,
            0xF1 => PacketType::Aux,
            0xFA => PacketType::OldMpeg4,
            b => PacketType::Other(b),
        }
    }

    /// The type byte.
    pub fn to_byte(self) -> u8 {
        match self {
            PacketType::VideoKey => 0xFD,
            PacketType::VideoP => 0xFC,
            PacketType::VideoB => 0xFE,
            PacketType::Jpeg => 0xFB,
            PacketType::Audio => 0xF0,
            PacketType::Aux => 0xF1,
            PacketType::OldMpeg4 => 0xFA,
            PacketType::Other(b) => b,
        }
    }

    /// True for the video types (key, P, B, old MPEG-4).
    pub fn is_video(self) -> bool {
        matches!(
            self,
            PacketType::VideoKey | PacketType::VideoP | PacketType::VideoB | PacketType::OldMpeg4
        )
    }
}

/// Video codec ids of the `0x81` extension record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// `0x01`.
    Mpeg4,
    /// `0x02`, `0x04`, `0x08`: H.264 (the id is kept).
    H264(u8),
    /// `0x03`.
    Mjpeg,
    /// `0x0C`.
    H265,
    /// Anything else.
    Unknown(u8),
}

impl VideoCodec {
    /// From the codec id.
    pub fn from_id(id: u8) -> VideoCodec {
        match id {
            0x01 => VideoCodec::Mpeg4,
            0x02 | 0x04 | 0x08 => VideoCodec::H264(id),
            0x03 => VideoCodec::Mjpeg,
            0x0C => VideoCodec::H265,
            id => VideoCodec::Unknown(id),
        }
    }

    /// The codec id.
    pub fn id(self) -> u8 {
        match self {
            VideoCodec::Mpeg4 => 0x01,
            VideoCodec::H264(id) => id,
            VideoCodec::Mjpeg => 0x03,
            VideoCodec::H265 => 0x0C,
            VideoCodec::Unknown(id) => id,
        }
    }

    /// A short name (`h264`, `hevc`...).
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Mpeg4 => "mpeg4",
            VideoCodec::H264(_) => "h264",
            VideoCodec::Mjpeg => "mjpeg",
            VideoCodec::H265 => "hevc",
            VideoCodec::Unknown(_) => "unknown",
        }
    }
}

/// Audio codec ids of the `0x83`/`0x8C` extension records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// `0x07`: signed 8-bit PCM.
    PcmS8,
    /// `0x0C`, `0x10`: signed 16-bit little-endian PCM (the id is kept).
    PcmS16Le(u8),
    /// `0x0A`, `0x16`: G.711 µ-law (the id is kept).
    Mulaw(u8),
    /// `0x0E`: G.711 A-law.
    Alaw,
    /// `0x1A`: AAC.
    Aac,
    /// `0x1F`: MPEG audio layer 2.
    Mp2,
    /// `0x21`: MPEG audio layer 3.
    Mp3,
    /// `0x0D`: Microsoft ADPCM.
    MsAdpcm,
    /// Anything else.
    Unknown(u8),
}

impl AudioCodec {
    /// From the codec id.
    pub fn from_id(id: u8) -> AudioCodec {
        match id {
            0x07 => AudioCodec::PcmS8,
            0x0C | 0x10 => AudioCodec::PcmS16Le(id),
            0x0A | 0x16 => AudioCodec::Mulaw(id),
            0x0E => AudioCodec::Alaw,
            0x1A => AudioCodec::Aac,
            0x1F => AudioCodec::Mp2,
            0x21 => AudioCodec::Mp3,
            0x0D => AudioCodec::MsAdpcm,
            id => AudioCodec::Unknown(id),
        }
    }

    /// The codec id.
    pub fn id(self) -> u8 {
        match self {
            AudioCodec::PcmS8 => 0x07,
            AudioCodec::PcmS16Le(id) | AudioCodec::Mulaw(id) => id,
            AudioCodec::Alaw => 0x0E,
            AudioCodec::Aac => 0x1A,
            AudioCodec::Mp2 => 0x1F,
            AudioCodec::Mp3 => 0x21,
            AudioCodec::MsAdpcm => 0x0D,
            AudioCodec::Unknown(id) => id,
        }
    }

    /// A short name (`pcm_alaw`, `aac`...).
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::PcmS8 => "pcm_s8",
            AudioCodec::PcmS16Le(_) => "pcm_s16le",
            AudioCodec::Mulaw(_) => "pcm_mulaw",
            AudioCodec::Alaw => "pcm_alaw",
            AudioCodec::Aac => "aac",
            AudioCodec::Mp2 => "mp2",
            AudioCodec::Mp3 => "mp3",
            AudioCodec::MsAdpcm => "adpcm_ms",
            AudioCodec::Unknown(_) => "unknown",
        }
    }
}

/// Video parameters from extension records (the latest seen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VideoInfo {
    /// Codec, once an `0x81` record was seen.
    pub codec: Option<VideoCodec>,
    /// Width in pixels (0 = unknown).
    pub width: u16,
    /// Height in pixels (0 = unknown).
    pub height: u16,
    /// Frames per second (0 = unknown).
    pub fps: u8,
}

/// Audio parameters from extension records (the latest seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioInfo {
    /// Codec.
    pub codec: AudioCodec,
    /// Channels.
    pub channels: u8,
    /// Sample rate in Hz.
    pub rate: u32,
}

/// The packed local date of byte 16: seconds in bits 0–5, minutes 6–11, hours 12–16, day
/// 17–21, month 22–25, year − 2000 in 26–31.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackedDate {
    /// Year (2000–2063).
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59.
    pub second: u8,
}

impl PackedDate {
    /// Unpacks the u32.
    pub fn unpack(v: u32) -> PackedDate {
        PackedDate {
            second: (v & 0x3f) as u8,
            minute: ((v >> 6) & 0x3f) as u8,
            hour: ((v >> 12) & 0x1f) as u8,
            day: ((v >> 17) & 0x1f) as u8,
            month: ((v >> 22) & 0x0f) as u8,
            year: 2000 + (v >> 26) as u16,
        }
    }

    /// Packs into the u32.
    pub fn pack(&self) -> u32 {
        u32::from(self.second & 0x3f)
            | (u32::from(self.minute & 0x3f) << 6)
            | (u32::from(self.hour & 0x1f) << 12)
            | (u32::from(self.day & 0x1f) << 17)
            | (u32::from(self.month & 0x0f) << 22)
            | ((u32::from(self.year.saturating_sub(2000)) & 0x3f) << 26)
    }

    /// Seconds since 1970 of this date read as UTC (the device's wall clock).
    pub fn to_unix(&self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month.clamp(1, 12)),
            i64::from(self.day.clamp(1, 31)),
        );
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The date of `secs` since 1970 (UTC).
    pub fn from_unix(secs: i64) -> PackedDate {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        PackedDate {
            year: y.clamp(2000, 2063) as u16,
            month: m as u8,
            day: d as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One demuxed packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Type.
    pub kind: PacketType,
    /// Subtype (byte 5).
    pub subtype: u8,
    /// Channel (byte 6).
    pub channel: u8,
    /// Frame sub-number (byte 7).
    pub sub_number: u8,
    /// Frame number (increments per frame).
    pub frame_number: u32,
    /// The packed date.
    pub date: PackedDate,
    /// The free-running millisecond counter.
    pub ms: u16,
    /// Presentation time in milliseconds since 1970 (device wall clock as UTC), from the date
    /// advanced by the millisecond counter.
    pub pts_ms: i64,
    /// Video parameters in effect (for video packets).
    pub video: Option<VideoInfo>,
    /// Audio parameters in effect (for audio packets).
    pub audio: Option<AudioInfo>,
    /// The payload (Annex B for video), sharing the input buffer.
    pub payload: Bytes,
}

/// Per-kind clock: turns the date + ms counter into a continuous millisecond time.
#[derive(Clone, Copy, Debug, Default)]
struct Clock {
    last: Option<(i64, u16, u32, i64)>,
}

/// Largest step, in milliseconds, that a frame-number difference may stand for; a larger one
/// is a counter jump (a restart, damage), not elapsed time.
const MAX_FRAME_STEP_MS: i64 = 2000;

impl Clock {
    fn advance(&mut self, date_secs: i64, ms: u16, frame: u32, fps: u8) -> i64 {
        let pts = match self.last {
            None => date_secs * 1000,
            Some((last_secs, last_ms, last_frame, last_pts)) => {
                let delta = i64::from(ms.wrapping_sub(last_ms));
                let delta = if delta == 0 && fps > 0 && frame != last_frame {
                    let step = i64::from(frame.wrapping_sub(last_frame)) * 1000 / i64::from(fps);
                    // A frame counter that jumps (or goes back, which wraps to ~2^32 frames)
                    // would move the clock by years per packet: follow the date instead.
                    (step <= MAX_FRAME_STEP_MS).then_some(step)
                } else {
                    Some(delta)
                };
                match delta.map(|d| last_pts + d) {
                    // The date disagreeing by more than two seconds is a jump: follow the date.
                    Some(pts) if (pts / 1000 - date_secs).abs() <= 2 || date_secs == last_secs => {
                        pts
                    }
                    _ => date_secs * 1000,
                }
            }
        };
        self.last = Some((date_secs, ms, frame, pts));
        pts
    }
}

/// What the demuxer found at the start of its input.
enum Step {
    /// Not enough bytes yet.
    More,
    /// Damage: skip this many bytes.
    Skip(usize),
    /// Damage up to the end: skip this many bytes, then wait for more.
    SkipThenMore(usize),
    /// A valid packet.
    Packet { len: usize, ext_len: usize },
}

/// The packets of a whole buffer (see [`Demuxer::demux_all`]).
#[derive(Debug)]
pub struct DemuxAll {
    d: Demuxer,
    data: Bytes,
    pos: usize,
}

impl DemuxAll {
    /// What was skipped so far.
    pub fn stats(&self) -> DemuxStats {
        self.d.stats
    }
}

impl Iterator for DemuxAll {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        loop {
            let rest = &self.data[self.pos..];
            if rest.is_empty() {
                return None;
            }
            match Demuxer::step(rest, true) {
                Step::Packet { len, ext_len } => {
                    self.d.in_sync = true;
                    let raw = self.data.slice(self.pos..self.pos + len);
                    self.pos += len;
                    return Some(self.d.decode(raw, ext_len));
                }
                Step::Skip(n) | Step::SkipThenMore(n) => {
                    let n = n.max(1).min(rest.len());
                    self.pos += n;
                    self.d.stats.skipped_bytes += n as u64;
                    if self.d.in_sync {
                        self.d.in_sync = false;
                        self.d.stats.resyncs += 1;
                    }
                }
                Step::More => return None,
            }
        }
    }
}

/// Counters of what the demuxer had to skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Packets returned.
    pub packets: u64,
    /// Bytes skipped while resynchronising (damage, garbage between packets).
    pub skipped_bytes: u64,
    /// Times the demuxer lost and found the packet boundary.
    pub resyncs: u64,
}

/// A streaming DHAV demuxer.
#[derive(Debug)]
pub struct Demuxer {
    buf: BytesMut,
    started: bool,
    in_sync: bool,
    video: VideoInfo,
    audio: Option<AudioInfo>,
    video_clock: Clock,
    audio_clock: Clock,
    stats: DemuxStats,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Size of an extension record of type `t`, or `None` for an unknown type (the rest of the
/// extension is then skipped).
fn ext_record_len(t: u8) -> Option<usize> {
    match t {
        0x80 | 0x81 | 0x83 | 0x84 | 0x85 | 0x8B | 0x94 | 0x96 | 0xA0 | 0xB2 | 0xB4 => Some(4),
        0x82 | 0x8C | 0x88 | 0x91 | 0x92 | 0x93 | 0x95 | 0x9A | 0x9B | 0xB3 => Some(8),
        _ => None,
    }
}

impl Default for Demuxer {
    fn default() -> Self {
        Demuxer::new()
    }
}

impl Demuxer {
    /// A demuxer with nothing buffered.
    pub fn new() -> Demuxer {
        Demuxer {
            buf: BytesMut::new(),
            started: false,
            in_sync: true,
            video: VideoInfo::default(),
            audio: None,
            video_clock: Clock::default(),
            audio_clock: Clock::default(),
            stats: DemuxStats::default(),
        }
    }

    /// Appends input bytes.
    pub fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// The input buffer, to read into directly (instead of [`Demuxer::push`]).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// What was skipped so far.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// The latest video parameters.
    pub fn video_info(&self) -> VideoInfo {
        self.video
    }

    /// The latest audio parameters.
    pub fn audio_info(&self) -> Option<AudioInfo> {
        self.audio
    }

    /// Skips `n` buffered bytes as damage.
    fn skip(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        let _ = self.buf.split_to(n);
        self.stats.skipped_bytes += n as u64;
        if self.in_sync {
            self.in_sync = false;
            self.stats.resyncs += 1;
        }
    }

    /// What the bytes at the start of `b` are: damage to skip, too little to tell, or a
    /// valid packet of `len` bytes. `end` says no more input will come.
    fn step(b: &[u8], end: bool) -> Step {
        if b.len() < 4 {
            return if end { Step::Skip(b.len()) } else { Step::More };
        }
        if b[..4] != MAGIC {
            // Resynchronise at the next "DHAV" (keep a possible partial magic at the end).
            return match b[1..].windows(4).position(|w| w == MAGIC) {
                Some(p) => Step::Skip(p + 1),
                None if end => Step::Skip(b.len()),
                None => Step::SkipThenMore(b.len() - 3.min(b.len())),
            };
        }
        if b.len() < HEADER_LEN {
            return if end { Step::Skip(1) } else { Step::More };
        }
        let l = u32_at(b, 12) as usize;
        let ext_len = b[22] as usize;
        if l < HEADER_LEN + TRAILER_LEN + ext_len || l > MAX_PACKET {
            return Step::Skip(1);
        }
        if b.len() < l {
            return if end { Step::Skip(1) } else { Step::More };
        }
        if b[l - 8..l - 4] != TRAILER_MAGIC || u32_at(b, l - 4) as usize != l {
            return Step::Skip(1);
        }
        Step::Packet { len: l, ext_len }
    }

    /// The next packet, or `None` when more input is needed.
    pub fn next_packet(&mut self) -> Option<Packet> {
        if !self.started {
            if self.buf.len() < FILE_PREFIX.len() {
                return None;
            }
            self.started = true;
            if self.buf.starts_with(FILE_PREFIX) {
                if self.buf.len() < FILE_HEADER_LEN {
                    self.started = false;
                    return None;
                }
                let _ = self.buf.split_to(FILE_HEADER_LEN);
            }
        }
        loop {
            match Demuxer::step(&self.buf, false) {
                Step::More => {
                    if self.buf.len() >= HEADER_LEN {
                        let l = u32_at(&self.buf, 12) as usize;
                        self.buf.reserve(l.saturating_sub(self.buf.len()));
                    }
                    return None;
                }
                Step::Skip(n) => self.skip(n),
                Step::SkipThenMore(n) => {
                    self.skip(n);
                    return None;
                }
                Step::Packet { len, ext_len } => {
                    self.in_sync = true;
                    let raw = self.buf.split_to(len).freeze();
                    return Some(self.decode(raw, ext_len));
                }
            }
        }
    }

    /// Demuxes a whole buffer (a `.dav` file read or mapped into memory) without copying:
    /// every payload is a slice of `data`.
    pub fn demux_all(data: Bytes) -> DemuxAll {
        let mut pos = 0;
        if data.starts_with(FILE_PREFIX) && data.len() >= FILE_HEADER_LEN {
            pos = FILE_HEADER_LEN;
        }
        DemuxAll {
            d: Demuxer::new(),
            data,
            pos,
        }
    }

    fn decode(&mut self, raw: Bytes, ext_len: usize) -> Packet {
        let kind = PacketType::from_byte(raw[4]);
        let ext = &raw[HEADER_LEN..HEADER_LEN + ext_len];
        let mut i = 0;
        while i < ext.len() {
            let t = ext[i];
            let Some(n) = ext_record_len(t) else { break };
            if i + n > ext.len() {
                break;
            }
            let r = &ext[i..i + n];
            match t {
                0x80 => {
                    self.video.width = u16::from(r[2]) * 8;
                    self.video.height = u16::from(r[3]) * 8;
                }
                0x81 => {
                    self.video.codec = Some(VideoCodec::from_id(r[2]));
                    self.video.fps = r[3];
                }
                0x82 => {
                    self.video.width = u16::from_le_bytes([r[4], r[5]]);
                    self.video.height = u16::from_le_bytes([r[6], r[7]]);
                }
                0x83 => self.audio = Some(audio_info(r[1], r[2], r[3])),
                0x8C => self.audio = Some(audio_info(r[2], r[3], r[4])),
                _ => {}
            }
            i += n;
        }
        let frame_number = u32_at(&raw, 8);
        let date = PackedDate::unpack(u32_at(&raw, 16));
        let ms = u16::from_le_bytes([raw[20], raw[21]]);
        let secs = date.to_unix();
        let (video, audio, pts_ms) = if kind.is_video() || kind == PacketType::Jpeg {
            let pts = self
                .video_clock
                .advance(secs, ms, frame_number, self.video.fps);
            (Some(self.video), None, pts)
        } else if kind == PacketType::Audio {
            let pts = self.audio_clock.advance(secs, ms, frame_number, 0);
            (None, self.audio, pts)
        } else {
            (None, None, secs * 1000)
        };
        self.stats.packets += 1;
        let l = raw.len();
        Packet {
            kind,
            subtype: raw[5],
            channel: raw[6],
            sub_number: raw[7],
            frame_number,
            date,
            ms,
            pts_ms,
            video,
            audio,
            payload: raw.slice(HEADER_LEN + ext_len..l - TRAILER_LEN),
        }
    }
}

fn audio_info(channels: u8, codec: u8, rate_idx: u8) -> AudioInfo {
    AudioInfo {
        codec: AudioCodec::from_id(codec),
        channels: channels.max(1),
        rate: SAMPLE_RATES.get(rate_idx as usize).copied().unwrap_or(8000),
    }
}

/// The `0x80` (size in 8-pixel units) and `0x81` (codec, fps) records for a key frame;
/// sizes above 2040 pixels also get an `0x82` record with the exact size.
pub fn video_ext(codec: VideoCodec, width: u16, height: u16, fps: u8) -> Vec<u8> {
    let mut v = vec![
        0x80,
        0,
        (width / 8).min(255) as u8,
        (height / 8).min(255) as u8,
        0x81,
        0,
        codec.id(),
        fps,
    ];
    if width / 8 > 255 || height / 8 > 255 {
        v.extend([0x82, 0, 0, 0]);
        v.extend(width.to_le_bytes());
        v.extend(height.to_le_bytes());
    }
    v
}

/// The `0x83` record for audio.
pub fn audio_ext(codec: AudioCodec, channels: u8, rate: u32) -> Vec<u8> {
    let idx = SAMPLE_RATES.iter().position(|r| *r == rate).unwrap_or(0) as u8;
    vec![0x83, channels, codec.id(), idx]
}

/// What the writer needs for one packet.
#[derive(Clone, Debug)]
pub struct PacketSpec<'a> {
    /// Type.
    pub kind: PacketType,
    /// Channel.
    pub channel: u8,
    /// Frame number.
    pub frame_number: u32,
    /// Wall-clock date.
    pub date: PackedDate,
    /// Millisecond counter.
    pub ms: u16,
    /// Extension records (see [`video_ext`], [`audio_ext`]); at most 255 bytes.
    pub ext: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

/// Appends one packet (checksum byte 0: its algorithm is unknown and readers ignore it).
pub fn write_packet(p: &PacketSpec<'_>, out: &mut BytesMut) {
    let ext = &p.ext[..p.ext.len().min(255)];
    let l = (HEADER_LEN + ext.len() + p.payload.len() + TRAILER_LEN) as u32;
    out.reserve(l as usize);
    out.put_slice(&MAGIC);
    out.put_u8(p.kind.to_byte());
    out.put_u8(0);
    out.put_u8(p.channel);
    out.put_u8(0);
    out.put_u32_le(p.frame_number);
    out.put_u32_le(l);
    out.put_u32_le(p.date.pack());
    out.put_u16_le(p.ms);
    out.put_u8(ext.len() as u8);
    out.put_u8(0);
    out.put_slice(ext);
    out.put_slice(p.payload);
    out.put_slice(&TRAILER_MAGIC);
    out.put_u32_le(l);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_counter_running_backwards_does_not_run_the_clock_away() {
        // Same date and millisecond counter, the frame number one lower in every packet: the
        // wrapped difference (2^32 − 1 frames at 1 fps) moved the clock ~50 days per packet,
        // and i64 overflowed after about two million packets (a panic in debug builds).
        let date = 1_715_000_000i64;
        let mut c = Clock::default();
        for i in 0..2_200_000u32 {
            assert_eq!(
                c.advance(date, 0, u32::MAX - i, 1),
                date * 1000,
                "packet {i}"
            );
        }
        // Through the demuxer: a frame counter restart at 25 fps keeps the date's time.
        let ext = video_ext(VideoCodec::H264(2), 640, 360, 25);
        let mut out = BytesMut::new();
        for frame in [5000, 5001, 0] {
            write_packet(
                &PacketSpec {
                    kind: PacketType::VideoP,
                    channel: 0,
                    frame_number: frame,
                    date: PackedDate::from_unix(date),
                    ms: 7,
                    ext: &ext,
                    payload: b"x",
                },
                &mut out,
            );
        }
        let pts: Vec<i64> = Demuxer::demux_all(out.freeze()).map(|p| p.pts_ms).collect();
        assert_eq!(pts, [date * 1000, date * 1000 + 40, date * 1000]);
    }
}
