//! A minimal RTSP/1.0 client and message parser: enough to OPTIONS, DESCRIBE, SETUP and PLAY
//! one video track over TCP interleaved or UDP, logging in with Digest or Basic when the
//! server asks and credentials were given ([`Client::set_credentials`]).

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::{Authorizer, Credentials};

/// Largest message head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One RTSP request or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// "RTSP/1.0 200 OK" or "PLAY rtsp://... RTSP/1.0".
    pub start_line: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length bytes).
    pub body: Vec<u8>,
}

impl Message {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status code of a response (0 if this is not a response).
    pub fn status(&self) -> u16 {
        let mut parts = self.start_line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(v), Some(code)) if v.starts_with("RTSP/") => code.parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// The method of a request (the first word of the start line).
    pub fn method(&self) -> &str {
        self.start_line.split_whitespace().next().unwrap_or("")
    }

    /// The URL of a request (the second word of the start line).
    pub fn url(&self) -> &str {
        self.start_line.split_whitespace().nth(1).unwrap_or("")
    }
}

/// Parses one message at the start of `buf`: `Ok(None)` if more bytes are needed, else the
/// message and the bytes it used.
pub fn parse_message(buf: &[u8]) -> Result<Option<(Message, usize)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!(
                "no end of RTSP head in {} bytes (first bytes {:02x?})",
                buf.len(),
                &buf[..16]
            ));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| format!("RTSP head is not UTF-8: {:02x?}", &buf[..end.min(32)]))?;
    let mut lines = head.split("\r\n");
    let start_line = lines.next().unwrap_or("").trim().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>())
        .transpose()
        .map_err(|_| "bad Content-Length".to_string())?
        .unwrap_or(0);
    let total = end + 4 + len;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((
        Message {
            start_line,
            headers,
            body: buf[end + 4..total].to_vec(),
        },
        total,
    )))
}

/// An RTSP control connection.
pub struct Client {
    /// The socket (after PLAY over TCP, interleaved data arrives here).
    pub sock: TcpStream,
    /// Bytes read but not yet consumed (after PLAY: the first interleaved data).
    pub buf: BytesMut,
    cseq: u32,
    /// The session id from SETUP, without parameters.
    pub session: Option<String>,
    /// The login, when credentials were given.
    auth: Option<Authorizer>,
}

impl Client {
    /// Connects to `host:port`.
    pub async fn connect(addr: &str) -> Result<Client, String> {
        let sock = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = sock.set_nodelay(true);
        Ok(Client {
            sock,
            buf: BytesMut::with_capacity(64 * 1024),
            cseq: 0,
            session: None,
            auth: None,
        })
    }

    /// Logs in with `creds` when the server answers 401 (Digest preferred, else Basic).
    pub fn set_credentials(&mut self, creds: Credentials) {
        self.auth = Some(Authorizer::new(creds));
    }

    /// Writes a request without waiting for its response.
    pub async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<(), String> {
        self.cseq += 1;
        let mut req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: camgate-bench\r\n",
            self.cseq
        );
        if let Some(s) = &self.session {
            req.push_str(&format!("Session: {s}\r\n"));
        }
        if let Some(h) = self.auth.as_mut().and_then(|a| a.header(method, url)) {
            req.push_str(&format!("Authorization: {h}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.sock
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("{method} {url}: write: {e}"))
    }

    /// Sends a request and reads its response, which must be 2xx; interleaved data that
    /// arrives before it is skipped. A 401 is answered with the credentials, if any (twice at
    /// most: the first challenge, then a stale nonce).
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<Message, String> {
        let mut tries = 0;
        loop {
            self.send(method, url, headers).await?;
            let m = self.response(method, url).await?;
            if m.status() == 401
                && tries < 2
                && let Some(a) = self.auth.as_mut()
                && a.on_unauthorized(m.header_values("www-authenticate"))
            {
                tries += 1;
                continue;
            }
            if !(200..300).contains(&m.status()) {
                return Err(format!("{method} {url}: {}", m.start_line));
            }
            if let Some(s) = m.header("session") {
                let id = s.split(';').next().unwrap_or("").trim().to_string();
                self.session = Some(id);
            }
            return Ok(m);
        }
    }

    /// Reads the next response (any status); interleaved data and server requests before it
    /// are skipped.
    async fn response(&mut self, method: &str, url: &str) -> Result<Message, String> {
        loop {
            if self.buf.first() == Some(&b'$') {
                if self.buf.len() >= 4 {
                    let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                    if self.buf.len() >= 4 + len {
                        self.buf.advance(4 + len);
                        continue;
                    }
                }
            } else if !self.buf.is_empty()
                && let Some((m, used)) =
                    parse_message(&self.buf).map_err(|e| format!("{method} {url}: {e}"))?
            {
                self.buf.advance(used);
                if m.status() == 0 {
                    // A request from the server (e.g. OPTIONS keep-alive): ignore.
                    continue;
                }
                return Ok(m);
            }
            self.buf.reserve(16 * 1024);
            match self.sock.read_buf(&mut self.buf).await {
                Ok(0) => return Err(format!("{method} {url}: connection closed")),
                Ok(_) => {}
                Err(e) => return Err(format!("{method} {url}: read: {e}")),
            }
        }
    }
}

/// The first video media of an SDP: payload type, rtpmap/fmtp values and control.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VideoMedia {
    /// The first payload type of the m= line.
    pub payload_type: u8,
    /// The `a=rtpmap` value for it ("96 H264/90000").
    pub rtpmap: Option<String>,
    /// The `a=fmtp` value for it.
    pub fmtp: Option<String>,
    /// The media's `a=control`.
    pub control: Option<String>,
}

/// The first `m=video` section of `sdp`.
pub fn first_video(sdp: &str) -> Option<VideoMedia> {
    let mut video: Option<VideoMedia> = None;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if video.is_some() {
                break;
            }
            if let Some(rest) = m.strip_prefix("video ") {
                let pt = rest.split_whitespace().nth(2)?.parse().ok()?;
                video = Some(VideoMedia {
                    payload_type: pt,
                    ..VideoMedia::default()
                });
            }
            continue;
        }
        let Some(v) = video.as_mut() else { continue };
        let pt_prefix = format!("{} ", v.payload_type);
        if let Some(r) = line.strip_prefix("a=rtpmap:") {
            if r.starts_with(&pt_prefix) {
                v.rtpmap = Some(r.to_string());
            }
        } else if let Some(f) = line.strip_prefix("a=fmtp:") {
            if f.starts_with(&pt_prefix) {
                v.fmtp = Some(f.to_string());
            }
        } else if let Some(c) = line.strip_prefix("a=control:") {
            v.control = Some(c.trim().to_string());
        }
    }
    video
}

/// Resolves a media's `a=control` against the presentation's base URL.
pub fn join_url(base: &str, control: &str) -> String {
    if control.starts_with("rtsp://") || control.starts_with("rtsps://") {
        return control.to_string();
    }
    if control.is_empty() || control == "*" {
        return base.to_string();
    }
    if base.ends_with('/') {
        format!("{base}{control}")
    } else {
        format!("{base}/{control}")
    }
}

/// "host:port" of an rtsp:// URL (port 554 if absent).
pub fn host_port(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("rtsp://")
        .ok_or_else(|| format!("{url:?} is not an rtsp:// URL"))?;
    let hostport = rest.split('/').next().unwrap_or("");
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    if hostport.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        Ok(hostport.to_string())
    } else {
        Ok(format!("{hostport}:554"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_message_waits_for_body_then_returns_it() {
        let raw = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nabcXYZ";
        assert_eq!(parse_message(&raw[..raw.len() - 4]).unwrap(), None);
        let (m, used) = parse_message(raw).unwrap().unwrap();
        assert_eq!(used, raw.len() - 3);
        assert_eq!(m.status(), 200);
        assert_eq!(m.header("cseq"), Some("2"));
        assert_eq!(m.body, b"abc");
    }

    #[test]
    fn parse_message_reads_requests() {
        let raw = b"PLAY rtsp://h/s RTSP/1.0\r\nCSeq: 4\r\n\r\n";
        let (m, _) = parse_message(raw).unwrap().unwrap();
        assert_eq!((m.method(), m.url(), m.status()), ("PLAY", "rtsp://h/s", 0));
    }

    #[test]
    fn first_video_finds_pt_rtpmap_fmtp_control() {
        let sdp = "v=0\r\nm=audio 0 RTP/AVP 8\r\na=control:a\r\nm=video 0 RTP/AVP 96\r\n\
                   a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n\
                   a=control:stream=0\r\n";
        let v = first_video(sdp).unwrap();
        assert_eq!(v.payload_type, 96);
        assert_eq!(v.rtpmap.as_deref(), Some("96 H264/90000"));
        assert_eq!(v.fmtp.as_deref(), Some("96 packetization-mode=1"));
        assert_eq!(v.control.as_deref(), Some("stream=0"));
    }

    #[test]
    fn join_url_handles_relative_absolute_and_star() {
        assert_eq!(join_url("rtsp://h/s/", "trackID=0"), "rtsp://h/s/trackID=0");
        assert_eq!(join_url("rtsp://h/s", "trackID=0"), "rtsp://h/s/trackID=0");
        assert_eq!(join_url("rtsp://h/s", "rtsp://x/y"), "rtsp://x/y");
        assert_eq!(join_url("rtsp://h/s", "*"), "rtsp://h/s");
    }

    #[test]
    fn host_port_defaults_to_554() {
        assert_eq!(host_port("rtsp://1.2.3.4/x").unwrap(), "1.2.3.4:554");
        assert_eq!(host_port("rtsp://u:p@h:8554/x").unwrap(), "h:8554");
    }
}
