//! camgate on an open network, probed as an attacker on the same network would: hostile
//! `Authorization` headers, replayed and re-targeted Digest credentials, header injection,
//! session hoarding, slow and idle connections, floods under a 1024-descriptor limit, password
//! guessing; and shutdown by SIGTERM with readers connected and cameras to tear down.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use md5::{Digest, Md5};
use sim::camera::TestSourceConfig;
use sim::rtsp_camera::{RtspCamera, RtspCameraOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const CAMGATE: &str = env!("CARGO_BIN_EXE_camgate");
const CAM: (&str, &str) = ("cam", "test://cam?video=h264&audio=pcma");
const VIEWER: (&str, &str) = ("viewer", "s3cret");

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    h.update(parts.join(":").as_bytes());
    hex::encode(h.finalize())
}

/// The nonce of a 401's Digest challenge.
fn nonce_of(r: &RawResponse) -> String {
    let c = r
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("WWW-Authenticate") && v.starts_with("Digest"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no Digest challenge in {r:?}"));
    c.split("nonce=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string()
}

/// A Digest header for `viewer` as clients make it: without qop (GStreamer, live555) or with
/// `qop=auth` and nonce count `nc` (ffmpeg).
fn digest(nonce: &str, method: &str, uri: &str, password: &str, nc: Option<u32>) -> String {
    let ha1 = md5_hex(&[VIEWER.0, "camgate", password]);
    let ha2 = md5_hex(&[method, uri]);
    match nc {
        None => {
            let resp = md5_hex(&[&ha1, nonce, &ha2]);
            format!(
                "Authorization: Digest username=\"viewer\", realm=\"camgate\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\""
            )
        }
        Some(nc) => {
            let nc = format!("{nc:08x}");
            let resp = md5_hex(&[&ha1, nonce, &nc, "c0ffee", "auth", &ha2]);
            format!(
                "Authorization: Digest username=\"viewer\", realm=\"camgate\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", qop=auth, nc={nc}, cnonce=\"c0ffee\""
            )
        }
    }
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from.parse().unwrap(), 0))?;
    s.connect(addr).await
}

async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// What the server did with a connection within a time limit.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fate {
    /// Still open, nothing received.
    Open,
    /// Closed (FIN or reset) after sending these bytes (maybe none).
    Closed(String),
}

/// Reads `sock` until it closes or `limit` passes.
async fn fate(sock: &mut TcpStream, limit: Duration) -> Fate {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, sock.read(&mut buf)).await {
            Err(_) => {
                return if got.is_empty() {
                    Fate::Open
                } else {
                    Fate::Closed(String::from_utf8_lossy(&got).into())
                };
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Fate::Closed(String::from_utf8_lossy(&got).into()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multibyte_digest_nonce_gets_a_401_and_the_connection_is_counted_out() {
    let s = start(&[CAM], &[VIEWER]).await;
    let addr = s.running.rtsp.local_addr();
    let counters = s.running.rtsp.counters().clone();
    for _ in 0..3 {
        let mut c = RawRtsp::connect(addr).await;
        let r = c
            .request(
                "DESCRIBE",
                &s.url("cam"),
                &["Authorization: Digest username=\"viewer\", realm=\"camgate\", nonce=\"€€€€€€€€\", uri=\"x\", response=\"0123456789abcdef0123456789abcdef\""],
            )
            .await;
        assert_eq!(r.status, 401, "{r:?}");
        // The connection still works after the bad header.
        let r = c.request("OPTIONS", &s.url("cam"), &[]).await;
        assert_eq!(r.status, 200);
    }
    assert!(
        wait_until(Duration::from_secs(5), || counters
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0)
        .await,
        "connections were not counted out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_header_replayed_on_another_connection_is_stale() {
    let s = start(&[CAM], &[VIEWER]).await;
    let addr = s.running.rtsp.local_addr();
    let url = s.url("cam");
    let mut a = RawRtsp::connect(addr).await;
    let challenge = a.request("DESCRIBE", &url, &[]).await;
    assert_eq!(challenge.status, 401);
    let captured = digest(&nonce_of(&challenge), "DESCRIBE", &url, VIEWER.1, None);
    let ok = a.request("DESCRIBE", &url, &[&captured]).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    // The same header on a new connection (what an eavesdropper would replay).
    let mut b = RawRtsp::connect(addr).await;
    let replay = b.request("DESCRIBE", &url, &[&captured]).await;
    assert_eq!(replay.status, 401, "{replay:?}");
    let again = replay.header("WWW-Authenticate").unwrap();
    assert!(again.contains("stale=true"), "{again}");
    assert_ne!(nonce_of(&replay), nonce_of(&challenge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_header_for_one_camera_does_not_open_another() {
    let s = start(
        &[CAM, ("other", "test://other?video=h264&audio=none")],
        &[VIEWER],
    )
    .await;
    let addr = s.running.rtsp.local_addr();
    let (cam, other) = (s.url("cam"), s.url("other"));
    let mut c = RawRtsp::connect(addr).await;
    let challenge = c.request("DESCRIBE", &cam, &[]).await;
    let for_cam = digest(&nonce_of(&challenge), "DESCRIBE", &cam, VIEWER.1, None);
    let r = c.request("DESCRIBE", &other, &[&for_cam]).await;
    assert_eq!(
        r.status, 401,
        "a header made for {cam} opened {other}: {r:?}"
    );
    let r = c.request("DESCRIBE", &cam, &[&for_cam]).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_count_is_refused() {
    let s = start(&[CAM], &[VIEWER]).await;
    let url = s.url("cam");
    let mut c = RawRtsp::connect(s.running.rtsp.local_addr()).await;
    let challenge = c.request("DESCRIBE", &url, &[]).await;
    assert!(
        challenge
            .header("WWW-Authenticate")
            .unwrap()
            .contains("qop=\"auth\"")
    );
    let nonce = nonce_of(&challenge);
    let first = digest(&nonce, "DESCRIBE", &url, VIEWER.1, Some(1));
    assert_eq!(c.request("DESCRIBE", &url, &[&first]).await.status, 200);
    assert_eq!(c.request("DESCRIBE", &url, &[&first]).await.status, 401);
    let second = digest(&nonce, "DESCRIBE", &url, VIEWER.1, Some(2));
    assert_eq!(c.request("DESCRIBE", &url, &[&second]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_character_in_a_header_gets_400_and_is_not_echoed() {
    let s = start(&[CAM], &[]).await;
    let mut sock = TcpStream::connect(s.running.rtsp.local_addr())
        .await
        .unwrap();
    sock.write_all(b"OPTIONS rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 1\nX-Injected: yes\r\n\r\n")
        .await
        .unwrap();
    let Fate::Closed(reply) = fate(&mut sock, Duration::from_millis(500)).await else {
        // Still open is fine too, as long as the reply came: read what arrived.
        panic!("no reply");
    };
    assert!(reply.starts_with("RTSP/1.0 400 "), "{reply:?}");
    assert!(!reply.contains("Injected"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_connection_are_capped() {
    let s = start_full(
        &[CAM],
        &[],
        |_| {},
        |_| {},
        |srv| srv.max_sessions_per_connection = 4,
    )
    .await;
    let url = s.url("cam");
    let mut c = RawRtsp::connect(s.running.rtsp.local_addr()).await;
    let d = c.request("DESCRIBE", &url, &[]).await;
    assert_eq!(d.status, 200);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = c
            .request(
                "SETUP",
                &format!("{url}/trackID=0"),
                &["Transport: RTP/AVP/TCP;unicast;interleaved=0-1"],
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 503, 503]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_unauthenticated_connections_are_closed_but_players_stay() {
    let s = start_full(
        &[CAM],
        &[VIEWER],
        |_| {},
        |_| {},
        |srv| {
            srv.header_timeout_s = 1.0;
            srv.auth_timeout_s = 1.5;
            srv.connection_idle_timeout_s = 2.0;
        },
    )
    .await;
    let addr = s.running.rtsp.local_addr();
    let url = s.url("cam");
    // A head that never ends: 408, then closed.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"DESCRIBE rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 1\r\nX-Pad: aaaa")
        .await
        .unwrap();
    // A connection that says nothing.
    let mut mute = TcpStream::connect(addr).await.unwrap();
    // One that authenticated and then plays nothing.
    let mut idle = RawRtsp::connect(addr).await;
    let ch = idle.request("DESCRIBE", &url, &[]).await;
    let h = digest(&nonce_of(&ch), "DESCRIBE", &url, VIEWER.1, None);
    assert_eq!(idle.request("DESCRIBE", &url, &[&h]).await.status, 200);
    // One that plays (Basic is accepted too).
    let mut player = RawRtsp::connect(addr).await;
    player
        .extra
        .push("Authorization: Basic dmlld2VyOnMzY3JldA==".into());
    player.play_tcp(&url).await;

    let t0 = Instant::now();
    let slow_fate = fate(&mut slow, Duration::from_secs(4)).await;
    assert!(
        matches!(&slow_fate, Fate::Closed(r) if r.starts_with("RTSP/1.0 408 ")),
        "{slow_fate:?}"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        fate(&mut mute, Duration::from_secs(4)).await,
        Fate::Closed(String::new())
    );
    assert!(
        idle.read_response().await.is_none(),
        "idle connection not closed"
    );
    // Well past every timeout, the player still gets media.
    let mut media = 0usize;
    let mut buf = vec![0u8; 65536];
    player.take_buffered();
    let until = tokio::time::Instant::from_std(t0 + Duration::from_millis(3500));
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, player.sock.read(&mut buf)).await {
        assert!(n > 0, "the playing connection was closed");
        media += n;
    }
    assert!(t0.elapsed() > Duration::from_secs(3));
    assert!(media > 10_000, "only {media} bytes of media");
    let timed_out = s
        .running
        .rtsp
        .counters()
        .timed_out
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(timed_out, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guesses_from_one_address_back_off_on_rtsp_and_http() {
    let s = start(&[CAM], &[VIEWER]).await;
    let rtsp = s.running.rtsp.local_addr();
    let url = s.url("cam");
    let sock = connect_from("127.0.0.2", rtsp).await.unwrap();
    let mut c = RawRtsp::from_stream(sock);
    let wrong = "Authorization: Basic dmlld2VyOmd1ZXNz"; // viewer:guess
    let right = "Authorization: Basic dmlld2VyOnMzY3JldA==";
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(c.request("DESCRIBE", &url, &[wrong]).await.status);
    }
    // Five free failures; the sixth makes the address wait 1 s. A guess meanwhile is not
    // checked, and its answer is held back until the wait is over.
    let t = Instant::now();
    let held = c.request("DESCRIBE", &url, &[wrong]).await;
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    statuses.push(held.status);
    // The next guess is checked, fails, and doubles the wait.
    statuses.push(c.request("DESCRIBE", &url, &[wrong]).await.status);
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 503, 401]);
    let r = c.request("DESCRIBE", &url, &[right]).await;
    assert_eq!(
        r.status, 503,
        "the right password is not checked either while waiting"
    );
    assert_eq!(r.header("Retry-After"), Some("2"));
    // HTTP shares the back-off: 429 with Retry-After.
    let http = s.running.http_addr;
    let mut h = connect_from("127.0.0.2", http).await.unwrap();
    h.write_all(
        b"GET /api/streams HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dmlld2VyOmd1ZXNz\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = vec![0u8; 4096];
    let n = h.read(&mut got).await.unwrap();
    let head = String::from_utf8_lossy(&got[..n]);
    assert!(head.starts_with("HTTP/1.1 429 "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    // Another address is not slowed down.
    let mut other = RawRtsp::connect(rtsp).await;
    assert_eq!(other.request("DESCRIBE", &url, &[right]).await.status, 200);
    // After the wait, the right password works and clears the record.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.request("DESCRIBE", &url, &[right]).await.status, 200);
    assert_eq!(c.request("DESCRIBE", &url, &[wrong]).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_limit_get_503_and_readers_play_on() {
    let s = start_full(
        &[CAM],
        &[],
        |_| {},
        |_| {},
        |srv| {
            srv.max_connections_per_address = 5;
            srv.max_connections = 8;
        },
    )
    .await;
    let rtsp = s.running.rtsp.local_addr();
    let url = s.url("cam");
    let reader = tokio::spawn({
        let url = url.clone();
        async move { ffmpeg_decode(&url, "tcp", 100).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Five connections from 127.0.0.2 are taken, the sixth is refused with a 503.
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from("127.0.0.2", rtsp).await.unwrap());
    }
    let mut sixth = connect_from("127.0.0.2", rtsp).await.unwrap();
    sixth
        .write_all(b"OPTIONS rtsp://x/cam RTSP/1.0\r\nCSeq: 9\r\n\r\n")
        .await
        .unwrap();
    let f = fate(&mut sixth, Duration::from_secs(3)).await;
    assert!(
        matches!(&f, Fate::Closed(r) if r.starts_with("RTSP/1.0 503 ") && r.contains("CSeq: 9")),
        "{f:?}"
    );
    // HTTP counts towards the same limits.
    let mut h = connect_from("127.0.0.2", s.running.http_addr)
        .await
        .unwrap();
    h.write_all(b"GET /api/streams HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let f = fate(&mut h, Duration::from_secs(3)).await;
    assert!(
        matches!(&f, Fate::Closed(r) if r.starts_with("HTTP/1.1 503 ")),
        "{f:?}"
    );
    // The total limit: two more from other addresses fill it (ffmpeg holds one).
    let _a = connect_from("127.0.0.3", rtsp).await.unwrap();
    let _b = connect_from("127.0.0.4", rtsp).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut past = connect_from("127.0.0.5", rtsp).await.unwrap();
    assert!(
        matches!(fate(&mut past, Duration::from_secs(3)).await, Fate::Closed(r) if r.starts_with("RTSP/1.0 503 "))
    );
    assert!(reader.await.unwrap() >= 100, "the reader was disturbed");
    let refused = s
        .running
        .gate
        .counters()
        .refused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(refused, 3);
    drop(held);
}

/// A camgate process serving one camera, with its log.
struct Served {
    child: Child,
    rtsp: SocketAddr,
    http: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Served {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Waits for the process to exit; its status, or `None` after `limit`.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `camgate serve` with a configuration for the camera at `url` (credentials
/// admin/cam-pw), `server` lines added to `[server]`, readers logging in as viewer, and the
/// open-file limit set to `fd_limit` (soft and hard) if given.
fn serve_process(url: &str, server: &str, fd_limit: Option<u32>) -> Served {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir =
        std::env::temp_dir().join(format!("camgate-hardening-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("camgate.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nrtsp_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nrtp_port = 0\n{server}\n\n\
             [[users]]\nusername = \"viewer\"\npassword = \"s3cret\"\n\n\
             [[camera]]\nname = \"cam\"\nsource = \"{url}\"\nusername = \"admin\"\npassword = \"cam-pw\"\n"
        ),
    )
    .unwrap();
    let mut cmd = match fd_limit {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(CAMGATE);
            c
        }
        None => Command::new(CAMGATE),
    };
    let mut child = cmd
        .args(["--log", "info", "serve", "-c"])
        .arg(&file)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = sink.lock().unwrap();
            l.push_str(&strip_ansi(&line));
            l.push('\n');
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut rtsp, mut http) = (None, None);
    let mut line = String::new();
    while http.is_none() {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("camgate exited: {}", log.lock().unwrap());
        }
        if let Some(rest) = line.trim().strip_prefix("rtsp://") {
            rtsp = rest.split('/').next().and_then(|a| a.parse().ok());
        }
        if let Some(rest) = line.trim().strip_prefix("HTTP API: http://") {
            http = rest.split('/').next().and_then(|a| a.parse().ok());
        }
    }
    std::thread::spawn(move || for _ in out.lines() {});
    Served {
        child,
        rtsp: rtsp.expect("camgate printed its RTSP URL"),
        http: http.unwrap(),
        log,
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn camera() -> RtspCamera {
    RtspCamera::start(RtspCameraOptions {
        source: TestSourceConfig::from_url(CAM.1).unwrap(),
        credentials: Some(("admin".into(), "cam-pw".into())),
        ..RtspCameraOptions::default()
    })
    .await
    .unwrap()
}

/// Opens `n` connections to `addr` from `from`, each sending `first` (if not empty).
async fn flood(from: &str, addr: SocketAddr, n: usize, first: &[u8]) -> Vec<TcpStream> {
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        match connect_from(from, addr).await {
            Ok(mut s) => {
                if !first.is_empty() {
                    let _ = s.write_all(first).await;
                }
                socks.push(s);
            }
            Err(e) => panic!("connect from {from} to {addr}: {e}"),
        }
    }
    socks
}

/// How many of `socks` are still open (nothing received, no close) after `limit`.
async fn still_open(socks: &mut [TcpStream], limit: Duration) -> (usize, Vec<String>) {
    let fates = futures_util::future::join_all(socks.iter_mut().map(|s| fate(s, limit))).await;
    let open = fates.iter().filter(|f| **f == Fate::Open).count();
    let replies = fates
        .into_iter()
        .filter_map(|f| match f {
            Fate::Closed(r) if !r.is_empty() => Some(r.lines().next().unwrap_or("").to_string()),
            _ => None,
        })
        .collect();
    (open, replies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_1024_fd_limit_floods_of_idle_and_partial_connections_lock_no_reader_out() {
    let cam = camera().await;
    let served = serve_process(
        &cam.info().url,
        "header_timeout_s = 3\nauth_timeout_s = 8",
        Some(1024),
    );
    assert!(
        served.log().contains("open-file limit 1024"),
        "{}",
        served.log()
    );
    let url = format!("rtsp://viewer:s3cret@{}/cam", served.rtsp);
    // A reader that plays through the whole flood: 400 frames at 25 fps.
    let reader = tokio::spawn({
        let url = url.clone();
        async move { ffmpeg_decode(&url, "tcp", 400).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss0, _) = served.memory_kib();
    let fds0 = served.fds();

    // 2000 idle connections from one address, half RTSP and half HTTP.
    let mut idle = flood("127.0.0.2", served.rtsp, 1000, b"").await;
    idle.extend(flood("127.0.0.2", served.http, 1000, b"").await);
    // 2000 connections from 20 addresses, each holding 12 KB of a request head that never ends.
    let pad = "a".repeat(12 * 1024);
    let rtsp_head = format!("DESCRIBE rtsp://x/cam RTSP/1.0\r\nCSeq: 1\r\nX-Pad: {pad}");
    let http_head = format!("GET /api/streams HTTP/1.1\r\nHost: x\r\nX-Pad: {pad}");
    let mut partial = Vec::new();
    for i in 1..=20 {
        let from = format!("127.0.1.{i}");
        partial.extend(flood(&from, served.rtsp, 50, rtsp_head.as_bytes()).await);
        partial.extend(flood(&from, served.http, 50, http_head.as_bytes()).await);
    }
    let fds_flood = served.fds();
    assert!(fds_flood <= 1024, "{fds_flood} descriptors");

    // One address holds at most max_connections_per_address (128) of the idle ones; the rest
    // were refused at once.
    let (open, mut replies) = still_open(&mut idle, Duration::from_millis(1500)).await;
    assert_eq!(open, 128, "idle connections from one address open");
    let fds_peak = served.fds();
    let (_, hwm) = served.memory_kib();

    // The partial heads are answered 408 (RTSP) or closed (HTTP) after the header timeout,
    // the idle ones after the authentication timeout.
    let (open, partial_replies) = still_open(&mut partial, Duration::from_secs(5)).await;
    assert_eq!(open, 0, "partial heads still open after the header timeout");
    replies.extend(partial_replies);
    let count = |prefix: &str| replies.iter().filter(|r| r.starts_with(prefix)).count();
    assert!(count("RTSP/1.0 408 ") > 0, "no 408");
    assert!(count("RTSP/1.0 503 ") > 0, "no RTSP 503");
    assert!(count("HTTP/1.1 503 ") > 0, "no HTTP 503");
    let (open, _) = still_open(&mut idle, Duration::from_secs(6)).await;
    assert_eq!(
        open, 0,
        "idle connections still open after the auth timeout"
    );

    // The reader that played through it all decoded every frame without an error.
    assert_eq!(reader.await.unwrap(), 400);
    // New readers and API clients get in again.
    assert_eq!(ffprobe_codecs(&url).await, ["h264", "pcm_alaw"]);
    let mut api = TcpStream::connect(served.http).await.unwrap();
    api.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dmlld2VyOnMzY3JldA==\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    api.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200 "), "{body}");
    let refused: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("camgate_connections_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let (rss1, _) = served.memory_kib();
    eprintln!(
        "fds: {fds0} before, {fds_flood} during, {fds_peak} at peak, {} after; RSS {rss0} KiB before, peak {hwm} KiB, {rss1} KiB after; {refused} refused",
        served.fds()
    );
    assert!(refused >= 1800, "{refused} refused");
    assert!(hwm - rss0 < 96 * 1024, "memory grew by {} KiB", hwm - rss0);
    assert!(!served.log().contains("panicked"), "{}", served.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tears_the_camera_down_and_closes_readers_cleanly() {
    let cam = camera().await;
    let mut served = serve_process(&cam.info().url, "", None);
    let url = format!("rtsp://{}/cam", served.rtsp);
    let mut reader = RawRtsp::connect(served.rtsp).await;
    let d = reader.request("DESCRIBE", &url, &[]).await;
    assert_eq!(d.status, 401);
    reader
        .extra
        .push("Authorization: Basic dmlld2VyOnMzY3JldA==".into());
    reader.play_tcp(&url).await;
    let camera_counters = cam.server().counters().clone();
    let playing = || {
        camera_counters
            .playing
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(wait_until(Duration::from_secs(5), || playing() == 1).await);
    tokio::time::sleep(Duration::from_millis(500)).await;

    served.signal("TERM");
    // The reader gets whole interleaved frames, then a FIN (read returns 0, not a reset).
    let mut got = reader.take_buffered();
    let mut buf = vec![0u8; 65536];
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(6), reader.sock.read(&mut buf)).await {
            Ok(Ok(0)) => break "fin".to_string(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break format!("error {e}"),
            Err(_) => break "still open".to_string(),
        }
    };
    assert_eq!(end, "fin");
    let mut pos = 0;
    while pos < got.len() {
        assert_eq!(got[pos], b'$', "not an interleaved frame at {pos}");
        assert!(pos + 4 <= got.len(), "a cut frame header at the end");
        pos += 4 + u16::from_be_bytes([got[pos + 2], got[pos + 3]]) as usize;
    }
    assert_eq!(pos, got.len(), "the last frame was cut");
    let status = served
        .wait(Duration::from_secs(8))
        .expect("camgate did not exit");
    assert!(
        status.success(),
        "camgate exited with {status}: {}",
        served.log()
    );
    let teardowns = camera_counters
        .teardowns
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(teardowns, 1, "the camera saw no TEARDOWN: {}", served.log());
    assert!(
        served.log().contains("SIGTERM: shutting down"),
        "{}",
        served.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_leaves_the_server_running() {
    let cam = camera().await;
    let mut served = serve_process(&cam.info().url, "", None);
    served.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "SIGHUP killed camgate"
    );
    let url = format!("rtsp://viewer:s3cret@{}/cam", served.rtsp);
    assert!(ffmpeg_decode(&url, "tcp", 10).await >= 10);
    assert!(served.log().contains("SIGHUP"), "{}", served.log());
    served.signal("INT");
    let status = served
        .wait(Duration::from_secs(8))
        .expect("camgate did not exit");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_http_login_is_logged_without_the_password() {
    let cam = camera().await;
    let served = serve_process(&cam.info().url, "", None);
    let mut h = connect_from("127.0.0.7", served.http).await.unwrap();
    // mallory:hunter2
    h.write_all(b"GET /api/streams HTTP/1.1\r\nHost: x\r\nAuthorization: Basic bWFsbG9yeTpodW50ZXIy\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    h.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 401 "), "{resp}");
    assert!(
        wait_until(Duration::from_secs(2), || served.log().contains("mallory")).await,
        "{}",
        served.log()
    );
    let log = served.log();
    let line = log.lines().find(|l| l.contains("mallory")).unwrap();
    assert!(
        line.contains("HTTP") && line.contains("127.0.0.7"),
        "{line}"
    );
    assert!(!log.contains("hunter2"), "{log}");
}
