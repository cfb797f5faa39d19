//! camgate's DHIP client library (`dhip::client`, `dhip::methods`, `dhip::http`) against the
//! DHIP device simulator over loopback: login and its failures, keep-alive, re-login after
//! expiry, reconnects, multiplexed calls, pushes on the control connection, the event stream,
//! every typed method (checked against the simulator's state), and the HTTP side.

use std::time::Duration;

use dhip::auth::LoginError;
use dhip::client::{Client, ClientConfig, Error, EventItem};
use dhip::codes;
use dhip::dhav::{Demuxer, PacketType, VideoCodec};
use dhip::http::HttpClient;
use dhip::methods::{PresetArg, PtzAddressing, PtzPolicy};
use serde_json::{Value, json};
use sim::dhip::{
    DhipSim, DhipSimOptions, FragmentModel, FragmentReplies, StatusKey, TimeStyle, VendorKey,
};

fn manual() -> DhipSimOptions {
    DhipSimOptions {
        real_time: false,
        ..DhipSimOptions::default()
    }
}

async fn connect(sim: &DhipSim) -> Result<Client, Error> {
    connect_as(sim, sim.username(), sim.password()).await
}

async fn connect_as(sim: &DhipSim, user: &str, pass: &str) -> Result<Client, Error> {
    let mut cfg = ClientConfig::new(user, pass);
    cfg.call_timeout = Duration::from_secs(5);
    Client::connect("127.0.0.1", sim.addr().port(), cfg).await
}

#[tokio::test]
async fn logs_in_reads_info_and_logs_out() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    assert_eq!(c.keepalive_interval().await, Some(Duration::from_secs(60)));
    let info = c.info().await.unwrap();
    assert_eq!(info["deviceType"], "SD-2N-4G");
    assert!(info["serialNumber"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(info["systemInfo"]["serialNumber"].is_string());
    let session = c.session().await.unwrap();
    assert!(
        sim.state()
            .sessions
            .iter()
            .any(|s| s.active && s.id.to_string() == session.to_string())
    );
    // Stage 2 reused the challenge's session in the header.
    let logins: Vec<_> = sim
        .observed()
        .into_iter()
        .filter(|r| r.method == "global.login")
        .collect();
    assert_eq!(logins.len(), 2);
    assert_eq!(
        logins[1].header_session.map(|s| s.to_string()),
        Some(session.to_string())
    );
    c.logout().await.unwrap();
    assert!(sim.state().sessions.iter().all(|s| !s.active));
}

#[tokio::test]
async fn wrong_password_counts_down_then_the_account_locks() {
    let sim = DhipSim::start(DhipSimOptions {
        max_login_failures: 3,
        ..manual()
    })
    .await
    .unwrap();
    let e = connect_as(&sim, "admin", "nope").await.unwrap_err();
    match &e {
        Error::Login {
            source:
                LoginError::WrongPassword {
                    attempts_left: Some(2),
                    ..
                },
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("2 attempts left"), "{e}");
    let _ = connect_as(&sim, "admin", "nope").await.unwrap_err();
    let _ = connect_as(&sim, "admin", "nope").await.unwrap_err();
    let e = connect_as(&sim, "admin", sim.password()).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Login {
                source: LoginError::Locked { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("locked"), "{e}");
    // After the lock period the right password works again.
    sim.advance_clock(Duration::from_secs(301));
    connect(&sim).await.unwrap();
}

#[tokio::test]
async fn an_expired_session_is_logged_in_again_transparently() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    assert_eq!(c.logins(), 1);
    // No traffic for longer than the device keeps a session.
    sim.advance_clock(Duration::from_secs(60 * 3 + 1));
    let t = c.device_type().await.unwrap();
    assert_eq!(t, "SD-2N-4G");
    assert_eq!(c.logins(), 2, "one re-login");
    let refused = sim
        .observed()
        .into_iter()
        .filter(|r| r.method == "magicBox.getDeviceType")
        .count();
    assert_eq!(refused, 2, "the call was repeated once after the re-login");
}

#[tokio::test]
async fn keep_alives_hold_the_session_at_the_devices_interval() {
    let sim = DhipSim::start(DhipSimOptions {
        keep_alive_interval: 1,
        ..DhipSimOptions::default()
    })
    .await
    .unwrap();
    let c = connect(&sim).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let kas: Vec<_> = sim
        .observed()
        .into_iter()
        .filter(|r| r.method == "global.keepAlive")
        .collect();
    assert!(kas.len() >= 3, "only {} keep-alives", kas.len());
    assert_eq!(kas[0].params["timeout"], 1);
    assert_eq!(c.logins(), 1);
    c.device_type().await.unwrap();
    assert_eq!(c.logins(), 1, "the session never lapsed");
}

#[tokio::test]
async fn a_dropped_connection_is_reconnected_on_the_next_call() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    sim.kill_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.device_type().await.unwrap(), "SD-2N-4G");
    assert_eq!(c.logins(), 2);
}

#[tokio::test]
async fn many_calls_in_flight_on_one_connection_get_their_own_replies() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                c.device_type().await.map(Value::from)
            } else {
                c.get_config("General").await
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let v = t.await.unwrap().unwrap();
        if i % 2 == 0 {
            assert_eq!(v, "SD-2N-4G");
        } else {
            assert!(v.get("MachineName").is_some(), "{v}");
        }
    }
    let conns: std::collections::HashSet<u64> = sim.observed().iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 1, "one connection");
}

#[tokio::test]
async fn pushes_on_the_control_connection_are_not_taken_for_replies() {
    let sim = DhipSim::start(DhipSimOptions {
        push_on_control: true,
        ..manual()
    })
    .await
    .unwrap();
    let c = connect(&sim).await.unwrap();
    c.call("eventManager.attach", json!({"codes": ["All"]}))
        .await
        .unwrap();
    for i in 0..20 {
        sim.push_event("VideoMotion", "Start", json!({"n": i}));
        assert_eq!(c.device_type().await.unwrap(), "SD-2N-4G");
    }
}

#[tokio::test]
async fn events_stream_with_their_codes_and_come_back_after_a_drop() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let mut ev = c.events(vec!["VideoMotion".into()]);
    match ev.next().await.unwrap() {
        EventItem::Attached { sid } => assert_eq!(sid, Some(sim::dhip::EVENT_SID)),
        other => panic!("{other:?}"),
    }
    assert!(sim.push_event("VideoMotion", "Start", json!({"UTC": 1739830027.0})) >= 1);
    match ev.next().await.unwrap() {
        EventItem::Event(e) => {
            assert_eq!(
                (e.code.as_str(), e.action.as_str()),
                ("VideoMotion", "Start")
            );
            assert_eq!(e.utc, Some(1_739_830_027.0));
        }
        other => panic!("{other:?}"),
    }
    sim.kill_connections();
    match tokio::time::timeout(Duration::from_secs(5), ev.next())
        .await
        .unwrap()
        .unwrap()
    {
        EventItem::Disconnected { .. } => {}
        other => panic!("{other:?}"),
    }
    match tokio::time::timeout(Duration::from_secs(10), ev.next())
        .await
        .unwrap()
        .unwrap()
    {
        EventItem::Attached { .. } => {}
        other => panic!("{other:?}"),
    }
    sim.push_event("VideoMotion", "Stop", json!({}));
    match ev.next().await.unwrap() {
        EventItem::Event(e) => assert_eq!(e.action, "Stop"),
        other => panic!("{other:?}"),
    }
    ev.close().await;
    assert!(
        sim.observed()
            .iter()
            .any(|r| r.method == "eventManager.detach")
    );
}

#[tokio::test]
async fn a_refused_login_ends_the_event_stream_without_retrying() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    // The password changes on the device; the event stream's own login fails.
    c.modify_password("admin", sim.password(), "changed-pass1")
        .await
        .unwrap();
    let mut ev = c.events(vec!["All".into()]);
    match tokio::time::timeout(Duration::from_secs(5), ev.next())
        .await
        .unwrap()
        .unwrap()
    {
        EventItem::Failed(Error::Login { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(ev.next().await.is_none());
}

#[tokio::test]
async fn config_is_read_merged_and_written_back_whole() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let before = c.get_config("General").await.unwrap();
    let written = c
        .patch_config("General", &json!({"MachineName": "porch"}))
        .await
        .unwrap();
    assert_eq!(written["MachineName"], "porch");
    let stored = &sim.state().config["General"];
    assert_eq!(stored["MachineName"], "porch");
    // Every other key survived the read-modify-write.
    for (k, v) in before.as_object().unwrap() {
        if k != "MachineName" {
            assert_eq!(&stored[k], v, "{k}");
        }
    }
    let set = sim
        .observed()
        .into_iter()
        .find(|r| r.method == "configManager.setConfig")
        .unwrap();
    assert_eq!(set.params["name"], "General");
    // Per-channel tables merge element by element.
    let titles = c
        .patch_config("ChannelTitle", &json!([{"Name": "Lobby"}]))
        .await
        .unwrap();
    assert_eq!(titles[0]["Name"], "Lobby");
    assert_eq!(sim.state().config["ChannelTitle"][0]["Name"], "Lobby");
}

#[tokio::test]
async fn users_are_added_modified_and_deleted() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    c.add_user("guard", "guard-pass1", "user", "night")
        .await
        .unwrap();
    let u = sim
        .state()
        .users
        .into_iter()
        .find(|u| u.name == "guard")
        .unwrap();
    assert_eq!((u.group.as_str(), u.memo.as_str()), ("user", "night"));
    let e = c
        .add_user("guard", "x-pass-123", "user", "")
        .await
        .unwrap_err();
    assert!(e.code().is_some(), "{e:?}");
    c.modify_user("guard", &json!({"Memo": "day"}))
        .await
        .unwrap();
    assert!(
        sim.state()
            .users
            .iter()
            .any(|u| u.name == "guard" && u.memo == "day")
    );
    assert!(
        c.users()
            .await
            .unwrap()
            .iter()
            .any(|u| u["Name"] == "guard")
    );
    assert!(
        !c.groups().await.unwrap().is_empty(),
        "groups as a bare list"
    );
    assert!(!c.active_users().await.unwrap().is_empty());
    c.delete_user("guard").await.unwrap();
    assert!(!sim.state().users.iter().any(|u| u.name == "guard"));
    assert!(c.delete_user("guard").await.is_err());
}

#[tokio::test]
async fn ptz_moves_presets_positions_and_status() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let p = PtzPolicy::default();
    c.ptz_absolute(&p, 0, 90.0, 45.0, 0.0).await.unwrap();
    sim.advance_clock(Duration::from_secs(10));
    let s = &sim.state().ptz[0];
    assert!(
        (s.pan - 90.0).abs() < 0.5 && (s.tilt - 45.0).abs() < 0.5,
        "{s:?}"
    );
    let st = c.ptz_status(&p, 0).await.unwrap();
    assert!((st.pan_deg.unwrap() - 90.0).abs() < 0.5, "{st:?}");
    assert!((st.tilt_deg.unwrap() - 45.0).abs() < 0.5, "{st:?}");
    c.ptz_preset(&p, 0, "set", 3).await.unwrap();
    assert!(sim.state().ptz[0].presets.contains_key(&3));
    c.ptz_absolute(&p, 0, 200.0, 10.0, 0.0).await.unwrap();
    sim.advance_clock(Duration::from_secs(10));
    c.ptz_preset(&p, 0, "goto", 3).await.unwrap();
    sim.advance_clock(Duration::from_secs(10));
    let s = &sim.state().ptz[0];
    assert!((s.pan - 90.0).abs() < 0.5, "back at preset 3: {s:?}");
    assert!(
        c.ptz_presets(&p, 0)
            .await
            .unwrap()
            .iter()
            .any(|x| x["Index"] == 3)
    );
    // A timed move: the head turns while started, then stops.
    let before = sim.state().ptz[0].pan;
    let c2 = c.clone();
    let mv = tokio::spawn(async move {
        c2.ptz_move(
            &PtzPolicy::default(),
            0,
            "Left",
            8,
            Duration::from_millis(300),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(sim.state().ptz[0].moving);
    sim.advance_clock(Duration::from_secs(1));
    mv.await.unwrap().unwrap();
    let after = &sim.state().ptz[0];
    assert!(!after.moving);
    assert_ne!(after.pan, before, "it moved");
    assert!(!c.ptz_is_moving(&p, 0).await.unwrap());
    assert!(c.ptz_absolute(&p, 0, 360.0, 0.0, 0.0).await.is_err());
    c.ptz_preset(&p, 0, "clear", 3).await.unwrap();
    assert!(!sim.state().ptz[0].presets.contains_key(&3));
    c.ptz_home(&p, 0).await.unwrap();
    assert!(
        c.ptz_move(&p, 0, "Sideways", 1, Duration::ZERO)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn ptz_through_an_instance_object_and_postion_status() {
    let sim = DhipSim::start(DhipSimOptions {
        ptz_requires_object: true,
        ptz: sim::dhip::PtzPolicy {
            status_key: StatusKey::Postion,
            preset_arg1: true,
            ..Default::default()
        },
        ..manual()
    })
    .await
    .unwrap();
    let c = connect(&sim).await.unwrap();
    let plain = PtzPolicy::default();
    assert!(
        c.ptz_preset(&plain, 0, "set", 2).await.is_err(),
        "needs an object"
    );
    let p = PtzPolicy {
        addressing: PtzAddressing::Instance,
        preset_arg: PresetArg::Arg1,
        ..PtzPolicy::default()
    };
    c.ptz_preset(&p, 0, "set", 2).await.unwrap();
    assert!(sim.state().ptz[0].presets.contains_key(&2));
    let st = c.ptz_status(&p, 0).await.unwrap();
    assert!(
        st.raw.get("Postion").is_some() && st.pan_deg.is_some(),
        "{st:?}"
    );
}

#[tokio::test]
async fn time_in_either_shape_and_set() {
    for style in [TimeStyle::InResult, TimeStyle::InParams] {
        let sim = DhipSim::start(DhipSimOptions {
            time_style: style,
            ..manual()
        })
        .await
        .unwrap();
        let c = connect(&sim).await.unwrap();
        let t = c.current_time().await.unwrap();
        assert_eq!(t, sim.state().time, "{style:?}");
        c.set_current_time("2025-01-02 03:04:05").await.unwrap();
        assert_eq!(sim.state().time, "2025-01-02 03:04:05");
        assert!(c.set_current_time("yesterday").await.is_err());
    }
}

#[tokio::test]
async fn vendor_key_case_and_unknown_methods() {
    let sim = DhipSim::start(DhipSimOptions {
        vendor_key: VendorKey::Upper,
        ..manual()
    })
    .await
    .unwrap();
    let c = connect(&sim).await.unwrap();
    assert!(!c.vendor().await.unwrap().is_empty());
    let e = c.call("deviceInfo.getVendor", json!({})).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::METHOD_NOT_ALLOWED));
    // request() returns the envelope instead.
    let r = c.request("deviceInfo.getVendor", json!({})).await.unwrap();
    assert_eq!(r.error.unwrap().code, 405);
    sim.set_error_override("magicBox.getSerialNo", codes::AUTHORITY_CHECK, None);
    let e = c.serial_number().await.unwrap_err();
    assert!(e.to_string().contains("authority check"), "{e}");
}

#[tokio::test]
async fn files_are_found_in_batches_and_the_finder_is_destroyed() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let files = c
        .find_files(0, "2024-05-06 00:00:00", "2024-05-06 23:59:59", &["dav"], 2)
        .await
        .unwrap();
    assert_eq!(files.len(), 5);
    assert!(
        files
            .iter()
            .all(|f| f.path.starts_with("/mnt/sd/2024-05-06/"))
    );
    let nexts = sim
        .observed()
        .iter()
        .filter(|r| r.method == "mediaFileFind.findNextFile")
        .count();
    assert_eq!(nexts, 3, "2 + 2 + 1");
    assert!(
        sim.observed()
            .iter()
            .any(|r| r.method == "mediaFileFind.destroy")
    );
    assert_eq!(sim.state().objects, 0);
    let none = c
        .find_files(
            0,
            "2020-01-01 00:00:00",
            "2020-01-02 00:00:00",
            &["dav"],
            16,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn firmware_upload_needs_confirmation_and_sends_exact_chunks() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let package = bytes::Bytes::from((0..70_000u32).map(|i| i as u8).collect::<Vec<_>>());
    assert!(matches!(
        c.upgrade(package.clone(), false, |_, _| {}).await,
        Err(Error::Refused(_))
    ));
    assert!(sim.state().upgrader.chunks.is_empty());
    let mut last = (0, 0);
    c.upgrade(package.clone(), true, |s, t| last = (s, t))
        .await
        .unwrap();
    assert_eq!(last, (70_000, 70_000));
    let up = sim.state().upgrader;
    assert_eq!(up.chunks, vec![32_768, 32_768, 4_464]);
    assert_eq!(up.data, package.to_vec());
    assert_eq!(up.executed, 1);
    assert!(c.upgrade_state().await.unwrap().is_object());
}

#[tokio::test]
async fn multicall_and_service_listing() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let r = c
        .multicall(&[
            ("magicBox.getDeviceType".into(), json!({})),
            ("magicBox.getSerialNo".into(), json!({})),
        ])
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["params"]["type"], "SD-2N-4G");
    assert!(
        c.list_services()
            .await
            .unwrap()
            .iter()
            .any(|s| s == "magicBox")
    );
    assert!(
        c.list_methods("magicBox")
            .await
            .unwrap()
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.contains("getDeviceType")))
    );
}

#[tokio::test]
async fn fragmented_replies_in_both_models_reach_the_caller_whole() {
    for model in [FragmentModel::PerPacketJson, FragmentModel::TotalLength] {
        let sim = DhipSim::start(DhipSimOptions {
            fragment: Some(FragmentReplies {
                method: "magicBox.getSystemInfo".into(),
                model,
                pieces: 3,
                data: b"AAAABBBBCCCC".to_vec(),
            }),
            ..manual()
        })
        .await
        .unwrap();
        let c = connect(&sim).await.unwrap();
        let (r, data) = c
            .request_raw(&dhip::client::Call::new(
                "magicBox.getSystemInfo",
                json!({}),
            ))
            .await
            .unwrap();
        assert_eq!(r.params["deviceType"], "SD-2N-4G", "{model:?}");
        if model == FragmentModel::PerPacketJson {
            assert_eq!(&data[..], b"AAAABBBBCCCC");
        }
        assert_eq!(
            c.device_type().await.unwrap(),
            "SD-2N-4G",
            "{model:?} in step"
        );
    }
}

fn http(sim: &DhipSim, pass: &str) -> HttpClient {
    let mut cfg = ClientConfig::new(sim.username(), pass);
    cfg.call_timeout = Duration::from_secs(5);
    HttpClient::new("127.0.0.1", sim.http_addr().unwrap().port(), cfg)
}

#[tokio::test]
async fn http_rpc2_logs_in_calls_and_downloads() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let h = http(&sim, sim.password());
    h.login().await.unwrap();
    let v = h
        .call("magicBox.getDeviceType", json!({}), None)
        .await
        .unwrap();
    assert_eq!(v["type"], "SD-2N-4G");
    let path = sim.options().files[0].path.clone();
    let mut out = Vec::new();
    let n = h.download(&path, &mut out).await.unwrap();
    assert_eq!(n as usize, out.len());
    let mut d = Demuxer::new();
    d.push(&out);
    let first = d.next_packet().expect("a DHAV recording");
    assert_eq!(first.kind, PacketType::VideoKey);
    let mut missing = Vec::new();
    let e = h
        .download("/mnt/sd/none.dav", &mut missing)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(404));
    h.logout().await.unwrap();
    let bad = http(&sim, "wrong");
    assert!(matches!(bad.login().await, Err(Error::Login { .. })));
}

#[tokio::test]
async fn live_dhav_carries_h264_with_parameter_sets_first() {
    let sim = DhipSim::start(DhipSimOptions::default()).await.unwrap();
    let h = http(&sim, sim.password());
    h.login().await.unwrap();
    let mut out = Vec::new();
    let n = h
        .stream(0, 1, Duration::from_millis(1500), &mut out)
        .await
        .unwrap();
    assert!(n > 10_000, "{n} bytes");
    let mut d = Demuxer::new();
    d.push(&out);
    let mut video = 0;
    let mut audio = 0;
    let mut first = None;
    while let Some(p) = d.next_packet() {
        match p.kind {
            PacketType::VideoKey | PacketType::VideoP => {
                first.get_or_insert(p.clone());
                video += 1;
            }
            PacketType::Audio => audio += 1,
            _ => {}
        }
    }
    let first = first.unwrap();
    assert_eq!(first.kind, PacketType::VideoKey);
    assert_eq!(first.video.unwrap().codec, Some(VideoCodec::H264(2)));
    let nal_types: Vec<u8> = media::codec::nal::annexb_units(&first.payload)
        .iter()
        .map(|n| n[0] & 0x1f)
        .collect();
    assert_eq!(&nal_types[..3], &[7, 8, 5]);
    assert!(video >= 25, "{video} pictures in 1.5 s");
    assert!(audio > 0);
    for m in [
        "streamReader.create",
        "streamReader.stop",
        "streamReader.destroy",
    ] {
        assert!(sim.observed().iter().any(|r| r.method == m), "{m}");
    }
}

#[tokio::test]
async fn snapshot_uses_digest_and_returns_a_jpeg() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let jpeg = http(&sim, sim.password()).snapshot(1).await.unwrap();
    assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
    let e = http(&sim, "wrong").snapshot(1).await.unwrap_err();
    assert_eq!(e.code(), Some(401));
}

#[tokio::test]
async fn locked_firmware_rpc2_is_a_clear_error() {
    let sim = DhipSim::start(DhipSimOptions {
        locked_firmware: true,
        ..manual()
    })
    .await
    .unwrap();
    let h = http(&sim, sim.password());
    h.login().await.unwrap();
    let e = h
        .call("magicBox.getDeviceType", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(301));
    assert!(e.to_string().contains("locked"), "{e}");
}

#[tokio::test]
async fn old_digest_and_basic_devices_accept_the_login() {
    for scheme in [
        sim::dhip::Encryption::OldDigest,
        sim::dhip::Encryption::Basic,
    ] {
        let sim = DhipSim::start(DhipSimOptions {
            encryption: scheme.clone(),
            ..manual()
        })
        .await
        .unwrap();
        let c = connect(&sim).await.unwrap();
        assert_eq!(c.device_type().await.unwrap(), "SD-2N-4G", "{scheme:?}");
        let e = connect_as(&sim, "admin", "nope").await.unwrap_err();
        assert!(matches!(e, Error::Login { .. }), "{scheme:?}: {e:?}");
    }
    let sim = DhipSim::start(DhipSimOptions {
        encryption: sim::dhip::Encryption::Other("RPAC-256".into()),
        ..manual()
    })
    .await
    .unwrap();
    let e = connect(&sim).await.unwrap_err();
    assert!(e.to_string().contains("RPAC-256"), "{e}");
}

#[tokio::test]
async fn the_rest_of_the_method_table() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let c = connect(&sim).await.unwrap();
    let p = PtzPolicy::default();
    assert!(!c.device_class().await.unwrap().is_empty());
    assert!(c.memory_info().await.unwrap().get("total").is_some());
    assert!(c.ptz_caps(&p, 0).await.unwrap().is_object());
    assert!(c.ptz_patterns(&p, 0).await.unwrap().is_empty());
    c.ptz_absolute(&p, 0, 10.0, 10.0, 0.0).await.unwrap();
    sim.advance_clock(Duration::from_secs(10));
    c.ptz_relative(&p, 0, [20.0, 5.0, 0.0]).await.unwrap();
    sim.advance_clock(Duration::from_secs(10));
    let s = &sim.state().ptz[0];
    assert!(
        (s.pan - 30.0).abs() < 0.5 && (s.tilt - 15.0).abs() < 0.5,
        "{s:?}"
    );
    c.ptz_set_home(&p, 0).await.unwrap();
    c.ptz_continuous(&p, 0, 1.0, 0.0, 0.0).await.unwrap();
    assert!(sim.state().ptz[0].moving);
    sim.advance_clock(Duration::from_secs(1));
    c.ptz_stop_move(&p, 0).await.unwrap();
    assert!(!sim.state().ptz[0].moving);
    assert!(sim.state().ptz[0].pan > 30.5);
    c.ptz_home(&p, 0).await.unwrap();
    sim.advance_clock(Duration::from_secs(10));
    assert!(
        (sim.state().ptz[0].pan - 30.0).abs() < 0.5,
        "home is where it was set"
    );
    c.ptz_reset(&p, 0).await.unwrap();
    let general = c.default_config("General").await.unwrap();
    c.patch_config("General", &json!({"MachineName": "changed"}))
        .await
        .unwrap();
    c.restore_config(&["General"]).await.unwrap();
    assert_eq!(
        sim.state().config["General"]["MachineName"],
        general["MachineName"]
    );
    c.shutdown().await.unwrap();
    assert!(
        sim.observed()
            .iter()
            .any(|r| r.method == "magicBox.shutdown")
    );
}
