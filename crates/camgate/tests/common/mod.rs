//! Shared helpers for camgate's end-to-end tests: simulated cameras, a running camgate, real
//! peers (ffprobe, ffmpeg, GStreamer) and a raw RTSP client.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

use camgate::config::{CameraEntry, Config, ServerSection};
use camgate::serve::Running;
use sim::camera::TestSourceConfig;
use sim::rtsp_camera::{RtspCamera, RtspCameraOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A simulated camera and its camgate camera entry.
pub struct Setup {
    pub cams: Vec<RtspCamera>,
    pub running: Running,
}

impl Setup {
    pub fn url(&self, name: &str) -> String {
        format!("rtsp://{}/{name}", self.running.rtsp.local_addr())
    }
}

pub fn camera_entry(
    name: &str,
    url: &str,
    creds: Option<(&str, &str)>,
    preload: bool,
) -> CameraEntry {
    let mut options = toml::Table::new();
    if let Some((u, p)) = creds {
        options.insert("username".into(), u.into());
        options.insert("password".into(), p.into());
    }
    CameraEntry {
        name: name.into(),
        source: url.into(),
        preload,
        idle_timeout_s: Some(2.0),
        video_timeout_s: Some(3.0),
        start_timeout_s: Some(5.0),
        gop_cache_mb: None,
        reader_queue_mb: None,
        options,
    }
}

/// Serves `entries` on loopback (any free ports).
pub async fn serve_entries(entries: Vec<CameraEntry>) -> Running {
    let cfg = Config {
        server: loopback_server(),
        camera: entries,
        ..Config::default()
    };
    camgate::serve::start(&cfg, "", "test")
        .await
        .expect("camgate starts")
}

/// A server section listening on loopback, on free ports.
pub fn loopback_server() -> ServerSection {
    ServerSection {
        rtsp_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        rtp_port: 0,
        ..ServerSection::default()
    }
}

/// Starts one simulated camera per `(name, test URL)` behind camgate (pulled over RTSP).
pub async fn start(cams: &[(&str, &str)], users: &[(&str, &str)]) -> Setup {
    start_with(cams, users, |_| {}, |_| {}).await
}

/// Like `start`, letting the caller adjust each camera's simulator options.
pub async fn start_with(
    cams: &[(&str, &str)],
    users: &[(&str, &str)],
    tweak: impl Fn(&mut RtspCameraOptions),
    tweak_entry: impl Fn(&mut CameraEntry),
) -> Setup {
    start_full(cams, users, tweak, tweak_entry, |_| {}).await
}

/// Like `start`, with a 5 s RTSP session timeout.
pub async fn start_short_timeout(cams: &[(&str, &str)]) -> Setup {
    start_full(cams, &[], |_| {}, |_| {}, |s| s.session_timeout_s = 5).await
}

/// The most general setup: simulator, camera entry and server section tweaks.
pub async fn start_full(
    cams: &[(&str, &str)],
    users: &[(&str, &str)],
    tweak: impl Fn(&mut RtspCameraOptions),
    tweak_entry: impl Fn(&mut CameraEntry),
    tweak_server: impl Fn(&mut ServerSection),
) -> Setup {
    let mut cfg = Config {
        server: loopback_server(),
        ..Config::default()
    };
    tweak_server(&mut cfg.server);
    for (u, p) in users {
        cfg.users.push(camgate::config::UserEntry {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    let mut sims = Vec::new();
    for (name, test_url) in cams {
        let mut opts = RtspCameraOptions {
            source: TestSourceConfig::from_url(test_url).unwrap(),
            credentials: Some(("admin".into(), "cam-pw".into())),
            ..RtspCameraOptions::default()
        };
        tweak(&mut opts);
        let cam = RtspCamera::start(opts).await.unwrap();
        let mut entry = camera_entry(name, &cam.info().url, Some(("admin", "cam-pw")), false);
        tweak_entry(&mut entry);
        cfg.camera.push(entry);
        sims.push(cam);
    }
    let running = camgate::serve::start(&cfg, "", "test").await.unwrap();
    Setup {
        cams: sims,
        running,
    }
}

/// Output of a peer program.
#[derive(Debug)]
pub struct Peer {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a program with a time limit, off the async runtime.
pub async fn run_peer(program: &str, args: &[String], limit: Duration) -> Peer {
    let program = program.to_string();
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}): run scripts/setup to install the test peers")
            });
        let deadline = std::time::Instant::now() + limit;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        Peer {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    })
    .await
    .unwrap()
}

/// Decodes `frames` video frames from `url` with ffmpeg over `transport`; returns (frames
/// decoded, stderr). Fails the test on a decode error.
pub async fn ffmpeg_decode(url: &str, transport: &str, frames: u32) -> u64 {
    let args: Vec<String> = [
        "-hide_banner",
        "-v",
        "error",
        "-rtsp_transport",
        transport,
        "-i",
        url,
        "-map",
        "0:v:0",
        "-frames:v",
        &frames.to_string(),
        "-f",
        "framemd5",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_peer("ffmpeg", &args, Duration::from_secs(40)).await;
    assert!(
        out.ok,
        "ffmpeg failed reading {url} over {transport}: {}",
        out.stderr
    );
    assert!(
        out.stderr.trim().is_empty(),
        "ffmpeg reported errors reading {url} over {transport}: {}",
        out.stderr
    );
    out.stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count() as u64
}

/// ffprobe's view of `url`: (codec names per stream).
pub async fn ffprobe_codecs(url: &str) -> Vec<String> {
    let args: Vec<String> = [
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-show_entries",
        "stream=codec_name",
        "-of",
        "csv=p=0",
        url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_peer("ffprobe", &args, Duration::from_secs(20)).await;
    assert!(out.ok, "ffprobe failed on {url}: {}", out.stderr);
    out.stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A raw RTSP client for protocol-level tests.
pub struct RawRtsp {
    pub sock: TcpStream,
    pub cseq: u32,
    /// Header lines sent with every request (an `Authorization`, say).
    pub extra: Vec<String>,
    buf: Vec<u8>,
}

/// One parsed RTSP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl RawRtsp {
    pub async fn connect(addr: std::net::SocketAddr) -> RawRtsp {
        RawRtsp {
            sock: TcpStream::connect(addr).await.unwrap(),
            cseq: 0,
            extra: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// A client on an already connected socket.
    pub fn from_stream(sock: TcpStream) -> RawRtsp {
        RawRtsp {
            sock,
            cseq: 0,
            extra: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Connects with a tiny receive buffer, so a client that stops reading pushes back at once.
    pub async fn connect_small(addr: std::net::SocketAddr) -> RawRtsp {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        RawRtsp {
            sock: s.connect(addr).await.unwrap(),
            cseq: 0,
            extra: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Bytes already read past the last response (interleaved data that followed it).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Sends a request with CSeq and extra header lines; returns the response.
    pub async fn request(&mut self, method: &str, url: &str, headers: &[&str]) -> RawResponse {
        self.cseq += 1;
        let mut req = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for h in self
            .extra
            .iter()
            .map(String::as_str)
            .chain(headers.iter().copied())
        {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        self.sock.write_all(req.as_bytes()).await.unwrap();
        self.read_response()
            .await
            .expect("server closed the connection")
    }

    /// Reads the next response, skipping interleaved data. `None` if the server closed.
    pub async fn read_response(&mut self) -> Option<RawResponse> {
        loop {
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                self.buf.drain(..4 + len);
            }
            if let Some(end) = find(&self.buf, b"\r\n\r\n").filter(|_| self.buf[0] != b'$') {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let mut lines = head.split("\r\n");
                let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let body = self.buf[end + 4..end + 4 + len].to_vec();
                    self.buf.drain(..end + 4 + len);
                    return Some(RawResponse {
                        status,
                        headers,
                        body,
                    });
                }
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(10), self.sock.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// SETUP of tracks `0..tracks` over TCP on channels `base + 2 × track`, in one session.
    /// Returns the session id and the SETUP responses.
    pub async fn setup_tcp(
        &mut self,
        url: &str,
        tracks: usize,
        base: u8,
    ) -> (String, Vec<RawResponse>) {
        let mut session = String::new();
        let mut replies = Vec::new();
        for i in 0..tracks {
            let ch = base + 2 * i as u8;
            let t = format!(
                "Transport: RTP/AVP/TCP;unicast;interleaved={}-{}",
                ch,
                ch + 1
            );
            let s = format!("Session: {session}");
            let mut h = vec![t.as_str()];
            if !session.is_empty() {
                h.push(s.as_str());
            }
            let r = self
                .request("SETUP", &format!("{url}/trackID={i}"), &h)
                .await;
            assert_eq!(r.status, 200, "SETUP: {r:?}");
            session = r
                .header("Session")
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            replies.push(r);
        }
        (session, replies)
    }

    /// OPTIONS, DESCRIBE, SETUP (TCP interleaved, every track), PLAY. Returns the session id.
    pub async fn play_tcp(&mut self, url: &str) -> String {
        let d = self
            .request("DESCRIBE", url, &["Accept: application/sdp"])
            .await;
        assert_eq!(d.status, 200, "DESCRIBE {url}: {d:?}");
        let sdp = String::from_utf8_lossy(&d.body).to_string();
        let tracks = sdp.matches("m=").count();
        let (session, _) = self.setup_tcp(url, tracks, 0).await;
        let s = format!("Session: {session}");
        let r = self.request("PLAY", url, &[s.as_str()]).await;
        assert_eq!(r.status, 200, "PLAY: {r:?}");
        session
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of this process in bytes.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
