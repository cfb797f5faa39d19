//! The HTTP API on axum (port 1984 by default). Paths are named as go2rtc names them, so that
//! clients written for go2rtc (Home Assistant, Frigate, scripts) work unchanged:
//!
//! - `GET /api/streams[?src=NAME]`: state and counters of every stream (an object keyed by
//!   name), or of one;
//! - `GET /api/frame.jpeg?src=NAME`: a JPEG snapshot from the cached keyframe;
//! - `GET /api/stream.mjpeg?src=NAME`: a `multipart/x-mixed-replace` MJPEG stream;
//! - `GET /metrics`: Prometheus text format;
//! - `/api/cameras/{name}/...`: device control (info, config, PTZ, reboot, events) of DHIP and
//!   Dahua P2P cameras (see `cameras`).
//!
//! Every route is behind HTTP Basic auth when users are configured. Unlike go2rtc, requests from
//! localhost are not exempt: a reverse proxy on the same host would otherwise open everything.
//!
//! ## Decoding H.264/H.265 for snapshots and MJPEG: an ffmpeg subprocess
//!
//! camgate never transcodes on the main path (RTSP re-serves the camera's own bitstream). Only
//! two HTTP outputs need pictures: `/api/frame.jpeg` and `/api/stream.mjpeg` of an H.264/H.265
//! camera. For those camgate runs the `ffmpeg` binary as a subprocess, fed Annex B on stdin and
//! read as JPEG on stdout, instead of linking a decoder into the process:
//!
//! - **For the subprocess:** it decodes everything cameras send (H.264 of every profile, H.265
//!   Main/Main 10, odd SPS extensions) and encodes JPEG, with no C code in our build and no
//!   codec licences in our binary; a decoder crash or a hostile bitstream kills a child, not
//!   the server that carries every other camera; the cost is paid only while someone asks
//!   for pictures (a snapshot is one short run, cached per keyframe; an MJPEG stream is one
//!   long run per stream, whoever watches it).
//! - **Against it:** ffmpeg must be installed (a clear 500 says so when it is not; JPEG cameras
//!   need nothing); each snapshot of a new keyframe pays a process start (~30–60 ms) on top of
//!   the decode; one MJPEG stream costs a process and pipe copies of the bitstream.
//! - **The in-process alternative** (openh264, or libavcodec through bindings) would save the
//!   process start and the copies, but openh264 decodes only H.264 (Constrained Baseline and
//!   some High) and not H.265, builds bundled C++, and a decoder fault would take the whole
//!   server down; libavcodec bindings need the C development libraries at build time. Neither
//!   pays off for snapshots and occasional MJPEG viewers.
//!
//! Snapshots decode the cached keyframe only (a picture at most one GOP old), never wait for
//! the next keyframe when one is cached, and keep the last JPEG per stream keyed by that
//! keyframe, so a dashboard polling every second runs ffmpeg once per GOP. MJPEG shares one
//! ffmpeg per stream among all its MJPEG readers (see `mjpeg`).

mod cameras;
mod error;
mod ffmpeg;
mod metrics;
mod mjpeg;
pub mod server;
mod snapshot;
mod streams;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use media::hub::Hub;
use rtsp::server::auth::parse_basic;
use rtsp::server::{Authenticator, ConnectionLimits, Gate, LoginBackoff, ServerCounters, User};
use tokio::sync::watch;

pub use error::ApiError;

/// What the HTTP API serves from.
#[derive(Clone)]
pub struct AppState {
    /// The streams.
    pub hub: Arc<Hub>,
    /// The RTSP server's counters, for `/metrics`.
    pub rtsp: Option<Arc<ServerCounters>>,
    /// `(username, password)` pairs; non-empty = every request needs Basic auth.
    pub users: Vec<(String, String)>,
    /// The ffmpeg binary (a name on `PATH` or a path) used to decode H.264/H.265.
    pub ffmpeg: String,
    /// Control of the cameras that have one, by name.
    pub controls: Arc<std::collections::HashMap<String, Arc<dyn crate::control::CameraControl>>>,
    /// Connection limits and login back-off (shared with the RTSP server).
    pub gate: Arc<Gate>,
    /// A request head must arrive in full within this (and an idle keep-alive connection is
    /// closed after it).
    pub header_timeout: Duration,
    /// How long a response in progress may go on once shutdown begins.
    pub shutdown_grace: Duration,
}

impl AppState {
    /// State for `hub` with no RTSP counters, no users and `ffmpeg` from `PATH`.
    pub fn new(hub: Arc<Hub>) -> Self {
        AppState {
            hub,
            rtsp: None,
            users: Vec::new(),
            ffmpeg: "ffmpeg".into(),
            controls: Arc::default(),
            gate: Gate::new(ConnectionLimits::default(), LoginBackoff::default()),
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// The state every handler sees: the configuration plus the per-stream caches.
struct Shared {
    app: AppState,
    auth: Authenticator,
    snapshots: snapshot::SnapshotCache,
    transcoders: mjpeg::Transcoders,
}

type Ctx = Arc<Shared>;

/// The API as an axum router (for embedding, or serving with graceful shutdown).
pub fn router(state: AppState) -> Router {
    let auth = Authenticator::new(
        state
            .users
            .iter()
            .map(|(u, p)| User {
                username: u.clone(),
                password: p.clone(),
            })
            .collect(),
    );
    let ctx: Ctx = Arc::new(Shared {
        app: state,
        auth,
        snapshots: snapshot::SnapshotCache::default(),
        transcoders: mjpeg::Transcoders::default(),
    });
    Router::new()
        .route("/api/streams", get(streams::streams))
        .route("/api/frame.jpeg", get(snapshot::frame_jpeg))
        .route("/api/stream.mjpeg", get(mjpeg::stream_mjpeg))
        .route("/metrics", get(metrics::metrics))
        .route("/api/cameras/{name}/info", get(cameras::info))
        .route(
            "/api/cameras/{name}/config/{section}",
            get(cameras::get_config).put(cameras::put_config),
        )
        .route("/api/cameras/{name}/ptz", post(cameras::ptz))
        .route("/api/cameras/{name}/reboot", post(cameras::reboot))
        .route("/api/cameras/{name}/events", get(cameras::events))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(ctx.clone(), basic_auth))
        .with_state(ctx)
}

/// Serves the API on `listener` (until the task is dropped).
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    let (_keep, rx) = watch::channel(false);
    serve_until(listener, state, rx).await
}

/// Serves the API on `listener` until `shutdown` turns true, then shuts down gracefully.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let policy = server::HttpPolicy {
        gate: state.gate.clone(),
        header_timeout: state.header_timeout,
        grace: state.shutdown_grace,
    };
    server::serve_connections(listener, router(state), policy, shutdown).await
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such path: {}", req.uri().path()),
    )
}

/// Rejects requests without valid Basic credentials when users are configured. Failed logins
/// count towards the client address's back-off (shared with RTSP); while it lasts, the
/// address's credentials are not checked and the answer is 429 with `Retry-After`.
async fn basic_auth(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    if ctx.auth.is_open() {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let offered = req.headers().get(header::AUTHORIZATION).map(|v| {
        v.to_str()
            .ok()
            .and_then(basic_credentials)
            .unwrap_or_default()
    });
    let gate = &ctx.app.gate;
    if let Some((user, pass)) = offered {
        if let Err(wait) = gate.login_allowed(peer, Instant::now()) {
            // The answer waits (at most a second), so that a client hammering on one
            // keep-alive connection costs one answer per second, not one per round trip.
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins from this address; try again later",
            )
            .into_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)),
            );
            return resp;
        }
        if ctx.auth.check_password(&user, &pass).is_some() {
            gate.login_succeeded(peer);
            return next.run(req).await;
        }
        gate.login_failed(peer, &user, "HTTP", Instant::now());
    }
    let mut resp =
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication required").into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"camgate\""),
    );
    resp
}

/// `Basic base64(user:pass)` → `(user, pass)`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    parse_basic(rest)
}

/// Parses a query string strictly: `%XX` escapes must be valid and decode to UTF-8.
fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, ApiError> {
    text::decode_query_component(s)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query: {s:?} is {e}")))
}

/// The `src` parameter: required, non-empty, given once.
fn src_param(raw: Option<&str>) -> Result<String, ApiError> {
    let src = optional_src(raw)?;
    src.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing ?src=NAME (the stream name)",
        )
    })
}

/// The `src` parameter if present: non-empty, given once.
fn optional_src(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let params = parse_query(raw)?;
    let mut srcs = params
        .into_iter()
        .filter(|(k, _)| k == "src")
        .map(|(_, v)| v);
    let first = srcs.next();
    if srcs.next().is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad query: src given more than once",
        ));
    }
    match first {
        Some(s) if s.is_empty() => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad query: src is empty",
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded() {
        // "viewer:p:w" — the password may contain ':'.
        assert_eq!(
            basic_credentials("Basic dmlld2VyOnA6dw=="),
            Some(("viewer".into(), "p:w".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }

    #[test]
    fn query_is_decoded_strictly() {
        assert_eq!(
            parse_query(Some("src=a%20b&x=1+2")).unwrap(),
            vec![("src".into(), "a b".into()), ("x".into(), "1 2".into())]
        );
        assert!(parse_query(Some("src=%zz")).is_err());
        assert!(parse_query(Some("src=%ff")).is_err());
        assert!(parse_query(Some("src=%4")).is_err());
        assert!(parse_query(Some("src=%+f")).is_err());
        assert!(parse_query(Some("src=%-1")).is_err());
    }

    #[test]
    fn src_must_be_present_once_and_non_empty() {
        assert_eq!(src_param(Some("src=cam")).unwrap(), "cam");
        assert_eq!(src_param(None).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(
            src_param(Some("src=")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            src_param(Some("src=a&src=b")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(optional_src(Some("other=1")).unwrap(), None);
    }
}
