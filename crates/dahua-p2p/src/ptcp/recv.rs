//! The receiving half of the reliable byte stream: the cumulative `recv` (next expected
//! peer `sent`), a bounded reorder buffer keyed by the peer's `sent`, duplicate detection,
//! and when to send empty acknowledgement frames.

use std::collections::BTreeMap;
use std::time::Instant;

use super::config::AckPolicy;
use super::frame::Body;
use super::seq;

/// Bookkeeping cost charged per buffered frame on top of its body, so that a flood of tiny
/// frames is bounded too.
const PER_FRAME_COST: usize = 64;

/// Most empty acks owed at once under `EveryFrame` (more would repeat the same `recv`).
const MAX_OWED_ACKS: u32 = 64;

/// A received body waiting for its turn in the stream.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    /// A body that parsed.
    Body(Body),
    /// A body that did not parse; it still occupies its bytes in the stream.
    Malformed,
}

/// Where an incoming non-empty frame falls relative to `recv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// It is the next frame (or a SYN that synchronised the stream): now buffered at the
    /// head, ready to drain.
    InOrder,
    /// Ahead of `recv`: buffered until the gap fills.
    Ahead,
    /// Already received.
    Duplicate,
    /// Ahead of `recv` but the reorder buffer is full: dropped.
    Overflow,
    /// The stream is not synchronised yet (no SYN seen) and this is not a SYN: dropped.
    Unsynced,
}

/// Receiving state of the stream.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// Unwrapped next expected peer `sent`; `None` until the peer's SYN arrives.
    next: Option<u64>,
    buffer: BTreeMap<u64, (u64, Item)>,
    buffered: usize,
    limit: usize,
}

impl Receiver {
    /// An unsynchronised receiver buffering at most `limit` bytes out of order.
    pub(crate) fn new(limit: usize) -> Self {
        Receiver {
            next: None,
            buffer: BTreeMap::new(),
            buffered: 0,
            limit,
        }
    }

    /// Whether the peer's SYN has set the stream position.
    pub(crate) fn synced(&self) -> bool {
        self.next.is_some()
    }

    /// The `recv` header field: the next expected peer `sent` (0 before the SYN).
    pub(crate) fn recv_field(&self) -> u32 {
        self.next.map_or(0, seq::wire)
    }

    /// Places a non-empty frame with the peer's `sent` and body length `len`.
    pub(crate) fn offer(&mut self, sent: u32, len: u64, item: Item) -> Arrival {
        let next = match self.next {
            Some(next) => next,
            None if matches!(item, Item::Body(Body::Syn)) => {
                let start = seq::origin(sent);
                self.next = Some(start);
                start
            }
            None => return Arrival::Unsynced,
        };
        let at = seq::unwrap(next, sent);
        if at < next || self.buffer.contains_key(&at) {
            return Arrival::Duplicate;
        }
        let cost = len as usize + PER_FRAME_COST;
        if at > next && self.buffered + cost > self.limit {
            return Arrival::Overflow;
        }
        self.buffered += cost;
        self.buffer.insert(at, (len, item));
        if at == next {
            Arrival::InOrder
        } else {
            Arrival::Ahead
        }
    }

    /// The next in-order item, advancing `recv` past it.
    pub(crate) fn pop_ready(&mut self) -> Option<Item> {
        let next = self.next?;
        loop {
            let (&at, _) = self.buffer.first_key_value()?;
            let (len, item) = self.buffer.remove(&at).expect("key just seen");
            self.buffered -= len as usize + PER_FRAME_COST;
            if at < next {
                // Overlaps what was already delivered (only a confused peer does this).
                continue;
            }
            if at > next {
                self.buffer.insert(at, (len, item));
                self.buffered += len as usize + PER_FRAME_COST;
                return None;
            }
            self.next = Some(next + len);
            return Some(item);
        }
    }

    /// Whether the head of the buffer is deliverable now.
    pub(crate) fn has_ready(&self) -> bool {
        match (self.next, self.buffer.first_key_value()) {
            (Some(next), Some((&at, _))) => at <= next,
            _ => false,
        }
    }

    /// Drops everything (the session is closed).
    pub(crate) fn clear(&mut self) {
        self.buffer.clear();
        self.buffered = 0;
    }
}

/// When the next empty ack frame is due.
#[derive(Debug)]
pub(crate) struct AckScheduler {
    policy: AckPolicy,
    owed: u32,
    immediate: bool,
    deadline: Option<Instant>,
}

impl AckScheduler {
    /// A scheduler following `policy`.
    pub(crate) fn new(policy: AckPolicy) -> Self {
        AckScheduler {
            policy,
            owed: 0,
            immediate: false,
            deadline: None,
        }
    }

    /// Notes a received non-empty frame that needs acknowledging; `urgent` for
    /// out-of-order or duplicate frames.
    pub(crate) fn on_frame(&mut self, now: Instant, urgent: bool) {
        self.owed = (self.owed + 1).min(MAX_OWED_ACKS);
        if let AckPolicy::Coalesce { frames, delay } = self.policy {
            if urgent || self.owed >= frames.max(1) {
                self.immediate = true;
                self.deadline = None;
            } else if self.deadline.is_none() {
                self.deadline = now.checked_add(delay);
                if self.deadline.is_none() {
                    self.immediate = true;
                }
            }
        }
    }

    /// Whether an empty ack frame should go out now.
    pub(crate) fn due(&self) -> bool {
        match self.policy {
            AckPolicy::EveryFrame => self.owed > 0,
            AckPolicy::Coalesce { .. } => self.immediate,
        }
    }

    /// The coalescing deadline, if one is running.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Turns an expired coalescing deadline into an immediate ack.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            self.immediate = true;
        }
    }

    /// An empty ack frame went out.
    pub(crate) fn on_ack_sent(&mut self) {
        match self.policy {
            AckPolicy::EveryFrame => self.owed = self.owed.saturating_sub(1),
            AckPolicy::Coalesce { .. } => self.reset(),
        }
    }

    /// A non-empty frame went out carrying the current `recv`.
    pub(crate) fn on_piggyback(&mut self) {
        if let AckPolicy::Coalesce { .. } = self.policy {
            self.reset();
        }
    }

    /// Whether any acknowledgement is owed.
    pub(crate) fn owed(&self) -> bool {
        self.owed > 0
    }

    fn reset(&mut self) {
        self.owed = 0;
        self.immediate = false;
        self.deadline = None;
    }
}
