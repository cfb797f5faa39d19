//! The PTCP session state machine: SYN exchange, the sign/auth dialogue, realms, heartbeats
//! and the idle timeout, on top of the reliable stream of [`send`](super::send) and
//! [`recv`](super::recv). No sockets and no clock: every call that can move time takes
//! `now`.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, trace};

use super::config::{Config, PidPolicy, Role};
use super::frame::{Body, FrameError, Header, SYN_PID, Status};
use super::realm::{Outgoing, RealmError, RealmState, Realms};
use super::recv::{AckScheduler, Arrival, Item, Receiver};
use super::rto::RtoEstimator;
use super::send::{Expiry, Hook, Sender};

/// Extra bytes in flight allowed beyond `send_window` for control frames (SYN, BIND,
/// CONN/DISC, heartbeats, auth), so they are never starved by bulk data.
const CONTROL_ALLOWANCE: u64 = 64 * 1024;

/// Most control frames queued at once; frames answering a flood beyond that are dropped.
const MAX_CONTROL_QUEUE: usize = 1024;

/// Bytes charged per queued event on top of its payload.
const PER_EVENT_COST: usize = 64;

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Nothing was received for `Config::idle_timeout`.
    IdleTimeout,
    /// The oldest frame timed out `Config::max_retransmits` times in a row.
    TooManyRetransmits,
    /// [`Session::close`] was called.
    Local,
}

/// Something the application must know or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// SYNs exchanged: the session is up.
    Connected,
    /// (Client) the agent's sign arrived (answer to [`Session::request_sign`]).
    Sign(Bytes),
    /// (Client) no sign arrived within `Config::auth_timeout`.
    SignTimeout,
    /// Authentication finished: on a client when the device acknowledged `0x1B`, on a
    /// device when `0x1B` followed a valid sign.
    Authenticated,
    /// Authentication failed: a client got no `0x1A` in time or a non-`0x1A` answer; a
    /// device got a wrong sign.
    AuthFailed,
    /// (Device, or an agent in relay mode) the peer wants realm `realm` connected to
    /// `ip:port`; answer with [`Session::accept_realm`] or [`Session::refuse_realm`].
    BindRequest {
        /// Realm id chosen by the client.
        realm: u32,
        /// Target TCP port.
        port: u16,
        /// Target IPv4 address.
        ip: Ipv4Addr,
    },
    /// (Client) the device connected a realm we opened.
    RealmConnected(u32),
    /// (Client) the device refused a realm we opened.
    RealmRefused(u32),
    /// Bytes arrived on a realm, in order.
    Data {
        /// The realm.
        realm: u32,
        /// The bytes.
        data: Bytes,
    },
    /// A realm is gone (peer DISC, or our close completed).
    RealmClosed(u32),
    /// Space freed in a realm's send buffer after a `send()` could not take everything.
    Writable(u32),
    /// The session is over; no realm survives it.
    Closed(CloseReason),
}

/// Counters of what a session did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams sent (including empty acks and retransmissions).
    pub frames_sent: u64,
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Datagrams received with a valid header.
    pub frames_received: u64,
    /// Datagram bytes received with a valid header.
    pub bytes_received: u64,
    /// DATA payload bytes sent (first transmissions only).
    pub data_bytes_sent: u64,
    /// DATA payload bytes delivered to the application.
    pub data_bytes_received: u64,
    /// Empty ack frames sent.
    pub acks_sent: u64,
    /// Empty frames received.
    pub acks_received: u64,
    /// Duplicate acks received.
    pub duplicate_acks: u64,
    /// Frames retransmitted (any cause).
    pub retransmits: u64,
    /// Fast retransmits after three duplicate acks.
    pub fast_retransmits: u64,
    /// Retransmission timer expiries.
    pub timeouts: u64,
    /// Non-empty frames received that were already delivered.
    pub duplicates: u64,
    /// Non-empty frames received ahead of a gap.
    pub out_of_order: u64,
    /// Frames dropped: reorder buffer full, or before the stream was synchronised.
    pub dropped: u64,
    /// Datagrams or bodies that did not parse.
    pub malformed: u64,
    /// Acks for bytes never sent, and frames that made no sense in the current state.
    pub ignored: u64,
    /// Heartbeats sent (first transmissions).
    pub heartbeats_sent: u64,
    /// Heartbeats received.
    pub heartbeats_received: u64,
    /// Body bytes currently unacknowledged.
    pub in_flight: u64,
    /// Smoothed round-trip time, once measured.
    pub srtt: Option<Duration>,
    /// Current retransmission timeout.
    pub rto: Duration,
}

/// Client side of the sign/auth dialogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientAuth {
    Idle,
    WaitSign,
    WaitResponse,
    WaitFinalAck,
    Done,
}

/// A PTCP session: one peer, one UDP 5-tuple, any number of realms.
///
/// Pump it like any sans-IO machine: after every [`handle_input`](Session::handle_input),
/// [`handle_timeout`](Session::handle_timeout) or API call, drain
/// [`poll_transmit`](Session::poll_transmit) onto the socket and
/// [`poll_event`](Session::poll_event) into the application, then sleep until
/// [`poll_timeout`](Session::poll_timeout) or the next datagram.
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    now: Instant,
    closed: Option<CloseReason>,
    syn_queued: bool,
    /// We sent the first SYN (before receiving one): the peer's SYN is a reply whose
    /// `recv` acknowledges ours. A responder ignores `recv` in SYN frames, which an
    /// initiator fills before it has synchronised (a retransmitted SYN says `recv = 0`).
    initiator: bool,
    connected: bool,
    sender: Sender,
    receiver: Receiver,
    acks: AckScheduler,
    lmid: u32,
    rmid: Option<u32>,
    control: VecDeque<(Body, Hook)>,
    realms: Realms,
    events: VecDeque<Event>,
    event_bytes: usize,
    last_rx: Instant,
    /// When the last non-empty frame went out (heartbeats fill silences longer than the
    /// interval; empty acks do not count, so a side that only acks still heartbeats).
    last_tx: Instant,
    heartbeat_queued: bool,
    client_auth: ClientAuth,
    auth_deadline: Option<Instant>,
    /// Device: a valid sign was presented (or none is required).
    sign_ok: bool,
    stats: Stats,
}

impl Session {
    /// A session that has sent nothing yet; the idle timer starts at `now`.
    pub fn new(mut config: Config, now: Instant) -> Self {
        config.max_payload = config.max_payload.clamp(1, 0xFFFF);
        let rto = RtoEstimator::new(config.rto_initial, config.rto_min, config.rto_max);
        let sign_ok = matches!(
            config.role,
            Role::Device {
                required_sign: None
            }
        );
        Session {
            sender: Sender::new(
                config.initial_sent,
                config.initial_pid_count,
                rto,
                config.max_retransmits,
            ),
            receiver: Receiver::new(config.reorder_buffer),
            acks: AckScheduler::new(config.ack_policy),
            lmid: config.initial_lmid,
            realms: Realms::new(config.realm_send_buffer, config.max_realms),
            cfg: config,
            now,
            closed: None,
            syn_queued: false,
            initiator: false,
            connected: false,
            rmid: None,
            control: VecDeque::new(),
            events: VecDeque::new(),
            event_bytes: 0,
            last_rx: now,
            last_tx: now,
            heartbeat_queued: false,
            client_auth: ClientAuth::Idle,
            auth_deadline: None,
            sign_ok,
            stats: Stats::default(),
        }
    }

    /// The configuration this session runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether SYNs have been exchanged.
    pub fn is_connected(&self) -> bool {
        self.connected && self.closed.is_none()
    }

    /// Why the session closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    /// The state of `realm`, if it exists.
    pub fn realm_state(&self, realm: u32) -> Option<RealmState> {
        self.realms.state(realm)
    }

    /// Number of realms in any state.
    pub fn realm_count(&self) -> usize {
        self.realms.len()
    }

    /// Whether everything queued has been sent and acknowledged and no ack is owed.
    pub fn is_flushed(&self) -> bool {
        self.control.is_empty()
            && !self.sender.has_in_flight()
            && !self.acks.owed()
            && !self.realms.has_outgoing()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.in_flight = self.sender.in_flight_bytes();
        s.srtt = self.sender.srtt();
        s.rto = self.sender.rto();
        s
    }

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Starts the session: queues a SYN (any role may initiate; clients must).
    pub fn connect(&mut self, now: Instant) {
        self.tick(now);
        if !self.syn_queued && !self.connected {
            self.initiator = true;
        }
        self.queue_syn();
    }

    fn queue_syn(&mut self) {
        if !self.syn_queued && self.closed.is_none() {
            self.syn_queued = true;
            self.control.push_front((Body::Syn, Hook::None));
        }
    }

    /// Ends the session at once (PTCP has no close frame; the peer times out).
    pub fn close(&mut self) {
        self.shut(CloseReason::Local);
    }

    fn shut(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        debug!(?reason, "PTCP session closed");
        self.closed = Some(reason);
        self.sender.clear();
        self.receiver.clear();
        self.control.clear();
        self.realms.clear();
        self.auth_deadline = None;
        self.push_event(Event::Closed(reason));
    }

    // ----- client API -----

    /// (Client) asks the agent for a sign with `0x17`; expect [`Event::Sign`].
    pub fn request_sign(&mut self) {
        self.client_auth = ClientAuth::WaitSign;
        self.auth_deadline = self.now.checked_add(self.cfg.auth_timeout);
        self.queue_control(Body::SignRequest, Hook::None);
    }

    /// (Client) presents `sign` to the device with `0x19`; on `0x1A` sends `0x1B`, and
    /// reports [`Event::Authenticated`] once the device acknowledges it.
    pub fn authenticate(&mut self, sign: &[u8]) {
        self.client_auth = ClientAuth::WaitResponse;
        self.auth_deadline = self.now.checked_add(self.cfg.auth_timeout);
        self.queue_control(Body::Auth(Bytes::copy_from_slice(sign)), Hook::None);
    }

    /// (Client) opens `realm` with a BIND to `127.0.0.1:port`; expect
    /// [`Event::RealmConnected`] or [`Event::RealmRefused`].
    pub fn open_realm(&mut self, realm: u32, port: u16) -> Result<(), RealmError> {
        self.open_realm_to(realm, Ipv4Addr::LOCALHOST, port)
    }

    /// (Client) opens `realm` with a BIND to `ip:port` (every known client uses 127.0.0.1).
    pub fn open_realm_to(&mut self, realm: u32, ip: Ipv4Addr, port: u16) -> Result<(), RealmError> {
        if self.closed.is_some() {
            return Err(RealmError::SessionClosed);
        }
        self.realms.insert(realm, RealmState::Binding)?;
        self.queue_control(Body::Bind { realm, port, ip }, Hook::None);
        Ok(())
    }

    /// Queues bytes for `realm`; takes as much as its send buffer has room for and returns
    /// that count (0 for an unknown, pending or closing realm). After a short count,
    /// [`Event::Writable`] says when to try again. Data waits for CONN on a binding realm.
    pub fn send(&mut self, realm: u32, data: &[u8]) -> usize {
        if self.closed.is_some() {
            return 0;
        }
        self.realms.buffer(realm, data)
    }

    /// Closes `realm`: its buffered data goes out, then DISC. [`Event::RealmClosed`]
    /// follows when the peer answers or acknowledges the DISC.
    pub fn close_realm(&mut self, realm: u32) {
        match self.realms.state(realm) {
            Some(RealmState::Binding | RealmState::Open) => self.realms.start_closing(realm),
            Some(RealmState::Pending) => {
                self.refuse_realm(realm);
            }
            Some(RealmState::Closing) | None => {}
        }
    }

    // ----- device API -----

    /// (Device) connects a realm announced by [`Event::BindRequest`]: replies CONN.
    /// Returns false if the realm is not awaiting an answer.
    pub fn accept_realm(&mut self, realm: u32) -> bool {
        let Some(r) = self.realms.get_mut(realm) else {
            return false;
        };
        if r.state != RealmState::Pending {
            return false;
        }
        r.state = RealmState::Open;
        self.queue_status(realm, Status::Conn);
        true
    }

    /// (Device) refuses a realm announced by [`Event::BindRequest`]: replies DISC.
    /// Returns false if the realm is not awaiting an answer.
    pub fn refuse_realm(&mut self, realm: u32) -> bool {
        if self.realms.state(realm) != Some(RealmState::Pending) {
            return false;
        }
        self.realms.remove(realm);
        self.queue_status(realm, Status::Disc);
        true
    }

    // ----- pumping -----

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        self.event_bytes = self.event_bytes.saturating_sub(event_cost(&ev));
        if self.receiver.has_ready() && self.closed.is_none() {
            // Frames held back while the event queue was full can go now; tell the peer.
            if self.drain() > 0 {
                self.acks.on_frame(self.now, true);
            }
        }
        Some(ev)
    }

    fn push_event(&mut self, ev: Event) {
        self.event_bytes += event_cost(&ev);
        self.events.push_back(ev);
    }

    /// The earliest instant at which [`handle_timeout`](Session::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let idle = self.last_rx.checked_add(self.cfg.idle_timeout);
        let heartbeat = self.heartbeat_due_at();
        [
            idle,
            heartbeat,
            self.sender.deadline(),
            self.acks.deadline(),
            self.auth_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the next heartbeat is due (none before the SYN exchange, while one is queued, or
    /// when `heartbeat_interval` is zero).
    fn heartbeat_due_at(&self) -> Option<Instant> {
        if !self.connected || self.heartbeat_queued || self.cfg.heartbeat_interval.is_zero() {
            return None;
        }
        self.last_tx.checked_add(self.cfg.heartbeat_interval)
    }

    /// Runs the timers that expired by `now`: retransmission, delayed ack, heartbeat, auth
    /// and idle timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        if self.closed.is_some() {
            return;
        }
        if self
            .last_rx
            .checked_add(self.cfg.idle_timeout)
            .is_some_and(|t| t <= now)
        {
            self.shut(CloseReason::IdleTimeout);
            return;
        }
        match self.sender.on_timeout(now) {
            Expiry::Nothing => {}
            Expiry::Retransmit => {
                self.stats.timeouts += 1;
                trace!(rto = ?self.sender.rto(), "PTCP retransmission timeout");
            }
            Expiry::GiveUp => {
                self.shut(CloseReason::TooManyRetransmits);
                return;
            }
        }
        self.acks.on_timeout(now);
        if self.auth_deadline.is_some_and(|t| t <= now) {
            self.auth_deadline = None;
            match self.client_auth {
                ClientAuth::WaitSign => {
                    self.client_auth = ClientAuth::Idle;
                    self.push_event(Event::SignTimeout);
                }
                ClientAuth::WaitResponse | ClientAuth::WaitFinalAck => {
                    self.client_auth = ClientAuth::Idle;
                    self.push_event(Event::AuthFailed);
                }
                ClientAuth::Idle | ClientAuth::Done => {}
            }
        }
        if self.heartbeat_due_at().is_some_and(|t| t <= now) {
            self.heartbeat_queued = true;
            self.queue_control(Body::Heartbeat, Hook::None);
        }
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.tick(now);
        if self.closed.is_some() {
            return None;
        }
        // 1. Retransmissions.
        if self.sender.wants_retransmit() {
            let recv = self.receiver.recv_field();
            let pid_policy = self.cfg.pid_policy;
            if let Some(f) = self.sender.next_retransmit(now) {
                let pid = frame_pid(pid_policy, &f.body, f.pid, recv);
                let header = Header {
                    sent: super::seq::wire(f.seq),
                    recv,
                    pid,
                    lmid: 0,
                    rmid: 0,
                };
                let body = f.body.clone();
                self.stats.retransmits += 1;
                self.acks.on_piggyback();
                return Some(self.emit(header, &body));
            }
        }
        // 2. Acknowledgements.
        if self.receiver.synced() && self.acks.due() {
            self.acks.on_ack_sent();
            self.stats.acks_sent += 1;
            let header = Header {
                sent: self.sender.sent_field(),
                recv: self.receiver.recv_field(),
                pid: frame_pid(
                    self.cfg.pid_policy,
                    &Body::Empty,
                    self.sender.count_pid(),
                    self.receiver.recv_field(),
                ),
                lmid: 0,
                rmid: 0,
            };
            return Some(self.emit(header, &Body::Empty));
        }
        let in_flight = self.sender.in_flight_bytes();
        let window = u64::from(self.cfg.send_window);
        // 3. Control frames, in order; nothing but the SYN before the peer's SYN.
        if let Some((body, _)) = self.control.front() {
            let may_go = matches!(body, Body::Syn) || self.connected;
            let len = body.wire_len() as u64;
            if !may_go || (in_flight > 0 && in_flight + len > window + CONTROL_ALLOWANCE) {
                return None;
            }
            let (body, hook) = self.control.pop_front().expect("front exists");
            if matches!(body, Body::Heartbeat) {
                self.heartbeat_queued = false;
                self.stats.heartbeats_sent += 1;
            }
            return Some(self.send_new(now, body, hook));
        }
        if !self.connected {
            return None;
        }
        // 4. Realm data and DISCs, round-robin.
        let data_len = (super::frame::SUB_HEADER_LEN + self.cfg.max_payload) as u64;
        let data_allowed = in_flight == 0 || in_flight + data_len <= window;
        let control_allowed = in_flight + 16 <= window + CONTROL_ALLOWANCE;
        if !control_allowed {
            return None;
        }
        match self
            .realms
            .next_outgoing(self.cfg.max_payload, data_allowed)?
        {
            Outgoing::Data {
                realm,
                payload,
                writable,
            } => {
                if writable {
                    self.push_event(Event::Writable(realm));
                }
                self.stats.data_bytes_sent += payload.len() as u64;
                Some(self.send_new(now, Body::Data { realm, payload }, Hook::None))
            }
            Outgoing::Disc { realm } => {
                let body = self.status_body(realm, Status::Disc);
                Some(self.send_new(now, body, Hook::RealmDisc(realm)))
            }
        }
    }

    /// Puts a new non-empty frame into the stream and on the wire.
    fn send_new(&mut self, now: Instant, body: Body, hook: Hook) -> Vec<u8> {
        let recv = self.receiver.recv_field();
        let (sent, count_pid) = self.sender.push(now, body.clone(), hook);
        let pid = frame_pid(self.cfg.pid_policy, &body, count_pid, recv);
        self.acks.on_piggyback();
        let header = Header {
            sent,
            recv,
            pid,
            lmid: 0,
            rmid: 0,
        };
        self.emit(header, &body)
    }

    /// Fills `lmid`/`rmid`, encodes, and counts one datagram.
    fn emit(&mut self, mut header: Header, body: &Body) -> Vec<u8> {
        header.lmid = self.lmid;
        header.rmid = self.rmid.unwrap_or(0);
        self.lmid = self.lmid.wrapping_add(1);
        let mut out = Vec::with_capacity(super::frame::HEADER_LEN + body.wire_len());
        header.write(&mut out);
        body.write(&mut out);
        if !body.is_empty() {
            self.last_tx = self.now;
        }
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += out.len() as u64;
        trace!(?header, kind = ?body.kind(), len = out.len(), "PTCP send");
        out
    }

    fn queue_control(&mut self, body: Body, hook: Hook) {
        if self.closed.is_some() {
            return;
        }
        if self.control.len() >= MAX_CONTROL_QUEUE {
            self.stats.ignored += 1;
            return;
        }
        self.control.push_back((body, hook));
    }

    fn status_body(&self, realm: u32, status: Status) -> Body {
        Body::Status {
            realm,
            status,
            nul: self.cfg.status_nul,
        }
    }

    fn queue_status(&mut self, realm: u32, status: Status) {
        let body = self.status_body(realm, status);
        if status == Status::Disc && self.control.iter().any(|(b, _)| *b == body) {
            return;
        }
        self.queue_control(body, Hook::None);
    }

    /// Feeds one received datagram. A datagram that is not PTCP is an error and changes
    /// nothing; a frame whose body does not parse is still acknowledged (it occupies its
    /// bytes in the stream) and then reported as an error.
    pub fn handle_input(&mut self, now: Instant, datagram: &[u8]) -> Result<(), FrameError> {
        self.tick(now);
        let header = match Header::parse(datagram) {
            Ok(h) => h,
            Err(e) => {
                self.stats.malformed += 1;
                debug!(error = %e, "PTCP: dropped datagram");
                return Err(e);
            }
        };
        if self.closed.is_some() {
            return Ok(());
        }
        self.stats.frames_received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        self.last_rx = self.now;
        self.rmid = Some(match self.rmid {
            Some(r) if super::seq::diff(header.lmid, r) < 0 => r,
            _ => header.lmid,
        });
        let raw_body = &datagram[super::frame::HEADER_LEN..];
        let (item, error) = match Body::parse(raw_body) {
            Ok(b) => (Item::Body(b), None),
            Err(mut e) => {
                // Report offsets within the datagram.
                e.offset += super::frame::HEADER_LEN;
                e.excerpt = text::hex_excerpt(datagram);
                self.stats.malformed += 1;
                debug!(error = %e, "PTCP: body did not parse");
                (Item::Malformed, Some(e))
            }
        };
        trace!(?header, len = datagram.len(), "PTCP recv");
        let pure = raw_body.is_empty();
        let is_syn = matches!(item, Item::Body(Body::Syn));
        let ack = if is_syn && !self.initiator {
            Default::default()
        } else {
            self.sender.on_ack(now, header.recv, pure)
        };
        if pure {
            self.stats.acks_received += 1;
        }
        if ack.bogus {
            self.stats.ignored += 1;
        }
        if ack.duplicate {
            self.stats.duplicate_acks += 1;
        }
        if ack.fast_retransmit {
            self.stats.fast_retransmits += 1;
        }
        for hook in ack.released {
            self.on_released(hook);
        }
        if !pure {
            self.on_body(now, header, raw_body.len() as u64, item);
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A frame of ours was acknowledged.
    fn on_released(&mut self, hook: Hook) {
        match hook {
            Hook::None => {}
            Hook::RealmDisc(realm) => {
                if let Some(r) = self.realms.get_mut(realm)
                    && r.state == RealmState::Closing
                    && r.disc_sent
                {
                    self.realms.remove(realm);
                    self.push_event(Event::RealmClosed(realm));
                }
            }
            Hook::AuthFinal => {
                if self.client_auth == ClientAuth::WaitFinalAck {
                    self.client_auth = ClientAuth::Done;
                    self.auth_deadline = None;
                    self.push_event(Event::Authenticated);
                }
            }
        }
    }

    /// A non-empty frame arrived: place it in the stream, deliver what is in order, and
    /// schedule the ack.
    fn on_body(&mut self, now: Instant, header: Header, len: u64, item: Item) {
        let is_syn = matches!(item, Item::Body(Body::Syn));
        if matches!(item, Item::Body(Body::Heartbeat)) {
            self.stats.heartbeats_received += 1;
        }
        // A SYN we answer with our own SYN needs no separate ack: ours carries it.
        let answered_by_syn = is_syn && !self.syn_queued;
        match self.receiver.offer(header.sent, len, item) {
            Arrival::InOrder => {
                if !answered_by_syn {
                    self.acks.on_frame(now, false);
                }
                self.drain();
            }
            Arrival::Ahead => {
                self.stats.out_of_order += 1;
                self.acks.on_frame(now, true);
            }
            Arrival::Duplicate => {
                self.stats.duplicates += 1;
                self.acks.on_frame(now, true);
            }
            Arrival::Overflow => {
                self.stats.dropped += 1;
                self.acks.on_frame(now, true);
            }
            Arrival::Unsynced => {
                self.stats.dropped += 1;
            }
        }
    }

    /// Delivers in-order frames while the event queue has room; returns how many.
    fn drain(&mut self) -> usize {
        let mut delivered = 0;
        while self.closed.is_none() && self.event_bytes < self.cfg.event_buffer {
            let Some(item) = self.receiver.pop_ready() else {
                break;
            };
            delivered += 1;
            if let Item::Body(body) = item {
                self.deliver(body);
            }
        }
        delivered
    }

    /// Acts on one in-order body.
    fn deliver(&mut self, body: Body) {
        match body {
            Body::Empty => {}
            Body::Syn => {
                if !self.connected {
                    self.connected = true;
                    if !self.syn_queued {
                        self.queue_syn();
                    }
                    self.push_event(Event::Connected);
                }
            }
            Body::Data { realm, payload } => self.on_data(realm, payload),
            Body::Bind { realm, port, ip } => self.on_bind(realm, port, ip),
            Body::Status { realm, status, .. } => self.on_status(realm, status),
            Body::Heartbeat => {}
            Body::SignRequest => match &self.cfg.role {
                Role::Agent { sign } => {
                    let sign = sign.clone();
                    self.queue_control(Body::Sign(sign), Hook::None);
                }
                _ => self.stats.ignored += 1,
            },
            Body::Sign(sign) => {
                if self.cfg.role == Role::Client && !sign.is_empty() {
                    if self.client_auth == ClientAuth::WaitSign {
                        self.client_auth = ClientAuth::Idle;
                        self.auth_deadline = None;
                    }
                    self.push_event(Event::Sign(sign));
                } else {
                    self.stats.ignored += 1;
                }
            }
            Body::Auth(sign) => self.on_auth(&sign),
            Body::AuthResponse(_) => {
                if self.client_auth == ClientAuth::WaitResponse {
                    self.client_auth = ClientAuth::WaitFinalAck;
                    self.queue_control(Body::AuthFinal, Hook::AuthFinal);
                } else {
                    self.stats.ignored += 1;
                }
            }
            Body::AuthFinal => {
                if matches!(self.cfg.role, Role::Device { .. }) && self.sign_ok {
                    self.push_event(Event::Authenticated);
                } else {
                    self.stats.ignored += 1;
                }
            }
            Body::Other(raw) => {
                if self.client_auth == ClientAuth::WaitResponse && raw.first() == Some(&0x00) {
                    // The "app dialect" answers 0x19 with a body starting 00.
                    self.client_auth = ClientAuth::Idle;
                    self.auth_deadline = None;
                    self.push_event(Event::AuthFailed);
                } else {
                    trace!(kind = ?raw.first(), len = raw.len(), "PTCP: opaque body ignored");
                    self.stats.ignored += 1;
                }
            }
        }
    }

    fn on_auth(&mut self, sign: &[u8]) {
        let Role::Device { required_sign } = &self.cfg.role else {
            self.stats.ignored += 1;
            return;
        };
        let ok = required_sign.as_ref().is_none_or(|s| s[..] == *sign);
        if ok {
            self.sign_ok = true;
            self.queue_control(Body::AuthResponse(Bytes::new()), Hook::None);
        } else {
            debug!(sign = %text::hex_excerpt(sign), "PTCP: wrong sign refused");
            self.push_event(Event::AuthFailed);
        }
    }

    fn on_data(&mut self, realm: u32, data: Bytes) {
        match self.realms.state(realm) {
            Some(RealmState::Open | RealmState::Closing) => {
                self.stats.data_bytes_received += data.len() as u64;
                self.push_event(Event::Data { realm, data });
            }
            Some(RealmState::Pending) => {
                // DATA before CONN: the device refuses the realm.
                self.realms.remove(realm);
                self.queue_status(realm, Status::Disc);
                self.push_event(Event::RealmClosed(realm));
            }
            Some(RealmState::Binding) => {
                self.realms.remove(realm);
                self.queue_status(realm, Status::Disc);
                self.push_event(Event::RealmRefused(realm));
            }
            None => {
                self.stats.ignored += 1;
                self.queue_status(realm, Status::Disc);
            }
        }
    }

    fn on_bind(&mut self, realm: u32, port: u16, ip: Ipv4Addr) {
        match self.realms.state(realm) {
            Some(RealmState::Open) => {
                // A client that re-sends BIND until CONN: answer again.
                self.queue_status(realm, Status::Conn);
                return;
            }
            Some(_) => {
                self.stats.ignored += 1;
                return;
            }
            None => {}
        }
        // A device needs the sign first; a relay agent terminating PTCP in relay mode (the
        // client BINDs on its agent session, §2.7) takes BINDs as they come.
        let role_allows = match self.cfg.role {
            Role::Device { .. } => self.sign_ok,
            Role::Agent { .. } => true,
            Role::Client => false,
        };
        let allowed = role_allows && self.realms.has_room();
        if allowed && self.realms.insert(realm, RealmState::Pending).is_ok() {
            self.push_event(Event::BindRequest { realm, port, ip });
        } else {
            debug!(realm, port, "PTCP: BIND refused");
            self.queue_status(realm, Status::Disc);
        }
    }

    fn on_status(&mut self, realm: u32, status: Status) {
        match (self.realms.state(realm), status) {
            (Some(RealmState::Binding), Status::Conn) => {
                if let Some(r) = self.realms.get_mut(realm) {
                    r.state = RealmState::Open;
                }
                self.push_event(Event::RealmConnected(realm));
            }
            (Some(RealmState::Binding), Status::Disc) => {
                self.realms.remove(realm);
                self.push_event(Event::RealmRefused(realm));
            }
            (Some(RealmState::Pending), Status::Disc) => {
                self.realms.remove(realm);
                self.push_event(Event::RealmClosed(realm));
            }
            (Some(RealmState::Open), Status::Disc) => {
                self.realms.remove(realm);
                self.queue_status(realm, Status::Disc);
                self.push_event(Event::RealmClosed(realm));
            }
            (Some(RealmState::Closing), Status::Disc) => {
                self.realms.remove(realm);
                self.push_event(Event::RealmClosed(realm));
            }
            _ => self.stats.ignored += 1,
        }
    }

    /// Ids of the realms that currently exist.
    pub fn realms(&self) -> Vec<u32> {
        self.realms.ids()
    }
}

/// The `pid` for a frame with `body` under `policy`; `count_pid` is the frame-count value
/// fixed when the frame was first sent.
fn frame_pid(policy: PidPolicy, body: &Body, count_pid: u32, recv: u32) -> u32 {
    if matches!(body, Body::Syn) {
        return SYN_PID;
    }
    match policy {
        PidPolicy::FrameCount => count_pid,
        PidPolicy::RecvWindow => 0xFFFF - (recv & 0xFFFF),
    }
}

fn event_cost(ev: &Event) -> usize {
    PER_EVENT_COST
        + match ev {
            Event::Data { data, .. } | Event::Sign(data) => data.len(),
            _ => 0,
        }
}
