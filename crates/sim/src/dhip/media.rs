//! The device's media: live DHAV streams for `streamReader` objects (real-time paced H.264
//! from the test pattern, with G.711 A-law audio and auxiliary packets if asked), the bytes
//! of recorded files (a few seconds of DHAV H.264, generated deterministically on first use
//! and cached), and JPEG snapshots. DHAV packets are written by the protocol crate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use dhip::dhav::{
    AudioCodec, PackedDate, PacketSpec, PacketType, VideoCodec, audio_ext, video_ext, write_packet,
};
use media::G711Law;
use media::codec::nal::avc_to_annexb_into;

use super::clock::SimClock;
use super::device::FileContent;
use super::files::FileFixture;
use crate::testsrc::g711tone::ToneGenerator;
use crate::testsrc::h264::H264Encoder;
use crate::testsrc::jpeg::JpegPatternEncoder;
use crate::testsrc::pattern::TestPattern;

/// Picture size of recorded files (small: they are generated in memory).
const FILE_SIZE: (usize, usize) = (320, 180);
/// Frame rate of recorded files.
const FILE_FPS: u32 = 10;
/// Snapshot picture size.
const SNAPSHOT_SIZE: (usize, usize) = (640, 360);

/// A DHAV stream generator; see the module documentation.
pub struct DhavStream {
    pattern: TestPattern,
    enc: H264Encoder,
    tone: Option<ToneGenerator>,
    aux: bool,
    fps: u32,
    size: (usize, usize),
    channel: u8,
    frame_no: u64,
    seq: u32,
    start_utc: f64,
}

impl DhavStream {
    /// A stream of `size` pictures at `fps` (GOP of two seconds) starting at wall time
    /// `start_utc`.
    pub fn new(
        label: &str,
        size: (usize, usize),
        fps: u32,
        channel: u8,
        audio: bool,
        aux: bool,
        start_utc: f64,
    ) -> Self {
        let fps = fps.clamp(1, 60);
        DhavStream {
            pattern: TestPattern::new(size.0, size.1).with_label(label),
            enc: H264Encoder::new(size.0, size.1, fps * 2).with_fps(fps),
            tone: audio.then(|| ToneGenerator::new(G711Law::A).with_frame_ms(1000 / fps)),
            aux,
            fps,
            size,
            channel,
            frame_no: 0,
            seq: 0,
            start_utc,
        }
    }

    /// Appends the packets of the next frame period (video, then audio, then aux once a
    /// second) to `out`, and returns when, from the stream start, they are due.
    pub fn next_chunk(&mut self, out: &mut BytesMut) -> Duration {
        let n = self.frame_no;
        let offset = Duration::from_secs_f64(n as f64 / f64::from(self.fps));
        let wall = self.start_utc + offset.as_secs_f64();
        let when = UNIX_EPOCH + Duration::from_secs_f64(wall.max(0.0));
        let date = PackedDate::from_unix(wall.floor() as i64);
        let ms = (offset.as_millis() & 0xFFFF) as u16;
        let pic = self.pattern.render(n, when);
        let frame = self.enc.encode(pic);
        let mut annexb = Vec::with_capacity(frame.data.len() + 16);
        avc_to_annexb_into(&frame.data, &mut annexb);
        let mut packet = |kind, ext: &[u8], payload: &[u8]| {
            self.seq = self.seq.wrapping_add(1);
            let spec = PacketSpec {
                kind,
                channel: self.channel,
                frame_number: self.seq,
                date,
                ms,
                ext,
                payload,
            };
            write_packet(&spec, out);
        };
        let (w, h) = (self.size.0 as u16, self.size.1 as u16);
        if frame.keyframe {
            let ext = video_ext(VideoCodec::H264(2), w, h, self.fps as u8);
            packet(PacketType::VideoKey, &ext, &annexb);
        } else {
            packet(PacketType::VideoP, &[], &annexb);
        }
        if let Some(t) = &mut self.tone {
            let a = t.next_frame();
            packet(PacketType::Audio, &audio_ext(AudioCodec::Alaw, 1, 8000), &a);
        }
        if self.aux && n.is_multiple_of(u64::from(self.fps)) {
            packet(
                PacketType::Aux,
                &[],
                format!("{{\"frame\":{n}}}").as_bytes(),
            );
        }
        self.frame_no += 1;
        offset
    }
}

/// Media for one simulated device.
pub struct Media {
    label: String,
    video: (usize, usize, u32),
    audio: bool,
    aux: bool,
    clip_secs: u32,
    clock: SimClock,
    files: Mutex<HashMap<String, Bytes>>,
}

impl Media {
    /// Media labelled `label` (the serial) with the live stream settings.
    pub fn new(
        label: &str,
        video: (usize, usize, u32),
        audio: bool,
        aux: bool,
        clip_secs: u32,
        clock: SimClock,
    ) -> Self {
        Media {
            label: label.to_owned(),
            video,
            audio,
            aux,
            clip_secs: clip_secs.clamp(1, 60),
            clock,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// A live stream for a `streamReader` on `channel`/`subtype` (subtype > 0: half size).
    pub fn live(&self, channel: u32, subtype: u32) -> DhavStream {
        let (w, h, fps) = self.video;
        let size = if subtype == 0 {
            (w, h)
        } else {
            ((w / 2).max(16) & !1, (h / 2).max(16) & !1)
        };
        DhavStream::new(
            &format!("{} CH{} ST{}", self.label, channel + 1, subtype),
            size,
            fps,
            channel.min(255) as u8,
            self.audio,
            self.aux,
            self.clock.wall(),
        )
    }

    /// A JPEG of `channel` now.
    pub fn snapshot(&self, channel: usize) -> Bytes {
        let (w, h) = SNAPSHOT_SIZE;
        let mut p = TestPattern::new(w, h).with_label(&format!("{} CH{}", self.label, channel + 1));
        let wall = UNIX_EPOCH + Duration::from_secs_f64(self.clock.wall().max(0.0));
        let pic = p.render(0, wall);
        JpegPatternEncoder::new(w, h).encode(pic)
    }

    fn generate(&self, f: &FileFixture) -> Bytes {
        let start = super::clock::parse_time(&f.start).unwrap_or(0) as f64;
        if f.kind == "jpg" {
            let mut p = TestPattern::new(SNAPSHOT_SIZE.0, SNAPSHOT_SIZE.1).with_label(&self.label);
            let pic = p.render(0, UNIX_EPOCH + Duration::from_secs_f64(start.max(0.0)));
            return JpegPatternEncoder::new(SNAPSHOT_SIZE.0, SNAPSHOT_SIZE.1).encode(pic);
        }
        let mut s = DhavStream::new(
            &self.label,
            FILE_SIZE,
            FILE_FPS,
            f.channel.min(255) as u8,
            false,
            false,
            start,
        );
        let mut out = BytesMut::new();
        for _ in 0..self.clip_secs * FILE_FPS {
            s.next_chunk(&mut out);
        }
        out.freeze()
    }

    /// The bytes of a recorded file.
    pub fn file(&self, f: &FileFixture) -> Bytes {
        if let Some(b) = self
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&f.path)
        {
            return b.clone();
        }
        let b = self.generate(f);
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(f.path.clone(), b.clone());
        b
    }
}

impl FileContent for Media {
    fn content(&self, file: &FileFixture) -> Bytes {
        self.file(file)
    }
}
