//! Hub behaviour: on-demand lifecycle, reconnect, liveness, GOP cache, slow readers. The
//! lifecycle tests run on tokio's paused clock: no real sleeping, and times are exact.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use media::hub::{Hub, StreamOptions, StreamState};
use media::{
    Codec, Frame, G711Law, Source, SourceError, SourceErrorKind, SourceSession, TrackInfo,
};

/// A scripted camera: video (GOP of `gop` frames) + audio, with fault knobs.
#[derive(Default)]
struct Script {
    fail_first_dials: u32,
    frames_per_session: Option<u64>,
    video_stops_after: Option<u64>,
    gop: u64,
    frame_len: usize,
}

struct MockSource {
    script: Script,
    dials: AtomicU32,
    /// When each dial happened (tokio's clock).
    dial_times: Mutex<Vec<tokio::time::Instant>>,
    live_sessions: Arc<AtomicUsize>,
}

impl MockSource {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(MockSource {
            script,
            dials: AtomicU32::new(0),
            dial_times: Mutex::new(Vec::new()),
            live_sessions: Arc::new(AtomicUsize::new(0)),
        })
    }
}

struct MockSession {
    n: u64,
    gop: u64,
    frame_len: usize,
    limit: Option<u64>,
    video_stops_after: Option<u64>,
    live: Arc<AtomicUsize>,
    audio_next: bool,
}

impl Drop for MockSession {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn tracks() -> Vec<TrackInfo> {
    vec![
        TrackInfo::new(Codec::H264 {
            sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e]),
            pps: Bytes::from_static(&[0x68, 0xce]),
        }),
        TrackInfo::new(Codec::G711 {
            law: G711Law::A,
            rate: 8000,
            channels: 1,
        }),
    ]
}

impl Source for MockSource {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        let dial = self.dials.fetch_add(1, Ordering::SeqCst);
        self.dial_times
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        let s = &self.script;
        let fail = dial < s.fail_first_dials;
        let session = MockSession {
            n: 0,
            gop: s.gop.max(1),
            frame_len: s.frame_len.max(1),
            limit: s.frames_per_session,
            video_stops_after: s.video_stops_after,
            live: self.live_sessions.clone(),
            audio_next: false,
        };
        if !fail {
            self.live_sessions.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async move {
            if fail {
                std::mem::forget(session);
                return Err(SourceError::new(SourceErrorKind::Connect, "mock: refused"));
            }
            Ok(Box::new(session) as Box<dyn SourceSession>)
        })
    }

    fn describe(&self) -> String {
        "mock://camera".into()
    }
}

impl SourceSession for MockSession {
    fn tracks(&self) -> Vec<TrackInfo> {
        tracks()
    }

    fn next_frame(&mut self) -> BoxFuture<'_, Result<Frame, SourceError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if self.limit.is_some_and(|limit| self.n >= limit) {
                return Err(SourceError::new(SourceErrorKind::Ended, "mock: dropped"));
            }
            let video_on = self.video_stops_after.is_none_or(|s| self.n < s);
            self.audio_next = !self.audio_next;
            if self.audio_next || !video_on {
                return Ok(Frame::new(
                    1,
                    self.n as i64 * 160,
                    true,
                    Bytes::from(vec![0xd5; 160]),
                ));
            }
            let n = self.n;
            self.n += 1;
            let key = n.is_multiple_of(self.gop);
            Ok(Frame::new(
                0,
                n as i64 * 3600,
                key,
                avc_picture(key, n, self.frame_len),
            ))
        })
    }
}

/// A `len`-byte picture in the frame convention (one length-prefixed NAL unit, IDR or not).
fn avc_picture(key: bool, n: u64, len: usize) -> Bytes {
    let mut data = vec![(n % 251) as u8 | 1; len.max(6)];
    data[..4].copy_from_slice(&(len.max(6) as u32 - 4).to_be_bytes());
    data[4] = if key { 0x65 } else { 0x41 };
    Bytes::from(data)
}

fn fast_opts() -> StreamOptions {
    StreamOptions {
        idle_timeout: Duration::from_millis(200),
        start_timeout: Duration::from_secs(2),
        video_timeout: Duration::from_millis(300),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..StreamOptions::default()
    }
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 3 s");
}

#[tokio::test(start_paused = true)]
async fn source_starts_on_first_reader_and_stops_after_idle_timeout() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 10,
        ..Script::default()
    });
    let stream = hub.add_stream("cam", src.clone(), fast_opts());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        src.dials.load(Ordering::SeqCst),
        0,
        "on-demand stream dialled without readers"
    );
    let mut reader = stream.subscribe().await.unwrap();
    assert!(reader.recv().await.is_some());
    assert_eq!(stream.state(), StreamState::Streaming);
    drop(reader);
    wait_for(|| stream.state() == StreamState::Idle).await;
    assert_eq!(src.live_sessions.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn preload_starts_without_readers_and_retries_failed_first_dials() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 10,
        fail_first_dials: 3,
        ..Script::default()
    });
    let stream = hub.add_stream(
        "cam",
        src.clone(),
        StreamOptions {
            preload: true,
            ..fast_opts()
        },
    );
    wait_for(|| stream.state() == StreamState::Streaming).await;
    assert_eq!(src.dials.load(Ordering::SeqCst), 4);
    assert_eq!(stream.stats().reconnects, 0);
    assert!(stream.stats().last_error.is_none());
}

#[tokio::test(start_paused = true)]
async fn reader_resumes_after_source_drops_with_continuous_timestamps() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 5,
        frames_per_session: Some(20),
        ..Script::default()
    });
    let stream = hub.add_stream("cam", src.clone(), fast_opts());
    let mut reader = stream.subscribe().await.unwrap();
    let mut last_video_ts = None;
    let mut video = 0;
    while video < 50 {
        let f = tokio::time::timeout(Duration::from_secs(3), reader.recv())
            .await
            .unwrap()
            .unwrap();
        if f.track == 0 {
            if let Some(prev) = last_video_ts {
                assert!(
                    f.ts > prev,
                    "video timestamps went back: {prev} -> {}",
                    f.ts
                );
            }
            last_video_ts = Some(f.ts);
            video += 1;
        }
    }
    assert!(stream.stats().reconnects >= 2);
    assert!(src.dials.load(Ordering::SeqCst) >= 3);
}

#[tokio::test(start_paused = true)]
async fn video_silence_triggers_reconnect_even_while_audio_flows() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 5,
        video_stops_after: Some(10),
        ..Script::default()
    });
    let stream = hub.add_stream(
        "cam",
        src.clone(),
        StreamOptions {
            preload: true,
            ..fast_opts()
        },
    );
    wait_for(|| stream.stats().reconnects >= 1).await;
    let err = stream.stats().last_error;
    assert!(src.dials.load(Ordering::SeqCst) >= 2);
    let _ = err; // cleared by the successful reconnect; the dial count proves the watchdog fired
}

#[tokio::test(start_paused = true)]
async fn new_reader_starts_at_cached_keyframe_at_once() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 25,
        ..Script::default()
    });
    let stream = hub.add_stream(
        "cam",
        src,
        StreamOptions {
            preload: true,
            ..fast_opts()
        },
    );
    wait_for(|| stream.stats().gop_frames > 6).await;
    let t0 = std::time::Instant::now();
    let mut reader = stream.subscribe().await.unwrap();
    let first = reader.try_recv().expect("GOP frames queued at subscribe");
    assert!(t0.elapsed() < Duration::from_millis(50));
    assert_eq!(first.track, 0);
    assert!(first.keyframe);
    let mut n = 1;
    while reader.try_recv().is_some() {
        n += 1;
    }
    assert!(n > 6, "only {n} frames from the GOP cache");
}

#[tokio::test(start_paused = true)]
async fn stalled_reader_is_skipped_and_bounded_without_slowing_others() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 10,
        frame_len: 10_000,
        ..Script::default()
    });
    let opts = StreamOptions {
        reader_queue_bytes: 100_000,
        ..fast_opts()
    };
    let stream = hub.add_stream("cam", src, opts);
    let stalled = stream.subscribe().await.unwrap();
    let mut fast = stream.subscribe().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 120 {
        let f = tokio::time::timeout(Duration::from_secs(2), fast.recv())
            .await
            .unwrap()
            .unwrap();
        if f.track == 0 {
            got.push(f.ts);
        }
    }
    // The fast reader saw every video frame in order: no gaps of more than one frame period.
    for w in got.windows(2) {
        assert_eq!(w[1] - w[0], 3600, "fast reader lost a frame");
    }
    assert_eq!(fast.dropped(), 0);
    assert!(stalled.dropped() > 0, "stalled reader never dropped");
    let stats = stream.stats();
    assert!(stats.overflows >= 1);
    assert!(stats.drops >= stalled.dropped());
    // Bounded: the stalled queue never exceeds its budget.
    let mut stalled = stalled;
    let mut bytes = 0;
    let mut first = true;
    while let Some(f) = stalled.try_recv() {
        if first {
            assert!(
                f.keyframe || f.track == 1,
                "after a skip the reader resumes at a keyframe"
            );
            first = false;
        }
        bytes += f.data.len();
    }
    assert!(bytes <= 100_000, "stalled queue held {bytes} bytes");
}

#[tokio::test(start_paused = true)]
async fn describe_reports_why_a_source_is_unavailable() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        fail_first_dials: 100,
        ..Script::default()
    });
    let stream = hub.add_stream("cam", src, fast_opts());
    let err = stream.describe().await.unwrap_err();
    assert!(err.to_string().contains("mock: refused"), "{err}");
    assert!(matches!(
        hub.get("nope"),
        Err(media::hub::HubError::NotFound(_))
    ));
}

/// The gaps between successive dials of `src`.
fn dial_gaps(src: &MockSource) -> Vec<Duration> {
    let t = src.dial_times.lock().unwrap();
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn the_source_stops_one_idle_timeout_after_the_last_reader_leaves() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 10,
        ..Script::default()
    });
    let stream = hub.add_stream("cam", src.clone(), fast_opts());
    let mut reader = stream.subscribe().await.unwrap();
    assert!(reader.recv().await.is_some());
    drop(reader);
    // idle_timeout is 200 ms: still up just before, down just after.
    tokio::time::sleep(Duration::from_millis(190)).await;
    assert_eq!(stream.state(), StreamState::Streaming);
    assert_eq!(src.live_sessions.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(stream.state(), StreamState::Idle);
    assert_eq!(src.live_sessions.load(Ordering::SeqCst), 0);
    assert_eq!(
        stream.stats().reconnects,
        0,
        "an idle stop is not a reconnect"
    );
}

#[tokio::test(start_paused = true)]
async fn reconnect_delays_double_from_backoff_min_up_to_backoff_max() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 10,
        fail_first_dials: 7,
        ..Script::default()
    });
    let stream = hub.add_stream(
        "cam",
        src.clone(),
        StreamOptions {
            preload: true,
            ..fast_opts()
        },
    );
    wait_for(|| stream.state() == StreamState::Streaming).await;
    // backoff_min 10 ms, backoff_max 50 ms, each delay ±25 % and never over the max (plus up
    // to 1 ms: tokio's timers fire on whole milliseconds).
    let gaps = dial_gaps(&src);
    assert_eq!(gaps.len(), 7);
    for (gap, base) in gaps.iter().zip([10u64, 20, 40, 50, 50, 50, 50]) {
        let (lo, hi) = (base * 3 / 4, (base * 5 / 4).min(50));
        let ms = gap.as_secs_f64() * 1000.0;
        assert!(
            ms >= lo as f64 && ms <= hi as f64 + 1.0,
            "gap {ms} ms, expected {lo}..={hi} ms; all gaps {gaps:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_session_that_ran_long_enough_starts_the_backoff_over() {
    let hub = Hub::new();
    // Each session delivers 100 video frames (400 ms) and drops; healthy after 100 ms.
    let src = MockSource::new(Script {
        gop: 10,
        frames_per_session: Some(100),
        ..Script::default()
    });
    let stream = hub.add_stream(
        "cam",
        src.clone(),
        StreamOptions {
            preload: true,
            healthy_after: Duration::from_millis(100),
            ..fast_opts()
        },
    );
    wait_for(|| src.dials.load(Ordering::SeqCst) >= 6).await;
    // Every gap is one session plus a first delay (10 ms ± 25 %), never a grown one.
    for gap in dial_gaps(&src) {
        assert!(
            gap >= Duration::from_millis(400) && gap <= Duration::from_millis(420),
            "{:?}",
            dial_gaps(&src)
        );
    }
    drop(stream);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_camera_is_not_dialled_once_its_demand_is_gone() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        fail_first_dials: u32::MAX,
        ..Script::default()
    });
    let stream = hub.add_stream("cam", src.clone(), fast_opts());
    // The describe fails at the first refusal, saying why; its demand lasts idle_timeout
    // (200 ms), during which the stream keeps trying.
    assert!(stream.describe().await.is_err());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        src.dials.load(Ordering::SeqCst) > 1,
        "it kept trying while wanted"
    );
    // A backoff wait (at most 50 ms) ends early when demand is gone.
    tokio::time::sleep(Duration::from_millis(160)).await;
    assert_eq!(stream.state(), StreamState::Idle);
    let dials = src.dials.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(src.dials.load(Ordering::SeqCst), dials);
}

/// Reads what is left in a reader of a closed stream; fails unless it then ends.
async fn drains_then_ends(reader: &mut media::hub::Reader) {
    let mut n = 0;
    while tokio::time::timeout(Duration::from_secs(1), reader.recv())
        .await
        .unwrap()
        .is_some()
    {
        n += 1;
        assert!(n < 10_000);
    }
}

#[tokio::test(start_paused = true)]
async fn closing_the_hub_ends_readers() {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 5,
        ..Script::default()
    });
    let stream = hub.add_stream("cam", src, fast_opts());
    let mut reader = stream.subscribe().await.unwrap();
    hub.close();
    drains_then_ends(&mut reader).await;
    assert_eq!(stream.state(), StreamState::Closed);
}

struct PanickingSource(AtomicU32);

impl Source for PanickingSource {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n < 2 {
                panic!("parser bug on hostile input");
            }
            let live = Arc::new(AtomicUsize::new(1));
            Ok(Box::new(MockSession {
                n: 0,
                gop: 5,
                frame_len: 10,
                limit: None,
                video_stops_after: None,
                live,
                audio_next: false,
            }) as Box<dyn SourceSession>)
        })
    }

    fn describe(&self) -> String {
        "mock://panicking".into()
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_source_is_retried_like_a_failed_one() {
    let hub = Hub::new();
    let src = Arc::new(PanickingSource(AtomicU32::new(0)));
    let stream = hub.add_stream(
        "cam",
        src.clone(),
        StreamOptions {
            preload: true,
            ..fast_opts()
        },
    );
    wait_for(|| stream.state() == StreamState::Streaming).await;
    assert_eq!(src.0.load(Ordering::SeqCst), 3);
}

/// The owner's side of a socket lent in a test: one end of a socket pair, and what a send left
/// unsent.
struct TestOut {
    sock: std::os::unix::net::UnixStream,
    kept: Arc<std::sync::Mutex<Vec<u8>>>,
    wanted: Arc<std::sync::atomic::AtomicBool>,
}

impl media::hub::LeaseOut for TestOut {
    fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.sock)
    }
    fn keep_unsent(&mut self, rest: &[u8]) {
        self.kept.lock().unwrap().extend_from_slice(rest);
    }
    fn wanted(&self) -> bool {
        self.wanted.load(Ordering::SeqCst)
    }
}

/// A stream whose frames carry stream-wide packets, and a reader of it past its first keyframe
/// with nothing queued.
async fn lendable_reader(
    frame_len: usize,
) -> (Arc<Hub>, Arc<media::hub::Stream>, media::hub::Reader) {
    let hub = Hub::new();
    let src = MockSource::new(Script {
        gop: 10,
        frame_len,
        ..Script::default()
    });
    let stream = hub.add_stream("cam", src, fast_opts());
    stream.shared_rtp(|| {
        media::rtp::interleaved::SharedRtp::new(1400, |t| {
            (0..t.len()).map(|i| 96 + i as u8).collect()
        })
    });
    let mut reader = stream.subscribe().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), reader.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        first.wire().is_some(),
        "frames carry no stream-wide packets"
    );
    (hub, stream, reader)
}

/// Lends `out` for the video track (lending is refused while a frame is queued: drain and
/// retry). Returns the video frames drained meanwhile.
fn lend_video(
    stream: &media::hub::Stream,
    reader: &mut media::hub::Reader,
    make_out: impl Fn() -> TestOut,
) -> Vec<Arc<Frame>> {
    let ssrc = stream.shared_rtp(|| unreachable!()).ssrc(0);
    let mut drained = Vec::new();
    for _ in 0..1000 {
        while let Some(f) = reader.try_recv() {
            drained.push(f);
        }
        let next_seq = drained
            .iter()
            .rev()
            .find_map(|f| f.wire().filter(|w| w.channel == 0))
            .map_or(0, |w| w.first_seq.wrapping_add(w.packets as u16));
        let track = media::hub::LentTrack {
            track: 0,
            channel: 0,
            pt: 96,
            ssrc,
            clock_rate: 90_000,
            sent: media::rtp::interleaved::Sent {
                next_seq,
                ..Default::default()
            },
        };
        if reader.lend(media::hub::Lease::new(
            Box::new(make_out()),
            [Some(track), None],
        )) {
            return drained;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("the stream never took the lease");
}

/// Reads interleaved packets from `bytes`: (channel, sequence number, ssrc) of each.
fn interleaved_packets(bytes: &[u8]) -> Vec<(u8, u16, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        assert_eq!(bytes[at], b'$', "not interleaved framing at byte {at}");
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let p = &bytes[at + 4..at + 4 + len];
        out.push((
            bytes[at + 1],
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        ));
        at += 4 + len;
    }
    assert_eq!(at, bytes.len(), "a packet was cut");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lent_socket_gets_every_frame_from_the_stream_until_it_fills_up() {
    let (_hub, stream, mut reader) = lendable_reader(5_000).await;
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let wanted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    lend_video(&stream, &mut reader, || TestOut {
        sock: ours.try_clone().unwrap(),
        kept: kept.clone(),
        wanted: wanted.clone(),
    });
    // Nobody reads the peer: the stream writes until the socket is full, then gives the lease
    // back, with the rest of the frame it could not finish kept by the owner.
    let lease = loop {
        if let Some(l) = reader.take_returned() {
            break l;
        }
        assert!(
            reader.try_recv().is_none(),
            "a frame was queued while the socket was lent"
        );
        reader.wait().await;
    };
    assert!(!lease.is_lent());
    assert!(lease.error.is_none(), "{:?}", lease.error);
    let sent = lease.tracks[0].unwrap().sent;
    assert!(sent.packets > 100, "only {} packets went out", sent.packets);
    // What the socket holds plus what was kept is every video packet, in order, once; audio
    // (not lent) never went out.
    peer.set_nonblocking(true).unwrap();
    let mut bytes = Vec::new();
    let _ = std::io::Read::read_to_end(&mut peer, &mut bytes);
    bytes.extend_from_slice(&kept.lock().unwrap());
    let packets = interleaved_packets(&bytes);
    assert_eq!(packets.len() as u32, sent.packets);
    let ssrc = stream.shared_rtp(|| unreachable!()).ssrc(0);
    for w in packets.windows(2) {
        assert_eq!((w[0].0, w[0].2), (0, ssrc));
        assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence gap");
    }
    assert_eq!(packets.last().unwrap().1.wrapping_add(1), sent.next_seq);
    // From now on frames queue again, starting right after the last one sent.
    let next = loop {
        let f = tokio::time::timeout(Duration::from_secs(2), reader.recv())
            .await
            .unwrap()
            .unwrap();
        if f.track == 0 {
            break f;
        }
    };
    assert_eq!(next.wire().unwrap().first_seq, sent.next_seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_goes_back_on_recall_on_close_and_is_refused_while_wanted() {
    let (hub, stream, mut reader) = lendable_reader(100).await;
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let wanted = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let out = || TestOut {
        sock: ours.try_clone().unwrap(),
        kept: kept.clone(),
        wanted: wanted.clone(),
    };
    let track = media::hub::LentTrack {
        track: 0,
        channel: 0,
        pt: 96,
        ssrc: stream.shared_rtp(|| unreachable!()).ssrc(0),
        clock_rate: 90_000,
        sent: Default::default(),
    };
    while reader.try_recv().is_some() {}
    assert!(
        !reader.lend(media::hub::Lease::new(Box::new(out()), [Some(track), None])),
        "lent while another writer waits for the socket"
    );
    wanted.store(false, Ordering::SeqCst);
    lend_video(&stream, &mut reader, out);
    let mut buf = [0u8; 4];
    std::io::Read::read_exact(&mut peer, &mut buf).expect("the stream writes the lent socket");
    // A recall ends the loan at once: the stream stops writing, frames queue again.
    reader.handle().recall();
    let lease = reader.take_returned().expect("recall gives the lease back");
    assert!(!lease.is_lent());
    assert!(lease.tracks[0].unwrap().sent.packets > 0);
    peer.set_nonblocking(true).unwrap();
    let _ = std::io::Read::read_to_end(&mut peer, &mut Vec::new());
    tokio::time::timeout(Duration::from_secs(2), reader.recv())
        .await
        .unwrap()
        .expect("frames queue after a recall");
    let mut more = Vec::new();
    let _ = std::io::Read::read_to_end(&mut peer, &mut more);
    assert!(
        more.is_empty(),
        "{} bytes written after the recall",
        more.len()
    );
    peer.set_nonblocking(false).unwrap();
    // Closing the stream gives a lent socket back too, and the reader then ends.
    lend_video(&stream, &mut reader, out);
    hub.close();
    assert!(reader.take_returned().is_some(), "close kept the lease");
    drains_then_ends(&mut reader).await;
}
