//! The HTTP server's connections: each passes the gate shared with the RTSP server (a 503 past
//! a limit), is served by hyper's HTTP/1.1 with a bounded request head that must arrive within
//! the header timeout (which also closes idle keep-alive connections), and is shut down
//! gracefully: a request in progress is answered, a streaming response is cut after a grace
//! period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rtsp::server::Gate;
use rtsp::server::refuse::{Protocol, refuse};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::{debug, info, warn};

/// Largest request head (request line and headers) taken.
pub const MAX_HEAD: usize = 16 * 1024;

/// How the HTTP server treats its connections.
#[derive(Clone, Debug)]
pub struct HttpPolicy {
    /// Connection limits and login back-off (shared with the RTSP server).
    pub gate: Arc<Gate>,
    /// A request head must arrive in full within this; a keep-alive connection waiting this
    /// long for its next request is closed.
    pub header_timeout: Duration,
    /// How long a response in progress may go on once shutdown begins.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` turns true, then stops accepting, lets each
/// connection finish its response (at most `grace`) and returns when all are closed.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    policy: HttpPolicy,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = closed(&mut shutdown) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Most often EMFILE: out of descriptors. Wait for some to be freed.
                warn!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match policy.gate.admit(peer.ip(), "HTTP") {
            Ok(p) => p,
            Err(r) => {
                refuse(sock, Protocol::Http, &r.to_string());
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let app = app.clone();
        let policy = policy.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            serve_one(sock, peer, app, &policy, shutdown).await;
        });
    }
    info!("HTTP server stopped accepting");
    drop(listener);
    while conns.join_next().await.is_some() {}
    Ok(())
}

async fn serve_one(
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    policy: &HttpPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await;
            Ok::<_, Infallible>(match resp {
                Ok(r) => r,
                Err(never) => match never {},
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(policy.header_timeout)
        .max_header_size(MAX_HEAD)
        .max_headers(64)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(sock), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(%peer, "HTTP connection ended: {e}");
            }
        }
        _ = closed(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            if tokio::time::timeout(policy.grace, conn.as_mut()).await.is_err() {
                debug!(%peer, "HTTP response cut at shutdown");
            }
        }
    }
}

/// Resolves once `rx` says true (never, if its sender is gone without saying so).
pub async fn closed(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
