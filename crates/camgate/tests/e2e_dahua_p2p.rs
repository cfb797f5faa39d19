//! Dahua P2P end to end: camgate pulls a camera by serial number from the simulated cloud and
//! device (direct, relay, punch failing over to the relay; type-0 and type-1 devices), and
//! ffmpeg decodes what camgate serves; the tunnel command with real peers; errors a person
//! can act on.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use camgate::config::CameraEntry;
use common::*;
use futures_util::future::join_all;
use sim::dahua_p2p::{DahuaP2pSim, DahuaP2pSimOptions, DeviceOptions, RealmVia};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn sim_with(tweak: impl FnOnce(&mut DahuaP2pSimOptions)) -> DahuaP2pSim {
    let mut opts = DahuaP2pSimOptions {
        devices: vec![DeviceOptions::new("SIM0DAHUA000001")],
        ..DahuaP2pSimOptions::default()
    };
    tweak(&mut opts);
    DahuaP2pSim::start(opts).await.expect("simulator")
}

fn p2p_entry(sim: &DahuaP2pSim, mode: &str, password: Option<&str>) -> CameraEntry {
    let info = sim.info();
    let mut e = camera_entry(
        "garage",
        &format!("dahua-p2p://{}?channel=1&subtype=0", info.serial),
        Some((&info.username, password.unwrap_or(&info.password))),
        false,
    );
    e.options.insert("cloud".into(), info.cloud.clone().into());
    e.options.insert("mode".into(), mode.into());
    e.start_timeout_s = Some(15.0);
    e
}

async fn camgate_with(entry: CameraEntry) -> camgate::serve::Running {
    serve_entries(vec![entry]).await
}

fn url(running: &camgate::serve::Running) -> String {
    format!("rtsp://{}/garage", running.rtsp.local_addr())
}

/// The realms the device served on its RTSP port, by path.
fn rtsp_realms(sim: &DahuaP2pSim) -> Vec<RealmVia> {
    sim.observed()
        .realms
        .iter()
        .filter(|r| r.port == 554 && r.connected)
        .map(|r| r.via)
        .collect()
}

/// p2p-channel requests the cloud accepted: one per P2P session (a type-1 device first
/// refuses the client's type-0 attempt).
fn accepted_channels(sim: &DahuaP2pSim) -> usize {
    sim.observed()
        .p2p_channels
        .iter()
        .filter(|c| c.status == 200)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_a_type1_camera_through_a_direct_p2p_session() {
    let sim = sim_with(|_| {}).await;
    let running = camgate_with(p2p_entry(&sim, "direct", None)).await;
    let frames = ffmpeg_decode(&url(&running), "tcp", 100).await;
    assert!(frames >= 100, "only {frames} frames decoded");
    assert_eq!(rtsp_realms(&sim), vec![RealmVia::Direct]);
    let obs = sim.observed();
    assert!(
        obs.p2p_channels
            .iter()
            .any(|c| c.has_auth && c.status == 200),
        "the client authenticated with type 1: {:?}",
        obs.p2p_channels
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_a_camera_through_the_relay() {
    let sim = sim_with(|_| {}).await;
    let running = camgate_with(p2p_entry(&sim, "relay", None)).await;
    let frames = ffmpeg_decode(&url(&running), "tcp", 100).await;
    assert!(frames >= 100, "only {frames} frames decoded");
    assert_eq!(rtsp_realms(&sim), vec![RealmVia::Relay]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_punch_falls_back_to_the_relay() {
    let sim = sim_with(|o| o.devices[0].punch_fails = true).await;
    let mut entry = p2p_entry(&sim, "auto", None);
    entry.options.insert("punch_timeout_s".into(), 1.0.into());
    let running = camgate_with(entry).await;
    let frames = ffmpeg_decode(&url(&running), "tcp", 100).await;
    assert!(frames >= 100, "only {frames} frames decoded");
    assert_eq!(rtsp_realms(&sim), vec![RealmVia::Relay]);
    assert_eq!(
        sim.observed().stun.responses_sent,
        0,
        "the device never answered the punch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type0_device_is_reached_without_device_credentials_in_the_cloud_exchange() {
    let sim = sim_with(|o| o.devices[0].device_type = 0).await;
    let running = camgate_with(p2p_entry(&sim, "direct", None)).await;
    let frames = ffmpeg_decode(&url(&running), "tcp", 100).await;
    assert!(frames >= 100, "only {frames} frames decoded");
    let obs = sim.observed();
    assert!(!obs.p2p_channels.is_empty());
    assert!(
        obs.p2p_channels
            .iter()
            .all(|c| !c.has_auth && c.status == 200),
        "type-0 p2p-channel requests only: {:?}",
        obs.p2p_channels
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_readers_share_one_p2p_session_and_one_camera_stream() {
    let sim = sim_with(|_| {}).await;
    let running = camgate_with(p2p_entry(&sim, "auto", None)).await;
    let u = url(&running);
    let counts = join_all((0..4).map(|_| {
        let u = u.clone();
        async move { ffmpeg_decode(&u, "tcp", 100).await }
    }))
    .await;
    for (i, c) in counts.iter().enumerate() {
        assert!(*c >= 100, "reader {i} decoded only {c} frames");
    }
    assert_eq!(
        rtsp_realms(&sim).len(),
        1,
        "one camera stream for four readers"
    );
    assert_eq!(accepted_channels(&sim), 1, "one P2P session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_device_password_is_reported_as_such() {
    let sim = sim_with(|_| {}).await;
    let running = camgate_with(p2p_entry(&sim, "auto", Some("not-the-password"))).await;
    let stream = running.hub.get("garage").unwrap();
    assert!(
        stream.subscribe().await.is_err(),
        "no stream with a wrong password"
    );
    let err = stream.stats().last_error.unwrap_or_default();
    assert!(
        err.contains("wrong device password") || err.contains("password"),
        "the error names the password: {err}"
    );
    assert!(
        err.contains("SIM0DAHUA000001"),
        "the error names the serial: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_sets_up_a_new_session_when_the_old_one_dies() {
    let sim = sim_with(|_| {}).await;
    let cloud: SocketAddr = sim.info().cloud.parse().unwrap();
    let mut entry = p2p_entry(&sim, "direct", None);
    entry
        .options
        .insert("p2p_idle_timeout_s".into(), 2.0.into());
    entry.video_timeout_s = Some(3.0);
    let running = camgate_with(entry).await;
    let u = url(&running);
    assert!(ffmpeg_decode(&u, "tcp", 30).await >= 30);
    // The whole cloud and device go away; a new one comes up at the same cloud address.
    drop(sim);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sim2 = sim_with(|o| o.cloud_port = cloud.port()).await;
    let frames = ffmpeg_decode(&u, "tcp", 100).await;
    assert!(frames >= 100, "only {frames} frames after the new session");
    assert_eq!(accepted_channels(&sim2), 1, "a new cloud handshake");
}

/// Runs `camgate tunnel dahua ...`; returns the child and its listen address.
async fn tunnel_cli(
    sim: &DahuaP2pSim,
    password: &str,
    port: u16,
    extra: &[&str],
) -> (tokio::process::Child, Option<SocketAddr>) {
    let info = sim.info();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
        .args([
            "tunnel",
            "dahua",
            &info.serial,
            "-u",
            &info.username,
            "-P",
            password,
        ])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--port",
            &port.to_string(),
            "--cloud",
            &info.cloud,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("camgate runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .ok()
        .and_then(|l| l.ok().flatten());
    let addr = line.map(|l| {
        let v: serde_json::Value = serde_json::from_str(&l).expect("JSON line");
        v["listen"].as_str().unwrap().parse().unwrap()
    });
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_command_carries_rtsp_to_ffmpeg_and_http_to_a_web_client() {
    let sim = sim_with(|_| {}).await;
    let info = sim.info();
    let (_rtsp_tunnel, addr) = tunnel_cli(&sim, &info.password, 554, &[]).await;
    let addr = addr.expect("the tunnel listens");
    let u = format!(
        "rtsp://{}:{}@{addr}/cam/realmonitor?channel=1&subtype=0",
        info.username, info.password
    );
    // Two clients at once: each its own realm.
    let (a, b) = tokio::join!(ffmpeg_decode(&u, "tcp", 100), ffmpeg_decode(&u, "tcp", 100));
    assert!(a >= 100 && b >= 100, "decoded {a} and {b} frames");
    assert!(
        rtsp_realms(&sim).len() >= 2,
        "one realm per client connection"
    );

    let (_web_tunnel, web) = tunnel_cli(&sim, &info.password, 80, &["--mode", "relay"]).await;
    let mut s = tokio::net::TcpStream::connect(web.expect("listens"))
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: camera\r\n\r\n")
        .await
        .unwrap();
    let mut page = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut page))
        .await
        .expect("the page arrives")
        .unwrap();
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1."), "an HTTP answer: {page}");
    assert!(
        page.contains("SIM0DAHUA000001"),
        "the device's page: {page}"
    );
}

/// Runs `camgate tunnel dahua SERIAL --eager`, expects it to fail, returns its stderr.
async fn eager_tunnel_error(sim: &DahuaP2pSim, serial: &str, password: &str) -> String {
    let info = sim.info();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
        .args([
            "tunnel",
            "dahua",
            serial,
            "-u",
            &info.username,
            "-P",
            password,
        ])
        .args(["--listen", "127.0.0.1:0", "--cloud", &info.cloud, "--eager"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "the tunnel must fail for {serial}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_command_names_a_wrong_password_and_an_unknown_serial() {
    let sim = sim_with(|_| {}).await;
    let info = sim.info();
    let err = eager_tunnel_error(&sim, &info.serial, "wrong").await;
    assert!(err.contains("password"), "stderr names the password: {err}");
    let err = eager_tunnel_error(&sim, "NOSUCHSERIAL1", "x").await;
    assert!(
        err.contains("does not know serial NOSUCHSERIAL1"),
        "stderr names the unknown serial: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dmss_profile_speaks_its_dialect_end_to_end() {
    let sim = sim_with(|o| o.profile = dahua_p2p::dhhttp::Profile::dmss()).await;
    let mut entry = p2p_entry(&sim, "auto", None);
    entry.options.insert("profile".into(), "dmss".into());
    let running = camgate_with(entry).await;
    let frames = ffmpeg_decode(&url(&running), "tcp", 100).await;
    assert!(frames >= 100, "only {frames} frames decoded");
    let obs = sim.observed();
    assert!(
        obs.requests.iter().all(|r| r.method.starts_with("NF")),
        "NFGET/NFPOST only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_punch_with_a_refused_relay_names_both() {
    let sim = sim_with(|o| {
        o.devices[0].punch_fails = true;
        o.relay_refused = true;
    })
    .await;
    let info = sim.info();
    let err = eager_tunnel_error(&sim, &info.serial, &info.password).await;
    assert!(
        err.contains("hole punch failed and the relay refused"),
        "stderr names both failures: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_is_reported_as_offline() {
    let sim = sim_with(|o| o.devices[0].online = false).await;
    let info = sim.info();
    let err = eager_tunnel_error(&sim, &info.serial, &info.password).await;
    assert!(err.contains("is offline"), "stderr says offline: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_clock_two_hours_off_is_corrected_from_the_clouds_date() {
    let sim = sim_with(|_| {}).await;
    let info = sim.info();
    let mut cfg =
        dahua_p2p::client::ClientConfig::new(&info.serial, &info.username, &info.password);
    cfg.cloud = Some(info.cloud.clone());
    cfg.clock_offset = -7200;
    let session = dahua_p2p::client::connect(&cfg)
        .await
        .expect("the session comes up");
    assert!(!session.is_closed());
    let obs = sim.observed();
    let probes = obs.requests_to("/probe/p2psrv");
    assert_eq!(
        probes, 2,
        "one refused for the clock, one accepted after the resync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_that_drops_first_datagrams_is_answered_after_retransmission() {
    let sim = sim_with(|o| {
        o.drop_first_datagram = true;
        o.duplicate_responses = true;
    })
    .await;
    let running = camgate_with(p2p_entry(&sim, "direct", None)).await;
    let frames = ffmpeg_decode(&url(&running), "tcp", 100).await;
    assert!(frames >= 100, "only {frames} frames decoded");
    let dropped = sim.observed().requests.iter().filter(|r| r.dropped).count();
    assert!(
        dropped >= 5,
        "the cloud ignored the first copy of each request ({dropped})"
    );
}
