//! What the simulated cloud, agent and devices share in-process (device registry, relay
//! sessions, the p2p-channel ↔ relay-channel pairing that tells a device which agent sign to
//! expect) and what they record for tests to assert ([`Observations`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dahua_p2p::addr::Aid;
use dahua_p2p::devauth::DeviceCredentials;
use dahua_p2p::ptcp::{CloseReason, Stats};
use tokio::sync::mpsc::UnboundedSender;

use super::device::DeviceCmd;

/// Most request records kept; older ones are forgotten.
const MAX_REQUEST_RECORDS: usize = 100_000;

/// Most p2p-channel, realm and PTCP records kept each.
const MAX_RECORDS: usize = 10_000;

/// A p2p-channel is a candidate for pairing with a relay-channel for this long.
pub(crate) const CHANNEL_PAIRING_WINDOW: Duration = Duration::from_secs(60);

/// Which simulated server saw a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    /// The main server (`--cloud`).
    Main,
    /// The P2P server "US".
    P2pServer,
    /// The relay dispatcher.
    Relay,
    /// The relay agent.
    Agent,
}

/// One DH-HTTP request datagram a server received (parsed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The server it reached.
    pub server: Server,
    /// The verb as sent.
    pub method: String,
    /// The path as sent.
    pub path: String,
    /// The source address.
    pub from: SocketAddr,
    /// The `CSeq` header, if any.
    pub cseq: Option<String>,
    /// Ignored by the `drop_first_datagram` fault.
    pub dropped: bool,
}

/// One `/device/{SN}/p2p-channel` request and what the cloud answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P2pChannelRecord {
    /// Serial in the path.
    pub serial: String,
    /// Source address of the request: the client's S_dev mapping, which the device punches.
    pub from: SocketAddr,
    /// The AID (`Identify`), when it parsed.
    pub aid: Option<Aid>,
    /// The request carried a type-1 auth block.
    pub has_auth: bool,
    /// The final status the cloud sent (200, 400, 403 or 404).
    pub status: u16,
    /// The `<Error>` text of a refusal.
    pub error: Option<String>,
}

/// A relay allocation (`/relay/agent` token) and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelaySessionRecord {
    /// The token.
    pub token: String,
    /// The client's relay socket, once `/relay/start/{token}` arrived.
    pub client: Option<SocketAddr>,
    /// The device attached by `/device/{SN}/relay-channel`.
    pub device: Option<String>,
    /// The sign the agent hands out on this session (`0x18`).
    pub sign: Bytes,
    /// Released by `/relay/unbind/{token}`.
    pub unbound: bool,
}

/// Which way a realm reached the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RealmVia {
    /// The client's own PTCP session with the device (after the punch).
    Direct,
    /// The relay agent's PTCP leg (the client BINDs at the agent).
    Relay,
}

/// One BIND a device answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmRecord {
    /// The device.
    pub serial: String,
    /// Direct or through the agent.
    pub via: RealmVia,
    /// The PTCP peer of the device (the client's S_dev, or the agent).
    pub peer: SocketAddr,
    /// The realm id on that session.
    pub realm: u32,
    /// The realm port (554, 80, …).
    pub port: u16,
    /// CONN was sent (false: DISC, refused).
    pub connected: bool,
}

/// Inverted-STUN counters of all devices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StunCounters {
    /// Binding Requests the devices sent toward clients.
    pub requests_sent: u64,
    /// Binding Requests the devices received.
    pub requests_received: u64,
    /// Binding Success Responses the devices sent.
    pub responses_sent: u64,
    /// Success Responses and confirms the devices received.
    pub responses_received: u64,
    /// STUN datagrams ignored (unknown client, AID mismatch, `punch_fails`, unparseable).
    pub ignored: u64,
}

/// Who owns a PTCP session in the simulator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PtcpOwner {
    /// A device's session with a client (direct) or with the agent's leg.
    Device(String),
    /// The agent's session with a client's relay socket.
    Agent,
    /// The agent's leg toward a device (the agent is the PTCP client there).
    AgentLeg(String),
}

/// The latest state of one PTCP session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtcpRecord {
    /// Who runs it.
    pub owner: PtcpOwner,
    /// The remote address.
    pub peer: SocketAddr,
    /// The session's counters at its last activity.
    pub stats: Stats,
    /// (Device) the client presented the right sign and finished the auth dialogue.
    pub authenticated: bool,
    /// (Device) a wrong sign was presented.
    pub auth_failed: bool,
    /// Why it closed, once it has.
    pub closed: Option<CloseReason>,
}

/// Miscellaneous counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Realms a device closed because of `disc_after`.
    pub device_discs: u64,
    /// Realms the agent dropped because one side could not keep up.
    pub relay_overflows: u64,
    /// Realms the agent forwarded to a device.
    pub relay_realms: u64,
    /// `HTTP/1.1 200 Server Nat Info!` notices the agent sent for relay-channel requests.
    pub relay_notices: u64,
    /// PTCP datagrams the impairment knobs dropped.
    pub ptcp_dropped: u64,
}

/// Everything the simulator recorded, for tests to assert.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Every parsed DH-HTTP request, oldest first.
    pub requests: Vec<RequestRecord>,
    /// p2p-channel requests and their outcomes.
    pub p2p_channels: Vec<P2pChannelRecord>,
    /// Relay allocations.
    pub relay_sessions: Vec<RelaySessionRecord>,
    /// BINDs answered by devices.
    pub realms: Vec<RealmRecord>,
    /// STUN counters.
    pub stun: StunCounters,
    /// PTCP sessions (the latest record per owner and peer).
    pub ptcp: Vec<PtcpRecord>,
    /// Other counters.
    pub counters: Counters,
}

impl Observations {
    /// How many request datagrams had this path (query ignored), dropped ones included.
    pub fn requests_to(&self, path: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| strip_query(&r.path) == strip_query(path))
            .count()
    }

    /// The PTCP records of one owner.
    pub fn ptcp_of(&self, owner: &PtcpOwner) -> Vec<&PtcpRecord> {
        self.ptcp.iter().filter(|r| &r.owner == owner).collect()
    }
}

/// A path without its `?query`.
pub(crate) fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The non-empty segments of a path (query stripped).
pub(crate) fn segments(path: &str) -> Vec<&str> {
    strip_query(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The listening addresses of the simulated cloud.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Addrs {
    pub main: SocketAddr,
    pub us: SocketAddr,
    pub relay: SocketAddr,
    pub agent: SocketAddr,
}

/// A client that asked for a p2p channel to a device.
#[derive(Clone, Debug)]
pub(crate) struct Channel {
    /// The p2p-channel source address (S_dev).
    pub client: SocketAddr,
    /// Its `Identify`.
    pub aid: Aid,
    /// When it asked.
    pub at: Instant,
    /// The relay token paired with it (by a relay-channel from the same client IP).
    pub token: Option<String>,
    /// The sign of that relay session: what the client must present in `0x19`.
    pub sign: Option<Bytes>,
}

/// A device as the cloud knows it.
pub(crate) struct DeviceEntry {
    pub creds: DeviceCredentials,
    pub device_type: u8,
    pub online: bool,
    pub addr: SocketAddr,
    pub cmd: UnboundedSender<DeviceCmd>,
    pub channels: Vec<Channel>,
}

/// A relay allocation.
pub(crate) struct RelayEntry {
    pub sign: Bytes,
    pub client: Option<SocketAddr>,
    pub device: Option<String>,
    pub unbound: bool,
    /// Order of allocation, for stable snapshots.
    pub seq: u64,
}

/// The mutable shared state.
#[derive(Default)]
pub(crate) struct State {
    pub devices: BTreeMap<String, DeviceEntry>,
    pub relay: HashMap<String, RelayEntry>,
    pub relay_seq: u64,
    requests: VecDeque<RequestRecord>,
    p2p_channels: VecDeque<P2pChannelRecord>,
    realms: VecDeque<RealmRecord>,
    ptcp: BTreeMap<(PtcpOwner, SocketAddr), PtcpRecord>,
    pub stun: StunCounters,
    pub counters: Counters,
}

impl State {
    /// Records a request datagram.
    pub fn record_request(&mut self, r: RequestRecord) {
        push_capped(&mut self.requests, r, MAX_REQUEST_RECORDS);
    }

    /// Records a p2p-channel outcome.
    pub fn record_p2p_channel(&mut self, r: P2pChannelRecord) {
        push_capped(&mut self.p2p_channels, r, MAX_RECORDS);
    }

    /// Records a BIND answer.
    pub fn record_realm(&mut self, r: RealmRecord) {
        push_capped(&mut self.realms, r, MAX_RECORDS);
    }

    /// Updates the record of one PTCP session.
    pub fn record_ptcp(&mut self, r: PtcpRecord) {
        let key = (r.owner.clone(), r.peer);
        if !self.ptcp.contains_key(&key) && self.ptcp.len() >= MAX_RECORDS {
            // Forget a closed session to make room; keep live ones.
            if let Some(k) = self
                .ptcp
                .iter()
                .find(|(_, v)| v.closed.is_some())
                .map(|(k, _)| k.clone())
            {
                self.ptcp.remove(&k);
            } else {
                return;
            }
        }
        self.ptcp.insert(key, r);
    }

    /// The relay session whose client registered from `client` (not unbound).
    pub fn relay_by_client(&self, client: SocketAddr) -> Option<(&String, &RelayEntry)> {
        self.relay
            .iter()
            .filter(|(_, r)| r.client == Some(client) && !r.unbound)
            .max_by_key(|(_, r)| r.seq)
    }

    /// A copy of everything recorded.
    pub fn snapshot(&self) -> Observations {
        let mut relay: Vec<(&String, &RelayEntry)> = self.relay.iter().collect();
        relay.sort_by_key(|(_, r)| r.seq);
        Observations {
            requests: self.requests.iter().cloned().collect(),
            p2p_channels: self.p2p_channels.iter().cloned().collect(),
            relay_sessions: relay
                .into_iter()
                .map(|(t, r)| RelaySessionRecord {
                    token: t.clone(),
                    client: r.client,
                    device: r.device.clone(),
                    sign: r.sign.clone(),
                    unbound: r.unbound,
                })
                .collect(),
            realms: self.realms.iter().cloned().collect(),
            stun: self.stun.clone(),
            ptcp: self.ptcp.values().cloned().collect(),
            counters: self.counters.clone(),
        }
    }
}

fn push_capped<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(item);
}

/// The state behind one lock (held only for short, non-async sections).
#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state (a poisoned lock is still usable: every update is self-contained).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
