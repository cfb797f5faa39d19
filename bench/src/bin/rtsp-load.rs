//! rtsp-load: opens N RTSP readers of one stream (TCP interleaved or UDP), depacketizes the
//! video of each and counts frames, bytes, RTP sequence gaps, frame (timestamp) gaps,
//! depacketize errors and the time from PLAY to the first complete keyframe. Prints one JSON
//! object with the totals.
//!
//! Credentials in the URL (`rtsp://user:pass@host/...`) are used to log in (Digest or Basic,
//! as the server asks); they are not sent in request URLs and not printed.
//!
//! `--sequential` runs the readers one after another, each until its first keyframe (the
//! warm-start latency measurement). `--record FILE` keeps the raw interleaved bytes of one TCP
//! reader (and the DESCRIBE SDP in FILE.sdp) for `limit-server`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use camgate_bench::auth::split_userinfo;
use camgate_bench::rtsp::{Client, first_video, host_port, join_url, parse_message};
use camgate_bench::stats::{percentile, self_cpu_seconds};
use clap::{Parser, ValueEnum};
use media::rtp::{Depacketizer, RtpPacket, SeqStatus, SeqTracker, depacketizer};
use media::sdp::codec_from_rtpmap;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;

/// Opens N RTSP readers of one stream and counts what they receive.
#[derive(Parser, Debug)]
#[command(name = "rtsp-load")]
struct Args {
    /// The stream, rtsp://[USER:PASS@]HOST:PORT/PATH (loopback only in the benchmark).
    #[arg(long)]
    url: String,
    /// Number of readers.
    #[arg(long, default_value_t = 1)]
    readers: usize,
    /// RTP over the RTSP connection (tcp) or over UDP.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
    /// Seconds each reader plays (from its PLAY); with --sequential, the per-reader timeout.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Milliseconds between the starts of successive readers (with --sequential: the mean
    /// pause between one reader's end and the next one's start, drawn uniformly from
    /// 0..2×ramp-ms so that readers land at every point of the GOP).
    #[arg(long, default_value_t = 0)]
    ramp_ms: u64,
    /// One reader at a time, each until its first complete keyframe.
    #[arg(long)]
    sequential: bool,
    /// Save the raw interleaved bytes of one TCP reader to FILE (and its SDP to FILE.sdp).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Also print each reader's counters.
    #[arg(long)]
    per_reader: bool,
    /// Write "ms_since_play rtp_ts keyframe" per frame of the first reader to FILE.
    #[arg(long)]
    dump_frames: Option<PathBuf>,
    /// SO_RCVBUF of each UDP socket, bytes (capped by net.core.rmem_max).
    #[arg(long, default_value_t = 4 << 20)]
    udp_rcvbuf: usize,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    Tcp,
    Udp,
}

/// What one reader saw.
#[derive(Debug, Default)]
struct ReaderStats {
    frames: u64,
    keyframes: u64,
    rtp_packets: u64,
    /// RTP header + payload bytes of the video track.
    rtp_bytes: u64,
    /// Bytes read from the socket(s) after PLAY (interleaved headers, RTCP included).
    wire_bytes: u64,
    seq_lost: u64,
    seq_gap_events: u64,
    late_packets: u64,
    bad_rtp: u64,
    other_packets: u64,
    depacketize_errors: u64,
    frame_ts: Vec<i64>,
    /// Arrival of each frame, ms since PLAY, and its keyframe flag.
    frame_at: Vec<(f32, bool)>,
    setup_ms: Option<f64>,
    first_keyframe_ms: Option<f64>,
    play_secs: f64,
    error: Option<String>,
}

/// Frame timestamp continuity of one reader.
#[derive(Debug, Default, PartialEq)]
struct FrameGaps {
    /// Frame-to-frame steps longer than 1.5 nominal intervals.
    gaps: u64,
    /// Frames those steps skipped (step / interval - 1, rounded).
    missing: u64,
    /// Steps that went backwards or stood still.
    backwards: u64,
    /// The nominal interval (median step), ticks.
    interval: i64,
}

fn frame_gaps(ts: &[i64]) -> FrameGaps {
    let mut steps: Vec<i64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    let backwards = steps.iter().filter(|d| **d <= 0).count() as u64;
    steps.retain(|d| *d > 0);
    if steps.is_empty() {
        return FrameGaps {
            backwards,
            ..FrameGaps::default()
        };
    }
    let mut sorted = steps.clone();
    sorted.sort_unstable();
    let interval = sorted[sorted.len() / 2];
    let mut g = FrameGaps {
        backwards,
        interval,
        ..FrameGaps::default()
    };
    for d in steps {
        if d * 2 > interval * 3 {
            g.gaps += 1;
            g.missing += ((d as f64 / interval as f64).round() as u64).saturating_sub(1);
        }
    }
    g
}

/// The first few irregular frame-to-frame steps: (frame index, step in ticks).
fn odd_steps(ts: &[i64], interval: i64) -> Vec<(usize, i64)> {
    ts.windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1] - w[0]))
        .filter(|(_, d)| *d <= 0 || *d * 2 > interval * 3)
        .take(10)
        .collect()
}

/// The video receiver of one reader.
struct Video {
    pt: u8,
    depkt: Box<dyn Depacketizer>,
    seq: SeqTracker,
    play_sent: Instant,
    stop_at_keyframe: bool,
    stats: ReaderStats,
}

impl Video {
    /// Handles one RTP packet; true when the reader is done (first keyframe in sequential mode).
    fn on_rtp(&mut self, data: Bytes) -> bool {
        let len = data.len() as u64;
        let pkt = match RtpPacket::parse(data) {
            Ok(p) => p,
            Err(_) => {
                self.stats.bad_rtp += 1;
                return false;
            }
        };
        if pkt.payload_type != self.pt {
            self.stats.other_packets += 1;
            return false;
        }
        self.stats.rtp_packets += 1;
        self.stats.rtp_bytes += len;
        match self.seq.check(pkt.sequence) {
            SeqStatus::Gap { lost, .. } => {
                self.stats.seq_lost += u64::from(lost);
                self.stats.seq_gap_events += 1;
            }
            SeqStatus::Behind { .. } => {
                self.stats.late_packets += 1;
                return false;
            }
            SeqStatus::First | SeqStatus::InOrder => {}
        }
        if self.depkt.push(&pkt).is_err() {
            self.stats.depacketize_errors += 1;
        }
        let mut done = false;
        while let Some(f) = self.depkt.pull() {
            self.stats.frames += 1;
            self.stats.frame_ts.push(f.ts);
            let at = self.play_sent.elapsed().as_secs_f32() * 1000.0;
            self.stats.frame_at.push((at, f.keyframe));
            if f.keyframe {
                self.stats.keyframes += 1;
                if self.stats.first_keyframe_ms.is_none() {
                    self.stats.first_keyframe_ms =
                        Some(self.play_sent.elapsed().as_secs_f64() * 1000.0);
                    done |= self.stop_at_keyframe;
                }
            }
        }
        done
    }
}

/// An even/odd pair of loopback UDP ports with large receive buffers.
fn bind_udp_pair(rcvbuf: usize) -> Result<(UdpSocket, UdpSocket), String> {
    for _ in 0..200 {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind UDP: {e}"))?;
        let port = a.local_addr().map_err(|e| e.to_string())?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        let Ok(b) = std::net::UdpSocket::bind(("127.0.0.1", port + 1)) else {
            continue;
        };
        let _ = socket2::SockRef::from(&a).set_recv_buffer_size(rcvbuf);
        for s in [&a, &b] {
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
        }
        let a = UdpSocket::from_std(a).map_err(|e| e.to_string())?;
        let b = UdpSocket::from_std(b).map_err(|e| e.to_string())?;
        return Ok((a, b));
    }
    Err("no free even/odd UDP port pair".into())
}

/// The `interleaved=a-b` channel of a Transport header.
fn interleaved_channel(transport: &str) -> Option<u8> {
    transport
        .split(';')
        .find_map(|p| p.trim().strip_prefix("interleaved="))
        .and_then(|v| v.split('-').next())
        .and_then(|c| c.trim().parse().ok())
}

async fn run_reader(args: Arc<Args>, stop_at_keyframe: bool) -> ReaderStats {
    let mut record = args.record.as_ref().map(|_| Vec::<u8>::new());
    let mut stats = ReaderStats::default();
    match play(&args, stop_at_keyframe, &mut record).await {
        Ok(s) => stats = s,
        Err(e) => stats.error = Some(e),
    }
    if let (Some(path), Some(bytes)) = (&args.record, record)
        && let Err(e) = std::fs::write(path, bytes)
    {
        stats.error = Some(format!("cannot write {}: {e}", path.display()));
    }
    stats
}

async fn play(
    args: &Args,
    stop_at_keyframe: bool,
    record: &mut Option<Vec<u8>>,
) -> Result<ReaderStats, String> {
    let t0 = Instant::now();
    let (url, creds) = split_userinfo(&args.url);
    let url = url.as_str();
    let mut c = Client::connect(&host_port(url)?).await?;
    if let Some(creds) = creds {
        c.set_credentials(creds);
    }
    c.request("OPTIONS", url, &[]).await?;
    let d = c
        .request("DESCRIBE", url, &[("Accept", "application/sdp".into())])
        .await?;
    let sdp = String::from_utf8_lossy(&d.body).into_owned();
    let base = d
        .header("content-base")
        .or(d.header("content-location"))
        .unwrap_or(url)
        .to_string();
    let v = first_video(&sdp).ok_or_else(|| format!("{url}: no video in the SDP:\n{sdp}"))?;
    let codec = codec_from_rtpmap(v.payload_type, v.rtpmap.as_deref(), v.fmtp.as_deref())
        .map_err(|e| format!("{url}: {e}"))?;
    let setup_url = join_url(&base, v.control.as_deref().unwrap_or("*"));
    let udp = match args.transport {
        Transport::Tcp => None,
        Transport::Udp => Some(bind_udp_pair(args.udp_rcvbuf)?),
    };
    let transport = match &udp {
        None => "RTP/AVP/TCP;unicast;interleaved=0-1".to_string(),
        Some((rtp, _)) => {
            let p = rtp.local_addr().map_err(|e| e.to_string())?.port();
            format!("RTP/AVP;unicast;client_port={p}-{}", p + 1)
        }
    };
    let s = c
        .request("SETUP", &setup_url, &[("Transport", transport)])
        .await?;
    let channel = match udp {
        None => s
            .header("transport")
            .and_then(interleaved_channel)
            .unwrap_or(0),
        Some(_) => 0,
    };
    // The aggregate URL: a session-level absolute control, else the base.
    let play_url = sdp
        .split("m=")
        .next()
        .and_then(|session| {
            session
                .lines()
                .find_map(|l| l.trim().strip_prefix("a=control:"))
        })
        .map(|c| join_url(&base, c.trim()))
        .unwrap_or_else(|| base.clone());
    let play_sent = Instant::now();
    c.request("PLAY", &play_url, &[("Range", "npt=0.000-".into())])
        .await?;
    let mut video = Video {
        pt: v.payload_type,
        depkt: depacketizer(&codec, 0),
        seq: SeqTracker::default(),
        play_sent,
        stop_at_keyframe,
        stats: ReaderStats {
            setup_ms: Some(play_sent.duration_since(t0).as_secs_f64() * 1000.0),
            ..ReaderStats::default()
        },
    };
    let deadline =
        tokio::time::Instant::from_std(play_sent + Duration::from_secs_f64(args.duration));
    let result = match &udp {
        None => read_tcp(&mut c, channel, &mut video, deadline, record).await,
        Some((rtp, _rtcp)) => read_udp(rtp, &mut video, deadline).await,
    };
    video.stats.play_secs = play_sent.elapsed().as_secs_f64();
    // Always tear down: gst-rtsp-server keeps UDP sessions after the connection closes.
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        c.send("TEARDOWN", &play_url, &[]),
    )
    .await;
    if let Some(r) = record.as_ref()
        && r.is_empty()
    {
        return Err("recorded nothing".into());
    }
    if let Some(path) = &args.record {
        let sdp_path = format!("{}.sdp", path.display());
        std::fs::write(&sdp_path, sdp.as_bytes()).map_err(|e| format!("{sdp_path}: {e}"))?;
    }
    let mut stats = video.stats;
    if let Err(e) = result {
        stats.error = Some(e);
    }
    Ok(stats)
}

async fn read_tcp(
    c: &mut Client,
    channel: u8,
    video: &mut Video,
    deadline: tokio::time::Instant,
    record: &mut Option<Vec<u8>>,
) -> Result<(), String> {
    const CHUNK: usize = 256 * 1024;
    let mut buf = std::mem::take(&mut c.buf);
    video.stats.wire_bytes += buf.len() as u64;
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        while buf.len() >= 4 {
            if buf[0] != b'$' {
                // An RTSP message in the data (a server request or a late response).
                match parse_message(&buf)? {
                    Some((_, used)) => {
                        buf.advance(used);
                        continue;
                    }
                    None => break,
                }
            }
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < 4 + len {
                break;
            }
            let msg = buf.split_to(4 + len).freeze();
            if let Some(r) = record.as_mut() {
                r.extend_from_slice(&msg);
            }
            if msg[1] == channel && video.on_rtp(msg.slice(4..)) {
                return Ok(());
            }
        }
        if buf.capacity() - buf.len() < CHUNK / 4 {
            buf.reserve(CHUNK);
        }
        tokio::select! {
            r = c.sock.read_buf(&mut buf) => match r {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => video.stats.wire_bytes += n as u64,
                Err(e) => return Err(format!("read: {e}")),
            },
            _ = &mut sleep => return Ok(()),
        }
    }
}

async fn read_udp(
    rtp: &UdpSocket,
    video: &mut Video,
    deadline: tokio::time::Instant,
) -> Result<(), String> {
    const CHUNK: usize = 256 * 1024;
    let mut buf = BytesMut::with_capacity(CHUNK);
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            r = rtp.readable() => r.map_err(|e| format!("UDP: {e}"))?,
            _ = &mut sleep => return Ok(()),
        }
        loop {
            if buf.capacity() - buf.len() < 2048 {
                buf.reserve(CHUNK);
            }
            match rtp.try_recv_buf(&mut buf) {
                Ok(n) => {
                    video.stats.wire_bytes += n as u64;
                    let pkt = buf.split().freeze();
                    if video.on_rtp(pkt) {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("UDP recv: {e}")),
            }
        }
    }
}

fn summary(args: &Args, results: &[ReaderStats], wall: f64, cpu: Option<f64>) -> Value {
    let ok: Vec<&ReaderStats> = results.iter().filter(|r| r.error.is_none()).collect();
    let sum = |f: fn(&ReaderStats) -> u64| results.iter().map(f).sum::<u64>();
    let mut errors: Vec<String> = Vec::new();
    for e in results.iter().filter_map(|r| r.error.clone()) {
        if !errors.contains(&e) && errors.len() < 5 {
            errors.push(e);
        }
    }
    let gaps: Vec<FrameGaps> = results.iter().map(|r| frame_gaps(&r.frame_ts)).collect();
    let mut kf: Vec<f64> = results.iter().filter_map(|r| r.first_keyframe_ms).collect();
    let mut setup: Vec<f64> = results.iter().filter_map(|r| r.setup_ms).collect();
    let frames: Vec<u64> = results.iter().map(|r| r.frames).collect();
    let rtp_bytes = sum(|r| r.rtp_bytes);
    let play_secs: f64 = results.iter().map(|r| r.play_secs).sum();
    let round = |v: Option<f64>| v.map(|x| (x * 10.0).round() / 10.0);
    let mut out = json!({
        "url": split_userinfo(&args.url).0,
        "transport": format!("{:?}", args.transport).to_lowercase(),
        "readers": args.readers,
        "sequential": args.sequential,
        "duration_s": args.duration,
        "wall_s": (wall * 100.0).round() / 100.0,
        "failed_readers": results.len() - ok.len(),
        "errors": errors,
        "frames": sum(|r| r.frames),
        "frames_min": frames.iter().min(),
        "frames_max": frames.iter().max(),
        "keyframes": sum(|r| r.keyframes),
        "rtp_packets": sum(|r| r.rtp_packets),
        "rtp_bytes": rtp_bytes,
        "wire_bytes": sum(|r| r.wire_bytes),
        "mbit_per_reader": if play_secs > 0.0 { (rtp_bytes as f64 * 8.0 / play_secs / 1e4).round() / 100.0 } else { 0.0 },
        "seq_lost": sum(|r| r.seq_lost),
        "seq_gap_events": sum(|r| r.seq_gap_events),
        "readers_with_seq_loss": results.iter().filter(|r| r.seq_lost > 0).count(),
        "late_packets": sum(|r| r.late_packets),
        "bad_rtp": sum(|r| r.bad_rtp),
        "other_packets": sum(|r| r.other_packets),
        "depacketize_errors": sum(|r| r.depacketize_errors),
        "frame_gaps": gaps.iter().map(|g| g.gaps).sum::<u64>(),
        "frames_missing": gaps.iter().map(|g| g.missing).sum::<u64>(),
        "frames_backwards": gaps.iter().map(|g| g.backwards).sum::<u64>(),
        "readers_with_frame_gaps": gaps.iter().filter(|g| g.gaps > 0).count(),
        "frame_interval_ticks": gaps.iter().map(|g| g.interval).max(),
        "readers_without_keyframe": results.iter().filter(|r| r.first_keyframe_ms.is_none()).count(),
        "first_keyframe_ms": {
            "min": round(kf.iter().copied().reduce(f64::min)),
            "p50": round(percentile(&mut kf, 50.0)),
            "p99": round(percentile(&mut kf, 99.0)),
            "max": round(kf.iter().copied().reduce(f64::max)),
        },
        "setup_ms": {
            "p50": round(percentile(&mut setup, 50.0)),
            "max": round(setup.iter().copied().reduce(f64::max)),
        },
        "client_cpu_s": cpu,
    });
    if args.per_reader {
        out["per_reader"] = results
            .iter()
            .zip(&gaps)
            .map(|(r, g)| {
                json!({
                    "frames": r.frames, "keyframes": r.keyframes, "rtp_bytes": r.rtp_bytes,
                    "seq_lost": r.seq_lost, "frame_gaps": g.gaps, "frames_missing": g.missing,
                    "frames_backwards": g.backwards, "odd_steps": odd_steps(&r.frame_ts, g.interval),
                    "depacketize_errors": r.depacketize_errors,
                    "first_keyframe_ms": round(r.first_keyframe_ms), "play_s": r.play_secs,
                    "error": r.error,
                })
            })
            .collect();
    }
    out
}

/// A small xorshift64 generator for the pauses between sequential readers.
struct Xorshift(u64);

impl Xorshift {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Xorshift(nanos | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn run(args: Arc<Args>) -> Vec<ReaderStats> {
    let ramp = Duration::from_millis(args.ramp_ms);
    if args.sequential {
        let mut out = Vec::with_capacity(args.readers);
        let mut rng = Xorshift::seeded();
        for i in 0..args.readers {
            if i > 0 {
                tokio::time::sleep(ramp.mul_f64(2.0 * rng.unit())).await;
            }
            out.push(run_reader(args.clone(), true).await);
        }
        return out;
    }
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(args.readers);
    for i in 0..args.readers {
        let args = args.clone();
        let at = start + ramp * i as u32;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            run_reader(args, false).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| ReaderStats {
            error: Some(format!("reader task failed: {e}")),
            ..ReaderStats::default()
        }));
    }
    out
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.record.is_some() && (args.readers != 1 || args.transport != Transport::Tcp) {
        eprintln!("rtsp-load: --record needs --readers 1 --transport tcp");
        return std::process::ExitCode::FAILURE;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtsp-load: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let args = Arc::new(args);
    let t0 = Instant::now();
    let cpu0 = self_cpu_seconds();
    let results = rt.block_on(run(args.clone()));
    let cpu = match (cpu0, self_cpu_seconds()) {
        (Some(a), Some(b)) => Some(((b - a) * 100.0).round() / 100.0),
        _ => None,
    };
    if let (Some(path), Some(r)) = (&args.dump_frames, results.first()) {
        let text: String = r
            .frame_ts
            .iter()
            .zip(&r.frame_at)
            .map(|(ts, (at, key))| format!("{at:.1} {ts} {}\n", u8::from(*key)))
            .collect();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("rtsp-load: {}: {e}", path.display());
        }
    }
    let out = summary(&args, &results, t0.elapsed().as_secs_f64(), cpu);
    println!("{out}");
    if results.iter().all(|r| r.error.is_some()) {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_gaps_count_skipped_frames() {
        let ts = [0, 3600, 7200, 14400, 18000, 28800, 28800];
        let g = frame_gaps(&ts);
        assert_eq!(g.interval, 3600);
        assert_eq!(g.gaps, 2);
        assert_eq!(g.missing, 1 + 2);
        assert_eq!(g.backwards, 1);
    }

    #[test]
    fn interleaved_channel_reads_first_number() {
        assert_eq!(
            interleaved_channel("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=1"),
            Some(2)
        );
        assert_eq!(interleaved_channel("RTP/AVP;unicast"), None);
    }
}
