//! End to end: simulated cameras pulled over RTSP by camgate and read back by real peers
//! (ffmpeg, ffprobe, GStreamer), plus faults and abuse of the RTSP server.

mod common;

use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

use common::*;
use futures_util::future::join_all;

const DEMO: [(&str, &str); 4] = [
    ("demo", "test://demo?video=h264&audio=pcma"),
    ("demo-aac", "test://demo-aac?video=h264&audio=aac"),
    ("demo-h265", "test://demo-h265?video=h265&audio=pcmu"),
    ("demo-jpeg", "test://demo-jpeg?video=jpeg&audio=none"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_every_demo_stream_over_tcp() {
    let s = start(&DEMO, &[]).await;
    let counts = join_all(DEMO.iter().map(|(n, _)| {
        let url = s.url(n);
        async move { ffmpeg_decode(&url, "tcp", 100).await }
    }))
    .await;
    for ((n, _), c) in DEMO.iter().zip(counts) {
        assert!(c >= 100, "{n}: only {c} frames decoded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_every_demo_stream_over_udp() {
    let s = start(&DEMO, &[]).await;
    let counts = join_all(DEMO.iter().map(|(n, _)| {
        let url = s.url(n);
        async move { ffmpeg_decode(&url, "udp", 100).await }
    }))
    .await;
    for ((n, _), c) in DEMO.iter().zip(counts) {
        assert!(c >= 100, "{n}: only {c} frames decoded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_sees_each_demo_streams_codecs() {
    let s = start(&DEMO, &[]).await;
    let want = [
        vec!["h264", "pcm_alaw"],
        vec!["h264", "aac"],
        vec!["hevc", "pcm_mulaw"],
        vec!["mjpeg"],
    ];
    for ((n, _), want) in DEMO.iter().zip(want) {
        assert_eq!(ffprobe_codecs(&s.url(n)).await, want, "{n}");
    }
}

/// Decodes video with GStreamer's rtspsrc until its sink has `buffers` decoded frames (or an
/// error, or 40 s); returns the frames counted, GStreamer's error lines and the last lines it
/// printed (other than per-frame ones), for the failure message. Audio, where the
/// stream has it, goes to a sink of its own: an unlinked audio pad fails the pipeline with
/// "not-linked", and a sink that ends early makes rtspsrc end the video too. The video sink
/// reports every frame (`-v`, `silent=false`), so the count is the decoder's output.
///
/// gst-launch links rtspsrc's pads to the two branches when they appear ("delayed linking").
/// Now and then it gives up on the video branch ("Delayed linking failed ... to some pad of
/// GstDecodeBin") and the pipeline runs on without a decoder while the stream keeps coming:
/// a race inside the launcher, not in what the server sent. Such a run is started again, at
/// most twice; every other outcome counts.
async fn gst_decode(url: &str, transport: &str, buffers: usize) -> (usize, String, String) {
    let mut attempt = 1;
    loop {
        match gst_decode_once(url, transport, buffers).await {
            GstRun::LinkRace if attempt < 3 => {
                eprintln!("gst-launch failed to link rtspsrc to its branches; running it again");
                attempt += 1;
            }
            GstRun::LinkRace => {
                return (
                    0,
                    "gst-launch failed to link rtspsrc's pads three times\n".into(),
                    String::new(),
                );
            }
            GstRun::Done {
                frames,
                errors,
                tail,
            } => return (frames, errors, tail),
        }
    }
}

/// How one gst-launch run ended.
enum GstRun {
    /// gst-launch could not link the pipeline before any frame was decoded.
    LinkRace,
    Done {
        frames: usize,
        errors: String,
        tail: String,
    },
}

async fn gst_decode_once(url: &str, transport: &str, buffers: usize) -> GstRun {
    let pipeline = format!(
        "rtspsrc name=src location={url} protocols={transport} latency=0 \
         src. ! application/x-rtp,media=video ! decodebin ! video/x-raw ! fakesink name=v silent=false sync=false \
         src. ! application/x-rtp,media=audio ! fakesink sync=false"
    );
    let args: Vec<String> = std::iter::once("-v".to_string())
        .chain(pipeline.split_whitespace().map(str::to_string))
        .collect();
    tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut child = std::process::Command::new("gst-launch-1.0")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gst-launch-1.0: run scripts/setup to install the test peers");
        let stdout = child.stdout.take().expect("stdout");
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut frames = 0;
        let mut errors = String::new();
        let mut link_race = false;
        let mut tail = std::collections::VecDeque::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("(v:sink)") && line.contains("last-message = chain") {
                frames += 1;
            }
            if !line.contains("last-message") && !line.contains(": stats = ") {
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line.chars().take(200).collect::<String>());
            }
            if line.contains("ERROR") {
                errors.push_str(&line);
                errors.push('\n');
            }
            // "failed delayed linking some pad of GstRTSPSrc named src to some pad of
            // GstDecodeBin named decodebin0": the video branch stays unlinked.
            if line.contains("failed delayed linking")
                && line.contains("GstDecodeBin")
                && frames == 0
            {
                link_race = true;
                break;
            }
            if frames >= buffers || !errors.is_empty() || Instant::now() > deadline {
                break;
            }
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("gst-launch-1.0 output");
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if line.contains("ERROR") {
                errors.push_str(line);
                errors.push('\n');
            }
        }
        if link_race && errors.is_empty() {
            GstRun::LinkRace
        } else {
            let tail = Vec::from(tail).join("\n");
            GstRun::Done {
                frames,
                errors,
                tail,
            }
        }
    })
    .await
    .expect("gst-launch thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_rtspsrc_decodes_h264_and_h265_over_tcp_and_udp() {
    let s = start(&DEMO[..3], &[]).await;
    for (n, _) in &DEMO[..3] {
        for transport in ["tcp", "udp"] {
            let (frames, errors, tail) = gst_decode(&s.url(n), transport, 100).await;
            assert!(
                errors.is_empty(),
                "GStreamer errors on {n} over {transport}: {errors}"
            );
            assert!(
                frames >= 100,
                "GStreamer decoded only {frames} frames of {n} over {transport}; its last \
                 lines:\n{tail}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_readers_at_once_all_decode_over_one_camera_connection() {
    let s = start(&DEMO[..1], &[]).await;
    let url = s.url("demo");
    let counts = join_all((0..20).map(|i| {
        let url = url.clone();
        async move { ffmpeg_decode(&url, if i % 2 == 0 { "tcp" } else { "udp" }, 100).await }
    }))
    .await;
    assert!(counts.iter().all(|c| *c >= 100), "{counts:?}");
    // One camera connection served them all.
    assert_eq!(
        s.cams[0]
            .server()
            .counters()
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let stats = s.running.hub.get("demo").unwrap().stats();
    assert_eq!(stats.reconnects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_resume_after_the_camera_drops_mid_stream() {
    let s = start(&DEMO[..1], &[]).await;
    let url = s.url("demo");
    let reader = tokio::spawn(async move { ffmpeg_decode(&url, "tcp", 250).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.cams[0].drop_connections();
    let frames = tokio::time::timeout(Duration::from_secs(40), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(frames >= 250, "reader got {frames} frames");
    assert!(s.running.hub.get("demo").unwrap().stats().reconnects >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_stall_with_audio_flowing_triggers_a_reconnect() {
    let s = start_with(
        &DEMO[..1],
        &[],
        |o| o.video_stops_after = Some(Duration::from_secs(2)),
        |_| {},
    )
    .await;
    let stream = s.running.hub.get("demo").unwrap();
    let mut reader = stream.subscribe().await.unwrap();
    let t0 = Instant::now();
    while stream.stats().reconnects == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no reconnect: {:?}",
            stream.stats()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), reader.recv()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_does_not_slow_others_and_memory_stays_bounded() {
    // A 1 MiB reader budget: the stalled reader overflows within seconds.
    let s = start_with(&DEMO[..1], &[], |_| {}, |e| e.reader_queue_mb = Some(1.0)).await;
    let url = s.url("demo");
    // A client that plays and never reads.
    let mut stalled = RawRtsp::connect_small(s.running.rtsp.local_addr()).await;
    stalled.play_tcp(&url).await;
    let rss0 = rss_bytes();
    let frames = ffmpeg_decode(&url, "tcp", 300).await;
    assert!(frames >= 300);
    let stats = s.running.hub.get("demo").unwrap().stats();
    assert!(
        stats.drops > 0 || stats.overflows > 0,
        "the stalled reader never overflowed: {stats:?}"
    );
    let grown = rss_bytes().saturating_sub(rss0);
    assert!(
        grown < 64 << 20,
        "memory grew by {grown} bytes with a stalled reader"
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_readers_connection_closes_when_its_stream_closes() {
    // The connection of a TCP-only session has no timer: only its sender ending (here: the
    // stream closed) may close it.
    let s = start(&DEMO[..1], &[]).await;
    let url = s.url("demo");
    let mut c = RawRtsp::connect(s.running.rtsp.local_addr()).await;
    c.play_tcp(&url).await;
    let counters = s.running.rtsp.counters().clone();
    assert_eq!(
        counters
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.running.hub.get("demo").unwrap().close();
    // The client reads what was sent and then the end of the connection.
    let mut buf = vec![0u8; 64 * 1024];
    let eof = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match c.sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        eof.is_ok(),
        "the connection stayed open after its stream closed"
    );
    let t0 = Instant::now();
    while counters
        .connections
        .load(std::sync::atomic::Ordering::Relaxed)
        != 0
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the connection was not counted out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_connect_disconnect_cycles_leave_no_session_or_fd_behind() {
    let s = start(&DEMO[..1], &[]).await;
    let url = s.url("demo");
    let addr = s.running.rtsp.local_addr();
    // Warm up (first connection starts the camera).
    {
        let mut c = RawRtsp::connect(addr).await;
        c.play_tcp(&url).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds0 = open_fds();
    for i in 0..1000 {
        let mut c = RawRtsp::connect(addr).await;
        if i % 2 == 0 {
            let session = c.play_tcp(&url).await;
            if i % 4 == 0 {
                let h = format!("Session: {session}");
                assert_eq!(c.request("TEARDOWN", &url, &[h.as_str()]).await.status, 200);
            }
        } else {
            assert_eq!(c.request("OPTIONS", &url, &[]).await.status, 200);
        }
    }
    let counters = s.running.rtsp.counters().clone();
    let t0 = Instant::now();
    loop {
        let sessions = counters.sessions.load(std::sync::atomic::Ordering::Relaxed);
        let conns = counters
            .connections
            .load(std::sync::atomic::Ordering::Relaxed);
        if sessions == 0 && conns == 0 && open_fds() <= fds0 + 2 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "left behind: {sessions} sessions, {conns} connections, fds {} (was {fds0})",
            open_fds()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.running.hub.get("demo").unwrap().stats().readers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_requests_get_4xx_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(&DEMO[..1], &[]).await;
    let addr = s.running.rtsp.local_addr();
    let url = s.url("demo");
    let mut c = RawRtsp::connect(addr).await;
    assert_eq!(c.request("DESCRIBE", &s.url("nope"), &[]).await.status, 404);
    assert_eq!(
        c.request(
            "SETUP",
            &format!("{url}/trackID=9"),
            &["Transport: RTP/AVP/TCP;interleaved=0-1"]
        )
        .await
        .status,
        404
    );
    assert_eq!(
        c.request(
            "SETUP",
            &format!("{url}/trackID=0"),
            &["Transport: RAW/RAW/UDP;unicast"]
        )
        .await
        .status,
        461
    );
    assert_eq!(
        c.request("PLAY", &url, &["Session: 1234"]).await.status,
        454
    );
    assert_eq!(c.request("RECORD", &url, &[]).await.status, 501);
    for garbage in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"DESCRIBE\r\n\r\n",
        b"DESCRIBE rtsp://x/demo RTSP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[b'A'; 70_000][..],
    ] {
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        sock.write_all(garbage).await.unwrap();
        let mut buf = vec![0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("RTSP/1.0 400") || text.starts_with("RTSP/1.0 4"),
            "garbage {:?} got {text:?}",
            &garbage[..garbage.len().min(20)]
        );
    }
    // Still serving.
    assert!(ffmpeg_decode(&url, "tcp", 30).await >= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_must_authenticate_when_users_are_configured() {
    let s = start(&DEMO[..1], &[("viewer", "s3cret")]).await;
    let mut c = RawRtsp::connect(s.running.rtsp.local_addr()).await;
    let r = c.request("DESCRIBE", &s.url("demo"), &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Digest "));
    let addr = s.running.rtsp.local_addr();
    let good = format!("rtsp://viewer:s3cret@{addr}/demo");
    assert!(ffmpeg_decode(&good, "tcp", 30).await >= 30);
    let bad = format!("rtsp://viewer:wrong@{addr}/demo");
    let args: Vec<String> = [
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-i",
        &bad,
        "-frames:v",
        "1",
        "-f",
        "null",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_peer("ffmpeg", &args, Duration::from_secs(20)).await;
    assert!(!out.ok && out.stderr.contains("401"), "{}", out.stderr);
}

/// Digest as each peer speaks it: ffmpeg with `qop=auth` and a nonce count (and its request
/// line and Digest uri placing the track on either side of a query), GStreamer without qop, over
/// TCP and UDP, on a path with a query as Dahua URLs have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_and_gstreamer_log_in_with_digest_over_tcp_and_udp() {
    let s = start(&DEMO[..2], &[("viewer", "s3cret")]).await;
    let addr = s.running.rtsp.local_addr();
    for url in [
        format!("rtsp://viewer:s3cret@{addr}/demo"),
        format!("rtsp://viewer:s3cret@{addr}/demo-aac?channel=1&subtype=0"),
    ] {
        // UDP first, while the stream is cold: a reader of a warm stream gets the cached GOP
        // in a burst that overflows ffmpeg's default UDP receive buffer.
        for transport in ["udp", "tcp"] {
            assert!(ffmpeg_decode(&url, transport, 30).await >= 30, "{url}");
            let (frames, errors, tail) = gst_decode(&url, transport, 30).await;
            assert!(
                errors.is_empty(),
                "GStreamer on {url} over {transport}: {errors}"
            );
            assert!(
                frames >= 30,
                "GStreamer decoded {frames} frames of {url}:\n{tail}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_reader_of_a_warm_stream_gets_a_keyframe_at_once() {
    let s = start(&DEMO[..1], &[]).await;
    let stream = s.running.hub.get("demo").unwrap();
    let warm = stream.subscribe().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    let mut r = stream.subscribe().await.unwrap();
    let f = r.recv().await.unwrap();
    let waited = t0.elapsed();
    assert!(
        f.keyframe && f.track == 0,
        "first frame is not the video keyframe"
    );
    assert!(waited < Duration::from_millis(50), "waited {waited:?}");
    drop(warm);
}

/// Reads interleaved frames from a playing TCP session for `secs`; returns the RTCP packet
/// types seen on odd channels and the number of RTP packets on even ones.
/// One RTCP packet read: its channel, its type and, for a sender report, its packet count and
/// the number of RTP packets read on the channel below before it.
#[derive(Debug)]
struct RtcpSeen {
    channel: u8,
    kind: u8,
    sr_packets: Option<u32>,
    rtp_before: usize,
}

/// Reads interleaved data for `secs`: the RTCP packets, and the RTP packets as (channel,
/// sequence number).
async fn read_interleaved(c: &mut RawRtsp, secs: u64) -> (Vec<RtcpSeen>, Vec<(u8, u16)>) {
    use tokio::io::AsyncReadExt;
    let mut buf = c.take_buffered();
    let mut rtcp = Vec::new();
    let mut rtp = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut chunk = vec![0u8; 65536];
    loop {
        while buf.len() >= 4 && buf[0] == b'$' {
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            if buf[1] % 2 == 1 {
                let p = &buf[4..4 + len];
                rtcp.push(RtcpSeen {
                    channel: buf[1],
                    kind: p[1],
                    sr_packets: (p[1] == 200 && p.len() >= 28)
                        .then(|| u32::from_be_bytes([p[20], p[21], p[22], p[23]])),
                    rtp_before: rtp
                        .iter()
                        .filter(|r: &&(u8, u16)| r.0 == buf[1] - 1)
                        .count(),
                });
            } else {
                rtp.push((buf[1], u16::from_be_bytes([buf[6], buf[7]])));
            }
            buf.drain(..4 + len);
        }
        assert!(buf.is_empty() || buf[0] == b'$', "interleaved framing lost");
        if Instant::now() >= deadline {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), c.sock.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    (rtcp, rtp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_readers_get_rtcp_sender_reports() {
    let s = start(&DEMO[..1], &[]).await;
    let mut c = RawRtsp::connect(s.running.rtsp.local_addr()).await;
    c.play_tcp(&s.url("demo")).await;
    let (rtcp, rtp) = read_interleaved(&mut c, 7).await;
    assert!(rtp.len() > 100, "only {} RTP packets", rtp.len());
    let reports: Vec<&RtcpSeen> = rtcp.iter().filter(|r| r.kind == 200).collect();
    assert!(
        reports.iter().any(|r| r.channel == 1),
        "no video sender report among {rtcp:?}"
    );
    // Each report counts exactly the packets this reader got on its track before it.
    for r in reports {
        assert_eq!(
            r.sr_packets,
            Some(r.rtp_before as u32),
            "sender report on channel {}",
            r.channel
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_udp_sessions_expire_and_kept_alive_ones_do_not() {
    let s = start_short_timeout(&DEMO[..1]).await;
    let url = s.url("demo");
    let addr = s.running.rtsp.local_addr();
    let mut sockets = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rtp.local_addr().unwrap().port();
        let mut c = RawRtsp::connect(addr).await;
        assert_eq!(c.request("DESCRIBE", &url, &[]).await.status, 200);
        let t = format!("Transport: RTP/AVP;unicast;client_port={port}-{}", port + 1);
        let r = c
            .request("SETUP", &format!("{url}/trackID=0"), &[t.as_str()])
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let session = r
            .header("Session")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let h = format!("Session: {session}");
        assert_eq!(c.request("PLAY", &url, &[h.as_str()]).await.status, 200);
        sockets.push(rtp);
        clients.push((c, session));
    }
    let counters = s.running.rtsp.counters().clone();
    assert_eq!(
        counters.sessions.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // Client 0 sends GET_PARAMETER every second; client 1 says nothing.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(9) {
        let (c, session) = &mut clients[0];
        let h = format!("Session: {session}");
        assert_eq!(
            c.request("GET_PARAMETER", &url, &[h.as_str()]).await.status,
            200
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        counters.sessions.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The live one still receives media; the expired one does not.
    let mut buf = [0u8; 2048];
    let got = tokio::time::timeout(Duration::from_secs(2), sockets[0].recv(&mut buf)).await;
    assert!(got.is_ok(), "kept-alive session receives nothing");
    while tokio::time::timeout(Duration::from_millis(100), sockets[1].recv(&mut buf))
        .await
        .is_ok()
    {}
    let late = tokio::time::timeout(Duration::from_secs(1), sockets[1].recv(&mut buf)).await;
    assert!(late.is_err(), "expired session still receives media");
    let (c, session) = &mut clients[1];
    let h = format!("Session: {session}");
    assert_eq!(c.request("PLAY", &url, &[h.as_str()]).await.status, 454);
}

/// Power of `freq` in `samples` (Goertzel), normalised by the total energy.
fn tone_share(samples: &[i16], rate: f64, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let energy: f64 = samples.iter().map(|&x| f64::from(x).powi(2)).sum();
    power / (energy * samples.len() as f64 / 2.0).max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tone_survives_the_trip_through_camgate_for_g711_and_aac() {
    let s = start(&DEMO[..2], &[]).await;
    for (name, _) in &DEMO[..2] {
        let url = s.url(name);
        let args: Vec<String> = [
            "-hide_banner",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            &url,
            "-map",
            "0:a:0",
            "-t",
            "2",
            "-ac",
            "1",
            "-ar",
            "8000",
            "-f",
            "s16le",
            "-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("ffmpeg")
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pcm: Vec<i16> = out
            .stdout
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert!(pcm.len() >= 8000, "{name}: only {} samples", pcm.len());
        let rms =
            (pcm.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
        assert!(
            rms > 1000.0,
            "{name}: audio is nearly silent (rms {rms:.0})"
        );
        let share = tone_share(&pcm[800..], 8000.0, 1000.0);
        assert!(
            share > 0.5,
            "{name}: 1 kHz holds only {:.0} % of the energy",
            share * 100.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_with_a_query_is_served_with_its_tracks() {
    // Clients append track control URLs after the query (`/demo?x=1/trackID=0`), as with
    // Dahua's `cam/realmonitor?channel=1&subtype=0` URLs.
    let s = start(&DEMO[..1], &[]).await;
    let url = format!("{}?channel=1&subtype=0", s.url("demo"));
    let frames = ffmpeg_decode(&url, "tcp", 50).await;
    assert!(frames >= 50, "only {frames} frames decoded");
}

/// What one raw TCP session saw: the SSRC of each track from SETUP, RTP-Info's first sequence
/// number of each track from PLAY, and the RTP packets (channel, sequence number, SSRC) read.
struct TcpSession {
    ssrc: Vec<u32>,
    info_seq: Vec<u16>,
    packets: Vec<(u8, u16, u32)>,
    /// 200 replies to the GET_PARAMETER keep-alives sent while playing.
    replies: usize,
}

/// Plays every track of `url` over TCP on channels `base + 2 × track` and reads for `secs`;
/// with `keepalive`, sends GET_PARAMETER every 300 ms meanwhile.
async fn play_raw(
    c: &mut RawRtsp,
    url: &str,
    tracks: usize,
    base: u8,
    secs: u64,
    keepalive: bool,
) -> TcpSession {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (session, setups) = c.setup_tcp(url, tracks, base).await;
    let ssrc: Vec<u32> = setups
        .iter()
        .map(|r| {
            let tr = r.header("Transport").unwrap();
            let hex = tr.split("ssrc=").nth(1).expect("ssrc in Transport");
            u32::from_str_radix(hex.split(';').next().unwrap(), 16).unwrap()
        })
        .collect();
    let sh = format!("Session: {session}");
    let r = c.request("PLAY", url, &[sh.as_str()]).await;
    assert_eq!(r.status, 200, "PLAY: {r:?}");
    let mut info_seq = vec![0u16; tracks];
    for part in r.header("RTP-Info").expect("RTP-Info").split(',') {
        let track: usize = part
            .split("trackID=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let seq = part
            .split("seq=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        info_seq[track] = seq.parse().unwrap();
    }
    let mut buf = c.take_buffered();
    let mut packets = Vec::new();
    let mut replies = 0;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut next_keepalive = Instant::now();
    let mut chunk = vec![0u8; 65536];
    loop {
        loop {
            if buf.len() >= 4 && buf[0] == b'$' {
                let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                if buf.len() < 4 + len {
                    break;
                }
                if buf[1].is_multiple_of(2) && len >= 12 {
                    let seq = u16::from_be_bytes([buf[6], buf[7]]);
                    let ssrc = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]);
                    packets.push((buf[1], seq, ssrc));
                }
                buf.drain(..4 + len);
            } else if buf.starts_with(b"RTSP/1.0 ") {
                // A whole reply (no body), between two packets.
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    break;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                assert!(
                    head.starts_with("RTSP/1.0 200 "),
                    "keep-alive reply: {head}"
                );
                assert!(!head.contains('$'), "a packet inside a reply: {head:?}");
                replies += 1;
                buf.drain(..end + 4);
            } else {
                break;
            }
        }
        assert!(
            buf.len() < 9 || buf[0] == b'$' || buf.starts_with(b"RTSP/1.0 "),
            "interleaved framing lost"
        );
        if Instant::now() >= deadline {
            break;
        }
        if keepalive && Instant::now() >= next_keepalive {
            next_keepalive += Duration::from_millis(300);
            c.cseq += 1;
            let req = format!(
                "GET_PARAMETER {url} RTSP/1.0\r\nCSeq: {}\r\n{sh}\r\n\r\n",
                c.cseq
            );
            c.sock.write_all(req.as_bytes()).await.unwrap();
        }
        match tokio::time::timeout(Duration::from_millis(200), c.sock.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    TcpSession {
        ssrc,
        info_seq,
        packets,
        replies,
    }
}

/// Checks that each track's packets carry the SSRC from SETUP, start at RTP-Info's sequence
/// number and continue without a gap.
fn check_numbering(s: &TcpSession, base: u8, who: &str) {
    for (track, ssrc) in s.ssrc.iter().enumerate() {
        let ch = base + 2 * track as u8;
        let seqs: Vec<(u16, u32)> = s
            .packets
            .iter()
            .filter(|p| p.0 == ch)
            .map(|p| (p.1, p.2))
            .collect();
        assert!(
            seqs.len() > 20,
            "{who}: only {} packets on track {track}",
            seqs.len()
        );
        assert_eq!(
            seqs[0].0, s.info_seq[track],
            "{who}: track {track} starts off RTP-Info"
        );
        for w in seqs.windows(2) {
            assert_eq!(
                w[1].0,
                w[0].0.wrapping_add(1),
                "{who}: gap on track {track}"
            );
        }
        assert!(
            seqs.iter().all(|p| p.1 == *ssrc),
            "{who}: SSRC differs from SETUP's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_readers_on_the_usual_channels_share_the_streams_packets() {
    let s = start(&DEMO[..1], &[]).await;
    let addr = s.running.rtsp.local_addr();
    let url = s.url("demo");
    let (mut a, mut b, mut odd) = (
        RawRtsp::connect(addr).await,
        RawRtsp::connect(addr).await,
        RawRtsp::connect(addr).await,
    );
    let first = play_raw(&mut a, &url, 2, 0, 4, false);
    // The second reader joins while the first plays (and starts from the GOP cache).
    let second = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        play_raw(&mut b, &url, 2, 0, 3, false).await
    };
    // Channels other than 2 × track: this session numbers its own packets.
    let own = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        play_raw(&mut odd, &url, 2, 4, 3, false).await
    };
    let (first, second, own) = tokio::join!(first, second, own);
    check_numbering(&first, 0, "first");
    check_numbering(&second, 0, "second");
    check_numbering(&own, 4, "odd channels");
    assert_eq!(
        first.ssrc, second.ssrc,
        "usual channels share the stream's SSRCs"
    );
    assert_ne!(
        own.ssrc[0], first.ssrc[0],
        "odd channels get their own SSRC"
    );
    // Both shared readers saw some of the same packets (the stream's numbering).
    let later: std::collections::HashSet<(u8, u16)> =
        second.packets.iter().map(|p| (p.0, p.1)).collect();
    let common = first
        .packets
        .iter()
        .filter(|p| later.contains(&(p.0, p.1)))
        .count();
    assert!(common > 100, "only {common} packets in common");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_replies_reach_a_playing_tcp_reader_whole_between_its_packets() {
    // A playing TCP reader's socket is written by the stream itself while the reader keeps
    // up; a reply must take the socket back first and never cut a packet.
    let s = start(&DEMO[..1], &[]).await;
    let mut c = RawRtsp::connect(s.running.rtsp.local_addr()).await;
    let seen = play_raw(&mut c, &s.url("demo"), 2, 0, 4, true).await;
    check_numbering(&seen, 0, "keep-alive reader");
    assert!(
        seen.replies >= 10,
        "only {} keep-alive replies",
        seen.replies
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_on_one_connection_both_get_every_packet() {
    // Video and audio as two sessions on one connection, each on its usual channels: both
    // may lend the same socket to the stream, and neither may stall the other.
    let s = start(&DEMO[..1], &[]).await;
    let url = s.url("demo");
    let mut c = RawRtsp::connect(s.running.rtsp.local_addr()).await;
    for (track, ch) in [(0, 0), (1, 2)] {
        let t = format!("Transport: RTP/AVP/TCP;unicast;interleaved={ch}-{}", ch + 1);
        let r = c
            .request("SETUP", &format!("{url}/trackID={track}"), &[t.as_str()])
            .await;
        assert_eq!(r.status, 200, "SETUP: {r:?}");
        let session = r.header("Session").unwrap().split(';').next().unwrap();
        let sh = format!("Session: {session}");
        let r = c.request("PLAY", &url, &[sh.as_str()]).await;
        assert_eq!(r.status, 200, "PLAY: {r:?}");
    }
    let (_, rtp) = read_interleaved(&mut c, 4).await;
    for ch in [0, 2] {
        let seqs: Vec<u16> = rtp.iter().filter(|p| p.0 == ch).map(|p| p.1).collect();
        assert!(
            seqs.len() > 50,
            "only {} packets on channel {ch}",
            seqs.len()
        );
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1), "gap on channel {ch}");
        }
    }
}
