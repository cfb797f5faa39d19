//! DH-HTTP messages: HTTP/1.1-shaped text, one message per UDP datagram.
//!
//! Parsing is lenient where peers differ and strict where a wrong guess would corrupt data:
//!
//! * lines end in CRLF or a bare LF; the head ends at the first empty line, or at the end of
//!   the datagram when there is none (then the body is empty);
//! * `Key:value` without a space and `Key:` with an empty value are accepted; names and values
//!   are trimmed of surrounding ASCII whitespace; names are looked up case-insensitively;
//! * without `Content-Length` (or with an empty one) the body is the rest of the datagram; with
//!   one, the body is that many bytes and anything after it is ignored; a `Content-Length`
//!   longer than what the datagram holds is an error, as are two different lengths;
//! * the head must be UTF-8; the body is bytes.
//!
//! [`Request::serialize`]/[`Response::serialize`] write headers exactly as stored (in order,
//! `Name: value`, an empty value as `Name: ` the way SmartPSS writes `Content-Type: `) and the
//! body; they never add or fix a `Content-Length` (the builders do: [`Request::set_body`]).
//! Every message that parses writes back to bytes that parse to an equal message.

use std::fmt;
use std::net::SocketAddr;

use crate::xmlbody::{ElementOrder, XmlBody, XmlError};
use text::hex_excerpt;

/// A request verb. The cloud speaks `DH…` (SmartPSS) and `NF…` (DMSS/EasyViewer) variants of
/// GET and POST.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `DHGET`.
    DhGet,
    /// `DHPOST`.
    DhPost,
    /// `NFGET`.
    NfGet,
    /// `NFPOST`.
    NfPost,
    /// Plain `GET`.
    Get,
    /// Plain `POST`.
    Post,
    /// Any other token.
    Other(String),
}

impl Method {
    /// The verb as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::DhGet => "DHGET",
            Method::DhPost => "DHPOST",
            Method::NfGet => "NFGET",
            Method::NfPost => "NFPOST",
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Other(s) => s,
        }
    }

    /// The method for a token (case-sensitive, like HTTP).
    pub fn from_token(token: &str) -> Self {
        match token {
            "DHGET" => Method::DhGet,
            "DHPOST" => Method::DhPost,
            "NFGET" => Method::NfGet,
            "NFPOST" => Method::NfPost,
            "GET" => Method::Get,
            "POST" => Method::Post,
            other => Method::Other(other.to_owned()),
        }
    }

    /// Whether this is one of the POST verbs.
    pub fn is_post(&self) -> bool {
        matches!(self, Method::DhPost | Method::NfPost | Method::Post)
    }

    /// Whether this is one of the GET verbs.
    pub fn is_get(&self) -> bool {
        matches!(self, Method::DhGet | Method::NfGet | Method::Get)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header fields in wire order, looked up case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the first header with this name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// The values of every header with this name, in order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The index of the first header with this name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Whether a header with this name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }

    /// Inserts a header at `index` (clamped to the end).
    pub fn insert(&mut self, index: usize, name: &str, value: impl Into<String>) {
        let index = index.min(self.0.len());
        self.0.insert(index, (name.to_owned(), value.into()));
    }

    /// Sets the first header with this name in place (dropping later duplicates), or appends.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        match self.position(name) {
            Some(i) => {
                self.0[i].1 = value.into();
                let mut j = i + 1;
                while j < self.0.len() {
                    if self.0[j].0.eq_ignore_ascii_case(name) {
                        self.0.remove(j);
                    } else {
                        j += 1;
                    }
                }
            }
            None => self.push(name, value),
        }
    }

    /// Removes every header with this name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Iterates over `(name, value)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `CSeq` as a signed integer (the counter dialect uses 1, 2, …; DMSS any i32).
    pub fn cseq(&self) -> Option<i64> {
        self.get("CSeq")?.trim().parse().ok()
    }

    /// `Content-Length`, if present and a number.
    pub fn content_length(&self) -> Option<usize> {
        parse_length(self.get("Content-Length")?)
    }

    fn write(&self, out: &mut Vec<u8>) {
        for (n, v) in &self.0 {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A DH-HTTP request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// The verb.
    pub method: Method,
    /// The request target, e.g. `/online/p2psrv/SERIAL`.
    pub path: String,
    /// Header fields in order.
    pub headers: Headers,
    /// Body bytes (usually an XML body).
    pub body: Vec<u8>,
}

/// A DH-HTTP response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    /// Status code (100, 200, 401, 403, 404, …).
    pub code: u16,
    /// Reason phrase (`OK`, `Server Nat Info!`, `DevPwd_InvalidDigest`, …); may be empty.
    pub reason: String,
    /// Header fields in order.
    pub headers: Headers,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// A request (what the cloud receives).
    Request(Request),
    /// A response (what the client receives).
    Response(Response),
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: Method, path: &str) -> Self {
        Request {
            method,
            path: path.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Appends a header (builder style).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the body (builder style); see [`Request::set_body`].
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.set_body(body);
        self
    }

    /// Sets the body and updates an existing `Content-Length` header to match.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
        if self.headers.contains("Content-Length") {
            self.headers
                .set("Content-Length", self.body.len().to_string());
        }
    }

    /// `CSeq` as a number.
    pub fn cseq(&self) -> Option<i64> {
        self.headers.cseq()
    }

    /// `Content-Length` as a number.
    pub fn content_length(&self) -> Option<usize> {
        self.headers.content_length()
    }

    /// The body parsed as a flat XML body.
    pub fn body_xml(&self) -> Result<XmlBody, XmlError> {
        XmlBody::parse(&self.body)
    }

    /// The serial number in the path, for the cloud endpoints that carry one
    /// (`/online/p2psrv/SN`, `/probe/device/SN`, `/info/device/SN`, `/device/SN/…`).
    pub fn serial(&self) -> Option<&str> {
        serial_in_path(&self.path)
    }

    /// The datagram.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        self.headers.write(&mut out);
        out.extend_from_slice(&self.body);
        out
    }
}

impl Response {
    /// A response without headers or body.
    pub fn new(code: u16, reason: &str) -> Self {
        Response {
            code,
            reason: reason.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A cloud reply to `request`: `Date` (UTC ISO `Z`) and the echoed `CSeq` and
    /// `x-pcs-request-id`, the headers every cloud server sends back.
    pub fn reply_to(request: &Request, code: u16, reason: &str, now_unix: i64) -> Self {
        let mut r = Response::new(code, reason);
        r.headers.push(
            "Date",
            crate::wsse::format_created(now_unix, crate::wsse::CreatedStyle::Utc),
        );
        if let Some(c) = request.headers.get("CSeq") {
            r.headers.push("CSeq", c);
        }
        if let Some(id) = request.headers.get("x-pcs-request-id") {
            r.headers.push("x-pcs-request-id", id);
        }
        r
    }

    /// Appends a header (builder style).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets an XML body with the cloud's `Content-Type: ` (empty) and `Content-Length`.
    pub fn with_xml_body(mut self, body: &XmlBody, order: ElementOrder, prolog: bool) -> Self {
        let text = if prolog {
            body.to_xml_with_prolog(order)
        } else {
            body.to_xml(order)
        };
        self.headers.set("Content-Type", "");
        self.headers.set("Content-Length", text.len().to_string());
        self.body = text.into_bytes();
        self
    }

    /// Sets the body and updates an existing `Content-Length` header to match.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
        if self.headers.contains("Content-Length") {
            self.headers
                .set("Content-Length", self.body.len().to_string());
        }
    }

    /// `CSeq` as a number.
    pub fn cseq(&self) -> Option<i64> {
        self.headers.cseq()
    }

    /// `Content-Length` as a number.
    pub fn content_length(&self) -> Option<usize> {
        self.headers.content_length()
    }

    /// The body parsed as a flat XML body.
    pub fn body_xml(&self) -> Result<XmlBody, XmlError> {
        XmlBody::parse(&self.body)
    }

    /// The `Date` header.
    pub fn date(&self) -> Option<&str> {
        self.headers.get("Date")
    }

    /// Whether this is a 1xx (e.g. `100 Trying`).
    pub fn is_provisional(&self) -> bool {
        (100..200).contains(&self.code)
    }

    /// Whether this is a 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The `<Error>` text of the body, if the body is XML and has one.
    pub fn error_text(&self) -> Option<String> {
        self.body_xml().ok()?.get("Error").map(str::to_owned)
    }

    /// The datagram.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(format!("HTTP/1.1 {}", self.code).as_bytes());
        if !self.reason.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.reason.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        self.headers.write(&mut out);
        out.extend_from_slice(&self.body);
        out
    }
}

impl Message {
    /// The datagram.
    pub fn serialize(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.serialize(),
            Message::Response(r) => r.serialize(),
        }
    }
}

/// The serial in `/online/p2psrv/SN`, `/probe/device/SN`, `/info/device/SN` or `/device/SN/…`.
pub fn serial_in_path(path: &str) -> Option<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let sn = match segs.as_slice() {
        ["online", "p2psrv", sn, ..] | ["probe", "device", sn, ..] | ["info", "device", sn, ..] => {
            sn
        }
        ["device", sn, ..] => sn,
        _ => return None,
    };
    Some(sn)
}

/// A datagram that is not a DH-HTTP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// "request" or "response".
    pub what: &'static str,
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// Byte offset in the datagram.
    pub offset: usize,
    /// Hex of the datagram from `offset`.
    pub excerpt: String,
    /// Who sent it, when the caller knows ([`ParseError::with_peer`]).
    pub peer: Option<SocketAddr>,
}

impl ParseError {
    /// Attaches the sender's address.
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DH-HTTP {}", self.what)?;
        if let Some(p) = self.peer {
            write!(f, " from {p}")?;
        }
        write!(
            f,
            ": {} at byte {} (bytes there: {})",
            self.kind, self.offset, self.excerpt
        )
    }
}

impl std::error::Error for ParseError {}

/// What made a datagram unparseable.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The datagram is empty or starts with an empty line.
    #[error("empty start line")]
    Empty,
    /// The head is not UTF-8.
    #[error("header bytes are not UTF-8 text")]
    NotText,
    /// Not `METHOD path HTTP/x.y` / `HTTP/x.y code reason`.
    #[error("bad start line {0:?}")]
    BadStartLine(String),
    /// The status code is not three digits.
    #[error("bad status code in {0:?}")]
    BadStatusCode(String),
    /// A header line without `:` or with an empty or spaced name.
    #[error("bad header line {0:?}")]
    BadHeaderLine(String),
    /// `Content-Length` is not a decimal number.
    #[error("bad Content-Length {0:?}")]
    BadContentLength(String),
    /// Two `Content-Length` headers disagree.
    #[error("conflicting Content-Length headers {0} and {1}")]
    ConflictingContentLength(usize, usize),
    /// `Content-Length` promises more bytes than the datagram holds.
    #[error("Content-Length {declared} but only {available} body bytes in the datagram")]
    BodyTruncated { declared: usize, available: usize },
}

/// Parses a request datagram.
pub fn parse_request(datagram: &[u8]) -> Result<Request, ParseError> {
    let head = Head::parse(datagram, "request")?;
    let line = head.start;
    let toks: Vec<&str> = line.split_ascii_whitespace().collect();
    match toks.as_slice() {
        [method, path, version] if version.starts_with("HTTP/") => Ok(Request {
            method: Method::from_token(method),
            path: (*path).to_owned(),
            headers: head.headers,
            body: head.body,
        }),
        _ => Err(error(
            datagram,
            "request",
            ParseErrorKind::BadStartLine(line.to_owned()),
            0,
        )),
    }
}

/// Parses a response datagram.
pub fn parse_response(datagram: &[u8]) -> Result<Response, ParseError> {
    let head = Head::parse(datagram, "response")?;
    let line = head.start;
    let bad = |k| error(datagram, "response", k, 0);
    let (version, rest) = line
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((line, ""));
    if !version.starts_with("HTTP/") {
        return Err(bad(ParseErrorKind::BadStartLine(line.to_owned())));
    }
    let rest = rest.trim_ascii_start();
    let code = rest.as_bytes().get(..3).filter(|c| {
        c.iter().all(u8::is_ascii_digit)
            && c[0] != b'0'
            && rest.as_bytes().get(3).is_none_or(u8::is_ascii_whitespace)
    });
    let Some(code) = code else {
        return Err(bad(ParseErrorKind::BadStatusCode(line.to_owned())));
    };
    let code = code.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
    Ok(Response {
        code,
        reason: rest[3..].trim_ascii().to_owned(),
        headers: head.headers,
        body: head.body,
    })
}

/// Parses a datagram as a response if it starts with `HTTP/`, else as a request.
pub fn parse_message(datagram: &[u8]) -> Result<Message, ParseError> {
    if datagram.starts_with(b"HTTP/") {
        parse_response(datagram).map(Message::Response)
    } else {
        parse_request(datagram).map(Message::Request)
    }
}

/// A `Content-Length` value: decimal digits only (no sign), at most 18 of them.
fn parse_length(v: &str) -> Option<usize> {
    let v = v.trim();
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn error(datagram: &[u8], what: &'static str, kind: ParseErrorKind, offset: usize) -> ParseError {
    ParseError {
        what,
        kind,
        offset,
        excerpt: hex_excerpt(datagram.get(offset..).unwrap_or_default()),
        peer: None,
    }
}

/// The common part of requests and responses.
struct Head<'a> {
    start: &'a str,
    headers: Headers,
    body: Vec<u8>,
}

impl<'a> Head<'a> {
    fn parse(d: &'a [u8], what: &'static str) -> Result<Self, ParseError> {
        let mut pos = 0;
        let mut start = None;
        let mut headers = Headers::new();
        let mut body_at = d.len();
        while pos < d.len() {
            let nl = d[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i);
            let end = nl.unwrap_or(d.len());
            let raw = &d[pos..end];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = std::str::from_utf8(raw)
                .map_err(|e| error(d, what, ParseErrorKind::NotText, pos + e.valid_up_to()))?;
            let next = nl.map_or(d.len(), |i| i + 1);
            if line.is_empty() {
                if start.is_none() {
                    return Err(error(d, what, ParseErrorKind::Empty, pos));
                }
                body_at = next;
                break;
            }
            if start.is_none() {
                start = Some(line);
            } else {
                let bad = || error(d, what, ParseErrorKind::BadHeaderLine(line.to_owned()), pos);
                let (name, value) = line.split_once(':').ok_or_else(bad)?;
                let name = name.trim_ascii();
                if name.is_empty()
                    || name
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(bad());
                }
                headers.push(name, value.trim_ascii());
            }
            pos = next;
        }
        let Some(start) = start else {
            return Err(error(d, what, ParseErrorKind::Empty, 0));
        };
        let rest = &d[body_at..];
        let mut declared: Option<usize> = None;
        for v in headers.get_all("Content-Length") {
            if v.is_empty() {
                continue;
            }
            let n = parse_length(v).ok_or_else(|| {
                error(
                    d,
                    what,
                    ParseErrorKind::BadContentLength(v.to_owned()),
                    body_at,
                )
            })?;
            match declared {
                Some(m) if m != n => {
                    return Err(error(
                        d,
                        what,
                        ParseErrorKind::ConflictingContentLength(m, n),
                        body_at,
                    ));
                }
                _ => declared = Some(n),
            }
        }
        let body = match declared {
            Some(n) if n > rest.len() => {
                return Err(error(
                    d,
                    what,
                    ParseErrorKind::BodyTruncated {
                        declared: n,
                        available: rest.len(),
                    },
                    body_at,
                ));
            }
            Some(n) => rest[..n].to_vec(),
            None => rest.to_vec(),
        };
        Ok(Head {
            start,
            headers,
            body,
        })
    }
}
