//! limit-server: the floor that an RTSP fan-out server is compared against (TCP interleaved
//! only). It answers OPTIONS/DESCRIBE/SETUP/PLAY with canned responses and then does the least
//! a fan-out server can do: one task walks a pre-recorded interleaved byte stream (from
//! `rtsp-load --record`) in real time, paced by its RTP timestamps, and writes each 16 KiB
//! piece to every playing socket in turn. No per-reader state beyond the socket: no RTP
//! header rewriting, no queues, no RTCP, no timers per reader. A reader joins at the next
//! keyframe of the shared schedule, as with a live camera; the recording loops with its RTP
//! sequence numbers and timestamps continued.
//!
//! Prints one JSON line {"url": ..., "loop_seconds": ..., "loop_bytes": ...} once listening.

use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use camgate_bench::interleaved::{h264_payload_starts_keyframe, rtp_payload, rtp_seq_ts, split};
use camgate_bench::rtsp::parse_message;
use camgate_bench::splice::Pipe;
use clap::Parser;
use media::rtp::TimestampUnwrapper;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

/// Serves a recorded interleaved stream to every reader in fixed-size, real-time-paced writes.
#[derive(Parser, Debug)]
#[command(name = "limit-server")]
struct Args {
    /// The raw interleaved bytes recorded by `rtsp-load --record FILE`.
    #[arg(long)]
    recording: PathBuf,
    /// The SDP to answer DESCRIBE with (default: RECORDING.sdp).
    #[arg(long)]
    sdp: Option<PathBuf>,
    /// TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The mount path printed in the URL (any path is accepted).
    #[arg(long, default_value = "/limit")]
    path: String,
    /// Bytes per write (pieces also end where a GOP ends, so that readers can join there);
    /// 0 writes each frame (access unit) whole.
    #[arg(long, default_value_t = 16 * 1024)]
    write_size: usize,
    /// The video clock rate.
    #[arg(long, default_value_t = 90_000)]
    clock_rate: u32,
    /// Write each piece into a pipe once and move it to every reader with tee(2) and
    /// splice(2) instead of write(2): no per-reader copy (Linux).
    #[arg(long)]
    splice: bool,
}

/// One write: when it is due (from the start of the loop), its bytes, and whether a reader
/// may join there (it starts a GOP).
#[derive(Debug, PartialEq)]
struct Piece {
    at: Duration,
    range: Range<usize>,
    joinable: bool,
}

/// The recording, ready to loop.
struct Recording {
    /// RTP packets of channel 0, from the first keyframe to just before the last one.
    data: Bytes,
    /// Offset of every packet's RTP header in `data`.
    headers: Vec<usize>,
    pieces: Vec<Piece>,
    seq_span: u16,
    ts_span: u32,
    period: Duration,
}

impl Recording {
    /// The bytes of loop `k`: sequence numbers and timestamps moved on by `k` loops.
    fn loop_bytes(&self, k: u64) -> Bytes {
        if k == 0 {
            return self.data.clone();
        }
        let mut b = BytesMut::from(&self.data[..]);
        let dseq = self.seq_span.wrapping_mul(k as u16);
        let dts = self.ts_span.wrapping_mul(k as u32);
        for &h in &self.headers {
            let (seq, ts) = rtp_seq_ts(&b[h..]).expect("checked in prepare");
            b[h + 2..h + 4].copy_from_slice(&seq.wrapping_add(dseq).to_be_bytes());
            b[h + 4..h + 8].copy_from_slice(&ts.wrapping_add(dts).to_be_bytes());
        }
        b.freeze()
    }
}

/// Keeps the recording's RTP packets on channel 0 from its first keyframe to just before its
/// last (so that loops splice on a GOP boundary) and cuts them into timed pieces.
fn prepare(data: &[u8], args: &Args) -> Result<Recording, String> {
    let msgs: Vec<_> = split(data)
        .into_iter()
        .filter(|m| m.channel == 0 && rtp_seq_ts(m.packet(data)).is_some())
        .collect();
    let mut prev_marker = true;
    let mut keys = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let p = m.packet(data);
        if prev_marker && rtp_payload(p).is_some_and(h264_payload_starts_keyframe) {
            keys.push(i);
        }
        prev_marker = p[1] & 0x80 != 0;
    }
    if keys.len() < 2 {
        return Err("the recording needs at least two keyframes of RTP on channel 0".into());
    }
    let msgs = &msgs[keys[0]..keys[keys.len() - 1]];
    let keys: Vec<usize> = keys.iter().map(|k| k - keys[0]).collect();
    let mut out = BytesMut::new();
    let mut headers = Vec::with_capacity(msgs.len());
    // (end offset in `out`, due time in clock ticks) of every packet.
    let mut ends: Vec<(usize, i64)> = Vec::with_capacity(msgs.len());
    let mut starts = Vec::with_capacity(msgs.len());
    let mut unwrap = TimestampUnwrapper::default();
    let (seq0, ts0) = rtp_seq_ts(msgs[0].packet(data)).expect("filtered above");
    let base = unwrap.unwrap(ts0);
    let (mut last_ts, mut last_step) = (base, 0);
    for m in msgs {
        starts.push(out.len());
        headers.push(out.len() + 4);
        out.extend_from_slice(&data[m.range.clone()]);
        let (_, ts) = rtp_seq_ts(m.packet(data)).expect("filtered above");
        let t = unwrap.unwrap(ts);
        if t > last_ts {
            last_step = t - last_ts;
            last_ts = t;
        }
        ends.push((out.len(), last_ts - base));
    }
    let (last_seq, _) = rtp_seq_ts(msgs[msgs.len() - 1].packet(data)).expect("filtered above");
    let ts_span = last_ts - base + last_step.max(1);
    let rate = f64::from(args.clock_rate.max(1));
    let at = |ticks: i64| Duration::from_secs_f64(ticks.max(0) as f64 / rate);
    let mut pieces = Vec::new();
    let gop_starts: Vec<usize> = keys
        .iter()
        .filter(|&&k| k < starts.len())
        .map(|&k| starts[k])
        .collect();
    // Frame ends: after every packet with the marker bit.
    let frame_ends: Vec<usize> = msgs
        .iter()
        .zip(&ends)
        .filter(|(m, _)| m.packet(data)[1] & 0x80 != 0)
        .map(|(_, &(end, _))| end)
        .collect();
    let mut e = 0;
    let mut f = 0;
    for (g, &gop_start) in gop_starts.iter().enumerate() {
        let gop_end = gop_starts.get(g + 1).copied().unwrap_or(out.len());
        let mut pos = gop_start;
        while pos < gop_end {
            let end = if args.write_size == 0 {
                while f < frame_ends.len() && frame_ends[f] <= pos {
                    f += 1;
                }
                frame_ends.get(f).copied().unwrap_or(gop_end).min(gop_end)
            } else {
                (pos + args.write_size).min(gop_end)
            };
            // A write is due when the packet holding its last byte is.
            while ends[e].0 < end {
                e += 1;
            }
            pieces.push(Piece {
                at: at(ends[e].1),
                range: pos..end,
                joinable: pos == gop_start,
            });
            pos = end;
        }
    }
    Ok(Recording {
        data: out.freeze(),
        headers,
        pieces,
        seq_span: last_seq.wrapping_sub(seq0).wrapping_add(1),
        ts_span: ts_span as u32,
        period: at(ts_span),
    })
}

fn response(cseq: &str, status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n{headers}");
    if !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// Answers requests until PLAY; false if the client went away.
async fn handshake(sock: &mut TcpStream, sdp: &[u8]) -> bool {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        while let Ok(Some((req, used))) = parse_message(&buf) {
            buf.advance(used);
            let cseq = req.header("cseq").unwrap_or("0").to_string();
            let (reply, playing) = match req.method() {
                "OPTIONS" => (
                    response(
                        &cseq,
                        "200 OK",
                        "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n",
                        b"",
                    ),
                    false,
                ),
                "DESCRIBE" => {
                    let base = format!(
                        "Content-Base: {}/\r\nContent-Type: application/sdp\r\n",
                        req.url().trim_end_matches('/')
                    );
                    (response(&cseq, "200 OK", &base, sdp), false)
                }
                "SETUP" if req.header("transport").is_some_and(|t| t.contains("TCP")) => (
                    response(
                        &cseq,
                        "200 OK",
                        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1;timeout=60\r\n",
                        b"",
                    ),
                    false,
                ),
                "SETUP" => (response(&cseq, "461 Unsupported Transport", "", b""), false),
                "PLAY" => (
                    response(&cseq, "200 OK", "Session: 1\r\nRange: npt=0.000-\r\n", b""),
                    true,
                ),
                _ => (response(&cseq, "200 OK", "", b""), false),
            };
            if sock.write_all(&reply).await.is_err() {
                return false;
            }
            if playing {
                return true;
            }
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// Readers that finished PLAY and wait for the next keyframe.
type Pending = Arc<Mutex<Vec<OwnedWriteHalf>>>;

async fn serve(mut sock: TcpStream, sdp: Arc<Vec<u8>>, pending: Pending) {
    let _ = sock.set_nodelay(true);
    if !handshake(&mut sock, &sdp).await {
        return;
    }
    let (mut rd, wr) = sock.into_split();
    pending.lock().expect("pending readers").push(wr);
    // Whatever the client sends after PLAY (TEARDOWN, RTCP) is read and ignored.
    let mut b = vec![0u8; 4096];
    while matches!(rd.read(&mut b).await, Ok(n) if n > 0) {}
}

/// Writes all of `piece`; false if the reader is gone or stopped reading.
async fn write_piece(w: &mut OwnedWriteHalf, piece: &[u8]) -> bool {
    match w.try_write(piece) {
        Ok(n) if n == piece.len() => true,
        Ok(n) => write_rest(w, &piece[n..]).await,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => write_rest(w, piece).await,
        Err(_) => false,
    }
}

async fn write_rest(w: &mut OwnedWriteHalf, rest: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), w.write_all(rest)).await,
        Ok(Ok(()))
    )
}

/// The `--splice` state: the pipe each piece is written into once (and emptied after every
/// reader has its copy by reference), and the size of the readers' pipes.
struct Splicer {
    src: Pipe,
    devnull: std::fs::File,
    cap: usize,
}

impl Splicer {
    fn new(rec: &Recording) -> std::io::Result<Splicer> {
        let largest = rec.pieces.iter().map(|p| p.range.len()).max().unwrap_or(0);
        let cap = largest.next_power_of_two().max(64 * 1024);
        Ok(Splicer {
            src: Pipe::new(cap)?,
            devnull: std::fs::OpenOptions::new().write(true).open("/dev/null")?,
            cap,
        })
    }
}

/// A playing reader, with its pipe under `--splice`.
struct Reader {
    w: OwnedWriteHalf,
    pipe: Option<Pipe>,
}

/// Moves the piece in `src` to one reader by page reference (tee into the reader's pipe,
/// splice to its socket); false if the reader is gone or stopped reading.
async fn splice_piece(w: &OwnedWriteHalf, pipe: &mut Pipe, src: &Pipe) -> bool {
    let sock = w.as_ref();
    let fd = sock.as_raw_fd();
    if src.tee_into(pipe).is_err() {
        return false;
    }
    while pipe.len > 0 {
        match sock.try_io(tokio::io::Interest::WRITABLE, || pipe.splice_to(fd)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !matches!(
                    tokio::time::timeout(Duration::from_secs(2), sock.writable()).await,
                    Ok(Ok(()))
                ) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// The pipe under `--splice` failed where it cannot (it is sized for the largest piece).
fn splice_failed(e: std::io::Error) -> ! {
    eprintln!("limit-server: --splice: {e}");
    std::process::exit(1);
}

/// The one writer: walks the recording in real time, forever, writing each piece to every
/// playing reader (with `splice`: into one pipe, and from there to every reader); readers
/// join at GOP starts.
async fn broadcast(rec: Recording, pending: Pending, mut splice: Option<Splicer>) {
    let epoch = tokio::time::Instant::now();
    let mut active: Vec<Reader> = Vec::new();
    for k in 0u64.. {
        let bytes = rec.loop_bytes(k);
        let start = epoch + rec.period.mul_f64(k as f64);
        for p in &rec.pieces {
            tokio::time::sleep_until(start + p.at).await;
            if p.joinable {
                for w in pending.lock().expect("pending readers").drain(..) {
                    let pipe = match splice.as_ref().map(|s| Pipe::new(s.cap)).transpose() {
                        Ok(pipe) => pipe,
                        Err(e) => {
                            eprintln!("limit-server: reader pipe: {e}");
                            continue;
                        }
                    };
                    active.push(Reader { w, pipe });
                }
            }
            let piece = &bytes[p.range.clone()];
            if let Some(s) = &mut splice {
                s.src.fill(piece).unwrap_or_else(|e| splice_failed(e));
            }
            let mut i = 0;
            while i < active.len() {
                let r = &mut active[i];
                let ok = match (&mut r.pipe, &splice) {
                    (Some(pipe), Some(s)) => splice_piece(&r.w, pipe, &s.src).await,
                    _ => write_piece(&mut r.w, piece).await,
                };
                if ok {
                    i += 1;
                } else {
                    active.swap_remove(i);
                }
            }
            if let Some(s) = &mut splice {
                let devnull = s.devnull.as_raw_fd();
                s.src.drain(devnull).unwrap_or_else(|e| splice_failed(e));
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let fail = |msg: String| {
        eprintln!("limit-server: {msg}");
        std::process::ExitCode::FAILURE
    };
    let data = match std::fs::read(&args.recording) {
        Ok(d) => d,
        Err(e) => return fail(format!("{}: {e}", args.recording.display())),
    };
    let sdp_path = args
        .sdp
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.sdp", args.recording.display())));
    let sdp = match std::fs::read(&sdp_path) {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(format!("{}: {e}", sdp_path.display())),
    };
    let rec = match prepare(&data, &args) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", args.recording.display())),
    };
    let splice = match args.splice.then(|| Splicer::new(&rec)).transpose() {
        Ok(s) => s,
        Err(e) => return fail(format!("--splice: {e}")),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    rt.block_on(async move {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {}: {e}", args.listen)),
        };
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let path = if args.path.starts_with('/') {
            args.path.clone()
        } else {
            format!("/{}", args.path)
        };
        println!(
            "{}",
            serde_json::json!({
                "url": format!("rtsp://{addr}{path}"),
                "loop_seconds": rec.period.as_secs_f64(),
                "loop_bytes": rec.data.len(),
            })
        );
        let pending = Pending::default();
        tokio::spawn(broadcast(rec, pending.clone(), splice));
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(serve(sock, sdp.clone(), pending.clone()));
                }
                Err(e) => {
                    eprintln!("limit-server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![b'$', 0, 0, 0, 0x80, 96 | (u8::from(marker) << 7)];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(payload);
        let len = (p.len() - 4) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    fn recording() -> (Vec<u8>, Recording) {
        let mut data = Vec::new();
        data.extend(pkt(9, 0, true, &[0x41, 1])); // P before the first keyframe: cut
        data.extend(pkt(10, 1000, true, &[0x65, 1])); // IDR
        data.extend(pkt(11, 4600, true, &[0x41, 1])); // P
        data.extend(pkt(12, 8200, true, &[0x65, 1])); // IDR
        data.extend(pkt(13, 11800, true, &[0x41, 1])); // P
        data.extend(pkt(14, 15400, true, &[0x65, 1])); // last IDR: cut here
        data.extend(pkt(15, 19000, true, &[0x41, 1]));
        let args = Args::parse_from(["limit-server", "--recording", "x", "--write-size", "30"]);
        let rec = prepare(&data, &args).unwrap();
        (data, rec)
    }

    #[test]
    fn prepare_keeps_whole_gops_and_cuts_pieces_at_gop_starts() {
        let (_, rec) = recording();
        let fields: Vec<(u16, u32)> = split(&rec.data)
            .iter()
            .map(|m| rtp_seq_ts(m.packet(&rec.data)).unwrap())
            .collect();
        assert_eq!(
            fields,
            vec![(10, 1000), (11, 4600), (12, 8200), (13, 11800)]
        );
        // 18-byte packets, 30-byte writes: each GOP is one 30-byte and one 6-byte piece.
        let joinable: Vec<(Range<usize>, bool)> = rec
            .pieces
            .iter()
            .map(|p| (p.range.clone(), p.joinable))
            .collect();
        assert_eq!(
            joinable,
            vec![
                (0..30, true),
                (30..36, false),
                (36..66, true),
                (66..72, false)
            ]
        );
        assert_eq!(rec.pieces[1].at, Duration::from_secs_f64(3600.0 / 90000.0));
        assert_eq!(rec.period, Duration::from_secs_f64(14400.0 / 90000.0));
    }

    #[test]
    fn loops_continue_sequence_numbers_and_timestamps() {
        let (_, rec) = recording();
        let second = rec.loop_bytes(1);
        let fields: Vec<(u16, u32)> = split(&second)
            .iter()
            .map(|m| rtp_seq_ts(m.packet(&second)).unwrap())
            .collect();
        assert_eq!(
            fields,
            vec![(14, 15400), (15, 19000), (16, 22600), (17, 26200)]
        );
    }
}
