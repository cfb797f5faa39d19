//! A simulated Dahua P2P world on loopback: the Easy4IPCloud main server, the P2P server
//! "US", the relay dispatcher, a relay agent and one or more devices, each device with a real
//! RTSP camera behind realm port 554 (Dahua's `cam/realmonitor?channel=1&subtype=0` URL) and
//! optionally other TCP services behind other realm ports. It follows §8 of
//! `protocols/dahua-p2p.md`: real WSSE and device-auth checks, the inverted-STUN punch, PTCP
//! with the agent-issued sign, relay through the agent, and fault knobs.
//!
//! Everything binds 127.0.0.1 and every address the cloud hands out is a loopback address.
//! All tasks stop when the [`DahuaP2pSim`] is dropped.
//!
//! Inside: `endpoint` (the DH-HTTP front all servers share: parsing, WSSE, reply faults),
//! `cloud` (main), `us`, `relay` (dispatcher), `agent`, `device`, `realm_bridge` (realm ↔
//! TCP), `rtsp_url` (Dahua URLs in front of camgate's RTSP server), `web` (the port-80
//! responder), `faults` (impairment and reply faults) and `state` (shared state and the
//! [`Observations`] tests assert).
//!
//! WSSE is checked by every server (main, US, dispatcher, agent) against the configured
//! profile pair; only main's `/online/stun` is open.
//!
//! Behaviour choices where the protocol notes say \[U\]:
//! * main never answers an accepted relay-channel; the agent sends `200 Server Nat Info!`
//!   (no body) echoing the relay-channel's `CSeq`/`x-pcs-request-id`. Refusals (400 bad body,
//!   403 device auth, 404 offline/unknown device or no `/relay/start` from that socket) come
//!   from main.
//! * `relay_refused`: the dispatcher answers `/relay/agent` with `503 Service Unavailable`
//!   (`<Error>NoAgentAvailable</Error>`) rather than staying silent, so clients fail fast.
//! * The agent terminates PTCP and forwards realms over its own PTCP leg to the device (see
//!   the agent module); the device accepts that leg without a sign.
//! * A device learns which sign to require from a client by pairing: a relay-channel from a
//!   client IP pairs with the oldest recent unpaired p2p-channel from that IP; the device
//!   ignores PTCP from a client until that sign is known (the client's SYN retransmission
//!   gets through once it is).
//! * A device's Binding Success Response carries the requester's address (as a STUN server
//!   would) in attribute 0x0004.

mod agent;
mod cloud;
mod device;
mod endpoint;
mod faults;
mod realm_bridge;
mod relay;
mod rtsp_url;
mod state;
mod us;
mod web;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dahua_p2p::devauth::DeviceCredentials;
use dahua_p2p::dhhttp::Profile;
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::unbounded_channel;
use tokio::task::JoinHandle;
use tracing::info;

use crate::camera::TestSourceConfig;
use crate::rtsp_camera::{RtspCamera, RtspCameraOptions};

pub use state::{
    Counters, Observations, P2pChannelRecord, PtcpOwner, PtcpRecord, RealmRecord, RealmVia,
    RelaySessionRecord, RequestRecord, Server, StunCounters,
};
pub use web::{WebResponder, page as web_page};

use agent::{AgentConfig, AgentTask};
use cloud::{Cloud, CloudConfig};
use device::{DeviceConfig, DeviceTask};
use endpoint::{HttpFront, Replier, serve};
use faults::ReplyFaults;
use realm_bridge::Service;
use relay::Dispatcher;
use state::{Addrs, DeviceEntry, Shared};
use us::P2pServer;

/// The RTSP path of every simulated device's camera (query: `channel=1&subtype=0|1`).
pub const RTSP_PATH: &str = "cam/realmonitor?channel=1&subtype=0";

/// The salt simulated devices use unless told otherwise: not dh-p2p's constant, so clients
/// must read it from `/info/device/{SN}` as 6.7+ firmware requires.
pub const SIM_RAND_SALT: &str = "b5f1e0c7d3a94e2f8c6a1d0e9f7b3a52";

/// One simulated device.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// Serial number (what clients look up).
    pub serial: String,
    /// Device user name (RTSP login and type-1 device auth).
    pub username: String,
    /// Device password.
    pub password: String,
    /// 0: p2p-channel needs no device auth; 1 (or anything else): type-1 auth required.
    pub device_type: u8,
    /// The device's `RandSalt` (served by `/info/device`, checked in type-1 auth).
    pub rand_salt: String,
    /// Registered with the cloud; offline devices get 404s and ignore every datagram.
    pub online: bool,
    /// The device ignores STUN and direct PTCP (and does not punch): clients must relay.
    pub punch_fails: bool,
    /// Require the agent-issued sign in `0x19` before BINDs (false: the 2024+ "app dialect",
    /// realms without authentication).
    pub require_sign: bool,
    /// Close every realm (device-initiated DISC) this long after it connected.
    pub disc_after: Option<Duration>,
    /// Extra realm ports → local TCP services (loopback only). 554 is the camera; 80 is the
    /// web responder unless `web` is false or 80 is mapped here.
    pub services: BTreeMap<u16, SocketAddr>,
    /// Start the tiny HTTP responder behind realm port 80.
    pub web: bool,
    /// What the camera streams (`None`: the default H.264 + PCMA test pattern, labelled with
    /// the serial).
    pub camera: Option<TestSourceConfig>,
}

impl DeviceOptions {
    /// A type-1 device with the simulator's default credentials.
    pub fn new(serial: &str) -> Self {
        DeviceOptions {
            serial: serial.to_owned(),
            username: "admin".into(),
            password: "camgate-sim".into(),
            device_type: 1,
            rand_salt: SIM_RAND_SALT.into(),
            online: true,
            punch_fails: false,
            require_sign: true,
            disc_after: None,
            services: BTreeMap::new(),
            web: true,
            camera: None,
        }
    }
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions::new("SIM0DAHUA000001")
    }
}

/// How to run the simulated cloud and devices.
#[derive(Clone, Debug)]
pub struct DahuaP2pSimOptions {
    /// The devices (at least one; the first is the one [`DahuaP2pSim::info`] describes).
    pub devices: Vec<DeviceOptions>,
    /// The application credential pair WSSE is checked against (and the `Identify` style of
    /// replies).
    pub profile: Profile,
    /// UDP port of the main server on 127.0.0.1 (0: any).
    pub cloud_port: u16,
    /// Reject WSSE `Created` further than this from the server clock (`401` `TimeOut`);
    /// `None` accepts any time.
    pub max_clock_skew: Option<Duration>,
    /// `/online/p2psrv/{SN}` answers 200 for unknown serials too.
    pub unknown_serial_always_200: bool,
    /// The dispatcher answers `/relay/agent` with 503.
    pub relay_refused: bool,
    /// Every cloud server ignores the first datagram of each request (source, CSeq, path).
    pub drop_first_datagram: bool,
    /// Every DH-HTTP reply is sent twice.
    pub duplicate_responses: bool,
    /// Every DH-HTTP reply carries `CSeq: 0`.
    pub cseq_zero: bool,
    /// `200 Server Nat Info!` without `PubAddr`.
    pub missing_pubaddr: bool,
    /// Time between `100 Trying` and `200 Server Nat Info!` (devices start punching then).
    pub nat_info_delay: Duration,
    /// Device `version` in Server Nat Info (`6.x`/`7.x`: 2024+ generation).
    pub version: String,
    /// `/online/relay` puts an `<?xml …?>` prolog before its body (seen in dh-p2p#15).
    pub relay_xml_prolog: bool,
    /// A device answers a Binding Request only if its AID is the `Identify` of the
    /// p2p-channel request from that address.
    pub strict_aid: bool,
    /// Probability that a PTCP datagram the device or agent sends or receives is lost.
    pub ptcp_loss: f64,
    /// Probability that one is duplicated.
    pub ptcp_dup: f64,
    /// Probability that one is held back behind the next.
    pub ptcp_reorder: f64,
    /// Seed of the PTCP impairments.
    pub ptcp_seed: u64,
    /// Device and agent PTCP sessions end after this long without a datagram.
    pub ptcp_idle_timeout: Duration,
    /// Most unacknowledged DATA bytes a device or agent session keeps in flight (the real
    /// window is unknown; 64 KiB catches clients that under-ack without flooding a socket).
    pub ptcp_send_window: u32,
}

impl Default for DahuaP2pSimOptions {
    fn default() -> Self {
        DahuaP2pSimOptions {
            devices: vec![DeviceOptions::default()],
            profile: Profile::smartpss(),
            cloud_port: 0,
            max_clock_skew: Some(Duration::from_secs(300)),
            unknown_serial_always_200: false,
            relay_refused: false,
            drop_first_datagram: false,
            duplicate_responses: false,
            cseq_zero: false,
            missing_pubaddr: false,
            nat_info_delay: Duration::from_millis(30),
            version: "6.0.0".into(),
            relay_xml_prolog: true,
            strict_aid: true,
            ptcp_loss: 0.0,
            ptcp_dup: 0.0,
            ptcp_reorder: 0.0,
            ptcp_seed: 1,
            ptcp_idle_timeout: Duration::from_secs(30),
            ptcp_send_window: 64 * 1024,
        }
    }
}

impl DahuaP2pSimOptions {
    /// The first device's options (added if there is none).
    pub fn device_mut(&mut self) -> &mut DeviceOptions {
        if self.devices.is_empty() {
            self.devices.push(DeviceOptions::default());
        }
        &mut self.devices[0]
    }
}

/// What a client needs (the JSON line of `camgate sim dahua-p2p`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DahuaP2pSimInfo {
    /// The main server, `127.0.0.1:PORT` (the client's `--cloud`).
    pub cloud: String,
    /// The device serial.
    pub serial: String,
    /// Device user name.
    pub username: String,
    /// Device password.
    pub password: String,
    /// The credential profile the cloud checks.
    pub profile: String,
}

struct SimDevice {
    opts: DeviceOptions,
    addr: SocketAddr,
    camera: RtspCamera,
    web: Option<WebResponder>,
}

/// A running simulated cloud with its devices; everything stops when it is dropped.
pub struct DahuaP2pSim {
    shared: Arc<Shared>,
    addrs: Addrs,
    profile: String,
    devices: Vec<SimDevice>,
    tasks: Vec<JoinHandle<()>>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

async fn bind_udp(port: u16, what: &str) -> io::Result<Arc<UdpSocket>> {
    UdpSocket::bind(loopback(port))
        .await
        .map(Arc::new)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("dahua-p2p sim: cannot bind the {what} on 127.0.0.1:{port}: {e}"),
            )
        })
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("dahua-p2p sim: {msg}"))
}

fn validate(opts: &DahuaP2pSimOptions) -> io::Result<()> {
    if opts.devices.is_empty() {
        return Err(invalid("at least one device is needed".into()));
    }
    let mut seen = HashSet::new();
    for d in &opts.devices {
        if d.serial.is_empty() || d.serial.contains(['/', '?', ' ']) {
            return Err(invalid(format!("bad serial {:?}", d.serial)));
        }
        if !seen.insert(d.serial.as_str()) {
            return Err(invalid(format!("serial {} appears twice", d.serial)));
        }
        for (port, addr) in &d.services {
            if !addr.ip().is_loopback() {
                return Err(invalid(format!(
                    "service for realm port {port} of {} is {addr}, not a loopback address",
                    d.serial
                )));
            }
        }
    }
    Ok(())
}

impl DahuaP2pSim {
    /// Starts the cloud servers, the agent and every device (with its camera) on 127.0.0.1.
    pub async fn start(opts: DahuaP2pSimOptions) -> io::Result<DahuaP2pSim> {
        validate(&opts)?;
        let main = bind_udp(opts.cloud_port, "main server").await?;
        let us = bind_udp(0, "P2P server").await?;
        let relay = bind_udp(0, "relay dispatcher").await?;
        let agent = bind_udp(0, "relay agent").await?;
        let addrs = Addrs {
            main: main.local_addr()?,
            us: us.local_addr()?,
            relay: relay.local_addr()?,
            agent: agent.local_addr()?,
        };
        let shared = Arc::new(Shared::default());
        let reply_faults = ReplyFaults {
            duplicate: opts.duplicate_responses,
            cseq_zero: opts.cseq_zero,
        };
        let front = |server, open: &'static [&'static str]| {
            HttpFront::new(
                server,
                opts.profile.credentials(),
                opts.max_clock_skew,
                opts.drop_first_datagram,
                shared.clone(),
                open,
            )
        };
        let impair = |k: u64| {
            (
                opts.ptcp_seed
                    .wrapping_add(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                opts.ptcp_loss,
                opts.ptcp_dup,
                opts.ptcp_reorder,
            )
        };
        let mut tasks = Vec::new();
        let mut devices = Vec::new();
        for (i, d) in opts.devices.iter().enumerate() {
            let socket = bind_udp(0, &format!("device {} socket", d.serial)).await?;
            let addr = socket.local_addr()?;
            let source = d.camera.clone().unwrap_or_else(|| TestSourceConfig {
                label: d.serial.clone(),
                ..TestSourceConfig::default()
            });
            let camera = RtspCamera::start(RtspCameraOptions {
                source,
                path: rtsp_url::REALMONITOR.into(),
                listen: loopback(0),
                credentials: Some((d.username.clone(), d.password.clone())),
                ..RtspCameraOptions::default()
            })
            .await?;
            let camera_addr = camera.server().local_addr();
            let mut services: HashMap<u16, Service> = d
                .services
                .iter()
                .map(|(p, a)| {
                    (
                        *p,
                        Service {
                            addr: *a,
                            dahua_rtsp: false,
                        },
                    )
                })
                .collect();
            services.insert(
                554,
                Service {
                    addr: camera_addr,
                    dahua_rtsp: true,
                },
            );
            let web = if d.web && !services.contains_key(&80) {
                let w = WebResponder::start(&d.serial).await?;
                services.insert(
                    80,
                    Service {
                        addr: w.addr(),
                        dahua_rtsp: false,
                    },
                );
                Some(w)
            } else {
                None
            };
            let (cmd_tx, cmd_rx) = unbounded_channel();
            shared.lock().devices.insert(
                d.serial.clone(),
                DeviceEntry {
                    creds: DeviceCredentials::with_salt(&d.username, &d.password, &d.rand_salt),
                    device_type: d.device_type,
                    online: d.online,
                    addr,
                    cmd: cmd_tx,
                    channels: Vec::new(),
                },
            );
            let task = DeviceTask::new(
                DeviceConfig {
                    serial: d.serial.clone(),
                    agent: addrs.agent,
                    services,
                    channels: 1,
                    punch_fails: d.punch_fails,
                    require_sign: d.require_sign,
                    strict_aid: opts.strict_aid,
                    disc_after: d.disc_after,
                    idle_timeout: opts.ptcp_idle_timeout,
                    send_window: opts.ptcp_send_window,
                    punch_delay: opts.nat_info_delay,
                },
                socket,
                shared.clone(),
                cmd_rx,
                impair(i as u64 + 1),
            );
            tasks.push(tokio::spawn(task.run()));
            info!(serial = %d.serial, device = %addr, camera = %camera_addr, type1 = d.device_type != 0, online = d.online, "dahua-p2p sim: device started");
            devices.push(SimDevice {
                opts: d.clone(),
                addr,
                camera,
                web,
            });
        }
        let (agent_tx, agent_rx) = unbounded_channel();
        let agent_task = AgentTask::new(
            agent.clone(),
            shared.clone(),
            front(Server::Agent, &[]),
            Replier::new(agent.clone(), reply_faults),
            agent_rx,
            AgentConfig {
                idle_timeout: opts.ptcp_idle_timeout,
                send_window: opts.ptcp_send_window,
                impair: impair(0),
            },
        );
        tasks.push(tokio::spawn(agent_task.run()));
        let main_replier = Replier::new(main.clone(), reply_faults);
        tasks.push(tokio::spawn(serve(
            main.clone(),
            front(Server::Main, &["online/stun"]),
            main_replier.clone(),
            Cloud {
                cfg: CloudConfig {
                    addrs,
                    identify: opts.profile.dialect.identify,
                    unknown_serial_always_200: opts.unknown_serial_always_200,
                    nat_info_delay: opts.nat_info_delay,
                    missing_pubaddr: opts.missing_pubaddr,
                    version: opts.version.clone(),
                    relay_xml_prolog: opts.relay_xml_prolog,
                },
                shared: shared.clone(),
                replier: main_replier,
                agent: agent_tx.clone(),
            },
        )));
        tasks.push(tokio::spawn(serve(
            us.clone(),
            front(Server::P2pServer, &[]),
            Replier::new(us.clone(), reply_faults),
            P2pServer {
                shared: shared.clone(),
                p2p_version: opts.version.clone(),
            },
        )));
        tasks.push(tokio::spawn(serve(
            relay.clone(),
            front(Server::Relay, &[]),
            Replier::new(relay.clone(), reply_faults),
            Dispatcher {
                shared: shared.clone(),
                agent_addr: addrs.agent,
                agent: agent_tx,
                refused: opts.relay_refused,
            },
        )));
        info!(main = %addrs.main, us = %addrs.us, relay = %addrs.relay, agent = %addrs.agent, profile = opts.profile.name, "dahua-p2p sim: cloud started");
        Ok(DahuaP2pSim {
            shared,
            addrs,
            profile: opts.profile.name.to_owned(),
            devices,
            tasks,
        })
    }

    /// What a client needs to reach the first device.
    pub fn info(&self) -> DahuaP2pSimInfo {
        self.infos().swap_remove(0)
    }

    /// One [`DahuaP2pSimInfo`] per device.
    pub fn infos(&self) -> Vec<DahuaP2pSimInfo> {
        self.devices
            .iter()
            .map(|d| DahuaP2pSimInfo {
                cloud: self.addrs.main.to_string(),
                serial: d.opts.serial.clone(),
                username: d.opts.username.clone(),
                password: d.opts.password.clone(),
                profile: self.profile.clone(),
            })
            .collect()
    }

    /// The main server (`--cloud`).
    pub fn cloud_addr(&self) -> SocketAddr {
        self.addrs.main
    }

    /// The P2P server "US".
    pub fn p2p_server_addr(&self) -> SocketAddr {
        self.addrs.us
    }

    /// The relay dispatcher.
    pub fn relay_addr(&self) -> SocketAddr {
        self.addrs.relay
    }

    /// The relay agent.
    pub fn agent_addr(&self) -> SocketAddr {
        self.addrs.agent
    }

    /// A device's UDP socket (its `PubAddr` and `LocalAddr`).
    pub fn device_addr(&self, serial: &str) -> Option<SocketAddr> {
        self.device(serial).map(|d| d.addr)
    }

    /// A device's options.
    pub fn device_options(&self, serial: &str) -> Option<&DeviceOptions> {
        self.device(serial).map(|d| &d.opts)
    }

    /// A device's RTSP camera (behind realm port 554).
    pub fn camera(&self, serial: &str) -> Option<&RtspCamera> {
        self.device(serial).map(|d| &d.camera)
    }

    /// The first device's RTSP camera.
    pub fn rtsp_camera(&self) -> &RtspCamera {
        &self.devices[0].camera
    }

    /// A device's web responder (behind realm port 80), if it runs one.
    pub fn web_addr(&self, serial: &str) -> Option<SocketAddr> {
        self.device(serial)?.web.as_ref().map(WebResponder::addr)
    }

    /// The RTSP URL of a device's camera as seen through a tunnel listening on
    /// `127.0.0.1:local_port` (Dahua's form, with credentials).
    pub fn rtsp_url(&self, serial: &str, local_port: u16) -> Option<String> {
        let d = self.device(serial)?;
        Some(format!(
            "rtsp://{}:{}@127.0.0.1:{local_port}/{RTSP_PATH}",
            d.opts.username, d.opts.password
        ))
    }

    /// Takes a device on- or offline at run time; false for an unknown serial.
    pub fn set_online(&self, serial: &str, online: bool) -> bool {
        match self.shared.lock().devices.get_mut(serial) {
            Some(d) => {
                d.online = online;
                true
            }
            None => false,
        }
    }

    /// A copy of everything the simulator recorded so far.
    pub fn observed(&self) -> Observations {
        self.shared.lock().snapshot()
    }

    fn device(&self, serial: &str) -> Option<&SimDevice> {
        self.devices.iter().find(|d| d.opts.serial == serial)
    }
}

impl Drop for DahuaP2pSim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Whether an address obeys the network rule (127.0.0.0/8).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback())
}
