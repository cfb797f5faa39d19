//! The simulated Easy4IPCloud main server (`--cloud`): lookups (`/probe/p2psrv`,
//! `/online/p2psrv/{SN}`, `/online/relay`, `/online/stun`), the p2p-channel (device auth for
//! type-1 devices, `100 Trying`, the device notification, then `200 Server Nat Info!`) and the
//! relay-channel (answered by the agent, not by main).

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dahua_p2p::addr::{IdentifyStyle, LocalAddrList};
use dahua_p2p::devauth::{AuthBlock, AuthCheckFailure, DeviceCredentials, verify};
use dahua_p2p::dhhttp::{ReceivedP2pChannel, Request, Response, ServerNatInfo};
use dahua_p2p::wsse::NonceStyle;
use dahua_p2p::xmlbody::{ElementOrder, XmlBody};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::agent::AgentCmd;
use super::device::DeviceCmd;
use super::endpoint::{HttpHandler, Replier, not_found, now_unix, reply, xml_reply};
use super::state::{Addrs, CHANNEL_PAIRING_WINDOW, Channel, P2pChannelRecord, Shared, segments};

/// What the main server needs to know beyond the shared state.
#[derive(Clone, Debug)]
pub(crate) struct CloudConfig {
    pub addrs: Addrs,
    pub identify: IdentifyStyle,
    pub unknown_serial_always_200: bool,
    pub nat_info_delay: Duration,
    pub missing_pubaddr: bool,
    pub version: String,
    pub relay_xml_prolog: bool,
}

/// The main server's request handler.
pub(crate) struct Cloud {
    pub cfg: CloudConfig,
    pub shared: Arc<Shared>,
    pub replier: Replier,
    pub agent: UnboundedSender<AgentCmd>,
}

/// A `403` refusal of device authentication, with the body dh-p2p#2 shows.
fn devpwd_refusal(req: &Request, failure: &AuthCheckFailure) -> Response {
    xml_reply(
        req,
        403,
        "Forbidden",
        &XmlBody::new()
            .with("ErrCode", "4")
            .with("Error", failure.cloud_error_text())
            .with("Policy", "p2p,udprelay"),
    )
}

fn bad_request(req: &Request, error: &str) -> Response {
    xml_reply(
        req,
        400,
        "Bad Request",
        &XmlBody::new().with("Error", error),
    )
}

impl HttpHandler for Cloud {
    fn handle(&mut self, req: &Request, from: SocketAddr) -> Vec<Response> {
        let segs = segments(&req.path);
        match segs.as_slice() {
            ["probe", "p2psrv"] => vec![reply(req, 200, "OK")],
            ["online", "stun"] => vec![reply(req, 200, "OK")],
            ["online", "p2psrv", sn] => vec![self.p2psrv(req, sn)],
            ["online", "relay"] => {
                let body = XmlBody::new().with("Address", self.cfg.addrs.relay.to_string());
                vec![
                    Response::reply_to(req, 200, "OK", now_unix()).with_xml_body(
                        &body,
                        ElementOrder::KeySorted,
                        self.cfg.relay_xml_prolog,
                    ),
                ]
            }
            ["device", sn, "p2p-channel"] => self.p2p_channel(req, from, sn),
            ["device", sn, "relay-channel"] => self.relay_channel(req, from, sn),
            _ => {
                debug!(path = %req.path, "main: unknown path");
                vec![not_found(req, None)]
            }
        }
    }
}

impl Cloud {
    fn p2psrv(&self, req: &Request, sn: &str) -> Response {
        let known = self.shared.lock().devices.contains_key(sn);
        if !known && !self.cfg.unknown_serial_always_200 {
            info!(serial = sn, "main: unknown serial, 404");
            return not_found(req, None);
        }
        let us = self.cfg.addrs.us.to_string();
        xml_reply(
            req,
            200,
            "OK",
            &XmlBody::new().with("DS", us.clone()).with("US", us),
        )
    }

    /// `/device/{SN}/p2p-channel`: check, record, `100 Trying` now, notify the device, and
    /// `200 Server Nat Info!` after `nat_info_delay`.
    fn p2p_channel(&mut self, req: &Request, from: SocketAddr, sn: &str) -> Vec<Response> {
        let mut record = P2pChannelRecord {
            serial: sn.to_owned(),
            from,
            aid: None,
            has_auth: false,
            status: 0,
            error: None,
        };
        let outcome = self.check_p2p_channel(req, from, sn, &mut record);
        let replies = match outcome {
            Err(refusal) => {
                record.status = refusal.code;
                record.error = refusal.error_text();
                vec![refusal]
            }
            Ok(accepted) => {
                record.status = 200;
                self.spawn_nat_info(req.clone(), from, accepted);
                vec![reply(req, 100, "Trying")]
            }
        };
        self.shared.lock().record_p2p_channel(record);
        replies
    }

    fn check_p2p_channel(
        &self,
        req: &Request,
        from: SocketAddr,
        sn: &str,
        record: &mut P2pChannelRecord,
    ) -> Result<Accepted, Response> {
        let body = req.body_xml().map_err(|e| {
            info!(serial = sn, %from, error = %e, "p2p-channel: body is not XML");
            bad_request(req, "BadBody")
        })?;
        let ch = ReceivedP2pChannel::from_body(&body).map_err(|e| {
            info!(serial = sn, %from, error = %e, "p2p-channel: unusable body");
            bad_request(req, "BadBody")
        })?;
        record.aid = Some(ch.aid);
        record.has_auth = ch.auth.is_some();
        let mut st = self.shared.lock();
        let Some(dev) = st.devices.get_mut(sn) else {
            info!(serial = sn, "p2p-channel: unknown serial, 404");
            return Err(not_found(req, None));
        };
        if !dev.online {
            info!(serial = sn, "p2p-channel: device offline, 404");
            return Err(not_found(req, None));
        }
        if dev.device_type != 0
            && let Err(f) = ch.verify(&dev.creds)
        {
            info!(serial = sn, %from, failure = %f, "p2p-channel: device auth refused, 403 {}", f.cloud_error_text());
            return Err(devpwd_refusal(req, &f));
        }
        let now = Instant::now();
        dev.channels
            .retain(|c| c.client != from && now.duration_since(c.at) < 2 * CHANNEL_PAIRING_WINDOW);
        dev.channels.push(Channel {
            client: from,
            aid: ch.aid,
            at: now,
            token: None,
            sign: None,
        });
        if dev
            .cmd
            .send(DeviceCmd::Channel {
                client: from,
                aid: ch.aid,
            })
            .is_err()
        {
            warn!(serial = sn, "p2p-channel: the device task is gone");
        }
        info!(serial = sn, %from, aid = %ch.aid, type1 = ch.auth.is_some(), "p2p-channel accepted: 100 Trying, device notified");
        let device = match dev.addr {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => SocketAddrV4::new([127, 0, 0, 1].into(), dev.addr.port()),
        };
        Ok(Accepted {
            info: ServerNatInfo {
                aid: Some(ch.aid),
                ip_encrypt: dev.device_type == 0 && ch.ip_encrypt,
                local_addr: None,
                nonce: None,
                nat_value: Some("1".into()),
                policy: vec!["p2p".into(), "udprelay".into()],
                pub_addr: (!self.cfg.missing_pubaddr).then_some(device),
                relay: Some(":0".into()),
                version: Some(self.cfg.version.clone()),
            },
            device,
            creds: (dev.device_type != 0).then(|| dev.creds.clone()),
        })
    }

    fn spawn_nat_info(&self, req: Request, to: SocketAddr, accepted: Accepted) {
        let replier = self.replier.clone();
        let delay = self.cfg.nat_info_delay;
        let identify = self.cfg.identify;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let built = tokio::task::spawn_blocking(move || accepted.body(identify)).await;
            let body = match built {
                Ok(b) => b,
                Err(e) => {
                    warn!("p2p-channel: building the Server Nat Info body failed: {e}");
                    return;
                }
            };
            let r = xml_reply(&req, 200, "Server Nat Info!", &body);
            info!(%to, "p2p-channel: 200 Server Nat Info!");
            replier.send(to, r).await;
        });
    }

    /// `/device/{SN}/relay-channel`: check device auth, attach the device to the relay
    /// session registered from this socket, pair that session's sign with the client's
    /// p2p-channel, and have the agent send the notice. Main itself only answers refusals.
    fn relay_channel(&mut self, req: &Request, from: SocketAddr, sn: &str) -> Vec<Response> {
        let body = match req.body_xml() {
            Ok(b) => b,
            Err(e) => {
                info!(serial = sn, %from, error = %e, "relay-channel: body is not XML");
                return vec![bad_request(req, "BadBody")];
            }
        };
        let mut st = self.shared.lock();
        let Some(dev) = st.devices.get(sn) else {
            return vec![not_found(req, None)];
        };
        if !dev.online {
            info!(serial = sn, "relay-channel: device offline, 404");
            return vec![not_found(req, None)];
        }
        if dev.device_type != 0
            && let Err(f) = check_relay_auth(&dev.creds, &body)
        {
            info!(serial = sn, %from, failure = %f, "relay-channel: device auth refused");
            return vec![devpwd_refusal(req, &f)];
        }
        let agent_ok = body
            .get("agentAddr")
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .is_some_and(|a| a == self.cfg.addrs.agent);
        if !agent_ok {
            info!(serial = sn, agent = ?body.get("agentAddr"), "relay-channel: not our agent");
            return vec![bad_request(req, "UnknownAgent")];
        }
        let Some(token) = st.relay_by_client(from).map(|(t, _)| t.clone()) else {
            info!(serial = sn, %from, "relay-channel: no /relay/start from this socket");
            return vec![not_found(req, Some("NoRelaySession"))];
        };
        let sign = match st.relay.get_mut(&token) {
            Some(r) => {
                r.device = Some(sn.to_owned());
                r.sign.clone()
            }
            None => return vec![not_found(req, Some("NoRelaySession"))],
        };
        if let Some(dev) = st.devices.get_mut(sn) {
            let now = Instant::now();
            let paired = dev
                .channels
                .iter()
                .any(|c| c.token.as_deref() == Some(token.as_str()));
            if !paired {
                // The oldest unpaired recent channel from the same client IP: clients send
                // p2p-channel, then relay-channel, so FIFO pairs concurrent clients correctly.
                if let Some(c) = dev.channels.iter_mut().find(|c| {
                    c.token.is_none()
                        && c.client.ip() == from.ip()
                        && now.duration_since(c.at) < CHANNEL_PAIRING_WINDOW
                }) {
                    debug!(serial = sn, client = %c.client, token = %token, "relay-channel: sign paired with p2p-channel");
                    c.token = Some(token.clone());
                    c.sign = Some(sign);
                }
            }
        }
        drop(st);
        info!(serial = sn, %from, token = %token, "relay-channel: device attached, agent notifies the client");
        let notice = reply(req, 200, "Server Nat Info!");
        if self
            .agent
            .send(AgentCmd::Notice {
                to: from,
                response: notice,
            })
            .is_err()
        {
            warn!("relay-channel: the agent task is gone");
        }
        Vec::new()
    }
}

/// The relay-channel auth block of a type-1 client: signs an empty payload.
fn check_relay_auth(creds: &DeviceCredentials, body: &XmlBody) -> Result<(), AuthCheckFailure> {
    if body.get("DevAuth").is_none() {
        return Err(AuthCheckFailure::Missing);
    }
    let block = AuthBlock::from_body(body).map_err(|_| AuthCheckFailure::BadDevAuth {
        user: body.get("UserName").unwrap_or_default().to_owned(),
    })?;
    verify(creds, &block, "")
}

/// An accepted p2p-channel: what the Server Nat Info body needs.
struct Accepted {
    info: ServerNatInfo,
    device: SocketAddrV4,
    /// Type-1 devices encrypt `LocalAddr` with DK of a fresh reply nonce.
    creds: Option<DeviceCredentials>,
}

impl Accepted {
    /// The body (runs PBKDF2 for type-1 devices: call off the async threads).
    fn body(mut self, identify: IdentifyStyle) -> XmlBody {
        let local = LocalAddrList::single(self.device);
        match &self.creds {
            Some(creds) => {
                let nonce = NonceStyle::NonNegative31.generate(&mut rand::thread_rng());
                self.info.nonce = Some(nonce);
                self.info.local_addr = Some(creds.key().encrypt(nonce, &local.to_string()));
            }
            None => {
                let local = if self.info.ip_encrypt {
                    local.ip_encrypted()
                } else {
                    local
                };
                self.info.local_addr = Some(local.to_string());
            }
        }
        self.info.to_body(identify)
    }
}
