//! The sender of one playing session: takes frames from its Hub reader, prepends this
//! session's RTP headers to the shared packetization, and writes each batch of frames with one
//! vectored write (TCP interleaved) or one datagram per packet (UDP); sends RTCP sender reports.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use media::hub::Reader;
use media::rtp::{RtpChunk, packetize};
use media::{Frame, TrackInfo};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex as AsyncMutex;
use tracing::warn;

use super::udp::UdpPair;
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
    seq: u16,
    ts_base: u32,
    packets: u32,
    octets: u32,
    last: Option<(u32, Instant)>,
    warned: bool,
    start_ts: i64,
}

/// A session ready to play: its reader, the frame that fixed its start, its tracks.
pub(crate) struct Prepared {
    pub(crate) reader: Reader,
    pub(crate) first: Option<Arc<Frame>>,
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
            seq: rand::random(),
            ts_base: rtptime.wrapping_sub(start_ts as u32),
            packets: 0,
            octets: 0,
            last: None,
            warned: false,
            start_ts,
        }
    }

    /// The (sequence number, RTP time) of the first packet, for RTP-Info.
    pub(crate) fn rtp_info(&self) -> (u16, u32) {
        let start = self.ts_base.wrapping_add(self.start_ts as u32);
        (self.seq, start)
    }

    /// Where this track's packets go.
    pub(crate) fn output(&self) -> &Output {
        &self.out
    }

    fn header(&mut self, marker: bool, ts: u32) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = 0x80;
        h[1] = (u8::from(marker) << 7) | (self.pt & 0x7f);
        h[2..4].copy_from_slice(&self.seq.to_be_bytes());
        h[4..8].copy_from_slice(&ts.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        h
    }
}

/// Largest number of iovecs handed to one writev (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 1000;
/// Frames gathered into one write when more are already queued.
const MAX_BATCH: usize = 64;

fn ntp_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    (secs << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// Runs until the reader ends or a write fails.
pub(crate) async fn run_sender(
    prepared: Prepared,
    wr: Arc<AsyncMutex<OwnedWriteHalf>>,
    udp: Option<Arc<UdpPair>>,
    cfg: &ServerConfig,
    counters: &ServerCounters,
) -> std::io::Result<()> {
    let Prepared {
        mut reader,
        mut first,
        mut tracks,
    } = prepared;
    let mut sr = tokio::time::interval(cfg.rtcp_interval);
    sr.tick().await;
    let mut batch: Vec<Arc<Frame>> = Vec::with_capacity(MAX_BATCH);
    let mut heads: Vec<u8> = Vec::new();
    let mut dgram: Vec<u8> = Vec::with_capacity(cfg.max_payload + 12);
    loop {
        tokio::select! {
            f = async { match first.take() { Some(f) => Some(f), None => reader.recv().await } } => {
                let Some(f) = f else { return Ok(()) };
                batch.clear();
                batch.push(f);
                while batch.len() < MAX_BATCH {
                    match reader.try_recv() {
                        Some(f) => batch.push(f),
                        None => break,
                    }
                }
                // (track, head range in `heads`, chunk) for every TCP packet of the batch.
                let mut tcp: Vec<(std::ops::Range<usize>, RtpChunk)> = Vec::new();
                heads.clear();
                for frame in &batch {
                    let Some(t) = tracks.get_mut(frame.track).and_then(|t| t.as_mut()) else { continue };
                    let chunks = frame.rtp_chunks(|f| match packetize(&t.info.codec, f, cfg.max_payload) {
                        Ok(c) => c,
                        Err(e) => {
                            warn!("cannot packetize a {} frame: {e}", t.info.codec_name());
                            Vec::new()
                        }
                    });
                    if chunks.is_empty() && !t.warned {
                        t.warned = true;
                    }
                    let ts = t.ts_base.wrapping_add(frame.ts as u32);
                    t.last = Some((ts, frame.received));
                    for c in chunks.iter() {
                        let h = t.header(c.marker, ts);
                        t.packets = t.packets.wrapping_add(1);
                        t.octets = t.octets.wrapping_add(c.len() as u32);
                        counters.rtp_packets.fetch_add(1, Ordering::Relaxed);
                        counters.rtp_bytes.fetch_add((12 + c.len()) as u64, Ordering::Relaxed);
                        match &t.out {
                            Output::Tcp { channel } => {
                                let start = heads.len();
                                let len = (12 + c.len()) as u16;
                                heads.extend_from_slice(&[b'$', *channel]);
                                heads.extend_from_slice(&len.to_be_bytes());
                                heads.extend_from_slice(&h);
                                heads.extend_from_slice(&c.head);
                                tcp.push((start..heads.len(), c.clone()));
                            }
                            Output::Udp { rtp, .. } => {
                                let Some(u) = &udp else { continue };
                                dgram.clear();
                                dgram.extend_from_slice(&h);
                                dgram.extend_from_slice(&c.head);
                                dgram.extend_from_slice(&c.body);
                                // A refused datagram (client port closed) is not fatal: the
                                // session timeout reaps clients that went away.
                                let _ = u.rtp.send_to(&dgram, *rtp).await;
                            }
                        }
                    }
                }
                if !tcp.is_empty() {
                    write_tcp(&wr, &heads, &tcp, cfg).await?;
                }
            }
            _ = sr.tick() => {
                send_reports(&mut tracks, &wr, udp.as_deref(), cfg).await?;
            }
        }
    }
}

async fn write_tcp(
    wr: &AsyncMutex<OwnedWriteHalf>,
    heads: &[u8],
    packets: &[(std::ops::Range<usize>, RtpChunk)],
    cfg: &ServerConfig,
) -> std::io::Result<()> {
    let mut w = wr.lock().await;
    for group in packets.chunks(MAX_IOV / 2) {
        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(group.len() * 2);
        for (r, c) in group {
            iov.push(IoSlice::new(&heads[r.clone()]));
            if !c.body.is_empty() {
                iov.push(IoSlice::new(&c.body));
            }
        }
        let write = write_all_vectored(&mut w, &mut iov);
        match tokio::time::timeout(cfg.write_timeout, write).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "client stopped reading",
                ));
            }
        }
    }
    Ok(())
}

async fn write_all_vectored(
    w: &mut OwnedWriteHalf,
    mut iov: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    while !iov.is_empty() {
        let n = w.write_vectored(iov).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut iov, n);
    }
    Ok(())
}

async fn send_reports(
    tracks: &mut [Option<SenderTrack>],
    wr: &AsyncMutex<OwnedWriteHalf>,
    udp: Option<&UdpPair>,
    _cfg: &ServerConfig,
) -> std::io::Result<()> {
    let ntp = ntp_now();
    let now = Instant::now();
    for t in tracks.iter_mut().flatten() {
        let Some((rtp, at)) = t.last else { continue };
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let rtp_now = rtp.wrapping_add((elapsed * f64::from(t.info.clock_rate())) as u32);
        let sr = media::rtp::rtcp::sender_report(t.ssrc, ntp, rtp_now, t.packets, t.octets);
        match &t.out {
            Output::Tcp { channel } => {
                let mut buf = Vec::with_capacity(4 + sr.len());
                buf.extend_from_slice(&[b'$', channel + 1]);
                buf.extend_from_slice(&(sr.len() as u16).to_be_bytes());
                buf.extend_from_slice(&sr);
                wr.lock().await.write_all(&buf).await?;
            }
            Output::Udp { rtcp, .. } => {
                if let Some(u) = udp {
                    let _ = u.rtcp.send_to(&sr, *rtcp).await;
                }
            }
        }
    }
    Ok(())
}
