//! The simulated relay agent: one UDP socket that takes `/relay/start/{Token}`, sends the
//! relay-channel notice (`HTTP/1.1 200 Server Nat Info!`), runs a PTCP session (role Agent:
//! SYN → SYN, `0x17` → empty ack + `0x18` sign) per registered client socket, and in relay
//! mode forwards realms to the device.
//!
//! Relay forwarding terminates PTCP at the agent (the real agent's behaviour is unknown,
//! §8/§9 \[U\]): a BIND on the client's session opens a realm of the agent's own on a second
//! PTCP session, the agent's *leg* to the device (from this same socket, the agent in the
//! Client role; the device accepts that leg without a sign, the agent having vetted its client
//! by token). CONN/DISC propagate both ways and DATA is copied between the two realms, so
//! relayed bytes still cross a real PTCP-over-UDP hop with its own acks and retransmissions.
//! Realm ids on the leg are the agent's (clients may pick colliding ids).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dahua_p2p::demux::{Kind, classify};
use dahua_p2p::dhhttp::{Request, Response};
use dahua_p2p::ptcp::{Config, Event, Header, Session};
use dahua_p2p::xmlbody::XmlBody;
use text::hex_excerpt;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, info, warn};

use super::device::sleep_until;
use super::endpoint::{
    Admission, HttpFront, MAX_DATAGRAM, Replier, not_found, now_unix, xml_reply,
};
use super::faults::Impairment;
use super::state::{PtcpOwner, PtcpRecord, Shared, segments};

/// Bytes the agent buffers per relayed realm and direction before it gives up on the realm.
const RELAY_BUFFER_LIMIT: usize = 2 * 1024 * 1024;
/// Client backlog above which the agent stops reading its device legs (flow control).
const RELAY_HIGH_WATER: usize = 512 * 1024;

/// How long a leg to a device lingers without realms.
const LEG_LINGER: Duration = Duration::from_secs(30);

/// What the cloud asks of the agent.
#[derive(Debug)]
pub(crate) enum AgentCmd {
    /// Send the relay-channel notice to a client's relay socket.
    Notice { to: SocketAddr, response: Response },
    /// `/relay/unbind/{token}`: end that client's session.
    Unbind { token: String },
}

/// The agent's PTCP settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AgentConfig {
    /// Sessions end after this long without a datagram.
    pub idle_timeout: Duration,
    /// Most unacknowledged DATA bytes in flight per session.
    pub send_window: u32,
    /// `(seed, loss, dup, reorder)` for its PTCP traffic.
    pub impair: (u64, f64, f64, f64),
}

struct ClientSess {
    token: String,
    session: Session,
    /// Client realm → (device address, leg realm).
    realms: HashMap<u32, (SocketAddr, u32)>,
}

struct Leg {
    serial: String,
    session: Session,
    /// Leg realm → (client address, client realm).
    realms: HashMap<u32, (SocketAddr, u32)>,
    empty_since: Option<Instant>,
}

/// Which session a datagram or event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    Client(SocketAddr),
    Leg(SocketAddr),
}

/// The agent's task state.
pub(crate) struct AgentTask {
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    front: HttpFront,
    replier: Replier,
    cmd_rx: UnboundedReceiver<AgentCmd>,
    idle_timeout: Duration,
    send_window: u32,
    clients: HashMap<SocketAddr, ClientSess>,
    legs: HashMap<SocketAddr, Leg>,
    /// Bytes waiting for room in a leg realm: (device, leg realm).
    to_leg: HashMap<(SocketAddr, u32), VecDeque<Bytes>>,
    /// Bytes waiting for room in a client realm: (client, client realm).
    to_client: HashMap<(SocketAddr, u32), VecDeque<Bytes>>,
    /// Client realms whose device side closed: DISC once their queue is sent.
    close_after_flush: std::collections::HashSet<(SocketAddr, u32)>,
    rx_imp: Impairment,
    tx_imp: Impairment,
    dropped_reported: u64,
    outbox: Vec<(SocketAddr, Vec<u8>)>,
}

impl AgentTask {
    /// The agent on `socket`.
    pub fn new(
        socket: Arc<UdpSocket>,
        shared: Arc<Shared>,
        front: HttpFront,
        replier: Replier,
        cmd_rx: UnboundedReceiver<AgentCmd>,
        cfg: AgentConfig,
    ) -> Self {
        let AgentConfig {
            idle_timeout,
            send_window,
            impair: (seed, loss, dup, reorder),
        } = cfg;
        AgentTask {
            socket,
            shared,
            front,
            replier,
            cmd_rx,
            idle_timeout,
            send_window,
            clients: HashMap::new(),
            legs: HashMap::new(),
            to_leg: HashMap::new(),
            to_client: HashMap::new(),
            close_after_flush: Default::default(),
            rx_imp: Impairment::new(seed ^ 0xa6e7_0002, loss, dup, reorder),
            tx_imp: Impairment::new(seed ^ 0xa6e7_0003, loss, dup, reorder),
            dropped_reported: 0,
            outbox: Vec::new(),
        }
    }

    /// Runs until the simulator stops.
    pub async fn run(mut self) {
        let socket = self.socket.clone();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let sleep = sleep_until(self.next_deadline());
            tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let d = buf[..n].to_vec();
                        self.on_datagram(&d, from).await;
                    }
                    Err(e) => {
                        debug!("agent receive error (ignored): {e}");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(c) => self.on_cmd(c).await,
                    None => return,
                },
                () = sleep => self.on_timers(Instant::now()),
            }
            self.pump_all();
            self.flush_outbox().await;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(|c| c.session.poll_timeout())
            .chain(self.legs.values().filter_map(|l| l.session.poll_timeout()))
            .chain(
                self.legs
                    .values()
                    .filter_map(|l| l.empty_since.map(|t| t + LEG_LINGER)),
            )
            .chain(self.rx_imp.deadline())
            .chain(self.tx_imp.deadline())
            .min()
    }

    async fn on_datagram(&mut self, d: &[u8], from: SocketAddr) {
        match classify(d) {
            Kind::Http => match self.front.admit(d, from) {
                Admission::Accept(req) => {
                    let r = self.on_http(&req, from);
                    self.replier.send(from, r).await;
                }
                Admission::Refuse(r) => self.replier.send(from, r).await,
                Admission::Ignore => {}
            },
            Kind::Ptcp => {
                let now = Instant::now();
                for (from, d) in self.rx_imp.apply(now, from, d.to_vec()) {
                    self.on_ptcp(&d, from, now);
                }
            }
            other => {
                debug!(%from, ?other, bytes = %hex_excerpt(d), "agent: datagram ignored");
            }
        }
    }

    fn on_http(&mut self, req: &Request, from: SocketAddr) -> Response {
        let segs = segments(&req.path);
        let ["relay", "start", token] = segs.as_slice() else {
            debug!(path = %req.path, "agent: unknown path");
            return not_found(req, None);
        };
        let seq = {
            let mut st = self.shared.lock();
            match st.relay.get_mut(*token) {
                Some(r) if !r.unbound => {
                    r.client = Some(from);
                    r.seq
                }
                _ => {
                    info!(%from, token, "agent: /relay/start with an unknown or unbound token, 404");
                    return not_found(req, None);
                }
            }
        };
        if self.clients.get(&from).is_some_and(|c| c.token != *token) {
            info!(%from, "agent: socket re-registered with a new token, old session dropped");
            self.drop_client(from);
        }
        info!(%from, token, "agent: relay started");
        xml_reply(
            req,
            200,
            "OK",
            &XmlBody::new()
                .with("SID", seq.to_string())
                .with("Time", now_unix().to_string()),
        )
    }

    async fn on_cmd(&mut self, cmd: AgentCmd) {
        match cmd {
            AgentCmd::Notice { to, response } => {
                info!(%to, cseq = ?response.headers.get("CSeq"), "agent: 200 Server Nat Info! (relay-channel)");
                self.shared.lock().counters.relay_notices += 1;
                self.replier.send(to, response).await;
            }
            AgentCmd::Unbind { token } => {
                let addrs: Vec<SocketAddr> = self
                    .clients
                    .iter()
                    .filter(|(_, c)| c.token == token)
                    .map(|(a, _)| *a)
                    .collect();
                for a in addrs {
                    info!(client = %a, "agent: session unbound");
                    self.drop_client(a);
                }
            }
        }
    }

    /// Ends a client's session now, closing the leg realms it had.
    fn drop_client(&mut self, addr: SocketAddr) {
        if let Some(mut c) = self.clients.remove(&addr) {
            c.session.close();
            self.publish_client(addr, &c);
            for (r, (dev, l)) in c.realms {
                self.to_client.remove(&(addr, r));
                self.to_leg.remove(&(dev, l));
                if let Some(leg) = self.legs.get_mut(&dev) {
                    leg.realms.remove(&l);
                    leg.session.close_realm(l);
                }
            }
        }
    }

    fn on_ptcp(&mut self, d: &[u8], from: SocketAddr, now: Instant) {
        let res = if let Some(leg) = self.legs.get_mut(&from) {
            leg.session.handle_input(now, d)
        } else if let Some(c) = self.clients.get_mut(&from) {
            c.session.handle_input(now, d)
        } else {
            if Header::parse(d).is_err() {
                return;
            }
            let found = self
                .shared
                .lock()
                .relay_by_client(from)
                .map(|(t, r)| (t.clone(), r.sign.clone()));
            let Some((token, sign)) = found else {
                debug!(%from, "agent: PTCP from a socket without /relay/start, ignored");
                return;
            };
            info!(%from, token = %token, "agent: new PTCP session");
            let mut config = Config::agent(sign);
            config.idle_timeout = self.idle_timeout;
            config.send_window = self.send_window;
            let mut c = ClientSess {
                token,
                session: Session::new(config, now),
                realms: HashMap::new(),
            };
            let res = c.session.handle_input(now, d);
            self.clients.insert(from, c);
            res
        };
        if let Err(e) = res {
            debug!(%from, error = %e, "agent: bad PTCP datagram");
        }
    }

    fn on_timers(&mut self, now: Instant) {
        while let Some((from, d)) = self.rx_imp.flush_due(now) {
            self.on_ptcp(&d, from, now);
        }
        while let Some(x) = self.tx_imp.flush_due(now) {
            self.outbox.push(x);
        }
        for c in self.clients.values_mut() {
            if c.session.poll_timeout().is_some_and(|t| t <= now) {
                c.session.handle_timeout(now);
            }
        }
        for l in self.legs.values_mut() {
            if l.session.poll_timeout().is_some_and(|t| t <= now) {
                l.session.handle_timeout(now);
            }
            if l.empty_since.is_some_and(|t| t + LEG_LINGER <= now) {
                l.session.close();
            }
        }
    }

    fn session_mut(&mut self, side: Side) -> Option<&mut Session> {
        match side {
            Side::Client(a) => self.clients.get_mut(&a).map(|c| &mut c.session),
            Side::Leg(a) => self.legs.get_mut(&a).map(|l| &mut l.session),
        }
    }

    fn sides(&self) -> Vec<Side> {
        self.clients
            .keys()
            .map(|a| Side::Client(*a))
            .chain(self.legs.keys().map(|a| Side::Leg(*a)))
            .collect()
    }

    /// Bytes received from devices and not yet taken by the clients' sessions.
    fn client_backlog(&self) -> usize {
        self.to_client
            .values()
            .map(|q| q.iter().map(Bytes::len).sum::<usize>())
            .sum()
    }

    fn pump_all(&mut self) {
        let now = Instant::now();
        // Forwarding can wake the other side (or open a leg), so go round until nothing moves.
        let mut rounds = 0;
        loop {
            let mut moved = false;
            for side in self.sides() {
                loop {
                    // Flow control: while clients have a backlog, leave the device legs'
                    // data unread; their sessions stop acknowledging and the device holds
                    // back, as a real relay must.
                    let hold =
                        matches!(side, Side::Leg(_)) && self.client_backlog() > RELAY_HIGH_WATER;
                    let Some(s) = self.session_mut(side) else {
                        break;
                    };
                    let mut progressed = false;
                    let addr = match side {
                        Side::Client(a) | Side::Leg(a) => a,
                    };
                    let mut out = Vec::new();
                    while let Some(d) = s.poll_transmit(now) {
                        out.push((addr, d));
                        progressed = true;
                    }
                    let mut events = Vec::new();
                    while !hold && let Some(e) = s.poll_event() {
                        events.push(e);
                    }
                    self.outbox.extend(out);
                    if events.is_empty() && !progressed {
                        break;
                    }
                    moved = true;
                    for e in events {
                        match side {
                            Side::Client(a) => self.on_client_event(a, e),
                            Side::Leg(a) => self.on_leg_event(a, e),
                        }
                    }
                }
            }
            rounds += 1;
            if !moved || rounds > 64 {
                break;
            }
        }
        for leg in self.legs.values_mut() {
            if !leg.realms.is_empty() {
                leg.empty_since = None;
            } else if leg.empty_since.is_none() {
                leg.empty_since = Some(now);
            }
        }
        for side in self.sides() {
            match side {
                Side::Client(a) => {
                    if let Some(c) = self.clients.get(&a) {
                        self.publish_client(a, c);
                    }
                }
                Side::Leg(a) => {
                    if let Some(l) = self.legs.get(&a) {
                        self.shared.lock().record_ptcp(PtcpRecord {
                            owner: PtcpOwner::AgentLeg(l.serial.clone()),
                            peer: a,
                            stats: l.session.stats(),
                            authenticated: false,
                            auth_failed: false,
                            closed: l.session.close_reason(),
                        });
                    }
                }
            }
        }
        let closed_clients: Vec<SocketAddr> = self
            .clients
            .iter()
            .filter(|(_, c)| c.session.close_reason().is_some())
            .map(|(a, _)| *a)
            .collect();
        for a in closed_clients {
            self.drop_client(a);
        }
        let closed_legs: Vec<SocketAddr> = self
            .legs
            .iter()
            .filter(|(_, l)| l.session.close_reason().is_some())
            .map(|(a, _)| *a)
            .collect();
        for a in closed_legs {
            self.drop_leg(a);
        }
    }

    fn publish_client(&self, a: SocketAddr, c: &ClientSess) {
        self.shared.lock().record_ptcp(PtcpRecord {
            owner: PtcpOwner::Agent,
            peer: a,
            stats: c.session.stats(),
            authenticated: false,
            auth_failed: false,
            closed: c.session.close_reason(),
        });
    }

    /// Ends a leg, closing the client realms it carried.
    fn drop_leg(&mut self, dev: SocketAddr) {
        if let Some(leg) = self.legs.remove(&dev) {
            info!(device = %dev, serial = %leg.serial, "agent: leg to the device closed");
            for (l, (client, r)) in leg.realms {
                self.to_leg.remove(&(dev, l));
                self.to_client.remove(&(client, r));
                if let Some(c) = self.clients.get_mut(&client) {
                    c.realms.remove(&r);
                    c.session.close_realm(r);
                }
            }
        }
    }

    fn on_client_event(&mut self, client: SocketAddr, ev: Event) {
        match ev {
            Event::Connected => info!(%client, "agent: PTCP SYN exchanged"),
            Event::BindRequest { realm, port, ip } => self.on_client_bind(client, realm, port, ip),
            Event::Data { realm, data } => {
                let Some(&(dev, l)) = self.clients.get(&client).and_then(|c| c.realms.get(&realm))
                else {
                    return;
                };
                self.to_leg.entry((dev, l)).or_default().push_back(data);
                self.flush_to_leg(dev, l);
            }
            Event::RealmClosed(realm) => {
                let Some((dev, l)) = self
                    .clients
                    .get_mut(&client)
                    .and_then(|c| c.realms.remove(&realm))
                else {
                    return;
                };
                debug!(%client, realm, leg_realm = l, "agent: client closed a relayed realm");
                self.to_client.remove(&(client, realm));
                if let Some(leg) = self.legs.get_mut(&dev) {
                    leg.realms.remove(&l);
                    leg.session.close_realm(l);
                }
            }
            Event::Writable(realm) => self.flush_to_client(client, realm),
            Event::Closed(reason) => info!(%client, ?reason, "agent: PTCP session closed"),
            other => debug!(%client, ?other, "agent: PTCP event ignored"),
        }
    }

    fn on_client_bind(
        &mut self,
        client: SocketAddr,
        realm: u32,
        port: u16,
        ip: std::net::Ipv4Addr,
    ) {
        let Some(token) = self.clients.get(&client).map(|c| c.token.clone()) else {
            return;
        };
        let target = {
            let st = self.shared.lock();
            st.relay
                .get(&token)
                .and_then(|r| r.device.clone())
                .and_then(|sn| st.devices.get(&sn).map(|d| (sn, d.addr, d.online)))
        };
        let Some((serial, dev, true)) = target else {
            info!(%client, realm, port, "agent: BIND but no (online) device attached by relay-channel, DISC");
            if let Some(c) = self.clients.get_mut(&client) {
                c.session.refuse_realm(realm);
            }
            return;
        };
        let now = Instant::now();
        let leg = self.legs.entry(dev).or_insert_with(|| {
            info!(device = %dev, serial = %serial, "agent: opening a PTCP leg to the device");
            let mut config = Config::client();
            config.idle_timeout = self.idle_timeout;
            config.send_window = self.send_window;
            let mut session = Session::new(config, now);
            session.connect(now);
            Leg {
                serial: serial.clone(),
                session,
                realms: HashMap::new(),
                empty_since: None,
            }
        });
        let mut l: u32 = rand::random();
        while leg.realms.contains_key(&l) || leg.session.realm_state(l).is_some() {
            l = rand::random();
        }
        if let Err(e) = leg.session.open_realm_to(l, ip, port) {
            warn!(device = %dev, "agent: cannot open a leg realm: {e}");
            if let Some(c) = self.clients.get_mut(&client) {
                c.session.refuse_realm(realm);
            }
            return;
        }
        leg.realms.insert(l, (client, realm));
        if let Some(c) = self.clients.get_mut(&client) {
            c.realms.insert(realm, (dev, l));
        }
        self.shared.lock().counters.relay_realms += 1;
        info!(%client, realm, port, device = %dev, leg_realm = l, "agent: relaying BIND to the device");
    }

    fn on_leg_event(&mut self, dev: SocketAddr, ev: Event) {
        let lookup = |task: &Self, l: u32| {
            task.legs
                .get(&dev)
                .and_then(|leg| leg.realms.get(&l))
                .copied()
        };
        match ev {
            Event::Connected => info!(device = %dev, "agent: leg SYN exchanged"),
            Event::RealmConnected(l) => {
                if let Some((client, r)) = lookup(self, l)
                    && let Some(c) = self.clients.get_mut(&client)
                {
                    info!(%client, realm = r, "agent: device connected the realm, CONN to the client");
                    c.session.accept_realm(r);
                }
            }
            Event::RealmRefused(l) | Event::RealmClosed(l) => {
                let Some((client, r)) = lookup(self, l) else {
                    return;
                };
                debug!(%client, realm = r, leg_realm = l, "agent: device refused or closed the realm");
                if let Some(leg) = self.legs.get_mut(&dev) {
                    leg.realms.remove(&l);
                }
                self.to_leg.remove(&(dev, l));
                // What is queued toward the client goes into its session before the DISC;
                // what does not fit yet is sent as the client's session takes it, and the
                // DISC after it.
                if let Some(c) = self.clients.get_mut(&client) {
                    c.realms.remove(&r);
                }
                self.flush_to_client(client, r);
                if self.to_client.contains_key(&(client, r)) {
                    self.close_after_flush.insert((client, r));
                } else if let Some(c) = self.clients.get_mut(&client) {
                    // Pending: refuse (DISC); open: close after the buffered data.
                    c.session.close_realm(r);
                }
            }
            Event::Data { realm: l, data } => {
                let Some((client, r)) = lookup(self, l) else {
                    return;
                };
                self.to_client
                    .entry((client, r))
                    .or_default()
                    .push_back(data);
                self.flush_to_client(client, r);
            }
            Event::Writable(l) => self.flush_to_leg(dev, l),
            Event::Closed(reason) => info!(device = %dev, ?reason, "agent: leg closed"),
            other => debug!(device = %dev, ?other, "agent: leg event ignored"),
        }
    }

    fn flush_to_leg(&mut self, dev: SocketAddr, l: u32) {
        let Some(q) = self.to_leg.get_mut(&(dev, l)) else {
            return;
        };
        let Some(leg) = self.legs.get_mut(&dev) else {
            self.to_leg.remove(&(dev, l));
            return;
        };
        let left = drain_into(q, &mut leg.session, l);
        if left == 0 {
            self.to_leg.remove(&(dev, l));
        } else if left > RELAY_BUFFER_LIMIT {
            let peer = leg.realms.get(&l).copied();
            self.overflow(peer, Some((dev, l)));
        }
    }

    fn flush_to_client(&mut self, client: SocketAddr, r: u32) {
        let Some(q) = self.to_client.get_mut(&(client, r)) else {
            return;
        };
        let Some(c) = self.clients.get_mut(&client) else {
            self.to_client.remove(&(client, r));
            return;
        };
        let left = drain_into(q, &mut c.session, r);
        if left == 0 {
            self.to_client.remove(&(client, r));
            if self.close_after_flush.remove(&(client, r)) {
                c.session.close_realm(r);
            }
        } else if left > RELAY_BUFFER_LIMIT {
            let leg = c.realms.get(&r).copied();
            self.overflow(Some((client, r)), leg);
        }
    }

    /// One side cannot keep up: drop the realm on both sides.
    fn overflow(&mut self, client: Option<(SocketAddr, u32)>, leg: Option<(SocketAddr, u32)>) {
        warn!(
            ?client,
            ?leg,
            "agent: relay buffer overflow, closing the realm"
        );
        self.shared.lock().counters.relay_overflows += 1;
        if let Some((a, r)) = client {
            self.to_client.remove(&(a, r));
            if let Some(c) = self.clients.get_mut(&a) {
                c.realms.remove(&r);
                c.session.close_realm(r);
            }
        }
        if let Some((d, l)) = leg {
            self.to_leg.remove(&(d, l));
            if let Some(leg) = self.legs.get_mut(&d) {
                leg.realms.remove(&l);
                leg.session.close_realm(l);
            }
        }
    }

    async fn flush_outbox(&mut self) {
        let now = Instant::now();
        let mut out = Vec::new();
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
                warn!(%to, "agent: send failed: {e}");
            }
        }
    }
}

/// Moves queued bytes into a session's realm; returns the bytes still queued.
fn drain_into(q: &mut VecDeque<Bytes>, session: &mut Session, realm: u32) -> usize {
    while let Some(front) = q.front_mut() {
        let n = session.send(realm, front);
        if n == front.len() {
            q.pop_front();
        } else {
            let _ = front.split_to(n);
            break;
        }
    }
    q.iter().map(Bytes::len).sum()
}
