//! The P2P client: the cloud handshake (lookups, p2p-channel, relay agent, relay-channel),
//! the inverted-STUN punch, the PTCP sessions with the agent and the device, and a driver
//! that serves realms — TCP connections to device ports — over the established session, in
//! direct mode, in relay mode, or direct with fallback to relay.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dahua_p2p::client::P2pError> {
//! use dahua_p2p::client::{ClientConfig, connect};
//! let cfg = ClientConfig::new("SERIAL", "admin", "password");
//! let session = connect(&cfg).await?;
//! let realm = session.open(554).await?; // a TCP connection to the device's RTSP port
//! # Ok(()) }
//! ```

mod cloud;
mod driver;
mod handshake;
mod punch;
mod tunnel;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use thiserror::Error;

use crate::dhhttp::{CloudError, Profile};

pub use driver::{RealmIo, RealmWriter, SessionHandle};
pub use handshake::connect;
pub use tunnel::{Connector, OpenError, Tunnel};

/// Which data path to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Punch a direct path; use the relay when the punch fails.
    #[default]
    Auto,
    /// Direct (hole-punched) only.
    Direct,
    /// Through the relay agent only.
    Relay,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "direct" | "p2p" => Ok(Mode::Direct),
            "relay" => Ok(Mode::Relay),
            _ => Err(format!("unknown P2P mode {s:?} (auto, direct, relay)")),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Direct => "direct",
            Mode::Relay => "relay",
        })
    }
}

/// How the client proves the device credentials to the cloud.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceAuth {
    /// Type 0 first; type 1 when the cloud says the device needs it (`DevPwd_InvalidSalt`).
    #[default]
    Auto,
    /// Type 0 (no device credentials in the cloud exchange; older firmware).
    Type0,
    /// Type 1 (AuthBlock with the device's salt; firmware from about 2023).
    Type1,
}

impl std::str::FromStr for DeviceAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceAuth::Auto),
            "0" | "type0" => Ok(DeviceAuth::Type0),
            "1" | "type1" => Ok(DeviceAuth::Type1),
            _ => Err(format!("unknown device auth {s:?} (auto, 0, 1)")),
        }
    }
}

/// What the client needs to reach one device.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The device's serial number.
    pub serial: String,
    /// Device user name (as for its RTSP/web login).
    pub username: String,
    /// Device password.
    pub password: String,
    /// Application credential profile (SmartPSS, DMSS, legacy, Amcrest).
    pub profile: Profile,
    /// Cloud main server `host:port`; `None` = the profile's public host.
    pub cloud: Option<String>,
    /// Direct, relay, or direct with fallback.
    pub mode: Mode,
    /// Device authentication type.
    pub auth: DeviceAuth,
    /// The device's RandSalt, when known (otherwise from `/info/device`, else the default).
    pub rand_salt: Option<String>,
    /// Local address the UDP sockets bind to.
    pub bind: IpAddr,
    /// How long the punch may take before falling back to the relay.
    pub punch_timeout: Duration,
    /// How long each PTCP session establishment (SYN, sign, device auth) may take.
    pub ptcp_timeout: Duration,
    /// PTCP settings for the data path.
    pub ptcp: crate::ptcp::Config,
    /// Seconds added to the local clock when signing requests, until the cloud's `Date`
    /// corrects it (the first answer does).
    pub clock_offset: i64,
}

impl ClientConfig {
    /// Defaults: SmartPSS profile, automatic mode and auth.
    pub fn new(serial: &str, username: &str, password: &str) -> Self {
        ClientConfig {
            serial: serial.into(),
            username: username.into(),
            password: password.into(),
            profile: Profile::smartpss(),
            cloud: None,
            mode: Mode::Auto,
            auth: DeviceAuth::Auto,
            rand_salt: None,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            punch_timeout: Duration::from_secs(5),
            ptcp_timeout: Duration::from_secs(10),
            ptcp: crate::ptcp::Config::client(),
            clock_offset: 0,
        }
    }

    /// The cloud main server this config talks to.
    pub fn cloud_host(&self) -> &str {
        self.cloud.as_deref().unwrap_or(self.profile.default_cloud)
    }
}

/// Why a P2P session could not be set up.
#[derive(Debug, Error)]
pub enum P2pError {
    /// The cloud refused or did not answer (unknown serial, device offline, bad app
    /// credentials, clock skew, wrong device password ...).
    #[error("{0}")]
    Cloud(#[from] CloudError),
    /// The cloud host name did not resolve.
    #[error("cannot resolve the cloud host {host}: {reason}")]
    Resolve { host: String, reason: String },
    /// A cloud answer lacked what the handshake needs.
    #[error("the cloud's answer to {path} from {peer} is unusable: {reason}")]
    BadAnswer {
        path: String,
        peer: std::net::SocketAddr,
        reason: String,
    },
    /// Direct mode was asked for and the punch failed.
    #[error(
        "device {serial}: the hole punch to {targets} failed (no STUN answer in {secs:.1} s); try the relay (mode auto or relay)"
    )]
    PunchFailed {
        serial: String,
        targets: String,
        secs: f64,
    },
    /// The punch failed and the relay refused too.
    #[error("device {serial}: the hole punch failed and the relay refused: {relay}")]
    PunchFailedRelayRefused { serial: String, relay: String },
    /// The relay could not be used (relay mode).
    #[error("device {serial}: the relay refused: {reason}")]
    RelayRefused { serial: String, reason: String },
    /// A PTCP peer did not complete its part (SYN, sign, device auth).
    #[error("device {serial}: PTCP with the {peer_kind} at {peer} failed: {reason}")]
    Ptcp {
        serial: String,
        peer_kind: &'static str,
        peer: std::net::SocketAddr,
        reason: String,
    },
    /// A local socket error.
    #[error("local socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a realm (one TCP connection to a device port) could not be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TunnelError {
    /// The P2P session ended.
    #[error("the P2P session is closed: {0}")]
    SessionClosed(String),
    /// The device refused the connection to that port.
    #[error("the device refused a connection to its port {port}")]
    Refused { port: u16 },
    /// The device did not answer the BIND.
    #[error("the device did not answer a connection to its port {port} in time")]
    BindTimeout { port: u16 },
    /// The realm could not be opened.
    #[error("cannot open a realm: {0}")]
    Open(String),
}
