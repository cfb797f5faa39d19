//! The cloud handshake of §2.6: lookups on the relay socket, the p2p-channel request on the
//! device socket (type 0, or type 1 with the device's credentials), the relay agent and the
//! relay-channel, PTCP with the agent, and in direct mode the punch and PTCP with the device;
//! relay mode (or the fallback when the punch fails) uses the agent session as the data path.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::cloud::{Answer, CloudSocket, Outcome, sleep_until};
use super::driver::{self, Leg, SessionHandle};
use super::punch::punch;
use super::{ClientConfig, DeviceAuth, Mode, P2pError};
use crate::addr::{Aid, LocalAddrList};
use crate::devauth::{DeviceCredentials, rand_salt_from_info_body};
use crate::dhhttp::{
    CSeqCounter, CloudError, P2pChannelRequest, Profile, RetransmitSchedule, ServerNatInfo,
    StartOptions, Transactor, TransactorConfig, Verb, clock_offset,
};
use crate::ptcp::{Event, Session};
use crate::xmlbody::{ElementOrder, XmlBody};

/// Clock-skew answers tolerated (each one resyncs the clock) before giving up.
const SKEW_RETRIES: usize = 3;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Signs requests for one profile with the cloud's clock.
struct Cloud {
    profile: Profile,
    offset: AtomicI64,
}

impl Cloud {
    fn now(&self) -> i64 {
        unix_now() + self.offset.load(Ordering::Relaxed)
    }

    fn learn_date(&self, a: &Answer) {
        if let Some(off) = a.response.date().and_then(|d| clock_offset(d, unix_now())) {
            let old = self.offset.swap(off, Ordering::Relaxed);
            if (old - off).abs() > 2 {
                debug!(offset = off, "cloud clock offset");
            }
        }
    }

    /// One signed request with clock-skew retries; error statuses become [`CloudError`]s.
    async fn call(
        &self,
        sock: &mut CloudSocket,
        dest: SocketAddr,
        verb: Verb,
        path: &str,
        body: Option<&[u8]>,
        opts: StartOptions,
    ) -> Result<Answer, P2pError> {
        for attempt in 0..=SKEW_RETRIES {
            let req = {
                let mut rng = rand::thread_rng();
                self.profile.request(verb, path, body, self.now(), &mut rng)
            };
            match sock.exchange(dest, req, opts.clone()).await? {
                Outcome::Final(a) => {
                    self.learn_date(&a);
                    if let Some(e) = CloudError::classify(&a.request, a.from, &a.response) {
                        return Err(e.into());
                    }
                    return Ok(a);
                }
                Outcome::ClockSkew(a) => {
                    self.learn_date(&a);
                    warn!(%dest, path, "the cloud says our clock is off; resynced from its Date");
                    if attempt == SKEW_RETRIES {
                        let e = CloudError::classify(&a.request, a.from, &a.response)
                            .expect("a 401 classifies");
                        return Err(e.into());
                    }
                }
                Outcome::TimedOut {
                    dest,
                    request,
                    transmissions,
                } => return Err(CloudError::no_answer(&request, dest, transmissions).into()),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}

/// An address element of an answer.
fn addr_in(a: &Answer, tag: &str) -> Result<SocketAddr, P2pError> {
    let bad = |reason: String| P2pError::BadAnswer {
        path: a.request.path.clone(),
        peer: a.from,
        reason,
    };
    let body = a
        .response
        .body_xml()
        .map_err(|e| bad(format!("body is not XML: {e}")))?;
    let v = body
        .get(tag)
        .ok_or_else(|| bad(format!("no <{tag}>")))?
        .trim()
        .to_owned();
    v.parse()
        .map_err(|_| bad(format!("<{tag}>{v}</{tag}> is not ip:port")))
}

fn text_in(a: &Answer, tag: &str) -> Result<String, P2pError> {
    let body = a.response.body_xml().map_err(|e| P2pError::BadAnswer {
        path: a.request.path.clone(),
        peer: a.from,
        reason: format!("body is not XML: {e}"),
    })?;
    body.get(tag)
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| P2pError::BadAnswer {
            path: a.request.path.clone(),
            peer: a.from,
            reason: format!("no <{tag}>"),
        })
}

fn xml(body: &XmlBody) -> Vec<u8> {
    body.to_xml(ElementOrder::AsGiven).into_bytes()
}

/// The relay agent allocated for this session.
struct Agent {
    relay: SocketAddr,
    token: String,
    addr: SocketAddr,
}

/// Sets up a P2P session with the device (see the module docs) and starts its driver.
pub async fn connect(cfg: &ClientConfig) -> Result<SessionHandle, P2pError> {
    let started = Instant::now();
    let host = cfg.cloud_host().to_owned();
    let main: SocketAddr = tokio::net::lookup_host(&host)
        .await
        .map_err(|e| P2pError::Resolve {
            host: host.clone(),
            reason: e.to_string(),
        })?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| P2pError::Resolve {
            host: host.clone(),
            reason: "no IPv4 address".into(),
        })?;
    let cloud = Cloud {
        profile: cfg.profile.clone(),
        offset: AtomicI64::new(cfg.clock_offset),
    };
    let counter = CSeqCounter::new();
    let tx = || {
        Transactor::new(TransactorConfig {
            counter: counter.clone(),
            ..TransactorConfig::with_dialect(cfg.profile.dialect.clone())
        })
    };
    let bind = SocketAddr::new(cfg.bind, 0);
    let mut rly = CloudSocket::bind("relay", bind, tx()).await?;
    let mut dev = CloudSocket::bind("device", bind, tx()).await?;
    let sn = cfg.serial.as_str();
    let get = StartOptions::default();

    // Lookups.
    cloud
        .call(
            &mut rly,
            main,
            Verb::Get,
            "/probe/p2psrv",
            None,
            get.clone(),
        )
        .await?;
    let a = cloud
        .call(
            &mut rly,
            main,
            Verb::Get,
            &format!("/online/p2psrv/{sn}"),
            None,
            get.clone(),
        )
        .await?;
    let us = addr_in(&a, "US")?;
    cloud
        .call(
            &mut rly,
            us,
            Verb::Get,
            &format!("/probe/device/{sn}"),
            None,
            get.clone(),
        )
        .await?;
    let salt = match (&cfg.rand_salt, cfg.auth) {
        (Some(s), _) => Some(s.clone()),
        (None, DeviceAuth::Type0) => None,
        (None, _) => device_salt(&cloud, &mut rly, us, sn).await,
    };
    let a = cloud
        .call(
            &mut rly,
            main,
            Verb::Get,
            "/online/relay",
            None,
            get.clone(),
        )
        .await?;
    let relay = addr_in(&a, "Address")?;

    // p2p-channel (device socket) alongside the relay agent (relay socket).
    let aid = Aid::random(&mut rand::thread_rng());
    let dev_port = dev.local_addr()?.port();
    let creds = DeviceCredentials::with_salt(
        &cfg.username,
        &cfg.password,
        salt.as_deref().unwrap_or(crate::devauth::DEFAULT_RAND_SALT),
    );
    let mut type1 = cfg.auth == DeviceAuth::Type1;
    let (channel, agent) = tokio::join!(
        p2p_channel(
            &cloud,
            &mut dev,
            main,
            sn,
            aid,
            dev_port,
            type1.then_some(&creds)
        ),
        allocate_agent(&cloud, &mut rly, relay)
    );
    let (nat, reply_nonce) = match channel {
        Err(P2pError::Cloud(CloudError::DeviceAuthRequired { .. }))
            if cfg.auth == DeviceAuth::Auto =>
        {
            info!(serial = sn, "the device needs type-1 authentication");
            type1 = true;
            p2p_channel(&cloud, &mut dev, main, sn, aid, dev_port, Some(&creds)).await?
        }
        other => other?,
    };
    let key = type1.then(|| creds.key());
    let device_lan = nat
        .local_addrs(key.as_ref())
        .ok()
        .and_then(|l| l.last())
        .unwrap_or_else(|| SocketAddrV4::new([127, 0, 0, 1].into(), dev_port));
    debug!(serial = sn, pub_addr = ?nat.pub_addr, lan = %device_lan, policy = ?nat.policy, "device NAT info");

    let agent = match agent {
        Ok(a) => Some(a),
        Err(e) if cfg.mode == Mode::Relay => {
            return Err(P2pError::RelayRefused {
                serial: sn.into(),
                reason: e.to_string(),
            });
        }
        Err(e) => {
            warn!(serial = sn, "no relay agent: {e}");
            None
        }
    };

    // relay-channel, then PTCP with the agent (the sign for the device, or the data path).
    let mut agent_leg = None;
    let mut agent_err = None;
    if let Some(ag) = &agent {
        match relay_channel(
            &cloud,
            &mut rly,
            main,
            sn,
            ag,
            type1.then_some(&creds),
            reply_nonce,
        )
        .await
        {
            Ok(()) => match ptcp_agent(cfg, &mut rly, ag.addr, cfg.mode != Mode::Relay).await {
                Ok(leg) => agent_leg = Some(leg),
                Err(e) => agent_err = Some(e.to_string()),
            },
            Err(e) => agent_err = Some(e.to_string()),
        }
    }

    let (main_leg, aux, mode) = match cfg.mode {
        Mode::Relay => {
            let Some((session, _)) = agent_leg else {
                return Err(P2pError::RelayRefused {
                    serial: sn.into(),
                    reason: agent_err.unwrap_or_else(|| "no agent".into()),
                });
            };
            (
                leg(rly, agent.as_ref().expect("agent").addr, session),
                None,
                Mode::Relay,
            )
        }
        Mode::Direct | Mode::Auto => {
            let sign = agent_leg.as_ref().and_then(|(_, s)| s.clone());
            let direct = match (&sign, nat.pub_addr) {
                (Some(sign), Some(pub_addr)) => {
                    let mut targets = vec![pub_addr];
                    if device_lan != pub_addr {
                        targets.push(device_lan);
                    }
                    match punch(&mut dev, aid, &targets, device_lan, cfg.punch_timeout).await? {
                        Some(peer) => match ptcp_device(cfg, &mut dev, peer, sign).await {
                            Ok(session) => Ok((peer, session)),
                            Err(e) => Err(e.to_string()),
                        },
                        None => Err(format!(
                            "no STUN answer from {} in {:.1} s",
                            targets
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            cfg.punch_timeout.as_secs_f64()
                        )),
                    }
                }
                (None, _) => Err(format!(
                    "no sign from the relay agent ({})",
                    agent_err.clone().unwrap_or_else(|| "no agent".into())
                )),
                (_, None) => Err("the cloud gave no device public address".into()),
            };
            match direct {
                Ok((peer, session)) => {
                    let aux =
                        agent_leg.map(|(s, _)| leg(rly, agent.as_ref().expect("agent").addr, s));
                    (leg(dev, peer, session), aux, Mode::Direct)
                }
                Err(why) if cfg.mode == Mode::Direct => {
                    return Err(P2pError::PunchFailed {
                        serial: sn.into(),
                        targets: why,
                        secs: cfg.punch_timeout.as_secs_f64(),
                    });
                }
                Err(why) => {
                    warn!(serial = sn, "direct path failed ({why}); using the relay");
                    let Some(ag) = &agent else {
                        return Err(P2pError::PunchFailedRelayRefused {
                            serial: sn.into(),
                            relay: agent_err.unwrap_or_else(|| "no agent".into()),
                        });
                    };
                    // A session that already asked for the sign is reused as is: the agent
                    // relays realms on it the same way.
                    let session = match agent_leg {
                        Some((s, _)) => s,
                        None => {
                            return Err(P2pError::PunchFailedRelayRefused {
                                serial: sn.into(),
                                relay: agent_err.unwrap_or_else(|| "no agent session".into()),
                            });
                        }
                    };
                    (leg(rly, ag.addr, session), None, Mode::Relay)
                }
            }
        }
    };
    info!(
        serial = sn,
        %mode,
        peer = %main_leg.peer,
        ms = started.elapsed().as_millis() as u64,
        "P2P session established"
    );
    let on_exit = agent.map(|ag| {
        let profile = cfg.profile.clone();
        let now = cloud.now();
        let sock = aux
            .as_ref()
            .map(|l| l.sock.clone())
            .unwrap_or_else(|| main_leg.sock.clone());
        Box::new(move || {
            let req = profile.request(
                Verb::Get,
                &format!("/relay/unbind/{}", ag.token),
                None,
                now,
                &mut rand::thread_rng(),
            );
            let _ = sock.try_send_to(&req.serialize(), ag.relay);
        }) as Box<dyn FnOnce() + Send>
    });
    Ok(driver::spawn(main_leg, aux, mode, on_exit))
}

fn leg(sock: CloudSocket, peer: SocketAddr, session: Session) -> Leg {
    let (sock, early) = sock.into_parts();
    Leg {
        sock,
        peer,
        session,
        early: early.into_iter().filter(|(f, _)| *f == peer).collect(),
    }
}

/// The device's salt from `/info/device` (newer firmware); `None` when the US has none.
async fn device_salt(
    cloud: &Cloud,
    rly: &mut CloudSocket,
    us: SocketAddr,
    sn: &str,
) -> Option<String> {
    let path = format!("/info/device/{sn}");
    match cloud
        .call(rly, us, Verb::Get, &path, None, StartOptions::default())
        .await
    {
        Ok(a) => match a.response.body_xml() {
            Ok(body) => match rand_salt_from_info_body(&body) {
                Ok(s) => s,
                Err(e) => {
                    warn!(serial = sn, "device info unreadable: {e}");
                    None
                }
            },
            Err(_) => None,
        },
        Err(e) => {
            debug!(serial = sn, "no device info: {e}");
            None
        }
    }
}

/// The p2p-channel request; returns the device's NAT info and the reply's nonce (type 1).
async fn p2p_channel(
    cloud: &Cloud,
    dev: &mut CloudSocket,
    main: SocketAddr,
    sn: &str,
    aid: Aid,
    dev_port: u16,
    type1: Option<&DeviceCredentials>,
) -> Result<(ServerNatInfo, Option<i64>), P2pError> {
    let req = P2pChannelRequest {
        aid,
        local: LocalAddrList::single(SocketAddrV4::new([127, 0, 0, 1].into(), dev_port)),
        version: cloud.profile.dialect.p2p_version.to_owned(),
    };
    let identify = cloud.profile.dialect.identify;
    let body = match type1 {
        None => req.type0_body(identify, true),
        Some(creds) => {
            let nonce = i64::from(rand::random::<u32>() >> 1);
            req.type1_body(identify, creds, nonce, cloud.now())
        }
    };
    let path = format!("/device/{sn}/p2p-channel");
    let a = cloud
        .call(
            dev,
            main,
            Verb::Post,
            &path,
            Some(&xml(&body)),
            StartOptions::default(),
        )
        .await?;
    let parsed = a.response.body_xml().map_err(|e| P2pError::BadAnswer {
        path: path.clone(),
        peer: a.from,
        reason: format!("body is not XML: {e}"),
    })?;
    let nat = ServerNatInfo::from_body(&parsed).map_err(|e| P2pError::BadAnswer {
        path,
        peer: a.from,
        reason: e.to_string(),
    })?;
    let nonce = nat.nonce;
    Ok((nat, nonce))
}

/// `/relay/agent` then `/relay/start/{Token}`, on the relay socket.
async fn allocate_agent(
    cloud: &Cloud,
    rly: &mut CloudSocket,
    relay: SocketAddr,
) -> Result<Agent, P2pError> {
    let a = cloud
        .call(
            rly,
            relay,
            Verb::Get,
            "/relay/agent",
            None,
            StartOptions::default(),
        )
        .await?;
    let token = text_in(&a, "Token")?;
    let addr = addr_in(&a, "Agent")?;
    let body = XmlBody::new().with("Client", ":0");
    cloud
        .call(
            rly,
            addr,
            Verb::Post,
            &format!("/relay/start/{token}"),
            Some(&xml(&body)),
            StartOptions::default(),
        )
        .await?;
    Ok(Agent { relay, token, addr })
}

/// `/device/{SN}/relay-channel` to the main server; the agent answers on the relay socket.
async fn relay_channel(
    cloud: &Cloud,
    rly: &mut CloudSocket,
    main: SocketAddr,
    sn: &str,
    agent: &Agent,
    type1: Option<&DeviceCredentials>,
    reply_nonce: Option<i64>,
) -> Result<(), P2pError> {
    let mut body = XmlBody::new();
    if let Some(creds) = type1 {
        let nonce = reply_nonce.unwrap_or_else(|| i64::from(rand::random::<u32>() >> 1));
        creds.auth_block(nonce, cloud.now(), "").write_to(&mut body);
    }
    body.push("agentAddr", agent.addr.to_string());
    cloud
        .call(
            rly,
            main,
            Verb::Post,
            &format!("/device/{sn}/relay-channel"),
            Some(&xml(&body)),
            StartOptions {
                schedule: Some(RetransmitSchedule::relay_channel()),
                answer_from: Some(agent.addr),
                refresh: false,
            },
        )
        .await?;
    Ok(())
}

/// Runs `session` over `sock` with `peer` until `done` says so or the deadline passes.
async fn establish<T>(
    sock: &mut CloudSocket,
    peer: SocketAddr,
    session: &mut Session,
    deadline: Instant,
    mut done: impl FnMut(&Event) -> Option<Result<T, String>>,
) -> Result<T, String> {
    loop {
        let now = Instant::now();
        while let Some(d) = session.poll_transmit(now) {
            sock.sock
                .send_to(&d, peer)
                .await
                .map_err(|e| e.to_string())?;
        }
        while let Some(ev) = session.poll_event() {
            if let Event::Closed(r) = &ev {
                return Err(format!("session closed: {r:?}"));
            }
            if let Some(r) = done(&ev) {
                // Send what the last input produced (acks) before returning.
                while let Some(d) = session.poll_transmit(Instant::now()) {
                    let _ = sock.sock.send_to(&d, peer).await;
                }
                return r;
            }
        }
        if now >= deadline {
            return Err("timed out".into());
        }
        let wake = session.poll_timeout().map_or(deadline, |t| t.min(deadline));
        let got = tokio::select! {
            r = sock.recv_other(wake.into()) => r.map_err(|e| e.to_string())?,
            _ = sleep_until(Some(wake)) => None,
        };
        match got {
            Some((from, d)) if from == peer => {
                let _ = session.handle_input(Instant::now(), &d);
            }
            Some(_) => {}
            None => session.handle_timeout(Instant::now()),
        }
    }
}

/// PTCP with the agent: SYN, and the sign when `want_sign` (direct mode).
async fn ptcp_agent(
    cfg: &ClientConfig,
    rly: &mut CloudSocket,
    agent: SocketAddr,
    want_sign: bool,
) -> Result<(Session, Option<Bytes>), P2pError> {
    let now = Instant::now();
    let mut session = Session::new(cfg.ptcp.clone(), now);
    session.connect(now);
    let fail = |reason: String| P2pError::Ptcp {
        serial: cfg.serial.clone(),
        peer_kind: "relay agent",
        peer: agent,
        reason,
    };
    let deadline = now + cfg.ptcp_timeout;
    establish(rly, agent, &mut session, deadline, |ev| {
        matches!(ev, Event::Connected).then_some(Ok(()))
    })
    .await
    .map_err(fail)?;
    if !want_sign {
        return Ok((session, None));
    }
    session.request_sign();
    let sign = establish(rly, agent, &mut session, deadline, |ev| match ev {
        Event::Sign(s) => Some(Ok(s.clone())),
        Event::SignTimeout => Some(Err("no sign (0x18) from the agent".to_string())),
        _ => None,
    })
    .await
    .map_err(fail)?;
    Ok((session, Some(sign)))
}

/// PTCP with the device after the punch: SYN, then the sign (0x19/0x1A/0x1B).
async fn ptcp_device(
    cfg: &ClientConfig,
    dev: &mut CloudSocket,
    peer: SocketAddr,
    sign: &[u8],
) -> Result<Session, P2pError> {
    let now = Instant::now();
    let mut session = Session::new(cfg.ptcp.clone(), now);
    session.connect(now);
    session.authenticate(sign);
    establish(
        dev,
        peer,
        &mut session,
        now + cfg.ptcp_timeout,
        |ev| match ev {
            Event::Authenticated => Some(Ok(())),
            Event::AuthFailed => Some(Err("the device refused the agent's sign".to_string())),
            _ => None,
        },
    )
    .await
    .map_err(|reason| P2pError::Ptcp {
        serial: cfg.serial.clone(),
        peer_kind: "device",
        peer,
        reason,
    })?;
    Ok(session)
}
