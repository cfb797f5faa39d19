//! An RTSP byte stream (one direction of a TCP connection) cut into requests, responses and
//! interleaved `$` frames. Framing is rtsp-types' parser; headers are listed in wire order
//! (repeated headers become a list), SDP bodies are decoded, interleaved payloads are decoded
//! as RTP or RTCP.

use rtsp_types::{Message, ParseError, Version};

use super::{DissectError, Fault, Obj, rtp, sdp};

/// Headers longer than this without an end are not RTSP.
const MAX_HEAD: usize = 64 << 10;

/// A text body up to this size is shown.
const MAX_SHOWN_BODY: usize = 2048;

/// What the front of the stream holds.
pub(crate) enum Cut {
    /// One message, decoded.
    Message(Obj),
    /// Not enough bytes yet (or none).
    Incomplete,
    /// Bytes that are not RTSP; the offset is in stream coordinates.
    Bad(Fault),
}

/// Accumulates one direction of a connection and cuts it into messages.
#[derive(Default)]
pub(crate) struct RtspCutter {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: usize,
}

impl RtspCutter {
    /// Appends received bytes.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet cut.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Stream offset of the first pending byte.
    pub(crate) fn offset(&self) -> usize {
        self.base
    }

    /// Drops everything pending (after a gap or an error).
    pub(crate) fn clear(&mut self) {
        self.base += self.buf.len();
        self.buf.clear();
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.base += n;
    }

    /// Cuts the next message off the front.
    pub(crate) fn next(&mut self) -> Cut {
        let buf = &self.buf;
        if buf.is_empty() {
            return Cut::Incomplete;
        }
        if buf[0] == b'$' {
            if buf.len() < 4 {
                return Cut::Incomplete;
            }
            let channel = buf[1];
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < 4 + len {
                return Cut::Incomplete;
            }
            let payload = &buf[4..4 + len];
            let mut o = Obj::new()
                .with("type", "interleaved")
                .with("offset", self.base)
                .with("channel", channel)
                .with("len", len);
            if rtp::is_rtcp(payload) {
                match rtp::rtcp_packets(payload) {
                    Ok(p) => o.set("rtcp", p),
                    Err(f) => o.set("error", format!("RTCP: {}", f.message)),
                }
            } else {
                match rtp::rtp_fields(payload) {
                    Ok(r) => o.set("rtp", r),
                    Err(f) => o.set("error", format!("RTP: {}", f.message)),
                }
            }
            self.consume(4 + len);
            return Cut::Message(o);
        }
        if !looks_like_start(buf) {
            return Cut::Bad(Fault::new(
                self.base,
                "not the start of an RTSP message or a '$' frame",
            ));
        }
        match Message::<&[u8]>::parse(buf) {
            Ok((msg, n)) => {
                let o = describe(&msg, &buf[..n], self.base);
                self.consume(n);
                Cut::Message(o)
            }
            Err(ParseError::Incomplete(_)) => {
                if find(buf, b"\r\n\r\n").is_none()
                    && find(buf, b"\n\n").is_none()
                    && buf.len() > MAX_HEAD
                {
                    return Cut::Bad(Fault::new(
                        self.base,
                        format!("no end of headers within {MAX_HEAD} bytes"),
                    ));
                }
                Cut::Incomplete
            }
            Err(ParseError::Error) => {
                let line = first_line(buf);
                Cut::Bad(Fault::new(
                    self.base,
                    format!("not a valid RTSP message (first line {line:?})"),
                ))
            }
        }
    }

    /// Why the pending bytes are not a whole message (for a stream that ended).
    pub(crate) fn truncation(&self) -> String {
        let buf = &self.buf;
        if buf.first() == Some(&b'$') {
            if buf.len() < 4 {
                return format!(
                    "interleaved frame header cut after {} of 4 bytes",
                    buf.len()
                );
            }
            let len = u16::from_be_bytes([buf[2], buf[3]]);
            return format!(
                "interleaved frame announces {len} bytes, only {} present",
                buf.len() - 4
            );
        }
        match find(buf, b"\r\n\r\n") {
            None => format!(
                "truncated RTSP message: headers do not end ({} bytes)",
                buf.len()
            ),
            Some(end) => format!(
                "truncated RTSP message: body shorter than Content-Length ({} body bytes present)",
                buf.len() - end - 4
            ),
        }
    }
}

/// Dissects a whole byte stream; any undecodable or truncated part is an error.
pub(crate) fn dissect_all(
    bytes: &[u8],
    emit: &mut dyn FnMut(Obj) -> Result<(), DissectError>,
) -> Result<(), DissectError> {
    let mut c = RtspCutter::default();
    c.push(bytes);
    loop {
        match c.next() {
            Cut::Message(o) => emit(o)?,
            Cut::Incomplete => break,
            Cut::Bad(f) => return Err(DissectError::malformed("RTSP", bytes, f.offset, f.message)),
        }
    }
    if !c.pending().is_empty() {
        return Err(DissectError::malformed(
            "RTSP",
            bytes,
            c.offset(),
            c.truncation(),
        ));
    }
    Ok(())
}

/// True if `buf` may begin an RTSP request (`METHOD SP`) or response (`RTSP/`).
pub(crate) fn looks_like_start(buf: &[u8]) -> bool {
    if buf.first() == Some(&b'$') {
        return true;
    }
    let n = buf.len().min(5);
    if buf[..n] == b"RTSP/"[..n] {
        return true;
    }
    let token = buf
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || **b == b'_')
        .count();
    match buf.get(token) {
        None => token < 32,
        // A request line: once it is complete it must name an RTSP version (not HTTP).
        Some(b' ') if token > 0 => match buf.iter().position(|&b| b == b'\n') {
            Some(eol) => find(&buf[..eol], b" RTSP/").is_some(),
            None => true,
        },
        Some(_) => false,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn first_line(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(buf.len())
        .min(80);
    String::from_utf8_lossy(&buf[..end]).trim_end().to_string()
}

fn version(v: Version) -> &'static str {
    match v {
        Version::V1_0 => "RTSP/1.0",
        Version::V2_0 => "RTSP/2.0",
    }
}

/// The JSON of one parsed message; `raw` is its bytes (for wire-order headers).
fn describe(msg: &Message<&[u8]>, raw: &[u8], offset: usize) -> Obj {
    let (mut o, body): (Obj, &[u8]) = match msg {
        Message::Request(r) => {
            // The URI exactly as sent (rtsp-types normalises it through `Url`).
            let line = first_line(raw);
            let uri = line.split(' ').nth(1).unwrap_or("").to_string();
            (
                Obj::new()
                    .with("type", "request")
                    .with("offset", offset)
                    .with("method", <&str>::from(r.method()))
                    .with("uri", uri)
                    .with("version", version(r.version())),
                r.body(),
            )
        }
        Message::Response(r) => (
            Obj::new()
                .with("type", "response")
                .with("offset", offset)
                .with("version", version(r.version()))
                .with("status", u16::from(r.status()))
                .with("reason", r.reason_phrase()),
            r.body(),
        ),
        Message::Data(d) => (
            Obj::new()
                .with("type", "interleaved")
                .with("offset", offset)
                .with("channel", d.channel_id()),
            d.as_slice(),
        ),
    };
    let headers = raw_headers(raw);
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let mut h = Obj::new();
    for (k, v) in &headers {
        match h.get(k) {
            None => h.set(k, v.as_str()),
            Some(prev) => {
                let mut list = match prev.clone() {
                    super::Node::List(l) => l,
                    other => vec![other],
                };
                list.push(v.as_str().into());
                h.set(k, list);
            }
        }
    }
    o.set("headers", h);
    o.set("body_len", body.len());
    if !body.is_empty() {
        if content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/sdp"))
        {
            match sdp::dissect(body) {
                Ok(s) => o.set("sdp", s),
                Err(f) => o.set(
                    "sdp_error",
                    format!("at body byte {}: {}", f.offset, f.message),
                ),
            }
        } else if body.len() <= MAX_SHOWN_BODY
            && let Ok(text) = std::str::from_utf8(body)
        {
            o.set("body", text);
        }
    }
    o
}

/// `(name, value)` of each header line in wire order, with folded lines joined.
fn raw_headers(raw: &[u8]) -> Vec<(String, String)> {
    let head_end = find(raw, b"\r\n\r\n")
        .or_else(|| find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines().skip(1) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Result<Vec<serde_json::Value>, DissectError> {
        let mut v = Vec::new();
        dissect_all(bytes, &mut |o| {
            v.push(o.to_value());
            Ok(())
        })?;
        Ok(v)
    }

    #[test]
    fn request_with_repeated_header_and_interleaved_rtp() {
        let mut data = b"SETUP rtsp://cam/stream/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nX-A: 1\r\nX-A: 2\r\n\r\n".to_vec();
        data.extend_from_slice(&[
            b'$', 0, 0, 13, 0x80, 0x60, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0xaa,
        ]);
        let v = all(&data).unwrap();
        assert_eq!(v[0]["method"], "SETUP");
        assert_eq!(v[0]["uri"], "rtsp://cam/stream/trackID=0");
        assert_eq!(v[0]["headers"]["CSeq"], "3");
        assert_eq!(v[0]["headers"]["X-A"], serde_json::json!(["1", "2"]));
        assert_eq!(v[1]["type"], "interleaved");
        assert_eq!(v[1]["channel"], 0);
        assert_eq!(v[1]["rtp"]["sequence"], 1);
        assert_eq!(v[1]["rtp"]["payload_len"], 1);
    }

    #[test]
    fn text_body_is_shown() {
        let v = all(b"RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Type: text/parameters\r\nContent-Length: 5\r\n\r\nab: c").unwrap();
        assert_eq!(v[0]["status"], 200);
        assert_eq!(v[0]["body"], "ab: c");
    }

    #[test]
    fn truncated_and_garbage_streams_are_errors() {
        let e = all(b"OPTIONS rtsp://a RTSP/1.0\r\nCSeq: 1\r\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("headers do not end"), "{e}");
        let e = all(b"RTSP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("body shorter"), "{e}");
        let e = all(&[b'$', 1, 0, 50, 1, 2]).unwrap_err().to_string();
        assert!(e.contains("announces 50 bytes"), "{e}");
        let e = all(b"\x16\x03\x01 hello").unwrap_err().to_string();
        assert!(e.contains("at byte 0"), "{e}");
        assert!(e.contains("16 03 01"), "{e}");
    }

    #[test]
    fn start_detection() {
        assert!(looks_like_start(b"DESCRIBE rtsp://x RTSP/1.0"));
        assert!(looks_like_start(b"RTSP/1.0 200 OK"));
        assert!(looks_like_start(b"RTS"));
        assert!(looks_like_start(b"GET_PARAM"));
        assert!(!looks_like_start(b"get / HTTP/1.1"));
        assert!(!looks_like_start(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(looks_like_start(b"GET_PARAMETER rtsp://x RTSP/1.0\r\n"));
        assert!(!looks_like_start(b"\x00\x01"));
    }
}
