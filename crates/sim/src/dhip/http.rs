//! The device's web server: `POST /RPC2_Login` and `POST /RPC2` (JSON RPC over HTTP, session
//! in the JSON or a cookie), `GET /RPC_Loadfile/<object>` (a live DHAV stream for a
//! `streamReader` object), `GET /RPC_Loadfile<path>` (recorded files, session cookie),
//! `GET /cgi-bin/RPC_Loadfile<path>` and `GET /cgi-bin/snapshot.cgi` (HTTP Digest). A
//! minimal HTTP/1.1 with keep-alive; anything else is 404.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tracing::debug;

use super::device::Incoming;
use super::digest::DigestAuth;
use super::net::{ConnCmd, Shared};
use super::rpc::{Effect, codes};
use super::sessions::{Caller, Transport};

/// Longest request head.
const MAX_HEAD: usize = 16 * 1024;
/// Longest request body.
const MAX_BODY: usize = 1024 * 1024;
/// Cookies that carry the RPC2 session, in the order they are looked at.
const SESSION_COOKIES: &[&str] = &[
    "DhWebClientSessionID",
    "DWebClientSessionID",
    "WebClientSessionID",
];

/// A parsed request.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn cookie_session(&self) -> Option<String> {
        let cookies = self.header("cookie")?;
        for name in SESSION_COOKIES {
            for part in cookies.split(';') {
                if let Some((k, v)) = part.trim().split_once('=')
                    && k.trim() == *name
                    && !v.trim().is_empty()
                {
                    return Some(v.trim().trim_matches('"').to_owned());
                }
            }
        }
        None
    }

    fn keep_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    }
}

/// HTTP-side state: the Digest nonces.
pub struct Http {
    shared: Arc<Shared>,
    digest: Mutex<(DigestAuth, StdRng)>,
}

/// Accepts HTTP connections until the task is aborted.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let realm = shared.device().realm().to_owned();
    let http = Arc::new(Http {
        digest: Mutex::new((
            DigestAuth::new(&realm),
            StdRng::seed_from_u64(shared.opts.seed ^ 0x4854_5450),
        )),
        shared,
    });
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                if !http.shared.is_up() {
                    continue;
                }
                let (tx, rx) = unbounded_channel();
                let Some(conn) = http.shared.register(Transport::Http, tx) else {
                    continue;
                };
                let http = http.clone();
                tokio::spawn(async move {
                    if let Err(e) = http.connection(sock, peer, conn, rx).await {
                        debug!(%peer, "dhip sim http: {e}");
                    }
                    http.shared.unregister(conn);
                });
            }
            Err(e) => {
                debug!("dhip sim http: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Request>> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(std::io::Error::other(format!("bad request line {line:?}")));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(std::io::Error::other("request body too long"));
    }
    let start = head_end + 4;
    while buf.len() < start + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[start..start + len].to_vec();
    buf.drain(..start + len);
    Ok(Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    }))
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn json_response(v: &Value, cookie: Option<String>) -> Vec<u8> {
    let mut h = vec![("Content-Type", "application/json".to_owned())];
    if let Some(c) = cookie {
        h.push(("Set-Cookie", format!("DhWebClientSessionID={c}; path=/")));
    }
    response("200 OK", &h, v.to_string().as_bytes())
}

fn not_found() -> Vec<u8> {
    response("404 Not Found", &[], b"")
}

impl Http {
    async fn connection(
        self: &Arc<Self>,
        mut sock: TcpStream,
        peer: SocketAddr,
        conn: u64,
        mut rx: UnboundedReceiver<ConnCmd>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        loop {
            let req = tokio::select! {
                r = read_request(&mut sock, &mut buf) => match r? {
                    Some(r) => r,
                    None => return Ok(()),
                },
                cmd = rx.recv() => match cmd {
                    Some(ConnCmd::Write(b)) => { sock.write_all(&b).await?; continue }
                    _ => return Ok(()),
                },
            };
            let keep = req.keep_alive();
            let path = req.target.split('?').next().unwrap_or("").to_owned();
            if req.method == "GET"
                && let Some(rest) = path.strip_prefix("/RPC_Loadfile/")
                && let Ok(object) = rest.parse::<u32>()
            {
                return self.live(&mut sock, &req, object, &mut rx).await;
            }
            let (reply, close) = self.route(&req, &path, peer, conn);
            sock.write_all(&reply).await?;
            if close || !keep {
                let _ = sock.shutdown().await;
                return Ok(());
            }
        }
    }

    fn route(&self, req: &Request, path: &str, peer: SocketAddr, conn: u64) -> (Vec<u8>, bool) {
        let opts = &self.shared.opts;
        match (req.method.as_str(), path) {
            ("POST", "/RPC2_Login") => self.rpc(req, peer, conn, true),
            ("POST", "/RPC2") if opts.locked_firmware => (
                response(
                    "301 Moved Permanently",
                    &[("Location", "/".to_owned())],
                    b"",
                ),
                false,
            ),
            ("POST", "/RPC2") => self.rpc(req, peer, conn, false),
            ("GET", "/cgi-bin/snapshot.cgi") => match self.digest_gate(req) {
                Err(r) => (r, false),
                Ok(()) => {
                    let channel = req
                        .target
                        .split_once('?')
                        .and_then(|(_, q)| {
                            q.split('&')
                                .find_map(|kv| kv.strip_prefix("channel="))
                                .and_then(|c| c.parse::<usize>().ok())
                        })
                        .unwrap_or(1);
                    let chans = self.shared.device().identity().channels.max(1);
                    if channel > chans {
                        return (
                            response("400 Bad Request", &[], b"Error\r\nBad Request!\r\n"),
                            false,
                        );
                    }
                    let jpeg = self.shared.media.snapshot(channel.saturating_sub(1));
                    (
                        response(
                            "200 OK",
                            &[("Content-Type", "image/jpeg".to_owned())],
                            &jpeg,
                        ),
                        false,
                    )
                }
            },
            ("GET", p) if p.starts_with("/cgi-bin/RPC_Loadfile/") => match self.digest_gate(req) {
                Err(r) => (r, false),
                Ok(()) => (
                    self.file(&text::percent_decode(&p["/cgi-bin/RPC_Loadfile".len()..])),
                    false,
                ),
            },
            ("GET", p) if p.starts_with("/RPC_Loadfile/") => {
                let ok = req
                    .cookie_session()
                    .is_some_and(|c| self.shared.device().session_ok(&c));
                if !ok {
                    return (response("401 Unauthorized", &[], b""), false);
                }
                (
                    self.file(&text::percent_decode(&p["/RPC_Loadfile".len()..])),
                    false,
                )
            }
            _ => (not_found(), false),
        }
    }

    fn file(&self, path: &str) -> Vec<u8> {
        let Some(f) = self.shared.device().file(path) else {
            return not_found();
        };
        let bytes = self.shared.media.file(&f);
        response(
            "200 OK",
            &[("Content-Type", "application/octet-stream".to_owned())],
            &bytes,
        )
    }

    fn digest_gate(&self, req: &Request) -> Result<(), Vec<u8>> {
        let (user, password) = {
            let d = self.shared.device();
            let u = d.admin();
            (u.0, u.1)
        };
        let mut g = self.digest.lock().unwrap_or_else(|e| e.into_inner());
        if g.0
            .verify(req.header("authorization"), &req.method, &user, &password)
        {
            return Ok(());
        }
        let (auth, rng) = &mut *g;
        let challenge = auth.challenge(rng);
        Err(response(
            "401 Unauthorized",
            &[("WWW-Authenticate", challenge)],
            b"",
        ))
    }

    fn rpc(&self, req: &Request, peer: SocketAddr, conn: u64, login: bool) -> (Vec<u8>, bool) {
        let opts = &self.shared.opts;
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => json!({}),
        };
        let method = body.get("method").and_then(Value::as_str).unwrap_or("");
        if login && method != "global.login" {
            return (response("400 Bad Request", &[], b""), false);
        }
        let stage2 = method == "global.login"
            && body
                .get("params")
                .and_then(|p| p.get("password"))
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty());
        if stage2
            && let Some(max) = opts.max_connections
            && self.shared.device().http_sessions() >= max
        {
            return (response("401 Unauthorized", &[], b""), false);
        }
        let cookie = req.cookie_session();
        let handled = self.shared.device().handle(Incoming {
            caller: Caller {
                transport: Transport::Http,
                conn,
                addr: peer.to_string(),
            },
            req: &body,
            header: None,
            binary: &[],
            cookie_session: cookie.as_deref(),
        });
        let mut reply = handled.reply;
        if opts.http_challenge_401 && reply["error"]["code"] == json!(codes::LOGIN_CHALLENGE) {
            reply["error"]["code"] = json!(401);
        }
        let set_cookie =
            (method == "global.login" && reply["result"] == json!(true)).then(
                || match &reply["session"] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                },
            );
        self.shared.deliver(handled.pushes);
        let mut close = false;
        for e in handled.effects {
            match e {
                Effect::Close => close = true,
                Effect::Reboot => {
                    self.shared.power_cycle(Some(opts.reboot_delay));
                    close = true;
                }
                Effect::Shutdown => {
                    self.shared.power_cycle(None);
                    close = true;
                }
            }
        }
        (json_response(&reply, set_cookie), close)
    }

    async fn live(
        &self,
        sock: &mut TcpStream,
        req: &Request,
        object: u32,
        rx: &mut UnboundedReceiver<ConnCmd>,
    ) -> std::io::Result<()> {
        let authorised = req
            .cookie_session()
            .is_some_and(|c| self.shared.device().session_ok(&c));
        let stream = self.shared.device().stream_object(object);
        let Some(stream) = stream.filter(|_| authorised) else {
            let r = if authorised {
                not_found()
            } else {
                response("401 Unauthorized", &[], b"")
            };
            sock.write_all(&r).await?;
            return Ok(());
        };
        sock.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        )
        .await?;
        let mut live = self.shared.media.live(stream.channel, stream.subtype);
        let start = tokio::time::Instant::now();
        loop {
            let mut bytes = bytes::BytesMut::new();
            let due = live.next_chunk(&mut bytes);
            tokio::select! {
                _ = tokio::time::sleep_until(start + due) => {}
                cmd = rx.recv() => if !matches!(cmd, Some(ConnCmd::Write(_))) { return Ok(()) },
            }
            if self.shared.device().stream_object(object).is_none() {
                return Ok(());
            }
            sock.write_all(&bytes).await?;
        }
    }
}
