//! Turns a camera's `source` URL and options into a `media::Source`.

use std::sync::Arc;
use std::time::Duration;

use media::Source;
use media::hub::StreamOptions;

use crate::config::CameraEntry;

/// Builds the source for a camera entry, checking its options.
pub fn make_source(cam: &CameraEntry) -> Result<Arc<dyn Source>, String> {
    let scheme = cam
        .source
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .ok_or_else(|| {
            format!(
                "source {:?} is not a URL (expected rtsp://..., dahua-p2p://... or test://...)",
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
            Ok(Arc::new(src))
        }
        "test" => {
            if let Some(k) = cam.options.keys().next() {
                return Err(format!("unknown option `{k}` for a test:// source"));
            }
            let cfg = sim::camera::TestSourceConfig::from_url(&cam.source)?;
            Ok(Arc::new(sim::camera::TestSource::new(cfg)))
        }
        "dahua-p2p" => {
            let opts: crate::p2p::P2pOptions =
                toml::Value::Table(cam.options.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
            Ok(Arc::new(crate::p2p::P2pSource::new(&cam.source, opts)?))
        }
        other => Err(format!(
            "unsupported source scheme {other:?} in {:?} (supported: rtsp, dahua-p2p, test)",
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
