//! A reader's socket lent to its stream. While a reader keeps up, its owner (an RTSP session
//! on interleaved TCP) lends the socket to the stream, and the stream's task writes each
//! frame's stream-wide packets ([`Frame::wire`]) to it straight from its list of readers: one
//! `send` per reader and frame, with no per-reader lock, queue or task wake-up. The stream
//! gives the lease back (to the reader's queue, waking its task) as soon as anything is
//! unusual: a send the socket takes only in part, an error, a frame without matching packets.
//! The owner takes it back itself before it writes anything else to the socket.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::Frame;
use crate::rtp::interleaved::{Sent, WireFrame, framing};

/// Most tracks of one reader a lease carries (a reader with more is not lent).
pub const LEASE_TRACKS: usize = 2;

/// The owner's side of a lent socket. Dropping it ends the loan: the socket is the owner's
/// again.
pub trait LeaseOut: Send {
    /// The connected, non-blocking socket; it stays open while this value lives.
    fn fd(&self) -> RawFd;
    /// Keeps bytes a send left unsent; they must go out before anything else written to the
    /// socket.
    fn keep_unsent(&mut self, rest: &[u8]);
    /// Whether another writer is waiting for the socket (the stream then refuses the lease).
    fn wanted(&self) -> bool;
}

/// One track of a lease: the stream-wide packets the reader takes, and what it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LentTrack {
    /// Index of the track in the stream.
    pub track: usize,
    /// The interleaved channel, payload type and SSRC the reader expects.
    pub channel: u8,
    pub pt: u8,
    pub ssrc: u32,
    /// RTP clock rate of the track (for the RTP time of sender reports).
    pub clock_rate: u32,
    /// What the reader was sent on this track, before and during the loan.
    pub sent: Sent,
}

impl LentTrack {
    fn takes(&self, w: &WireFrame) -> bool {
        w.channel == self.channel && w.pt == self.pt && w.ssrc == self.ssrc
    }

    /// An RTCP sender report for what was sent so far, framed on the RTCP channel.
    fn report(&self) -> Option<[u8; 32]> {
        let sr = self.sent.sender_report(self.ssrc, self.clock_rate)?;
        let mut out = [0u8; 32];
        out[..4].copy_from_slice(&framing(self.channel + 1, sr.len()));
        out[4..].copy_from_slice(sr.get(..28)?);
        Some(out)
    }
}

/// A socket lent to a stream, with the RTP state of what went through it.
pub struct Lease {
    /// The reader's tracks (a frame of any other track is not for this reader).
    pub tracks: [Option<LentTrack>; LEASE_TRACKS],
    /// Why the stream gave the lease back, when a send failed.
    pub error: Option<io::Error>,
    /// RTCP sender reports: how often, and when each track's next one is due (it goes with
    /// the track's first frame at or after that).
    reports: Option<(Duration, [Instant; LEASE_TRACKS])>,
    out: Option<Box<dyn LeaseOut>>,
    fd: RawFd,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("tracks", &self.tracks)
            .field("error", &self.error)
            .field("reports", &self.reports)
            .field("lent", &self.out.is_some())
            .finish()
    }
}

/// What a lease did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offered {
    /// The frame went out whole, or is not for this reader.
    Done,
    /// The frame is taken (what the socket did not take is kept by the owner) but the lease
    /// must go back: the socket is full, or failed.
    Back,
    /// The lease must go back and the frame be queued: its packets are not the ones the
    /// reader expects.
    BackAndQueue,
}

impl Lease {
    /// A lease of `out`'s socket for a reader of `tracks`.
    pub fn new(out: Box<dyn LeaseOut>, tracks: [Option<LentTrack>; LEASE_TRACKS]) -> Lease {
        Lease {
            fd: out.fd(),
            out: Some(out),
            tracks,
            error: None,
            reports: None,
        }
    }

    /// Has the stream send the reader's RTCP sender reports too, every `every`, the next one
    /// with the first frame at or after `next`.
    pub fn with_reports(mut self, every: Duration, next: Instant) -> Lease {
        self.reports = Some((every, [next; LEASE_TRACKS]));
        self
    }

    /// When the next sender report (of any track) is due, if the lease sends them.
    pub fn next_report(&self) -> Option<Instant> {
        let (_, due) = self.reports.as_ref()?;
        due.iter()
            .zip(&self.tracks)
            .filter(|(_, t)| t.is_some())
            .map(|(d, _)| *d)
            .min()
    }

    /// Whether the socket is still lent (and not yet given back to its owner).
    pub fn is_lent(&self) -> bool {
        self.out.is_some()
    }

    pub(crate) fn wanted(&self) -> bool {
        self.out.as_ref().is_some_and(|o| o.wanted())
    }

    /// Gives the socket back to its owner; the RTP state stays.
    pub(crate) fn end(&mut self) {
        self.out = None;
    }

    /// Writes `frame` if it is for this reader.
    pub(crate) fn offer(&mut self, frame: &Frame) -> Offered {
        let Some((slot, t)) = self.tracks.iter_mut().enumerate().find_map(|(i, t)| {
            t.as_mut()
                .filter(|t| t.track == frame.track)
                .map(|t| (i, t))
        }) else {
            return Offered::Done;
        };
        let Some(w) = frame.wire().filter(|w| t.takes(w)) else {
            return Offered::BackAndQueue;
        };
        let Some(out) = self.out.as_mut() else {
            return Offered::BackAndQueue;
        };
        t.sent.add_wire(w, frame.received);
        let report = match &mut self.reports {
            Some((every, due)) if frame.received >= due[slot] => {
                due[slot] = frame.received + *every;
                t.report()
            }
            _ => None,
        };
        let parts: &[&[u8]] = match &report {
            Some(r) => &[&w.bytes[..], &r[..]],
            None => &[&w.bytes[..]],
        };
        let (mut sent, error) = send_all(self.fd, parts);
        if let Some(e) = error {
            self.error = Some(e);
            return Offered::Back;
        }
        let mut complete = true;
        for part in parts {
            if sent < part.len() {
                out.keep_unsent(&part[sent..]);
                complete = false;
            }
            sent = sent.saturating_sub(part.len());
        }
        if complete {
            Offered::Done
        } else {
            Offered::Back
        }
    }
}

/// Sends `parts` back to back with non-blocking sends (no SIGPIPE: a closed peer is an
/// `EPIPE` error) until they are out or the socket is full. Returns how many bytes went.
fn send_all(fd: RawFd, parts: &[&[u8]]) -> (usize, Option<io::Error>) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut iov = [IoSlice::new(&[]); 2];
    for (slot, part) in iov.iter_mut().zip(parts) {
        *slot = IoSlice::new(part);
    }
    let mut rest = &mut iov[..parts.len().min(2)];
    let mut sent = 0;
    while sent < total {
        match send(fd, rest) {
            Ok(0) => return (sent, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                sent += n;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return (sent, Some(e)),
        }
    }
    (sent, None)
}

/// One non-blocking `send` of `iov` (`sendmsg` for more than one buffer; no SIGPIPE).
fn send(fd: RawFd, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    if let [one] = iov {
        // SAFETY: `fd` is the socket of the lease's `LeaseOut`, which keeps it open while the
        // lease holds it; `one` is valid for its length.
        let n = unsafe { libc::send(fd, one.as_ptr().cast(), one.len(), flags) };
        return if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
    }
    // SAFETY: msghdr is plain data; IoSlice is ABI-compatible with iovec on Unix and the
    // buffers outlive the call, which only reads them.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: `fd` is the socket of the lease's `LeaseOut`, which keeps it open while the
    // lease holds it; `msg` is fully initialised.
    let n = unsafe { libc::sendmsg(fd, &msg, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
