//! The simulated P2P server "US": `/probe/device/{SN}` (200 online, 404 offline or unknown)
//! and `/info/device/{SN}` (the device's salt and ports, encrypted as `<Info>`).

use std::net::SocketAddr;
use std::sync::Arc;

use dahua_p2p::devauth::encrypt_info;
use dahua_p2p::dhhttp::{Request, Response};
use dahua_p2p::xmlbody::XmlBody;
use tracing::{debug, info};

use super::endpoint::{HttpHandler, not_found, reply, xml_reply};
use super::state::{Shared, segments};

/// The US request handler.
pub(crate) struct P2pServer {
    pub shared: Arc<Shared>,
    /// `devp2pver` in `<Info>`.
    pub p2p_version: String,
}

impl HttpHandler for P2pServer {
    fn handle(&mut self, req: &Request, _from: SocketAddr) -> Vec<Response> {
        let segs = segments(&req.path);
        let r = match segs.as_slice() {
            ["probe", "device", sn] => {
                let online = self.shared.lock().devices.get(*sn).map(|d| d.online);
                match online {
                    Some(true) => reply(req, 200, "OK"),
                    Some(false) => {
                        info!(serial = sn, "US: device offline, 404");
                        not_found(req, None)
                    }
                    None => {
                        info!(serial = sn, "US: unknown device, 404");
                        not_found(req, None)
                    }
                }
            }
            ["info", "device", sn] => {
                let salt = self
                    .shared
                    .lock()
                    .devices
                    .get(*sn)
                    .map(|d| d.creds.rand_salt.clone());
                match salt {
                    Some(salt) => {
                        let json = serde_json::json!({
                            "randsalt": salt,
                            "devp2pver": self.p2p_version,
                            "rtspport": 554,
                            "httpport": 80,
                        });
                        let info = encrypt_info(&json.to_string());
                        xml_reply(req, 200, "OK", &XmlBody::new().with("Info", info))
                    }
                    None => not_found(req, None),
                }
            }
            _ => {
                debug!(path = %req.path, "US: unknown path");
                not_found(req, None)
            }
        };
        vec![r]
    }
}
