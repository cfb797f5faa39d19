//! Fuzzes the PTCP frame codec (whatever parses must round-trip) and the PTCP session state
//! machine: a client and a device joined by a wire that the input drives (deliver, drop,
//! duplicate, reorder, corrupt, inject raw or crafted frames, advance time, app calls).
//! Checks that nothing panics, that every datagram a session emits is a valid frame, and
//! that queues and bytes in flight stay bounded.

#![no_main]

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use camgate_fuzz::Input;
use dahua_p2p::ptcp::{AckPolicy, Body, Config, Event, Frame, Header, PidPolicy, Session, Status};
use libfuzzer_sys::fuzz_target;

const C: usize = 0;
const D: usize = 1;
/// Most datagrams a direction of the wire holds; more are dropped (a bounded harness).
const WIRE_CAP: usize = 512;
/// Most operations per input.
const MAX_OPS: usize = 2000;

fn config(base: Config, flags: u8, window: u8) -> Config {
    let mut c = base;
    if flags & 1 != 0 {
        c.ack_policy = AckPolicy::Coalesce {
            frames: 3,
            delay: Duration::from_millis(10),
        };
    }
    if flags & 2 != 0 {
        c.pid_policy = PidPolicy::RecvWindow;
    }
    if flags & 4 != 0 {
        c.initial_sent = u32::MAX - 3000;
        c.initial_pid_count = 0xFFFE;
    }
    c.initial_lmid = u32::MAX - u32::from(flags);
    c.send_window = 2048 + u32::from(window) * 256;
    c.realm_send_buffer = 4096;
    c.reorder_buffer = 16 * 1024;
    c.event_buffer = 16 * 1024;
    c.max_realms = 8;
    c.max_payload = 200 + usize::from(window);
    c.rto_initial = Duration::from_millis(100);
    c.rto_min = Duration::from_millis(20);
    c.rto_max = Duration::from_millis(800);
    c.max_retransmits = 6;
    c
}

/// A body chosen by the input, for crafted frames.
fn body(inp: &mut Input) -> Body {
    let realm = u32::from(inp.u8() & 7);
    match inp.u8() % 12 {
        0 => Body::Empty,
        1 => Body::Syn,
        2 => Body::Data {
            realm,
            payload: Bytes::copy_from_slice(inp.sized(64)),
        },
        3 => Body::Bind {
            realm,
            port: 554,
            ip: Ipv4Addr::LOCALHOST,
        },
        4 => Body::Status {
            realm,
            status: if inp.u8() & 1 == 0 {
                Status::Conn
            } else {
                Status::Disc
            },
            nul: false,
        },
        5 => Body::Heartbeat,
        6 => Body::SignRequest,
        7 => Body::Sign(Bytes::copy_from_slice(inp.sized(32))),
        8 => Body::Auth(Bytes::copy_from_slice(inp.sized(32))),
        9 => Body::AuthResponse(Bytes::new()),
        10 => Body::AuthFinal,
        _ => Body::Other(Bytes::copy_from_slice(&[0x0a, 0x00])),
    }
}

struct Harness {
    now: Instant,
    s: [Session; 2],
    wire: [VecDeque<Vec<u8>>; 2],
    /// The `recv` each side last announced (what it expects from its peer next).
    expects: [u32; 2],
    pending_binds: Vec<u32>,
    limit: [u64; 2],
}

impl Harness {
    fn pump(&mut self) {
        for side in [C, D] {
            while let Some(dg) = self.s[side].poll_transmit(self.now) {
                let f = Frame::parse(&dg).expect("session emitted an invalid frame");
                assert_eq!(f.to_bytes(), dg, "session frame does not round-trip");
                self.expects[side] = f.header.recv;
                if self.wire[side].len() < WIRE_CAP {
                    self.wire[side].push_back(dg);
                }
            }
            let in_flight = self.s[side].stats().in_flight;
            assert!(in_flight <= self.limit[side], "{in_flight} bytes in flight");
            while let Some(ev) = self.s[side].poll_event() {
                if let Event::BindRequest { realm, .. } = ev
                    && self.pending_binds.len() < 64
                {
                    self.pending_binds.push(realm);
                }
            }
        }
    }

    fn deliver(&mut self, from: usize, dg: &[u8]) {
        let _ = self.s[1 - from].handle_input(self.now, dg);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::parse(data) {
        let again = f.to_bytes();
        assert_eq!(Frame::parse(&again).as_ref(), Ok(&f));
    }

    let mut inp = Input::new(data);
    let flags = inp.u8();
    let window = inp.u8();
    let sign = Bytes::from_static(b"fuzz-sign");
    let client = config(Config::client(), flags, window);
    let required = if flags & 8 != 0 {
        Some(sign.clone())
    } else {
        None
    };
    let device = config(Config::device(required), flags >> 4, window);
    let limit = |c: &Config| u64::from(c.send_window) + 64 * 1024 + 2 * 1024;
    let now = Instant::now();
    let mut h = Harness {
        now,
        limit: [limit(&client), limit(&device)],
        s: [Session::new(client, now), Session::new(device, now)],
        wire: [VecDeque::new(), VecDeque::new()],
        expects: [0, 0],
        pending_binds: Vec::new(),
    };
    h.s[C].connect(now);
    h.pump();

    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        let op = inp.u8();
        let side = usize::from(op & 1);
        match op >> 1 {
            // Deliver the next datagram in one direction.
            0..=15 => {
                if let Some(dg) = h.wire[side].pop_front() {
                    h.deliver(side, &dg);
                }
            }
            16 => {
                h.wire[side].pop_front();
            }
            17 => {
                if let Some(dg) = h.wire[side].front().cloned() {
                    h.deliver(side, &dg);
                }
            }
            18 => {
                if h.wire[side].len() >= 2 {
                    h.wire[side].swap(0, 1);
                }
            }
            19 => {
                let at = usize::from(inp.u8());
                let x = inp.u8();
                if let Some(mut dg) = h.wire[side].pop_front() {
                    let n = dg.len();
                    dg[at % n] ^= x;
                    h.deliver(side, &dg);
                }
            }
            20 => {
                let raw = inp.sized(255).to_vec();
                h.deliver(side, &raw);
            }
            21 => {
                // A crafted frame near what the receiver expects.
                let delta = i32::from(inp.u8() as i8);
                let header = Header {
                    sent: h.expects[1 - side].wrapping_add_signed(delta),
                    recv: inp.u32_be(),
                    pid: inp.u32_be(),
                    lmid: inp.u32_be(),
                    rmid: inp.u32_be(),
                };
                let frame = Frame {
                    header,
                    body: body(&mut inp),
                };
                h.deliver(side, &frame.to_bytes());
            }
            22..=25 => {
                let scale = [1, 10, 100, 1000][usize::from((op >> 1) - 22)];
                let ms = u64::from(inp.u8()) * scale;
                h.now += Duration::from_millis(ms);
                for s in &mut h.s {
                    if s.poll_timeout().is_some_and(|t| t <= h.now) {
                        s.handle_timeout(h.now);
                    }
                }
            }
            26 => {
                let realm = u32::from(inp.u8() & 7);
                let _ = h.s[C].open_realm(realm, 554);
            }
            27 => {
                let realm = u32::from(inp.u8() & 7);
                let n = usize::from(inp.u8()) * 64;
                let payload = vec![op; n];
                h.s[side].send(realm, &payload);
            }
            28 => {
                let realm = u32::from(inp.u8() & 7);
                h.s[side].close_realm(realm);
            }
            29 => {
                if let Some(realm) = h.pending_binds.pop() {
                    if inp.u8() & 1 == 0 {
                        h.s[D].accept_realm(realm);
                    } else {
                        h.s[D].refuse_realm(realm);
                    }
                }
            }
            30 => {
                if inp.u8() & 1 == 0 {
                    h.s[C].request_sign();
                } else {
                    h.s[C].authenticate(&sign);
                }
            }
            _ => {
                if let Some(next) = h.s[side].poll_timeout() {
                    h.now = h.now.max(next);
                    h.s[side].handle_timeout(h.now);
                }
            }
        }
        h.pump();
    }
});
