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

/// Waits for Ctrl-C, or for `duration` if given.
pub async fn wait(duration: Option<Duration>) {
    match duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
