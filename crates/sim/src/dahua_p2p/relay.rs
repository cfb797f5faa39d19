//! The simulated relay dispatcher: `/relay/agent` allocates a token (and the sign the agent
//! will hand out on that session) and names the agent; `/relay/unbind/{Token}` frees it.
//! With `relay_refused` it answers `/relay/agent` with `503 Service Unavailable`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dahua_p2p::dhhttp::{Request, Response};
use dahua_p2p::xmlbody::XmlBody;
use rand::Rng;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::agent::AgentCmd;
use super::endpoint::{HttpHandler, not_found, reply, xml_reply};
use super::state::{RelayEntry, Shared, segments};

/// Length of the sign the agent hands out (the real length is unknown; Imou HA accepts
/// 1..4084 bytes).
pub(crate) const SIGN_LEN: usize = 32;

/// The dispatcher's request handler.
pub(crate) struct Dispatcher {
    pub shared: Arc<Shared>,
    pub agent_addr: SocketAddr,
    pub agent: UnboundedSender<AgentCmd>,
    pub refused: bool,
}

impl HttpHandler for Dispatcher {
    fn handle(&mut self, req: &Request, from: SocketAddr) -> Vec<Response> {
        let segs = segments(&req.path);
        let r = match segs.as_slice() {
            ["relay", "agent"] if self.refused => {
                info!(%from, "fault relay_refused: /relay/agent answered 503");
                xml_reply(
                    req,
                    503,
                    "Service Unavailable",
                    &XmlBody::new().with("Error", "NoAgentAvailable"),
                )
            }
            ["relay", "agent"] => {
                let mut rng = rand::thread_rng();
                let token = format!("{:032x}", rng.r#gen::<u128>());
                let mut sign = vec![0u8; SIGN_LEN];
                rng.fill(&mut sign[..]);
                let mut st = self.shared.lock();
                st.relay_seq += 1;
                let seq = st.relay_seq;
                st.relay.insert(
                    token.clone(),
                    RelayEntry {
                        sign: Bytes::from(sign),
                        client: None,
                        device: None,
                        unbound: false,
                        seq,
                    },
                );
                info!(%from, token = %token, agent = %self.agent_addr, "relay: agent allocated");
                xml_reply(
                    req,
                    200,
                    "OK",
                    &XmlBody::new()
                        .with("Token", token)
                        .with("Agent", self.agent_addr.to_string()),
                )
            }
            ["relay", "unbind", token] => {
                let found = match self.shared.lock().relay.get_mut(*token) {
                    Some(r) => {
                        r.unbound = true;
                        true
                    }
                    None => false,
                };
                if found {
                    info!(%from, token, "relay: unbound");
                    if self
                        .agent
                        .send(AgentCmd::Unbind {
                            token: (*token).to_owned(),
                        })
                        .is_err()
                    {
                        warn!("relay: the agent task is gone");
                    }
                    reply(req, 200, "OK")
                } else {
                    not_found(req, None)
                }
            }
            _ => {
                debug!(path = %req.path, "relay: unknown path");
                not_found(req, None)
            }
        };
        vec![r]
    }
}
