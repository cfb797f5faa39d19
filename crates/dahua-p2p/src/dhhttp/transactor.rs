//! The sans-IO request transactor: sends DH-HTTP requests over one UDP socket, retransmits
//! them until answered, and matches responses to requests.
//!
//! ```text
//! start(now, dest, request) ──► poll_transmit() → (dest, bytes) … retransmits on the schedule
//! handle_response(now, from, &response) ──► poll_event() → Provisional / Done / ClockSkew / TimedOut
//! poll_timeout() / handle_timeout(now) drive the timers
//! ```
//!
//! * **CSeq** is assigned by the transactor in the dialect's style (a counter, or a random
//!   signed i32 per logical request) and reused by every retransmit; `x-pcs-request-id` too
//!   when the dialect sends it.
//! * **Matching**: a response whose `CSeq` is non-zero matches the pending request with that
//!   CSeq, whoever sent it (the relay-channel answer comes from the agent, not from the server
//!   the request went to); failing that, a matching `x-pcs-request-id`. A response with
//!   `CSeq: 0` or none follows the [`ZeroCSeqPolicy`]. Responses to finished requests are
//!   reported as duplicates and otherwise ignored.
//! * **Provisional** `1xx` (`100 Trying`) stops retransmission and extends the wait to
//!   [`TransactorConfig::provisional_wait`] from the arrival of the first one (later ones do
//!   not extend it again).
//! * **Clock skew**: a `401` whose body says `<Error>TimeOut</Error>` ends the request with
//!   [`TxEvent::ClockSkew`] instead of [`TxEvent::Done`], so the caller can resync from `Date`
//!   ([`super::clock_offset`]) and retry.
//! * **Refresh** ([`StartOptions::refresh`]): instead of resending the same bytes, the
//!   transactor asks for a re-signed request ([`TxEvent::RefreshNeeded`]) and sends what
//!   [`Transactor::refresh`] gives it, with the same CSeq (DMSS retransmits carry a fresh
//!   Nonce/Created and device auth).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::clock::is_clock_skew;
use super::dialect::{CSeqStyle, Dialect, PCS_REQUEST_ID, RequestIdStyle};
use super::message::{ParseError, Request, Response, parse_response};

/// Identifies one logical request of a [`Transactor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A `CSeq` counter that several transactors can share (dh-p2p uses one per process, across
/// its sockets). Starts at 1; skips 0 when it wraps.
#[derive(Clone, Debug, Default)]
pub struct CSeqCounter(Arc<AtomicU32>);

impl CSeqCounter {
    /// A counter whose first value is 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next value.
    pub fn next_value(&self) -> u32 {
        loop {
            let v = self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if v != 0 {
                return v;
            }
        }
    }
}

/// How long to wait after each transmission: `waits[i]` follows transmission `i + 1`; after
/// the last one the request times out. So `waits.len()` is the number of transmissions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetransmitSchedule {
    /// Wait after each transmission; never empty.
    pub waits: Vec<Duration>,
}

impl Default for RetransmitSchedule {
    /// The SDK's pattern: 0.5 s doubling, capped at 4 s, 5 transmissions (gives up after 11.5 s).
    fn default() -> Self {
        Self::doubling(Duration::from_millis(500), Duration::from_secs(4), 5)
    }
}

impl RetransmitSchedule {
    /// Waits `initial`, doubling each time up to `cap`, for `transmissions` sends (at least 1).
    pub fn doubling(initial: Duration, cap: Duration, transmissions: u32) -> Self {
        let mut waits = Vec::new();
        let mut w = initial;
        for _ in 0..transmissions.max(1) {
            waits.push(w.min(cap));
            w = w.saturating_mul(2);
        }
        RetransmitSchedule { waits }
    }

    /// Explicit waits (at least one; an empty list means a single 1 s wait).
    pub fn steps(waits: &[Duration]) -> Self {
        let waits = if waits.is_empty() {
            vec![Duration::from_secs(1)]
        } else {
            waits.to_vec()
        };
        RetransmitSchedule { waits }
    }

    /// One transmission, then wait `timeout`.
    pub fn once(timeout: Duration) -> Self {
        Self::steps(&[timeout])
    }

    /// dh-fwd's relay-channel: resend after 0.7 s, then after 1.2 s, then wait 3 s \[I\].
    pub fn relay_channel() -> Self {
        Self::steps(&[
            Duration::from_millis(700),
            Duration::from_millis(1200),
            Duration::from_secs(3),
        ])
    }

    /// DMSS p2p-channel: resend at ~0.55 s and ~1.1 s, then wait for the answer \[I\].
    pub fn dmss_p2p_channel() -> Self {
        Self::steps(&[
            Duration::from_millis(550),
            Duration::from_millis(550),
            Duration::from_secs(10),
        ])
    }

    /// Time from the first transmission until the request times out (without provisionals).
    pub fn total(&self) -> Duration {
        self.waits.iter().sum()
    }
}

/// What to do with a response that carries `CSeq: 0` (or no `CSeq`) and no matching
/// `x-pcs-request-id`. The cloud has been seen answering valid requests with `CSeq: 0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ZeroCSeqPolicy {
    /// Match the oldest pending request whose expected responder is the sender.
    #[default]
    MatchBySource,
    /// Do not match it (report [`Disposition::Unmatched`]).
    Ignore,
}

/// Settings of a [`Transactor`].
#[derive(Clone, Debug)]
pub struct TransactorConfig {
    /// How CSeq/request ids are chosen and where they go.
    pub dialect: Dialect,
    /// Default retransmission schedule.
    pub schedule: RetransmitSchedule,
    /// How long a provisional response extends the wait (no retransmits after it).
    pub provisional_wait: Duration,
    /// Handling of `CSeq: 0` responses.
    pub zero_cseq: ZeroCSeqPolicy,
    /// The CSeq counter (share one between transactors for a process-wide counter).
    pub counter: CSeqCounter,
    /// Seed for random CSeqs and request ids (`None`: from the OS).
    pub seed: Option<u64>,
    /// How many finished requests are remembered to recognise late duplicates.
    pub remember_finished: usize,
}

impl Default for TransactorConfig {
    fn default() -> Self {
        TransactorConfig {
            dialect: Dialect::smartpss(),
            schedule: RetransmitSchedule::default(),
            provisional_wait: Duration::from_secs(10),
            zero_cseq: ZeroCSeqPolicy::MatchBySource,
            counter: CSeqCounter::new(),
            seed: None,
            remember_finished: 64,
        }
    }
}

impl TransactorConfig {
    /// Defaults with a given dialect.
    pub fn with_dialect(dialect: Dialect) -> Self {
        TransactorConfig {
            dialect,
            ..Self::default()
        }
    }
}

/// Per-request options of [`Transactor::start_with`].
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Overrides the configured schedule.
    pub schedule: Option<RetransmitSchedule>,
    /// Who is expected to answer, for [`ZeroCSeqPolicy::MatchBySource`] (default: `dest`).
    pub answer_from: Option<SocketAddr>,
    /// Ask for a re-signed request before each retransmit instead of resending the bytes.
    pub refresh: bool,
}

/// What happened to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxEvent {
    /// A `1xx` arrived; the wait was extended.
    Provisional { id: RequestId, code: u16 },
    /// The final response.
    Done {
        id: RequestId,
        from: SocketAddr,
        request: Box<Request>,
        response: Box<Response>,
    },
    /// A `401` with `<Error>TimeOut</Error>`: our `Created` is too far from the cloud's clock.
    ClockSkew {
        id: RequestId,
        from: SocketAddr,
        request: Box<Request>,
        response: Box<Response>,
    },
    /// No final response after every transmission and the last wait.
    TimedOut {
        id: RequestId,
        dest: SocketAddr,
        request: Box<Request>,
        transmissions: u32,
    },
    /// (Refresh mode) a retransmit is due: call [`Transactor::refresh`] with a re-signed
    /// request. `transmission` is the number it will be (2 for the first retransmit).
    RefreshNeeded { id: RequestId, transmission: u32 },
}

/// What [`Transactor::handle_response`] did with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// It finished this request.
    Final(RequestId),
    /// It was a provisional response for this request.
    Provisional(RequestId),
    /// It answers a request that already finished (a late duplicate); ignored.
    Duplicate(RequestId),
    /// It matches no request; ignored.
    Unmatched,
}

/// One request in flight.
#[derive(Debug)]
struct Pending {
    id: RequestId,
    dest: SocketAddr,
    answer_from: SocketAddr,
    request: Request,
    bytes: Vec<u8>,
    cseq: i64,
    request_id: Option<String>,
    waits: Vec<Duration>,
    transmissions: u32,
    deadline: Instant,
    provisional: bool,
    refresh: bool,
}

/// A finished request, remembered to recognise duplicates.
#[derive(Debug)]
struct Finished {
    id: RequestId,
    cseq: i64,
    request_id: Option<String>,
}

/// Sends requests, retransmits them and matches responses (see the module docs).
#[derive(Debug)]
pub struct Transactor {
    config: TransactorConfig,
    rng: StdRng,
    next_id: u64,
    pending: Vec<Pending>,
    finished: VecDeque<Finished>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<TxEvent>,
}

impl Transactor {
    /// A transactor with these settings.
    pub fn new(config: TransactorConfig) -> Self {
        let rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Transactor {
            config,
            rng,
            next_id: 1,
            pending: Vec::new(),
            finished: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &TransactorConfig {
        &self.config
    }

    /// Sends `request` to `dest` with the default options.
    pub fn start(&mut self, now: Instant, dest: SocketAddr, request: Request) -> RequestId {
        self.start_with(now, dest, request, StartOptions::default())
    }

    /// Sends `request` to `dest`: assigns its CSeq (and request id), queues the first
    /// transmission and arms the retransmit timer.
    pub fn start_with(
        &mut self,
        now: Instant,
        dest: SocketAddr,
        mut request: Request,
        opts: StartOptions,
    ) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let cseq = self.new_cseq();
        let request_id = match self.config.dialect.request_id() {
            RequestIdStyle::PcsRequestId => Some(hex::encode(self.rng.r#gen::<[u8; 16]>())),
            RequestIdStyle::None => request
                .headers
                .get(PCS_REQUEST_ID)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        };
        self.stamp(&mut request, cseq, request_id.as_deref());
        let waits = opts
            .schedule
            .unwrap_or_else(|| self.config.schedule.clone())
            .waits;
        let waits = if waits.is_empty() {
            vec![Duration::from_secs(1)]
        } else {
            waits
        };
        let bytes = request.serialize();
        tracing::trace!(?id, %dest, cseq, path = %request.path, "DH-HTTP request");
        self.transmits.push_back((dest, bytes.clone()));
        self.pending.push(Pending {
            id,
            dest,
            answer_from: opts.answer_from.unwrap_or(dest),
            request,
            bytes,
            cseq,
            request_id,
            deadline: now + waits[0],
            waits,
            transmissions: 1,
            provisional: false,
            refresh: opts.refresh,
        });
        id
    }

    /// (Refresh mode) replaces the request's content, e.g. with a fresh WSSE token and device
    /// auth, keeping its CSeq and request id, and sends it now. Returns `false` if the request
    /// is no longer pending.
    pub fn refresh(&mut self, id: RequestId, mut request: Request) -> bool {
        let Some(i) = self.pending.iter().position(|p| p.id == id) else {
            return false;
        };
        let (cseq, rid) = (self.pending[i].cseq, self.pending[i].request_id.clone());
        self.stamp(&mut request, cseq, rid.as_deref());
        let p = &mut self.pending[i];
        p.bytes = request.serialize();
        p.request = request;
        self.transmits.push_back((p.dest, p.bytes.clone()));
        true
    }

    /// Stops waiting for a request (no event is emitted).
    pub fn cancel(&mut self, id: RequestId) {
        self.pending.retain(|p| p.id != id);
    }

    /// Whether a request is still waiting for its final response.
    pub fn is_pending(&self, id: RequestId) -> bool {
        self.pending.iter().any(|p| p.id == id)
    }

    /// The CSeq assigned to a pending request.
    pub fn cseq_of(&self, id: RequestId) -> Option<i64> {
        self.pending.iter().find(|p| p.id == id).map(|p| p.cseq)
    }

    /// The next datagram to send, with its destination.
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`Transactor::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Retransmits requests whose wait is over and times out those with none left.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if p.deadline > now {
                i += 1;
                continue;
            }
            let left = (p.transmissions as usize) < p.waits.len();
            if left && !p.provisional {
                p.transmissions += 1;
                p.deadline = now + p.waits[p.transmissions as usize - 1];
                if p.refresh {
                    self.events.push_back(TxEvent::RefreshNeeded {
                        id: p.id,
                        transmission: p.transmissions,
                    });
                } else {
                    tracing::debug!(id = ?p.id, dest = %p.dest, cseq = p.cseq, n = p.transmissions, "DH-HTTP retransmit");
                    self.transmits.push_back((p.dest, p.bytes.clone()));
                }
                i += 1;
            } else {
                let p = self.pending.remove(i);
                tracing::debug!(id = ?p.id, dest = %p.dest, path = %p.request.path, "DH-HTTP request timed out");
                self.remember(&p);
                self.events.push_back(TxEvent::TimedOut {
                    id: p.id,
                    dest: p.dest,
                    request: Box::new(p.request),
                    transmissions: p.transmissions,
                });
            }
        }
    }

    /// Parses a datagram as a response and handles it; parse errors name the sender.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<Disposition, ParseError> {
        let resp = parse_response(datagram).map_err(|e| e.with_peer(from))?;
        Ok(self.handle_response(now, from, &resp))
    }

    /// Matches a response to a pending request (see the module docs).
    pub fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        response: &Response,
    ) -> Disposition {
        let cseq = response.cseq().filter(|&c| c != 0);
        let rid = response
            .headers
            .get(PCS_REQUEST_ID)
            .filter(|v| !v.is_empty());
        let by_cseq = cseq.and_then(|c| self.pending.iter().position(|p| p.cseq == c));
        let by_rid = || {
            rid.and_then(|r| {
                self.pending
                    .iter()
                    .position(|p| p.request_id.as_deref() == Some(r))
            })
        };
        let by_source = || match (cseq, self.config.zero_cseq) {
            (None, ZeroCSeqPolicy::MatchBySource) => {
                self.pending.iter().position(|p| p.answer_from == from)
            }
            _ => None,
        };
        let Some(i) = by_cseq.or_else(by_rid).or_else(by_source) else {
            let dup = self.finished.iter().find(|f| {
                cseq.is_some_and(|c| c == f.cseq)
                    || rid.is_some_and(|r| f.request_id.as_deref() == Some(r))
            });
            return match dup {
                Some(f) => {
                    tracing::trace!(id = ?f.id, %from, code = response.code, "late duplicate DH-HTTP response");
                    Disposition::Duplicate(f.id)
                }
                None => {
                    tracing::debug!(%from, code = response.code, ?cseq, "unmatched DH-HTTP response");
                    Disposition::Unmatched
                }
            };
        };
        if response.is_provisional() {
            let p = &mut self.pending[i];
            // Only the first provisional extends the wait: a peer repeating `100 Trying` must
            // not keep a request alive for ever.
            if !p.provisional {
                p.deadline = now + self.config.provisional_wait;
            }
            p.provisional = true;
            self.events.push_back(TxEvent::Provisional {
                id: p.id,
                code: response.code,
            });
            return Disposition::Provisional(p.id);
        }
        let p = self.pending.remove(i);
        self.remember(&p);
        let (id, request, response) = (p.id, Box::new(p.request), Box::new(response.clone()));
        self.events.push_back(if is_clock_skew(&response) {
            TxEvent::ClockSkew {
                id,
                from,
                request,
                response,
            }
        } else {
            TxEvent::Done {
                id,
                from,
                request,
                response,
            }
        });
        Disposition::Final(id)
    }

    fn remember(&mut self, p: &Pending) {
        if self.config.remember_finished == 0 {
            return;
        }
        if self.finished.len() >= self.config.remember_finished {
            self.finished.pop_front();
        }
        self.finished.push_back(Finished {
            id: p.id,
            cseq: p.cseq,
            request_id: p.request_id.clone(),
        });
    }

    fn new_cseq(&mut self) -> i64 {
        match self.config.dialect.cseq {
            CSeqStyle::Counter => i64::from(self.config.counter.next_value()),
            CSeqStyle::RandomSigned => loop {
                let c = i64::from(self.rng.r#gen::<i32>());
                if c != 0 && !self.pending.iter().any(|p| p.cseq == c) {
                    return c;
                }
            },
        }
    }

    /// Writes CSeq and the request id into the request, in place when the headers exist, else
    /// where the dialect puts them.
    fn stamp(&self, request: &mut Request, cseq: i64, request_id: Option<&str>) {
        if request.headers.contains("CSeq") {
            request.headers.set("CSeq", cseq.to_string());
        } else {
            let at = self.config.dialect.cseq_slot(request);
            request.headers.insert(at, "CSeq", cseq.to_string());
        }
        if let Some(rid) = request_id {
            if request.headers.contains(PCS_REQUEST_ID) {
                request.headers.set(PCS_REQUEST_ID, rid);
            } else if let Some(at) = request.headers.position("CSeq") {
                request.headers.insert(at, PCS_REQUEST_ID, rid);
            }
        }
    }
}
