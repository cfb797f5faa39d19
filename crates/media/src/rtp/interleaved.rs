//! Stream-wide RTP over interleaved TCP: each frame is packetized once per stream, with the
//! stream's own SSRC, sequence numbers and timestamps, into the exact bytes an RTSP reader on
//! interleaved channel `2 × track` receives (`$`, channel, length, RTP header, payload, for
//! every packet). Every such reader then writes the same buffer: one iovec per frame and no
//! per-reader header building, the way a shared media works in other RTSP servers.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::{RtpChunk, packetize};
use crate::{Frame, TrackInfo};

/// A frame's packets as interleaved bytes, shared by every reader of the stream.
#[derive(Clone, Debug)]
pub struct WireFrame {
    /// `$`, channel, length, RTP header and payload of every packet, back to back.
    pub bytes: Bytes,
    /// Interleaved channel the bytes are framed for (`2 × track`).
    pub channel: u8,
    /// RTP payload type in the headers.
    pub pt: u8,
    /// SSRC in the headers.
    pub ssrc: u32,
    /// Sequence number of the first packet.
    pub first_seq: u16,
    /// Number of packets.
    pub packets: u32,
    /// RTP payload bytes (headers excluded), for sender reports.
    pub octets: u32,
    /// RTP timestamp of the frame.
    pub rtp_ts: u32,
}

impl WireFrame {
    /// RTP bytes (headers and payloads, without the interleaved framing).
    pub fn rtp_bytes(&self) -> u64 {
        self.bytes.len() as u64 - 4 * u64::from(self.packets)
    }
}

/// What one reader of a track has been sent: the numbers its RTCP sender reports carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Sequence number of the next packet.
    pub next_seq: u16,
    /// Packets sent.
    pub packets: u32,
    /// RTP payload bytes sent.
    pub octets: u32,
    /// RTP time of the last frame sent and when that frame was received.
    pub last: Option<(u32, Instant)>,
}

/// The 4 bytes before a packet of `len` bytes on interleaved channel `channel`.
pub fn framing(channel: u8, len: usize) -> [u8; 4] {
    let [hi, lo] = (len as u16).to_be_bytes();
    [b'$', channel, hi, lo]
}

impl Sent {
    /// An RTCP sender report of what was sent on a track with SSRC `ssrc` and RTP clock
    /// `clock_rate` (`None` before its first frame): the RTP time is the last frame's, moved on
    /// by the time since that frame was received.
    pub fn sender_report(&self, ssrc: u32, clock_rate: u32) -> Option<Bytes> {
        let (rtp, at) = self.last?;
        let elapsed = at.elapsed().as_secs_f64();
        let rtp_now = rtp.wrapping_add((elapsed * f64::from(clock_rate)) as u32);
        let ntp = super::rtcp::ntp_timestamp(std::time::SystemTime::now());
        Some(super::rtcp::sender_report(
            ssrc,
            ntp,
            rtp_now,
            self.packets,
            self.octets,
        ))
    }

    /// Counts a frame's stream-wide packets as sent; the frame was received at `received`.
    pub fn add_wire(&mut self, w: &WireFrame, received: Instant) {
        self.last = Some((w.rtp_ts, received));
        self.next_seq = w.first_seq.wrapping_add(w.packets as u16);
        self.packets = self.packets.wrapping_add(w.packets);
        self.octets = self.octets.wrapping_add(w.octets);
    }
}

/// Where the next packet of one track goes in the stream-wide numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackClock {
    /// SSRC of the track.
    pub ssrc: u32,
    /// Sequence number the next packet gets.
    pub next_seq: u16,
    /// Added to a frame's media timestamp to get its RTP timestamp.
    pub ts_base: u32,
}

/// Assigns payload types to a stream's tracks (the RTSP server's SDP decides them).
pub type PayloadTypes = fn(&[TrackInfo]) -> Vec<u8>;

/// Packetizes a stream's frames once, in stream order, into [`WireFrame`]s.
pub struct SharedRtp {
    max_payload: usize,
    payload_types: PayloadTypes,
    state: Mutex<State>,
}

/// The numbering of every track, and the payload types of the current tracks.
#[derive(Default)]
struct State {
    clocks: Vec<TrackClock>,
    pts: Vec<u8>,
}

impl std::fmt::Debug for SharedRtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRtp")
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

/// Most tracks a stream can have on interleaved channels `2 × track` (channel 255 is unusable).
pub const MAX_SHARED_TRACKS: usize = 127;

impl SharedRtp {
    /// Packetizes into payloads of at most `max_payload` bytes, with `payload_types` deciding
    /// each track's payload type.
    pub fn new(max_payload: usize, payload_types: PayloadTypes) -> Arc<Self> {
        Arc::new(SharedRtp {
            max_payload,
            payload_types,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn clock(state: &mut Vec<TrackClock>, track: usize) -> &mut TrackClock {
        while state.len() <= track {
            state.push(TrackClock {
                ssrc: rand::random(),
                next_seq: rand::random(),
                ts_base: rand::random(),
            });
        }
        &mut state[track]
    }

    /// The SSRC of `track` (fixed for the life of the stream).
    pub fn ssrc(&self, track: usize) -> u32 {
        Self::clock(&mut self.lock().clocks, track).ssrc
    }

    /// Takes the tracks of a new source session (their payload types are fixed here, once
    /// per session, not per frame).
    pub fn set_tracks(&self, tracks: &[TrackInfo]) {
        let pts = (self.payload_types)(tracks);
        self.lock().pts = pts;
    }

    /// Runs `f` with every track's clock while no frame can be packetized, so that a new
    /// reader can learn where its numbering starts without racing the stream.
    pub fn with_clocks<R>(&self, tracks: usize, f: impl FnOnce(&[TrackClock]) -> R) -> R {
        let mut state = self.lock();
        if tracks > 0 {
            Self::clock(&mut state.clocks, tracks - 1);
        }
        f(&state.clocks)
    }

    /// Packetizes `frame`, whose track is `info`, and attaches the result to it. A frame the
    /// payload format cannot carry, on a track beyond [`MAX_SHARED_TRACKS`] or before
    /// [`SharedRtp::set_tracks`] named its track, is left without one.
    pub fn prepare(&self, frame: &Frame, info: &TrackInfo) {
        if frame.track >= MAX_SHARED_TRACKS {
            return;
        }
        let chunks =
            frame.rtp_chunks(|f| packetize(&info.codec, f, self.max_payload).unwrap_or_default());
        if chunks.is_empty() {
            return;
        }
        let mut state = self.lock();
        let Some(&pt) = state.pts.get(frame.track) else {
            return;
        };
        let clock = Self::clock(&mut state.clocks, frame.track);
        let wire = build(clock, &chunks, frame, pt);
        drop(state);
        frame.set_wire(wire);
    }
}

fn build(clock: &mut TrackClock, chunks: &[RtpChunk], frame: &Frame, pt: u8) -> WireFrame {
    let channel = (frame.track * 2) as u8;
    let rtp_ts = clock.ts_base.wrapping_add(frame.ts as u32);
    let total: usize = chunks.iter().map(|c| 4 + 12 + c.len()).sum();
    let mut out = BytesMut::with_capacity(total);
    let first_seq = clock.next_seq;
    let mut octets = 0u32;
    for c in chunks {
        let len = 12 + c.len();
        out.put_slice(&framing(channel, len));
        out.put_u8(0x80);
        out.put_u8((u8::from(c.marker) << 7) | (pt & 0x7f));
        out.put_u16(clock.next_seq);
        out.put_u32(rtp_ts);
        out.put_u32(clock.ssrc);
        out.put_slice(&c.head);
        out.put_slice(&c.body);
        clock.next_seq = clock.next_seq.wrapping_add(1);
        octets = octets.wrapping_add(c.len() as u32);
    }
    WireFrame {
        bytes: out.freeze(),
        channel,
        pt,
        ssrc: clock.ssrc,
        first_seq,
        packets: chunks.len() as u32,
        octets,
        rtp_ts,
    }
}
