//! Shared by the `source_*` integration tests: test media made with ffmpeg, the GStreamer
//! reference RTSP server (bench/gst_rtsp_server.py) as a subprocess, frame collection, and
//! ffprobe/ffmpeg checks. Missing tools fail the test with a message saying what to install.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use media::{Frame, SourceError, TrackInfo};
use rtsp::source::{RtspSession, RtspSource, RtspSourceOptions};
use tokio::io::{AsyncBufReadExt, BufReader};

const INSTALL_HINT: &str = "install the test tools once: apt-get install ffmpeg python3-gi \
     gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
     gstreamer1.0-plugins-bad gstreamer1.0-libav (see README)";

/// Test media the reference server can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestMedia {
    /// H.264 (GOP 25, no B-frames) + G.711 A-law 8 kHz.
    H264Pcma,
    /// H.264 + AAC-LC 16 kHz mono.
    H264Aac,
    /// H.265 (GOP 25, no B-frames), no audio.
    H265,
    /// Motion JPEG with the standard Huffman tables, no audio.
    Mjpeg,
}

impl TestMedia {
    fn file_name(self) -> &'static str {
        match self {
            TestMedia::H264Pcma => "h264_pcma.mkv",
            TestMedia::H264Aac => "h264_aac.mkv",
            TestMedia::H265 => "h265.mkv",
            TestMedia::Mjpeg => "mjpeg_std_huffman.mkv",
        }
    }

    fn ffmpeg_args(self) -> Vec<&'static str> {
        let video = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
        let mut a: Vec<&str> = video.to_vec();
        match self {
            TestMedia::H264Pcma => a.extend([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=1000:sample_rate=8000",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-bf",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "pcm_alaw",
                "-ac",
                "1",
            ]),
            TestMedia::H264Aac => a.extend([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=1000:sample_rate=16000",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-bf",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-ac",
                "1",
            ]),
            TestMedia::H265 => a.extend([
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "keyint=25:min-keyint=25:bframes=0:log-level=error",
                "-pix_fmt",
                "yuv420p",
            ]),
            // RTP/JPEG (RFC 2435) carries no Huffman tables: the encoder must use the standard ones.
            TestMedia::Mjpeg => a.extend([
                "-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p", "-q:v", "8",
            ]),
        }
        a.extend(["-t", "10"]);
        a
    }
}

/// A directory for this test run's files.
pub fn tmp_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("camgate-rtsp-source");
    std::fs::create_dir_all(&d).expect("create test tmp dir");
    d
}

/// Panics with an install hint unless `tool -version` runs.
pub fn require_tool(tool: &str) {
    let ok = Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{tool} is missing; {INSTALL_HINT}");
}

/// The test media file, made with ffmpeg on first use (shared by the tests of one binary,
/// written atomically so parallel test binaries do not see half a file).
pub fn media_file(m: TestMedia) -> PathBuf {
    ffmpeg_file(m.file_name(), &m.ffmpeg_args())
}

/// A file `name` in the test tmp dir made by `ffmpeg <args> <file>` unless it exists.
pub fn ffmpeg_file(name: &str, args: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = tmp_dir().join(name);
    if path.exists() {
        return path;
    }
    require_tool("ffmpeg");
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("mkv");
    let tmp = tmp_dir().join(format!("{name}.{}.tmp.{ext}", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&tmp)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not make {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &path).expect("rename test media");
    path
}

/// A Python 3 interpreter with GStreamer's RTSP server bindings.
pub fn python() -> &'static str {
    static PY: OnceLock<Option<String>> = OnceLock::new();
    let found = PY.get_or_init(|| {
        let mut candidates = Vec::new();
        if let Ok(p) = std::env::var("CAMGATE_TEST_PYTHON") {
            candidates.push(p);
        }
        candidates.push("python3".into());
        candidates.push("/usr/bin/python3".into());
        candidates.into_iter().find(|c| {
            Command::new(c)
                .args([
                    "-c",
                    "import gi; gi.require_version('GstRtspServer', '1.0'); \
                     from gi.repository import GstRtspServer",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    });
    match found {
        Some(p) => p,
        None => panic!(
            "no python3 with GstRtspServer bindings (tried $CAMGATE_TEST_PYTHON, python3, \
             /usr/bin/python3); {INSTALL_HINT}"
        ),
    }
}

/// The reference RTSP server running as a subprocess (killed on drop).
pub struct GstServer {
    /// The stream URL it printed (no credentials).
    pub url: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl GstServer {
    /// Serves a test media file (looping, shared) at `/cam`.
    pub async fn file(m: TestMedia) -> GstServer {
        let file = media_file(m);
        GstServer::start(&["--file", file.to_str().unwrap()], None).await
    }

    /// Serves a test media file that requires these credentials.
    pub async fn file_with_auth(m: TestMedia, user: &str, password: &str) -> GstServer {
        let file = media_file(m);
        GstServer::start(&["--file", file.to_str().unwrap()], Some((user, password))).await
    }

    /// Serves a gst-launch pipeline.
    pub async fn launch(pipeline: &str) -> GstServer {
        GstServer::start(&["--launch", pipeline], None).await
    }

    async fn start(args: &[&str], auth: Option<(&str, &str)>) -> GstServer {
        let script = std::env::var_os("CAMGATE_GST_RTSP_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/gst_rtsp_server.py")
            });
        assert!(script.exists(), "missing {}", script.display());
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = tmp_dir().join(format!("gst-server-{}-{n}.log", std::process::id()));
        let mut cmd = tokio::process::Command::new(python());
        cmd.arg(&script)
            .args(["--port", "0", "--path", "/cam"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true);
        if let Some((u, p)) = auth {
            cmd.args(["--user", u, "--password", p]);
        }
        let mut child = cmd.spawn().expect("start gst_rtsp_server.py");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await;
        let line = match line {
            Ok(Ok(Some(l))) => l,
            other => panic!(
                "gst_rtsp_server.py did not start ({other:?}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        let url = line
            .split("\"url\": \"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
            .to_string();
        GstServer { url, child, log }
    }

    /// The URL with credentials in its userinfo.
    pub fn url_with_creds(&self, user: &str, password: &str) -> String {
        self.url
            .replacen("rtsp://", &format!("rtsp://{user}:{password}@"), 1)
    }

    /// Stops the server process (SIGSTOP) as a hung camera would: connections stay open,
    /// nothing is sent. It is killed on drop as usual.
    pub fn freeze(&self) {
        let pid = self.child.id().expect("server still running");
        let ok = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -STOP {pid} failed");
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Opens a source with a bounded wait.
pub async fn open(url: &str, options: RtspSourceOptions) -> Result<RtspSession, SourceError> {
    let source = RtspSource::new(url, options)?;
    tokio::time::timeout(Duration::from_secs(20), source.open())
        .await
        .expect("open() returned within 20 s")
}

/// Reads frames until `video` frames of the first video track arrived (and at least one
/// frame of every other track, within a bound); returns the tracks and all frames.
pub async fn collect(session: &mut RtspSession, video: usize) -> (Vec<TrackInfo>, Vec<Frame>) {
    let tracks = session.track_infos().to_vec();
    let vtrack = tracks
        .iter()
        .position(|t| t.kind() == media::MediaKind::Video);
    let mut frames = Vec::new();
    let read = async {
        loop {
            let f = session.frame().await.expect("frame");
            frames.push(f);
            let nvideo = frames.iter().filter(|f| Some(f.track) == vtrack).count();
            let all_tracks = (0..tracks.len()).all(|t| frames.iter().any(|f| f.track == t));
            if nvideo >= video && (all_tracks || nvideo >= video * 2) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .expect("frames within 15 s");
    (tracks, frames)
}

/// Frames ffprobe decodes in the first stream of a type ("v" or "a").
pub fn ffprobe_count(path: &Path, stream: &str) -> u64 {
    require_tool("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams"])
        .arg(format!("{stream}:0"))
        .args([
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| {
        panic!(
            "ffprobe gave no frame count for {stream} in {}: {text:?} {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The codec name ffprobe sees for the first stream of a type.
pub fn ffprobe_codec(path: &Path, stream: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams"])
        .arg(format!("{stream}:0"))
        .args([
            "-show_entries",
            "stream=codec_name",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Decodes the whole file with `ffmpeg -xerror`; returns its complaints (empty = clean).
pub fn ffmpeg_decode_errors(path: &Path) -> String {
    require_tool("ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() && text.is_empty() {
        text = format!("ffmpeg exited with {}", out.status);
    }
    text
}
