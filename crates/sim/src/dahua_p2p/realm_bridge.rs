//! One realm's TCP side on a device: connect to the service behind the realm port, then pump
//! bytes both ways. TCP → PTCP has backpressure: the reader task holds a few read credits and
//! gets one back only when the session has taken a whole chunk (`Session::send` takes what
//! fits; the rest waits here for [`Event::Writable`](dahua_p2p::ptcp::Event::Writable)).
//! PTCP → TCP goes through an unbounded queue to a writer task (loopback TCP drains fast).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dahua_p2p::ptcp::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tracing::debug;

use super::rtsp_url::DahuaUrlAdapter;

/// Chunks read from TCP that may wait for the PTCP session at once, per realm.
const READ_CREDITS: usize = 4;

/// Bytes per TCP read.
const READ_CHUNK: usize = 16 * 1024;

/// How long connecting to a service may take before the BIND is refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The local TCP service behind a realm port.
#[derive(Clone, Debug)]
pub(crate) struct Service {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// Rewrite Dahua realmonitor URLs on the way in (the device's own RTSP camera).
    pub dahua_rtsp: bool,
}

/// Identifies one realm connection: the PTCP peer, the realm id and a unique number (realm
/// ids can be reused after a close).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnKey {
    pub peer: SocketAddr,
    pub realm: u32,
    pub id: u64,
}

/// What the TCP tasks report to the device task.
#[derive(Debug)]
pub(crate) enum BridgeMsg {
    /// The service accepted the connection.
    Connected(ConnKey, TcpStream),
    /// The service could not be reached.
    ConnectFailed(ConnKey, String),
    /// Bytes from the service.
    Data(ConnKey, Bytes),
    /// The service closed its side (or reading failed).
    Eof(ConnKey),
    /// Writing to the service failed.
    WriteFailed(ConnKey, String),
}

/// One realm's TCP connection, owned by the device task.
pub(crate) struct RealmConn {
    /// The realm id and its unique number.
    pub key: ConnKey,
    /// The realm port.
    pub port: u16,
    /// When the realm was accepted (CONN sent).
    pub opened_at: Option<Instant>,
    service: Service,
    writer: Option<UnboundedSender<Bytes>>,
    reader: Option<JoinHandle<()>>,
    connect: Option<JoinHandle<()>>,
    credits: Arc<Semaphore>,
    pending: VecDeque<Bytes>,
    eof: bool,
    /// `close_realm` has been called for this connection.
    pub closing: bool,
}

impl RealmConn {
    /// Starts connecting to `service`; the outcome arrives as a [`BridgeMsg`].
    pub fn connect(
        key: ConnKey,
        port: u16,
        service: Service,
        tx: UnboundedSender<BridgeMsg>,
    ) -> Self {
        let addr = service.addr;
        let connect = tokio::spawn(async move {
            let msg = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    BridgeMsg::Connected(key, s)
                }
                Ok(Err(e)) => BridgeMsg::ConnectFailed(key, format!("connect to {addr}: {e}")),
                Err(_) => BridgeMsg::ConnectFailed(key, format!("connect to {addr}: timed out")),
            };
            let _ = tx.send(msg);
        });
        RealmConn {
            key,
            port,
            opened_at: None,
            service,
            writer: None,
            reader: None,
            connect: Some(connect),
            credits: Arc::new(Semaphore::new(READ_CREDITS)),
            pending: VecDeque::new(),
            eof: false,
            closing: false,
        }
    }

    /// Starts pumping a connected stream.
    pub fn start_io(&mut self, stream: TcpStream, tx: UnboundedSender<BridgeMsg>, channels: u32) {
        self.opened_at = Some(Instant::now());
        let (rd, wr) = stream.into_split();
        let (wtx, wrx) = unbounded_channel();
        let adapter = self
            .service
            .dahua_rtsp
            .then(|| DahuaUrlAdapter::new(channels));
        tokio::spawn(write_loop(wr, wrx, adapter, tx.clone(), self.key));
        self.writer = Some(wtx);
        self.reader = Some(tokio::spawn(read_loop(
            rd,
            self.credits.clone(),
            tx,
            self.key,
        )));
    }

    /// Bytes from the service, to go into the session at the next [`RealmConn::flush`].
    pub fn on_data(&mut self, data: Bytes) {
        self.pending.push_back(data);
    }

    /// The service closed its side: close the realm once the pending bytes are in.
    pub fn on_eof(&mut self) {
        self.eof = true;
    }

    /// Moves pending service bytes into `session`; true when the service's side has ended
    /// and everything is in, so the realm should be closed now.
    pub fn flush(&mut self, session: &mut Session) -> bool {
        while let Some(front) = self.pending.front_mut() {
            let n = session.send(self.key.realm, front);
            if n == front.len() {
                self.pending.pop_front();
                self.credits.add_permits(1);
            } else {
                let _ = front.split_to(n);
                break;
            }
        }
        self.eof && self.pending.is_empty() && !self.closing
    }

    /// Realm bytes for the service.
    pub fn deliver(&self, data: Bytes) {
        if let Some(w) = &self.writer {
            let _ = w.send(data);
        }
    }
}

impl Drop for RealmConn {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        if let Some(c) = self.connect.take() {
            c.abort();
        }
        // Dropping the writer's sender lets it finish its queue and shut the socket down.
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    credits: Arc<Semaphore>,
    tx: UnboundedSender<BridgeMsg>,
    key: ConnKey,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match credits.acquire().await {
            Ok(p) => p.forget(),
            Err(_) => return,
        }
        match rd.read(&mut buf).await {
            Ok(0) => {
                let _ = tx.send(BridgeMsg::Eof(key));
                return;
            }
            Ok(n) => {
                if tx
                    .send(BridgeMsg::Data(key, Bytes::copy_from_slice(&buf[..n])))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                debug!(realm = key.realm, "realm service read failed: {e}");
                let _ = tx.send(BridgeMsg::Eof(key));
                return;
            }
        }
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    mut adapter: Option<DahuaUrlAdapter>,
    tx: UnboundedSender<BridgeMsg>,
    key: ConnKey,
) {
    while let Some(b) = rx.recv().await {
        let res = match &mut adapter {
            Some(a) => {
                let out = a.push(&b);
                wr.write_all(&out).await
            }
            None => wr.write_all(&b).await,
        };
        if let Err(e) = res {
            let _ = tx.send(BridgeMsg::WriteFailed(key, e.to_string()));
            return;
        }
    }
    let _ = wr.shutdown().await;
}
