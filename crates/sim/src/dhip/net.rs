//! What the network servers share: the device behind a lock, the live connections (so
//! notifications, kills and reboots can reach them), the device's up/down state, and how
//! its DHIP messages are framed (the protocol crate's encoders in the configured style).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::BytesMut;
use dhip::frame::{Terminator, encode_fragmented, encode_with};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::clock::SimClock;
use super::device::{Device, Push};
use super::media::Media;
use super::options::{DhipSimOptions, FragmentReplies};
use super::sessions::Transport;

/// Something for a connection's writer to do.
#[derive(Debug)]
pub enum ConnCmd {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Close the connection.
    Close,
}

/// A live connection.
#[derive(Debug)]
pub struct ConnHandle {
    /// Its writer.
    pub tx: UnboundedSender<ConnCmd>,
    /// DHIP or HTTP.
    pub transport: Transport,
}

/// Whether the device answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Up.
    On,
    /// Rebooting until then.
    RebootingUntil(Instant),
    /// Shut down until restarted.
    Off,
}

/// State shared by all servers of one simulator.
pub struct Shared {
    /// The device model.
    pub device: Mutex<Device>,
    /// The options.
    pub opts: Arc<DhipSimOptions>,
    /// The clock.
    pub clock: SimClock,
    /// Recorded-file and live media.
    pub media: Arc<Media>,
    conns: Mutex<BTreeMap<u64, ConnHandle>>,
    next_conn: AtomicU64,
    power: Mutex<Power>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Shared state around `device`.
    pub fn new(
        device: Device,
        opts: Arc<DhipSimOptions>,
        clock: SimClock,
        media: Arc<Media>,
    ) -> Self {
        Shared {
            device: Mutex::new(device),
            opts,
            clock,
            media,
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(0),
            power: Mutex::new(Power::On),
        }
    }

    /// The device, locked.
    pub fn device(&self) -> MutexGuard<'_, Device> {
        lock(&self.device)
    }

    /// Whether the device answers now.
    pub fn is_up(&self) -> bool {
        let mut p = lock(&self.power);
        match *p {
            Power::On => true,
            Power::RebootingUntil(t) if Instant::now() >= t => {
                *p = Power::On;
                true
            }
            _ => false,
        }
    }

    /// Registers a new connection and returns its index, or `None` if the DHIP connection
    /// limit is reached.
    pub fn register(&self, transport: Transport, tx: UnboundedSender<ConnCmd>) -> Option<u64> {
        let mut conns = lock(&self.conns);
        if transport == Transport::Dhip
            && let Some(max) = self.opts.max_connections
            && conns
                .values()
                .filter(|c| c.transport == Transport::Dhip)
                .count()
                >= max
        {
            return None;
        }
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        conns.insert(id, ConnHandle { tx, transport });
        Some(id)
    }

    /// A fresh connection index for a connection that is not registered.
    pub fn conn_index(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Forgets connection `id` (closed).
    pub fn unregister(&self, id: u64) {
        lock(&self.conns).remove(&id);
        self.device().drop_conn(id);
    }

    /// Sends bytes to connection `id`.
    pub fn send(&self, id: u64, bytes: Vec<u8>) {
        if let Some(c) = lock(&self.conns).get(&id) {
            let _ = c.tx.send(ConnCmd::Write(bytes));
        }
    }

    /// Closes connection `id` once its queued writes are out.
    pub fn close(&self, id: u64) {
        if let Some(c) = lock(&self.conns).get(&id) {
            let _ = c.tx.send(ConnCmd::Close);
        }
    }

    /// Closes every connection.
    pub fn kill_connections(&self) {
        for c in lock(&self.conns).values() {
            let _ = c.tx.send(ConnCmd::Close);
        }
    }

    /// The terminator after every DHIP message's JSON.
    fn terminator(&self) -> Terminator {
        if self.opts.trailing_newline {
            Terminator::Newline
        } else {
            Terminator::None
        }
    }

    /// Appends `body` as one DHIP packet in the configured JSON style and terminator.
    pub fn encode(&self, session: u32, id: u32, body: &Value, out: &mut Vec<u8>) {
        let mut b = BytesMut::new();
        let json = self.opts.json.render(body);
        encode_with(session, id, &json, self.terminator(), &[], &mut b);
        out.extend_from_slice(&b);
    }

    /// `body` split into packets as `f` says (at least two), the terminator inside the JSON.
    pub fn encode_fragmented(
        &self,
        session: u32,
        id: u32,
        body: &Value,
        f: &FragmentReplies,
    ) -> Vec<u8> {
        let mut json = self.opts.json.render(body);
        if self.opts.trailing_newline {
            json.push(b'\n');
        }
        let mut b = BytesMut::new();
        encode_fragmented(
            session,
            id,
            &json,
            &f.data,
            f.model,
            f.pieces.max(2),
            &mut b,
        );
        b.to_vec()
    }

    /// Delivers notifications: all frames for one connection go out in one write.
    pub fn deliver(&self, pushes: Vec<Push>) {
        let mut per_conn: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for p in pushes {
            self.encode(
                p.session,
                p.id,
                &p.body,
                per_conn.entry(p.conn).or_default(),
            );
        }
        for (conn, bytes) in per_conn {
            self.send(conn, bytes);
        }
    }

    /// Reboots (with `Some(delay)`) or shuts down (with `None`) the device: every connection
    /// drops and every session ends.
    pub fn power_cycle(&self, delay: Option<std::time::Duration>) {
        *lock(&self.power) = match delay {
            Some(d) => Power::RebootingUntil(Instant::now() + d),
            None => Power::Off,
        };
        self.device().reboot();
        self.kill_connections();
    }

    /// Powers the device on at once (after a shutdown or during a reboot).
    pub fn power_on(&self) {
        *lock(&self.power) = Power::On;
    }
}
