//! The DH-HTTP/UDP front every simulated cloud server shares: parse a request datagram,
//! record it, apply `drop_first_datagram`, check WSSE against the configured profile pair and
//! the clock-skew limit, and send replies through the reply faults. Also the serve loop of
//! the servers that speak nothing but DH-HTTP (main, US, relay dispatcher).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dahua_p2p::demux::{Kind, classify};
use dahua_p2p::dhhttp::{Method, Request, Response, parse_request};
use dahua_p2p::wsse::{AppCredentials, WsseError, verify};
use dahua_p2p::xmlbody::{ElementOrder, XmlBody};
use text::hex_excerpt;
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use super::faults::{DropFirst, ReplyFaults};
use super::state::{RequestRecord, Server, Shared, segments};

/// Largest datagram read (clients use 4 KiB to 64 KiB buffers).
pub(crate) const MAX_DATAGRAM: usize = 65_536;

/// Unix seconds now.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A reply with an XML body in the cloud's (key-sorted) order.
pub(crate) fn xml_reply(req: &Request, code: u16, reason: &str, body: &XmlBody) -> Response {
    Response::reply_to(req, code, reason, now_unix()).with_xml_body(
        body,
        ElementOrder::KeySorted,
        false,
    )
}

/// A reply without a body.
pub(crate) fn reply(req: &Request, code: u16, reason: &str) -> Response {
    Response::reply_to(req, code, reason, now_unix())
}

/// `404 Not Found`, optionally with an `<Error>` text.
pub(crate) fn not_found(req: &Request, error: Option<&str>) -> Response {
    match error {
        Some(e) => xml_reply(req, 404, "Not Found", &XmlBody::new().with("Error", e)),
        None => reply(req, 404, "Not Found"),
    }
}

/// What to do with a request datagram.
pub(crate) enum Admission {
    /// A valid, authenticated request for the handler.
    Accept(Request),
    /// Refused before the handler (401, 400): send this.
    Refuse(Response),
    /// Not a request, or dropped by a fault: nothing to send.
    Ignore,
}

/// Parsing, recording, the first-datagram fault and WSSE for one server.
pub(crate) struct HttpFront {
    server: Server,
    creds: AppCredentials,
    max_skew: Option<Duration>,
    drop_first: DropFirst,
    shared: Arc<Shared>,
    /// Paths (first segments joined) that need no WSSE (`/online/stun`).
    open_paths: &'static [&'static str],
}

impl HttpFront {
    /// A front for `server` checking `creds`.
    pub fn new(
        server: Server,
        creds: AppCredentials,
        max_skew: Option<Duration>,
        drop_first: bool,
        shared: Arc<Shared>,
        open_paths: &'static [&'static str],
    ) -> Self {
        HttpFront {
            server,
            creds,
            max_skew,
            drop_first: DropFirst::new(drop_first),
            shared,
            open_paths,
        }
    }

    /// Decides what to do with one datagram from `from`.
    pub fn admit(&mut self, datagram: &[u8], from: SocketAddr) -> Admission {
        let req = match parse_request(datagram) {
            Ok(r) => r,
            Err(e) => {
                debug!(server = ?self.server, error = %e.with_peer(from), "DH-HTTP: not a request, ignored");
                return Admission::Ignore;
            }
        };
        let cseq = req.headers.get("CSeq").map(str::to_owned);
        let dropped = self.drop_first.drop_this(from, cseq.as_deref(), &req.path);
        self.shared.lock().record_request(RequestRecord {
            server: self.server,
            method: req.method.as_str().to_owned(),
            path: req.path.clone(),
            from,
            cseq: cseq.clone(),
            dropped,
        });
        if dropped {
            info!(server = ?self.server, %from, path = %req.path, cseq = ?cseq, "fault: ignoring the first datagram of this request");
            return Admission::Ignore;
        }
        debug!(server = ?self.server, %from, method = %req.method, path = %req.path, cseq = ?cseq, "DH-HTTP request");
        if matches!(req.method, Method::Other(_)) {
            let r = xml_reply(
                &req,
                400,
                "Bad Request",
                &XmlBody::new().with("Error", "UnknownMethod"),
            );
            return Admission::Refuse(r);
        }
        let open = {
            let segs = segments(&req.path).join("/");
            self.open_paths.iter().any(|p| *p == segs)
        };
        if open {
            return Admission::Accept(req);
        }
        let Some(header) = req.headers.get("X-WSSE") else {
            info!(server = ?self.server, %from, path = %req.path, "401: no X-WSSE header");
            let r = reply(&req, 401, "Unauthorized");
            return Admission::Refuse(r);
        };
        let max = self.max_skew.map(|d| d.as_secs());
        match verify(&self.creds, header, now_unix(), max) {
            Ok(_) => Admission::Accept(req),
            Err(WsseError::ClockSkew { created, skew_secs }) => {
                info!(server = ?self.server, %from, path = %req.path, %created, skew_secs, "401 TimeOut: WSSE Created too far from the server clock");
                let r = xml_reply(
                    &req,
                    401,
                    "Unauthorized",
                    &XmlBody::new().with("Error", "TimeOut"),
                );
                Admission::Refuse(r)
            }
            Err(e) => {
                info!(server = ?self.server, %from, path = %req.path, error = %e, "401: WSSE rejected");
                let r = reply(&req, 401, "Unauthorized");
                Admission::Refuse(r)
            }
        }
    }
}

/// Sends replies from one socket through the reply faults.
#[derive(Clone)]
pub(crate) struct Replier {
    socket: Arc<UdpSocket>,
    faults: ReplyFaults,
}

impl Replier {
    /// A replier on `socket`.
    pub fn new(socket: Arc<UdpSocket>, faults: ReplyFaults) -> Self {
        Replier { socket, faults }
    }

    /// Sends `response` to `to` (twice with `duplicate_responses`).
    pub async fn send(&self, to: SocketAddr, response: Response) {
        debug!(%to, code = response.code, reason = %response.reason, cseq = ?response.headers.get("CSeq"), "DH-HTTP reply");
        for d in self.faults.datagrams(response) {
            if let Err(e) = self.socket.send_to(&d, to).await {
                warn!(%to, "cannot send a DH-HTTP reply: {e}");
            }
        }
    }
}

/// A server that answers DH-HTTP requests and nothing else.
pub(crate) trait HttpHandler: Send + 'static {
    /// The replies to send back to `from` for an admitted request (none: stay silent).
    fn handle(&mut self, req: &Request, from: SocketAddr) -> Vec<Response>;
}

/// Receives datagrams on `socket` forever, answering requests with `handler`.
pub(crate) async fn serve<H: HttpHandler>(
    socket: Arc<UdpSocket>,
    mut front: HttpFront,
    replier: Replier,
    mut handler: H,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                debug!("DH-HTTP server receive error (ignored): {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let d = &buf[..n];
        if classify(d) != Kind::Http {
            debug!(%from, bytes = %hex_excerpt(d), "non-HTTP datagram at a DH-HTTP server, ignored");
            continue;
        }
        let replies = match front.admit(d, from) {
            Admission::Accept(req) => handler.handle(&req, from),
            Admission::Refuse(r) => vec![r],
            Admission::Ignore => Vec::new(),
        };
        for r in replies {
            replier.send(from, r).await;
        }
    }
}
