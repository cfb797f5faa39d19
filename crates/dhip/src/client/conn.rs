//! One DHIP connection: a reader task that splits the stream into messages and routes
//! responses to their callers by request id (pushes go to a channel of their own, so a push
//! is never mistaken for a reply), and a writer shared by the callers. Any number of calls
//! may be in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::{BoxStream, Error};
use crate::envelope::{Incoming, Notification, Request, Response, SessionId};
use crate::frame::{Decoder, Message, Reassembler, encode};

/// Pushes buffered for a slow consumer before new ones are dropped.
const PUSH_QUEUE: usize = 1024;

/// A reply: the response, the binary trailer, and the header session.
pub(crate) type Reply = (Response, Bytes, u32);

type Waiters = Mutex<HashMap<u64, oneshot::Sender<Result<Reply, Error>>>>;

/// One open connection.
pub(crate) struct Conn {
    pub(crate) peer: String,
    writer: tokio::sync::Mutex<WriteHalf<BoxStream>>,
    waiters: Arc<Waiters>,
    next_id: AtomicU64,
    session: Mutex<Option<SessionId>>,
    header_session: AtomicU32,
    closed: Arc<AtomicBool>,
    close_reason: Arc<Mutex<Option<String>>>,
    reader: JoinHandle<()>,
    pushes_dropped: Arc<AtomicU64>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Starts the reader on `stream`; pushes go to the returned receiver.
    pub(crate) fn start(
        stream: BoxStream,
        peer: String,
        max_message: usize,
    ) -> (Arc<Conn>, mpsc::Receiver<Notification>) {
        let (rd, wr) = tokio::io::split(stream);
        let (push_tx, push_rx) = mpsc::channel(PUSH_QUEUE);
        let waiters: Arc<Waiters> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let close_reason = Arc::new(Mutex::new(None));
        let pushes_dropped = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(read_loop(
            rd,
            peer.clone(),
            max_message,
            waiters.clone(),
            push_tx,
            closed.clone(),
            close_reason.clone(),
            pushes_dropped.clone(),
        ));
        let conn = Arc::new(Conn {
            peer,
            writer: tokio::sync::Mutex::new(wr),
            waiters,
            next_id: AtomicU64::new(1),
            session: Mutex::new(None),
            header_session: AtomicU32::new(0),
            closed,
            close_reason,
            reader,
            pushes_dropped,
        });
        (conn, push_rx)
    }

    /// True once the connection failed or was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Why it closed.
    pub(crate) fn close_reason(&self) -> String {
        self.close_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "connection closed".into())
    }

    /// Pushes dropped because nobody read them.
    pub(crate) fn pushes_dropped(&self) -> u64 {
        self.pushes_dropped.load(Ordering::Relaxed)
    }

    /// The session requests carry.
    pub(crate) fn session(&self) -> Option<SessionId> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the session (and the header value that goes with it).
    pub(crate) fn set_session(&self, s: Option<SessionId>, header: u32) {
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = s;
        self.header_session.store(header, Ordering::Release);
    }

    /// The next request id.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one request and waits for its reply (`result:false` is a reply, not an error).
    pub(crate) async fn request(
        &self,
        method: &str,
        params: Value,
        object: Option<u64>,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let id = self.next_id();
        let mut req = Request::new(method, params, id);
        req.session = self.session();
        req.object = object;
        self.send(req, data, timeout).await
    }

    /// Sends `req` (its id must be unique on this connection) and waits for the reply.
    pub(crate) async fn send(
        &self,
        req: Request,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Reply, Error> {
        if self.is_closed() {
            return Err(Error::Closed {
                peer: self.peer.clone(),
                reason: self.close_reason(),
            });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(req.id, tx);
        let mut out = BytesMut::new();
        encode(
            self.header_session.load(Ordering::Acquire),
            req.id as u32,
            &req.to_json(),
            data,
            &mut out,
        );
        let write = async {
            let mut w = self.writer.lock().await;
            w.write_all(&out).await?;
            w.flush().await
        };
        let res = match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(Error::Closed {
                    peer: self.peer.clone(),
                    reason: self.close_reason(),
                }),
                Err(_) => Err(Error::Timeout {
                    peer: self.peer.clone(),
                    method: req.method.clone(),
                    after: timeout,
                }),
            },
            Ok(Err(e)) => Err(Error::Io {
                peer: self.peer.clone(),
                source: Arc::new(e),
            }),
            Err(_) => Err(Error::Timeout {
                peer: self.peer.clone(),
                method: req.method.clone(),
                after: timeout,
            }),
        };
        if res.is_err() {
            self.waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&req.id);
        }
        res
    }

    /// Closes the write side (the device then closes too).
    pub(crate) async fn shutdown(&self) {
        let mut w = self.writer.lock().await;
        let _ = w.shutdown().await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_loop(
    mut rd: ReadHalf<BoxStream>,
    peer: String,
    max_message: usize,
    waiters: Arc<Waiters>,
    pushes: mpsc::Sender<Notification>,
    closed: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<String>>>,
    dropped: Arc<AtomicU64>,
) {
    let mut dec = Decoder::new(max_message);
    let mut joiner = Reassembler::new(max_message);
    let why = loop {
        let buf = dec.buffer_mut();
        buf.reserve(16 * 1024);
        match rd.read_buf(buf).await {
            Ok(0) => break "the device closed the connection".to_string(),
            Ok(_) => {}
            Err(e) => break format!("read failed: {e}"),
        }
        let mut failed = None;
        loop {
            match dec.next_message() {
                Ok(Some(m)) => match joiner.push(m) {
                    Ok(done) => {
                        for m in done {
                            dispatch(m, &peer, &waiters, &pushes, &dropped);
                        }
                    }
                    Err(e) => {
                        failed = Some(format!("{e}"));
                        break;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    failed = Some(format!("{e}"));
                    break;
                }
            }
        }
        // A held message is complete once nothing more is buffered behind it.
        if dec.buffered() == 0
            && let Some(m) = joiner.flush()
        {
            dispatch(m, &peer, &waiters, &pushes, &dropped);
        }
        if let Some(f) = failed {
            break f;
        }
    };
    if let Some(m) = joiner.flush() {
        dispatch(m, &peer, &waiters, &pushes, &dropped);
    }
    debug!(%peer, "DHIP connection ended: {why}");
    *reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
    closed.store(true, Ordering::Release);
    let pending: Vec<_> = waiters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    for (_, tx) in pending {
        let _ = tx.send(Err(Error::Closed {
            peer: peer.clone(),
            reason: why.clone(),
        }));
    }
}

fn dispatch(
    m: Message,
    peer: &str,
    waiters: &Waiters,
    pushes: &mpsc::Sender<Notification>,
    dropped: &AtomicU64,
) {
    match Incoming::from_json(&m.json) {
        Ok(Incoming::Response(r)) => {
            let id = r.id.unwrap_or(u64::from(m.request_id));
            let tx = waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            match tx {
                Some(tx) => {
                    let _ = tx.send(Ok((r, m.data, m.session)));
                }
                None => debug!(%peer, id, "DHIP reply to no pending request"),
            }
        }
        Ok(Incoming::Notification(n)) => {
            if pushes.try_send(n).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => {
            warn!(%peer, request = m.request_id, "unreadable DHIP message: {e}");
            let tx = waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&u64::from(m.request_id));
            if let Some(tx) = tx {
                let _ = tx.send(Err(Error::Envelope {
                    peer: peer.to_string(),
                    source: e,
                }));
            }
        }
    }
}
