//! A reader's socket lent to its stream. While a reader keeps up, its owner (an RTSP session
//! on interleaved TCP) lends the socket to the stream, and the stream's task writes each
//! frame's stream-wide packets ([`Frame::wire`]) to it straight from its list of readers: one
//! `send` per reader and frame, with no per-reader lock, queue or task wake-up. The stream
//! gives the lease back (to the reader's queue, waking its task) as soon as anything is
//! unusual: a send the socket takes only in part, an error, a frame without matching packets.
//! The owner takes it back itself before it writes anything else to the socket.

use std::io;
use std::os::fd::RawFd;

use crate::Frame;
use crate::rtp::interleaved::{Sent, WireFrame};

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
    /// What the reader was sent on this track, before and during the loan.
    pub sent: Sent,
}

impl LentTrack {
    fn takes(&self, w: &WireFrame) -> bool {
        w.channel == self.channel && w.pt == self.pt && w.ssrc == self.ssrc
    }
}

/// A socket lent to a stream, with the RTP state of what went through it.
pub struct Lease {
    /// The reader's tracks (a frame of any other track is not for this reader).
    pub tracks: [Option<LentTrack>; LEASE_TRACKS],
    /// Why the stream gave the lease back, when a send failed.
    pub error: Option<io::Error>,
    out: Option<Box<dyn LeaseOut>>,
    fd: RawFd,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("tracks", &self.tracks)
            .field("error", &self.error)
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
        }
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
        let Some(t) = self
            .tracks
            .iter_mut()
            .flatten()
            .find(|t| t.track == frame.track)
        else {
            return Offered::Done;
        };
        let Some(w) = frame.wire().filter(|w| t.takes(w)) else {
            return Offered::BackAndQueue;
        };
        let Some(out) = self.out.as_mut() else {
            return Offered::BackAndQueue;
        };
        t.sent.add_wire(w, frame.received);
        let bytes = &w.bytes[..];
        let mut at = 0;
        while at < bytes.len() {
            match send(self.fd, &bytes[at..]) {
                Ok(0) => {
                    self.error = Some(io::ErrorKind::WriteZero.into());
                    return Offered::Back;
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.error = Some(e);
                    return Offered::Back;
                }
            }
        }
        if at == bytes.len() {
            return Offered::Done;
        }
        out.keep_unsent(&bytes[at..]);
        Offered::Back
    }
}

/// One non-blocking `send` (no SIGPIPE: a closed peer is an `EPIPE` error).
fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `fd` is the socket of the lease's `LeaseOut`, which keeps it open while the
    // lease holds it; `buf` is valid for `buf.len()` bytes.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
