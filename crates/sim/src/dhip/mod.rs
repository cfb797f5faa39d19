//! A simulated Dahua device speaking DHIP (binary RPC2 over TCP), HTTP RPC2 with
//! RPC_Loadfile media, and DHDiscover over UDP, following §8 of `protocols/dahua-dhip.md`:
//! real two-stage login with the Default hash, lockout, keep-alive expiry, state-backed
//! methods (config, users, PTZ, file search, upgrader, events) with the firmware quirks as
//! policies, and a request log for assertions.
//!
//! Everything binds 127.0.0.1; discovery answers unicast probes on a loopback UDP socket and
//! never joins a multicast group. All tasks stop when the [`DhipSim`] is dropped.
//!
//! Inside: `options` (every knob), `server` (DHIP TCP), `http` (RPC2, RPC_Loadfile, CGI),
//! `discovery` (UDP), `media` (DHAV and JPEG), `net` (connections, power state and reply
//! framing), `digest` (HTTP Digest nonces), `device` (one request in, one reply out; routing, objects,
//! subscriptions, overrides), `sessions` (login and session lifecycle), `state` (identity and
//! config tables), `users`, `ptz`, `files` (mediaFileFind), `upgrader`, `clock` (injectable
//! time), `rpc` (outcomes and error codes) and `record` (the request log).

pub mod clock;
pub mod device;
pub mod digest;
pub mod discovery;
pub mod files;
mod http;
pub mod media;
mod net;
pub mod options;
pub mod ptz;
pub mod record;
pub mod rpc;
mod server;
pub mod sessions;
pub mod state;
pub mod upgrader;
pub mod users;

pub use device::{DeviceSnapshot, EVENT_SID};
pub use dhip::auth::Encryption;
pub use dhip::envelope::JsonStyle;
pub use dhip::frame::FragmentModel;
pub use files::FileFixture;
pub use options::{
    DhipSimOptions, FragmentReplies, HttpSession, TimeStyle, UnknownMethod, VendorKey,
};
pub use ptz::{PtzPolicy, PtzSnapshot, StatusKey};
pub use record::RequestRecord;
pub use sessions::{Session, Transport};
pub use state::DeviceIdentity;
pub use upgrader::{UpgradeState, UpgraderSnapshot};
pub use users::User;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tracing::info;

use clock::SimClock;
use device::Device;
use media::Media;
use net::Shared;

/// How several injected events are framed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventFraming {
    /// One notification whose `eventList` holds them all.
    #[default]
    OneFrame,
    /// One notification per event, all written to the socket at once.
    BackToBack,
}

/// What a client needs (the JSON line of `camgate sim dhip`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DhipSimInfo {
    /// Always `127.0.0.1`.
    pub host: String,
    /// DHIP TCP port.
    pub port: u16,
    /// HTTP port (0: none).
    pub http_port: u16,
    /// UDP discovery port (0: none).
    pub discovery_port: u16,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A running simulated DHIP device; everything stops when it is dropped.
pub struct DhipSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    discovery_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn bind_error(what: &str, port: u16, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("dhip sim: cannot bind the {what} on 127.0.0.1:{port}: {e}"),
    )
}

impl DhipSim {
    /// Starts the DHIP server, and the HTTP server and discovery responder unless disabled,
    /// on 127.0.0.1.
    pub async fn start(opts: DhipSimOptions) -> io::Result<DhipSim> {
        if opts.identity.channels == 0 || opts.identity.channels > 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dhip sim: {} channels (1..=64)", opts.identity.channels),
            ));
        }
        let (w, h, fps) = opts.video;
        if w == 0 || h == 0 || w % 2 != 0 || h % 2 != 0 || w > 4096 || h > 4096 || fps == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dhip sim: video {w}x{h} at {fps} fps (even sizes up to 4096)"),
            ));
        }
        let opts = Arc::new(opts);
        let clock = SimClock::new(opts.real_time, opts.start_utc);
        let media = Arc::new(Media::new(
            &opts.identity.serial,
            opts.video,
            opts.audio,
            opts.aux,
            opts.file_clip_secs,
            clock.clone(),
        ));
        let device = Device::new(opts.clone(), clock.clone(), media.clone());
        let shared = Arc::new(Shared::new(device, opts.clone(), clock, media));
        let listener = TcpListener::bind(loopback(opts.port))
            .await
            .map_err(|e| bind_error("DHIP server", opts.port, e))?;
        let addr = listener.local_addr()?;
        let mut tasks = vec![tokio::spawn(server::serve(listener, shared.clone()))];
        let mut http_addr = None;
        if let Some(p) = opts.http_port {
            let l = TcpListener::bind(loopback(p))
                .await
                .map_err(|e| bind_error("HTTP server", p, e))?;
            http_addr = Some(l.local_addr()?);
            tasks.push(tokio::spawn(http::serve(l, shared.clone())));
        }
        let mut discovery_addr = None;
        if let Some(p) = opts.discovery_port {
            let s = UdpSocket::bind(loopback(p))
                .await
                .map_err(|e| bind_error("discovery socket", p, e))?;
            discovery_addr = Some(s.local_addr()?);
            let http_port = http_addr.map_or(0, |a| a.port());
            tasks.push(tokio::spawn(discovery::serve(
                s,
                shared.clone(),
                addr.port(),
                http_port,
            )));
        }
        if let Some((code, period)) = opts.periodic_event.clone() {
            let shared = shared.clone();
            let period = period.max(Duration::from_millis(10));
            tasks.push(tokio::spawn(async move {
                let mut t = tokio::time::interval(period);
                t.tick().await;
                loop {
                    t.tick().await;
                    let pushes = shared.device().event(&code, "Pulse", Value::Null);
                    shared.deliver(pushes);
                }
            }));
        }
        info!(%addr, http = ?http_addr, discovery = ?discovery_addr, "dhip sim: started");
        Ok(DhipSim {
            shared,
            addr,
            http_addr,
            discovery_addr,
            tasks,
        })
    }

    /// The DHIP TCP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP address, if the HTTP server runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The UDP discovery address, if the responder runs.
    pub fn discovery_addr(&self) -> Option<SocketAddr> {
        self.discovery_addr
    }

    /// The administrator's name.
    pub fn username(&self) -> &str {
        &self.shared.opts.username
    }

    /// The administrator's password (as configured at start).
    pub fn password(&self) -> &str {
        &self.shared.opts.password
    }

    /// The realm of login challenges and HTTP Digest.
    pub fn realm(&self) -> String {
        self.shared.device().realm().to_owned()
    }

    /// The options it runs with.
    pub fn options(&self) -> &DhipSimOptions {
        &self.shared.opts
    }

    /// What a client needs to connect.
    pub fn info(&self) -> DhipSimInfo {
        DhipSimInfo {
            host: "127.0.0.1".into(),
            port: self.addr.port(),
            http_port: self.http_addr.map_or(0, |a| a.port()),
            discovery_port: self.discovery_addr.map_or(0, |a| a.port()),
            username: self.username().to_owned(),
            password: self.password().to_owned(),
        }
    }

    /// Every request received so far, in order.
    pub fn observed(&self) -> Vec<RequestRecord> {
        self.shared.device().log().to_vec()
    }

    /// A copy of the device state (PTZ, users, config, upgrader, sessions…).
    pub fn state(&self) -> DeviceSnapshot {
        self.shared.device().snapshot()
    }

    /// Moves the simulator clock forward (keep-alive expiry, lockout, PTZ motion).
    pub fn advance_clock(&self, d: Duration) {
        self.shared.clock.advance(d);
    }

    /// Pushes one event (`Action` `Start`/`Stop`/`Pulse`/`State`) to the subscribers; returns
    /// how many connections it went to.
    pub fn push_event(&self, code: &str, action: &str, data: Value) -> usize {
        self.push_events(
            &[(code.to_owned(), action.to_owned(), data)],
            EventFraming::OneFrame,
        )
    }

    /// Pushes several events at once, in one notification or back to back in one write;
    /// returns how many notifications went out.
    pub fn push_events(&self, events: &[(String, String, Value)], framing: EventFraming) -> usize {
        let pushes = match framing {
            EventFraming::OneFrame => self.shared.device().events_notify(events),
            EventFraming::BackToBack => {
                let mut d = self.shared.device();
                events
                    .iter()
                    .flat_map(|e| d.events_notify(std::slice::from_ref(e)))
                    .collect()
            }
        };
        let n = pushes.len();
        self.shared.deliver(pushes);
        n
    }

    /// Makes every call of `method` fail with `code` (and `message`, if any).
    pub fn set_error_override(&self, method: &str, code: i64, message: Option<&str>) {
        self.shared
            .device()
            .set_override(method, Some((code, message.map(str::to_owned))));
    }

    /// Removes an injected error.
    pub fn clear_error_override(&self, method: &str) {
        self.shared.device().set_override(method, None);
    }

    /// Drops every open connection (sessions of DHIP connections end with them).
    pub fn kill_connections(&self) {
        self.shared.kill_connections();
    }

    /// Reboots the device: connections drop, sessions end, it answers again after the
    /// reboot delay.
    pub fn reboot(&self) {
        self.shared.power_cycle(Some(self.shared.opts.reboot_delay));
    }

    /// Restarts the device at once (also after a `magicBox.shutdown`): connections drop,
    /// sessions end, configuration and accounts stay.
    pub fn restart(&self) {
        self.shared.power_cycle(Some(Duration::ZERO));
        self.shared.power_on();
    }

    /// Whether the device is answering (not rebooting or shut down).
    pub fn is_up(&self) -> bool {
        self.shared.is_up()
    }
}

impl Drop for DhipSim {
    fn drop(&mut self) {
        self.shared.kill_connections();
        for t in &self.tasks {
            t.abort();
        }
    }
}
