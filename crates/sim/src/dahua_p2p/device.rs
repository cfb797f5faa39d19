//! A simulated camera's P2P side: one UDP socket (its `PubAddr` and `LocalAddr`) that punches
//! toward clients the cloud announced, answers their inverted-STUN Binding Requests, and runs
//! one PTCP session per client address (role Device: the agent-issued sign is required before
//! any BIND) plus one for the relay agent's leg (no sign: the agent already vetted its client).
//! Realms are connected to local TCP services (554 → the RTSP camera) by the
//! [`realm_bridge`](super::realm_bridge).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dahua_p2p::addr::Aid;
use dahua_p2p::demux::{Kind, classify};
use dahua_p2p::ptcp::{Config, Event, Header, Session};
use dahua_p2p::stun::{BINDING_REQUEST, BINDING_SUCCESS, MAGIC_COOKIE, StunMessage};
use rand::Rng;
use text::hex_excerpt;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tracing::{debug, info, warn};

use super::endpoint::MAX_DATAGRAM;
use super::faults::Impairment;
use super::realm_bridge::{BridgeMsg, ConnKey, RealmConn, Service};
use super::state::{PtcpOwner, PtcpRecord, RealmRecord, RealmVia, Shared};

/// Binding Requests a device sends toward a newly announced client.
const PUNCH_ATTEMPTS: u32 = 5;

/// Time between them.
const PUNCH_INTERVAL: Duration = Duration::from_millis(150);

/// What the cloud tells a device.
#[derive(Debug)]
pub(crate) enum DeviceCmd {
    /// A client asked for a p2p channel from `client` (its S_dev mapping) with this AID.
    Channel { client: SocketAddr, aid: Aid },
}

/// How one device behaves.
#[derive(Clone, Debug)]
pub(crate) struct DeviceConfig {
    pub serial: String,
    pub agent: SocketAddr,
    pub services: HashMap<u16, Service>,
    pub channels: u32,
    pub punch_fails: bool,
    pub require_sign: bool,
    pub strict_aid: bool,
    pub disc_after: Option<Duration>,
    pub idle_timeout: Duration,
    pub send_window: u32,
    pub punch_delay: Duration,
}

/// Who a PTCP session is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerKind {
    /// A client that punched through (direct mode).
    Client,
    /// The relay agent's leg.
    AgentLeg,
}

struct Peer {
    kind: PeerKind,
    session: Session,
    authenticated: bool,
    auth_failed: bool,
}

struct Punch {
    client: SocketAddr,
    aid: Aid,
    txid: [u8; 12],
    next: Instant,
    left: u32,
}

/// The device's task state (one per device socket).
pub(crate) struct DeviceTask {
    cfg: DeviceConfig,
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    cmd_rx: UnboundedReceiver<DeviceCmd>,
    bridge_tx: UnboundedSender<BridgeMsg>,
    bridge_rx: UnboundedReceiver<BridgeMsg>,
    peers: HashMap<SocketAddr, Peer>,
    conns: HashMap<(SocketAddr, u32), RealmConn>,
    next_conn_id: u64,
    punches: Vec<Punch>,
    disc_timers: Vec<(Instant, ConnKey)>,
    rx_imp: Impairment,
    tx_imp: Impairment,
    dropped_reported: u64,
    outbox: Vec<(SocketAddr, Vec<u8>)>,
    raw_out: Vec<(SocketAddr, Vec<u8>)>,
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(Ipv4Addr::LOCALHOST, a.port()),
    }
}

impl DeviceTask {
    /// A device on `socket`; `impair` is `(seed, loss, dup, reorder)` for its PTCP traffic.
    pub fn new(
        cfg: DeviceConfig,
        socket: Arc<UdpSocket>,
        shared: Arc<Shared>,
        cmd_rx: UnboundedReceiver<DeviceCmd>,
        impair: (u64, f64, f64, f64),
    ) -> Self {
        let (bridge_tx, bridge_rx) = unbounded_channel();
        let (seed, loss, dup, reorder) = impair;
        DeviceTask {
            cfg,
            socket,
            shared,
            cmd_rx,
            bridge_tx,
            bridge_rx,
            peers: HashMap::new(),
            conns: HashMap::new(),
            next_conn_id: 0,
            punches: Vec::new(),
            disc_timers: Vec::new(),
            rx_imp: Impairment::new(seed, loss, dup, reorder),
            tx_imp: Impairment::new(seed ^ 0x5eed_0001, loss, dup, reorder),
            dropped_reported: 0,
            outbox: Vec::new(),
            raw_out: Vec::new(),
        }
    }

    /// Runs until the simulator stops (the command channel closes or the task is aborted).
    pub async fn run(mut self) {
        let socket = self.socket.clone();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        info!(serial = %self.cfg.serial, addr = ?socket.local_addr().ok(), "device up");
        loop {
            let sleep = sleep_until(self.next_deadline());
            tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.on_datagram(&buf[..n], from),
                    Err(e) => {
                        debug!(serial = %self.cfg.serial, "device receive error (ignored): {e}");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(c) => self.on_cmd(c),
                    None => return,
                },
                Some(msg) = self.bridge_rx.recv() => self.on_bridge(msg),
                () = sleep => self.on_timers(Instant::now()),
            }
            self.pump_all();
            self.flush_outbox().await;
        }
    }

    fn online(&self) -> bool {
        self.shared
            .lock()
            .devices
            .get(&self.cfg.serial)
            .is_some_and(|d| d.online)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| p.session.poll_timeout())
            .chain(self.punches.iter().map(|p| p.next))
            .chain(self.disc_timers.iter().map(|(t, _)| *t))
            .chain(self.rx_imp.deadline())
            .chain(self.tx_imp.deadline())
            .min()
    }

    fn on_datagram(&mut self, d: &[u8], from: SocketAddr) {
        if !self.online() {
            debug!(serial = %self.cfg.serial, %from, "device offline: datagram ignored");
            return;
        }
        match classify(d) {
            Kind::InvertedStun => self.on_stun(d, from),
            Kind::Ptcp => {
                let now = Instant::now();
                for (from, d) in self.rx_imp.apply(now, from, d.to_vec()) {
                    self.on_ptcp(&d, from, now);
                }
            }
            other => {
                debug!(serial = %self.cfg.serial, %from, ?other, bytes = %hex_excerpt(d), "device: datagram ignored");
            }
        }
    }

    fn on_cmd(&mut self, cmd: DeviceCmd) {
        match cmd {
            DeviceCmd::Channel { client, aid } => {
                if self.cfg.punch_fails {
                    info!(serial = %self.cfg.serial, %client, "fault punch_fails: device does not punch");
                    return;
                }
                info!(serial = %self.cfg.serial, %client, %aid, "device: p2p-channel notification, punching");
                self.punches.retain(|p| p.client != client);
                self.punches.push(Punch {
                    client,
                    aid,
                    txid: rand::thread_rng().r#gen(),
                    next: Instant::now() + self.cfg.punch_delay,
                    left: PUNCH_ATTEMPTS,
                });
            }
        }
    }

    /// The AID the cloud announced for a client, if any.
    fn channel_aid(&self, client: SocketAddr) -> Option<Aid> {
        let st = self.shared.lock();
        st.devices
            .get(&self.cfg.serial)?
            .channels
            .iter()
            .rev()
            .find(|c| c.client == client)
            .map(|c| c.aid)
    }

    fn on_stun(&mut self, d: &[u8], from: SocketAddr) {
        let ignore = |task: &Self, why: &str| {
            debug!(serial = %task.cfg.serial, %from, why, "device: STUN ignored");
            task.shared.lock().stun.ignored += 1;
        };
        if self.cfg.punch_fails {
            return ignore(self, "punch_fails");
        }
        let msg = match StunMessage::parse_inverted(d) {
            Ok(m) => m,
            Err(e) => return ignore(self, &e.to_string()),
        };
        match msg.msg_type {
            BINDING_REQUEST => {
                self.shared.lock().stun.requests_received += 1;
                let announced = self.channel_aid(from);
                let aid = match (msg.aid(), announced) {
                    (Some(a), Some(b)) if a == b => a,
                    (got, Some(_)) if self.cfg.strict_aid => {
                        return ignore(
                            self,
                            &format!("AID {got:?} is not the Identify of the p2p-channel"),
                        );
                    }
                    (_, None) if self.cfg.strict_aid => {
                        return ignore(self, "no p2p-channel from this address");
                    }
                    (got, announced) => got.or(announced).unwrap_or_default(),
                };
                let resp = StunMessage::binding_success(msg.cookie, msg.txid, aid, v4(from));
                debug!(serial = %self.cfg.serial, %from, "device: Binding Success sent");
                self.raw_out.push((from, resp.to_inverted_bytes()));
                self.shared.lock().stun.responses_sent += 1;
            }
            BINDING_SUCCESS => {
                debug!(serial = %self.cfg.serial, %from, len = msg.length, "device: Binding Success/confirm received");
                self.shared.lock().stun.responses_received += 1;
                // The client answered our request or confirmed: stop punching it.
                self.punches.retain(|p| p.client != from);
            }
            t => ignore(self, &format!("STUN type {t:#06x}")),
        }
    }

    fn on_ptcp(&mut self, d: &[u8], from: SocketAddr, now: Instant) {
        if !self.peers.contains_key(&from) {
            if Header::parse(d).is_err() {
                return;
            }
            let Some(peer) = self.new_peer(from, now) else {
                return;
            };
            self.peers.insert(from, peer);
        }
        if let Some(p) = self.peers.get_mut(&from)
            && let Err(e) = p.session.handle_input(now, d)
        {
            debug!(serial = %self.cfg.serial, %from, error = %e, "device: bad PTCP datagram");
        }
    }

    /// A PTCP session for a new peer, or `None` when the device does not talk to it.
    fn new_peer(&self, from: SocketAddr, now: Instant) -> Option<Peer> {
        let (kind, required_sign) = if from == self.cfg.agent {
            (PeerKind::AgentLeg, None)
        } else {
            if self.cfg.punch_fails {
                debug!(serial = %self.cfg.serial, %from, "fault punch_fails: direct PTCP ignored");
                return None;
            }
            let channel = {
                let st = self.shared.lock();
                st.devices
                    .get(&self.cfg.serial)?
                    .channels
                    .iter()
                    .rev()
                    .find(|c| c.client == from)
                    .cloned()
            };
            let Some(channel) = channel else {
                debug!(serial = %self.cfg.serial, %from, "device: PTCP from an address no p2p-channel announced, ignored");
                return None;
            };
            let sign = if self.cfg.require_sign {
                match channel.sign {
                    Some(s) => Some(s),
                    None => {
                        debug!(serial = %self.cfg.serial, %from, "device: no agent sign paired with this client yet (relay-channel not seen); PTCP ignored");
                        return None;
                    }
                }
            } else {
                None
            };
            (PeerKind::Client, sign)
        };
        info!(serial = %self.cfg.serial, %from, ?kind, sign_required = required_sign.is_some(), "device: new PTCP session");
        let mut config = Config::device(required_sign);
        config.idle_timeout = self.cfg.idle_timeout;
        config.send_window = self.cfg.send_window;
        Some(Peer {
            kind,
            session: Session::new(config, now),
            authenticated: false,
            auth_failed: false,
        })
    }

    fn on_timers(&mut self, now: Instant) {
        // Punches.
        let mut sends = Vec::new();
        for p in &mut self.punches {
            if p.next <= now {
                let req = StunMessage::binding_request(MAGIC_COOKIE, p.txid, p.aid, v4(p.client));
                sends.push((p.client, req.to_inverted_bytes()));
                p.left = p.left.saturating_sub(1);
                p.next = now + PUNCH_INTERVAL;
            }
        }
        self.punches.retain(|p| p.left > 0);
        if !sends.is_empty() {
            self.shared.lock().stun.requests_sent += sends.len() as u64;
            self.raw_out.extend(sends);
        }
        // Device-initiated DISC.
        let (due, later): (Vec<_>, Vec<_>) =
            self.disc_timers.drain(..).partition(|(t, _)| *t <= now);
        self.disc_timers = later;
        for (_, key) in due {
            let matches = self
                .conns
                .get(&(key.peer, key.realm))
                .is_some_and(|c| c.key.id == key.id);
            if matches && let Some(p) = self.peers.get_mut(&key.peer) {
                info!(serial = %self.cfg.serial, peer = %key.peer, realm = key.realm, "fault disc_after: device closes the realm");
                p.session.close_realm(key.realm);
                self.conns.remove(&(key.peer, key.realm));
                self.shared.lock().counters.device_discs += 1;
            }
        }
        // Impairment.
        while let Some((from, d)) = self.rx_imp.flush_due(now) {
            self.on_ptcp(&d, from, now);
        }
        while let Some(x) = self.tx_imp.flush_due(now) {
            self.raw_out.push(x);
        }
        // PTCP timers.
        for p in self.peers.values_mut() {
            if p.session.poll_timeout().is_some_and(|t| t <= now) {
                p.session.handle_timeout(now);
            }
        }
    }

    fn on_bridge(&mut self, msg: BridgeMsg) {
        let key = match &msg {
            BridgeMsg::Connected(k, _)
            | BridgeMsg::ConnectFailed(k, _)
            | BridgeMsg::Data(k, _)
            | BridgeMsg::Eof(k)
            | BridgeMsg::WriteFailed(k, _) => *k,
        };
        let slot = (key.peer, key.realm);
        if self.conns.get(&slot).is_none_or(|c| c.key.id != key.id) {
            return; // A connection that is already gone.
        }
        let Some(peer) = self.peers.get_mut(&key.peer) else {
            self.conns.remove(&slot);
            return;
        };
        let via = match peer.kind {
            PeerKind::Client => RealmVia::Direct,
            PeerKind::AgentLeg => RealmVia::Relay,
        };
        match msg {
            BridgeMsg::Connected(_, stream) => {
                let Some(conn) = self.conns.get_mut(&slot) else {
                    return;
                };
                if peer.session.accept_realm(key.realm) {
                    info!(serial = %self.cfg.serial, peer = %key.peer, realm = key.realm, port = conn.port, "device: realm connected (CONN)");
                    conn.start_io(stream, self.bridge_tx.clone(), self.cfg.channels);
                    self.shared.lock().record_realm(RealmRecord {
                        serial: self.cfg.serial.clone(),
                        via,
                        peer: key.peer,
                        realm: key.realm,
                        port: conn.port,
                        connected: true,
                    });
                    if let Some(after) = self.cfg.disc_after {
                        self.disc_timers.push((Instant::now() + after, key));
                    }
                } else {
                    self.conns.remove(&slot);
                }
            }
            BridgeMsg::ConnectFailed(_, error) => {
                let port = self.conns.remove(&slot).map(|c| c.port).unwrap_or_default();
                info!(serial = %self.cfg.serial, peer = %key.peer, realm = key.realm, port, %error, "device: realm service unreachable, DISC");
                peer.session.refuse_realm(key.realm);
                self.shared.lock().record_realm(RealmRecord {
                    serial: self.cfg.serial.clone(),
                    via,
                    peer: key.peer,
                    realm: key.realm,
                    port,
                    connected: false,
                });
            }
            BridgeMsg::Data(_, data) => {
                if let Some(conn) = self.conns.get_mut(&slot) {
                    conn.on_data(data);
                    if conn.flush(&mut peer.session) {
                        conn.closing = true;
                        peer.session.close_realm(key.realm);
                    }
                }
            }
            BridgeMsg::Eof(_) => {
                if let Some(conn) = self.conns.get_mut(&slot) {
                    debug!(serial = %self.cfg.serial, realm = key.realm, "device: service closed its side");
                    conn.on_eof();
                    if conn.flush(&mut peer.session) {
                        conn.closing = true;
                        peer.session.close_realm(key.realm);
                    }
                }
            }
            BridgeMsg::WriteFailed(_, error) => {
                debug!(serial = %self.cfg.serial, realm = key.realm, %error, "device: writing to the service failed, closing the realm");
                peer.session.close_realm(key.realm);
                self.conns.remove(&slot);
            }
        }
    }

    fn on_event(&mut self, from: SocketAddr, ev: Event) {
        let serial = &self.cfg.serial;
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        match ev {
            Event::Connected => {
                info!(%serial, %from, kind = ?peer.kind, "device: PTCP SYN exchanged")
            }
            Event::Authenticated => {
                info!(%serial, %from, "device: client authenticated (0x19 sign, 0x1B)");
                peer.authenticated = true;
            }
            Event::AuthFailed => {
                info!(%serial, %from, "device: wrong sign in 0x19, no 0x1A");
                peer.auth_failed = true;
            }
            Event::BindRequest { realm, port, ip } => self.on_bind(from, realm, port, ip),
            Event::Data { realm, data } => match self.conns.get(&(from, realm)) {
                Some(c) => c.deliver(data),
                None => debug!(%serial, realm, "device: data for a realm without a connection"),
            },
            Event::RealmClosed(realm) => {
                debug!(%serial, %from, realm, "device: realm closed");
                self.conns.remove(&(from, realm));
            }
            Event::Writable(realm) => {
                if let Some(conn) = self.conns.get_mut(&(from, realm))
                    && conn.flush(&mut peer.session)
                {
                    conn.closing = true;
                    peer.session.close_realm(realm);
                }
            }
            Event::Closed(reason) => {
                info!(%serial, %from, ?reason, "device: PTCP session closed");
                self.conns.retain(|(p, _), _| *p != from);
            }
            other => debug!(%serial, %from, ?other, "device: PTCP event ignored"),
        }
    }

    fn on_bind(&mut self, from: SocketAddr, realm: u32, port: u16, ip: Ipv4Addr) {
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        let via = match peer.kind {
            PeerKind::Client => RealmVia::Direct,
            PeerKind::AgentLeg => RealmVia::Relay,
        };
        let service = if ip == Ipv4Addr::LOCALHOST {
            self.cfg.services.get(&port).cloned()
        } else {
            None
        };
        let Some(service) = service else {
            info!(serial = %self.cfg.serial, %from, realm, port, %ip, "device: BIND to a port (or host) it does not serve, DISC");
            peer.session.refuse_realm(realm);
            self.shared.lock().record_realm(RealmRecord {
                serial: self.cfg.serial.clone(),
                via,
                peer: from,
                realm,
                port,
                connected: false,
            });
            return;
        };
        debug!(serial = %self.cfg.serial, %from, realm, port, service = %service.addr, "device: BIND, connecting");
        self.next_conn_id += 1;
        let key = ConnKey {
            peer: from,
            realm,
            id: self.next_conn_id,
        };
        let conn = RealmConn::connect(key, port, service, self.bridge_tx.clone());
        self.conns.insert((from, realm), conn);
    }

    fn pump_all(&mut self) {
        let now = Instant::now();
        let keys: Vec<SocketAddr> = self.peers.keys().copied().collect();
        for k in keys {
            while let Some(peer) = self.peers.get_mut(&k) {
                let mut progressed = false;
                while let Some(d) = peer.session.poll_transmit(now) {
                    self.outbox.push((k, d));
                    progressed = true;
                }
                let mut events = Vec::new();
                while let Some(e) = peer.session.poll_event() {
                    events.push(e);
                }
                if events.is_empty() && !progressed {
                    break;
                }
                for e in events {
                    self.on_event(k, e);
                }
            }
            self.publish(k);
        }
        self.peers.retain(|_, p| p.session.close_reason().is_none());
    }

    fn publish(&self, k: SocketAddr) {
        let Some(p) = self.peers.get(&k) else {
            return;
        };
        self.shared.lock().record_ptcp(PtcpRecord {
            owner: PtcpOwner::Device(self.cfg.serial.clone()),
            peer: k,
            stats: p.session.stats(),
            authenticated: p.authenticated,
            auth_failed: p.auth_failed,
            closed: p.session.close_reason(),
        });
    }

    async fn flush_outbox(&mut self) {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.raw_out);
        for (to, d) in std::mem::take(&mut self.outbox) {
            out.extend(self.tx_imp.apply(now, to, d));
        }
        let dropped = self.rx_imp.dropped + self.tx_imp.dropped;
        if dropped != self.dropped_reported {
            self.shared.lock().counters.ptcp_dropped += dropped - self.dropped_reported;
            self.dropped_reported = dropped;
        }
        for (to, d) in out {
            if let Err(e) = self.socket.send_to(&d, to).await {
                warn!(serial = %self.cfg.serial, %to, "device: send failed: {e}");
            }
        }
    }
}

/// A sleep until `deadline` (an hour when there is none).
pub(crate) fn sleep_until(deadline: Option<Instant>) -> tokio::time::Sleep {
    let at = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    tokio::time::sleep_until(tokio::time::Instant::from_std(at))
}
