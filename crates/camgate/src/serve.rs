//! `camgate serve`: builds the Hub from the configuration and runs the RTSP and HTTP servers.

use std::sync::Arc;

use media::hub::Hub;
use rtsp::server::{RtspServer, ServerConfig, User};
use tracing::info;

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
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.hub.close();
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
    let s = &cfg.server;
    let rtsp = RtspServer::bind(
        hub.clone(),
        ServerConfig {
            listen: s.rtsp_listen,
            rtp_port: s.udp.then_some(s.rtp_port),
            session_timeout: std::time::Duration::from_secs(s.session_timeout_s.max(5)),
            users: users.clone(),
            offer_basic: s.offer_basic_auth,
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
        controls: Arc::new(controls),
    };
    let mut tasks = vec![rtsp.clone().spawn()];
    tasks.push(tokio::spawn(async move {
        if let Err(e) = crate::http::serve(http_listener, state).await {
            tracing::error!("HTTP server stopped: {e}");
        }
    }));
    info!(rtsp = %rtsp.local_addr(), http = %http_addr, cameras = cfg.camera.len(), "camgate running");
    Ok(Running {
        hub,
        rtsp,
        http_addr,
        tasks,
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
