//! Turns a camera's `source` URL and options into a `media::Source`.

use std::sync::Arc;
use std::time::Duration;

use media::Source;
use media::hub::StreamOptions;

use crate::config::CameraEntry;

/// Builds the source for a camera entry, checking its options.
pub fn make_source(cam: &CameraEntry) -> Result<Arc<dyn Source>, String> {
    make_camera(cam).map(|(s, _)| s)
}

/// A camera's control, for the kinds that have one.
pub type Control = Option<Arc<dyn crate::control::CameraControl>>;

/// Builds the source and, for DHIP and Dahua P2P cameras, the control of a camera entry.
pub fn make_camera(cam: &CameraEntry) -> Result<(Arc<dyn Source>, Control), String> {
    let scheme = cam
        .source
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .ok_or_else(|| {
            format!(
                "source {:?} is not a URL (expected rtsp://..., dahua-p2p://..., dhip://... or test://...)",
                cam.source
            )
        })?;
    match scheme.as_str() {
        "rtsp" => {
            let opts: rtsp::source::RtspSourceOptions = toml::Value::Table(cam.options.clone())
                .try_into()
                .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
            let src =
                rtsp::source::RtspSource::new(&cam.source, opts).map_err(|e| e.to_string())?;
            Ok((Arc::new(src), None))
        }
        "test" => {
            if let Some(k) = cam.options.keys().next() {
                return Err(format!("unknown option `{k}` for a test:// source"));
            }
            let cfg = sim::camera::TestSourceConfig::from_url(&cam.source)?;
            Ok((Arc::new(sim::camera::TestSource::new(cfg)), None))
        }
        "dahua-p2p" => {
            let opts: crate::p2p::P2pOptions =
                toml::Value::Table(cam.options.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
            let dhip_port = opts.dhip_port.unwrap_or(5000);
            let username = opts.username.clone();
            let password = opts.password.clone();
            let src = crate::p2p::P2pSource::new(&cam.source, opts)?;
            let ccfg = src.connector().config().clone();
            let control = crate::control::DhipControl::new(
                &cam.name,
                crate::control::DhipEndpoint::P2p {
                    connector: src.connector(),
                    port: dhip_port,
                },
                dhip::client::ClientConfig::new(
                    &username.unwrap_or(ccfg.username),
                    &password.unwrap_or(ccfg.password),
                ),
                dhip::methods::PtzPolicy::default(),
            );
            Ok((Arc::new(src), Some(Arc::new(control))))
        }
        "dhip" => {
            let opts: crate::dhipsrc::DhipOptions = toml::Value::Table(cam.options.clone())
                .try_into()
                .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
            let src = crate::dhipsrc::DhipSource::new(&cam.source, &opts)?;
            let t = src.target().clone();
            let control = crate::control::DhipControl::new(
                &cam.name,
                crate::control::DhipEndpoint::Direct {
                    host: t.host.clone(),
                    port: t.port,
                },
                t.client_config(),
                t.ptz,
            );
            Ok((Arc::new(src), Some(Arc::new(control))))
        }
        other => Err(format!(
            "unsupported source scheme {other:?} in {:?} (supported: rtsp, dahua-p2p, dhip, test)",
            cam.source
        )),
    }
}

/// The Hub options of a camera entry.
pub fn stream_options(cam: &CameraEntry) -> StreamOptions {
    let d = StreamOptions::default();
    let secs = |v: Option<f64>, dflt: Duration| v.map(Duration::from_secs_f64).unwrap_or(dflt);
    let mib = |v: Option<f64>, dflt: usize| v.map(|m| (m * 1_048_576.0) as usize).unwrap_or(dflt);
    StreamOptions {
        preload: cam.preload,
        idle_timeout: secs(cam.idle_timeout_s, d.idle_timeout),
        video_timeout: secs(cam.video_timeout_s, d.video_timeout),
        start_timeout: secs(cam.start_timeout_s, d.start_timeout),
        gop_cache_bytes: mib(cam.gop_cache_mb, d.gop_cache_bytes),
        reader_queue_bytes: mib(cam.reader_queue_mb, d.reader_queue_bytes),
        ..d
    }
}
