//! The simulated RTSP camera is a real RTSP camera: ffmpeg reads and decodes it, it checks
//! credentials, and its faults behave as documented.

use std::process::Command;
use std::time::Duration;

use sim::camera::TestSourceConfig;
use sim::rtsp_camera::{RtspCamera, RtspCameraOptions};

fn ffmpeg_frames(url: &str, transport: &str, frames: u32) -> Result<usize, String> {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
        ])
        .args([
            "-map",
            "0:v:0",
            "-frames:v",
            &frames.to_string(),
            "-f",
            "framemd5",
            "-",
        ])
        .output()
        .map_err(|e| format!("cannot run ffmpeg ({e}); run scripts/setup"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        return Err(stderr.into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count())
}

async fn camera(url: &str, creds: Option<(&str, &str)>, refuse: bool) -> RtspCamera {
    RtspCamera::start(RtspCameraOptions {
        source: TestSourceConfig::from_url(url).unwrap(),
        credentials: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        refuse_auth: refuse,
        ..RtspCameraOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_the_simulated_h264_camera_over_tcp_and_udp() {
    let cam = camera("test://sim?video=h264&audio=pcma", None, false).await;
    let url = cam.info().url.clone();
    for transport in ["tcp", "udp"] {
        let url = url.clone();
        let n = tokio::task::spawn_blocking(move || ffmpeg_frames(&url, transport, 60))
            .await
            .unwrap();
        assert_eq!(n, Ok(60), "{transport}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_the_simulated_h265_and_jpeg_cameras() {
    for src in [
        "test://sim?video=h265&audio=aac",
        "test://sim?video=jpeg&audio=none",
    ] {
        let cam = camera(src, None, false).await;
        let url = cam.info().url.clone();
        let n = tokio::task::spawn_blocking(move || ffmpeg_frames(&url, "tcp", 40))
            .await
            .unwrap();
        assert_eq!(n, Ok(40), "{src}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_checks_credentials_and_can_refuse_them_all() {
    let cam = camera("test://sim", Some(("admin", "pw")), false).await;
    let addr = cam.info().url.trim_start_matches("rtsp://").to_string();
    let good = format!("rtsp://admin:pw@{addr}");
    let bad = format!("rtsp://admin:nope@{addr}");
    let n = tokio::task::spawn_blocking(move || ffmpeg_frames(&good, "tcp", 10))
        .await
        .unwrap();
    assert_eq!(n, Ok(10));
    let e = tokio::task::spawn_blocking(move || ffmpeg_frames(&bad, "tcp", 10))
        .await
        .unwrap();
    assert!(e.unwrap_err().contains("401"));

    let refusing = camera("test://sim", Some(("admin", "pw")), true).await;
    let addr = refusing
        .info()
        .url
        .trim_start_matches("rtsp://")
        .to_string();
    let good = format!("rtsp://admin:pw@{addr}");
    let e = tokio::task::spawn_blocking(move || ffmpeg_frames(&good, "tcp", 10))
        .await
        .unwrap();
    assert!(e.unwrap_err().contains("401"));
    tokio::time::sleep(Duration::from_millis(10)).await;
}
