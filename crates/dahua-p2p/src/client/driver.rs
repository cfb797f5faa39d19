//! The tokio driver of an established P2P session: owns the data socket and its PTCP
//! [`Session`] (plus, in direct mode, the agent leg kept alive beside it), opens realms on
//! request and moves each realm's bytes between the session and a channel pair. Per-realm
//! buffers are bounded: a realm whose reader stops is closed on its own, never stalling the
//! session's other realms.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, info, warn};

use super::TunnelError;
use super::cloud::sleep_until;
use crate::ptcp::{CloseReason, Event, Session, Stats};

/// Chunks queued toward a realm's local reader before the realm is given up as stuck.
const INBOUND_CHUNKS: usize = 2048;
/// Chunks queued from a realm's local writer (backpressure beyond this).
const OUTBOUND_CHUNKS: usize = 16;
/// How long a BIND may wait for CONN.
const BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// Datagrams read per wake-up before the session is pumped.
const RECV_BATCH: usize = 64;

/// One UDP path to a PTCP peer.
pub(crate) struct Leg {
    pub(crate) sock: Arc<UdpSocket>,
    pub(crate) peer: SocketAddr,
    pub(crate) session: Session,
    /// Datagrams that arrived before the driver took over.
    pub(crate) early: VecDeque<(SocketAddr, Vec<u8>)>,
}

/// What the driver is asked to do.
enum Command {
    Open { port: u16, reply: OpenReply },
}

/// Shared view of a running session.
#[derive(Debug, Default)]
struct Status {
    closed: Option<String>,
    stats: Option<Stats>,
}

/// A handle on a running P2P session; clones share it. The session ends when every handle
/// is dropped or the peer goes silent.
#[derive(Clone)]
pub struct SessionHandle {
    cmd: mpsc::Sender<Command>,
    status: Arc<Mutex<Status>>,
    mode: super::Mode,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("mode", &self.mode)
            .field("closed", &self.closed_reason())
            .finish()
    }
}

impl SessionHandle {
    /// Opens a realm to `port` on the device (554 RTSP, 80 HTTP, 37777, 5000 ...).
    pub async fn open(&self, port: u16) -> Result<RealmIo, TunnelError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Open { port, reply })
            .await
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.cmd.is_closed() || self.closed_reason().is_some()
    }

    /// Why the session ended, once it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.status.lock().expect("session status").closed.clone()
    }

    /// Direct (hole-punched) or relayed.
    pub fn mode(&self) -> super::Mode {
        self.mode
    }

    /// PTCP counters of the data path (refreshed as the session runs).
    pub fn stats(&self) -> Option<Stats> {
        self.status.lock().expect("session status").stats.clone()
    }

    fn gone(&self) -> TunnelError {
        TunnelError::SessionClosed(
            self.closed_reason()
                .unwrap_or_else(|| "the session ended".into()),
        )
    }
}

/// One open realm: bytes from the device arrive on `rx`; bytes sent on the writer go to it.
/// Dropping the writer closes the realm (DISC).
pub struct RealmIo {
    /// The realm id.
    pub realm: u32,
    /// Bytes from the device; ends when the device closes the realm or the session ends.
    pub rx: mpsc::Receiver<Bytes>,
    /// Sends bytes to the device.
    pub tx: RealmWriter,
}

/// The sending half of a realm.
pub struct RealmWriter {
    tx: mpsc::Sender<Bytes>,
    wake: Arc<Notify>,
}

impl RealmWriter {
    /// Queues bytes for the device, waiting while the realm's buffer is full.
    pub async fn send(&self, data: Bytes) -> Result<(), TunnelError> {
        self.tx
            .send(data)
            .await
            .map_err(|_| TunnelError::SessionClosed("the realm is closed".into()))?;
        self.wake.notify_one();
        Ok(())
    }
}

impl Drop for RealmWriter {
    fn drop(&mut self) {
        // Let the driver see the closed channel and send DISC.
        self.wake.notify_one();
    }
}

impl RealmIo {
    /// Copies bytes both ways between `tcp` and the realm until either side closes; returns
    /// (bytes to the device, bytes from the device).
    pub async fn bridge(self, tcp: TcpStream) -> (u64, u64) {
        let RealmIo { realm, mut rx, tx } = self;
        let (mut rd, mut wr) = tcp.into_split();
        let up = async move {
            let mut n = 0u64;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => {
                        n += k as u64;
                        if tx.send(Bytes::copy_from_slice(&buf[..k])).await.is_err() {
                            break;
                        }
                    }
                }
            }
            n
        };
        let down = async move {
            let mut n = 0u64;
            while let Some(b) = rx.recv().await {
                n += b.len() as u64;
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
            n
        };
        tokio::pin!(up, down);
        tokio::select! {
            sent = &mut up => {
                // The local side closed: the realm closes (DISC); give the device a moment
                // to deliver what it already sent.
                let got = tokio::time::timeout(Duration::from_secs(5), &mut down).await.unwrap_or(0);
                debug!(realm = format_args!("{realm:#010x}"), sent, got, "realm bridge ended (local close)");
                (sent, got)
            }
            got = &mut down => {
                debug!(realm = format_args!("{realm:#010x}"), got, "realm bridge ended (device close)");
                (0, got)
            }
        }
    }
}

/// A realm waiting for CONN: the caller, what it will get, the BIND deadline.
type Opening = (OpenReply, RealmIo, Instant);
/// Where the result of an open goes.
type OpenReply = oneshot::Sender<Result<RealmIo, TunnelError>>;

/// A realm as the driver sees it.
struct Slot {
    port: u16,
    out_rx: mpsc::Receiver<Bytes>,
    pending: Option<Bytes>,
    in_tx: Option<mpsc::Sender<Bytes>>,
    /// Until CONN: the caller waiting, what it will get, and the BIND deadline.
    opening: Option<Opening>,
    closing: bool,
}

/// Starts the driver; returns the handle.
pub(crate) fn spawn(
    main: Leg,
    aux: Option<Leg>,
    mode: super::Mode,
    on_exit: Option<Box<dyn FnOnce() + Send>>,
) -> SessionHandle {
    let (cmd, cmd_rx) = mpsc::channel(64);
    let status = Arc::new(Mutex::new(Status::default()));
    let handle = SessionHandle {
        cmd,
        status: status.clone(),
        mode,
    };
    tokio::spawn(async move {
        let reason = run(main, aux, cmd_rx, status.clone()).await;
        info!("P2P session ended: {reason}");
        status.lock().expect("session status").closed = Some(reason);
        if let Some(f) = on_exit {
            f();
        }
    });
    handle
}

async fn run(
    mut main: Leg,
    mut aux: Option<Leg>,
    mut cmd_rx: mpsc::Receiver<Command>,
    status: Arc<Mutex<Status>>,
) -> String {
    let wake = Arc::new(Notify::new());
    let mut slots: HashMap<u32, Slot> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut aux_buf = vec![0u8; 65536];
    let mut commands_open = true;
    let mut last_stats = Instant::now();
    for (from, d) in std::mem::take(&mut main.early) {
        if from == main.peer {
            let _ = main.session.handle_input(Instant::now(), &d);
        }
    }
    loop {
        // Move data and events until nothing changes.
        loop {
            let now = Instant::now();
            let mut progressed = false;
            for (&realm, slot) in slots.iter_mut() {
                if slot.opening.is_some() || slot.closing {
                    continue;
                }
                loop {
                    let chunk = match slot.pending.take() {
                        Some(b) => b,
                        None => match slot.out_rx.try_recv() {
                            Ok(b) => b,
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                main.session.close_realm(realm);
                                slot.closing = true;
                                progressed = true;
                                break;
                            }
                        },
                    };
                    let n = main.session.send(realm, &chunk);
                    if n > 0 {
                        progressed = true;
                    }
                    if n < chunk.len() {
                        slot.pending = Some(chunk.slice(n..));
                        break;
                    }
                }
            }
            while let Some(d) = main.session.poll_transmit(now) {
                if let Err(e) = main.sock.send_to(&d, main.peer).await {
                    debug!(peer = %main.peer, "PTCP send failed: {e}");
                }
                progressed = true;
            }
            while let Some(ev) = main.session.poll_event() {
                progressed = true;
                if let Some(reason) = handle_event(ev, &mut main.session, &mut slots) {
                    return reason;
                }
            }
            if let Some(a) = aux.as_mut() {
                while let Some(d) = a.session.poll_transmit(now) {
                    let _ = a.sock.send_to(&d, a.peer).await;
                }
                while let Some(ev) = a.session.poll_event() {
                    if let Event::Closed(r) = ev {
                        debug!(peer = %a.peer, "agent leg closed: {r:?}");
                        aux = None;
                        break;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        if last_stats.elapsed() > Duration::from_millis(500) {
            status.lock().expect("session status").stats = Some(main.session.stats());
            last_stats = Instant::now();
        }
        if !commands_open && slots.is_empty() {
            main.session.close();
            while let Some(d) = main.session.poll_transmit(Instant::now()) {
                let _ = main.sock.send_to(&d, main.peer).await;
            }
            return "closed by the application".into();
        }
        let bind_deadline = slots
            .values()
            .filter_map(|s| s.opening.as_ref().map(|o| o.2))
            .min();
        let deadline = [
            main.session.poll_timeout(),
            aux.as_ref().and_then(|a| a.session.poll_timeout()),
            bind_deadline,
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            r = main.sock.recv_from(&mut buf) => {
                let now = Instant::now();
                if let Ok((n, from)) = r {
                    feed(&mut main, now, from, &buf[..n]);
                    for _ in 0..RECV_BATCH {
                        match main.sock.try_recv_from(&mut buf) {
                            Ok((n, from)) => feed(&mut main, now, from, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
            }
            r = recv_aux(aux.as_ref(), &mut aux_buf) => {
                if let (Ok((n, from)), Some(a)) = (r, aux.as_mut()) {
                    feed(a, Instant::now(), from, &aux_buf[..n]);
                }
            }
            c = cmd_rx.recv(), if commands_open => match c {
                Some(Command::Open { port, reply }) => open(&mut main.session, &mut slots, port, reply, &wake),
                None => {
                    commands_open = false;
                    for (&realm, slot) in slots.iter_mut() {
                        if !slot.closing {
                            main.session.close_realm(realm);
                            slot.closing = true;
                        }
                    }
                }
            },
            _ = wake.notified() => {}
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                main.session.handle_timeout(now);
                if let Some(a) = aux.as_mut() {
                    a.session.handle_timeout(now);
                }
                let expired: Vec<u32> = slots
                    .iter()
                    .filter(|(_, s)| s.opening.as_ref().is_some_and(|o| o.2 <= now))
                    .map(|(&r, _)| r)
                    .collect();
                for realm in expired {
                    if let Some(mut s) = slots.remove(&realm)
                        && let Some((reply, _, _)) = s.opening.take()
                    {
                        let _ = reply.send(Err(TunnelError::BindTimeout { port: s.port }));
                    }
                    main.session.close_realm(realm);
                }
            }
        }
    }
}

async fn recv_aux(aux: Option<&Leg>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match aux {
        Some(a) => a.sock.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Hands one datagram from the leg's socket to its session (others' datagrams are ignored).
fn feed(leg: &mut Leg, now: Instant, from: SocketAddr, d: &[u8]) {
    if from != leg.peer {
        debug!(%from, expected = %leg.peer, "datagram from an unexpected address ignored");
        return;
    }
    if crate::demux::classify(d) != crate::demux::Kind::Ptcp {
        return;
    }
    if let Err(e) = leg.session.handle_input(now, d) {
        debug!(peer = %leg.peer, "bad PTCP frame: {e}");
    }
}

fn open(
    session: &mut Session,
    slots: &mut HashMap<u32, Slot>,
    port: u16,
    reply: OpenReply,
    wake: &Arc<Notify>,
) {
    let mut realm: u32 = rand::random();
    while realm == 0 || slots.contains_key(&realm) || session.realm_state(realm).is_some() {
        realm = rand::random();
    }
    if let Err(e) = session.open_realm(realm, port) {
        let _ = reply.send(Err(TunnelError::Open(e.to_string())));
        return;
    }
    let (in_tx, in_rx) = mpsc::channel(INBOUND_CHUNKS);
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_CHUNKS);
    let io = RealmIo {
        realm,
        rx: in_rx,
        tx: RealmWriter {
            tx: out_tx,
            wake: wake.clone(),
        },
    };
    debug!(realm = format_args!("{realm:#010x}"), port, "BIND");
    slots.insert(
        realm,
        Slot {
            port,
            out_rx,
            pending: None,
            in_tx: Some(in_tx),
            opening: Some((reply, io, Instant::now() + BIND_TIMEOUT)),
            closing: false,
        },
    );
}

/// Applies one session event; `Some(reason)` when the session is over.
fn handle_event(
    ev: Event,
    session: &mut Session,
    slots: &mut HashMap<u32, Slot>,
) -> Option<String> {
    match ev {
        Event::RealmConnected(realm) => {
            if let Some(slot) = slots.get_mut(&realm)
                && let Some((reply, io, _)) = slot.opening.take()
                && reply.send(Ok(io)).is_err()
            {
                session.close_realm(realm);
                slot.closing = true;
            }
        }
        Event::RealmRefused(realm) => {
            if let Some(mut slot) = slots.remove(&realm)
                && let Some((reply, _, _)) = slot.opening.take()
            {
                let _ = reply.send(Err(TunnelError::Refused { port: slot.port }));
            }
        }
        Event::Data { realm, data } => {
            if let Some(slot) = slots.get_mut(&realm)
                && let Some(tx) = &slot.in_tx
            {
                match tx.try_send(data) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!(
                            realm = format_args!("{realm:#010x}"),
                            port = slot.port,
                            "the local reader of this realm stopped reading; closing it"
                        );
                        slot.in_tx = None;
                        if !slot.closing {
                            session.close_realm(realm);
                            slot.closing = true;
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        slot.in_tx = None;
                        if !slot.closing {
                            session.close_realm(realm);
                            slot.closing = true;
                        }
                    }
                }
            }
        }
        Event::RealmClosed(realm) => {
            if let Some(mut slot) = slots.remove(&realm)
                && let Some((reply, _, _)) = slot.opening.take()
            {
                let _ = reply.send(Err(TunnelError::Refused { port: slot.port }));
            }
        }
        Event::Closed(reason) => {
            for (_, mut slot) in slots.drain() {
                if let Some((reply, _, _)) = slot.opening.take() {
                    let _ = reply.send(Err(TunnelError::SessionClosed(describe(&reason))));
                }
            }
            return Some(describe(&reason));
        }
        Event::BindRequest { realm, .. } => {
            session.refuse_realm(realm);
        }
        _ => {}
    }
    None
}

fn describe(reason: &CloseReason) -> String {
    match reason {
        CloseReason::IdleTimeout => "the device went silent (PTCP idle timeout)".into(),
        CloseReason::TooManyRetransmits => {
            "the device stopped acknowledging (too many PTCP retransmissions)".into()
        }
        CloseReason::Local => "closed locally".into(),
    }
}
