//! camgate's RTSP server: serves every Hub stream at `rtsp://HOST:PORT/<name>` over TCP
//! interleaved and UDP unicast, with Basic/Digest auth, keep-alive, session timeouts and RTCP
//! sender reports. One task per connection; one sender task per playing session, which writes
//! each frame with one vectored write (TCP) and shares payload bytes with every other reader.
//!
//! Connections pass a [`Gate`] (limits in all and per address, shared with the HTTP server)
//! and live under a [`ConnectionPolicy`]: a request head must arrive in full within
//! `header_timeout`, a connection that has not authenticated is closed after `auth_timeout`
//! without a request, and one that plays nothing after `idle_timeout`.

pub mod auth;
mod conn;
pub mod framing;
pub mod gate;
mod gso;
pub mod refuse;
mod sdp;
mod sender;
mod udp;
mod wire;

pub use auth::{AuthFailure, Authenticator, User};
pub use gate::{ConnectionLimits, Gate, GateCounters, LogThrottle, LoginBackoff, Permit, Refusal};
pub use sdp::{describe as describe_sdp, payload_types};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use media::hub::Hub;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// How the RTSP server listens and treats sessions.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// TCP address for RTSP (default 0.0.0.0:8554).
    pub listen: SocketAddr,
    /// UDP port for RTP (RTCP uses the next one); `None` disables UDP transport, `Some(0)`
    /// picks a free pair.
    pub rtp_port: Option<u16>,
    /// A UDP session without a request or RTCP packet for this long is torn down.
    pub session_timeout: Duration,
    /// Users allowed to read; empty = no authentication.
    pub users: Vec<User>,
    /// Also offer Basic in 401 challenges.
    pub offer_basic: bool,
    /// Largest RTP payload sent.
    pub max_payload: usize,
    /// Interval of RTCP sender reports.
    pub rtcp_interval: Duration,
    /// A connection whose frame write blocks longer than this is closed.
    pub write_timeout: Duration,
    /// Timeouts and caps of each connection.
    pub policy: ConnectionPolicy,
    /// Connection limits and login back-off (share one with the HTTP server).
    pub gate: Arc<Gate>,
}

/// The timeouts and caps every connection lives under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionPolicy {
    /// A request (head and body) must arrive in full within this once it has begun.
    pub header_timeout: Duration,
    /// A connection that has not authenticated (nor, on an open server, made a request) is
    /// closed after this long without a request.
    pub auth_timeout: Duration,
    /// An authenticated connection that plays nothing is closed after this long without a
    /// request.
    pub idle_timeout: Duration,
    /// RTSP sessions one connection may hold.
    pub max_sessions: usize,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        ConnectionPolicy {
            header_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            max_sessions: 16,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8554)),
            rtp_port: Some(8000),
            session_timeout: Duration::from_secs(60),
            users: Vec::new(),
            offer_basic: false,
            max_payload: 1400,
            rtcp_interval: Duration::from_secs(5),
            write_timeout: Duration::from_secs(20),
            policy: ConnectionPolicy::default(),
            gate: Gate::new(ConnectionLimits::default(), LoginBackoff::default()),
        }
    }
}

/// Counters of the server, for metrics and leak checks.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Open TCP connections.
    pub connections: AtomicUsize,
    /// Live RTSP sessions.
    pub sessions: AtomicUsize,
    /// Sessions playing now.
    pub playing: AtomicUsize,
    /// RTP packets sent since start.
    pub rtp_packets: AtomicU64,
    /// RTP payload+header bytes sent since start.
    pub rtp_bytes: AtomicU64,
    /// Requests answered with 4xx/5xx.
    pub errors: AtomicU64,
    /// Connections refused by the gate's limits.
    pub refused: AtomicU64,
    /// Connections closed for a timeout (incomplete request, idle, not authenticated).
    pub timed_out: AtomicU64,
    /// `TEARDOWN` requests answered.
    pub teardowns: AtomicU64,
}

/// An open connection, counted (and holding its place at the gate) until dropped, however its
/// task ends.
struct OpenConnection {
    counters: Arc<ServerCounters>,
    _permit: Permit,
}

impl OpenConnection {
    fn new(counters: Arc<ServerCounters>, permit: Permit) -> Self {
        counters.connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection {
            counters,
            _permit: permit,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.counters.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A bound RTSP server.
pub struct RtspServer {
    hub: Arc<Hub>,
    cfg: ServerConfig,
    auth: Authenticator,
    listener: TcpListener,
    udp: Option<Arc<udp::UdpPair>>,
    counters: Arc<ServerCounters>,
    kick: tokio::sync::watch::Sender<u64>,
    /// Set when the server shuts down: connections close cleanly and no new one is accepted.
    closing: tokio::sync::watch::Sender<bool>,
    /// Malformed messages are logged at most once per 10 s (with the count in between).
    malformed_log: LogThrottle,
    udp_task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        if let Some(t) = self.udp_task.lock().expect("udp task").take() {
            t.abort();
        }
    }
}

impl RtspServer {
    /// Binds the TCP listener and, if enabled, the RTP/RTCP UDP pair.
    pub async fn bind(hub: Arc<Hub>, cfg: ServerConfig) -> std::io::Result<Arc<RtspServer>> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let udp = match cfg.rtp_port {
            Some(port) => Some(Arc::new(udp::UdpPair::bind(cfg.listen.ip(), port).await?)),
            None => None,
        };
        let mut auth = Authenticator::new(cfg.users.clone());
        auth.offer_basic = cfg.offer_basic;
        let server = Arc::new(RtspServer {
            hub,
            cfg,
            auth,
            listener,
            udp,
            counters: Arc::new(ServerCounters::default()),
            kick: tokio::sync::watch::channel(0).0,
            closing: tokio::sync::watch::channel(false).0,
            malformed_log: LogThrottle::new(Duration::from_secs(10)),
            udp_task: std::sync::Mutex::new(None),
        });
        if let Some(u) = &server.udp {
            let h = tokio::spawn(u.clone().receive_loop());
            *server.udp_task.lock().expect("udp task") = Some(h.abort_handle());
        }
        Ok(server)
    }

    /// The TCP address RTSP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The RTP and RTCP UDP ports, if UDP is enabled.
    pub fn udp_ports(&self) -> Option<(u16, u16)> {
        self.udp.as_ref().map(|u| u.ports())
    }

    /// Counters (connections, sessions, packets).
    pub fn counters(&self) -> &Arc<ServerCounters> {
        &self.counters
    }

    /// Closes every open connection (and so every session); new ones are still accepted.
    pub fn disconnect_all(&self) {
        self.kick.send_modify(|g| *g += 1);
    }

    /// Shuts the server down: stops accepting, ends every session (a sender finishes the
    /// frame it is writing), closes every connection with a FIN after what was queued for it,
    /// and waits (at most `within`) until every connection is gone. True if all closed in time.
    pub async fn shutdown(&self, within: Duration) -> bool {
        self.closing.send_replace(true);
        let deadline = tokio::time::Instant::now() + within;
        while self.counters.connections.load(Ordering::Relaxed) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Accepts connections until the task is dropped or the server shuts down.
    pub async fn run(self: Arc<Self>) {
        info!(addr = %self.local_addr(), udp = ?self.udp_ports(), "RTSP server listening");
        let mut closing = self.closing.subscribe();
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = closing.wait_for(|c| *c) => {
                    info!(addr = %self.local_addr(), "RTSP server stopped accepting");
                    return;
                }
            };
            match accepted {
                Ok((sock, peer)) => {
                    let permit = match self.cfg.gate.admit(peer.ip(), "RTSP") {
                        Ok(p) => p,
                        Err(r) => {
                            self.counters.refused.fetch_add(1, Ordering::Relaxed);
                            refuse::refuse(sock, refuse::Protocol::Rtsp, &r.to_string());
                            continue;
                        }
                    };
                    let _ = sock.set_nodelay(true);
                    let ka = socket2::TcpKeepalive::new()
                        .with_time(Duration::from_secs(30))
                        .with_interval(Duration::from_secs(10));
                    let _ = socket2::SockRef::from(&sock).set_tcp_keepalive(&ka);
                    let me = self.clone();
                    let open = OpenConnection::new(me.counters.clone(), permit);
                    tokio::spawn(async move {
                        let _open = open;
                        debug!(%peer, "RTSP connection");
                        conn::Connection::new(me.clone(), sock, peer).run().await;
                        debug!(%peer, "RTSP connection closed");
                    });
                }
                Err(e) => {
                    // Most often EMFILE: out of descriptors. Wait for some to be freed.
                    warn!("RTSP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Runs the server on a new task.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }
}
