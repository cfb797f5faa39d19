//! The write side of one RTSP connection: the socket plus the bytes of a write the socket
//! took only in part. Whoever writes next (a reply, an RTCP report, the next frame) sends
//! those bytes first, so messages on the connection never interleave. Every write is
//! cancel-safe: bytes handed over are either on the socket or still pending, never lost
//! half-way (a sender task is aborted on PAUSE while it may be waiting on the socket).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::hub::{LeaseOut, ReaderHandle};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard, OwnedMutexGuard};

/// A connection's write half and its unsent tail.
pub(crate) struct Wire {
    half: OwnedWriteHalf,
    pending: Vec<u8>,
    /// How much of `pending` is already on the socket.
    sent: usize,
}

/// How a non-blocking write ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryWrite {
    /// Every byte went to the socket.
    Done,
    /// The socket took part (or nothing); the rest is pending and needs [`Wire::flush`].
    Partial,
}

impl Wire {
    pub(crate) fn new(half: OwnedWriteHalf) -> Self {
        Wire {
            half,
            pending: Vec::new(),
            sent: 0,
        }
    }

    fn fd(&self) -> RawFd {
        self.half.as_ref().as_raw_fd()
    }

    /// Whether an earlier write left bytes behind.
    pub(crate) fn has_pending(&self) -> bool {
        self.sent < self.pending.len()
    }

    /// Writes what the socket takes now without waiting and keeps the rest as pending (all of
    /// it when something is pending already, so the order on the wire holds).
    pub(crate) fn try_write_vectored(
        &mut self,
        mut iov: &mut [IoSlice<'_>],
    ) -> std::io::Result<TryWrite> {
        if self.has_pending() {
            self.stash(iov);
            return Ok(TryWrite::Partial);
        }
        while !iov.is_empty() {
            match self.half.try_write_vectored(iov) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut iov, n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.stash(iov);
                    return Ok(TryWrite::Partial);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(TryWrite::Done)
    }

    /// Appends bytes after the pending ones, to be sent by [`Wire::flush`].
    pub(crate) fn stash(&mut self, iov: &[IoSlice<'_>]) {
        if !self.has_pending() {
            self.pending.clear();
            self.sent = 0;
        }
        for s in iov {
            self.pending.extend_from_slice(s);
        }
    }

    /// Sends the pending bytes, waiting at most `limit` each time for the client to read.
    pub(crate) async fn flush(&mut self, limit: Duration) -> std::io::Result<()> {
        while self.sent < self.pending.len() {
            match self.half.try_write(&self.pending[self.sent..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    match tokio::time::timeout(limit, self.half.writable()).await {
                        Ok(r) => r?,
                        Err(_) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "client stopped reading",
                            ));
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.pending.clear();
        self.sent = 0;
        Ok(())
    }

    /// Sends the pending bytes, then all of `iov`.
    pub(crate) async fn write_vectored(
        &mut self,
        iov: &mut [IoSlice<'_>],
        limit: Duration,
    ) -> std::io::Result<()> {
        self.flush(limit).await?;
        if self.try_write_vectored(iov)? == TryWrite::Partial {
            self.flush(limit).await?;
        }
        Ok(())
    }

    /// Closes the write side (the client reads a FIN after the bytes sent so far).
    pub(crate) async fn shutdown(&mut self) -> std::io::Result<()> {
        tokio::io::AsyncWriteExt::shutdown(&mut self.half).await
    }

    /// Sends the pending bytes, then `buf`.
    pub(crate) async fn write_all(&mut self, buf: &[u8], limit: Duration) -> std::io::Result<()> {
        self.write_vectored(&mut [IoSlice::new(buf)], limit).await
    }
}

/// A connection's wire as its writers share it: the connection task (replies), the sender
/// tasks (frames, RTCP) and, through a lease, the stream a sender lent the socket to. Every
/// writer but the lease takes the wire with [`SharedWire::lock`], which ends a loan first.
#[derive(Clone)]
pub(crate) struct SharedWire {
    wire: Arc<AsyncMutex<Wire>>,
    /// Writers (other than a lease) waiting for the wire.
    wanted: Arc<AtomicUsize>,
    /// The reader whose stream holds the wire, or held it last, on lease.
    lessee: Arc<Mutex<Option<ReaderHandle>>>,
}

impl SharedWire {
    pub(crate) fn new(half: OwnedWriteHalf) -> Self {
        SharedWire {
            wire: Arc::new(AsyncMutex::new(Wire::new(half))),
            wanted: Arc::new(AtomicUsize::new(0)),
            lessee: Arc::new(Mutex::new(None)),
        }
    }

    /// The wire, once whoever holds it is done: a loan ends at once (and no new one starts
    /// while this waits), another writer finishes its write.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, Wire> {
        self.wanted.fetch_add(1, Ordering::SeqCst);
        let _wanted = Wanted(&self.wanted);
        let lessee = self.lessee.lock().expect("wire lessee").clone();
        if let Some(l) = lessee {
            l.recall();
        }
        self.wire.lock().await
    }

    /// The wire, to lend for `reader`, if nobody holds or waits for it.
    pub(crate) fn lend(&self, reader: ReaderHandle) -> Option<LentWire> {
        if self.wanted.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let guard = self.wire.clone().try_lock_owned().ok()?;
        *self.lessee.lock().expect("wire lessee") = Some(reader);
        Some(LentWire {
            guard,
            wanted: self.wanted.clone(),
        })
    }
}

/// A writer waiting for the wire: no loan starts meanwhile.
struct Wanted<'a>(&'a AtomicUsize);

impl Drop for Wanted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The wire, held for a lease: dropping it (when the lease ends) unlocks the wire.
pub(crate) struct LentWire {
    guard: OwnedMutexGuard<Wire>,
    wanted: Arc<AtomicUsize>,
}

impl std::ops::Deref for LentWire {
    type Target = Wire;
    fn deref(&self) -> &Wire {
        &self.guard
    }
}

impl std::ops::DerefMut for LentWire {
    fn deref_mut(&mut self) -> &mut Wire {
        &mut self.guard
    }
}

impl LeaseOut for LentWire {
    fn fd(&self) -> RawFd {
        self.guard.fd()
    }

    fn keep_unsent(&mut self, rest: &[u8]) {
        self.guard.stash(&[IoSlice::new(rest)]);
    }

    fn wanted(&self) -> bool {
        self.wanted.load(Ordering::SeqCst) > 0
    }
}
