//! The async DHIP client: connects (TCP, or any byte stream a [`Connector`] opens, such as
//! a P2P tunnel), logs in, keeps the session alive at the interval the device gives, logs in
//! again when the session expires or the connection drops, and multiplexes calls by request
//! id. Login is never retried after a wrong password (devices lock the account).

mod conn;
mod events;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tracing::debug;

pub use events::{Event, EventItem, EventStream};

use crate::auth::{self, LoginError, Stage1};
use crate::codes;
use crate::envelope::{Notification, Response, SessionId, as_u64_lenient};
use conn::Conn;

/// A byte stream to a device.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}
/// A boxed byte stream.
pub type BoxStream = Box<dyn AsyncStream>;

/// Opens byte streams to one device (TCP, a tunnel...).
pub trait Connector: Send + Sync + 'static {
    /// Opens a new stream.
    fn connect(&self) -> Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send + '_>>;
    /// The device's address, for messages.
    fn peer(&self) -> String;
}

/// Connects over TCP to `host:port`.
#[derive(Clone, Debug)]
pub struct TcpConnector {
    /// `host:port`.
    pub addr: String,
    /// Connect timeout.
    pub timeout: Duration,
}

impl Connector for TcpConnector {
    fn connect(&self) -> Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send + '_>> {
        Box::pin(async move {
            let s = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&self.addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            let _ = s.set_nodelay(true);
            Ok(Box::new(s) as BoxStream)
        })
    }

    fn peer(&self) -> String {
        self.addr.clone()
    }
}

/// Who to log in as and how patient to be.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// `clientType` sent at login.
    pub client_type: String,
    /// How long a call may take.
    pub call_timeout: Duration,
    /// Keep-alive interval when the device gives none.
    pub default_keepalive: Duration,
    /// Largest message accepted.
    pub max_message: usize,
}

impl ClientConfig {
    /// Defaults for `username`/`password`.
    pub fn new(username: &str, password: &str) -> ClientConfig {
        ClientConfig {
            username: username.to_string(),
            password: password.to_string(),
            client_type: auth::DEFAULT_CLIENT_TYPE.to_string(),
            call_timeout: Duration::from_secs(10),
            default_keepalive: Duration::from_secs(60),
            max_message: crate::frame::DEFAULT_MAX_MESSAGE,
        }
    }
}

/// What went wrong talking to a device.
#[derive(Clone, Debug, Error)]
pub enum Error {
    /// Connecting, reading or writing failed.
    #[error("DHIP {peer}: {source}")]
    Io {
        /// The device.
        peer: String,
        /// The error.
        source: Arc<io::Error>,
    },
    /// The connection closed.
    #[error("DHIP {peer}: {reason}")]
    Closed {
        /// The device.
        peer: String,
        /// Why.
        reason: String,
    },
    /// No reply in time.
    #[error("DHIP {peer}: no reply to {method} within {after:?}")]
    Timeout {
        /// The device.
        peer: String,
        /// The method.
        method: String,
        /// The timeout.
        after: Duration,
    },
    /// The device sent JSON that is not an envelope.
    #[error("DHIP {peer}: {source}")]
    Envelope {
        /// The device.
        peer: String,
        /// The error.
        source: crate::EnvelopeError,
    },
    /// Login failed.
    #[error("DHIP {peer}: {source}")]
    Login {
        /// The device.
        peer: String,
        /// Why.
        source: LoginError,
    },
    /// The device answered a call with an error (or `result:false`).
    #[error("DHIP {peer}: {method} failed: {}", describe_rpc(*code, message))]
    Rpc {
        /// The device.
        peer: String,
        /// The method.
        method: String,
        /// The code (0 when the device gave only `result:false`).
        code: i64,
        /// The device's message.
        message: Option<String>,
    },
    /// The call is refused before it is sent (e.g. a firmware upgrade without confirmation).
    #[error("{0}")]
    Refused(String),
    /// A reply without the expected content.
    #[error("DHIP {peer}: {method}: unexpected reply {reply}")]
    Unexpected {
        /// The device.
        peer: String,
        /// The method.
        method: String,
        /// The reply.
        reply: String,
    },
}

fn describe_rpc(code: i64, message: &Option<String>) -> String {
    match (code, message) {
        (0, _) => "the device answered result:false".to_string(),
        (c, Some(m)) => format!("error {c}: {m}"),
        (c, None) => format!("error {c} ({})", codes::describe(c)),
    }
}

impl Error {
    /// The device's error code, for RPC errors.
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for failures of the connection (not of a call).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Error::Io { .. } | Error::Closed { .. } | Error::Timeout { .. }
        )
    }
}

/// A logged-in connection and what came with it.
struct Live {
    conn: Arc<Conn>,
    keepalive: Duration,
    keeper: JoinHandle<()>,
    _pushes: mpsc::Receiver<Notification>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

struct Shared {
    cfg: ClientConfig,
    connector: Arc<dyn Connector>,
    live: Mutex<Option<Live>>,
    logins: std::sync::atomic::AtomicU64,
}

/// A DHIP client for one device; clones share the connection.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.shared.connector.peer())
            .finish_non_exhaustive()
    }
}

/// Logs in on `conn` (two stages). Returns the keep-alive interval.
pub(crate) async fn login(conn: &Conn, cfg: &ClientConfig) -> Result<Duration, Error> {
    let peer = conn.peer.clone();
    conn.set_session(None, 0);
    let (r1, _, hs) = conn
        .request(
            "global.login",
            auth::stage1_params(&cfg.username, &cfg.client_type),
            None,
            &[],
            cfg.call_timeout,
        )
        .await?;
    let challenge = match Stage1::from_response(&r1, hs) {
        Ok(Stage1::Challenge(c)) => c,
        Ok(Stage1::AlreadyAuthenticated(s)) => {
            let header = s.as_ref().map_or(hs, SessionId::header_value);
            conn.set_session(s, header);
            return Ok(keepalive_of(&r1, cfg));
        }
        Err(source) => return Err(login_error(&peer, source, &cfg.username)),
    };
    let header = challenge
        .session
        .as_ref()
        .map_or(hs, SessionId::header_value);
    conn.set_session(challenge.session.clone(), header);
    let params = auth::stage2_params(&cfg.username, &cfg.password, &cfg.client_type, &challenge)
        .map_err(|source| Error::Login {
            peer: peer.clone(),
            source,
        })?;
    let (r2, _, hs2) = conn
        .request("global.login", params, None, &[], cfg.call_timeout)
        .await?;
    if !r2.is_success() {
        return Err(Error::Login {
            peer,
            source: LoginError::from_failure(&r2, &cfg.username, 2),
        });
    }
    let session = r2.session.clone().or(challenge.session);
    let header = session.as_ref().map_or(hs2, SessionId::header_value);
    conn.set_session(session, header);
    Ok(keepalive_of(&r2, cfg))
}

fn login_error(peer: &str, mut source: LoginError, user: &str) -> Error {
    if let LoginError::WrongPassword { user: u, .. }
    | LoginError::Locked { user: u, .. }
    | LoginError::Refused { user: u, .. } = &mut source
        && u.is_empty()
    {
        *u = user.to_string();
    }
    Error::Login {
        peer: peer.to_string(),
        source,
    }
}

/// Longest keep-alive interval taken from a device: a larger `keepAliveInterval` (a broken or
/// hostile reply) is clamped, so the timers built from it cannot overflow.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(24 * 3600);

fn keepalive_of(r: &Response, cfg: &ClientConfig) -> Duration {
    r.params
        .get("keepAliveInterval")
        .and_then(as_u64_lenient)
        .filter(|s| *s > 0)
        .map_or(cfg.default_keepalive, |s| {
            Duration::from_secs(s).min(MAX_KEEPALIVE)
        })
}

/// When to send the next keep-alive for a session that expires after `interval` (at most
/// [`MAX_KEEPALIVE`]).
pub fn keepalive_period(interval: Duration) -> Duration {
    let s = interval.min(MAX_KEEPALIVE).as_secs_f64();
    let margin = (s / 4.0).min(5.0);
    Duration::from_secs_f64((s - margin).max(0.5))
}

/// Sends keep-alives on `conn` until it closes; re-logs in if the device forgot the session.
async fn keep_alive(conn: std::sync::Weak<Conn>, cfg: ClientConfig, interval: Duration) {
    let period = keepalive_period(interval);
    loop {
        tokio::time::sleep(period).await;
        let Some(c) = conn.upgrade() else { return };
        if c.is_closed() {
            return;
        }
        let params = json!({"timeout": interval.as_secs().max(1), "active": true});
        match c
            .request("global.keepAlive", params, None, &[], cfg.call_timeout)
            .await
        {
            Ok((r, _, _)) if r.is_success() => {}
            Ok((r, _, _)) => {
                let code = r.error.as_ref().map_or(0, |e| e.code);
                if codes::is_invalid_session(code) {
                    debug!(peer = %c.peer, "session expired; logging in again");
                    if let Err(e) = login(&c, &cfg).await {
                        debug!(peer = %c.peer, "re-login failed: {e}");
                        c.shutdown().await;
                        return;
                    }
                }
            }
            Err(e) => {
                debug!(peer = %c.peer, "keep-alive failed: {e}");
                c.shutdown().await;
                return;
            }
        }
    }
}

/// A raw call: method, params, optional object and binary trailer.
#[derive(Clone, Debug)]
pub struct Call {
    /// Method.
    pub method: String,
    /// Parameters.
    pub params: Value,
    /// Instance id.
    pub object: Option<u64>,
    /// Binary trailer.
    pub data: Bytes,
}

impl Call {
    /// A call of `method` with `params`.
    pub fn new(method: &str, params: Value) -> Call {
        Call {
            method: method.to_string(),
            params,
            object: None,
            data: Bytes::new(),
        }
    }

    /// The same call on instance `object`.
    pub fn on(mut self, object: u64) -> Call {
        self.object = Some(object);
        self
    }
}

impl Client {
    /// Connects to `host:port` over TCP and logs in.
    pub async fn connect(host: &str, port: u16, cfg: ClientConfig) -> Result<Client, Error> {
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Client::with_connector(
            Arc::new(TcpConnector {
                addr,
                timeout: cfg.call_timeout,
            }),
            cfg,
        )
        .await
    }

    /// Logs in over streams that `connector` opens.
    pub async fn with_connector(
        connector: Arc<dyn Connector>,
        cfg: ClientConfig,
    ) -> Result<Client, Error> {
        let c = Client {
            shared: Arc::new(Shared {
                cfg,
                connector,
                live: Mutex::new(None),
                logins: Default::default(),
            }),
        };
        c.live().await?;
        Ok(c)
    }

    /// The device's address.
    pub fn peer(&self) -> String {
        self.shared.connector.peer()
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.cfg
    }

    /// The connector (to open more connections to the same device).
    pub fn connector(&self) -> Arc<dyn Connector> {
        self.shared.connector.clone()
    }

    /// Logins so far (the first plus every re-login).
    pub fn logins(&self) -> u64 {
        self.shared
            .logins
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The current session, if logged in.
    pub async fn session(&self) -> Option<SessionId> {
        self.shared
            .live
            .lock()
            .await
            .as_ref()
            .and_then(|l| l.conn.session())
    }

    /// The keep-alive interval the device gave.
    pub async fn keepalive_interval(&self) -> Option<Duration> {
        self.shared.live.lock().await.as_ref().map(|l| l.keepalive)
    }

    /// Opens a connection and logs in.
    pub(crate) async fn open(
        connector: &dyn Connector,
        cfg: &ClientConfig,
    ) -> Result<(Arc<Conn>, mpsc::Receiver<Notification>, Duration), Error> {
        let peer = connector.peer();
        let stream = connector.connect().await.map_err(|e| Error::Io {
            peer: peer.clone(),
            source: Arc::new(e),
        })?;
        let (conn, pushes) = Conn::start(stream, peer, cfg.max_message);
        let keepalive = login(&conn, cfg).await?;
        Ok((conn, pushes, keepalive))
    }

    /// The logged-in connection, connecting and logging in if there is none or it died.
    async fn live(&self) -> Result<Arc<Conn>, Error> {
        let mut guard = self.shared.live.lock().await;
        if let Some(l) = guard.as_ref()
            && !l.conn.is_closed()
        {
            return Ok(l.conn.clone());
        }
        *guard = None;
        let cfg = &self.shared.cfg;
        let (conn, pushes, keepalive) = Client::open(self.shared.connector.as_ref(), cfg).await?;
        self.shared
            .logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        debug!(peer = %conn.peer, session = ?conn.session(), ?keepalive, "DHIP logged in");
        let keeper = tokio::spawn(keep_alive(Arc::downgrade(&conn), cfg.clone(), keepalive));
        *guard = Some(Live {
            conn: conn.clone(),
            keepalive,
            keeper,
            _pushes: pushes,
        });
        Ok(conn)
    }

    /// Sends `call` and returns the reply and its binary trailer; `result:false` is a reply,
    /// not an error. A session the device forgot is logged in again and the call repeated
    /// once; so is a connection that dropped.
    pub async fn request_raw(&self, call: &Call) -> Result<(Response, Bytes), Error> {
        let timeout = self.shared.cfg.call_timeout;
        let mut retried = false;
        loop {
            let conn = self.live().await?;
            let res = conn
                .request(
                    &call.method,
                    call.params.clone(),
                    call.object,
                    &call.data,
                    timeout,
                )
                .await;
            match res {
                Ok((r, data, _)) => {
                    let code = r.error.as_ref().map_or(0, |e| e.code);
                    if codes::is_invalid_session(code) && !retried {
                        retried = true;
                        debug!(peer = %conn.peer, method = %call.method, "session expired; logging in again");
                        login(&conn, &self.shared.cfg).await?;
                        self.shared
                            .logins
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    return Ok((r, data));
                }
                Err(Error::Closed { .. }) if !retried => {
                    retried = true;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `method` with `params`; `result:false` is returned, not raised.
    pub async fn request(&self, method: &str, params: Value) -> Result<Response, Error> {
        Ok(self.request_raw(&Call::new(method, params)).await?.0)
    }

    /// Calls `call`: an error unless `result` is truthy, else the useful part of the reply
    /// (see [`Response::extract`]).
    pub async fn call_with(&self, call: &Call) -> Result<Value, Error> {
        let (r, _) = self.request_raw(call).await?;
        self.check(&call.method, &r)?;
        Ok(r.extract())
    }

    /// Calls `method` with `params` (see [`Client::call_with`]).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        self.call_with(&Call::new(method, params)).await
    }

    /// An error for a reply whose `result` is falsy.
    pub(crate) fn check(&self, method: &str, r: &Response) -> Result<(), Error> {
        if r.is_success() {
            return Ok(());
        }
        Err(Error::Rpc {
            peer: self.peer(),
            method: method.to_string(),
            code: r.error.as_ref().map_or(0, |e| e.code),
            message: r.error.as_ref().and_then(|e| e.message.clone()),
        })
    }

    /// Logs out (waiting for the reply, so the session does not linger) and closes.
    pub async fn logout(&self) -> Result<(), Error> {
        let live = self.shared.live.lock().await.take();
        if let Some(l) = live {
            if !l.conn.is_closed() {
                let _ = l
                    .conn
                    .request(
                        "global.logout",
                        json!({}),
                        None,
                        &[],
                        self.shared.cfg.call_timeout,
                    )
                    .await;
            }
            l.conn.shutdown().await;
        }
        Ok(())
    }

    /// Closes the connection without logging out (the next call connects again).
    pub async fn disconnect(&self) {
        if let Some(l) = self.shared.live.lock().await.take() {
            l.conn.shutdown().await;
        }
    }

    /// Pushes dropped on the control connection (nobody reads them there).
    pub async fn pushes_dropped(&self) -> u64 {
        self.shared
            .live
            .lock()
            .await
            .as_ref()
            .map_or(0, |l| l.conn.pushes_dropped())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_keepalive_interval_from_the_device_is_clamped() {
        // u64::MAX seconds: `Duration::from_secs_f64` panicked on it, and a tokio interval
        // of anything near it overflowed `Instant + Duration`.
        let r = Response::from_json(
            br#"{"id":2,"result":true,"params":{"keepAliveInterval":18446744073709551615}}"#,
        )
        .unwrap();
        let interval = keepalive_of(&r, &ClientConfig::new("admin", "pw"));
        assert_eq!(interval, MAX_KEEPALIVE);
        let period = keepalive_period(interval);
        assert_eq!(period, MAX_KEEPALIVE - Duration::from_secs(5));
        assert!(tokio::time::Instant::now().checked_add(period).is_some());
        assert_eq!(keepalive_period(Duration::MAX), period);
    }

    #[test]
    fn a_sane_keepalive_interval_is_kept() {
        let r = Response::from_json(br#"{"id":2,"result":true,"params":{"keepAliveInterval":60}}"#)
            .unwrap();
        let interval = keepalive_of(&r, &ClientConfig::new("admin", "pw"));
        assert_eq!(interval, Duration::from_secs(60));
        assert_eq!(keepalive_period(interval), Duration::from_secs(55));
    }
}
