//! The simulated Dahua P2P cloud and devices behave as §8 of the protocol notes says: real
//! WSSE and device-auth checks, loopback-only lookups, the inverted-STUN punch, PTCP with the
//! agent's sign, realms to the camera directly and through the relay agent, and fault knobs.
//! Each test drives the simulator over real UDP on 127.0.0.1 with a scripted client built from
//! the crate's sans-IO pieces (just the steps the behaviour needs).

use std::collections::VecDeque;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dahua_p2p::addr::{Aid, IdentifyStyle, LocalAddrList};
use dahua_p2p::demux::{Kind, classify};
use dahua_p2p::devauth::{DeviceCredentials, decrypt_info};
use dahua_p2p::dhhttp::{
    P2pChannelRequest, Profile, Response, ServerNatInfo, Verb, is_clock_skew, parse_date,
    parse_response,
};
use dahua_p2p::ptcp::{Config, Event, Session};
use dahua_p2p::stun::{BINDING_REQUEST, BINDING_SUCCESS, MAGIC_COOKIE, StunMessage};
use dahua_p2p::wsse::{AppCredentials, UsernameToken};
use dahua_p2p::xmlbody::XmlBody;
use sim::dahua_p2p::{
    DahuaP2pSim, DahuaP2pSimOptions, PtcpOwner, RealmVia, SIM_RAND_SALT, Server, is_loopback,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn udp() -> Arc<UdpSocket> {
    Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap())
}

async fn start(f: impl FnOnce(&mut DahuaP2pSimOptions)) -> DahuaP2pSim {
    let mut opts = DahuaP2pSimOptions::default();
    f(&mut opts);
    DahuaP2pSim::start(opts).await.unwrap()
}

/// A scripted DH-HTTP client on one socket: signed requests with a counter CSeq.
struct Dh {
    sock: Arc<UdpSocket>,
    profile: Profile,
    cseq: u32,
}

impl Dh {
    fn new(sock: Arc<UdpSocket>) -> Self {
        Dh {
            sock,
            profile: Profile::smartpss(),
            cseq: 0,
        }
    }

    /// A signed request datagram and its CSeq.
    fn build(&mut self, verb: Verb, path: &str, body: Option<&XmlBody>) -> (Vec<u8>, u32) {
        let xml = body.map(|b| b.to_xml(Default::default()).into_bytes());
        let mut r = self.profile.request(
            verb,
            path,
            xml.as_deref(),
            now_unix(),
            &mut rand::thread_rng(),
        );
        self.cseq += 1;
        r.headers.set("CSeq", self.cseq.to_string());
        (r.serialize(), self.cseq)
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        verb: Verb,
        path: &str,
        body: Option<&XmlBody>,
    ) -> u32 {
        let (d, cseq) = self.build(verb, path, body);
        self.sock.send_to(&d, to).await.unwrap();
        cseq
    }

    /// Sends a request and returns the first final (non-1xx) response.
    async fn call(
        &mut self,
        to: SocketAddr,
        verb: Verb,
        path: &str,
        body: Option<&XmlBody>,
    ) -> Response {
        self.send(to, verb, path, body).await;
        loop {
            let (r, _) = recv_http(&self.sock, WAIT).await.expect("no answer");
            if !r.is_provisional() {
                return r;
            }
        }
    }
}

/// The next DH-HTTP response on `sock` (other datagrams are skipped), with its source.
async fn recv_http(sock: &UdpSocket, wait: Duration) -> Option<(Response, SocketAddr)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        if classify(&buf[..n]) == Kind::Http {
            return Some((parse_response(&buf[..n]).unwrap(), from));
        }
    }
}

/// The next inverted-STUN message of type `msg_type` on `sock`.
async fn recv_stun(
    sock: &UdpSocket,
    msg_type: u16,
    wait: Duration,
) -> Option<(StunMessage, SocketAddr)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        if classify(&buf[..n]) == Kind::InvertedStun
            && let Ok(m) = StunMessage::parse_inverted(&buf[..n])
            && m.msg_type == msg_type
        {
            return Some((m, from));
        }
    }
}

fn xml(r: &Response) -> XmlBody {
    r.body_xml().unwrap()
}

fn device_creds(sim: &DahuaP2pSim, salt: &str) -> DeviceCredentials {
    let info = sim.info();
    DeviceCredentials::with_salt(&info.username, &info.password, salt)
}

fn local_of(sock: &UdpSocket) -> SocketAddrV4 {
    match sock.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
    }
}

/// A type-1 p2p-channel body from `sock` signed with `creds`.
fn p2p_body(sock: &UdpSocket, aid: Aid, creds: &DeviceCredentials) -> XmlBody {
    P2pChannelRequest {
        aid,
        local: LocalAddrList::single(local_of(sock)),
        version: "5.0.0".into(),
    }
    .type1_body(IdentifyStyle::Unpadded, creds, 4242, now_unix())
}

/// A scripted PTCP client session on one socket toward one peer.
struct Ptcp {
    sock: Arc<UdpSocket>,
    peer: SocketAddr,
    s: Session,
    events: VecDeque<Event>,
}

impl Ptcp {
    fn new(sock: Arc<UdpSocket>, peer: SocketAddr) -> Self {
        let mut cfg = Config::client();
        cfg.rto_initial = Duration::from_millis(300);
        Ptcp {
            sock,
            peer,
            s: Session::new(cfg, Instant::now()),
            events: VecDeque::new(),
        }
    }

    async fn flush(&mut self) {
        while let Some(d) = self.s.poll_transmit(Instant::now()) {
            self.sock.send_to(&d, self.peer).await.unwrap();
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push_back(e);
        }
    }

    /// Drives the session until `f` picks an event (events it passes over are dropped).
    async fn wait<T>(
        &mut self,
        wait: Duration,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        loop {
            self.flush().await;
            while let Some(e) = self.events.pop_front() {
                if let Some(t) = f(&e) {
                    return Some(t);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let until = self.s.poll_timeout().map_or(deadline, |t| t.min(deadline));
            let until = tokio::time::Instant::from_std(until.max(now));
            match tokio::time::timeout_at(until, self.sock.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) => {
                    if from == self.peer && classify(&buf[..n]) == Kind::Ptcp {
                        let _ = self.s.handle_input(Instant::now(), &buf[..n]);
                    }
                }
                Ok(Err(e)) => panic!("recv: {e}"),
                Err(_) => self.s.handle_timeout(Instant::now()),
            }
        }
    }

    async fn connect(&mut self) {
        self.s.connect(Instant::now());
        self.wait(WAIT, |e| matches!(e, Event::Connected).then_some(()))
            .await
            .expect("no SYN answer");
    }

    /// Opens `realm` to `port`: true on CONN, false on DISC.
    async fn bind(&mut self, realm: u32, port: u16) -> bool {
        self.s.open_realm(realm, port).unwrap();
        self.wait(WAIT, |e| match e {
            Event::RealmConnected(r) if *r == realm => Some(true),
            Event::RealmRefused(r) if *r == realm => Some(false),
            _ => None,
        })
        .await
        .expect("no CONN or DISC")
    }

    /// Sends `request` on `realm` and collects the answer up to the end of its head.
    async fn ask(&mut self, realm: u32, request: &[u8]) -> String {
        assert_eq!(self.s.send(realm, request), request.len());
        let mut got = Vec::new();
        self.wait(WAIT, |e| match e {
            Event::Data { realm: r, data } if *r == realm => {
                got.extend_from_slice(data);
                got.windows(4).any(|w| w == b"\r\n\r\n").then_some(())
            }
            _ => None,
        })
        .await
        .expect("no answer on the realm");
        String::from_utf8_lossy(&got).into_owned()
    }
}

/// A client that has done the cloud part of §2.6 (p2p-channel, relay agent, relay-channel).
struct Flow {
    s_dev: Arc<UdpSocket>,
    s_rly: Arc<UdpSocket>,
    aid: Aid,
    nat: ServerNatInfo,
    agent: SocketAddr,
}

async fn cloud_handshake(sim: &DahuaP2pSim) -> Flow {
    let serial = sim.info().serial;
    let s_dev = udp().await;
    let s_rly = udp().await;
    let mut dev = Dh::new(s_dev.clone());
    let mut rly = Dh::new(s_rly.clone());
    // The salt from /info/device, as 6.7+ firmware needs.
    let info = rly
        .call(
            sim.p2p_server_addr(),
            Verb::Get,
            &format!("/info/device/{serial}"),
            None,
        )
        .await;
    let salt = decrypt_info(xml(&info).get("Info").unwrap())
        .unwrap()
        .rand_salt
        .unwrap();
    let creds = device_creds(sim, &salt);
    let aid = Aid::random(&mut rand::thread_rng());
    let body = p2p_body(&s_dev, aid, &creds);
    dev.send(
        sim.cloud_addr(),
        Verb::Post,
        &format!("/device/{serial}/p2p-channel"),
        Some(&body),
    )
    .await;
    let agent = rly
        .call(sim.relay_addr(), Verb::Get, "/relay/agent", None)
        .await;
    let (token, agent) = {
        let b = xml(&agent);
        (
            b.get("Token").unwrap().to_owned(),
            b.get("Agent").unwrap().parse::<SocketAddr>().unwrap(),
        )
    };
    let start = rly
        .call(
            agent,
            Verb::Post,
            &format!("/relay/start/{token}"),
            Some(&XmlBody::new().with("Client", ":0")),
        )
        .await;
    assert_eq!(start.code, 200);
    let nat = loop {
        let (r, _) = recv_http(&s_dev, WAIT).await.expect("no Server Nat Info");
        if r.code == 200 {
            break ServerNatInfo::from_body(&xml(&r)).unwrap();
        }
        assert_eq!(r.code, 100);
    };
    let mut rc = XmlBody::new();
    creds.auth_block(777, now_unix(), "").write_to(&mut rc);
    rc.push("agentAddr", agent.to_string());
    let cseq = rly
        .send(
            sim.cloud_addr(),
            Verb::Post,
            &format!("/device/{serial}/relay-channel"),
            Some(&rc),
        )
        .await;
    let (notice, from) = recv_http(&s_rly, WAIT)
        .await
        .expect("no relay-channel notice");
    assert_eq!(
        (notice.code, notice.reason.as_str()),
        (200, "Server Nat Info!")
    );
    assert_eq!(from, agent, "the notice comes from the agent");
    assert_eq!(notice.cseq(), Some(i64::from(cseq)));
    Flow {
        s_dev,
        s_rly,
        aid,
        nat,
        agent,
    }
}

/// Gets the sign from the agent on S_rly (SYN, 0x17 → 0x18).
async fn agent_sign(flow: &Flow) -> (Ptcp, Bytes) {
    let mut agent = Ptcp::new(flow.s_rly.clone(), flow.agent);
    agent.connect().await;
    agent.s.request_sign();
    let sign = agent
        .wait(WAIT, |e| match e {
            Event::Sign(s) => Some(s.clone()),
            _ => None,
        })
        .await
        .expect("no sign");
    (agent, sign)
}

const OPTIONS: &[u8] =
    b"OPTIONS rtsp://127.0.0.1/cam/realmonitor?channel=1&subtype=0 RTSP/1.0\r\nCSeq: 1\r\n\r\n";

/// The camera answered `RTSP/1.0 200 OK` (camgate's server spells the reason `Ok`).
fn assert_rtsp_ok(answer: &str) {
    let status = answer.lines().next().unwrap_or_default();
    assert!(
        status.eq_ignore_ascii_case("RTSP/1.0 200 OK"),
        "status line {status:?} in {answer}"
    );
}

// ----- cloud: WSSE -----

#[tokio::test]
async fn bad_wsse_digest_is_401() {
    let sim = start(|_| {}).await;
    let sock = udp().await;
    let p = Profile::smartpss();
    let wrong = AppCredentials::new(p.username, "not-the-user-key");
    let token = UsernameToken::sign(&wrong, "42", &p.dialect.created(now_unix()));
    let mut r = p
        .dialect
        .request(Verb::Get, "/probe/p2psrv", Some(&token), None);
    r.headers.set("CSeq", "7");
    sock.send_to(&r.serialize(), sim.cloud_addr())
        .await
        .unwrap();
    let (resp, _) = recv_http(&sock, WAIT).await.unwrap();
    assert_eq!(resp.code, 401);
    assert!(!is_clock_skew(&resp));
    assert_eq!(resp.cseq(), Some(7));
}

#[tokio::test]
async fn wsse_created_beyond_the_skew_limit_is_401_timeout_with_a_date() {
    let sim = start(|_| {}).await;
    let sock = udp().await;
    let p = Profile::smartpss();
    let mut r = p.request(
        Verb::Get,
        "/probe/p2psrv",
        None,
        now_unix() - 1000,
        &mut rand::thread_rng(),
    );
    r.headers.set("CSeq", "1");
    sock.send_to(&r.serialize(), sim.cloud_addr())
        .await
        .unwrap();
    let (resp, _) = recv_http(&sock, WAIT).await.unwrap();
    assert!(is_clock_skew(&resp), "{resp:?}");
    let date = parse_date(resp.date().expect("Date")).unwrap();
    assert!((date - now_unix()).abs() <= 2);
}

#[tokio::test]
async fn good_wsse_probe_is_200_with_date_and_echoed_cseq() {
    let sim = start(|_| {}).await;
    let mut dh = Dh::new(udp().await);
    let resp = dh
        .call(sim.cloud_addr(), Verb::Get, "/probe/p2psrv", None)
        .await;
    assert_eq!(resp.code, 200);
    assert_eq!(resp.cseq(), Some(i64::from(dh.cseq)));
    assert!(parse_date(resp.date().expect("Date")).is_some());
}

#[tokio::test]
async fn nf_verbs_of_the_dmss_profile_are_accepted_by_a_dmss_cloud() {
    let sim = start(|o| o.profile = Profile::dmss()).await;
    let mut dh = Dh::new(udp().await);
    dh.profile = Profile::dmss();
    let resp = dh
        .call(sim.cloud_addr(), Verb::Get, "/probe/p2psrv", None)
        .await;
    assert_eq!(resp.code, 200);
    let mut smartpss = Dh::new(udp().await);
    let resp = smartpss
        .call(sim.cloud_addr(), Verb::Get, "/probe/p2psrv", None)
        .await;
    assert_eq!(resp.code, 401, "another profile's pair is refused");
}

// ----- cloud: lookups -----

#[tokio::test]
async fn lookup_chain_returns_loopback_addresses() {
    let sim = start(|_| {}).await;
    let serial = sim.info().serial;
    let mut dh = Dh::new(udp().await);
    let r = dh
        .call(
            sim.cloud_addr(),
            Verb::Get,
            &format!("/online/p2psrv/{serial}"),
            None,
        )
        .await;
    let us: SocketAddr = xml(&r).get("US").unwrap().parse().unwrap();
    assert!(is_loopback(&us) && us == sim.p2p_server_addr());
    let r = dh
        .call(us, Verb::Get, &format!("/probe/device/{serial}"), None)
        .await;
    assert_eq!(r.code, 200);
    let r = dh
        .call(sim.cloud_addr(), Verb::Get, "/online/relay", None)
        .await;
    let relay: SocketAddr = xml(&r).get("Address").unwrap().parse().unwrap();
    assert_eq!(relay, sim.relay_addr());
    let r = dh.call(relay, Verb::Get, "/relay/agent", None).await;
    let agent: SocketAddr = xml(&r).get("Agent").unwrap().parse().unwrap();
    assert!(is_loopback(&agent) && agent == sim.agent_addr());
    assert!(!xml(&r).get("Token").unwrap().is_empty());
}

#[tokio::test]
async fn unknown_serial_is_404() {
    let sim = start(|_| {}).await;
    let mut dh = Dh::new(udp().await);
    let r = dh
        .call(
            sim.cloud_addr(),
            Verb::Get,
            "/online/p2psrv/NOSUCHSERIAL",
            None,
        )
        .await;
    assert_eq!(r.code, 404);
    let r = dh
        .call(
            sim.p2p_server_addr(),
            Verb::Get,
            "/probe/device/NOSUCHSERIAL",
            None,
        )
        .await;
    assert_eq!(r.code, 404);
}

#[tokio::test]
async fn unknown_serial_always_200_names_the_p2p_server_anyway() {
    let sim = start(|o| o.unknown_serial_always_200 = true).await;
    let mut dh = Dh::new(udp().await);
    let r = dh
        .call(
            sim.cloud_addr(),
            Verb::Get,
            "/online/p2psrv/NOSUCHSERIAL",
            None,
        )
        .await;
    assert_eq!(r.code, 200);
    assert_eq!(
        xml(&r).get("US").unwrap(),
        sim.p2p_server_addr().to_string()
    );
}

#[tokio::test]
async fn info_device_decrypts_to_the_device_salt() {
    let sim = start(|o| o.device_mut().rand_salt = "0123456789abcdef0123456789abcdef".into()).await;
    let mut dh = Dh::new(udp().await);
    let r = dh
        .call(
            sim.p2p_server_addr(),
            Verb::Get,
            &format!("/info/device/{}", sim.info().serial),
            None,
        )
        .await;
    let info = decrypt_info(xml(&r).get("Info").unwrap()).unwrap();
    assert_eq!(
        info.rand_salt.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(info.rtsp_port, Some(554));
    assert_eq!(info.http_port, Some(80));
}

#[tokio::test]
async fn offline_device_probe_and_p2p_channel_are_404() {
    let sim = start(|o| o.device_mut().online = false).await;
    let serial = sim.info().serial;
    let sock = udp().await;
    let mut dh = Dh::new(sock.clone());
    let r = dh
        .call(
            sim.p2p_server_addr(),
            Verb::Get,
            &format!("/probe/device/{serial}"),
            None,
        )
        .await;
    assert_eq!(r.code, 404);
    let body = p2p_body(&sock, Aid::default(), &device_creds(&sim, SIM_RAND_SALT));
    let r = dh
        .call(
            sim.cloud_addr(),
            Verb::Post,
            &format!("/device/{serial}/p2p-channel"),
            Some(&body),
        )
        .await;
    assert_eq!(r.code, 404);
}

// ----- cloud: p2p-channel and device auth -----

async fn p2p_channel_status(
    sim: &DahuaP2pSim,
    body: impl FnOnce(&UdpSocket) -> XmlBody,
) -> Response {
    let sock = udp().await;
    let mut dh = Dh::new(sock.clone());
    let body = body(&sock);
    dh.call(
        sim.cloud_addr(),
        Verb::Post,
        &format!("/device/{}/p2p-channel", sim.info().serial),
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn type1_p2p_channel_without_auth_is_403_invalid_salt() {
    let sim = start(|_| {}).await;
    let r = p2p_channel_status(&sim, |s| {
        P2pChannelRequest {
            aid: Aid::default(),
            local: LocalAddrList::single(local_of(s)),
            version: "5.0.0".into(),
        }
        .type0_body(IdentifyStyle::Unpadded, true)
    })
    .await;
    assert_eq!(r.code, 403);
    assert_eq!(xml(&r).get("ErrCode"), Some("4"));
    assert_eq!(r.error_text().as_deref(), Some("DevPwd_InvalidSalt"));
}

#[tokio::test]
async fn type1_p2p_channel_with_a_wrong_password_is_403_invalid_digest() {
    let sim = start(|_| {}).await;
    let user = sim.info().username;
    let wrong = DeviceCredentials::with_salt(&user, "wrong-password", SIM_RAND_SALT);
    let r = p2p_channel_status(&sim, |s| p2p_body(s, Aid::default(), &wrong)).await;
    assert_eq!(r.code, 403);
    assert_eq!(r.error_text().as_deref(), Some("DevPwd_InvalidDigest"));
    let record = &sim.observed().p2p_channels[0];
    assert!(record.has_auth);
    assert_eq!(record.status, 403);
}

#[tokio::test]
async fn type1_p2p_channel_with_the_right_password_gets_100_then_200_with_a_decryptable_local_addr()
{
    let sim = start(|_| {}).await;
    let serial = sim.info().serial;
    let creds = device_creds(&sim, SIM_RAND_SALT);
    let sock = udp().await;
    let mut dh = Dh::new(sock.clone());
    let aid = Aid::random(&mut rand::thread_rng());
    let body = p2p_body(&sock, aid, &creds);
    let cseq = dh
        .send(
            sim.cloud_addr(),
            Verb::Post,
            &format!("/device/{serial}/p2p-channel"),
            Some(&body),
        )
        .await;
    let (trying, _) = recv_http(&sock, WAIT).await.unwrap();
    assert_eq!((trying.code, trying.reason.as_str()), (100, "Trying"));
    let (ok, _) = recv_http(&sock, WAIT).await.unwrap();
    assert_eq!((ok.code, ok.reason.as_str()), (200, "Server Nat Info!"));
    assert_eq!(ok.cseq(), Some(i64::from(cseq)));
    assert!(ok.date().is_some());
    assert_eq!(ok.content_length(), Some(ok.body.len()));
    let nat = ServerNatInfo::from_body(&xml(&ok)).unwrap();
    assert_eq!(nat.aid, Some(aid));
    let device = sim.device_addr(&serial).unwrap();
    assert_eq!(nat.pub_addr.map(SocketAddr::V4), Some(device));
    assert!(nat.nonce.is_some());
    let local = nat.local_addrs(Some(&creds.key())).unwrap();
    assert_eq!(local.last().map(SocketAddr::V4), Some(device));
    assert!(nat.allows("p2p") && nat.allows("udprelay"));
    assert_eq!(nat.version.as_deref(), Some("6.0.0"));
    let rec = &sim.observed().p2p_channels[0];
    assert_eq!(
        rec.from,
        sock.local_addr().unwrap(),
        "the client's mapping is recorded"
    );
    assert_eq!(rec.status, 200);
}

#[tokio::test]
async fn missing_pubaddr_leaves_pubaddr_out_of_server_nat_info() {
    let sim = start(|o| {
        o.missing_pubaddr = true;
        o.device_mut().device_type = 0;
    })
    .await;
    let r = p2p_channel_status(&sim, |s| {
        P2pChannelRequest {
            aid: Aid::default(),
            local: LocalAddrList::single(local_of(s)),
            version: "5.0.0".into(),
        }
        .type0_body(IdentifyStyle::Unpadded, false)
    })
    .await;
    assert_eq!(r.code, 200);
    let nat = ServerNatInfo::from_body(&xml(&r)).unwrap();
    assert_eq!(nat.pub_addr, None);
    assert!(nat.local_addr.is_some());
}

// ----- cloud: reply faults -----

#[tokio::test]
async fn drop_first_datagram_ignores_the_first_copy_and_answers_the_retransmit() {
    let sim = start(|o| o.drop_first_datagram = true).await;
    let sock = udp().await;
    let mut dh = Dh::new(sock.clone());
    let (d, _) = dh.build(Verb::Get, "/probe/p2psrv", None);
    sock.send_to(&d, sim.cloud_addr()).await.unwrap();
    assert!(recv_http(&sock, Duration::from_millis(300)).await.is_none());
    sock.send_to(&d, sim.cloud_addr()).await.unwrap();
    let (r, _) = recv_http(&sock, WAIT)
        .await
        .expect("the retransmit is answered");
    assert_eq!(r.code, 200);
    let seen = sim.observed();
    assert_eq!(seen.requests_to("/probe/p2psrv"), 2);
    assert!(seen.requests[0].dropped && !seen.requests[1].dropped);
}

#[tokio::test]
async fn duplicate_responses_and_cseq_zero_shape_every_reply() {
    let sim = start(|o| {
        o.duplicate_responses = true;
        o.cseq_zero = true;
    })
    .await;
    let sock = udp().await;
    let mut dh = Dh::new(sock.clone());
    dh.send(sim.cloud_addr(), Verb::Get, "/probe/p2psrv", None)
        .await;
    for _ in 0..2 {
        let (r, _) = recv_http(&sock, WAIT).await.expect("two copies");
        assert_eq!((r.code, r.cseq()), (200, Some(0)));
    }
}

#[tokio::test]
async fn relay_refused_dispatcher_answers_503() {
    let sim = start(|o| o.relay_refused = true).await;
    let mut dh = Dh::new(udp().await);
    let r = dh
        .call(sim.relay_addr(), Verb::Get, "/relay/agent", None)
        .await;
    assert_eq!(r.code, 503);
}

// ----- punch -----

#[tokio::test]
async fn device_answers_an_inverted_binding_request_with_a_success_carrying_the_aid() {
    let sim = start(|_| {}).await;
    let flow = cloud_handshake(&sim).await;
    let pub_addr = SocketAddr::V4(flow.nat.pub_addr.unwrap());
    let txid: [u8; 12] = rand::random();
    let req =
        StunMessage::binding_request(MAGIC_COOKIE, txid, flow.aid, flow.nat.pub_addr.unwrap());
    flow.s_dev
        .send_to(&req.to_inverted_bytes(), pub_addr)
        .await
        .unwrap();
    let (resp, from) = loop {
        let (m, from) = recv_stun(&flow.s_dev, BINDING_SUCCESS, WAIT)
            .await
            .expect("no Binding Success");
        if m.txid == txid {
            break (m, from);
        }
    };
    assert_eq!(from, pub_addr);
    assert_eq!(resp.aid(), Some(flow.aid));
    assert!(!resp.is_controlling(), "ICE-CONTROLLED in the answer");
    assert!(resp.address().is_some());
    assert!(sim.observed().stun.responses_sent >= 1);
}

#[tokio::test]
async fn device_punches_toward_the_recorded_client_mapping() {
    let sim = start(|_| {}).await;
    let flow = cloud_handshake(&sim).await;
    let (req, from) = recv_stun(&flow.s_dev, BINDING_REQUEST, WAIT)
        .await
        .expect("the device's own Binding Request");
    assert_eq!(from, SocketAddr::V4(flow.nat.pub_addr.unwrap()));
    assert_eq!(req.aid(), Some(flow.aid));
}

#[tokio::test]
async fn punch_fails_device_sends_and_answers_no_stun() {
    let sim = start(|o| o.device_mut().punch_fails = true).await;
    let flow = cloud_handshake(&sim).await;
    let pub_addr = flow.nat.pub_addr.unwrap();
    let req = StunMessage::binding_request(MAGIC_COOKIE, rand::random(), flow.aid, pub_addr);
    flow.s_dev
        .send_to(&req.to_inverted_bytes(), SocketAddr::V4(pub_addr))
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let got = tokio::time::timeout(Duration::from_millis(600), async {
        loop {
            let (n, _) = flow.s_dev.recv_from(&mut buf).await.unwrap();
            if classify(&buf[..n]) == Kind::InvertedStun {
                return;
            }
        }
    })
    .await;
    assert!(got.is_err(), "no STUN from a device whose punch fails");
    let stun = sim.observed().stun;
    assert_eq!((stun.requests_sent, stun.responses_sent), (0, 0));
    assert!(stun.ignored >= 1);
}

// ----- PTCP and realms -----

#[tokio::test]
async fn direct_path_carries_rtsp_options_after_the_agent_sign_and_device_auth() {
    let sim = start(|_| {}).await;
    let flow = cloud_handshake(&sim).await;
    let (_agent, sign) = agent_sign(&flow).await;
    let relay = &sim.observed().relay_sessions[0];
    assert_eq!(relay.sign, sign, "the agent hands out the session's sign");
    let mut dev = Ptcp::new(
        flow.s_dev.clone(),
        SocketAddr::V4(flow.nat.pub_addr.unwrap()),
    );
    dev.connect().await;
    dev.s.authenticate(&sign);
    dev.wait(WAIT, |e| match e {
        Event::Authenticated => Some(true),
        Event::AuthFailed => Some(false),
        _ => None,
    })
    .await
    .filter(|ok| *ok)
    .expect("device auth");
    assert!(dev.bind(0x1234_5678, 554).await, "CONN for port 554");
    let answer = dev.ask(0x1234_5678, OPTIONS).await;
    assert_rtsp_ok(&answer);
    let seen = sim.observed();
    let realm = seen.realms.iter().find(|r| r.realm == 0x1234_5678).unwrap();
    assert_eq!(
        (realm.via, realm.port, realm.connected),
        (RealmVia::Direct, 554, true)
    );
    let ptcp = seen.ptcp_of(&PtcpOwner::Device(sim.info().serial));
    assert!(
        ptcp.iter()
            .any(|p| p.authenticated && p.stats.data_bytes_sent > 0)
    );
}

#[tokio::test]
async fn device_refuses_bind_before_auth() {
    let sim = start(|_| {}).await;
    let flow = cloud_handshake(&sim).await;
    let mut dev = Ptcp::new(
        flow.s_dev.clone(),
        SocketAddr::V4(flow.nat.pub_addr.unwrap()),
    );
    dev.connect().await;
    assert!(!dev.bind(7, 554).await, "DISC without the sign");
    assert!(
        sim.observed().realms.is_empty(),
        "no realm reached a service"
    );
}

#[tokio::test]
async fn device_refuses_a_wrong_sign() {
    let sim = start(|_| {}).await;
    let flow = cloud_handshake(&sim).await;
    let (_agent, _sign) = agent_sign(&flow).await;
    let mut dev = Ptcp::new(
        flow.s_dev.clone(),
        SocketAddr::V4(flow.nat.pub_addr.unwrap()),
    );
    dev.connect().await;
    dev.s.authenticate(b"not the agent's sign");
    let authed = dev
        .wait(Duration::from_millis(1500), |e| {
            matches!(e, Event::Authenticated).then_some(())
        })
        .await;
    assert!(authed.is_none());
    assert!(!dev.bind(9, 554).await);
    let serial = sim.info().serial;
    assert!(
        sim.observed()
            .ptcp_of(&PtcpOwner::Device(serial))
            .iter()
            .any(|p| p.auth_failed)
    );
}

#[tokio::test]
async fn device_refuses_a_port_it_does_not_serve() {
    let sim = start(|o| o.device_mut().require_sign = false).await;
    let flow = cloud_handshake(&sim).await;
    let mut dev = Ptcp::new(
        flow.s_dev.clone(),
        SocketAddr::V4(flow.nat.pub_addr.unwrap()),
    );
    dev.connect().await;
    assert!(!dev.bind(11, 37777).await);
    assert!(dev.bind(12, 554).await, "app dialect: realms without auth");
}

#[tokio::test]
async fn realm_port_80_reaches_the_web_responder() {
    let sim = start(|o| o.device_mut().require_sign = false).await;
    let flow = cloud_handshake(&sim).await;
    let mut dev = Ptcp::new(
        flow.s_dev.clone(),
        SocketAddr::V4(flow.nat.pub_addr.unwrap()),
    );
    dev.connect().await;
    assert!(dev.bind(80, 80).await);
    let answer = dev.ask(80, b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn relay_path_carries_rtsp_options_through_the_agent() {
    let sim = start(|o| o.device_mut().punch_fails = true).await;
    let flow = cloud_handshake(&sim).await;
    let mut agent = Ptcp::new(flow.s_rly.clone(), flow.agent);
    agent.connect().await;
    assert!(
        agent.bind(0xabcd, 554).await,
        "CONN relayed from the device"
    );
    let answer = agent.ask(0xabcd, OPTIONS).await;
    assert_rtsp_ok(&answer);
    let seen = sim.observed();
    let realm = seen
        .realms
        .iter()
        .find(|r| r.via == RealmVia::Relay)
        .unwrap();
    assert_eq!(
        (realm.peer, realm.port, realm.connected),
        (sim.agent_addr(), 554, true)
    );
    assert_eq!(seen.counters.relay_realms, 1);
    assert!(seen.requests.iter().any(|r| r.server == Server::Agent));
}

#[tokio::test]
async fn relay_path_survives_ptcp_loss_duplication_and_reordering() {
    let sim = start(|o| {
        o.ptcp_loss = 0.1;
        o.ptcp_dup = 0.1;
        o.ptcp_reorder = 0.1;
        o.ptcp_seed = 7;
    })
    .await;
    let flow = cloud_handshake(&sim).await;
    let mut agent = Ptcp::new(flow.s_rly.clone(), flow.agent);
    agent.connect().await;
    for realm in 1..=3u32 {
        assert!(agent.bind(realm, 554).await);
        let answer = agent.ask(realm, OPTIONS).await;
        assert_rtsp_ok(&answer);
    }
}

#[tokio::test]
async fn disc_after_closes_the_realm_from_the_device_side() {
    let sim = start(|o| {
        let d = o.device_mut();
        d.require_sign = false;
        d.disc_after = Some(Duration::from_millis(300));
    })
    .await;
    let flow = cloud_handshake(&sim).await;
    let mut dev = Ptcp::new(
        flow.s_dev.clone(),
        SocketAddr::V4(flow.nat.pub_addr.unwrap()),
    );
    dev.connect().await;
    assert!(dev.bind(5, 554).await);
    let closed = dev
        .wait(WAIT, |e| matches!(e, Event::RealmClosed(5)).then_some(()))
        .await;
    assert!(closed.is_some(), "device DISC");
    assert_eq!(sim.observed().counters.device_discs, 1);
}

/// Runs one TCP connection through `realm` until either side closes.
async fn tunnel_one(ptcp: &mut Ptcp, realm: u32, tcp: tokio::net::TcpStream) {
    let (mut rd, mut wr) = tcp.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16384];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut pending: VecDeque<u8> = VecDeque::new();
    let mut buf = vec![0u8; 65536];
    let mut tcp_open = true;
    loop {
        if !pending.is_empty() {
            let chunk: Vec<u8> = pending.iter().copied().collect();
            let n = ptcp.s.send(realm, &chunk);
            pending.drain(..n);
        }
        ptcp.flush().await;
        while let Some(e) = ptcp.events.pop_front() {
            let written = match e {
                Event::Data { realm: r, data } if r == realm => wr.write_all(&data).await.is_ok(),
                Event::RealmClosed(r) if r == realm => false,
                _ => true,
            };
            if !written {
                return;
            }
        }
        let until = ptcp
            .s
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        let until = tokio::time::Instant::from_std(until.max(Instant::now()));
        tokio::select! {
            r = ptcp.sock.recv_from(&mut buf) => {
                let (n, from) = r.unwrap();
                if from == ptcp.peer && classify(&buf[..n]) == Kind::Ptcp {
                    let _ = ptcp.s.handle_input(Instant::now(), &buf[..n]);
                }
            }
            chunk = rx.recv(), if tcp_open && pending.len() < 65536 => match chunk {
                Some(c) => pending.extend(c),
                None => {
                    tcp_open = false;
                    ptcp.s.close_realm(realm);
                }
            },
            () = tokio::time::sleep_until(until) => ptcp.s.handle_timeout(Instant::now()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_the_camera_through_a_direct_realm_with_dahuas_url() {
    let sim = start(|_| {}).await;
    let flow = cloud_handshake(&sim).await;
    let (_agent, sign) = agent_sign(&flow).await;
    let mut dev = Ptcp::new(
        flow.s_dev.clone(),
        SocketAddr::V4(flow.nat.pub_addr.unwrap()),
    );
    dev.connect().await;
    dev.s.authenticate(&sign);
    dev.wait(WAIT, |e| matches!(e, Event::Authenticated).then_some(()))
        .await
        .expect("device auth");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = sim
        .rtsp_url(&sim.info().serial, listener.local_addr().unwrap().port())
        .unwrap();
    let ffmpeg = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                &url,
            ])
            .args(["-map", "0:v:0", "-frames:v", "25", "-f", "framemd5", "-"])
            .output()
    });
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("ffmpeg connects")
        .unwrap();
    assert!(dev.bind(0x5151, 554).await);
    let pump = tokio::time::timeout(Duration::from_secs(60), tunnel_one(&mut dev, 0x5151, tcp));
    let (out, pumped) = tokio::join!(ffmpeg, pump);
    assert!(pumped.is_ok(), "the realm outlived ffmpeg");
    let out = out.unwrap().expect("cannot run ffmpeg; run scripts/setup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(frames, 25, "{stderr}");
}
