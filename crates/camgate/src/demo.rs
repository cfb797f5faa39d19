//! `camgate demo`: simulated cameras on loopback, served by camgate exactly as real ones would
//! be: RTSP cameras that camgate pulls over RTSP, and a Dahua DHIP device whose DHAV stream
//! camgate pulls over HTTP RPC_Loadfile and whose controls (info, config, PTZ, events) the REST
//! API exposes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sim::camera::TestSourceConfig;
use sim::rtsp_camera::{RtspCamera, RtspCameraOptions};

use crate::config::{CameraEntry, Config, ServerSection};

/// Options of the demo.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// RTSP port.
    #[arg(long, default_value_t = 8554)]
    pub rtsp_port: u16,
    /// HTTP port.
    #[arg(long, default_value_t = 1984)]
    pub http_port: u16,
    /// UDP port for RTP (RTCP = next); 0 = any free pair.
    #[arg(long, default_value_t = 8000)]
    pub rtp_port: u16,
    /// Exit after N seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
}

/// The demo's cameras: name, test source, description.
pub const DEMO_CAMERAS: [(&str, &str, &str); 4] = [
    (
        "demo",
        "test://demo?video=h264&audio=pcma",
        "H.264 640x360 25 fps + G.711 A-law tone",
    ),
    (
        "demo-aac",
        "test://demo-aac?video=h264&audio=aac",
        "H.264 640x360 25 fps + AAC tone",
    ),
    (
        "demo-h265",
        "test://demo-h265?video=h265&audio=pcmu",
        "H.265 640x360 25 fps + G.711 µ-law tone",
    ),
    (
        "demo-jpeg",
        "test://demo-jpeg?video=jpeg&audio=none",
        "Motion JPEG 640x360 25 fps",
    ),
];

/// A preloaded camera entry with default timeouts and caches.
fn preloaded(name: &str, source: String, options: toml::Table) -> CameraEntry {
    CameraEntry {
        name: name.into(),
        source,
        preload: true,
        idle_timeout_s: None,
        video_timeout_s: None,
        start_timeout_s: None,
        gop_cache_mb: None,
        reader_queue_mb: None,
        options,
    }
}

/// The demo's DHIP camera.
pub const DEMO_DHIP: &str = "demo-dhip";

/// Runs the demo until Ctrl-C (or `--duration`).
pub async fn run(args: DemoArgs) -> Result<(), String> {
    let mut cams = Vec::new();
    let mut cfg = Config {
        server: ServerSection {
            rtsp_listen: SocketAddr::new(args.listen, args.rtsp_port),
            http_listen: SocketAddr::new(args.listen, args.http_port),
            rtp_port: args.rtp_port,
            ..ServerSection::default()
        },
        ..Config::default()
    };
    for (name, test_url, _) in DEMO_CAMERAS {
        let cam = RtspCamera::start(RtspCameraOptions {
            source: TestSourceConfig::from_url(test_url)?,
            path: "stream".into(),
            credentials: Some(("admin".into(), "demo-password".into())),
            ..RtspCameraOptions::default()
        })
        .await
        .map_err(|e| format!("cannot start simulated camera {name}: {e}"))?;
        let mut options = toml::Table::new();
        options.insert("username".into(), "admin".into());
        options.insert("password".into(), "demo-password".into());
        cfg.camera
            .push(preloaded(name, cam.info().url.clone(), options));
        cams.push(cam);
    }
    // A Dahua device over DHIP: media from its DHAV stream, control through the REST API.
    let dhip_sim = sim::dhip::DhipSim::start(sim::dhip::DhipSimOptions {
        periodic_event: Some(("VideoMotion".into(), Duration::from_secs(5))),
        ..sim::dhip::DhipSimOptions::default()
    })
    .await
    .map_err(|e| format!("cannot start the simulated DHIP device: {e}"))?;
    let mut options = toml::Table::new();
    options.insert("username".into(), dhip_sim.username().into());
    options.insert("password".into(), dhip_sim.password().into());
    options.insert("media".into(), "dhav".into());
    let http_port = dhip_sim.http_addr().map_or(80, |a| a.port());
    options.insert("http_port".into(), i64::from(http_port).into());
    cfg.camera.push(preloaded(
        DEMO_DHIP,
        format!("dhip://127.0.0.1:{}", dhip_sim.addr().port()),
        options,
    ));
    let running = crate::serve::start(&cfg, "", "demo").await?;
    let rtsp = running.rtsp.local_addr();
    let http = running.http_addr;
    println!(
        "camgate demo: {} simulated cameras, each pulled and re-served:",
        cams.len() + 1
    );
    for (name, _, what) in DEMO_CAMERAS {
        println!("  rtsp://{rtsp}/{name:<10} {what}");
    }
    println!(
        "  rtsp://{rtsp}/{DEMO_DHIP:<10} a Dahua device over DHIP (H.264 from its DHAV stream)"
    );
    println!(
        "Device control of {DEMO_DHIP} (also `camgate dhip 127.0.0.1 -p {} -P {} info`):",
        dhip_sim.addr().port(),
        dhip_sim.password()
    );
    println!("  info:   curl http://{http}/api/cameras/{DEMO_DHIP}/info");
    println!(
        "  PTZ:    curl -d '{{\"action\":\"move\",\"direction\":\"Left\"}}' http://{http}/api/cameras/{DEMO_DHIP}/ptz"
    );
    println!("  events: curl -N http://{http}/api/cameras/{DEMO_DHIP}/events");
    println!("HTTP API: http://{http}/api/streams");
    println!("  snapshot: http://{http}/api/frame.jpeg?src=demo");
    println!("  MJPEG:    http://{http}/api/stream.mjpeg?src=demo");
    println!("  metrics:  http://{http}/metrics");
    println!("Try: ffplay rtsp://{rtsp}/demo   (Ctrl-C to stop)");
    crate::signals::survive_hangup();
    let why = crate::simcmd::wait(args.duration.map(Duration::from_secs_f64)).await;
    tracing::info!("{}: shutting down", why.unwrap_or("--duration over"));
    running.shutdown().await;
    drop(cams);
    drop(dhip_sim);
    Ok(())
}
