//! DHIP end to end: every `camgate dhip` command against the DHIP simulator (checked against
//! what the device's state became), `camgate discover`, the REST control routes, `dhip://`
//! cameras read back over RTSP by ffprobe (through the device's RTSP template and through
//! DHAV), `camgate dhip stream` output read by ffmpeg, and the same control through the
//! Dahua P2P tunnel.

mod common;

use std::time::Duration;

use camgate::config::CameraEntry;
use common::*;
use serde_json::{Value, json};
use sim::dhip::{DhipSim, DhipSimOptions};

const CAMGATE: &str = env!("CARGO_BIN_EXE_camgate");

async fn sim() -> DhipSim {
    DhipSim::start(DhipSimOptions::default())
        .await
        .expect("simulator")
}

/// Runs `camgate dhip 127.0.0.1 -p PORT ... ARGS --json`; returns (ok, stdout, stderr).
async fn dhip(sim: &DhipSim, args: &[&str]) -> Peer {
    dhip_as(sim, sim.password(), args).await
}

async fn dhip_as(sim: &DhipSim, password: &str, args: &[&str]) -> Peer {
    let mut all: Vec<String> = vec![
        "dhip".into(),
        "127.0.0.1".into(),
        "-p".into(),
        sim.addr().port().to_string(),
        "--http-port".into(),
        sim.http_addr().unwrap().port().to_string(),
        "-u".into(),
        sim.username().into(),
        "-P".into(),
        password.into(),
        "--json".into(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    run_peer(CAMGATE, &all, Duration::from_secs(30)).await
}

fn json_out(p: &Peer) -> Value {
    assert!(p.ok, "camgate failed: {}", p.stderr);
    serde_json::from_str(p.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", p.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_config_and_time_commands() {
    let sim = sim().await;
    let info = json_out(&dhip(&sim, &["info"]).await);
    assert_eq!(info["deviceType"], "SD-2N-4G");
    let general = json_out(&dhip(&sim, &["config", "General"]).await);
    assert!(general.get("MachineName").is_some());
    let set = json_out(
        &dhip(
            &sim,
            &["config", "General", "--set", r#"{"MachineName":"porch"}"#],
        )
        .await,
    );
    assert_eq!(set["table"]["MachineName"], "porch");
    assert_eq!(sim.state().config["General"]["MachineName"], "porch");
    let t = json_out(&dhip(&sim, &["time"]).await);
    assert_eq!(t["time"].as_str().unwrap().len(), 19);
    json_out(&dhip(&sim, &["time", "--set", "2025-03-04 05:06:07"]).await);
    assert_eq!(&sim.state().time[..16], "2025-03-04 05:06");
    let bad = dhip(&sim, &["config", "General", "--set", "{not json"]).await;
    assert!(
        !bad.ok && bad.stderr.contains("not valid JSON"),
        "{}",
        bad.stderr
    );
    let wrong = dhip_as(&sim, "wrong", &["info"]).await;
    assert!(
        !wrong.ok && wrong.stderr.contains("wrong password"),
        "{}",
        wrong.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_commands_change_the_devices_accounts() {
    let sim = sim().await;
    json_out(
        &dhip(
            &sim,
            &["users", "add", "guard", "guard-pass1", "--memo", "night"],
        )
        .await,
    );
    assert!(
        sim.state()
            .users
            .iter()
            .any(|u| u.name == "guard" && u.memo == "night")
    );
    json_out(
        &dhip(
            &sim,
            &["users", "modify", "guard", "--set", r#"{"Memo":"day"}"#],
        )
        .await,
    );
    assert!(
        sim.state()
            .users
            .iter()
            .any(|u| u.name == "guard" && u.memo == "day")
    );
    let list = json_out(&dhip(&sim, &["users"]).await);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|u| u["Name"] == "guard")
    );
    json_out(&dhip(&sim, &["users", "groups"]).await);
    json_out(&dhip(&sim, &["users", "active"]).await);
    json_out(&dhip(&sim, &["users", "delete", "guard"]).await);
    assert!(!sim.state().users.iter().any(|u| u.name == "guard"));
    let again = dhip(&sim, &["users", "delete", "guard"]).await;
    assert!(!again.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_commands_move_the_head() {
    let sim = sim().await;
    json_out(&dhip(&sim, &["ptz", "absolute", "--pan", "120", "--tilt", "30"]).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let st = json_out(&dhip(&sim, &["ptz", "status"]).await);
    assert!(
        (st["pan_deg"].as_f64().unwrap() - 120.0).abs() < 1.0,
        "{st}"
    );
    json_out(&dhip(&sim, &["ptz", "preset", "set", "4"]).await);
    assert!(sim.state().ptz[0].presets.contains_key(&4));
    let presets = json_out(&dhip(&sim, &["ptz", "presets"]).await);
    assert!(presets.as_array().unwrap().iter().any(|p| p["Index"] == 4));
    let before = sim.state().ptz[0].pan;
    json_out(
        &dhip(
            &sim,
            &["ptz", "move", "Right", "--speed", "8", "--ms", "400"],
        )
        .await,
    );
    assert_ne!(sim.state().ptz[0].pan, before);
    assert_eq!(sim.state().ptz[0].last_code.as_deref(), Some("Right"));
    json_out(&dhip(&sim, &["ptz", "zoom", "in", "--ms", "100"]).await);
    assert_eq!(sim.state().ptz[0].last_code.as_deref(), Some("ZoomTele"));
    json_out(&dhip(&sim, &["ptz", "focus", "far", "--ms", "50"]).await);
    json_out(&dhip(&sim, &["ptz", "iris", "open", "--ms", "50"]).await);
    json_out(&dhip(&sim, &["ptz", "tour", "start", "1"]).await);
    assert_eq!(sim.state().ptz[0].tour, Some(1));
    json_out(&dhip(&sim, &["ptz", "tour", "stop", "1"]).await);
    json_out(&dhip(&sim, &["ptz", "tours"]).await);
    json_out(&dhip(&sim, &["ptz", "preset", "goto", "4"]).await);
    json_out(&dhip(&sim, &["ptz", "home"]).await);
    let bad = dhip(&sim, &["ptz", "absolute", "--pan", "400", "--tilt", "0"]).await;
    assert!(
        !bad.ok && bad.stderr.contains("out of range"),
        "{}",
        bad.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_download_firmware_call_and_reboot_commands() {
    let sim = sim().await;
    let out = dhip(
        &sim,
        &[
            "files",
            "--start",
            "2024-05-06 00:00:00",
            "--end",
            "2024-05-06 23:59:59",
        ],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let files: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(files.len(), 5);
    let dir = std::env::temp_dir().join(format!("camgate-dhip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dav = dir.join("clip.dav");
    let d = json_out(
        &dhip(
            &sim,
            &[
                "download",
                files[0]["path"].as_str().unwrap(),
                dav.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(
        d["bytes"].as_u64().unwrap(),
        std::fs::metadata(&dav).unwrap().len()
    );
    assert!(std::fs::read(&dav).unwrap().starts_with(b"DHAV"));
    let state = json_out(&dhip(&sim, &["firmware"]).await);
    assert!(state.is_object());
    let pkg = dir.join("fw.bin");
    std::fs::write(&pkg, vec![7u8; 40_000]).unwrap();
    let refused = dhip(&sim, &["firmware", "--upgrade", pkg.to_str().unwrap()]).await;
    assert!(
        !refused.ok && refused.stderr.contains("--confirm"),
        "{}",
        refused.stderr
    );
    assert!(sim.state().upgrader.chunks.is_empty());
    json_out(
        &dhip(
            &sim,
            &["firmware", "--upgrade", pkg.to_str().unwrap(), "--confirm"],
        )
        .await,
    );
    assert_eq!(sim.state().upgrader.chunks, vec![32_768, 7_232]);
    let raw = json_out(&dhip(&sim, &["call", "magicBox.getSerialNo"]).await);
    assert!(raw["params"]["sn"].is_string(), "{raw}");
    let failed = dhip(&sim, &["call", "nothing.here"]).await;
    assert!(
        !failed.ok && failed.stderr.contains("405"),
        "{}",
        failed.stderr
    );
    json_out(&dhip(&sim, &["reboot"]).await);
    assert!(sim.observed().iter().any(|r| r.method == "magicBox.reboot"));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_stream_commands_write_files_real_tools_read() {
    let sim = sim().await;
    let dir = std::env::temp_dir().join(format!("camgate-dhip-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jpg = dir.join("snap.jpg");
    json_out(&dhip(&sim, &["snapshot", jpg.to_str().unwrap()]).await);
    let probe = run_peer(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width",
            "-of",
            "csv=p=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([jpg.to_str().unwrap().to_string()])
        .collect::<Vec<_>>(),
        Duration::from_secs(20),
    )
    .await;
    assert!(probe.ok && probe.stdout.starts_with("mjpeg"), "{probe:?}");
    let dav = dir.join("live.dav");
    json_out(&dhip(&sim, &["stream", dav.to_str().unwrap(), "--duration", "4"]).await);
    // ffmpeg reads the .dav (its dhav demuxer) and counts the pictures.
    let count = run_peer(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([dav.to_str().unwrap().to_string()])
        .collect::<Vec<_>>(),
        Duration::from_secs(30),
    )
    .await;
    assert!(count.ok, "{count:?}");
    let line = count.stdout.trim();
    let (codec, frames) = line.split_once(',').expect("codec,frames");
    assert_eq!(codec, "h264");
    let frames: u32 = frames.parse().unwrap();
    assert!(frames >= 75, "{frames} frames in 4 s");
    let mkv = dir.join("live.mkv");
    let conv = run_peer(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            dav.to_str().unwrap(),
            "-c",
            "copy",
            mkv.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
        Duration::from_secs(30),
    )
    .await;
    assert!(conv.ok && conv.stderr.trim().is_empty(), "{conv:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_command_prints_one_json_line_per_event() {
    let sim = DhipSim::start(DhipSimOptions {
        periodic_event: Some(("VideoMotion".into(), Duration::from_millis(200))),
        ..DhipSimOptions::default()
    })
    .await
    .unwrap();
    let out = dhip_with_timeout(&sim, &["events", "--codes", "VideoMotion"], 3).await;
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 5, "{} events: {}", events.len(), out.stderr);
    assert!(events.iter().all(|e| e["code"] == "VideoMotion"));
}

/// Runs a command that never ends by itself for `secs`, then interrupts it.
async fn dhip_with_timeout(sim: &DhipSim, args: &[&str], secs: u64) -> Peer {
    let mut all: Vec<String> = vec![
        "dhip".into(),
        "127.0.0.1".into(),
        "-p".into(),
        sim.addr().port().to_string(),
        "-P".into(),
        sim.password().into(),
        "--json".into(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    run_peer(CAMGATE, &all, Duration::from_secs(secs)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_finds_the_device_at_the_given_target() {
    let sim = sim().await;
    let target = sim.discovery_addr().unwrap().to_string();
    let out = run_peer(
        CAMGATE,
        &["discover", "--target", &target, "--timeout", "1", "--json"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        Duration::from_secs(10),
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let devices: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(devices.len(), 1, "{}", out.stdout);
    assert_eq!(devices[0]["port"], sim.addr().port());
    assert_eq!(devices[0]["ip"], "127.0.0.1");
}

fn dhip_entry(sim: &DhipSim, name: &str, media: &str, rtsp_port: Option<u16>) -> CameraEntry {
    let mut e = camera_entry(
        name,
        &format!("dhip://127.0.0.1:{}?channel=0&subtype=0", sim.addr().port()),
        Some((sim.username(), sim.password())),
        false,
    );
    e.options.insert("media".into(), media.into());
    e.options.insert(
        "http_port".into(),
        i64::from(sim.http_addr().unwrap().port()).into(),
    );
    if let Some(p) = rtsp_port {
        e.options.insert("rtsp_port".into(), i64::from(p).into());
    }
    e.start_timeout_s = Some(15.0);
    e
}

async fn camgate_with(entries: Vec<CameraEntry>) -> camgate::serve::Running {
    serve_entries(entries).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhip_cameras_are_read_over_rtsp_through_the_template_and_through_dhav() {
    let sim = sim().await;
    // The device's RTSP server at Dahua's realmonitor path.
    let cam = sim::rtsp_camera::RtspCamera::start(sim::rtsp_camera::RtspCameraOptions {
        path: "cam/realmonitor".into(),
        credentials: Some((sim.username().into(), sim.password().into())),
        ..sim::rtsp_camera::RtspCameraOptions::default()
    })
    .await
    .unwrap();
    let rtsp_port: u16 = cam
        .info()
        .url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let running = camgate_with(vec![
        dhip_entry(&sim, "viartsp", "rtsp", Some(rtsp_port)),
        dhip_entry(&sim, "viadhav", "dhav", None),
    ])
    .await;
    let addr = running.rtsp.local_addr();
    for name in ["viartsp", "viadhav"] {
        let url = format!("rtsp://{addr}/{name}");
        let codecs = ffprobe_codecs(&url).await;
        assert_eq!(
            codecs.first().map(String::as_str),
            Some("h264"),
            "{name}: {codecs:?}"
        );
        assert!(ffmpeg_decode(&url, "tcp", 50).await >= 50, "{name}");
    }
    assert!(
        sim.observed()
            .iter()
            .any(|r| r.method == "streamReader.create"),
        "the DHAV camera used RPC_Loadfile"
    );
}

/// Shutdown ends what camgate holds on a DHIP device: the DHAV stream reader (stopped and
/// destroyed) and both logins (HTTP RPC2 for the media, DHIP for control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_dhav_stream_and_logs_out_of_the_device() {
    let sim = sim().await;
    let running = camgate_with(vec![dhip_entry(&sim, "door", "dhav", None)]).await;
    let url = format!("rtsp://{}/door", running.rtsp.local_addr());
    let (status, _) = http_json(running.http_addr, "GET", "/api/cameras/door/info", None).await;
    assert_eq!(status, 200);
    let reader = tokio::spawn(async move { ffmpeg_decode(&url, "tcp", 100).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let count = |m: &str| sim.observed().iter().filter(|r| r.method == m).count();
    assert_eq!(count("global.logout"), 0);
    assert!(running.shutdown().await, "shutdown did not finish in time");
    assert_eq!(count("streamReader.stop"), 1);
    assert_eq!(count("streamReader.destroy"), 1);
    assert_eq!(count("global.logout"), 2, "the HTTP and the DHIP logins");
    // The reader was closed, not left hanging (ffmpeg ends before its 100 frames).
    assert!(
        tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .is_ok()
    );
}

async fn http_json(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut resp = dhip::http::send(
        &addr.to_string(),
        method,
        path,
        &[("Content-Type", "application/json".to_string())],
        body.as_bytes(),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let bytes = resp.bytes(1 << 20).await.unwrap();
    (
        resp.status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_routes_control_the_device() {
    let sim = DhipSim::start(DhipSimOptions {
        periodic_event: Some(("VideoMotion".into(), Duration::from_millis(100))),
        ..DhipSimOptions::default()
    })
    .await
    .unwrap();
    let mut test_cam = camera_entry("plain", "test://plain?video=h264&audio=none", None, false);
    test_cam.start_timeout_s = Some(5.0);
    let running = camgate_with(vec![dhip_entry(&sim, "door", "dhav", None), test_cam]).await;
    let api = running.http_addr;
    let (s, info) = http_json(api, "GET", "/api/cameras/door/info", None).await;
    assert_eq!((s, info["deviceType"].as_str()), (200, Some("SD-2N-4G")));
    let (s, g) = http_json(api, "GET", "/api/cameras/door/config/General", None).await;
    assert_eq!(s, 200);
    let mut g2 = g.clone();
    g2["MachineName"] = json!("door-cam");
    let (s, _) = http_json(api, "PUT", "/api/cameras/door/config/General", Some(g2)).await;
    assert_eq!(s, 200);
    assert_eq!(sim.state().config["General"]["MachineName"], "door-cam");
    let (s, _) = http_json(
        api,
        "POST",
        "/api/cameras/door/ptz",
        Some(json!({"action": "preset", "op": "set", "index": 7})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(sim.state().ptz[0].presets.contains_key(&7));
    let (s, _) = http_json(
        api,
        "POST",
        "/api/cameras/door/ptz",
        Some(json!({"action": "move", "direction": "Up", "ms": 100})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(sim.state().ptz[0].last_code.as_deref(), Some("Up"));
    let (s, e) = http_json(
        api,
        "POST",
        "/api/cameras/door/ptz",
        Some(json!({"action": "spin"})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = http_json(api, "GET", "/api/cameras/plain/info", None).await;
    assert_eq!(s, 404);
    assert!(e["error"].as_str().unwrap().contains("no control"), "{e}");
    let (s, _) = http_json(api, "GET", "/api/cameras/nobody/info", None).await;
    assert_eq!(s, 404);
    // Server-sent events: two clients get the motion events over one device connection.
    let open = || async {
        let r = dhip::http::send(
            &api.to_string(),
            "GET",
            "/api/cameras/door/events",
            &[],
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        assert!(
            r.header("Content-Type")
                .unwrap()
                .starts_with("text/event-stream")
        );
        r
    };
    let (mut a, mut b) = (open().await, open().await);
    for resp in [&mut a, &mut b] {
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while text.matches("\"VideoMotion\"").count() < 3 {
            let c = tokio::time::timeout_at(deadline, resp.chunk())
                .await
                .expect("events in time")
                .unwrap()
                .expect("stream open");
            text.push_str(&String::from_utf8_lossy(&c));
        }
        assert!(text.contains("event: event"), "{text}");
    }
    let attaches = sim
        .observed()
        .iter()
        .filter(|r| r.method == "eventManager.attach")
        .count();
    assert_eq!(attaches, 1, "one device connection for both clients");
    drop((a, b));
    let (s, _) = http_json(api, "POST", "/api/cameras/door/reboot", None).await;
    assert_eq!(s, 200);
    assert!(sim.observed().iter().any(|r| r.method == "magicBox.reboot"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_works_through_the_p2p_tunnel() {
    use sim::dahua_p2p::{DahuaP2pSim, DahuaP2pSimOptions, DeviceOptions};
    let dsim = sim().await;
    let mut dev = DeviceOptions::new("SIM0DAHUA000001");
    dev.username = dsim.username().into();
    dev.password = dsim.password().into();
    dev.services.insert(5000, dsim.addr());
    dev.services.insert(80, dsim.http_addr().unwrap());
    let psim = DahuaP2pSim::start(DahuaP2pSimOptions {
        devices: vec![dev],
        ..DahuaP2pSimOptions::default()
    })
    .await
    .unwrap();
    let cloud = psim.info().cloud.clone();
    let p2p = |args: &[&str]| {
        let mut all: Vec<String> = [
            "dhip",
            "SIM0DAHUA000001",
            "--p2p",
            "--cloud",
            &cloud,
            "-P",
            dsim.password(),
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.extend(args.iter().map(|s| s.to_string()));
        async move { run_peer(CAMGATE, &all, Duration::from_secs(60)).await }
    };
    let info = json_out(&p2p(&["info"]).await);
    assert_eq!(info["deviceType"], "SD-2N-4G");
    json_out(&p2p(&["ptz", "preset", "set", "9"]).await);
    assert!(dsim.state().ptz[0].presets.contains_key(&9));
    json_out(&p2p(&["config", "General", "--set", r#"{"MachineName":"remote"}"#]).await);
    assert_eq!(dsim.state().config["General"]["MachineName"], "remote");
    let dir = std::env::temp_dir().join(format!("camgate-dhip-p2p-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jpg = dir.join("p2p.jpg");
    json_out(&p2p(&["snapshot", jpg.to_str().unwrap()]).await);
    assert!(std::fs::read(&jpg).unwrap().starts_with(&[0xff, 0xd8]));
    std::fs::remove_dir_all(&dir).ok();
    // REST control of a camera reached by serial number.
    let mut e = camera_entry(
        "remote",
        "dahua-p2p://SIM0DAHUA000001?channel=1&subtype=0",
        Some((dsim.username(), dsim.password())),
        false,
    );
    e.options.insert("cloud".into(), cloud.clone().into());
    let running = camgate_with(vec![e]).await;
    let (s, _) = http_json(
        running.http_addr,
        "POST",
        "/api/cameras/remote/ptz",
        Some(json!({"action": "preset", "op": "set", "index": 11})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(dsim.state().ptz[0].presets.contains_key(&11));
}
