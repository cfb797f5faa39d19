//! A simulated RTSP camera on loopback: a `TestSource` behind camgate's own RTSP server, with
//! the faults a real camera shows (drops the connection, stops sending video but keeps audio,
//! refuses every credential).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use media::hub::{Hub, StreamOptions};
use rtsp::server::{RtspServer, ServerConfig, User};
use serde::Serialize;

use crate::camera::{Faults, TestSource, TestSourceConfig};

/// How to run a simulated RTSP camera.
#[derive(Clone, Debug)]
pub struct RtspCameraOptions {
    /// What the camera streams.
    pub source: TestSourceConfig,
    /// The stream path (`rtsp://HOST:PORT/<path>`).
    pub path: String,
    /// Listen address (port 0 = any).
    pub listen: SocketAddr,
    /// Credentials the camera checks; `None` = open.
    pub credentials: Option<(String, String)>,
    /// Refuse every credential (a camera whose password was changed).
    pub refuse_auth: bool,
    /// Drop every connection this often.
    pub drop_every: Option<Duration>,
    /// Stop sending video (keep audio) this long after start.
    pub video_stops_after: Option<Duration>,
}

impl Default for RtspCameraOptions {
    fn default() -> Self {
        RtspCameraOptions {
            source: TestSourceConfig::default(),
            path: "stream".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: None,
            refuse_auth: false,
            drop_every: None,
            video_stops_after: None,
        }
    }
}

/// What a client needs to reach the camera (printed as the `camgate sim` JSON line).
#[derive(Clone, Debug, Serialize)]
pub struct RtspCameraInfo {
    /// The stream URL, without credentials.
    pub url: String,
    /// Username the camera checks, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password the camera checks, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A running simulated camera; it stops when dropped.
pub struct RtspCamera {
    server: Arc<RtspServer>,
    hub: Arc<Hub>,
    faults: Arc<Faults>,
    info: RtspCameraInfo,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RtspCamera {
    /// Starts the camera on its listen address.
    pub async fn start(opts: RtspCameraOptions) -> std::io::Result<RtspCamera> {
        let hub = Hub::new();
        let source = TestSource::new(opts.source.clone());
        let faults = source.faults().clone();
        hub.add_stream(
            &opts.path,
            Arc::new(source),
            StreamOptions {
                idle_timeout: Duration::from_secs(5),
                ..StreamOptions::default()
            },
        );
        let users = match (&opts.credentials, opts.refuse_auth) {
            (Some((u, _)), true) => vec![User {
                username: u.clone(),
                password: format!("{:032x}", rand_u128()),
            }],
            (Some((u, p)), false) => vec![User {
                username: u.clone(),
                password: p.clone(),
            }],
            (None, true) => vec![User {
                username: "admin".into(),
                password: format!("{:032x}", rand_u128()),
            }],
            (None, false) => vec![],
        };
        let server = RtspServer::bind(
            hub.clone(),
            ServerConfig {
                listen: opts.listen,
                rtp_port: Some(0),
                users,
                offer_basic: false,
                ..ServerConfig::default()
            },
        )
        .await?;
        let addr = server.local_addr();
        let mut tasks = vec![server.clone().spawn()];
        if let Some(every) = opts.drop_every {
            let (s, f) = (server.clone(), faults.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    f.drop_sessions();
                    s.disconnect_all();
                }
            }));
        }
        if let Some(after) = opts.video_stops_after {
            let f = faults.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                f.pause_video(true);
            }));
        }
        let (username, password) = match &opts.credentials {
            Some((u, p)) => (Some(u.clone()), Some(p.clone())),
            None => (None, None),
        };
        Ok(RtspCamera {
            info: RtspCameraInfo {
                url: format!("rtsp://{addr}/{}", opts.path),
                username,
                password,
            },
            server,
            hub,
            faults,
            tasks,
        })
    }

    /// The URL and credentials.
    pub fn info(&self) -> &RtspCameraInfo {
        &self.info
    }

    /// The fault knobs of the camera's media.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Drops every client connection now, as a camera that reboots or loses its network.
    pub fn drop_connections(&self) {
        self.faults.drop_sessions();
        self.server.disconnect_all();
    }

    /// The camera's RTSP server (for its counters).
    pub fn server(&self) -> &Arc<RtspServer> {
        &self.server
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.server.disconnect_all();
        self.hub.close();
    }
}

fn rand_u128() -> u128 {
    rand::random()
}
