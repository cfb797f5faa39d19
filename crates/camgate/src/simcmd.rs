//! `camgate sim <kind>`: runs one simulator on loopback and prints one JSON line with what a
//! client needs to reach it.

use std::net::SocketAddr;
use std::time::Duration;

use sim::camera::TestSourceConfig;
use sim::rtsp_camera::{RtspCamera, RtspCameraOptions};

/// Which simulator to run.
#[derive(clap::Subcommand, Debug)]
pub enum SimKind {
    /// A plain RTSP camera (H.264/H.265/JPEG video, G.711 or AAC audio).
    Rtsp(RtspSimArgs),
    /// An RTSP camera streaming Motion JPEG (RFC 2435), no audio.
    Jpeg(RtspSimArgs),
    /// A Dahua P2P cloud (main server, P2P server, relay, agent) and a device with an RTSP
    /// camera behind realm port 554; the JSON line names `cloud`, `serial`, `username`,
    /// `password`.
    #[command(name = "dahua-p2p")]
    DahuaP2p(DahuaP2pSimArgs),
    /// A Dahua DHIP device: DHIP on TCP, its web port (RPC2, RPC_Loadfile DHAV, snapshot
    /// CGI), DHDiscover on UDP, and an RTSP camera at `/cam/realmonitor`; the JSON line names
    /// `host`, `port`, `http_port`, `discovery_port`, `rtsp_port`, `username`, `password`.
    Dhip(DhipSimArgs),
}

/// Options of the simulated DHIP device.
#[derive(clap::Args, Debug)]
pub struct DhipSimArgs {
    /// DHIP TCP port on 127.0.0.1 (0 = any).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Web port on 127.0.0.1 (0 = any).
    #[arg(long, default_value_t = 0)]
    pub http_port: u16,
    /// DHDiscover UDP port on 127.0.0.1 (0 = any).
    #[arg(long, default_value_t = 0)]
    pub discovery_port: u16,
    /// RTSP port on 127.0.0.1 (0 = any).
    #[arg(long, default_value_t = 0)]
    pub rtsp_port: u16,
    /// User name.
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Password.
    #[arg(long, default_value = "admin54321")]
    pub password: String,
    /// Keep-alive interval the device announces, in seconds.
    #[arg(long, default_value_t = 60)]
    pub keepalive: u32,
    /// Push a VideoMotion pulse this often (milliseconds) to event subscribers.
    #[arg(long)]
    pub motion_every_ms: Option<u64>,
    /// Exit after N seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
}

async fn run_dhip(a: &DhipSimArgs) -> Result<(), String> {
    use sim::dhip::{DhipSim, DhipSimOptions};
    if !(1..=3600).contains(&a.keepalive) {
        return Err(format!(
            "--keepalive {} is out of range (1 to 3600)",
            a.keepalive
        ));
    }
    let sim = DhipSim::start(DhipSimOptions {
        port: a.port,
        http_port: Some(a.http_port),
        discovery_port: Some(a.discovery_port),
        username: a.username.clone(),
        password: a.password.clone(),
        keep_alive_interval: a.keepalive,
        periodic_event: a
            .motion_every_ms
            .map(|ms| ("VideoMotion".to_string(), Duration::from_millis(ms.max(10)))),
        ..DhipSimOptions::default()
    })
    .await
    .map_err(|e| format!("cannot start the DHIP simulator: {e}"))?;
    let cam = RtspCamera::start(RtspCameraOptions {
        source: TestSourceConfig::from_url("test://dhip-sim?video=h264&audio=pcma")?,
        path: "cam/realmonitor".into(),
        listen: SocketAddr::from(([127, 0, 0, 1], a.rtsp_port)),
        credentials: Some((a.username.clone(), a.password.clone())),
        refuse_auth: false,
        drop_every: None,
        video_stops_after: None,
    })
    .await
    .map_err(|e| format!("cannot start the simulated RTSP camera: {e}"))?;
    let rtsp_port = cam
        .info()
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let mut info = serde_json::to_value(sim.info()).map_err(|e| e.to_string())?;
    info["rtsp_port"] = rtsp_port.into();
    println!("{info}");
    wait(secs(a.duration, "duration")?).await;
    Ok(())
}

/// Options of the simulated Dahua P2P cloud and device.
#[derive(clap::Args, Debug)]
pub struct DahuaP2pSimArgs {
    /// The main server's UDP port on 127.0.0.1 (0 = any).
    #[arg(long, default_value_t = 0)]
    pub cloud_port: u16,
    /// Device serial number.
    #[arg(long, default_value = "SIM0DAHUA000001")]
    pub serial: String,
    /// Device user name.
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Device password.
    #[arg(long, default_value = "camgate-sim")]
    pub password: String,
    /// Device authentication type the device requires (0 or 1).
    #[arg(long, default_value_t = 1)]
    pub device_type: u8,
    /// Application profile the cloud accepts: smartpss, dmss, legacy, amcrest.
    #[arg(long, default_value = "smartpss")]
    pub profile: String,
    /// The device ignores the punch (clients must use the relay).
    #[arg(long)]
    pub punch_fails: bool,
    /// The relay dispatcher refuses agents.
    #[arg(long)]
    pub relay_refused: bool,
    /// The device is offline.
    #[arg(long)]
    pub offline: bool,
    /// Fraction of PTCP datagrams the device and agent lose (each way).
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Exit after N seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
}

async fn run_dahua_p2p(a: &DahuaP2pSimArgs) -> Result<(), String> {
    use sim::dahua_p2p::{DahuaP2pSim, DahuaP2pSimOptions, DeviceOptions};
    if !(0.0..=0.9).contains(&a.loss) {
        return Err(format!("--loss {} is out of range (0 to 0.9)", a.loss));
    }
    let profile = dahua_p2p::dhhttp::Profile::by_name(&a.profile)
        .ok_or_else(|| format!("unknown profile {:?}", a.profile))?;
    let mut dev = DeviceOptions::new(&a.serial);
    dev.username = a.username.clone();
    dev.password = a.password.clone();
    dev.device_type = a.device_type;
    dev.punch_fails = a.punch_fails;
    dev.online = !a.offline;
    let sim = DahuaP2pSim::start(DahuaP2pSimOptions {
        devices: vec![dev],
        profile,
        cloud_port: a.cloud_port,
        relay_refused: a.relay_refused,
        ptcp_loss: a.loss,
        ..DahuaP2pSimOptions::default()
    })
    .await
    .map_err(|e| format!("cannot start the Dahua P2P simulator: {e}"))?;
    println!(
        "{}",
        serde_json::to_string(&sim.info()).expect("info serializes")
    );
    wait(secs(a.duration, "duration")?).await;
    Ok(())
}

/// Options of a simulated RTSP camera.
#[derive(clap::Args, Debug)]
pub struct RtspSimArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Stream path.
    #[arg(long, default_value = "stream")]
    pub path: String,
    /// Video codec: h264, h265, jpeg.
    #[arg(long, default_value = "h264")]
    pub video: String,
    /// Audio: none, pcma, pcmu, aac.
    #[arg(long, default_value = "pcma")]
    pub audio: String,
    /// Picture size WxH.
    #[arg(long, default_value = "640x360")]
    pub size: String,
    /// Frames per second.
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// Keyframe interval in frames.
    #[arg(long, default_value_t = 50)]
    pub gop: u32,
    /// Username the camera checks (with --password).
    #[arg(long)]
    pub username: Option<String>,
    /// Password the camera checks.
    #[arg(long)]
    pub password: Option<String>,
    /// Refuse every credential.
    #[arg(long)]
    pub refuse_auth: bool,
    /// Drop every connection every N seconds.
    #[arg(long)]
    pub drop_every: Option<f64>,
    /// Stop video (keep audio) N seconds after start.
    #[arg(long)]
    pub video_stops_after: Option<f64>,
    /// Exit after N seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
}

fn source_config(a: &RtspSimArgs, jpeg: bool) -> Result<TestSourceConfig, String> {
    let audio = if jpeg && a.audio == "pcma" {
        "none"
    } else {
        a.audio.as_str()
    };
    let video = if jpeg { "jpeg" } else { a.video.as_str() };
    let cfg = TestSourceConfig::from_url(&format!(
        "test://{}?video={video}&audio={audio}&size={}&fps={}&gop={}",
        a.path.replace('/', "-"),
        a.size,
        a.fps,
        a.gop
    ))?;
    Ok(cfg)
}

fn secs(v: Option<f64>, what: &str) -> Result<Option<Duration>, String> {
    match v {
        Some(s) if !(0.0..=1e6).contains(&s) => Err(format!("--{what} {s} is out of range")),
        Some(s) => Ok(Some(Duration::from_secs_f64(s))),
        None => Ok(None),
    }
}

/// Runs the simulator until Ctrl-C (or `--duration`).
pub async fn run(kind: SimKind) -> Result<(), String> {
    let (args, jpeg) = match &kind {
        SimKind::Rtsp(a) => (a, false),
        SimKind::Jpeg(a) => (a, true),
        SimKind::DahuaP2p(a) => return run_dahua_p2p(a).await,
        SimKind::Dhip(a) => return run_dhip(a).await,
    };
    let credentials = match (&args.username, &args.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) => None,
        _ => return Err("give both --username and --password, or neither".into()),
    };
    let cam = RtspCamera::start(RtspCameraOptions {
        source: source_config(args, jpeg)?,
        path: args.path.clone(),
        listen: args.listen,
        credentials,
        refuse_auth: args.refuse_auth,
        drop_every: secs(args.drop_every, "drop-every")?,
        video_stops_after: secs(args.video_stops_after, "video-stops-after")?,
    })
    .await
    .map_err(|e| format!("cannot start the simulated camera on {}: {e}", args.listen))?;
    println!(
        "{}",
        serde_json::to_string(cam.info()).expect("info serializes")
    );
    wait(secs(args.duration, "duration")?).await;
    Ok(())
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM, or for `duration` if given; the signal's name, or
/// `None` when the duration ran out.
pub async fn wait(duration: Option<Duration>) -> Option<&'static str> {
    match duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => None,
                s = crate::signals::stop() => Some(s),
            }
        }
        None => Some(crate::signals::stop().await),
    }
}
