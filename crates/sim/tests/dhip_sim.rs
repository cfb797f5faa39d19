//! The simulated DHIP device behaves as §8 of the protocol notes says: the two-stage login
//! with the Default hash (the §6.4 vector reproduces byte for byte), lockout, keep-alive
//! expiry, state-backed methods, events on the attaching connection, discovery, HTTP RPC2
//! with cookies, live and recorded DHAV, and Digest-protected CGI. Each test drives the
//! simulator over real loopback sockets with a tiny client built on the protocol crate.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use sim::dhip::{
    DhipSim, DhipSimOptions, EventFraming, FragmentModel, FragmentReplies, JsonStyle, UpgradeState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);

/// The protocol crate's framing, as the test client uses it.
#[path = "support/dhip_framing.rs"]
mod framing;
use framing::{Frame, FrameReader, frame, request};

/// A DHIP connection: sends requests, reads frames.
struct Client {
    sock: TcpStream,
    reader: FrameReader,
    session: u32,
    next_id: u32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            sock: TcpStream::connect(addr).await.unwrap(),
            reader: FrameReader::new(),
            session: 0,
            next_id: 0,
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).await.unwrap();
    }

    /// Sends `method` with the session in header and JSON (python-dhip style) and the binary
    /// trailer `data`; returns the request id.
    async fn send(&mut self, method: &str, params: Value, data: &[u8]) -> u32 {
        self.next_id += 1;
        let id = self.next_id;
        let bytes = request(self.session, id, method, params, None, data);
        self.send_raw(&bytes).await;
        id
    }

    /// The next frame, or `None` at EOF.
    async fn recv(&mut self) -> Option<Frame> {
        let mut buf = vec![0u8; 65536];
        loop {
            if let Some(f) = self.reader.next_frame() {
                return Some(f);
            }
            let n = tokio::time::timeout(WAIT, self.sock.read(&mut buf))
                .await
                .expect("no frame within 5 s")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.reader.push(&buf[..n]);
        }
    }

    async fn call_with(&mut self, method: &str, params: Value, data: &[u8]) -> Value {
        let id = self.send(method, params, data).await;
        let f = self.recv().await.expect("connection closed");
        assert_eq!(f.id, id, "header id echoes the request id");
        assert_eq!(f.json["id"], json!(id));
        f.json
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.call_with(method, params, &[]).await
    }

    /// Stage 1 → (realm, random, encryption).
    async fn challenge(&mut self, user: &str) -> (String, String, String) {
        let r = self
            .call(
                "global.login",
                json!({"userName":user,"password":"","clientType":"Web3.0","loginType":"Direct"}),
            )
            .await;
        assert_eq!(r["result"], json!(false));
        assert_eq!(r["error"]["code"], json!(268_632_079));
        self.session = r["session"].as_u64().unwrap() as u32;
        let p = &r["params"];
        (
            p["realm"].as_str().unwrap().to_owned(),
            p["random"].as_str().unwrap().to_owned(),
            p["encryption"].as_str().unwrap().to_owned(),
        )
    }

    async fn stage2(&mut self, user: &str, password: &str, realm: &str, random: &str) -> Value {
        self.call(
            "global.login",
            json!({"userName":user,"password":password,"clientType":"Web3.0",
                   "loginType":"Direct","authorityType":"Default","passwordType":"Default",
                   "realm":realm,"random":random}),
        )
        .await
    }

    async fn login(&mut self, user: &str, password: &str) -> Value {
        let (realm, random, _) = self.challenge(user).await;
        let hash = framing::default_hash(user, password, &realm, &random);
        self.stage2(user, &hash, &realm, &random).await
    }
}

fn manual() -> DhipSimOptions {
    DhipSimOptions {
        real_time: false,
        ..DhipSimOptions::default()
    }
}

async fn logged_in(sim: &DhipSim) -> Client {
    let mut c = Client::connect(sim.addr()).await;
    let r = c.login(sim.username(), sim.password()).await;
    assert_eq!(r["result"], json!(true), "{r}");
    c
}

#[tokio::test]
async fn login_reproduces_the_python_dhip_vector() {
    let sim = DhipSim::start(DhipSimOptions::python_dhip_fake())
        .await
        .unwrap();
    let mut c = Client::connect(sim.addr()).await;
    c.send(
        "global.login",
        json!({"userName":"admin","password":"","clientType":"Web3.0","loginType":"Direct"}),
        &[],
    )
    .await;
    let f = c.recv().await.unwrap();
    let session = f.json["session"].as_u64().unwrap() as u32;
    assert_ne!(session, 0);
    assert_eq!(f.session, session, "header carries the fresh session");
    assert_eq!(f.json["params"]["realm"], "Login to FAKE");
    assert_eq!(f.json["params"]["random"], "987654321");
    assert_eq!(f.json["params"]["encryption"], "Default");
    assert_eq!(
        f.json["error"]["message"],
        "Component error: login challenge!"
    );
    c.session = session;
    let r = c
        .stage2(
            "admin",
            "EEC1CE3FAC638314E513BBF90A0B9D25",
            "Login to FAKE",
            "987654321",
        )
        .await;
    assert_eq!(r["result"], json!(true));
    assert_eq!(r["params"]["keepAliveInterval"], json!(1));
    assert_eq!(r["session"], json!(session));
    let log = sim.observed();
    assert_eq!(log.len(), 2);
    assert!(log[1].is("global.login"), "stage 2 is recorded too");
    assert_eq!(log[1].header_session, Some(session));
    assert_eq!(log[1].header_matched, Some(true));
}

#[tokio::test]
async fn a_lowercase_digest_is_refused_unless_allowed() {
    let sim = DhipSim::start(DhipSimOptions::python_dhip_fake())
        .await
        .unwrap();
    let mut c = Client::connect(sim.addr()).await;
    c.challenge("admin").await;
    let r = c
        .stage2(
            "admin",
            "eec1ce3fac638314e513bbf90a0b9d25",
            "Login to FAKE",
            "987654321",
        )
        .await;
    assert_eq!(r["error"]["code"], json!(268_632_085));
}

#[tokio::test]
async fn netkeyboard_and_loopback_logins_get_no_bypass() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = Client::connect(sim.addr()).await;
    let r = c
        .call(
            "global.login",
            json!({"userName":"admin","password":"","clientType":"NetKeyboard","loginType":"Direct"}),
        )
        .await;
    assert_eq!(r["error"]["code"], json!(268_632_079));
    c.session = r["session"].as_u64().unwrap() as u32;
    let r = c
        .call(
            "global.login",
            json!({"userName":"admin","password":"x","clientType":"Local",
                   "loginType":"Loopback","ipAddr":"127.0.0.1"}),
        )
        .await;
    assert_eq!(r["result"], json!(false));
    let r = c.call("magicBox.getSerialNo", json!({})).await;
    assert_eq!(r["error"]["code"], json!(287_637_505));
}

#[tokio::test]
async fn wrong_passwords_count_down_then_lock_the_account() {
    let sim = DhipSim::start(DhipSimOptions {
        max_login_failures: 3,
        lock_period: Duration::from_secs(60),
        ..manual()
    })
    .await
    .unwrap();
    let mut c = Client::connect(sim.addr()).await;
    for remain in [2, 1, 0] {
        let r = c.login("admin", "wrong").await;
        assert_eq!(r["error"]["code"], json!(268_632_085));
        assert_eq!(
            r["error"]["message"],
            "Component error: User or password not valid!"
        );
        assert_eq!(r["params"]["remainLoginTimes"], json!(remain));
    }
    let r = c.login("admin", "admin54321").await;
    assert_eq!(
        r["error"]["code"],
        json!(268_632_081),
        "locked even with the right one"
    );
    assert_eq!(r["params"]["remainLockSecond"], json!(60));
    sim.advance_clock(Duration::from_secs(61));
    assert_eq!(c.login("admin", "admin54321").await["result"], json!(true));
}

#[tokio::test]
async fn sessions_expire_without_keep_alives_and_end_at_logout() {
    let sim = DhipSim::start(DhipSimOptions {
        keep_alive_interval: 10,
        session_timeout_factor: 3,
        ..manual()
    })
    .await
    .unwrap();
    let mut c = logged_in(&sim).await;
    for params in [
        json!({"timeout":10,"active":true}),
        json!({"timeout":10,"action":true}),
        json!(null),
    ] {
        sim.advance_clock(Duration::from_secs(25));
        let r = c.call("global.keepAlive", params).await;
        assert_eq!(r["result"], json!(true), "{r}");
        assert_eq!(r["params"]["timeout"], json!(10));
    }
    sim.advance_clock(Duration::from_secs(31));
    let r = c.call("magicBox.getSerialNo", json!({})).await;
    assert_eq!(r["error"]["code"], json!(287_637_505));
    assert_eq!(r["error"]["message"], "Invalid session in request data!");

    let mut c = logged_in(&sim).await;
    assert_eq!(
        c.call("global.logout", json!({})).await["result"],
        json!(true)
    );
    let r = c.call("magicBox.getSerialNo", json!({})).await;
    assert_eq!(r["error"]["code"], json!(287_637_505));
}

#[tokio::test]
async fn calls_before_login_are_refused_and_unknown_methods_get_405() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = Client::connect(sim.addr()).await;
    let r = c.call("magicBox.getSystemInfo", json!({})).await;
    assert_eq!(r["error"]["code"], json!(287_637_505));
    let mut c = logged_in(&sim).await;
    let r = c.call("deviceInfo.getVendor", json!({})).await;
    assert_eq!(
        r["error"],
        json!({"code":405,"message":"Method not allowed"})
    );
    sim.set_error_override("magicBox.getVendor", 268_959_743, None);
    let r = c.call("magicBox.getVendor", json!({})).await;
    assert_eq!(r["error"], json!({"code":268_959_743}));
    sim.clear_error_override("magicBox.getVendor");
    let r = c.call("magicBox.getVendor", json!({})).await;
    assert_eq!(r["params"]["vendor"], "General");
}

#[tokio::test]
async fn magic_box_and_time_answer_in_their_quirky_shapes() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = logged_in(&sim).await;
    let r = c.call("magicBox.getSystemInfo", json!({})).await;
    assert_eq!(r["params"]["serialNumber"], "SIM0DHIP0000001");
    let r = c.call("magicBox.getSoftwareVersion", json!({})).await;
    assert!(r["params"]["version"]["Version"].is_string());
    let r = c.call("global.getCurrentTime", json!({})).await;
    assert_eq!(r["result"], "2024-05-06 07:08:09");
    assert_eq!(r["params"], Value::Null);
    c.call(
        "global.setCurrentTime",
        json!({"time":"2025-02-17 23:07:07"}),
    )
    .await;
    sim.advance_clock(Duration::from_secs(2));
    let r = c.call("global.getCurrentTime", json!({})).await;
    assert_eq!(r["result"], "2025-02-17 23:07:09");
    let r = c.call("userManager.getGroupInfoAll", json!({})).await;
    assert!(r["params"].is_array(), "a bare list");
}

#[tokio::test]
async fn ptz_moves_over_time_and_returns_to_a_preset() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = logged_in(&sim).await;
    let start = json!({"channel":0,"code":"Right","arg1":0,"arg2":4,"arg3":0});
    assert_eq!(c.call("ptz.start", start).await["result"], json!(true));
    sim.advance_clock(Duration::from_secs(2));
    assert_eq!(
        c.call("ptz.isMoving", json!({"channel":0})).await["result"],
        json!(true)
    );
    c.call(
        "ptz.stop",
        json!({"channel":0,"code":"Right","arg1":0,"arg2":4,"arg3":0}),
    )
    .await;
    let st = c.call("ptz.getStatus", json!({"channel":0})).await;
    assert_eq!(
        st["params"]["status"]["Location"],
        json!([1365, 0, 0]),
        "60° of 360"
    );
    c.call(
        "ptz.start",
        json!({"channel":0,"code":"SetPreset","arg1":0,"arg2":3,"arg3":0}),
    )
    .await;
    c.call(
        "ptz.moveAbsolutely",
        json!({"channel":0,"Position":[180, 45, 0]}),
    )
    .await;
    sim.advance_clock(Duration::from_secs(5));
    assert_eq!(sim.state().ptz[0].raw, [4096, 4096, 0]);
    let r = c
        .call(
            "ptz.moveAbsolutely",
            json!({"channel":0,"Position":[360, 0, 0]}),
        )
        .await;
    assert_eq!(r["result"], json!(false), "pan 360 is out of range");
    let inst = c.call("ptz.factory.instance", json!({"channel":0})).await;
    let object = inst["result"].as_u64().unwrap();
    c.next_id += 1;
    let params = json!({"code":"GotoPreset","arg1":0,"arg2":3,"arg3":0});
    c.send_raw(&request(
        c.session,
        c.next_id,
        "ptz.start",
        params,
        Some(object),
        &[],
    ))
    .await;
    assert_eq!(c.recv().await.unwrap().json["result"], json!(true));
    sim.advance_clock(Duration::from_secs(5));
    let s = sim.state().ptz[0].clone();
    assert!((s.pan - 60.0).abs() < 1e-6 && !s.moving, "{s:?}");
    let log = sim.observed();
    let goto = log.iter().rfind(|r| r.is("ptz.start")).unwrap();
    assert_eq!(goto.params["arg2"], json!(3));
    assert_eq!(goto.object, Some(json!(object)));
}

#[tokio::test]
async fn users_are_added_and_deleted_with_the_firmware_errors() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = logged_in(&sim).await;
    let add = json!({"user":{"Name":"bob","Password":"pw1","Group":"user","Memo":"",
                             "Sharable":true,"AuthorityList":[]}});
    assert_eq!(
        c.call("userManager.addUser", add.clone()).await["result"],
        json!(true)
    );
    let r = c.call("userManager.addUser", add).await;
    assert_eq!(r["error"]["code"], json!(285_409_285));
    let mut bob = Client::connect(sim.addr()).await;
    assert_eq!(bob.login("bob", "pw1").await["result"], json!(true));
    let r = c.call("userManager.getActiveUserInfoAll", json!({})).await;
    assert_eq!(r["params"]["users"].as_array().unwrap().len(), 2);
    assert_eq!(
        c.call("userManager.deleteUser", json!({"name":"bob"}))
            .await["result"],
        json!(true)
    );
    let r = c
        .call("userManager.deleteUser", json!({"name":"bob"}))
        .await;
    assert_eq!(r["error"]["code"], json!(285_409_284));
    assert_eq!(sim.state().users.len(), 1);
}

#[tokio::test]
async fn config_writes_replace_the_table_and_notify_attached_clients() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = logged_in(&sim).await;
    let mut watcher = logged_in(&sim).await;
    let attach_id = watcher
        .send("configManager.attach", json!({"name":"InnerServer"}), &[])
        .await;
    assert_eq!(watcher.recv().await.unwrap().json["result"], json!(true));
    let t = c
        .call("configManager.getConfig", json!({"name":"InnerServer"}))
        .await;
    let mut table = t["params"]["table"].clone();
    table["Telnet"]["Enable"] = json!(true);
    let r = c
        .call(
            "configManager.setConfig",
            json!({"name":"InnerServer","table":table}),
        )
        .await;
    assert_eq!(r["result"], json!(true));
    let n = watcher.recv().await.unwrap();
    assert_eq!(n.id, attach_id);
    assert_eq!(n.json["method"], "client.notifyConfigChange");
    let cfg = &sim.state().config["InnerServer"];
    assert_eq!(cfg["Telnet"]["Enable"], json!(true));
    assert_eq!(cfg["SSH"]["Enable"], json!(false));
    let r = c
        .call(
            "configManager.setConfig",
            json!({"name":"ChannelTitle","table":{"Name":"x"}}),
        )
        .await;
    assert_eq!(
        r["result"],
        json!(false),
        "a per-channel table must stay a list"
    );
}

#[tokio::test]
async fn media_file_find_hands_out_batches_then_nothing() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = logged_in(&sim).await;
    let r = c
        .call("mediaFileFind.findFile", json!({"condition":{}}))
        .await;
    assert_eq!(r["error"]["code"], json!(268_894_209), "object required");
    let object = c.call("mediaFileFind.factory.create", json!({})).await["result"].clone();
    let obj_call = |method: &str, params: Value, c: &mut Client| {
        c.next_id += 1;
        request(c.session, c.next_id, method, params, object.as_u64(), &[])
    };
    let cond = json!({"condition":{"Channel":0,"Types":["dav"],"Order":"Ascent",
        "Flags":["Timing","Event","Manual","Marker"],
        "StartTime":"2024-05-06 00:00:00","EndTime":"2024-05-06 23:59:59"}});
    let b = obj_call("mediaFileFind.findFile", cond, &mut c);
    c.send_raw(&b).await;
    assert_eq!(c.recv().await.unwrap().json["result"], json!(true));
    let mut found = Vec::new();
    loop {
        let b = obj_call("mediaFileFind.findNextFile", json!({"count":2}), &mut c);
        c.send_raw(&b).await;
        let r = c.recv().await.unwrap().json;
        let n = r["params"]["found"].as_u64().unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 2);
        found.extend(r["params"]["infos"].as_array().unwrap().clone());
    }
    assert_eq!(found.len(), 5);
    assert!(
        found[0]["FilePath"]
            .as_str()
            .unwrap()
            .starts_with("/mnt/sd/2024-05-06/")
    );
    let b = obj_call("mediaFileFind.destroy", json!({}), &mut c);
    c.send_raw(&b).await;
    assert_eq!(c.recv().await.unwrap().json["result"], json!(true));

    let none = c.call("mediaFileFind.factory.create", json!({})).await["result"].clone();
    c.next_id += 1;
    let params = json!({"condition":{"Channel":7}});
    c.send_raw(&request(
        c.session,
        c.next_id,
        "mediaFileFind.findFile",
        params,
        none.as_u64(),
        &[],
    ))
    .await;
    assert_eq!(
        c.recv().await.unwrap().json["error"]["code"],
        json!(285_409_284)
    );
}

#[tokio::test]
async fn upgrader_takes_append_data_only_with_exact_length_params() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = logged_in(&sim).await;
    assert_eq!(
        c.call("upgrader.prepare", json!({"Type":"System"})).await["result"],
        json!(true)
    );
    let chunk = vec![0x5Au8; 4096];
    let r = c
        .call_with("upgrader.appendData", json!({"length":4096}), &chunk)
        .await;
    assert_eq!(r["result"], json!(true));
    let r = c
        .call_with("upgrader.appendData", json!({"length":4096,"x":1}), &chunk)
        .await;
    assert_eq!(r["result"], json!(false));
    let r = c
        .call_with("upgrader.appendData", json!({"length":100}), b"ABCD")
        .await;
    assert_eq!(r["result"], json!(false));
    let r = c
        .call_with("upgrader.appendData", json!({"length":4}), b"ABCD")
        .await;
    assert_eq!(r["result"], json!(true));
    assert_eq!(
        c.call("upgrader.execute", json!({})).await["result"],
        json!(true)
    );
    let u = sim.state().upgrader;
    assert_eq!(u.state, UpgradeState::Succeeded);
    assert_eq!(u.chunks, vec![4096, 4]);
    assert_eq!(&u.data[4096..], b"ABCD");
    let rec: Vec<_> = sim
        .observed()
        .into_iter()
        .filter(|r| r.is("upgrader.appendData"))
        .map(|r| r.binary_len)
        .collect();
    assert_eq!(rec, vec![4096, 4096, 4, 4]);
}

#[tokio::test]
async fn multicall_answers_every_member_in_order() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut c = logged_in(&sim).await;
    let r = c
        .call(
            "system.multicall",
            json!([{"method":"magicBox.getSerialNo","params":{},"id":100},
                   {"method":"magicBox.getDeviceType","params":{},"id":101}]),
        )
        .await;
    let p = r["params"].as_array().unwrap();
    assert_eq!(p[0]["id"], json!(100));
    assert_eq!(p[0]["params"]["sn"], "SIM0DHIP0000001");
    assert_eq!(p[1]["id"], json!(101));
    let r = c.call("system.listService", json!({})).await;
    assert!(
        r["params"]["service"]
            .as_array()
            .unwrap()
            .contains(&json!("ptz"))
    );
    let r = c.call("ptz.listMethod", json!({})).await;
    assert!(
        r["params"]["method"]
            .as_array()
            .unwrap()
            .contains(&json!("ptz.getStatus"))
    );
}

#[tokio::test]
async fn events_arrive_on_the_attaching_connection_with_the_attach_id() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let mut control = logged_in(&sim).await;
    let mut events = logged_in(&sim).await;
    events.next_id = 7;
    let attach = events
        .send(
            "eventManager.attach",
            json!({"codes":["VideoMotion","AlarmLocal"]}),
            &[],
        )
        .await;
    let r = events.recv().await.unwrap();
    assert_eq!(r.json["params"]["SID"], json!(513));
    assert_eq!(
        sim.push_event("VideoMotion", "Start", json!({"Region":[0]})),
        1
    );
    let f = events.recv().await.unwrap();
    assert_eq!(f.id, attach);
    assert_eq!(f.json["id"], json!(attach));
    assert_eq!(f.json["method"], "client.notifyEventStream");
    let e = &f.json["params"]["eventList"][0];
    assert_eq!(e["Code"], "VideoMotion");
    assert_eq!(e["Action"], "Start");
    assert_eq!(e["Data"]["LocaleTime"], "2024-05-06 07:08:09");
    let two = [
        ("VideoMotion".to_owned(), "Stop".to_owned(), json!({})),
        ("AlarmLocal".to_owned(), "Start".to_owned(), json!({})),
    ];
    sim.push_events(&two, EventFraming::OneFrame);
    let f = events.recv().await.unwrap();
    assert_eq!(f.json["params"]["eventList"].as_array().unwrap().len(), 2);
    sim.push_events(&two, EventFraming::BackToBack);
    let a = events.recv().await.unwrap();
    let b = events.recv().await.unwrap();
    assert_eq!(a.json["params"]["eventList"][0]["Code"], "VideoMotion");
    assert_eq!(b.json["params"]["eventList"][0]["Code"], "AlarmLocal");
    let r = control.call("magicBox.getSerialNo", json!({})).await;
    assert_eq!(
        r["params"]["sn"], "SIM0DHIP0000001",
        "no push on the control connection"
    );
    events
        .call("eventManager.detach", json!({"codes":["All"]}))
        .await;
    assert_eq!(sim.push_event("VideoMotion", "Start", json!({})), 0);
}

#[tokio::test]
async fn pushes_on_control_connections_when_asked() {
    let sim = DhipSim::start(DhipSimOptions {
        push_on_control: true,
        ..manual()
    })
    .await
    .unwrap();
    let mut control = logged_in(&sim).await;
    assert_eq!(sim.push_event("VideoMotion", "Pulse", json!({})), 1);
    let id = control.send("magicBox.getSerialNo", json!({}), &[]).await;
    let first = control.recv().await.unwrap();
    assert_eq!(first.json["method"], "client.notifyEventStream");
    let reply = control.recv().await.unwrap();
    assert_eq!(reply.id, id);
}

#[tokio::test]
async fn bad_magic_and_legacy_bytes_get_no_answer() {
    let sim = DhipSim::start(manual()).await.unwrap();
    for bytes in [
        &b"POST /RPC2 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"[..],
        &[
            0xa0, 0x01, 0, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 5, 2, 1, 1,
        ][..],
        &[
            0x20, 0, 0, 0, b'P', b'I', b'H', b'D', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0,
        ][..],
    ] {
        let mut c = Client::connect(sim.addr()).await;
        c.send_raw(bytes).await;
        assert!(c.recv().await.is_none(), "closed without an answer");
    }
}

#[tokio::test]
async fn replies_follow_the_output_style_and_fragment_models() {
    let sim = DhipSim::start(DhipSimOptions {
        json: JsonStyle::Spaced,
        trailing_newline: true,
        ..manual()
    })
    .await
    .unwrap();
    let mut c = Client::connect(sim.addr()).await;
    c.send(
        "global.login",
        json!({"userName":"admin","password":""}),
        &[],
    )
    .await;
    let f = c.recv().await.unwrap();
    assert!(
        f.raw_json.ends_with(b"}\n"),
        "{:?}",
        String::from_utf8_lossy(&f.raw_json)
    );
    assert!(f.raw_json.starts_with(b"{ \""));

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
        let mut c = logged_in(&sim).await;
        let id = c.send("magicBox.getSystemInfo", json!({}), &[]).await;
        let f = c.recv().await.unwrap();
        assert_eq!(f.json["params"]["deviceType"], "SD-2N-4G", "{model:?}");
        if model == FragmentModel::PerPacketJson {
            let mut data = f.data.clone();
            for index in 1..3 {
                let more = c.recv().await.unwrap();
                assert_eq!((more.id, more.index), (id, index));
                assert_eq!(more.json, json!({"id": id}));
                data.extend(more.data);
            }
            assert_eq!(data, b"AAAABBBBCCCC");
        }
        let r = c.call("magicBox.getSerialNo", json!({})).await;
        assert_eq!(
            r["result"],
            json!(true),
            "the stream stays in step after {model:?}"
        );
    }
}

#[tokio::test]
async fn reboot_drops_the_connection_and_the_device_comes_back() {
    let sim = DhipSim::start(DhipSimOptions {
        reboot_delay: Duration::from_millis(300),
        ..manual()
    })
    .await
    .unwrap();
    let mut c = logged_in(&sim).await;
    assert_eq!(
        c.call("magicBox.reboot", json!({})).await["result"],
        json!(true)
    );
    assert!(c.recv().await.is_none());
    assert!(!sim.is_up());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut c = logged_in(&sim).await;
    assert_eq!(
        c.call("magicBox.getSerialNo", json!({})).await["result"],
        json!(true)
    );
}

#[tokio::test]
async fn discovery_answers_dhip_probes_only() {
    let sim = DhipSim::start(DhipSimOptions {
        discovery_nul: true,
        ..manual()
    })
    .await
    .unwrap();
    let to = sim.discovery_addr().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe = br#"{"method":"DHDiscover.search","params":{"mac":"","uni":1}}"#;
    sock.send_to(probe, to).await.unwrap();
    let mut buf = [0u8; 8192];
    let quiet = tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await;
    assert!(quiet.is_err(), "bare JSON is ignored");
    sock.send_to(&frame(0, 0, probe, &[]), to).await.unwrap();
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let mut r = FrameReader::new();
    r.push(&buf[..n]);
    let f = r.next_frame().expect("a DHIP-framed reply");
    assert!(f.raw_json.ends_with(b"\0"));
    let info = &f.json["params"]["deviceInfo"];
    assert_eq!(f.json["method"], "client.notifyDevInfo");
    assert_eq!(info["SerialNo"], "SIM0DHIP0000001");
    assert_eq!(info["Port"], json!(sim.addr().port()));
    assert_eq!(info["HttpPort"], json!(sim.http_addr().unwrap().port()));
    assert_eq!(info["IPv4Address"]["IPAddress"], "127.0.0.1");
}

// --- HTTP ---

struct HttpReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> HttpReply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpReply {
        status,
        headers,
        body: all[end + 4..].to_vec(),
    }
}

async fn rpc(addr: SocketAddr, path: &str, body: Value, cookie: Option<&str>) -> Value {
    let h: Vec<(&str, String)> = cookie
        .map(|c| vec![("Cookie", format!("DhWebClientSessionID={c}"))])
        .unwrap_or_default();
    let r = http(addr, "POST", path, &h, body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

/// HTTP login; returns the session as the device gave it.
async fn http_login(sim: &DhipSim) -> Value {
    let addr = sim.http_addr().unwrap();
    let c = rpc(
        addr,
        "/RPC2_Login",
        json!({"method":"global.login","id":1,
        "params":{"userName":"admin","password":"","clientType":"Web3.0","loginType":"Direct"}}),
        None,
    )
    .await;
    assert_eq!(c["error"]["code"], json!(268_632_079));
    let (realm, random) = (
        c["params"]["realm"].as_str().unwrap(),
        c["params"]["random"].as_str().unwrap(),
    );
    let hash = framing::default_hash("admin", sim.password(), realm, random);
    let ok = rpc(
        addr,
        "/RPC2_Login",
        json!({"method":"global.login","id":2,"session":c["session"],
        "params":{"userName":"admin","password":hash,"clientType":"Web3.0","loginType":"Direct",
                  "authorityType":"Default","passwordType":"Default"}}),
        None,
    )
    .await;
    assert_eq!(ok["result"], json!(true), "{ok}");
    ok["session"].clone()
}

#[tokio::test]
async fn rpc2_over_http_takes_the_session_from_a_cookie() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let addr = sim.http_addr().unwrap();
    let session = http_login(&sim).await;
    let s = session.as_str().expect("a string session").to_owned();
    assert_eq!(s.len(), 32);
    let r = rpc(
        addr,
        "/RPC2",
        json!({"method":"magicBox.getSerialNo","id":3}),
        Some(&s),
    )
    .await;
    assert_eq!(r["params"]["sn"], "SIM0DHIP0000001");
    let r = rpc(
        addr,
        "/RPC2",
        json!({"method":"magicBox.getSerialNo","id":4,"session":s}),
        None,
    )
    .await;
    assert_eq!(r["params"]["sn"], "SIM0DHIP0000001");
    let r = rpc(
        addr,
        "/RPC2",
        json!({"method":"magicBox.getSerialNo","id":5}),
        None,
    )
    .await;
    assert_eq!(r["error"]["code"], json!(287_637_505));

    let locked = DhipSim::start(DhipSimOptions {
        locked_firmware: true,
        ..manual()
    })
    .await
    .unwrap();
    let r = http(locked.http_addr().unwrap(), "POST", "/RPC2", &[], b"{}").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/"));
}

#[tokio::test]
async fn rpc_loadfile_streams_live_dhav_that_demuxes_to_h264() {
    let sim = DhipSim::start(DhipSimOptions {
        video: (320, 180, 25),
        ..manual()
    })
    .await
    .unwrap();
    let addr = sim.http_addr().unwrap();
    let s = http_login(&sim).await.as_str().unwrap().to_owned();
    let r = rpc(
        addr,
        "/RPC2",
        json!({"method":"streamReader.create","id":3,"session":s,
                                      "params":{"channel":0,"subtype":0}}),
        None,
    )
    .await;
    let object = r["result"].as_u64().unwrap();
    let r = rpc(
        addr,
        "/RPC2",
        json!({"method":"streamReader.start","id":4,"session":s,
                                      "object":object,"params":{}}),
        None,
    )
    .await;
    assert_eq!(r["result"], json!(true));
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let req =
        format!("GET /RPC_Loadfile/{object} HTTP/1.1\r\nCookie: DhWebClientSessionID={s}\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    let mut buf = [0u8; 65536];
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let packets = framing::demux(&got[end + 4..]);
    let video: Vec<_> = packets.iter().filter(|p| p.video).collect();
    assert!(
        video.len() >= 5,
        "paced at 25 fps: {} packets in 0.6 s",
        video.len()
    );
    assert!(
        video.len() <= 25,
        "not faster than real time: {}",
        video.len()
    );
    assert!(video[0].keyframe);
    let units = media::codec::nal::annexb_units(&video[0].payload);
    let types: Vec<u8> = units.iter().map(|u| u[0] & 0x1f).collect();
    assert_eq!(&types[..3], &[7, 8, 5], "SPS, PPS, IDR");
    assert!(packets.iter().any(|p| p.audio), "G.711 audio packets");
    let r = rpc(
        addr,
        "/RPC2",
        json!({"method":"streamReader.destroy","id":5,"session":s,
                                      "object":object,"params":{}}),
        None,
    )
    .await;
    assert_eq!(r["result"], json!(true));
    let create = sim
        .observed()
        .into_iter()
        .find(|r| r.is("streamReader.create"))
        .unwrap();
    assert_eq!(create.params, json!({"channel":0,"subtype":0}));
}

#[tokio::test]
async fn recorded_files_download_with_the_cookie_only() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let addr = sim.http_addr().unwrap();
    let s = http_login(&sim).await.as_str().unwrap().to_owned();
    let path = "/mnt/sd/2024-05-06/001/dav/01/01.00.00-01.10.00[R][0@0][0].dav";
    let cookie = vec![("Cookie", format!("WebClientSessionID={s}"))];
    let r = http(addr, "GET", &format!("/RPC_Loadfile{path}"), &cookie, b"").await;
    assert_eq!(r.status, 200);
    let packets = framing::demux(&r.body);
    assert!(packets[0].keyframe && packets[0].video);
    assert!(packets.len() >= 10);
    let r = http(addr, "GET", &format!("/RPC_Loadfile{path}"), &[], b"").await;
    assert_eq!(r.status, 401);
    let r = http(
        addr,
        "GET",
        "/RPC_Loadfile/mnt/sd/nothing.dav",
        &cookie,
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
}

fn digest_header(www: &str, user: &str, pw: &str, uri: &str) -> String {
    let ch = dhip::digest::Challenge::parse(www).expect("a Digest challenge");
    ch.authorization(user, pw, "GET", uri, 1, "0a4f113b")
}

#[tokio::test]
async fn snapshot_needs_digest_and_returns_a_jpeg() {
    let sim = DhipSim::start(manual()).await.unwrap();
    let addr = sim.http_addr().unwrap();
    let uri = "/cgi-bin/snapshot.cgi?channel=1";
    let r = http(addr, "GET", uri, &[], b"").await;
    assert_eq!(r.status, 401);
    let www = r.header("WWW-Authenticate").unwrap().to_owned();
    assert!(www.contains("qop=\"auth\"") && www.contains(&sim.realm()));
    let bad = digest_header(&www, "admin", "nope", uri);
    assert_eq!(
        http(addr, "GET", uri, &[("Authorization", bad)], b"")
            .await
            .status,
        401
    );
    let good = digest_header(&www, "admin", sim.password(), uri);
    let r = http(addr, "GET", uri, &[("Authorization", good)], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("image/jpeg"));
    assert!(r.body.starts_with(&[0xFF, 0xD8]) && r.body.ends_with(&[0xFF, 0xD9]));

    let path =
        "/cgi-bin/RPC_Loadfile/mnt/sd/2024-05-06/001/dav/02/02.00.00-02.10.00[R][0@0][0].dav";
    let r = http(addr, "GET", path, &[], b"").await;
    assert_eq!(r.status, 401);
    let www = r.header("WWW-Authenticate").unwrap().to_owned();
    let r = http(
        addr,
        "GET",
        path,
        &[(
            "Authorization",
            digest_header(&www, "admin", sim.password(), path),
        )],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(b"DHAV"));
}

#[tokio::test]
async fn old_digest_devices_want_the_gen1_hash() {
    let sim = DhipSim::start(DhipSimOptions {
        encryption: sim::dhip::Encryption::OldDigest,
        ..manual()
    })
    .await
    .unwrap();
    let mut c = Client::connect(sim.addr()).await;
    let (realm, random, enc) = c.challenge("admin").await;
    assert_eq!(enc, "OldDigest");
    let default = framing::default_hash("admin", "admin54321", &realm, &random);
    let r = c.stage2("admin", &default, &realm, &random).await;
    assert_eq!(
        r["error"]["code"],
        json!(268_632_085),
        "the Default hash is refused"
    );
    c.challenge("admin").await;
    let r = c.stage2("admin", "04lnmDix", &realm, &random).await;
    assert_eq!(r["result"], json!(true));
}
