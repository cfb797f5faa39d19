//! PTCP session behaviours, one test each: handshakes and the golden frames they produce,
//! the agent sign and device auth dialogues, realms, reliability (retransmission, fast
//! retransmit, duplicates, reordering, window), counters wrapping, heartbeats and timeouts.
//! A deterministic two-node network with a virtual clock and a per-datagram fate hook; no
//! sockets, no sleeps.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dahua_p2p::ptcp::{
    AckPolicy, Body, CloseReason, Config, Event, Frame, Header, PidPolicy, RealmState, Session,
    Status,
};

const C: usize = 0;
const D: usize = 1;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What the network does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Deliver,
    Drop,
    Duplicate,
    Delay(Duration),
}

type Filter = Box<dyn FnMut(usize, &Frame) -> Fate>;

/// Two sessions joined by a link with a fixed one-way delay.
struct Net {
    now: Instant,
    s: [Session; 2],
    ev: [Vec<Event>; 2],
    /// Every frame each side put on the wire, in order (including ones the filter dropped).
    log: [Vec<Frame>; 2],
    queue: BTreeMap<(Instant, u64), (usize, Vec<u8>)>,
    n: u64,
    delay: Duration,
    /// Time one datagram occupies a side's uplink (so bursts arrive spread out).
    pace: Duration,
    uplink_free: [Instant; 2],
    filter: Filter,
    auto_accept: bool,
    hold_events: [bool; 2],
}

impl Net {
    fn new(client: Config, device: Config) -> Net {
        let now = Instant::now();
        Net {
            now,
            s: [Session::new(client, now), Session::new(device, now)],
            ev: [Vec::new(), Vec::new()],
            log: [Vec::new(), Vec::new()],
            queue: BTreeMap::new(),
            n: 0,
            delay: ms(10),
            pace: Duration::from_micros(100),
            uplink_free: [now, now],
            filter: Box::new(|_, _| Fate::Deliver),
            auto_accept: true,
            hold_events: [false, false],
        }
    }

    /// A client and a device (no sign required) with deterministic `lmid`s.
    fn pair() -> Net {
        Net::new(client_cfg(), device_cfg(None))
    }

    fn connected() -> Net {
        let mut net = Net::pair();
        net.connect();
        net
    }

    fn connect(&mut self) {
        let now = self.now;
        self.s[C].connect(now);
        assert!(self.run_until(secs(5), |n| n.has(D, &Event::Connected)
            && n.has(C, &Event::Connected)));
    }

    fn send_raw(&mut self, from: usize, dg: Vec<u8>, extra: Duration) {
        let depart = self.uplink_free[from].max(self.now);
        self.uplink_free[from] = depart + self.pace;
        let at = depart + self.delay + extra;
        self.n += 1;
        self.queue.insert((at, self.n), (1 - from, dg));
    }

    fn flush(&mut self) {
        loop {
            let mut any = false;
            for i in [C, D] {
                while let Some(dg) = self.s[i].poll_transmit(self.now) {
                    any = true;
                    let f = Frame::parse(&dg).expect("a session emitted an invalid frame");
                    let fate = (self.filter)(i, &f);
                    self.log[i].push(f);
                    match fate {
                        Fate::Deliver => self.send_raw(i, dg, Duration::ZERO),
                        Fate::Drop => {}
                        Fate::Duplicate => {
                            self.send_raw(i, dg.clone(), Duration::ZERO);
                            self.send_raw(i, dg, ms(1));
                        }
                        Fate::Delay(d) => self.send_raw(i, dg, d),
                    }
                }
                if !self.hold_events[i] {
                    while let Some(e) = self.s[i].poll_event() {
                        if let (true, Event::BindRequest { realm, .. }) = (self.auto_accept, &e) {
                            self.s[i].accept_realm(*realm);
                            any = true;
                        }
                        self.ev[i].push(e);
                    }
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Advances to the next delivery or timer at or before `until`; false if there is none.
    fn step(&mut self, until: Instant) -> bool {
        self.flush();
        let next_delivery = self.queue.keys().next().map(|k| k.0);
        let next = [
            next_delivery,
            self.s[C].poll_timeout(),
            self.s[D].poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = next.filter(|&t| t <= until) else {
            self.now = self.now.max(until);
            return false;
        };
        self.now = self.now.max(t);
        while let Some((&k, _)) = self.queue.first_key_value() {
            if k.0 > self.now {
                break;
            }
            let (to, dg) = self.queue.remove(&k).unwrap();
            let _ = self.s[to].handle_input(self.now, &dg);
        }
        for i in [C, D] {
            if self.s[i].poll_timeout().is_some_and(|t| t <= self.now) {
                self.s[i].handle_timeout(self.now);
            }
        }
        self.flush();
        true
    }

    fn run_until(&mut self, limit: Duration, pred: impl Fn(&Net) -> bool) -> bool {
        let until = self.now + limit;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(until) {
                return pred(self);
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.step(until) {}
    }

    fn has(&self, side: usize, e: &Event) -> bool {
        self.ev[side].contains(e)
    }

    fn open(&mut self, realm: u32) {
        self.s[C].open_realm(realm, 554).unwrap();
        assert!(self.run_until(secs(5), |n| n.has(C, &Event::RealmConnected(realm))));
    }

    /// Bytes delivered on `realm` to `side`.
    fn received(&self, side: usize, realm: u32) -> Vec<u8> {
        data_of(&self.ev[side], realm)
    }

    /// Sends all of `data` on `realm` from `side`, refilling as the buffer drains, and
    /// runs until the other side has it.
    fn transfer(&mut self, side: usize, realm: u32, data: &[u8], limit: Duration) {
        let total = self.received(1 - side, realm).len() + data.len();
        self.finish(side, realm, data, total, limit);
    }

    /// Sends `rest` on `realm` from `side` (refilling as the buffer drains) and runs until
    /// the other side has received `total` bytes on it.
    fn finish(&mut self, side: usize, realm: u32, rest: &[u8], total: usize, limit: Duration) {
        let until = self.now + limit;
        let mut off = 0;
        loop {
            off += self.s[side].send(realm, &rest[off..]);
            if self.received(1 - side, realm).len() >= total {
                return;
            }
            assert!(self.step(until), "transfer stalled at {off}/{}", rest.len());
        }
    }

    fn frames(&self, side: usize, pred: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        self.log[side].iter().filter(|f| pred(f)).cloned().collect()
    }
}

fn client_cfg() -> Config {
    Config::client()
}

fn device_cfg(sign: Option<&'static [u8]>) -> Config {
    let mut c = Config::device(sign.map(Bytes::from_static));
    c.initial_lmid = 1000;
    c
}

fn data_of(events: &[Event], realm: u32) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data { realm: r, data } if *r == realm => Some(&data[..]),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

fn pattern(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Asserts equal byte strings, reporting lengths and the first difference (not the bytes).
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "got {} bytes, want {}; first difference at {:?}",
            got.len(),
            want.len(),
            at
        );
    }
}

fn is_data(f: &Frame) -> bool {
    matches!(f.body, Body::Data { .. })
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// A hand-driven peer: builds frames with consistent `sent`/`lmid` counters.
struct RawPeer {
    sent: u32,
    lmid: u32,
}

impl RawPeer {
    fn new() -> Self {
        RawPeer { sent: 0, lmid: 500 }
    }

    fn frame(&mut self, recv: u32, body: Body) -> Vec<u8> {
        let len = body.wire_len() as u32;
        let f = Frame {
            header: Header {
                sent: self.sent,
                recv,
                pid: 0xFFFF,
                lmid: self.lmid,
                rmid: 0,
            },
            body,
        };
        self.sent = self.sent.wrapping_add(len);
        self.lmid = self.lmid.wrapping_add(1);
        f.to_bytes()
    }
}

fn drain_frames(s: &mut Session, now: Instant) -> Vec<Frame> {
    std::iter::from_fn(|| s.poll_transmit(now))
        .map(|dg| Frame::parse(&dg).unwrap())
        .collect()
}

fn drain_events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A device session that received a SYN from `peer`; returns the `recv` it expects next.
fn synced_device(sign: Option<&'static [u8]>, peer: &mut RawPeer, now: Instant) -> Session {
    let mut dev = Session::new(device_cfg(sign), now);
    dev.handle_input(now, &peer.frame(0, Body::Syn)).unwrap();
    let out = drain_frames(&mut dev, now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, Body::Syn);
    assert_eq!(drain_events(&mut dev), [Event::Connected]);
    dev
}

// ----- handshake and golden frames -----

#[test]
fn syn_exchange_connects_both_sides() {
    let net = Net::connected();
    let syn = &net.log[C][0];
    assert_eq!(
        syn.to_bytes(),
        h("50544350 00000000 00000000 0002ffff 00000000 00000000 00030100")
    );
    let reply = &net.log[D][0];
    assert_eq!(reply.body, Body::Syn);
    assert_eq!(
        reply.header,
        Header {
            sent: 0,
            recv: 4,
            pid: 0x0002_FFFF,
            lmid: 1000,
            rmid: 0
        }
    );
    // The client acknowledges the device's SYN with an empty frame.
    let ack = &net.log[C][1];
    assert_eq!(ack.body, Body::Empty);
    assert_eq!(
        (ack.header.sent, ack.header.recv, ack.header.rmid),
        (4, 4, 1000)
    );
    assert!(net.s[C].is_connected() && net.s[D].is_connected());
}

#[test]
fn device_answers_syn_with_syn_carrying_the_ack_and_no_separate_empty() {
    let net = Net::connected();
    assert!(net.log[D].iter().take(1).all(|f| f.body == Body::Syn));
    assert!(
        net.frames(D, |f| f.body.is_empty()).is_empty(),
        "device sent an empty frame for the SYN"
    );
}

#[test]
fn sign_request_after_syn_matches_the_synthetic_vector() {
    let mut client = client_cfg();
    client.ack_policy = AckPolicy::Coalesce {
        frames: 4,
        delay: ms(50),
    };
    let mut agent = Config::agent(Bytes::from_static(b"sign"));
    agent.initial_lmid = 0;
    let mut net = Net::new(client, agent);
    net.connect();
    net.s[C].request_sign();
    net.flush();
    let req = net.frames(C, |f| f.body == Body::SignRequest);
    assert_eq!(
        req[0].to_bytes(),
        h("50544350 00000004 00000004 0000ffff 00000001 00000000 17000000 00000000 00000000")
    );
}

#[test]
fn client_frames_reproduce_the_mcw0_capture() {
    let mut client = client_cfg();
    client.initial_lmid = 26;
    client.pid_policy = PidPolicy::RecvWindow;
    client.ack_policy = AckPolicy::Coalesce {
        frames: 4,
        delay: ms(50),
    };
    let mut device = device_cfg(None);
    device.initial_lmid = 0x0533_FE31;
    device.ack_policy = AckPolicy::Coalesce {
        frames: 4,
        delay: ms(50),
    };
    let mut net = Net::new(client, device);
    net.connect();
    let realm = 0x36EF_034A;
    net.s[C].open_realm(realm, 37777).unwrap();
    assert!(net.run_until(secs(1), |n| n.has(C, &Event::RealmConnected(realm))));
    let payload = h("a0010000 00000000 c4a3af48 9956b6b4 54abaeb6 0121d671 05020001 0000a1aa");
    assert_eq!(net.s[C].send(realm, &payload), 32);
    net.flush();
    let bind = &net.frames(C, |f| matches!(f.body, Body::Bind { .. }))[0];
    assert_eq!(
        bind.body.clone(),
        Body::parse(&h("11000000 36ef034a 00000000 00009391 7f000001")).unwrap()
    );
    let data = &net.frames(C, is_data)[0];
    assert_eq!(
        data.to_bytes(),
        h(
            "50544350 00000018 00000014 0000ffeb 0000001c 0533fe32 10000020 36ef034a \
           00000000 a0010000 00000000 c4a3af48 9956b6b4 54abaeb6 0121d671 05020001 0000a1aa"
        )
    );
}

#[test]
fn rmid_echoes_the_peer_lmid_whatever_it_starts_at() {
    let mut device = device_cfg(None);
    device.initial_lmid = u32::MAX - 1;
    let mut net = Net::new(client_cfg(), device);
    net.connect();
    net.open(9);
    // The device's lmids wrapped from u32::MAX to 0; the client's rmid followed.
    let last_d = net.log[D].last().unwrap().header.lmid;
    assert!(last_d < 10, "device lmid did not wrap: {last_d}");
    let last_c = net.log[C].last().unwrap();
    assert_eq!(last_c.header.rmid, last_d);
}

// ----- sign and auth -----

#[test]
fn agent_answers_sign_request_with_empty_ack_then_sign() {
    let sign = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
    let mut net = Net::new(client_cfg(), Config::agent(sign.clone()));
    net.connect();
    net.s[C].request_sign();
    assert!(net.run_until(secs(1), |n| {
        n.ev[C].iter().any(|e| matches!(e, Event::Sign(_)))
    }));
    assert!(net.has(C, &Event::Sign(sign.clone())));
    let after: Vec<&Frame> = net.log[D].iter().skip(1).collect();
    assert_eq!(after[0].body, Body::Empty, "agent must ack the 0x17 first");
    assert_eq!(after[1].body, Body::Sign(sign.clone()));
    let mut wire = after[1].to_bytes();
    let body = wire.split_off(24);
    assert_eq!(&body[..12], &[0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&body[12..], &sign[..]);
}

#[test]
fn device_auth_with_the_right_sign_authenticates_both_sides() {
    let mut net = Net::new(client_cfg(), device_cfg(Some(b"the-sign")));
    net.connect();
    net.s[C].authenticate(b"the-sign");
    assert!(net.run_until(secs(2), |n| n.has(C, &Event::Authenticated)));
    assert!(net.has(D, &Event::Authenticated));
    assert!(
        !net.frames(D, |f| matches!(f.body, Body::AuthResponse(_)))
            .is_empty()
    );
    assert!(!net.frames(C, |f| f.body == Body::AuthFinal).is_empty());
    net.open(77);
    assert_eq!(net.s[D].realm_state(77), Some(RealmState::Open));
}

#[test]
fn device_refuses_a_wrong_sign_and_binds_until_authenticated() {
    let mut net = Net::new(client_cfg(), device_cfg(Some(b"the-sign")));
    net.connect();
    net.s[C].open_realm(1, 554).unwrap();
    assert!(net.run_until(secs(1), |n| n.has(C, &Event::RealmRefused(1))));
    net.s[C].authenticate(b"forged");
    assert!(net.run_until(secs(30), |n| n.has(C, &Event::AuthFailed)));
    assert!(net.has(D, &Event::AuthFailed));
    assert!(!net.has(C, &Event::Authenticated) && !net.has(D, &Event::Authenticated));
    assert!(
        net.frames(D, |f| matches!(f.body, Body::AuthResponse(_)))
            .is_empty()
    );
    net.s[C].open_realm(2, 554).unwrap();
    assert!(net.run_until(secs(1), |n| n.has(C, &Event::RealmRefused(2))));
    assert!(
        !net.ev[D]
            .iter()
            .any(|e| matches!(e, Event::BindRequest { .. }))
    );
}

#[test]
fn client_takes_the_sign_after_empty_acks_heartbeats_and_short_sign_bodies() {
    let t = Instant::now();
    let mut client = Session::new(client_cfg(), t);
    let mut agent = RawPeer::new();
    client.connect(t);
    drain_frames(&mut client, t);
    client.handle_input(t, &agent.frame(4, Body::Syn)).unwrap();
    client.request_sign();
    drain_frames(&mut client, t);
    client
        .handle_input(t, &agent.frame(16, Body::Empty))
        .unwrap();
    client
        .handle_input(t, &agent.frame(16, Body::Heartbeat))
        .unwrap();
    client
        .handle_input(t, &agent.frame(16, Body::Sign(Bytes::new())))
        .unwrap();
    let sign = Bytes::from_static(&[7; 40]);
    client
        .handle_input(t, &agent.frame(16, Body::Sign(sign.clone())))
        .unwrap();
    let events = drain_events(&mut client);
    assert_eq!(events, [Event::Connected, Event::Sign(sign)]);
}

#[test]
fn auth_response_is_checked_by_its_first_byte_only() {
    let t = Instant::now();
    let mut client = Session::new(client_cfg(), t);
    let mut dev = RawPeer::new();
    client.connect(t);
    drain_frames(&mut client, t);
    client.handle_input(t, &dev.frame(4, Body::Syn)).unwrap();
    client.authenticate(b"s");
    drain_frames(&mut client, t);
    // An odd 0x1A body: two bytes only.
    let mut dg = Frame {
        header: Header {
            sent: dev.sent,
            recv: 17,
            pid: 0xFFFF,
            lmid: 9,
            rmid: 0,
        },
        body: Body::Empty,
    }
    .to_bytes();
    dg.extend([0x1a, 0xee]);
    dev.sent += 2;
    client.handle_input(t, &dg).unwrap();
    let out = drain_frames(&mut client, t);
    let fin = out
        .iter()
        .find(|f| f.body == Body::AuthFinal)
        .expect("no 0x1B");
    // The device acknowledges 0x1B with an empty frame: authenticated.
    let recv = fin.header.sent + 12;
    client
        .handle_input(t, &dev.frame(recv, Body::Empty))
        .unwrap();
    assert!(drain_events(&mut client).contains(&Event::Authenticated));
}

// ----- realms -----

#[test]
fn data_flows_both_ways_on_a_realm() {
    let mut net = Net::connected();
    net.open(5);
    let up = pattern(1, 10_000);
    let down = pattern(2, 30_000);
    net.transfer(C, 5, &up, secs(10));
    net.transfer(D, 5, &down, secs(10));
    assert_bytes(&net.received(D, 5), &up);
    assert_bytes(&net.received(C, 5), &down);
    let sizes: HashSet<usize> = net
        .frames(D, is_data)
        .iter()
        .map(|f| f.body.wire_len() - 12)
        .collect();
    assert!(sizes.iter().all(|&n| n <= 1280), "{sizes:?}");
}

#[test]
fn refused_bind_reports_realm_refused() {
    let mut net = Net::connected();
    net.auto_accept = false;
    net.s[C].open_realm(3, 80).unwrap();
    assert!(
        net.run_until(secs(1), |n| n.ev[D].contains(&Event::BindRequest {
            realm: 3,
            port: 80,
            ip: Ipv4Addr::LOCALHOST
        }))
    );
    assert!(net.s[D].refuse_realm(3));
    assert!(net.run_until(secs(1), |n| n.has(C, &Event::RealmRefused(3))));
    assert_eq!(net.s[C].realm_state(3), None);
    assert_eq!(net.s[D].realm_state(3), None);
}

#[test]
fn client_disc_closes_the_realm_and_device_replies_disc() {
    let mut net = Net::connected();
    net.open(4);
    net.transfer(C, 4, b"bye", secs(1));
    net.s[C].close_realm(4);
    assert!(net.run_until(secs(2), |n| n.has(C, &Event::RealmClosed(4))
        && n.has(D, &Event::RealmClosed(4))));
    let disc = Body::Status {
        realm: 4,
        status: Status::Disc,
        nul: false,
    };
    net.run_for(ms(100));
    assert_eq!(net.frames(C, |f| f.body == disc).len(), 1);
    assert_eq!(net.frames(D, |f| f.body == disc).len(), 1);
    assert_eq!((net.s[C].realm_count(), net.s[D].realm_count()), (0, 0));
}

#[test]
fn device_disc_closes_the_realm_on_the_client() {
    let mut net = Net::connected();
    net.open(6);
    net.s[D].close_realm(6);
    assert!(net.run_until(secs(2), |n| n.has(C, &Event::RealmClosed(6))
        && n.has(D, &Event::RealmClosed(6))));
    assert_eq!((net.s[C].realm_count(), net.s[D].realm_count()), (0, 0));
}

#[test]
fn close_flushes_buffered_data_before_disc() {
    let mut net = Net::connected();
    net.open(8);
    let data = pattern(8, 50_000);
    assert_eq!(net.s[C].send(8, &data), 50_000);
    net.s[C].close_realm(8);
    assert!(net.run_until(secs(10), |n| n.has(D, &Event::RealmClosed(8))));
    assert_bytes(&net.received(D, 8), &data);
}

#[test]
fn data_before_conn_is_answered_with_disc() {
    let t = Instant::now();
    let mut peer = RawPeer::new();
    let mut dev = synced_device(None, &mut peer, t);
    let bind = Body::Bind {
        realm: 42,
        port: 554,
        ip: Ipv4Addr::LOCALHOST,
    };
    dev.handle_input(t, &peer.frame(4, bind)).unwrap();
    assert!(matches!(
        drain_events(&mut dev)[..],
        [Event::BindRequest { realm: 42, .. }]
    ));
    let data = Body::Data {
        realm: 42,
        payload: Bytes::from_static(b"too early"),
    };
    dev.handle_input(t, &peer.frame(4, data)).unwrap();
    let out = drain_frames(&mut dev, t);
    assert!(out.iter().any(|f| f.body
        == Body::Status {
            realm: 42,
            status: Status::Disc,
            nul: false
        }));
    assert_eq!(drain_events(&mut dev), [Event::RealmClosed(42)]);
    assert!(!dev.accept_realm(42));
}

#[test]
fn data_for_an_unknown_realm_is_answered_with_disc() {
    let t = Instant::now();
    let mut peer = RawPeer::new();
    let mut dev = synced_device(None, &mut peer, t);
    let data = Body::Data {
        realm: 0xDEAD,
        payload: Bytes::from_static(b"?"),
    };
    dev.handle_input(t, &peer.frame(4, data)).unwrap();
    let out = drain_frames(&mut dev, t);
    assert!(out.iter().any(|f| f.body
        == Body::Status {
            realm: 0xDEAD,
            status: Status::Disc,
            nul: false
        }));
    assert!(drain_events(&mut dev).is_empty());
}

#[test]
fn send_buffer_is_bounded_and_writable_reports_freed_space() {
    let mut cfg = client_cfg();
    cfg.realm_send_buffer = 8 * 1024;
    let mut net = Net::new(cfg, device_cfg(None));
    net.connect();
    net.open(2);
    let data = pattern(3, 100_000);
    assert_eq!(net.s[C].send(2, &data), 8 * 1024);
    assert_eq!(net.s[C].send(2, &data[8 * 1024..]), 0);
    assert!(net.run_until(secs(1), |n| n.has(C, &Event::Writable(2))));
    net.finish(C, 2, &data[8 * 1024..], data.len(), secs(20));
    assert_bytes(&net.received(D, 2), &data);
}

#[test]
fn busy_realms_take_turns() {
    let mut net = Net::connected();
    net.open(1);
    net.open(2);
    let mark = net.log[C].len();
    net.s[C].send(1, &pattern(1, 20_000));
    net.s[C].send(2, &pattern(2, 20_000));
    net.flush();
    let order: Vec<u32> = net.log[C][mark..]
        .iter()
        .filter_map(|f| match f.body {
            Body::Data { realm, .. } => Some(realm),
            _ => None,
        })
        .take(6)
        .collect();
    assert_eq!(order, [1, 2, 1, 2, 1, 2]);
}

// ----- reliability -----

#[test]
fn lost_data_frame_is_retransmitted_after_the_timeout() {
    let mut net = Net::connected();
    net.open(1);
    let mut dropped = false;
    net.filter = Box::new(move |from, f| {
        if from == C && is_data(f) && !dropped {
            dropped = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    net.transfer(C, 1, b"only frame", secs(5));
    assert_bytes(&net.received(D, 1), b"only frame");
    let st = net.s[C].stats();
    assert_eq!((st.timeouts, st.retransmits), (1, 1));
    assert_eq!(net.frames(C, is_data).len(), 2);
}

#[test]
fn three_duplicate_acks_trigger_a_fast_retransmit() {
    let mut net = Net::connected();
    net.open(1);
    let mut dropped = false;
    net.filter = Box::new(move |from, f| {
        if from == C && is_data(f) && !dropped {
            dropped = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    let data = pattern(4, 12_800);
    net.transfer(C, 1, &data, secs(5));
    assert_bytes(&net.received(D, 1), &data);
    let st = net.s[C].stats();
    assert_eq!(st.fast_retransmits, 1);
    assert_eq!(st.timeouts, 0);
    assert!(st.duplicate_acks >= 3);
}

#[test]
fn partial_acks_retransmit_each_next_hole_at_once() {
    let mut net = Net::connected();
    net.open(1);
    let mut seen = Vec::new();
    net.filter = Box::new(move |from, f| {
        if from == C && is_data(f) && !seen.contains(&f.header.sent) {
            seen.push(f.header.sent);
            if [1, 3, 5, 6].contains(&seen.len()) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    let data = pattern(5, 20 * 1280);
    net.transfer(C, 1, &data, secs(5));
    assert_bytes(&net.received(D, 1), &data);
    let st = net.s[C].stats();
    assert_eq!(st.timeouts, 0, "{st:?}");
    assert_eq!(st.retransmits, 4, "{st:?}");
}

#[test]
fn duplicated_frames_are_delivered_once_and_acked_again() {
    let mut net = Net::connected();
    net.open(1);
    net.filter = Box::new(|_, _| Fate::Duplicate);
    let data = pattern(6, 30_000);
    net.transfer(C, 1, &data, secs(5));
    net.run_for(ms(200));
    assert_bytes(&net.received(D, 1), &data);
    let st = net.s[D].stats();
    assert!(st.duplicates >= 20, "{st:?}");
    // EveryFrame: one empty ack per received non-empty frame, duplicates included.
    let nonempty_received = net.frames(C, |f| !f.body.is_empty()).len() * 2;
    let since_open = st.acks_sent as usize;
    assert!(
        since_open + 8 >= nonempty_received,
        "{since_open} acks for {nonempty_received}"
    );
}

#[test]
fn reordered_frames_are_delivered_in_order() {
    let mut net = Net::connected();
    net.open(1);
    let mut k = 0;
    net.filter = Box::new(move |from, f| {
        if from == C && is_data(f) {
            k += 1;
            if k % 3 == 1 {
                return Fate::Delay(ms(5));
            }
        }
        Fate::Deliver
    });
    let data = pattern(7, 30_000);
    net.transfer(C, 1, &data, secs(5));
    assert_bytes(&net.received(D, 1), &data);
    assert!(net.s[D].stats().out_of_order > 0);
}

#[test]
fn empty_frames_are_never_acknowledged() {
    let mut net = Net::connected();
    net.run_for(ms(100));
    let t = net.now;
    let last = net.log[D].last().unwrap().header;
    let empty = Frame {
        header: Header {
            sent: last.sent,
            recv: 4,
            pid: 0xFFFF,
            lmid: last.lmid + 1,
            rmid: 0,
        },
        body: Body::Empty,
    };
    for _ in 0..5 {
        net.s[C].handle_input(t, &empty.to_bytes()).unwrap();
    }
    assert!(net.s[C].poll_transmit(t).is_none());
}

#[test]
fn send_window_limits_bytes_in_flight() {
    let mut cfg = client_cfg();
    cfg.send_window = 4096;
    let mut net = Net::new(cfg, device_cfg(None));
    net.connect();
    net.open(1);
    net.run_for(ms(100));
    let mark = net.log[C].len();
    net.filter = Box::new(|_, _| Fate::Drop);
    let data = pattern(9, 200_000);
    net.s[C].send(1, &data);
    net.flush();
    let sent: Vec<&Frame> = net.log[C][mark..].iter().filter(|f| is_data(f)).collect();
    assert_eq!(
        sent.len(),
        3,
        "4096-byte window holds three 1292-byte frames"
    );
    assert_eq!(net.s[C].stats().in_flight, 3 * 1292);
    net.filter = Box::new(|_, _| Fate::Deliver);
    net.finish(C, 1, &data[64 * 1024..], data.len(), secs(60));
    assert_bytes(&net.received(D, 1), &data);
}

#[test]
fn reorder_buffer_is_bounded() {
    let t = Instant::now();
    let mut peer = RawPeer::new();
    let mut cfg = device_cfg(None);
    cfg.reorder_buffer = 4096;
    let mut dev = Session::new(cfg, t);
    dev.handle_input(t, &peer.frame(0, Body::Syn)).unwrap();
    // Skip a hole, then flood frames ahead of it.
    peer.sent += 100;
    for _ in 0..20 {
        let data = Body::Data {
            realm: 1,
            payload: Bytes::from(vec![0; 1000]),
        };
        dev.handle_input(t, &peer.frame(4, data)).unwrap();
    }
    let st = dev.stats();
    assert_eq!(st.out_of_order, 3);
    assert_eq!(st.dropped, 17);
}

#[test]
fn held_events_stop_acknowledging_until_polled() {
    let mut dev = device_cfg(None);
    dev.event_buffer = 16 * 1024;
    let mut net = Net::new(client_cfg(), dev);
    net.connect();
    net.open(1);
    net.hold_events[D] = true;
    let data = pattern(10, 100_000);
    let taken = net.s[C].send(1, &data);
    net.run_for(ms(500));
    let got = net.s[D].stats().data_bytes_received;
    assert!(got < 20 * 1024, "device queued {got} bytes of events");
    assert!(net.s[C].stats().in_flight > 40 * 1024);
    net.hold_events[D] = false;
    net.finish(C, 1, &data[taken..], data.len(), secs(120));
    assert_bytes(&net.received(D, 1), &data);
}

// ----- counters -----

#[test]
fn sent_and_recv_wrap_at_2_pow_32() {
    let mut client = client_cfg();
    client.initial_sent = u32::MAX - 20_000;
    let mut device = device_cfg(None);
    device.initial_sent = u32::MAX - 3;
    let mut net = Net::new(client, device);
    net.connect();
    net.open(1);
    let up = pattern(11, 60_000);
    let down = pattern(12, 60_000);
    net.transfer(C, 1, &up, secs(10));
    net.transfer(D, 1, &down, secs(10));
    assert_bytes(&net.received(D, 1), &up);
    assert_bytes(&net.received(C, 1), &down);
    assert!(net.log[C].iter().any(|f| f.header.sent < 40_000));
    assert!(net.log[C].iter().any(|f| f.header.sent > u32::MAX - 20_000));
    assert!(net.log[D].iter().any(|f| f.header.recv < 0x8000_0000));
    assert!(net.log[D].iter().any(|f| f.header.recv > 0x8000_0000));
}

#[test]
fn frame_count_pid_wraps_in_16_bits() {
    let mut client = client_cfg();
    client.initial_pid_count = 0xFFFD;
    let mut net = Net::new(client, device_cfg(None));
    net.connect();
    net.open(1);
    net.transfer(C, 1, &pattern(13, 5 * 1280), secs(5));
    let pids: Vec<u32> = net
        .frames(C, |f| !f.body.is_empty())
        .iter()
        .map(|f| f.header.pid)
        .collect();
    // SYN, BIND (count 0xFFFD → pid 2), then DATA 1, 0, 0xFFFF, 0xFFFE, ...
    assert_eq!(pids[..6], [0x0002_FFFF, 2, 1, 0, 0xFFFF, 0xFFFE]);
    assert_eq!(net.received(D, 1).len(), 5 * 1280);
}

#[test]
fn retransmission_repeats_the_original_pid() {
    let mut net = Net::connected();
    net.open(1);
    let mut dropped = false;
    net.filter = Box::new(move |from, f| {
        if from == C && is_data(f) && !dropped {
            dropped = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    net.transfer(C, 1, b"x", secs(5));
    let data = net.frames(C, is_data);
    assert_eq!(data.len(), 2);
    assert_eq!(data[0].header.pid, data[1].header.pid);
    assert_eq!(data[0].header.sent, data[1].header.sent);
    assert_ne!(data[0].header.lmid, data[1].header.lmid);
}

#[test]
fn recv_window_pid_follows_recv() {
    let mut client = client_cfg();
    client.pid_policy = PidPolicy::RecvWindow;
    let mut net = Net::new(client, device_cfg(None));
    net.connect();
    net.open(1);
    net.transfer(D, 1, &pattern(14, 70_000), secs(10));
    for f in net.log[C].iter().skip(1) {
        assert_eq!(f.header.pid, 0xFFFF - (f.header.recv & 0xFFFF), "{f:?}");
    }
    assert!(net.log[C].iter().any(|f| f.header.recv > 0x1_0000));
}

#[test]
fn coalesced_acks_go_out_every_n_frames_or_after_the_delay() {
    let mut device = device_cfg(None);
    device.ack_policy = AckPolicy::Coalesce {
        frames: 4,
        delay: ms(30),
    };
    // A client whose retransmission timer outlasts the device's ack delay.
    let mut client = client_cfg();
    client.rto_min = ms(200);
    let mut net = Net::new(client, device);
    net.connect();
    net.open(1);
    let mark = net.log[D].len();
    net.transfer(C, 1, &pattern(15, 8 * 1280), secs(5));
    net.run_for(ms(100));
    let acks = net.log[D][mark..]
        .iter()
        .filter(|f| f.body.is_empty())
        .count();
    assert_eq!(acks, 2, "8 frames, one ack per 4");
    let mark = net.log[D].len();
    net.transfer(C, 1, b"one", secs(5));
    let before = net.log[D].len();
    assert_eq!(before, mark, "a single frame is not acked at once");
    net.run_for(ms(100));
    assert_eq!(
        net.log[D][mark..]
            .iter()
            .filter(|f| f.body.is_empty())
            .count(),
        1
    );
}

// ----- keep-alive and timeouts -----

#[test]
fn heartbeat_is_sent_when_idle_and_answered_with_an_empty_ack() {
    let mut net = Net::connected();
    net.run_for(ms(5_100));
    let hb = net.frames(C, |f| f.body == Body::Heartbeat);
    assert_eq!(hb.len(), 1);
    let want = hb[0].header.sent.wrapping_add(12);
    assert!(
        net.log[D]
            .iter()
            .any(|f| f.body.is_empty() && f.header.recv == want)
    );
    assert_eq!(net.s[D].stats().heartbeats_received, 1);
}

#[test]
fn idle_link_stays_up_on_heartbeats() {
    let mut net = Net::connected();
    net.run_for(secs(120));
    assert!(net.s[C].close_reason().is_none() && net.s[D].close_reason().is_none());
    let (c, d) = (net.s[C].stats(), net.s[D].stats());
    assert!((20..=25).contains(&c.heartbeats_sent), "{c:?}");
    assert!((20..=25).contains(&d.heartbeats_sent), "{d:?}");
}

#[test]
fn idle_timeout_closes_the_session() {
    let mut net = Net::connected();
    let start = net.now;
    net.filter = Box::new(|_, _| Fate::Drop);
    let closed = Event::Closed(CloseReason::IdleTimeout);
    assert!(net.run_until(secs(60), |n| n.has(C, &closed) && n.has(D, &closed)));
    let elapsed = net.now - start;
    assert!(elapsed >= secs(29) && elapsed <= secs(31), "{elapsed:?}");
    assert!(net.s[C].poll_timeout().is_none());
    assert!(net.s[C].poll_transmit(net.now).is_none());
}

#[test]
fn too_many_retransmits_close_the_session() {
    let mut cfg = client_cfg();
    cfg.idle_timeout = secs(600);
    cfg.max_retransmits = 4;
    let mut net = Net::new(cfg, device_cfg(None));
    net.connect();
    net.open(1);
    net.filter = Box::new(|_, _| Fate::Drop);
    net.s[C].send(1, b"into the void");
    assert!(net.run_until(secs(120), |n| {
        n.has(C, &Event::Closed(CloseReason::TooManyRetransmits))
    }));
    assert_eq!(net.s[C].stats().timeouts, 4);
}

#[test]
fn client_syn_is_retransmitted_until_the_device_answers() {
    let mut net = Net::pair();
    let mut lost = 0;
    net.filter = Box::new(move |from, f| {
        if from == C && f.body == Body::Syn && lost < 2 {
            lost += 1;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    net.connect();
    assert_eq!(net.frames(C, |f| f.body == Body::Syn).len(), 3);
    assert_eq!(net.frames(D, |f| f.body == Body::Syn).len(), 1);
}

#[test]
fn responder_ignores_the_ack_field_of_a_retransmitted_syn() {
    // The client's retransmitted SYN says recv = 0, which is exactly the end of a device
    // SYN sent from 2^32 - 4: it must not count as an ack of the (lost) device SYN.
    let mut device = device_cfg(None);
    device.initial_sent = u32::MAX - 3;
    let mut net = Net::new(client_cfg(), device);
    let mut lost = false;
    net.filter = Box::new(move |from, f| {
        if from == D && f.body == Body::Syn && !lost {
            lost = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    net.connect();
    assert_eq!(net.frames(D, |f| f.body == Body::Syn).len(), 2);
}

// ----- bad input -----

#[test]
fn garbage_datagram_is_an_error_and_changes_nothing() {
    let mut net = Net::connected();
    let t = net.now;
    let before = net.s[C].stats();
    let e = net.s[C]
        .handle_input(t, b"HTTP/1.1 200 OK\r\n\r\n")
        .unwrap_err();
    assert!(e.to_string().contains("48 54 54 50"), "{e}");
    assert!(net.s[C].poll_transmit(t).is_none());
    let after = net.s[C].stats();
    assert_eq!(after.malformed, before.malformed + 1);
    assert_eq!(after.frames_received, before.frames_received);
}

#[test]
fn malformed_body_is_acknowledged_and_reported() {
    let t = Instant::now();
    let mut peer = RawPeer::new();
    let mut dev = synced_device(None, &mut peer, t);
    let mut dg = Frame {
        header: Header {
            sent: peer.sent,
            recv: 4,
            pid: 0xFFFF,
            lmid: 1,
            rmid: 0,
        },
        body: Body::Empty,
    }
    .to_bytes();
    dg.extend([0x13, 0x00]);
    let e = dev.handle_input(t, &dg).unwrap_err();
    assert_eq!(e.offset, 24);
    let out = drain_frames(&mut dev, t);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].body.clone(), out[0].header.recv), (Body::Empty, 6));
    assert_eq!(dev.stats().malformed, 1);
}

#[test]
fn frames_before_the_syn_are_dropped_unacknowledged() {
    let t = Instant::now();
    let mut dev = Session::new(device_cfg(None), t);
    let mut peer = RawPeer::new();
    peer.sent = 4;
    dev.handle_input(t, &peer.frame(0, Body::Heartbeat))
        .unwrap();
    assert!(dev.poll_transmit(t).is_none());
    assert_eq!(dev.stats().dropped, 1);
}
