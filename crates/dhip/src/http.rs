//! DHIP's HTTP side on the device's web port: RPC2 (`/RPC2_Login`, `/RPC2` with the session
//! in the JSON and in cookies), RPC_Loadfile (recorded files, and live DHAV from a
//! `streamReader` object) and the Digest-protected CGI (`snapshot.cgi`,
//! `/cgi-bin/RPC_Loadfile`). A small HTTP/1.1 client of its own: one connection per request,
//! `Content-Length`, chunked and read-to-close bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::auth::{self, LoginError, Stage1};
use crate::client::{ClientConfig, Error};
use crate::digest;
use crate::envelope::{Request, Response, SessionId};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest RPC2 reply body accepted.
const MAX_RPC_BODY: usize = 16 << 20;

/// The cookie header value carrying `session` under every name firmware looks for.
pub fn session_cookie(session: &SessionId) -> String {
    format!(
        "WebClientSessionID={session}; DWebClientSessionID={session}; DhWebClientSessionID={session}"
    )
}

/// A response head and its body reader.
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header lines (name, value).
    pub headers: Vec<(String, String)>,
    body: BodyReader,
}

enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    Close,
}

struct BodyReader {
    rd: BufReader<TcpStream>,
    framing: Framing,
    finished: bool,
    /// Reused read buffer; handed-out pieces are split off it.
    buf: BytesMut,
}

/// Largest piece of body read at once.
const READ_CHUNK: usize = 64 * 1024;

impl HttpResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        self.body.chunk().await
    }

    /// The whole body, refusing more than `limit` bytes.
    pub async fn bytes(&mut self, limit: usize) -> std::io::Result<Bytes> {
        let mut out = BytesMut::new();
        while let Some(c) = self.chunk().await? {
            if out.len() + c.len() > limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("HTTP body larger than {limit} bytes"),
                ));
            }
            out.extend_from_slice(&c);
        }
        Ok(out.freeze())
    }
}

impl BodyReader {
    /// Reads at most `max` body bytes into the reusable buffer and hands them out without a
    /// further copy; `Ok(None)` at the end of the connection.
    async fn read_some(&mut self, max: usize) -> std::io::Result<Option<Bytes>> {
        self.buf.reserve(READ_CHUNK);
        let n = (&mut self.rd)
            .take(max.min(READ_CHUNK) as u64)
            .read_buf(&mut self.buf)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(self.buf.split().freeze()))
    }

    async fn chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        if self.finished {
            return Ok(None);
        }
        match &mut self.framing {
            Framing::Length(0) | Framing::Chunked { done: true, .. } => {
                self.finished = true;
                Ok(None)
            }
            Framing::Length(left) => {
                let want = *left as usize;
                let c = self
                    .read_some(want)
                    .await?
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                if let Framing::Length(left) = &mut self.framing {
                    *left -= c.len() as u64;
                }
                Ok(Some(c))
            }
            Framing::Close => {
                let c = self.read_some(usize::MAX).await?;
                self.finished = c.is_none();
                Ok(c)
            }
            Framing::Chunked { left, .. } => {
                if *left == 0 {
                    let line = read_line(&mut self.rd).await?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("bad chunk size line {line:?}"),
                        )
                    })?;
                    if size == 0 {
                        // Trailers until the empty line.
                        while !read_line(&mut self.rd).await?.is_empty() {}
                        self.finished = true;
                        return Ok(None);
                    }
                    if let Framing::Chunked { left, .. } = &mut self.framing {
                        *left = size;
                    }
                }
                let want = match &self.framing {
                    Framing::Chunked { left, .. } => *left as usize,
                    _ => 0,
                };
                let c = self
                    .read_some(want)
                    .await?
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                if let Framing::Chunked { left, .. } = &mut self.framing {
                    *left -= c.len() as u64;
                    if *left == 0 {
                        read_line(&mut self.rd).await?;
                    }
                }
                Ok(Some(c))
            }
        }
    }
}

async fn read_line(rd: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = (&mut *rd).take(8192).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// Sends one request on a new connection to `addr` and reads the response head.
pub async fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let fut = async {
        let sock = TcpStream::connect(addr).await?;
        let _ = sock.set_nodelay(true);
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut rd = BufReader::new(sock);
        rd.get_mut().write_all(req.as_bytes()).await?;
        rd.get_mut().write_all(body).await?;
        let mut head = Vec::new();
        loop {
            let before = head.len();
            let n = (&mut rd)
                .take((MAX_HEAD - head.len().min(MAX_HEAD)) as u64)
                .read_until(b'\n', &mut head)
                .await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the device closed the connection before a complete HTTP response head",
                ));
            }
            if head.len() >= MAX_HEAD {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "HTTP response head too large",
                ));
            }
            let line = &head[before..];
            if line == b"\r\n" || line == b"\n" {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let mut lines = text.lines();
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not an HTTP response: {status_line:?}"),
                )
            })?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
            .collect();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let framing = if get("Transfer-Encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            Framing::Chunked {
                left: 0,
                done: false,
            }
        } else if let Some(n) = get("Content-Length").and_then(|v| v.parse().ok()) {
            Framing::Length(n)
        } else if method == "HEAD" || status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            Framing::Close
        };
        Ok(HttpResponse {
            status,
            headers,
            body: BodyReader {
                rd,
                framing,
                finished: false,
                buf: BytesMut::new(),
            },
        })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "HTTP request timed out"))?
}

/// An RPC2 session over HTTP.
pub struct HttpClient {
    addr: String,
    cfg: ClientConfig,
    session: std::sync::Mutex<Option<SessionId>>,
    next_id: AtomicU64,
    nc: AtomicU64,
}

impl HttpClient {
    /// A client for the web server at `host:port`, not yet logged in.
    pub fn new(host: &str, port: u16, cfg: ClientConfig) -> HttpClient {
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        HttpClient {
            addr,
            cfg,
            session: std::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            nc: AtomicU64::new(1),
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io {
            peer: self.addr.clone(),
            source: Arc::new(e),
        }
    }

    fn session(&self) -> Option<SessionId> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn post(&self, path: &str, req: &Request) -> Result<Response, Error> {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(s) = &req.session {
            headers.push(("Cookie", session_cookie(s)));
        }
        let mut resp = send(
            &self.addr,
            "POST",
            path,
            &headers,
            &req.to_json(),
            self.cfg.call_timeout,
        )
        .await
        .map_err(|e| self.io(e))?;
        if resp.status != 200 {
            let loc = resp.header("Location").map(str::to_owned);
            return Err(Error::Rpc {
                peer: self.addr.clone(),
                method: req.method.clone(),
                code: i64::from(resp.status),
                message: Some(match loc {
                    Some(l) => format!(
                        "HTTP {} to {l} (RPC2 is locked on this firmware)",
                        resp.status
                    ),
                    None => format!("HTTP {}", resp.status),
                }),
            });
        }
        let body = resp.bytes(MAX_RPC_BODY).await.map_err(|e| self.io(e))?;
        Response::from_json(&body).map_err(|source| Error::Envelope {
            peer: self.addr.clone(),
            source,
        })
    }

    /// The two-stage login on `/RPC2_Login`.
    pub async fn login(&self) -> Result<(), Error> {
        let cfg = &self.cfg;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let r1 = self
            .post(
                "/RPC2_Login",
                &Request::new(
                    "global.login",
                    auth::stage1_params(&cfg.username, &cfg.client_type),
                    id,
                ),
            )
            .await?;
        let challenge = match Stage1::from_response(&r1, 0) {
            Ok(Stage1::Challenge(c)) => c,
            Ok(Stage1::AlreadyAuthenticated(s)) => {
                *self.session.lock().unwrap_or_else(|e| e.into_inner()) = s;
                return Ok(());
            }
            Err(source) => {
                return Err(Error::Login {
                    peer: self.addr.clone(),
                    source,
                });
            }
        };
        let params =
            auth::stage2_params(&cfg.username, &cfg.password, &cfg.client_type, &challenge)
                .map_err(|source| Error::Login {
                    peer: self.addr.clone(),
                    source,
                })?;
        let mut req = Request::new(
            "global.login",
            params,
            self.next_id.fetch_add(1, Ordering::Relaxed),
        );
        req.session = challenge.session.clone();
        let r2 = self.post("/RPC2_Login", &req).await?;
        if !r2.is_success() {
            return Err(Error::Login {
                peer: self.addr.clone(),
                source: LoginError::from_failure(&r2, &cfg.username, 2),
            });
        }
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) =
            r2.session.clone().or(challenge.session);
        Ok(())
    }

    /// Sends one call on `/RPC2` (`result:false` is returned, not raised).
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        object: Option<u64>,
    ) -> Result<Response, Error> {
        let mut req = Request::new(method, params, self.next_id.fetch_add(1, Ordering::Relaxed));
        req.session = self.session();
        req.object = object;
        let r = self.post("/RPC2", &req).await?;
        let code = r.error.as_ref().map_or(0, |e| e.code);
        if crate::codes::is_invalid_session(code) {
            self.login().await?;
            req.session = self.session();
            return self.post("/RPC2", &req).await;
        }
        Ok(r)
    }

    /// Calls `method`: an error unless `result` is truthy, else the useful part of the reply.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        object: Option<u64>,
    ) -> Result<Value, Error> {
        let r = self.request(method, params, object).await?;
        if !r.is_success() {
            return Err(Error::Rpc {
                peer: self.addr.clone(),
                method: method.to_string(),
                code: r.error.as_ref().map_or(0, |e| e.code),
                message: r.error.as_ref().and_then(|e| e.message.clone()),
            });
        }
        Ok(r.extract())
    }

    /// `global.logout`.
    pub async fn logout(&self) -> Result<(), Error> {
        if self.session().is_some() {
            let _ = self.request("global.logout", json!({}), None).await;
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(())
    }

    async fn get_with_session(&self, path: &str, timeout: Duration) -> Result<HttpResponse, Error> {
        let mut headers = Vec::new();
        if let Some(s) = self.session() {
            headers.push(("Cookie", session_cookie(&s)));
        }
        send(&self.addr, "GET", path, &headers, &[], timeout)
            .await
            .map_err(|e| self.io(e))
    }

    /// GET with HTTP Digest (Basic when the device offers only that).
    pub async fn get_authenticated(&self, path: &str) -> Result<HttpResponse, Error> {
        let first = send(&self.addr, "GET", path, &[], &[], self.cfg.call_timeout)
            .await
            .map_err(|e| self.io(e))?;
        if first.status != 401 {
            return Ok(first);
        }
        let challenges: Vec<String> = first
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("WWW-Authenticate"))
            .map(|(_, v)| v.clone())
            .collect();
        drop(first);
        let auth = if let Some(c) = challenges.iter().find_map(|h| digest::Challenge::parse(h)) {
            let nc = self.nc.fetch_add(1, Ordering::Relaxed) as u32;
            let cnonce = format!("{:016x}", rand::random::<u64>());
            c.authorization(
                &self.cfg.username,
                &self.cfg.password,
                "GET",
                path,
                nc,
                &cnonce,
            )
        } else if challenges
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("basic"))
        {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", self.cfg.username, self.cfg.password))
            )
        } else {
            return Err(Error::Rpc {
                peer: self.addr.clone(),
                method: format!("GET {path}"),
                code: 401,
                message: Some("HTTP 401 without a Digest or Basic challenge".into()),
            });
        };
        send(
            &self.addr,
            "GET",
            path,
            &[("Authorization", auth)],
            &[],
            self.cfg.call_timeout,
        )
        .await
        .map_err(|e| self.io(e))
    }

    fn status_error(&self, what: &str, status: u16) -> Error {
        Error::Rpc {
            peer: self.addr.clone(),
            method: what.to_string(),
            code: i64::from(status),
            message: Some(match status {
                401 => "HTTP 401: wrong user name or password".to_string(),
                404 => "HTTP 404: not found on the device".to_string(),
                s => format!("HTTP {s}"),
            }),
        }
    }

    /// A JPEG from `/cgi-bin/snapshot.cgi?channel=N` (N is 1-based on most firmware).
    pub async fn snapshot(&self, channel: u32) -> Result<Bytes, Error> {
        let path = format!("/cgi-bin/snapshot.cgi?channel={channel}");
        let mut r = self.get_authenticated(&path).await?;
        if r.status != 200 {
            return Err(self.status_error("snapshot.cgi", r.status));
        }
        let body = r.bytes(64 << 20).await.map_err(|e| self.io(e))?;
        if !body.starts_with(&[0xff, 0xd8]) {
            return Err(Error::Unexpected {
                peer: self.addr.clone(),
                method: "snapshot.cgi".into(),
                reply: format!("{} bytes that are not a JPEG", body.len()),
            });
        }
        Ok(body)
    }

    /// Downloads a recorded file (`/RPC_Loadfile<path>` with the session; a path under
    /// `/cgi-bin/` uses Digest) into `out`; returns the bytes written.
    pub async fn download(
        &self,
        path: &str,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        if !path.starts_with('/') {
            return Err(Error::Refused(format!(
                "{path:?} is not a device file path (they start with /)"
            )));
        }
        let mut r = if self.session().is_some() {
            self.get_with_session(&format!("/RPC_Loadfile{path}"), self.cfg.call_timeout)
                .await?
        } else {
            self.get_authenticated(&format!("/cgi-bin/RPC_Loadfile{path}"))
                .await?
        };
        if r.status != 200 {
            return Err(self.status_error("RPC_Loadfile", r.status));
        }
        let mut n = 0u64;
        while let Some(c) = r.chunk().await.map_err(|e| self.io(e))? {
            out.write_all(&c).await.map_err(|e| self.io(e))?;
            n += c.len() as u64;
        }
        out.flush().await.map_err(|e| self.io(e))?;
        Ok(n)
    }

    /// Starts live DHAV of `channel`/`subtype`: `streamReader.create` and `start`, then
    /// `GET /RPC_Loadfile/<object>` on a connection of its own. Returns the object (for
    /// [`HttpClient::close_stream`]) and the response whose body is the stream.
    pub async fn open_stream(
        &self,
        channel: u32,
        subtype: u32,
    ) -> Result<(u64, HttpResponse), Error> {
        let v = self
            .call(
                "streamReader.create",
                json!({"channel": channel, "subtype": subtype}),
                None,
            )
            .await?;
        let object = crate::envelope::as_u64_lenient(&v)
            .or_else(|| v.get("object").and_then(crate::envelope::as_u64_lenient))
            .or_else(|| {
                v.get("instanceID")
                    .and_then(crate::envelope::as_u64_lenient)
            })
            .ok_or_else(|| Error::Unexpected {
                peer: self.addr.clone(),
                method: "streamReader.create".into(),
                reply: v.to_string(),
            })?;
        // Some firmware streams on create; a refused start is not fatal.
        let _ = self
            .request("streamReader.start", json!({}), Some(object))
            .await;
        let r = self
            .get_with_session(&format!("/RPC_Loadfile/{object}"), self.cfg.call_timeout)
            .await;
        match r {
            Ok(r) if r.status == 200 => Ok((object, r)),
            Ok(r) => {
                self.close_stream(object).await;
                Err(self.status_error("RPC_Loadfile", r.status))
            }
            Err(e) => {
                self.close_stream(object).await;
                Err(e)
            }
        }
    }

    /// `streamReader.stop` and `destroy` (best effort).
    pub async fn close_stream(&self, object: u64) {
        let _ = self
            .request("streamReader.stop", json!({}), Some(object))
            .await;
        let _ = self
            .request("streamReader.destroy", json!({}), Some(object))
            .await;
    }

    /// Records `duration` of live DHAV of `channel`/`subtype` into `out` (from the first
    /// byte); returns the bytes written.
    pub async fn stream(
        &self,
        channel: u32,
        subtype: u32,
        duration: Duration,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        let (object, r) = self.open_stream(channel, subtype).await?;
        let result = self.pull(r, duration, out).await;
        self.close_stream(object).await;
        result
    }

    async fn pull(
        &self,
        mut r: HttpResponse,
        duration: Duration,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        let mut n = 0u64;
        let mut started: Option<Instant> = None;
        loop {
            let left = match started {
                Some(t) => match duration.checked_sub(t.elapsed()) {
                    Some(l) => l,
                    None => break,
                },
                None => self.cfg.call_timeout,
            };
            let c = match tokio::time::timeout(left.min(self.cfg.call_timeout), r.chunk()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(self.io(e)),
                Err(_) if started.is_some() && left <= self.cfg.call_timeout => break,
                Err(_) => {
                    return Err(Error::Timeout {
                        peer: self.addr.clone(),
                        method: "RPC_Loadfile".into(),
                        after: self.cfg.call_timeout,
                    });
                }
            };
            started.get_or_insert_with(Instant::now);
            out.write_all(&c).await.map_err(|e| self.io(e))?;
            n += c.len() as u64;
        }
        out.flush().await.map_err(|e| self.io(e))?;
        Ok(n)
    }
}
