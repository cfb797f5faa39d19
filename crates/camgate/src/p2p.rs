//! Dahua P2P for camgate: the `dahua-p2p://SERIAL` camera source (the device's RTSP stream
//! through a P2P session, read by the RTSP source over a loopback tunnel) and the
//! `camgate tunnel dahua` command.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dahua_p2p::client::{ClientConfig, Connector, DeviceAuth, Mode, P2pError, Tunnel};
use dahua_p2p::dhhttp::{CloudError, PROFILE_NAMES, Profile};
use futures_util::future::BoxFuture;
use media::source::{SourceError, SourceErrorKind};
use media::{Source, SourceSession};
use serde::Deserialize;
use tokio::sync::OnceCell;

/// Options of a `dahua-p2p://` camera (besides `source`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pOptions {
    /// Device user name (also from the URL's userinfo).
    pub username: Option<String>,
    /// Device password (also from the URL's userinfo).
    pub password: Option<String>,
    /// Cloud main server `host:port` (default: the profile's public host).
    pub cloud: Option<String>,
    /// Application credential profile: smartpss, dmss, legacy, amcrest.
    pub profile: Option<String>,
    /// auto (direct, relay when the punch fails), direct, relay.
    pub mode: Option<String>,
    /// Device authentication: auto, 0, 1.
    pub auth: Option<String>,
    /// The device's RandSalt, when known.
    pub rand_salt: Option<String>,
    /// The device's RTSP port behind the tunnel.
    pub rtsp_port: Option<u16>,
    /// Seconds the punch may take before the relay is used.
    pub punch_timeout_s: Option<f64>,
    /// Seconds without a PTCP frame from the device before the session counts as dead and
    /// is set up again (default 30).
    pub p2p_idle_timeout_s: Option<f64>,
    /// The device's DHIP port behind the tunnel, for control (default 5000).
    pub dhip_port: Option<u16>,
}

/// The connection settings shared by the source and the tunnel command.
pub struct P2pTarget {
    /// Device serial.
    pub serial: String,
    /// Cloud main server override.
    pub cloud: Option<String>,
    /// Profile name.
    pub profile: Option<String>,
    /// Mode name.
    pub mode: Option<String>,
    /// Auth name.
    pub auth: Option<String>,
    /// Device user and password.
    pub username: String,
    /// Device password.
    pub password: String,
    /// Device salt.
    pub rand_salt: Option<String>,
    /// Punch timeout.
    pub punch_timeout_s: Option<f64>,
    /// PTCP idle timeout.
    pub idle_timeout_s: Option<f64>,
}

impl P2pTarget {
    /// The client configuration, checking every value.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        if self.serial.is_empty() || !self.serial.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "serial {:?} is not a device serial number (letters and digits)",
                self.serial
            ));
        }
        let mut cfg = ClientConfig::new(&self.serial, &self.username, &self.password);
        if let Some(p) = &self.profile {
            cfg.profile = Profile::by_name(p).ok_or_else(|| {
                format!(
                    "unknown profile {p:?} (one of {})",
                    PROFILE_NAMES.join(", ")
                )
            })?;
        }
        if let Some(c) = &self.cloud {
            if !c.contains(':') {
                return Err(format!("cloud {c:?} must be HOST:PORT"));
            }
            cfg.cloud = Some(c.clone());
        }
        if let Some(m) = &self.mode {
            cfg.mode = m.parse::<Mode>()?;
        }
        if let Some(a) = &self.auth {
            cfg.auth = a.parse::<DeviceAuth>()?;
        }
        cfg.rand_salt = self.rand_salt.clone();
        if let Some(s) = self.punch_timeout_s {
            if !(0.1..=120.0).contains(&s) {
                return Err(format!("punch_timeout_s {s} is out of range (0.1 to 120)"));
            }
            cfg.punch_timeout = Duration::from_secs_f64(s);
        }
        if let Some(s) = self.idle_timeout_s {
            if !(1.0..=600.0).contains(&s) {
                return Err(format!("p2p_idle_timeout_s {s} is out of range (1 to 600)"));
            }
            cfg.ptcp.idle_timeout = Duration::from_secs_f64(s);
        }
        Ok(cfg)
    }
}

/// A Dahua camera reached by serial number: its RTSP stream over a P2P session.
pub struct P2pSource(Arc<Inner>);

struct Inner {
    connector: Arc<Connector>,
    tunnel: OnceCell<(SocketAddr, tokio::task::AbortHandle)>,
    path: String,
    rtsp_port: u16,
    description: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some((_, h)) = self.tunnel.get() {
            h.abort();
        }
    }
}

impl P2pSource {
    /// Builds a source from `dahua-p2p://[user:pass@]SERIAL?channel=1&subtype=0`.
    pub fn new(url: &str, opts: P2pOptions) -> Result<Self, String> {
        let u = crate::devurl::DeviceUrl::parse(url)?;
        let serial = u.target.clone();
        let channel = u.channel.unwrap_or(1);
        let subtype = u.subtype.unwrap_or(0);
        let (username, password) = u
            .credentials(opts.username.as_ref(), opts.password.as_ref())
            .map_err(|e| format!("the device {}", e.trim_start_matches("the ")))?;
        let target = P2pTarget {
            serial: serial.clone(),
            cloud: opts.cloud.clone(),
            profile: opts.profile.clone(),
            mode: opts.mode.clone(),
            auth: opts.auth.clone(),
            username,
            password,
            rand_salt: opts.rand_salt.clone(),
            punch_timeout_s: opts.punch_timeout_s,
            idle_timeout_s: opts.p2p_idle_timeout_s,
        };
        let cfg = target.client_config()?;
        Ok(P2pSource(Arc::new(Inner {
            description: format!(
                "dahua-p2p://{serial}?channel={channel}&subtype={subtype} via {}",
                cfg.cloud_host()
            ),
            connector: Connector::new(cfg),
            tunnel: OnceCell::new(),
            path: format!("cam/realmonitor?channel={channel}&subtype={subtype}"),
            rtsp_port: opts.rtsp_port.unwrap_or(554),
        })))
    }
}

impl P2pSource {
    /// The P2P connector (control shares the session with the media).
    pub fn connector(&self) -> Arc<Connector> {
        self.0.connector.clone()
    }
}

impl Inner {
    async fn tunnel_addr(&self) -> Result<SocketAddr, SourceError> {
        let (addr, _) = self
            .tunnel
            .get_or_try_init(|| async {
                let t = Tunnel::bind(
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    self.connector.clone(),
                    self.rtsp_port,
                )
                .await?;
                let addr = t.local_addr()?;
                let task = tokio::spawn(t.run());
                Ok::<_, std::io::Error>((addr, task.abort_handle()))
            })
            .await
            .map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Connect,
                    format!("cannot open the loopback tunnel: {e}"),
                )
            })?;
        Ok(*addr)
    }
}

/// The source error for a failed P2P setup.
fn source_error(serial: &str, e: &P2pError) -> SourceError {
    let kind = match e {
        P2pError::Cloud(
            CloudError::WrongDevicePassword { .. }
            | CloudError::DeviceAuthRequired { .. }
            | CloudError::BadAppCredentials { .. },
        ) => SourceErrorKind::Auth,
        P2pError::Cloud(CloudError::NoAnswer { .. }) => SourceErrorKind::Timeout,
        _ => SourceErrorKind::Connect,
    };
    SourceError::new(kind, format!("dahua-p2p {serial}: {e}"))
}

impl Source for P2pSource {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        let this = self.0.clone();
        Box::pin(async move {
            let cfg = this.connector.config();
            this.connector
                .session()
                .await
                .map_err(|e| source_error(&cfg.serial, &e))?;
            let addr = this.tunnel_addr().await?;
            let opts = rtsp::source::RtspSourceOptions {
                username: Some(cfg.username.clone()),
                password: Some(cfg.password.clone()),
                ..Default::default()
            };
            let url = format!("rtsp://{addr}/{}", this.path);
            let src = rtsp::source::RtspSource::new(&url, opts)?;
            src.connect().await
        })
    }

    fn describe(&self) -> String {
        self.0.description.clone()
    }
}

/// Where the Dahua P2P cloud is and how to use it (command-line flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CloudFlags {
    /// Cloud main server HOST:PORT (default: the profile's public host).
    #[arg(long)]
    pub cloud: Option<String>,
    /// Application profile: smartpss, dmss, legacy, amcrest.
    #[arg(long)]
    pub profile: Option<String>,
    /// auto (direct, relay when the punch fails), direct, relay.
    #[arg(long)]
    pub mode: Option<String>,
}

/// `camgate tunnel dahua`.
#[derive(clap::Args, Debug)]
pub struct TunnelArgs {
    /// The device serial number.
    pub serial: String,
    /// Device user name.
    #[arg(short = 'u', long)]
    pub username: String,
    /// Device password.
    #[arg(short = 'P', long)]
    pub password: String,
    /// Local address to listen on.
    #[arg(long, default_value = "127.0.0.1:1554")]
    pub listen: SocketAddr,
    /// The device TCP port each connection goes to (554 RTSP, 80 web, 37777, 5000 DHIP).
    #[arg(long, default_value_t = 554)]
    pub port: u16,
    /// How to reach the cloud.
    #[command(flatten)]
    pub cloud: CloudFlags,
    /// Device authentication: auto, 0, 1.
    #[arg(long)]
    pub auth: Option<String>,
    /// Set up the P2P session before the first client connects.
    #[arg(long)]
    pub eager: bool,
}

/// Runs the tunnel until Ctrl-C; prints one JSON line when listening.
pub async fn run_tunnel(a: TunnelArgs) -> Result<(), String> {
    let target = P2pTarget {
        serial: a.serial.clone(),
        cloud: a.cloud.cloud.clone(),
        profile: a.cloud.profile.clone(),
        mode: a.cloud.mode.clone(),
        auth: a.auth.clone(),
        username: a.username.clone(),
        password: a.password.clone(),
        rand_salt: None,
        punch_timeout_s: None,
        idle_timeout_s: None,
    };
    let connector = Connector::new(target.client_config()?);
    if a.eager {
        let s = connector
            .session()
            .await
            .map_err(|e| format!("dahua-p2p {}: {e}", a.serial))?;
        eprintln!("P2P session up ({} mode)", s.mode());
    }
    let tunnel = Tunnel::bind(a.listen, connector, a.port)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let addr = tunnel.local_addr().map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({"listen": addr.to_string(), "serial": a.serial, "port": a.port})
    );
    tokio::select! {
        r = tunnel.run() => r.map_err(|e| format!("tunnel on {addr}: {e}")),
        _ = crate::signals::stop() => Ok(()),
    }
}
