//! Splits what a client sends on an RTSP connection into requests and interleaved frames.
//!
//! The [`Framer`] remembers how far it has looked for the end of a message head, so a head
//! that arrives a byte at a time costs time linear in its length: the message parser runs once
//! per complete message, never on a partial head. Total over arbitrary bytes (fuzzed).

use rtsp_types::{Message, ParseError, Request};

/// Largest message head (request line and headers) we buffer before calling the client broken.
pub const MAX_HEAD: usize = 16 * 1024;

/// Largest message body (`Content-Length`) a client may send.
pub const MAX_BODY: usize = 16 * 1024;

/// Largest message (head and body) buffered at once.
pub const MAX_MESSAGE: usize = MAX_HEAD + MAX_BODY;

/// The next item at the start of a client's buffer.
#[derive(Debug)]
pub enum Item {
    /// A complete request and how many bytes it used.
    Request(Request<Vec<u8>>, usize),
    /// An interleaved binary frame (`$`, channel, length) and how many bytes it used.
    Interleaved { channel: u8, used: usize },
    /// A response or other message from the client (ignored) and how many bytes it used.
    Other(usize),
    /// More bytes are needed.
    NeedMore,
}

/// Why the buffer cannot be an RTSP message.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    /// The parser's complaint.
    pub reason: String,
    /// Hex of the first bytes, to find the packet in a capture.
    pub excerpt: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed RTSP message ({}); first bytes {}",
            self.reason, self.excerpt
        )
    }
}

fn malformed(reason: impl Into<String>, buf: &[u8]) -> Malformed {
    Malformed {
        reason: reason.into(),
        excerpt: text::hex_excerpt(buf),
    }
}

/// Where the framer stands in the message at the start of the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Scan {
    /// Looking for the end of the head.
    #[default]
    Head,
    /// The head is complete and the whole message is `total` bytes long.
    Body { total: usize },
}

/// Finds message boundaries in a connection's buffer, resuming where the last call stopped.
///
/// Call [`Framer::next_item`] with the buffer whenever bytes arrive, and remove the bytes an
/// item used from the front of the buffer before the next call.
#[derive(Debug, Default)]
pub struct Framer {
    scan: Scan,
    /// Bytes at the start of the buffer already searched for the head's end.
    searched: usize,
    /// The first line of the message was found and looks like RTSP.
    first_line_ok: bool,
}

impl Framer {
    /// A framer at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the next item of `buf`.
    pub fn next_item(&mut self, buf: &[u8]) -> Result<Item, Malformed> {
        let item = self.next_inner(buf);
        if !matches!(item, Ok(Item::NeedMore)) {
            // The item's bytes are removed by the caller: start afresh.
            self.scan = Scan::Head;
            self.searched = 0;
            self.first_line_ok = false;
        }
        item
    }

    fn next_inner(&mut self, buf: &[u8]) -> Result<Item, Malformed> {
        if buf.is_empty() {
            return Ok(Item::NeedMore);
        }
        if buf[0] == b'$' {
            if buf.len() < 4 {
                return Ok(Item::NeedMore);
            }
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < 4 + len {
                return Ok(Item::NeedMore);
            }
            return Ok(Item::Interleaved {
                channel: buf[1],
                used: 4 + len,
            });
        }
        let total = match self.scan {
            Scan::Body { total } => total,
            Scan::Head => {
                if !buf[0].is_ascii_uppercase() {
                    // Neither a request (a method token), a response (`RTSP/`) nor data (`$`).
                    return Err(malformed("not an RTSP message", buf));
                }
                let Some(head) = self.find_head_end(buf)? else {
                    if buf.len() > MAX_HEAD {
                        return Err(malformed(
                            format!("no end of message head in {MAX_HEAD} bytes"),
                            buf,
                        ));
                    }
                    return Ok(Item::NeedMore);
                };
                let body = content_length(&buf[..head]).map_err(|r| malformed(r, buf))?;
                if body > MAX_BODY {
                    return Err(malformed(
                        format!("Content-Length {body} is over the limit of {MAX_BODY}"),
                        buf,
                    ));
                }
                let total = head + body;
                self.scan = Scan::Body { total };
                total
            }
        };
        if buf.len() < total {
            return Ok(Item::NeedMore);
        }
        match Message::<Vec<u8>>::parse(&buf[..total]) {
            Ok((Message::Request(req), used)) => Ok(Item::Request(req, used.max(1))),
            Ok((_, used)) => Ok(Item::Other(used.max(1))),
            Err(ParseError::Incomplete(_)) => Err(malformed(
                "the message does not end where its head and Content-Length say",
                buf,
            )),
            Err(ParseError::Error) => Err(malformed("not an RTSP message", buf)),
        }
    }

    /// The length of the head (through its blank line) if the buffer holds all of it. Looks
    /// only at bytes not searched before (and the three before them, for a split `\r\n\r\n`).
    /// A first line that is not an RTSP request or status line is an error at once.
    fn find_head_end(&mut self, buf: &[u8]) -> Result<Option<usize>, Malformed> {
        let from = self.searched.saturating_sub(3).min(buf.len());
        let limit = buf.len().min(MAX_HEAD + 4);
        let mut i = from;
        while i < limit {
            if buf[i] == b'\n' {
                if !self.first_line_ok {
                    if !plausible_first_line(&buf[..i]) {
                        return Err(malformed("not an RTSP request line", buf));
                    }
                    self.first_line_ok = true;
                }
                // "\n\n" or "\n\r\n" ends the head (bare LF line ends are tolerated).
                if buf.get(i + 1) == Some(&b'\n') {
                    return Ok(Some(i + 2));
                }
                if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                    return Ok(Some(i + 3));
                }
            }
            i += 1;
        }
        self.searched = limit;
        Ok(None)
    }
}

/// Whether a message's first line can be RTSP: a status line (`RTSP/1.0 200 OK`) or a request
/// line `METHOD URI RTSP/1.0` (or `RTSP/2.0`) with a token for the method.
fn plausible_first_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.starts_with(b"RTSP/") {
        return true;
    }
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let method = &line[..sp];
    !method.is_empty()
        && method
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && (line.ends_with(b" RTSP/1.0") || line.ends_with(b" RTSP/2.0"))
}

/// The `Content-Length` of a head (0 when absent); an error when it is not a number or given
/// twice with different values.
fn content_length(head: &[u8]) -> Result<usize, String> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        if !name.trim_ascii().eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        let value = value[1..].trim_ascii();
        let n = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| "Content-Length is not a number".to_string())?;
        if found.is_some_and(|f| f != n) {
            return Err("two different Content-Length headers".into());
        }
        found = Some(n);
    }
    Ok(found.unwrap_or(0))
}

/// Parses the next item of `buf` from scratch (a [`Framer`] that has seen nothing before).
pub fn next_item(buf: &[u8]) -> Result<Item, Malformed> {
    Framer::new().next_item(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_requests_and_interleaved_frames() {
        let mut buf = b"$\x01\x00\x02abOPTIONS rtsp://x/a RTSP/1.0\r\nCSeq: 1\r\n\r\n".to_vec();
        match next_item(&buf).unwrap() {
            Item::Interleaved {
                channel: 1,
                used: 6,
            } => {}
            other => panic!("{other:?}"),
        }
        buf.drain(..6);
        match next_item(&buf).unwrap() {
            Item::Request(r, used) => {
                assert_eq!(used, buf.len());
                assert_eq!(r.method(), &rtsp_types::Method::Options);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_input_needs_more_and_garbage_is_malformed() {
        assert!(matches!(
            next_item(b"OPTIONS rtsp://x RTSP/1.0\r\nCSe"),
            Ok(Item::NeedMore)
        ));
        assert!(matches!(next_item(b"$\x00\x05ab"), Ok(Item::NeedMore)));
        let e = next_item(b"\x00\x01garbage\r\n\r\n").unwrap_err();
        assert!(e.excerpt.starts_with("00 01"));
        assert!(next_item(&[b'A'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn a_first_line_that_is_not_rtsp_is_refused_at_once() {
        // Binary garbage, HTTP on the RTSP port, a method that is not a token: no waiting for
        // the end of a head that will never come.
        assert!(next_item(b"\x16\x03\x01").is_err());
        assert!(next_item(b"GET / HTTP/1.1\r\nHost").is_err());
        assert!(next_item(b"DESC<RIBE rtsp://x/a RTSP/1.0\r\n").is_err());
        assert!(matches!(
            next_item(b"DESCRIBE rtsp://x/a RTSP/1.0\r\nCSeq"),
            Ok(Item::NeedMore)
        ));
        assert!(matches!(
            next_item(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"),
            Ok(Item::Other(_))
        ));
    }

    #[test]
    fn body_is_awaited_and_bounded() {
        let msg = b"SET_PARAMETER rtsp://x/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nab";
        let mut f = Framer::new();
        assert!(matches!(f.next_item(msg), Ok(Item::NeedMore)));
        let mut full = msg.to_vec();
        full.extend_from_slice(b"cde");
        match f.next_item(&full).unwrap() {
            Item::Request(r, used) => {
                assert_eq!(used, full.len());
                assert_eq!(r.body(), b"abcde");
            }
            other => panic!("{other:?}"),
        }
        let huge = format!(
            "SET_PARAMETER rtsp://x/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(next_item(huge.as_bytes()).is_err());
        let bad = b"DESCRIBE rtsp://x/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: -1\r\n\r\n";
        assert!(next_item(bad).is_err());
    }

    #[test]
    fn a_head_sent_byte_by_byte_is_searched_once() {
        let mut msg = b"DESCRIBE rtsp://x/a RTSP/1.0\r\nCSeq: 3\r\n".to_vec();
        for i in 0..200 {
            msg.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "y".repeat(40)).as_bytes());
        }
        msg.extend_from_slice(b"\r\n");
        let mut f = Framer::new();
        let mut looked = 0;
        for end in 1..msg.len() {
            let before = f.searched;
            assert!(matches!(f.next_item(&msg[..end]), Ok(Item::NeedMore)));
            looked += f.searched - before.saturating_sub(3).min(end);
        }
        // Each byte is looked at a bounded number of times, not once per arrival.
        assert!(looked <= 4 * msg.len(), "{looked} for {}", msg.len());
        assert!(matches!(f.next_item(&msg), Ok(Item::Request(_, n)) if n == msg.len()));
    }

    proptest! {
        /// Any split of a stream of messages into reads yields the same items as one read.
        #[test]
        fn chunking_does_not_change_the_items(cuts in proptest::collection::vec(1usize..40, 0..30)) {
            let stream = b"OPTIONS rtsp://x/a RTSP/1.0\r\nCSeq: 1\r\n\r\n$\x00\x00\x03abcSET_PARAMETER rtsp://x/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nwxyzDESCRIBE rtsp://x/a RTSP/1.0\r\nCSeq: 3\r\n\r\n".to_vec();
            let whole = items(&stream, &[stream.len()]);
            let got = items(&stream, &cuts);
            prop_assert_eq!(whole, got);
        }
    }

    /// Feeds `stream` in reads of the given sizes (the rest at the end); the items as strings.
    fn items(stream: &[u8], reads: &[usize]) -> Vec<String> {
        let mut f = Framer::new();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut sizes = reads.iter().copied().chain(std::iter::once(usize::MAX));
        while pos < stream.len() {
            let n = sizes.next().unwrap_or(usize::MAX).min(stream.len() - pos);
            buf.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            loop {
                match f.next_item(&buf).unwrap() {
                    Item::NeedMore => break,
                    Item::Request(r, used) => {
                        out.push(format!("{:?} {}", r.method(), r.body().len()));
                        buf.drain(..used);
                    }
                    Item::Interleaved { channel, used } => {
                        out.push(format!("${channel} {used}"));
                        buf.drain(..used);
                    }
                    Item::Other(used) => {
                        out.push("other".into());
                        buf.drain(..used);
                    }
                }
            }
        }
        out
    }
}
