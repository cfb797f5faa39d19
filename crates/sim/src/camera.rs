//! `TestSource`: a live synthetic camera as a `media::Source` — the moving test pattern
//! encoded as H.264, H.265 or JPEG at a steady frame rate, with an optional G.711 or AAC tone,
//! paced in real time, with fault knobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use media::{
    Codec, Frame, G711Law, Source, SourceError, SourceErrorKind, SourceSession, TrackInfo,
};
use tokio::time::Instant;

use crate::testsrc::aac::AacToneEncoder;
use crate::testsrc::g711tone::ToneGenerator;
use crate::testsrc::h264::H264Encoder;
use crate::testsrc::h265::H265Encoder;
use crate::testsrc::jpeg::JpegPatternEncoder;
use crate::testsrc::pattern::{TestPattern, frame_pts_90k};

/// The video codec of a test source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoKind {
    /// H.264 (baseline).
    H264,
    /// H.265 (Main).
    H265,
    /// Motion JPEG.
    Jpeg,
}

/// The audio of a test source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioKind {
    /// No audio track.
    None,
    /// G.711 A-law, 8 kHz mono.
    Pcma,
    /// G.711 µ-law, 8 kHz mono.
    Pcmu,
    /// AAC-LC, 16 kHz mono.
    Aac,
}

/// What a test source produces.
#[derive(Clone, Debug)]
pub struct TestSourceConfig {
    /// Text drawn on the picture.
    pub label: String,
    /// Video codec.
    pub video: VideoKind,
    /// Audio track.
    pub audio: AudioKind,
    /// Display width.
    pub width: usize,
    /// Display height.
    pub height: usize,
    /// Frames per second.
    pub fps: u32,
    /// Frames per GOP (keyframe interval).
    pub gop: u32,
}

impl Default for TestSourceConfig {
    fn default() -> Self {
        TestSourceConfig {
            label: "CAMGATE".into(),
            video: VideoKind::H264,
            audio: AudioKind::Pcma,
            width: 640,
            height: 360,
            fps: 25,
            gop: 50,
        }
    }
}

impl TestSourceConfig {
    /// Parses `test://[label]?video=h264|h265|jpeg&audio=none|pcma|pcmu|aac&size=WxH&fps=N&gop=N`.
    pub fn from_url(url: &str) -> Result<TestSourceConfig, String> {
        let rest = url
            .strip_prefix("test://")
            .ok_or_else(|| format!("{url:?} is not a test:// URL"))?;
        let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut cfg = TestSourceConfig::default();
        let label = label.trim_matches('/');
        if !label.is_empty() {
            cfg.label = label.to_uppercase();
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "video" => {
                    cfg.video = match v {
                        "h264" => VideoKind::H264,
                        "h265" | "hevc" => VideoKind::H265,
                        "jpeg" | "mjpeg" => VideoKind::Jpeg,
                        _ => {
                            return Err(format!(
                                "test source: unknown video {v:?} (h264, h265, jpeg)"
                            ));
                        }
                    }
                }
                "audio" => {
                    cfg.audio = match v {
                        "none" | "" => AudioKind::None,
                        "pcma" => AudioKind::Pcma,
                        "pcmu" => AudioKind::Pcmu,
                        "aac" => AudioKind::Aac,
                        _ => {
                            return Err(format!(
                                "test source: unknown audio {v:?} (none, pcma, pcmu, aac)"
                            ));
                        }
                    }
                }
                "size" => {
                    let (w, h) = v
                        .split_once('x')
                        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                        .ok_or_else(|| format!("test source: size {v:?} is not WxH"))?;
                    if !(64..=3840).contains(&w)
                        || !(64..=2160).contains(&h)
                        || w % 2 != 0
                        || h % 2 != 0
                    {
                        return Err(format!(
                            "test source: size {v:?} must be even, 64..3840 x 64..2160"
                        ));
                    }
                    cfg.width = w;
                    cfg.height = h;
                }
                "fps" => {
                    cfg.fps = v
                        .parse()
                        .ok()
                        .filter(|f| (1..=60).contains(f))
                        .ok_or_else(|| format!("test source: fps {v:?} must be 1..60"))?
                }
                "gop" => {
                    cfg.gop = v
                        .parse()
                        .ok()
                        .filter(|g| (1..=600).contains(g))
                        .ok_or_else(|| format!("test source: gop {v:?} must be 1..600"))?
                }
                _ => return Err(format!("test source: unknown option {k:?}")),
            }
        }
        Ok(cfg)
    }
}

/// Fault knobs shared by every session of a test source.
#[derive(Debug, Default)]
pub struct Faults {
    /// Stop sending video (audio continues).
    pub video_paused: AtomicBool,
    /// End every session now (bumped to end the current ones).
    pub drop_generation: AtomicU64,
}

impl Faults {
    /// Ends every running session (the camera "drops the connection").
    pub fn drop_sessions(&self) {
        self.drop_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Pauses or resumes video while audio keeps flowing.
    pub fn pause_video(&self, paused: bool) {
        self.video_paused.store(paused, Ordering::SeqCst);
    }
}

/// A synthetic camera.
pub struct TestSource {
    cfg: TestSourceConfig,
    faults: Arc<Faults>,
}

impl TestSource {
    /// A test source with its own fault knobs.
    pub fn new(cfg: TestSourceConfig) -> Self {
        TestSource {
            cfg,
            faults: Arc::new(Faults::default()),
        }
    }

    /// The fault knobs.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }
}

impl Source for TestSource {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        let session = TestSession::new(self.cfg.clone(), self.faults.clone());
        Box::pin(async move { Ok(Box::new(session) as Box<dyn SourceSession>) })
    }

    fn describe(&self) -> String {
        format!(
            "test://{}?video={:?}&audio={:?}",
            self.cfg.label.to_lowercase(),
            self.cfg.video,
            self.cfg.audio
        )
        .to_lowercase()
    }
}

enum VideoEnc {
    H264(H264Encoder),
    H265(H265Encoder),
    Jpeg(Box<JpegPatternEncoder>),
}

enum AudioGen {
    None,
    G711(ToneGenerator, u32),
    Aac(AacToneEncoder, u32),
}

struct TestSession {
    cfg: TestSourceConfig,
    faults: Arc<Faults>,
    generation: u64,
    pattern: TestPattern,
    video: VideoEnc,
    audio: AudioGen,
    tracks: Vec<TrackInfo>,
    start: Instant,
    frame_no: u64,
    audio_samples: u64,
}

impl TestSession {
    fn new(cfg: TestSourceConfig, faults: Arc<Faults>) -> Self {
        let pattern = TestPattern::new(cfg.width, cfg.height).with_label(&cfg.label);
        let (video, vtrack) = match cfg.video {
            VideoKind::H264 => {
                let e = H264Encoder::new(cfg.width, cfg.height, cfg.gop).with_fps(cfg.fps);
                let t = e.codec();
                (VideoEnc::H264(e), t)
            }
            VideoKind::H265 => {
                let e = H265Encoder::new(cfg.width, cfg.height, cfg.gop).with_fps(cfg.fps);
                let t = e.codec();
                (VideoEnc::H265(e), t)
            }
            VideoKind::Jpeg => (
                VideoEnc::Jpeg(Box::new(JpegPatternEncoder::new(cfg.width, cfg.height))),
                Codec::Jpeg,
            ),
        };
        let mut tracks = vec![TrackInfo::new(vtrack)];
        let audio = match cfg.audio {
            AudioKind::None => AudioGen::None,
            AudioKind::Pcma | AudioKind::Pcmu => {
                let law = if cfg.audio == AudioKind::Pcma {
                    G711Law::A
                } else {
                    G711Law::U
                };
                let g = ToneGenerator::new(law);
                tracks.push(TrackInfo::new(g.codec()));
                AudioGen::G711(g, 8000)
            }
            AudioKind::Aac => {
                let e = AacToneEncoder::new(16_000, 1);
                tracks.push(TrackInfo::new(e.codec()));
                AudioGen::Aac(e, 16_000)
            }
        };
        TestSession {
            generation: faults.drop_generation.load(Ordering::SeqCst),
            cfg,
            faults,
            pattern,
            video,
            audio,
            tracks,
            start: Instant::now(),
            frame_no: 0,
            audio_samples: 0,
        }
    }

    fn video_due(&self) -> Instant {
        self.start + Duration::from_nanos(self.frame_no * 1_000_000_000 / u64::from(self.cfg.fps))
    }

    fn audio_due(&self) -> Option<Instant> {
        let rate = match &self.audio {
            AudioGen::None => return None,
            AudioGen::G711(_, r) | AudioGen::Aac(_, r) => *r,
        };
        Some(
            self.start + Duration::from_nanos(self.audio_samples * 1_000_000_000 / u64::from(rate)),
        )
    }

    fn next_video(&mut self) -> Option<Frame> {
        let n = self.frame_no;
        self.frame_no += 1;
        if self.faults.video_paused.load(Ordering::Relaxed) {
            return None;
        }
        let pic = self.pattern.render(n, SystemTime::now());
        let ts = frame_pts_90k(n, self.cfg.fps);
        let (data, key) = match &mut self.video {
            VideoEnc::H264(e) => {
                let f = e.encode(pic);
                (f.data, f.keyframe)
            }
            VideoEnc::H265(e) => {
                let f = e.encode(pic);
                (f.data, f.keyframe)
            }
            VideoEnc::Jpeg(e) => (e.encode(pic), true),
        };
        Some(Frame::new(0, ts, key, data))
    }

    fn next_audio(&mut self) -> Frame {
        let ts = self.audio_samples as i64;
        let data: Bytes = match &mut self.audio {
            AudioGen::G711(g, _) => {
                let d = g.next_frame();
                self.audio_samples += d.len() as u64;
                d
            }
            AudioGen::Aac(e, _) => {
                self.audio_samples += 1024;
                e.next_frame()
            }
            AudioGen::None => unreachable!("audio_due is None without audio"),
        };
        Frame::new(1, ts, true, data)
    }
}

impl SourceSession for TestSession {
    fn tracks(&self) -> Vec<TrackInfo> {
        self.tracks.clone()
    }

    fn next_frame(&mut self) -> BoxFuture<'_, Result<Frame, SourceError>> {
        Box::pin(async move {
            loop {
                if self.faults.drop_generation.load(Ordering::SeqCst) != self.generation {
                    return Err(SourceError::new(
                        SourceErrorKind::Ended,
                        "test source: connection dropped (fault)",
                    ));
                }
                let v = self.video_due();
                let a = self.audio_due();
                let audio_first = a.is_some_and(|a| a < v);
                let due = if audio_first { a.unwrap_or(v) } else { v };
                tokio::time::sleep_until(due).await;
                if audio_first {
                    return Ok(self.next_audio());
                }
                if let Some(f) = self.next_video() {
                    return Ok(f);
                }
            }
        })
    }
}
