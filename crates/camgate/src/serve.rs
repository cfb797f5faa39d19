//! `camgate serve`: builds the Hub from the configuration and runs the RTSP and HTTP servers.

use std::sync::Arc;
use std::time::Duration;

use media::hub::Hub;
use rtsp::server::{ConnectionLimits, Gate, RtspServer, ServerConfig, User};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{Config, camera_key_line};
use crate::sources::{make_camera, stream_options};

/// A running camgate: the Hub, the RTSP server and the HTTP server.
pub struct Running {
    /// The streams.
    pub hub: Arc<Hub>,
    /// The RTSP server.
    pub rtsp: Arc<RtspServer>,
    /// The HTTP API address.
    pub http_addr: std::net::SocketAddr,
    /// The limits both servers admit connections under.
    pub gate: Arc<Gate>,
    controls: Arc<std::collections::HashMap<String, Arc<dyn crate::control::CameraControl>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http_task: Option<tokio::task::JoinHandle<()>>,
    stop_http: watch::Sender<bool>,
    shutdown_timeout: Duration,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in self.tasks.iter().chain(&self.http_task) {
            t.abort();
        }
        self.hub.close();
    }
}

impl Running {
    /// Shuts down gracefully within the configured `shutdown_timeout_s`: both servers stop
    /// accepting; every RTSP reader's session ends after the frame being written and its
    /// connection closes with a FIN; HTTP requests in progress are answered (a streaming
    /// response is cut after a grace period); then every camera session is ended politely
    /// (RTSP `TEARDOWN`). True when all of it finished in time.
    pub async fn shutdown(mut self) -> bool {
        let within = self.shutdown_timeout;
        let deadline = tokio::time::Instant::now() + within;
        self.stop_http.send_replace(true);
        let http = self.http_task.take();
        let rtsp = self.rtsp.clone();
        let hub = self.hub.clone();
        let controls = self.controls.clone();
        let (readers_and_cameras, http_done) = tokio::join!(
            async move {
                let readers = rtsp.shutdown(within).await;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let logouts = futures_util::future::join_all(controls.values().map(|c| c.close()));
                let (cameras, logged_out) =
                    tokio::join!(hub.shutdown(left), tokio::time::timeout(left, logouts));
                if logged_out.is_err() {
                    warn!("some camera controls were still logging out at the shutdown deadline");
                }
                if !readers {
                    warn!("some RTSP connections were still open at the shutdown deadline");
                }
                if !cameras {
                    warn!("some cameras were still being stopped at the shutdown deadline");
                }
                readers && cameras
            },
            async move {
                match http {
                    Some(t) => tokio::time::timeout_at(deadline, t).await.is_ok(),
                    None => true,
                }
            }
        );
        if !http_done {
            warn!("some HTTP connections were still open at the shutdown deadline");
        }
        readers_and_cameras && http_done
    }
}

/// Builds every source first (so a bad camera stops everything before anything listens),
/// then binds and starts the servers.
pub async fn start(cfg: &Config, text: &str, file: &str) -> Result<Running, String> {
    let mut sources = Vec::new();
    let mut controls = std::collections::HashMap::new();
    for (i, cam) in cfg.camera.iter().enumerate() {
        let (src, control) = make_camera(cam).map_err(|e| {
            let key = offending_key(cam, &e);
            match camera_key_line(text, i, key) {
                Some(l) => format!("{file}:{l}: camera {:?}: {e}", cam.name),
                None => format!("{file}: camera {:?}: {e}", cam.name),
            }
        })?;
        if let Some(c) = control {
            controls.insert(cam.name.clone(), c);
        }
        sources.push(src);
    }
    let s = &cfg.server;
    let fd = match crate::fdlimit::raise() {
        Ok(l) => Some(l),
        Err(e) => {
            warn!("cannot read the open-file limit: {e}");
            None
        }
    };
    let max_connections = match fd {
        Some(l) => {
            let cap = crate::fdlimit::connection_cap(s.max_connections, l, cfg.camera.len());
            info!(
                soft = l.soft,
                hard = l.hard,
                "open-file limit {}; client connections at most {cap} ({} per address)",
                l.soft,
                s.max_connections_per_address.min(cap)
            );
            if cap < s.max_connections {
                warn!(
                    "max_connections = {} lowered to {cap} to fit under the open-file limit of {} (raise it with `ulimit -n` or LimitNOFILE=)",
                    s.max_connections, l.soft
                );
            }
            cap
        }
        None => s.max_connections,
    };
    let gate = Gate::new(
        ConnectionLimits {
            max_connections,
            max_connections_per_address: s.max_connections_per_address,
        },
        s.login_backoff(),
    );
    let controls = Arc::new(controls);
    let hub = Hub::new();
    for (cam, src) in cfg.camera.iter().zip(sources) {
        hub.add_stream(&cam.name, src, stream_options(cam));
    }
    let users: Vec<User> = cfg
        .users
        .iter()
        .map(|u| User {
            username: u.username.clone(),
            password: u.password.clone(),
        })
        .collect();
    let rtsp = RtspServer::bind(
        hub.clone(),
        ServerConfig {
            listen: s.rtsp_listen,
            rtp_port: s.udp.then_some(s.rtp_port),
            session_timeout: std::time::Duration::from_secs(s.session_timeout_s.max(5)),
            users: users.clone(),
            offer_basic: s.offer_basic_auth,
            policy: s.connection_policy(),
            gate: gate.clone(),
            ..ServerConfig::default()
        },
    )
    .await
    .map_err(|e| format!("cannot listen for RTSP on {}: {e}", s.rtsp_listen))?;
    let http_listener = tokio::net::TcpListener::bind(s.http_listen)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", s.http_listen))?;
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;
    let state = crate::http::AppState {
        hub: hub.clone(),
        rtsp: Some(rtsp.counters().clone()),
        users: users
            .iter()
            .map(|u| (u.username.clone(), u.password.clone()))
            .collect(),
        ffmpeg: "ffmpeg".into(),
        controls: controls.clone(),
        gate: gate.clone(),
        header_timeout: Duration::from_secs_f64(s.header_timeout_s),
        shutdown_grace: Duration::from_secs_f64(s.shutdown_timeout_s / 2.0),
    };
    let tasks = vec![rtsp.clone().spawn()];
    let (stop_http, stop_rx) = watch::channel(false);
    let http_task = tokio::spawn(async move {
        if let Err(e) = crate::http::serve_until(http_listener, state, stop_rx).await {
            tracing::error!("HTTP server stopped: {e}");
        }
    });
    info!(rtsp = %rtsp.local_addr(), http = %http_addr, cameras = cfg.camera.len(), "camgate running");
    Ok(Running {
        hub,
        rtsp,
        http_addr,
        gate,
        controls,
        tasks,
        http_task: Some(http_task),
        stop_http,
        shutdown_timeout: Duration::from_secs_f64(s.shutdown_timeout_s),
    })
}

/// The camera option an error message is about (named in backticks, or whose value it quotes);
/// `source` when none is.
pub fn offending_key<'a>(cam: &'a crate::config::CameraEntry, message: &str) -> &'a str {
    // "unknown field `x`, expected one of `a`, `b`": the first name is the culprit.
    let first_named = message
        .split_once('`')
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name);
    let named = first_named
        .and_then(|n| cam.options.keys().find(|k| k.as_str() == n))
        .or_else(|| {
            cam.options
                .keys()
                .find(|k| message.contains(&format!("`{k}`")))
        });
    let shown = |v: &toml::Value| match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // A value quoted as the messages quote values ("weird") names its key; failing that, a
    // value of three or more characters that the message contains.
    let quoted = || {
        cam.options
            .iter()
            .find(|(_, v)| message.contains(&format!("{:?}", shown(v))))
            .map(|(k, _)| k)
    };
    let contained = || {
        cam.options
            .iter()
            .find(|(_, v)| {
                let s = shown(v);
                s.len() >= 3 && message.contains(&s)
            })
            .map(|(k, _)| k)
    };
    named
        .or_else(quoted)
        .or_else(contained)
        .map_or("source", |k| k.as_str())
}
