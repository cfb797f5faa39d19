//! The sending half of the reliable byte stream: frames in flight until the peer's
//! cumulative `recv` covers them, the retransmission timer, fast retransmit after three
//! duplicate acks, and NewReno-style recovery (each partial ack retransmits the next hole
//! at once; a retransmission that duplicate acks show lost a round trip later is sent again).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::frame::Body;
use super::rto::RtoEstimator;
use super::seq;

/// Duplicate acks that trigger a fast retransmit.
const DUP_ACK_THRESHOLD: u32 = 3;

/// Something to do when a frame is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hook {
    /// Nothing.
    None,
    /// Our DISC for this realm reached the peer.
    RealmDisc(u32),
    /// Our `0x1B` reached the device: authentication is complete.
    AuthFinal,
}

/// A frame sent but not yet acknowledged.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    /// Unwrapped stream position (`sent` of the frame).
    pub seq: u64,
    /// The body, kept for retransmission.
    pub body: Body,
    /// Body bytes on the wire.
    pub len: u64,
    /// `pid` fixed at first transmission (frame-count policy), repeated on retransmits.
    pub pid: u32,
    /// When it was last put on the wire.
    pub last_sent: Instant,
    /// Whether it was ever retransmitted (no RTT sample then).
    pub retransmitted: bool,
    /// Whether it sits in the retransmit queue.
    queued: bool,
    /// What to do when it is acknowledged.
    pub hook: Hook,
}

/// What an incoming `recv` value did.
#[derive(Debug, Default)]
pub(crate) struct AckOutcome {
    /// Hooks of the frames it released.
    pub released: Vec<Hook>,
    /// Whether it was a duplicate ack.
    pub duplicate: bool,
    /// Whether it triggered a fast retransmit.
    pub fast_retransmit: bool,
    /// Whether it acknowledged bytes we never sent.
    pub bogus: bool,
}

/// The least time a retransmitted frame is given before duplicate acks may declare it lost
/// again.
const LOST_RETRANSMIT_MIN_WAIT: Duration = Duration::from_millis(2);

/// What a retransmission timeout did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The timer had not expired or nothing is in flight.
    Nothing,
    /// The oldest frame was queued for retransmission.
    Retransmit,
    /// Too many consecutive timeouts: the peer is gone.
    GiveUp,
}

/// Sending state of the stream.
#[derive(Debug)]
pub(crate) struct Sender {
    /// Oldest unacknowledged position.
    una: u64,
    /// Next new position.
    nxt: u64,
    in_flight: VecDeque<InFlight>,
    retransmit: VecDeque<u64>,
    rto: RtoEstimator,
    deadline: Option<Instant>,
    dup_acks: u32,
    /// Recovery ends when the ack reaches this position.
    recover: Option<u64>,
    timeouts: u32,
    max_timeouts: u32,
    /// Non-empty non-SYN frames sent so far (for the frame-count pid).
    frame_count: u32,
}

impl Sender {
    /// A sender whose first frame carries `sent = initial`.
    pub(crate) fn new(
        initial: u32,
        initial_count: u32,
        rto: RtoEstimator,
        max_timeouts: u32,
    ) -> Self {
        let start = seq::origin(initial);
        Sender {
            una: start,
            nxt: start,
            in_flight: VecDeque::new(),
            retransmit: VecDeque::new(),
            rto,
            deadline: None,
            dup_acks: 0,
            recover: None,
            timeouts: 0,
            max_timeouts,
            frame_count: initial_count,
        }
    }

    /// `sent` for the next new frame (and for empty frames).
    pub(crate) fn sent_field(&self) -> u32 {
        seq::wire(self.nxt)
    }

    /// Body bytes sent but not acknowledged.
    pub(crate) fn in_flight_bytes(&self) -> u64 {
        self.nxt - self.una
    }

    /// Whether anything awaits an acknowledgement.
    pub(crate) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The frame-count pid for the next new frame.
    pub(crate) fn count_pid(&self) -> u32 {
        0xFFFF - (self.frame_count & 0xFFFF)
    }

    /// Registers a newly transmitted non-empty frame; returns its `sent` and its
    /// frame-count pid.
    pub(crate) fn push(&mut self, now: Instant, body: Body, hook: Hook) -> (u32, u32) {
        let len = body.wire_len() as u64;
        let pid = self.count_pid();
        if !matches!(body, Body::Syn) {
            self.frame_count = self.frame_count.wrapping_add(1);
        }
        let at = self.nxt;
        self.in_flight.push_back(InFlight {
            seq: at,
            body,
            len,
            pid,
            last_sent: now,
            retransmitted: false,
            queued: false,
            hook,
        });
        self.nxt += len;
        if self.deadline.is_none() {
            self.arm(now);
        }
        (seq::wire(at), pid)
    }

    /// The next frame to retransmit, marked as sent now.
    pub(crate) fn next_retransmit(&mut self, now: Instant) -> Option<&InFlight> {
        while let Some(at) = self.retransmit.pop_front() {
            let Some(i) = self.index_of(at) else { continue };
            let f = &mut self.in_flight[i];
            f.queued = false;
            f.retransmitted = true;
            f.last_sent = now;
            return Some(&self.in_flight[i]);
        }
        None
    }

    /// Whether a retransmission is waiting.
    pub(crate) fn wants_retransmit(&self) -> bool {
        !self.retransmit.is_empty()
    }

    fn index_of(&self, at: u64) -> Option<usize> {
        self.in_flight.binary_search_by_key(&at, |f| f.seq).ok()
    }

    fn queue_front(&mut self) {
        if let Some(f) = self.in_flight.front_mut()
            && !f.queued
        {
            f.queued = true;
            self.retransmit.push_back(f.seq);
        }
    }

    fn arm(&mut self, now: Instant) {
        self.deadline = now.checked_add(self.rto.rto());
    }

    /// Processes the peer's cumulative ack `recv`; `pure` says it came in an empty frame.
    pub(crate) fn on_ack(&mut self, now: Instant, recv: u32, pure: bool) -> AckOutcome {
        let mut out = AckOutcome::default();
        let ack = seq::unwrap(self.una, recv);
        if ack < self.una {
            return out;
        }
        if ack > self.nxt {
            out.bogus = true;
            return out;
        }
        if ack == self.una {
            if pure && self.has_in_flight() {
                out.duplicate = true;
                self.dup_acks += 1;
                if self.dup_acks == DUP_ACK_THRESHOLD && self.recover.is_none() {
                    self.recover = Some(self.nxt);
                    self.queue_front();
                    out.fast_retransmit = true;
                } else if self.recover.is_some() && self.lost_retransmission(now) {
                    // The peer keeps receiving (duplicate acks) but the hole was not filled
                    // a round trip after its retransmission: that copy was lost too.
                    self.queue_front();
                    out.fast_retransmit = true;
                }
            }
            return out;
        }
        let mut sample = None;
        let mut any_retransmitted = false;
        while let Some(f) = self.in_flight.front() {
            if f.seq + f.len > ack {
                break;
            }
            let f = self.in_flight.pop_front().expect("front exists");
            any_retransmitted |= f.retransmitted;
            sample = Some(f.last_sent);
            out.released.push(f.hook);
        }
        if out.released.is_empty() {
            // An ack inside a frame: only a confused peer does this.
            return out;
        }
        self.una = self.in_flight.front().map_or(self.nxt, |f| f.seq);
        self.dup_acks = 0;
        self.timeouts = 0;
        match sample {
            Some(sent) if !any_retransmitted && self.recover.is_none() => {
                self.rto.sample(now.saturating_duration_since(sent));
            }
            _ => self.rto.reset_backoff(),
        }
        if let Some(recover) = self.recover {
            if self.una < recover && self.has_in_flight() {
                // Partial ack: the next hole is lost too.
                self.queue_front();
            } else {
                self.recover = None;
            }
        }
        if self.has_in_flight() {
            self.arm(now);
        } else {
            self.deadline = None;
        }
        out
    }

    /// Whether the oldest frame was retransmitted more than a round trip (and a reordering
    /// allowance) ago without being acknowledged, while duplicate acks show the path works.
    fn lost_retransmission(&self, now: Instant) -> bool {
        let (Some(f), Some(srtt)) = (self.in_flight.front(), self.rto.srtt()) else {
            return false;
        };
        let wait = (srtt + srtt / 4).max(LOST_RETRANSMIT_MIN_WAIT);
        f.retransmitted && !f.queued && now.saturating_duration_since(f.last_sent) > wait
    }

    /// When the retransmission timer expires.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.has_in_flight())
    }

    /// Handles the retransmission timer at `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Expiry {
        match self.deadline() {
            Some(d) if d <= now => {}
            _ => return Expiry::Nothing,
        }
        if self.timeouts >= self.max_timeouts {
            return Expiry::GiveUp;
        }
        self.timeouts += 1;
        self.dup_acks = 0;
        self.recover = Some(self.nxt);
        self.rto.back_off();
        self.queue_front();
        self.arm(now);
        Expiry::Retransmit
    }

    /// The smoothed RTT, once measured.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.rto.srtt()
    }

    /// The retransmission timeout currently armed.
    pub(crate) fn rto(&self) -> Duration {
        self.rto.rto()
    }

    /// Drops everything (the session is closed).
    pub(crate) fn clear(&mut self) {
        self.in_flight.clear();
        self.retransmit.clear();
        self.deadline = None;
    }
}
