//! Splits what a client sends on an RTSP connection into requests and interleaved frames.
//! Total over arbitrary bytes (it has a fuzz target).

use rtsp_types::{Message, ParseError, Request};

/// Largest message head we buffer before calling the client broken.
pub const MAX_MESSAGE: usize = 64 * 1024;

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

/// Parses the next item of `buf`.
pub fn next_item(buf: &[u8]) -> Result<Item, Malformed> {
    if buf.is_empty() {
        return Ok(Item::NeedMore);
    }
    if buf[0] == b'$' {
        if buf.len() < 4 {
            return Ok(Item::NeedMore);
        }
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if buf.len() < 4 + len {
            return Ok(Item::NeedMore);
        }
        return Ok(Item::Interleaved {
            channel: buf[1],
            used: 4 + len,
        });
    }
    match Message::<Vec<u8>>::parse(buf) {
        Ok((Message::Request(req), used)) => Ok(Item::Request(req, used)),
        Ok((_, used)) => Ok(Item::Other(used.max(1))),
        Err(ParseError::Incomplete(_)) if buf.len() < MAX_MESSAGE => Ok(Item::NeedMore),
        Err(e) => Err(Malformed {
            reason: match e {
                ParseError::Incomplete(_) => format!("no complete message in {MAX_MESSAGE} bytes"),
                ParseError::Error => "not an RTSP message".into(),
            },
            excerpt: hex::encode(&buf[..buf.len().min(32)]),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(e.excerpt.starts_with("0001"));
        assert!(next_item(&[b'A'; MAX_MESSAGE + 1]).is_err());
    }
}
