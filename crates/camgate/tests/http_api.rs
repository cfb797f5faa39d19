//! The HTTP API against live test sources: `/api/streams`, `/api/frame.jpeg`,
//! `/api/stream.mjpeg`, `/metrics`, errors and Basic auth. Requests are raw HTTP/1.1 over a
//! TCP socket, so that the tests see exactly what a client sees.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use camgate::http::{AppState, serve};
use futures_util::future::BoxFuture;
use media::hub::{Hub, StreamOptions};
use media::{Source, SourceError, SourceErrorKind, SourceSession};
use rtsp::server::ServerCounters;
use sim::camera::{AudioKind, TestSource, TestSourceConfig, VideoKind};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Setup

/// Tests that run ffmpeg take this lock, so that one of them can count ffmpeg processes.
static FFMPEG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Fails clearly without ffmpeg; holds the ffmpeg lock for the test.
async fn require_ffmpeg() -> tokio::sync::MutexGuard<'static, ()> {
    let ok = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "ffmpeg is required for the H.264/H.265 snapshot and MJPEG tests: install it (apt-get install ffmpeg)"
    );
    FFMPEG.lock().await
}

/// Live (or zombie) ffmpeg processes started by this test process.
fn ffmpeg_children() -> usize {
    let me = std::process::id();
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..."
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if ppid == Some(me.to_string().as_str()) && stat.contains("(ffmpeg)") {
            n += 1;
        }
    }
    n
}

async fn wait_ffmpeg_children(n: usize, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while ffmpeg_children() != n {
        assert!(
            Instant::now() < deadline,
            "{} ffmpeg processes, expected {n}: {why}",
            ffmpeg_children()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn test_source(video: VideoKind, audio: AudioKind) -> Arc<TestSource> {
    Arc::new(TestSource::new(TestSourceConfig {
        video,
        audio,
        ..TestSourceConfig::default()
    }))
}

/// A hub with `h264` (H.264 + PCMA), `h265` and `jpeg` test cameras, none started.
fn test_hub() -> Arc<Hub> {
    let hub = Hub::new();
    hub.add_stream(
        "h264",
        test_source(VideoKind::H264, AudioKind::Pcma),
        StreamOptions::default(),
    );
    hub.add_stream(
        "h265",
        test_source(VideoKind::H265, AudioKind::None),
        StreamOptions::default(),
    );
    hub.add_stream(
        "jpeg",
        test_source(VideoKind::Jpeg, AudioKind::None),
        StreamOptions::default(),
    );
    hub
}

async fn start(state: AppState) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, state).await.unwrap() });
    addr
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A response whose headers are read and whose body is still on the socket.
struct Open {
    status: u16,
    headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
}

async fn open(addr: SocketAddr, path: &str, auth: Option<(&str, &str)>) -> Open {
    use base64::Engine;
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((u, p)) = auth {
        let cred = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Authorization: Basic {cred}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(sock);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("header line");
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    Open {
        status,
        headers,
        reader,
        chunked,
    }
}

impl Open {
    /// The next piece of body; `None` at the end.
    async fn next_body(&mut self) -> Option<Vec<u8>> {
        if self.chunked {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                return None;
            }
            let mut data = vec![0; size + 2];
            self.reader.read_exact(&mut data).await.ok()?;
            data.truncate(size);
            Some(data)
        } else {
            let mut data = vec![0; 64 << 10];
            let n = self.reader.read(&mut data).await.ok()?;
            (n > 0).then(|| {
                data.truncate(n);
                data
            })
        }
    }

    async fn finish(mut self) -> Response {
        let mut body = Vec::new();
        while let Some(b) = self.next_body().await {
            body.extend_from_slice(&b);
        }
        Response {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

async fn get_auth(addr: SocketAddr, path: &str, auth: Option<(&str, &str)>) -> Response {
    let fetch = async { open(addr, path, auth).await.finish().await };
    tokio::time::timeout(Duration::from_secs(30), fetch)
        .await
        .unwrap_or_else(|_| panic!("GET {path} timed out"))
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    get_auth(addr, path, None).await
}

/// Decodes a JPEG and returns its size, or panics saying why it does not decode.
fn jpeg_size(data: &[u8]) -> (usize, usize) {
    let mut d = zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(data));
    let pixels = d
        .decode()
        .unwrap_or_else(|e| panic!("not a decodable JPEG ({e:?}), {} bytes", data.len()));
    let info = d.info().expect("decoded");
    assert!(!pixels.is_empty());
    (usize::from(info.width), usize::from(info.height))
}

/// An open MJPEG response and the bytes of its body not yet cut into parts.
struct Mjpeg {
    src: String,
    resp: Open,
    boundary: String,
    buf: Vec<u8>,
}

async fn mjpeg_open(addr: SocketAddr, src: &str) -> Mjpeg {
    let resp = open(addr, &format!("/api/stream.mjpeg?src={src}"), None).await;
    assert_eq!(resp.status, 200, "MJPEG of {src}");
    let ct = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let boundary = ct
        .strip_prefix("multipart/x-mixed-replace; boundary=")
        .unwrap_or_else(|| panic!("content type {ct:?}"))
        .to_string();
    Mjpeg {
        src: src.to_string(),
        resp,
        boundary,
        buf: Vec::new(),
    }
}

impl Mjpeg {
    /// Reads until `n` more JPEG parts arrived; checks each part's headers.
    async fn parts(&mut self, n: usize) -> Vec<Vec<u8>> {
        let src = self.src.clone();
        let mut parts = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Cut whole parts: --boundary CRLF headers CRLF CRLF jpeg CRLF.
            while parts.len() < n
                && let Some(head_end) = find(&self.buf, b"\r\n\r\n")
            {
                let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
                let mut lines = head.lines();
                let first = format!("--{}", self.boundary);
                assert_eq!(lines.next(), Some(first.as_str()), "part head {head:?}");
                let mut len = None;
                let mut ctype = None;
                for l in lines {
                    let (k, v) = l.split_once(':').unwrap();
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse::<usize>().ok(),
                        "content-type" => ctype = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
                assert_eq!(ctype.as_deref(), Some("image/jpeg"));
                let len = len.expect("each part has a Content-Length");
                let total = head_end + 4 + len + 2;
                if self.buf.len() < total {
                    break;
                }
                let jpeg = self.buf[head_end + 4..head_end + 4 + len].to_vec();
                assert_eq!(&self.buf[total - 2..total], b"\r\n");
                self.buf.drain(..total);
                parts.push(jpeg);
            }
            if parts.len() >= n {
                return parts;
            }
            assert!(
                Instant::now() < deadline,
                "only {} MJPEG parts of {src} in 30 s",
                parts.len()
            );
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.resp.next_body())
                .await
                .unwrap_or_else(|_| panic!("MJPEG stream of {src} stalled"))
                .unwrap_or_else(|| {
                    panic!("MJPEG stream of {src} ended after {} parts", parts.len())
                });
            self.buf.extend_from_slice(&chunk);
        }
    }
}

/// Connects, reads `n` parts, disconnects.
async fn mjpeg_parts(addr: SocketAddr, src: &str, n: usize) -> Vec<Vec<u8>> {
    mjpeg_open(addr, src).await.parts(n).await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of one sample line of `/metrics`.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no {series} in metrics:\n{text}"))
        .parse()
        .unwrap()
}

/// A camera that refuses every connection.
struct DeadSource;

impl Source for DeadSource {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        Box::pin(async {
            Err(SourceError::new(
                SourceErrorKind::Connect,
                "connection refused by 192.0.2.1:554",
            ))
        })
    }

    fn describe(&self) -> String {
        "rtsp://192.0.2.1/dead".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread")]
async fn streams_lists_every_stream_keyed_by_name_with_its_counters() {
    let hub = test_hub();
    let addr = start(AppState::new(hub.clone())).await;
    // Start one stream so that its counters move.
    let mut reader = hub.get("h264").unwrap().subscribe().await.unwrap();
    for _ in 0..10 {
        reader.recv().await.unwrap();
    }
    let resp = get(addr, "/api/streams").await;
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let v = resp.json();
    let obj = v.as_object().expect("an object keyed by stream name");
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["h264", "h265", "jpeg"]);
    for key in [
        "name",
        "state",
        "source",
        "codecs",
        "readers",
        "bitrate_bps",
        "frames_in",
        "bytes_in",
        "drops",
        "overflows",
        "reconnects",
        "gop_frames",
        "gop_bytes",
        "last_error",
    ] {
        assert!(
            obj["h264"].get(key).is_some(),
            "no {key} in {}",
            obj["h264"]
        );
    }
    let h264 = &obj["h264"];
    assert_eq!(h264["name"], "h264");
    assert_eq!(h264["state"], "streaming");
    assert_eq!(h264["codecs"], serde_json::json!(["h264", "pcma"]));
    assert_eq!(h264["readers"], 1);
    assert!(h264["frames_in"].as_u64().unwrap() >= 10);
    assert!(h264["gop_frames"].as_u64().unwrap() >= 1);
    assert_eq!(obj["h265"]["state"], "idle");
    assert_eq!(obj["h265"]["frames_in"], 0);

    let one = get(addr, "/api/streams?src=h264").await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["name"], "h264");

    let missing = get(addr, "/api/streams?src=nope").await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].as_str().unwrap().contains("nope"));
    drop(reader);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_of_h264_h265_and_jpeg_is_a_decodable_jpeg_and_cached_while_warm() {
    let _ffmpeg = require_ffmpeg().await;
    let addr = start(AppState::new(test_hub())).await;
    for src in ["h264", "h265", "jpeg"] {
        let resp = get(addr, &format!("/api/frame.jpeg?src={src}")).await;
        assert_eq!(resp.status, 200, "{src}: {}", resp.text());
        assert_eq!(resp.header("content-type"), Some("image/jpeg"));
        assert_eq!(jpeg_size(&resp.body), (640, 360), "{src}");

        // The stream is warm now: the next snapshot comes from the GOP (and JPEG) cache.
        let t = Instant::now();
        let again = get(addr, &format!("/api/frame.jpeg?src={src}")).await;
        let took = t.elapsed();
        assert_eq!(again.status, 200, "{src}: {}", again.text());
        assert_eq!(jpeg_size(&again.body), (640, 360));
        assert!(
            took < Duration::from_millis(200),
            "{src}: warm snapshot took {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mjpeg_stream_delivers_decodable_parts_for_h264_h265_and_jpeg() {
    let _ffmpeg = require_ffmpeg().await;
    let hub = test_hub();
    let addr = start(AppState::new(hub.clone())).await;
    for src in ["h264", "h265", "jpeg"] {
        let parts = mjpeg_parts(addr, src, 5).await;
        assert!(parts.len() >= 5);
        for p in &parts {
            assert_eq!(jpeg_size(p), (640, 360), "{src}");
        }
    }
    // The decoder is gone with its reader: the stream's readers drop back to zero.
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.get("h264").unwrap().stats().readers != 0 {
        assert!(
            Instant::now() < deadline,
            "the MJPEG decoder kept reading h264"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_mjpeg_readers_share_one_decoder() {
    let _ffmpeg = require_ffmpeg().await;
    let hub = test_hub();
    let addr = start(AppState::new(hub.clone())).await;
    let mut a = mjpeg_open(addr, "h264").await;
    a.parts(2).await;
    let mut b = mjpeg_open(addr, "h264").await;
    for p in b.parts(3).await.iter().chain(&a.parts(3).await) {
        assert_eq!(jpeg_size(p), (640, 360));
    }
    // Two MJPEG clients, one decoder: the hub sees a single reader.
    assert_eq!(hub.get("h264").unwrap().stats().readers, 1);
    drop(a);
    // The second client keeps receiving after the first left.
    assert_eq!(b.parts(3).await.len(), 3);
    assert_eq!(hub.get("h264").unwrap().stats().readers, 1);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.get("h264").unwrap().stats().readers != 0 {
        assert!(
            Instant::now() < deadline,
            "the decoder outlived its last client"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_uses_the_cached_keyframe_instead_of_waiting_for_the_next() {
    let _ffmpeg = require_ffmpeg().await;
    let hub = Hub::new();
    // A 10 s GOP: waiting for the next keyframe would take seconds.
    let src = Arc::new(TestSource::new(TestSourceConfig {
        gop: 250,
        audio: AudioKind::None,
        ..TestSourceConfig::default()
    }));
    hub.add_stream("slow-gop", src, StreamOptions::default());
    let addr = start(AppState::new(hub.clone())).await;
    let mut reader = hub.get("slow-gop").unwrap().subscribe().await.unwrap();
    for _ in 0..25 {
        reader.recv().await.unwrap();
    }
    let t = Instant::now();
    let resp = get(addr, "/api/frame.jpeg?src=slow-gop").await;
    let took = t.elapsed();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(jpeg_size(&resp.body), (640, 360));
    assert!(took < Duration::from_secs(3), "snapshot took {took:?}");
    drop(reader);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_follows_new_keyframes() {
    let _ffmpeg = require_ffmpeg().await;
    let hub = Hub::new();
    let src = Arc::new(TestSource::new(TestSourceConfig {
        gop: 10,
        audio: AudioKind::None,
        ..TestSourceConfig::default()
    }));
    hub.add_stream("fast-gop", src, StreamOptions::default());
    let addr = start(AppState::new(hub)).await;
    let first = get(addr, "/api/frame.jpeg?src=fast-gop").await;
    assert_eq!(first.status, 200);
    // Five GOPs later the cached JPEG must have been replaced.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = get(addr, "/api/frame.jpeg?src=fast-gop").await;
    assert_eq!(later.status, 200);
    assert_eq!(jpeg_size(&later.body), (640, 360));
    assert_ne!(
        first.body, later.body,
        "the snapshot did not move on to a newer keyframe"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_report_stream_and_rtsp_counters() {
    let hub = test_hub();
    let counters = Arc::new(ServerCounters::default());
    counters.connections.store(2, Ordering::Relaxed);
    counters.sessions.store(3, Ordering::Relaxed);
    counters.playing.store(1, Ordering::Relaxed);
    counters.rtp_packets.store(1000, Ordering::Relaxed);
    counters.rtp_bytes.store(1_234_567, Ordering::Relaxed);
    counters.errors.store(4, Ordering::Relaxed);
    let addr = start(AppState {
        rtsp: Some(counters),
        ..AppState::new(hub.clone())
    })
    .await;
    // jpeg streams with one reader; h264 and h265 stay idle.
    let mut reader = hub.get("jpeg").unwrap().subscribe().await.unwrap();
    for _ in 0..5 {
        reader.recv().await.unwrap();
    }
    let resp = get(addr, "/metrics").await;
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text();
    let stats = hub.get("jpeg").unwrap().stats();

    for (name, kind) in [
        ("camgate_stream_readers", "gauge"),
        ("camgate_stream_bytes_in_total", "counter"),
        ("camgate_stream_frames_in_total", "counter"),
        ("camgate_stream_reader_drops_total", "counter"),
        ("camgate_stream_reader_overflows_total", "counter"),
        ("camgate_stream_reconnects_total", "counter"),
        ("camgate_stream_bitrate_bps", "gauge"),
        ("camgate_stream_up", "gauge"),
        ("camgate_stream_gop_bytes", "gauge"),
        ("camgate_rtsp_connections", "gauge"),
        ("camgate_rtsp_sessions", "gauge"),
        ("camgate_rtsp_playing", "gauge"),
        ("camgate_rtsp_rtp_packets_total", "counter"),
        ("camgate_rtsp_rtp_bytes_total", "counter"),
        ("camgate_rtsp_errors_total", "counter"),
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "no TYPE {kind} for {name}"
        );
    }
    assert_eq!(metric(&text, "camgate_stream_up{stream=\"jpeg\"}"), 1);
    assert_eq!(metric(&text, "camgate_stream_up{stream=\"h264\"}"), 0);
    assert_eq!(metric(&text, "camgate_stream_readers{stream=\"jpeg\"}"), 1);
    assert_eq!(metric(&text, "camgate_stream_readers{stream=\"h265\"}"), 0);
    assert_eq!(
        metric(&text, "camgate_stream_frames_in_total{stream=\"h264\"}"),
        0
    );
    let frames = metric(&text, "camgate_stream_frames_in_total{stream=\"jpeg\"}");
    assert!(
        frames >= 5 && frames <= stats.frames_in,
        "{frames} vs {}",
        stats.frames_in
    );
    let bytes = metric(&text, "camgate_stream_bytes_in_total{stream=\"jpeg\"}");
    assert!(bytes > 5 * 1000 && bytes <= stats.bytes_in);
    assert!(metric(&text, "camgate_stream_gop_bytes{stream=\"jpeg\"}") > 1000);
    assert_eq!(
        metric(&text, "camgate_stream_reconnects_total{stream=\"jpeg\"}"),
        0
    );
    assert_eq!(metric(&text, "camgate_rtsp_connections"), 2);
    assert_eq!(metric(&text, "camgate_rtsp_sessions"), 3);
    assert_eq!(metric(&text, "camgate_rtsp_playing"), 1);
    assert_eq!(metric(&text, "camgate_rtsp_rtp_packets_total"), 1000);
    assert_eq!(metric(&text, "camgate_rtsp_rtp_bytes_total"), 1_234_567);
    assert_eq!(metric(&text, "camgate_rtsp_errors_total"), 4);
    drop(reader);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_400_and_unknown_things_404_with_json_errors() {
    let addr = start(AppState::new(test_hub())).await;
    for (path, status) in [
        ("/api/frame.jpeg", 400),
        ("/api/frame.jpeg?src=", 400),
        ("/api/frame.jpeg?src=%zz", 400),
        ("/api/frame.jpeg?src=%ff%fe", 400),
        ("/api/stream.mjpeg", 400),
        ("/api/stream.mjpeg?src=a&src=b", 400),
        ("/api/streams?src=", 400),
        ("/api/frame.jpeg?src=nope", 404),
        ("/api/stream.mjpeg?src=nope", 404),
        ("/api/nothing", 404),
        ("/", 404),
    ] {
        let resp = get(addr, path).await;
        assert_eq!(resp.status, status, "{path}: {}", resp.text());
        let err = resp.json()["error"].as_str().map(str::to_string);
        assert!(err.is_some_and(|e| !e.is_empty()), "{path}: no JSON error");
    }
    // Garbage on the socket is answered (400 from hyper) and the server keeps serving.
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut buf)).await;
    assert_eq!(get(addr, "/api/streams").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_of_a_dead_camera_is_503_with_the_reason() {
    let hub = Hub::new();
    hub.add_stream(
        "dead",
        Arc::new(DeadSource),
        StreamOptions {
            start_timeout: Duration::from_secs(2),
            ..StreamOptions::default()
        },
    );
    let addr = start(AppState::new(hub)).await;
    let resp = get(addr, "/api/frame.jpeg?src=dead").await;
    assert_eq!(resp.status, 503, "{}", resp.text());
    let err = resp.json()["error"].as_str().unwrap().to_string();
    assert!(err.contains("connection refused"), "{err}");
    let resp = get(addr, "/api/stream.mjpeg?src=dead").await;
    assert_eq!(resp.status, 503, "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_ffmpeg_is_a_500_that_says_so_while_jpeg_cameras_still_work() {
    let addr = start(AppState {
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..AppState::new(test_hub())
    })
    .await;
    for path in ["/api/frame.jpeg?src=h264", "/api/stream.mjpeg?src=h265"] {
        let resp = get(addr, path).await;
        assert_eq!(resp.status, 500, "{path}");
        let err = resp.json()["error"].as_str().unwrap().to_string();
        assert!(err.contains("ffmpeg is needed"), "{err}");
    }
    let resp = get(addr, "/api/frame.jpeg?src=jpeg").await;
    assert_eq!(resp.status, 200);
    assert_eq!(jpeg_size(&resp.body), (640, 360));
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_is_required_when_users_are_configured() {
    let addr = start(AppState {
        users: vec![("viewer".into(), "s3cret".into())],
        ..AppState::new(test_hub())
    })
    .await;
    for path in [
        "/api/streams",
        "/metrics",
        "/api/frame.jpeg?src=jpeg",
        "/nothing",
    ] {
        let resp = get(addr, path).await;
        assert_eq!(resp.status, 401, "{path}");
        assert_eq!(
            resp.header("www-authenticate"),
            Some("Basic realm=\"camgate\"")
        );
        let wrong = get_auth(addr, path, Some(("viewer", "guess"))).await;
        assert_eq!(wrong.status, 401, "{path}");
    }
    let ok = get_auth(addr, "/api/streams", Some(("viewer", "s3cret"))).await;
    assert_eq!(ok.status, 200);
    assert!(ok.json().get("jpeg").is_some());
    let ok = get_auth(addr, "/metrics", Some(("viewer", "s3cret"))).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn mjpeg_decoders_are_killed_when_their_clients_leave() {
    let _ffmpeg = require_ffmpeg().await;
    wait_ffmpeg_children(0, "left over by an earlier test").await;
    let addr = start(AppState::new(test_hub())).await;
    let mut a = mjpeg_open(addr, "h264").await;
    a.parts(2).await;
    let mut a2 = mjpeg_open(addr, "h264").await;
    a2.parts(2).await;
    let mut b = mjpeg_open(addr, "h265").await;
    b.parts(2).await;
    assert_eq!(ffmpeg_children(), 2, "one decoder per stream");
    drop(a);
    a2.parts(2).await;
    assert_eq!(
        ffmpeg_children(),
        2,
        "the h264 decoder stays while a client is left"
    );
    drop(a2);
    wait_ffmpeg_children(1, "the h264 decoder outlived its clients").await;
    drop(b);
    wait_ffmpeg_children(0, "the h265 decoder outlived its client").await;
    // A snapshot's ffmpeg is gone with its answer.
    assert_eq!(get(addr, "/api/frame.jpeg?src=h265").await.status, 200);
    wait_ffmpeg_children(0, "a snapshot decoder lingered").await;
}
