//! The sender of one playing session: takes frames from its Hub reader, prepends this
//! session's RTP headers to the shared packetization, and writes each batch of frames with one
//! vectored write (TCP interleaved) or one datagram per packet (UDP); sends RTCP sender reports.
//! A TCP session that takes the stream-wide packets lends its socket to the stream whenever it
//! has caught up (see `media::hub::Lease`), and only writes itself what the stream gives back.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use media::hub::{Closed, LEASE_TRACKS, Lease, LentTrack, Reader};
use media::rtp::interleaved::{Sent, WireFrame, framing};
use media::rtp::{RtpChunk, packetize};
use media::{Frame, TrackInfo};
use tracing::warn;

use super::udp::UdpPair;
use super::wire::SharedWire;
use super::{ServerConfig, ServerCounters};

/// Where one track's packets go.
#[derive(Clone, Debug)]
pub(crate) enum Output {
    /// Interleaved on the RTSP connection: RTP on `channel`, RTCP on `channel + 1`.
    Tcp { channel: u8 },
    /// UDP to the client's ports.
    Udp { rtp: SocketAddr, rtcp: SocketAddr },
}

/// Per-reader RTP state of one track: the only per-reader part of fan-out.
#[derive(Clone, Debug)]
pub(crate) struct SenderTrack {
    info: TrackInfo,
    pt: u8,
    ssrc: u32,
    out: Output,
    ts_base: u32,
    /// What this session was sent (its next sequence number is `sent.next_seq`).
    sent: Sent,
    warned: bool,
    start_ts: i64,
    /// Writes the stream-wide packets of each frame (see `media::rtp::interleaved`) instead of
    /// numbering its own.
    shared: bool,
}

/// A session ready to play: its reader, the frames already taken from it (the first fixed
/// the session's start), its tracks.
pub(crate) struct Prepared {
    pub(crate) reader: Reader,
    pub(crate) first: Vec<Arc<Frame>>,
    pub(crate) tracks: Vec<Option<SenderTrack>>,
}

impl SenderTrack {
    /// A track whose first packet will carry media time `start_ts` (track clock units).
    pub(crate) fn new(info: TrackInfo, pt: u8, ssrc: u32, out: Output, start_ts: i64) -> Self {
        let rtptime: u32 = rand::random();
        SenderTrack {
            info,
            pt,
            ssrc,
            out,
            ts_base: rtptime.wrapping_sub(start_ts as u32),
            sent: Sent {
                next_seq: rand::random(),
                ..Sent::default()
            },
            warned: false,
            start_ts,
            shared: false,
        }
    }

    /// A TCP track that writes the stream-wide packets: its first packet has sequence number
    /// `first_seq`, and media time `t` is RTP time `ts_base + t`.
    pub(crate) fn shared(
        info: TrackInfo,
        pt: u8,
        ssrc: u32,
        channel: u8,
        start_ts: i64,
        first_seq: u16,
        ts_base: u32,
    ) -> Self {
        SenderTrack {
            info,
            pt,
            ssrc,
            out: Output::Tcp { channel },
            ts_base,
            sent: Sent {
                next_seq: first_seq,
                ..Sent::default()
            },
            warned: false,
            start_ts,
            shared: true,
        }
    }

    /// The (sequence number, RTP time) of the first packet, for RTP-Info.
    pub(crate) fn rtp_info(&self) -> (u16, u32) {
        let start = self.ts_base.wrapping_add(self.start_ts as u32);
        (self.sent.next_seq, start)
    }

    /// Where this track's packets go.
    pub(crate) fn output(&self) -> &Output {
        &self.out
    }

    /// The frame's stream-wide packets, if the stream made them for this track's channel,
    /// with this track's RTP state advanced past them.
    fn take_wire<'f>(&mut self, frame: &'f Frame) -> Option<&'f WireFrame> {
        let Output::Tcp { channel } = self.out else {
            return None;
        };
        let w = match frame.wire() {
            Some(w) if w.channel == channel && w.pt == self.pt && w.ssrc == self.ssrc => w,
            _ => {
                // Without the stream's packets this session cannot number its own (its
                // numbering is the stream's): the frame is skipped.
                if !self.warned {
                    warn!(
                        "a {} frame has no stream-wide RTP packets; skipped",
                        self.info.codec_name()
                    );
                    self.warned = true;
                }
                return None;
            }
        };
        self.sent.add_wire(w, frame.received);
        Some(w)
    }

    fn header(&mut self, marker: bool, ts: u32) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = 0x80;
        h[1] = (u8::from(marker) << 7) | (self.pt & 0x7f);
        h[2..4].copy_from_slice(&self.sent.next_seq.to_be_bytes());
        h[4..8].copy_from_slice(&ts.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.sent.next_seq = self.sent.next_seq.wrapping_add(1);
        h
    }
}

/// Largest number of iovecs handed to one writev (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 1000;
/// Frames gathered into one write when more are already queued.
const MAX_BATCH: usize = 64;

/// The lease of a session whose every track takes the stream-wide packets, if it can have
/// one: its tracks as the stream is to write them.
fn lease_tracks(tracks: &[Option<SenderTrack>]) -> Option<[Option<LentTrack>; LEASE_TRACKS]> {
    let mut out = [None; LEASE_TRACKS];
    let mut n = 0;
    for (track, t) in tracks.iter().enumerate() {
        let Some(t) = t else { continue };
        let (Output::Tcp { channel }, true) = (&t.out, t.shared) else {
            return None;
        };
        *out.get_mut(n)? = Some(LentTrack {
            track,
            channel: *channel,
            pt: t.pt,
            ssrc: t.ssrc,
            clock_rate: t.info.clock_rate(),
            sent: t.sent,
        });
        n += 1;
    }
    (n > 0).then_some(out)
}

/// Takes back the RTP state of a lease that ended (and when the next sender report is due),
/// counts what the stream sent through it, and fails with the error that ended it, if any.
fn settle(
    tracks: &mut [Option<SenderTrack>],
    next_report: &mut Instant,
    lease: Lease,
    counters: &ServerCounters,
) -> std::io::Result<()> {
    if let Some(next) = lease.next_report() {
        *next_report = next;
    }
    for lt in lease.tracks.iter().flatten() {
        let Some(t) = tracks.get_mut(lt.track).and_then(|t| t.as_mut()) else {
            continue;
        };
        let packets = lt.sent.packets.wrapping_sub(t.sent.packets);
        let octets = lt.sent.octets.wrapping_sub(t.sent.octets);
        counters
            .rtp_packets
            .fetch_add(u64::from(packets), Ordering::Relaxed);
        counters.rtp_bytes.fetch_add(
            u64::from(octets) + 12 * u64::from(packets),
            Ordering::Relaxed,
        );
        t.sent = lt.sent;
    }
    match lease.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Lends the session's socket to the stream if nothing is waiting to be written: the pending
/// bytes of an earlier write are sent first. The stream then also sends the sender reports,
/// the next one at `next_report`. Returns whether the stream took the lease.
async fn lend(
    reader: &Reader,
    wire: &SharedWire,
    tracks: &[Option<SenderTrack>],
    next_report: Instant,
    cfg: &ServerConfig,
) -> std::io::Result<bool> {
    let Some(lent) = lease_tracks(tracks) else {
        return Ok(false);
    };
    let Some(mut out) = wire.lend(reader.handle()) else {
        return Ok(false);
    };
    out.flush(cfg.write_timeout).await?;
    let lease = Lease::new(Box::new(out), lent).with_reports(cfg.rtcp_interval, next_report);
    Ok(reader.lend(lease))
}

/// Runs until the reader ends or a write fails.
pub(crate) async fn run_sender(
    prepared: Prepared,
    wire: SharedWire,
    udp: Option<Arc<UdpPair>>,
    cfg: &ServerConfig,
    counters: &Arc<ServerCounters>,
) -> std::io::Result<()> {
    let Prepared {
        mut reader,
        first,
        mut tracks,
    } = prepared;
    let mut first = Some(first);
    let mut lent = false;
    let mut next_report = Instant::now() + cfg.rtcp_interval;
    let mut batch: Vec<Arc<Frame>> = Vec::with_capacity(MAX_BATCH);
    let mut out = Batch::default();
    loop {
        if lent && let Some(lease) = reader.take_returned() {
            lent = false;
            settle(&mut tracks, &mut next_report, lease, counters)?;
        }
        if !lent {
            // Write what is queued until nothing is, then lend the socket to the stream.
            loop {
                batch.clear();
                out.clear();
                let mut closed = false;
                batch.extend(first.take().into_iter().flatten());
                while batch.len() < MAX_BATCH {
                    match reader.try_next() {
                        Ok(Some(f)) => batch.push(f),
                        Ok(None) => break,
                        Err(Closed) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if batch.is_empty() && !closed {
                    break;
                }
                add_frames(&mut out, &mut tracks, &batch, cfg.max_payload);
                counters
                    .rtp_packets
                    .fetch_add(out.packets, Ordering::Relaxed);
                counters.rtp_bytes.fetch_add(out.bytes, Ordering::Relaxed);
                write_tcp(&wire, &out, cfg).await?;
                if let (false, Some(u)) = (out.udp.is_empty(), &udp) {
                    // A refused datagram (client port closed) is not fatal: the session
                    // timeout reaps clients that went away.
                    let _ = send_udp(&u.rtp, &out).await;
                }
                if closed {
                    return Ok(());
                }
            }
            lent = lend(&reader, &wire, &tracks, next_report, cfg).await?;
        }
        // While the socket is lent, the stream sends the reports too.
        tokio::select! {
            _ = reader.wait() => {}
            _ = tokio::time::sleep_until(next_report.into()), if !lent => {
                next_report += cfg.rtcp_interval;
                send_reports(&reports(&tracks), &wire, udp.as_deref(), cfg).await?;
            }
        }
    }
}

/// Adds the packets of `frames` to `out`, advancing each track's RTP state.
fn add_frames(
    out: &mut Batch,
    tracks: &mut [Option<SenderTrack>],
    frames: &[Arc<Frame>],
    max_payload: usize,
) {
    for frame in frames {
        let Some(t) = tracks.get_mut(frame.track).and_then(|t| t.as_mut()) else {
            continue;
        };
        if t.shared {
            out.add_wire(t, frame);
            continue;
        }
        let chunks = frame.rtp_chunks(|f| match packetize(&t.info.codec, f, max_payload) {
            Ok(c) => c,
            Err(e) => {
                if !t.warned {
                    warn!("cannot packetize a {} frame: {e}", t.info.codec_name());
                }
                Vec::new()
            }
        });
        if chunks.is_empty() {
            t.warned = true;
            continue;
        }
        out.add_frame(t, frame, chunks);
    }
}

/// Part of a batch's TCP bytes.
enum Piece {
    /// One packet: its header bytes (range in `heads`) and body (`held[held][chunk]`).
    Packet {
        head: std::ops::Range<usize>,
        held: usize,
        chunk: usize,
    },
    /// A frame's stream-wide packets, ready to write.
    Wire(bytes::Bytes),
}

/// One UDP datagram of a batch: its header bytes (range in `udp_heads`) and body
/// (`held[held][chunk]`), sent without copying the body.
struct UdpPacket {
    dest: SocketAddr,
    head: std::ops::Range<usize>,
    held: usize,
    chunk: usize,
    /// Whole datagram length.
    len: usize,
}

/// The packets of one batch of frames for one session: per-reader header bytes and references
/// to the frames' shared packetizations.
#[derive(Default)]
struct Batch {
    /// Packetizations of the batch's frames (kept alive while their bodies are written).
    held: Vec<Arc<[RtpChunk]>>,
    /// TCP: interleaved header + RTP header + payload header bytes, back to back.
    heads: Vec<u8>,
    /// TCP pieces, in order.
    tcp: Vec<Piece>,
    /// UDP: RTP header + payload header bytes, back to back.
    udp_heads: Vec<u8>,
    /// UDP packets, in order.
    udp: Vec<UdpPacket>,
    packets: u64,
    bytes: u64,
}

impl Batch {
    fn clear(&mut self) {
        self.held.clear();
        self.heads.clear();
        self.tcp.clear();
        self.udp_heads.clear();
        self.udp.clear();
        self.packets = 0;
        self.bytes = 0;
    }

    /// The iovecs of some of the batch's TCP packets.
    fn iov_of<'a>(&'a self, group: &'a [Piece], iov: &mut Vec<IoSlice<'a>>) {
        iov.clear();
        for piece in group {
            match piece {
                Piece::Packet { head, held, chunk } => {
                    iov.push(IoSlice::new(&self.heads[head.clone()]));
                    let body = &self.held[*held][*chunk].body;
                    if !body.is_empty() {
                        iov.push(IoSlice::new(body));
                    }
                }
                Piece::Wire(bytes) => iov.push(IoSlice::new(bytes)),
            }
        }
    }

    /// Adds a frame's stream-wide packets, if the stream made them for this track's channel.
    fn add_wire(&mut self, t: &mut SenderTrack, frame: &Frame) {
        if let Some(w) = t.take_wire(frame) {
            self.packets += u64::from(w.packets);
            self.bytes += w.rtp_bytes();
            self.tcp.push(Piece::Wire(w.bytes.clone()));
        }
    }

    fn add_frame(&mut self, t: &mut SenderTrack, frame: &Frame, chunks: Arc<[RtpChunk]>) {
        let ts = t.ts_base.wrapping_add(frame.ts as u32);
        t.sent.last = Some((ts, frame.received));
        let held = self.held.len();
        for (i, c) in chunks.iter().enumerate() {
            let h = t.header(c.marker, ts);
            t.sent.packets = t.sent.packets.wrapping_add(1);
            t.sent.octets = t.sent.octets.wrapping_add(c.len() as u32);
            self.packets += 1;
            self.bytes += (12 + c.len()) as u64;
            match &t.out {
                Output::Tcp { channel } => {
                    let start = self.heads.len();
                    let len = (12 + c.len()) as u16;
                    self.heads.extend_from_slice(&[b'$', *channel]);
                    self.heads.extend_from_slice(&len.to_be_bytes());
                    self.heads.extend_from_slice(&h);
                    self.heads.extend_from_slice(&c.head);
                    self.tcp.push(Piece::Packet {
                        head: start..self.heads.len(),
                        held,
                        chunk: i,
                    });
                }
                Output::Udp { rtp, .. } => {
                    let start = self.udp_heads.len();
                    self.udp_heads.extend_from_slice(&h);
                    self.udp_heads.extend_from_slice(&c.head);
                    self.udp.push(UdpPacket {
                        dest: *rtp,
                        head: start..self.udp_heads.len(),
                        held,
                        chunk: i,
                        len: 12 + c.len(),
                    });
                }
            }
        }
        self.held.push(chunks);
    }
}

/// Writes the batch's TCP packets (after whatever a partial write left pending): vectored
/// writes straight from the shared payloads, without a timer or a wake-up while the socket
/// takes the bytes at once.
async fn write_tcp(wire: &SharedWire, b: &Batch, cfg: &ServerConfig) -> std::io::Result<()> {
    if b.tcp.is_empty() {
        return Ok(());
    }
    let mut w = wire.lock().await;
    w.flush(cfg.write_timeout).await?;
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(b.tcp.len().min(MAX_IOV / 2) * 2);
    for group in b.tcp.chunks(MAX_IOV / 2) {
        b.iov_of(group, &mut iov);
        w.write_vectored(&mut iov, cfg.write_timeout).await?;
    }
    Ok(())
}

/// Sends the batch's datagrams, as few syscalls as the kernel allows (UDP segmentation
/// offload for runs of equal-size packets to one destination), each straight from the shared
/// payloads.
async fn send_udp(sock: &tokio::net::UdpSocket, b: &Batch) -> std::io::Result<()> {
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(2 * super::gso::MAX_SEGMENTS);
    let mut i = 0;
    while i < b.udp.len() {
        let first = &b.udp[i];
        let seg = first.len;
        // A run: same destination, same size; the last one may be shorter.
        let mut j = i + 1;
        if super::gso::available() {
            while j < b.udp.len()
                && j - i < super::gso::MAX_SEGMENTS
                && b.udp[j].dest == first.dest
                && b.udp[j - 1].len == seg
                && b.udp[j].len <= seg
                && (j - i + 1) * seg <= super::gso::MAX_BYTES
            {
                j += 1;
            }
        }
        iov.clear();
        for p in &b.udp[i..j] {
            iov.push(IoSlice::new(&b.udp_heads[p.head.clone()]));
            let body = &b.held[p.held][p.chunk].body;
            if !body.is_empty() {
                iov.push(IoSlice::new(body));
            }
        }
        let segment = (j - i > 1).then_some(seg as u16);
        match super::gso::send(sock, first.dest, &iov, segment).await {
            Ok(()) => i = j,
            Err(e) if segment.is_some() && super::gso::is_unsupported(&e) => {
                // Retried one datagram at a time.
                super::gso::disable();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One RTCP sender report, ready to send.
struct Report {
    out: Output,
    bytes: bytes::Bytes,
}

/// Sender reports for the tracks that have sent something.
fn reports(tracks: &[Option<SenderTrack>]) -> Vec<Report> {
    tracks
        .iter()
        .flatten()
        .filter_map(|t| {
            Some(Report {
                out: t.out.clone(),
                bytes: t.sent.sender_report(t.ssrc, t.info.clock_rate())?,
            })
        })
        .collect()
}

async fn send_reports(
    reports: &[Report],
    wire: &SharedWire,
    udp: Option<&UdpPair>,
    cfg: &ServerConfig,
) -> std::io::Result<()> {
    for r in reports {
        match &r.out {
            Output::Tcp { channel } => {
                let mut buf = framing(channel + 1, r.bytes.len()).to_vec();
                buf.extend_from_slice(&r.bytes);
                wire.lock().await.write_all(&buf, cfg.write_timeout).await?;
            }
            Output::Udp { rtcp, .. } => {
                if let Some(u) = udp {
                    let _ = u.rtcp.send_to(&r.bytes, *rtcp).await;
                }
            }
        }
    }
    Ok(())
}
