//! A reader's bounded queue: frames in order, skipped to the next keyframe on overflow; and
//! the lease its stream gives back when it stops writing to the reader's socket itself.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::lease::Lease;
use super::stream::Stream;
use crate::{Frame, TrackInfo};

/// What a reader's queue holds and has lost.
#[derive(Default)]
pub(crate) struct Queue {
    frames: VecDeque<Arc<Frame>>,
    bytes: usize,
    waiting_for_sync: bool,
    closed: bool,
    /// Frames this reader never got because it was too slow.
    pub(crate) dropped: u64,
    /// How many times the queue overflowed and skipped to a keyframe.
    pub(crate) overflows: u64,
    /// A lease the stream gave back, for the reader's task to take.
    returned: Option<Lease>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("frames", &self.frames.len())
            .field("bytes", &self.bytes)
            .field("dropped", &self.dropped)
            .field("returned", &self.returned.is_some())
            .finish()
    }
}

/// The part of a reader the stream pushes into.
#[derive(Debug)]
pub(crate) struct ReaderShared {
    pub(crate) id: u64,
    queue: Mutex<Queue>,
    notify: Notify,
    max_bytes: usize,
    max_frames: usize,
}

/// Result of pushing one frame into a reader's queue: how many frames it cost the reader.
#[derive(Default)]
pub(crate) struct PushOutcome {
    pub(crate) dropped: u64,
    pub(crate) overflowed: bool,
}

impl ReaderShared {
    pub(crate) fn new(id: u64, max_bytes: usize, max_frames: usize) -> Self {
        ReaderShared {
            id,
            queue: Mutex::new(Queue {
                waiting_for_sync: true,
                ..Queue::default()
            }),
            notify: Notify::new(),
            max_bytes,
            max_frames: max_frames.max(1),
        }
    }

    /// Seeds a new reader with the cached GOP (starts on its keyframe).
    pub(crate) fn prime(&self, gop: &[Arc<Frame>]) {
        if gop.is_empty() {
            return;
        }
        let mut q = self.queue.lock().expect("reader queue");
        q.waiting_for_sync = false;
        for f in gop {
            q.bytes += f.data.len();
            q.frames.push_back(f.clone());
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Queues a frame; on overflow drops the queue and waits for the next sync frame.
    pub(crate) fn push(&self, frame: &Arc<Frame>, is_sync: bool) -> PushOutcome {
        let mut q = self.queue.lock().expect("reader queue");
        let mut dropped = 0;
        let mut overflowed = false;
        if q.waiting_for_sync {
            if !is_sync {
                // Frames before a new reader's first keyframe are not losses; after an
                // overflow they are.
                let lost = u64::from(q.overflows > 0);
                q.dropped += lost;
                return PushOutcome {
                    dropped: lost,
                    overflowed: false,
                };
            }
            q.waiting_for_sync = false;
        }
        if q.bytes + frame.data.len() > self.max_bytes || q.frames.len() >= self.max_frames {
            dropped = q.frames.len() as u64;
            q.frames.clear();
            q.bytes = 0;
            q.overflows += 1;
            overflowed = true;
            if !is_sync {
                q.waiting_for_sync = true;
                dropped += 1;
                q.dropped += dropped;
                return PushOutcome {
                    dropped,
                    overflowed,
                };
            }
            q.dropped += dropped;
        }
        q.bytes += frame.data.len();
        q.frames.push_back(frame.clone());
        drop(q);
        self.notify.notify_one();
        PushOutcome {
            dropped,
            overflowed,
        }
    }

    pub(crate) fn close(&self) {
        let mut q = self.queue.lock().expect("reader queue");
        q.closed = true;
        drop(q);
        self.notify.notify_one();
    }

    pub(crate) fn counters(&self) -> (u64, u64, usize) {
        let q = self.queue.lock().expect("reader queue");
        (q.dropped, q.overflows, q.bytes)
    }

    /// Whether the stream may write this reader's frames itself from now on: nothing is
    /// queued or waiting to be taken back, and the reader has had its first keyframe.
    pub(crate) fn may_lend(&self) -> bool {
        let q = self.queue.lock().expect("reader queue");
        q.frames.is_empty() && q.returned.is_none() && !q.waiting_for_sync && !q.closed
    }

    /// Hands a lease back to the reader's task (and wakes it).
    pub(crate) fn give_back(&self, lease: Lease) {
        self.queue.lock().expect("reader queue").returned = Some(lease);
        self.notify.notify_one();
    }

    pub(crate) fn take_returned(&self) -> Option<Lease> {
        self.queue.lock().expect("reader queue").returned.take()
    }

    fn try_pop(&self) -> Result<Option<Arc<Frame>>, ()> {
        let mut q = self.queue.lock().expect("reader queue");
        match q.frames.pop_front() {
            Some(f) => {
                q.bytes -= f.data.len();
                Ok(Some(f))
            }
            None if q.closed => Err(()),
            None => Ok(None),
        }
    }
}

/// The stream of a reader has closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

/// One subscriber of a stream. Dropping it unsubscribes.
pub struct Reader {
    pub(crate) stream: Arc<Stream>,
    pub(crate) shared: Arc<ReaderShared>,
    pub(crate) tracks: Arc<[TrackInfo]>,
}

impl Reader {
    /// The tracks of the stream when this reader subscribed.
    pub fn tracks(&self) -> &Arc<[TrackInfo]> {
        &self.tracks
    }

    /// The stream this reader reads.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// The next frame, waiting for it; `None` once the stream is closed.
    pub async fn recv(&mut self) -> Option<Arc<Frame>> {
        loop {
            match self.shared.try_pop() {
                Ok(Some(f)) => return Some(f),
                Err(()) => return None,
                Ok(None) => self.shared.notify.notified().await,
            }
        }
    }

    /// A frame if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Frame>> {
        self.shared.try_pop().ok().flatten()
    }

    /// A frame if one is queued, without waiting; `Err` once the stream is closed and the
    /// queue is empty.
    pub fn try_next(&mut self) -> Result<Option<Arc<Frame>>, Closed> {
        self.shared.try_pop().map_err(|()| Closed)
    }

    /// Waits until a frame is queued, the stream closes, or the stream gives the lease back.
    /// May return spuriously; callers re-check with [`Reader::try_next`].
    pub async fn wait(&self) {
        self.shared.notify.notified().await;
    }

    /// Lends the reader's socket to the stream, which then writes the stream-wide packets of
    /// every frame for the lease's tracks itself, until it gives the lease back (see
    /// [`Reader::take_returned`]). Refused (false, and the lease is dropped, which gives the
    /// socket back) while frames are queued, before the first keyframe, or while another
    /// writer waits for the socket.
    pub fn lend(&self, lease: Lease) -> bool {
        self.stream.lend(&self.shared, lease)
    }

    /// The lease, if the stream gave it back since it was lent.
    pub fn take_returned(&self) -> Option<Lease> {
        self.shared.take_returned()
    }

    /// A handle that can take the socket back from the stream.
    pub fn handle(&self) -> ReaderHandle {
        ReaderHandle {
            stream: self.stream.clone(),
            id: self.shared.id,
        }
    }

    /// Frames this reader lost because it was too slow.
    pub fn dropped(&self) -> u64 {
        self.shared.counters().0
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stream.remove_reader(self.shared.id);
    }
}

/// Takes a reader's lent socket back from its stream, for another writer of the socket.
#[derive(Clone)]
pub struct ReaderHandle {
    stream: Arc<Stream>,
    id: u64,
}

impl std::fmt::Debug for ReaderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderHandle")
            .field("stream", &self.stream.name())
            .field("id", &self.id)
            .finish()
    }
}

impl ReaderHandle {
    /// Ends the loan of the reader's socket, if it is lent: the stream stops writing to it at
    /// once and the lease (its RTP state) goes back to the reader's task.
    pub fn recall(&self) {
        self.stream.recall(self.id);
    }
}
