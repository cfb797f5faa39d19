//! Device control behind the REST API: a per-protocol trait object per camera (DHIP cameras,
//! and Dahua P2P cameras through a tunnel to their DHIP port), with one lazily connected
//! client each that logs in again by itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dhip::client::{Client, ClientConfig, EventItem};
use dhip::methods::PtzPolicy;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast};

/// Why a control request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// The request itself is wrong (bad PTZ action, bad JSON...).
    BadRequest(String),
    /// The device could not be reached or logged in.
    Unavailable(String),
    /// The device refused or failed the call.
    Device(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::BadRequest(m)
            | ControlError::Unavailable(m)
            | ControlError::Device(m) => f.write_str(m),
        }
    }
}

impl From<dhip::client::Error> for ControlError {
    fn from(e: dhip::client::Error) -> Self {
        use dhip::client::Error as E;
        match e {
            E::Refused(m) => ControlError::BadRequest(m),
            e @ (E::Io { .. } | E::Closed { .. } | E::Timeout { .. } | E::Login { .. }) => {
                ControlError::Unavailable(e.to_string())
            }
            e => ControlError::Device(e.to_string()),
        }
    }
}

/// A PTZ request of the REST API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PtzRequest {
    /// move, zoom, focus, iris, preset, presets, tour, tours, absolute, home, status.
    pub action: String,
    /// Channel (0-based).
    #[serde(default)]
    pub channel: u32,
    /// For move: Up, Down, Left, Right, LeftUp, LeftDown, RightUp, RightDown.
    pub direction: Option<String>,
    /// For zoom (in/out), focus (near/far), iris (open/close); for preset (goto/set/clear)
    /// and tour (start/stop).
    pub op: Option<String>,
    /// Speed 1–8 (moves).
    pub speed: Option<i64>,
    /// Move duration in milliseconds (default 500).
    pub ms: Option<u64>,
    /// Preset or tour index.
    pub index: Option<i64>,
    /// Absolute pan in degrees.
    pub pan: Option<f64>,
    /// Absolute tilt in degrees.
    pub tilt: Option<f64>,
    /// Absolute zoom.
    pub zoom: Option<f64>,
}

/// A live event feed (JSON objects, one per event or state change). Every subscriber of a
/// camera shares one device connection; a subscriber that falls behind misses events
/// (`Lagged`).
pub type EventFeed = broadcast::Receiver<Value>;

/// Events buffered per subscriber before the slowest one starts missing them.
const EVENT_BUFFER: usize = 256;

/// Control of one camera.
pub trait CameraControl: Send + Sync {
    /// Device identity and versions.
    fn info(&self) -> BoxFuture<'_, Result<Value, ControlError>>;
    /// One configuration section.
    fn get_config<'a>(&'a self, section: &'a str) -> BoxFuture<'a, Result<Value, ControlError>>;
    /// Writes a whole configuration section.
    fn set_config<'a>(
        &'a self,
        section: &'a str,
        table: Value,
    ) -> BoxFuture<'a, Result<(), ControlError>>;
    /// A PTZ request; returns what the action reports.
    fn ptz(&self, req: PtzRequest) -> BoxFuture<'_, Result<Value, ControlError>>;
    /// Reboots the device.
    fn reboot(&self) -> BoxFuture<'_, Result<(), ControlError>>;
    /// Starts an event feed (ends when the receiver is dropped).
    fn events(&self) -> BoxFuture<'_, Result<EventFeed, ControlError>>;
    /// Ends the device sessions this control holds (a logout), at shutdown.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Where a DHIP control connects.
pub enum DhipEndpoint {
    /// Directly, over TCP.
    Direct {
        /// Host.
        host: String,
        /// DHIP port.
        port: u16,
    },
    /// Through a Dahua P2P session, to the device's DHIP port.
    P2p {
        /// The P2P connector (shared with the camera's media source).
        connector: Arc<dahua_p2p::client::Connector>,
        /// DHIP port on the device.
        port: u16,
    },
}

/// DHIP control of one camera.
pub struct DhipControl {
    endpoint: DhipEndpoint,
    cfg: ClientConfig,
    policy: PtzPolicy,
    client: Mutex<Option<Client>>,
    tunnel: Mutex<Option<(SocketAddr, tokio::task::AbortHandle)>>,
    name: String,
    /// The shared event feed and the task that fills it from the device.
    events: std::sync::Mutex<Option<(broadcast::Sender<Value>, tokio::task::JoinHandle<()>)>>,
}

impl Drop for DhipControl {
    fn drop(&mut self) {
        if let Ok(t) = self.tunnel.try_lock()
            && let Some((_, h)) = t.as_ref()
        {
            h.abort();
        }
    }
}

impl DhipControl {
    /// Control of camera `name` at `endpoint`.
    pub fn new(name: &str, endpoint: DhipEndpoint, cfg: ClientConfig, policy: PtzPolicy) -> Self {
        DhipControl {
            endpoint,
            cfg,
            policy,
            client: Mutex::new(None),
            tunnel: Mutex::new(None),
            name: name.to_string(),
            events: std::sync::Mutex::new(None),
        }
    }

    async fn address(&self) -> Result<(String, u16), ControlError> {
        match &self.endpoint {
            DhipEndpoint::Direct { host, port } => Ok((host.clone(), *port)),
            DhipEndpoint::P2p { connector, port } => {
                let mut t = self.tunnel.lock().await;
                if let Some((addr, _)) = t.as_ref() {
                    return Ok(("127.0.0.1".into(), addr.port()));
                }
                let tunnel = dahua_p2p::client::Tunnel::bind(
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    connector.clone(),
                    *port,
                )
                .await
                .map_err(|e| ControlError::Unavailable(format!("cannot open a tunnel: {e}")))?;
                let addr = tunnel
                    .local_addr()
                    .map_err(|e| ControlError::Unavailable(e.to_string()))?;
                *t = Some((addr, tokio::spawn(tunnel.run()).abort_handle()));
                Ok(("127.0.0.1".into(), addr.port()))
            }
        }
    }

    async fn client(&self) -> Result<Client, ControlError> {
        let mut g = self.client.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let (host, port) = self.address().await?;
        let c = Client::connect(&host, port, self.cfg.clone())
            .await
            .map_err(|e| ControlError::Unavailable(format!("camera {}: {e}", self.name)))?;
        *g = Some(c.clone());
        Ok(c)
    }

    async fn ptz_impl(&self, r: PtzRequest) -> Result<Value, ControlError> {
        let c = self.client().await?;
        let p = &self.policy;
        let ch = r.channel;
        let need = |v: Option<String>, what: &str| {
            v.ok_or_else(|| ControlError::BadRequest(format!("action {} needs `{what}`", r.action)))
        };
        let speed = r.speed.unwrap_or(4).clamp(1, 8);
        let dur = Duration::from_millis(r.ms.unwrap_or(500).min(30_000));
        match r.action.as_str() {
            "move" => {
                let d = need(r.direction.clone(), "direction")?;
                c.ptz_move(p, ch, &d, speed, dur).await?;
                Ok(json!({"ok": true}))
            }
            kind @ ("zoom" | "focus" | "iris") => {
                let way = need(r.op.clone(), "op")?;
                let code =
                    crate::dhipcmd::lens_code(kind, &way).map_err(ControlError::BadRequest)?;
                c.ptz_move(p, ch, code, speed, dur).await?;
                Ok(json!({"ok": true}))
            }
            "preset" => {
                let op = need(r.op.clone(), "op")?;
                let i = r.index.ok_or_else(|| {
                    ControlError::BadRequest("action preset needs `index`".into())
                })?;
                c.ptz_preset(p, ch, &op, i).await?;
                Ok(json!({"ok": true}))
            }
            "presets" => Ok(Value::Array(c.ptz_presets(p, ch).await?)),
            "tour" => {
                let op = need(r.op.clone(), "op")?;
                let start = match op.as_str() {
                    "start" => true,
                    "stop" => false,
                    o => {
                        return Err(ControlError::BadRequest(format!(
                            "tour op {o:?}: start or stop"
                        )));
                    }
                };
                c.ptz_tour(p, ch, start, r.index.unwrap_or(0)).await?;
                Ok(json!({"ok": true}))
            }
            "tours" => Ok(Value::Array(c.ptz_tours(p, ch).await?)),
            "absolute" => {
                let (Some(pan), Some(tilt)) = (r.pan, r.tilt) else {
                    return Err(ControlError::BadRequest(
                        "action absolute needs `pan` and `tilt` (degrees)".into(),
                    ));
                };
                c.ptz_absolute(p, ch, pan, tilt, r.zoom.unwrap_or(0.0))
                    .await?;
                Ok(json!({"ok": true}))
            }
            "home" => {
                c.ptz_home(p, ch).await?;
                Ok(json!({"ok": true}))
            }
            "status" => Ok(serde_json::to_value(c.ptz_status(p, ch).await?).unwrap_or(Value::Null)),
            other => Err(ControlError::BadRequest(format!(
                "unknown PTZ action {other:?} (move, zoom, focus, iris, preset, presets, tour, tours, absolute, home, status)"
            ))),
        }
    }
}

impl CameraControl for DhipControl {
    fn info(&self) -> BoxFuture<'_, Result<Value, ControlError>> {
        Box::pin(async move { Ok(self.client().await?.info().await?) })
    }

    fn get_config<'a>(&'a self, section: &'a str) -> BoxFuture<'a, Result<Value, ControlError>> {
        Box::pin(async move { Ok(self.client().await?.get_config(section).await?) })
    }

    fn set_config<'a>(
        &'a self,
        section: &'a str,
        table: Value,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move { Ok(self.client().await?.set_config(section, &table).await?) })
    }

    fn ptz(&self, req: PtzRequest) -> BoxFuture<'_, Result<Value, ControlError>> {
        Box::pin(self.ptz_impl(req))
    }

    fn reboot(&self) -> BoxFuture<'_, Result<(), ControlError>> {
        Box::pin(async move {
            let c = self.client().await?;
            c.reboot().await?;
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some((_, task)) = self.events.lock().unwrap_or_else(|e| e.into_inner()).take() {
                task.abort();
            }
            let client = self.client.lock().await.take();
            if let Some(c) = client {
                let _ = c.logout().await;
            }
        })
    }

    fn events(&self) -> BoxFuture<'_, Result<EventFeed, ControlError>> {
        Box::pin(async move {
            {
                let g = self.events.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((tx, task)) = g.as_ref()
                    && !task.is_finished()
                {
                    return Ok(tx.subscribe());
                }
            }
            let c = self.client().await?;
            let mut g = self.events.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((tx, task)) = g.as_ref()
                && !task.is_finished()
            {
                return Ok(tx.subscribe());
            }
            let (tx, rx) = broadcast::channel(EVENT_BUFFER);
            let feed = tx.clone();
            let mut stream = c.events(vec!["All".into()]);
            let task = tokio::spawn(async move {
                while let Some(item) = stream.next().await {
                    let v = match item {
                        EventItem::Event(e) => json!({"type": "event", "event": e}),
                        EventItem::Attached { sid } => json!({"type": "attached", "sid": sid}),
                        EventItem::Disconnected { reason, retry_in } => {
                            json!({"type": "disconnected",
                            "reason": reason, "retry_in_s": retry_in.as_secs_f64()})
                        }
                        EventItem::Failed(e) => json!({"type": "failed", "error": e.to_string()}),
                    };
                    let last = v["type"] == "failed";
                    // No subscriber left: stop, and let the next one start a new feed.
                    if feed.send(v).is_err() || last {
                        break;
                    }
                }
                stream.close().await;
            });
            *g = Some((tx, task));
            Ok(rx)
        })
    }
}
