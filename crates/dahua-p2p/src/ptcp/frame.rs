//! The PTCP wire format: one UDP datagram is one frame, a 24-byte header followed by an
//! optional body. Parsing is total over arbitrary bytes (an error value, never a panic) and
//! `Frame::parse(&f.to_bytes()) == Ok(f)` holds for every frame.
//!
//! Decisions where the notes leave room:
//! * The body length field is read as `BE24 & 0xFFFF` (equivalently the BE16 at body offset
//!   2), so peers that write either a 24-bit or a 16-bit length decode the same. Only DATA
//!   uses it: a DATA payload is the rest of the datagram; a length that agrees with the rest
//!   (modulo 2^16) or is 0 keeps it whole, a smaller one trims trailing bytes, a larger one is
//!   an error.
//! * BIND carries the port as BE32; the port is its low 16 bits (dh-fwd reads a BE16 "hint"
//!   in the high half, which every known sender leaves 0).
//! * STATUS bodies whose data starts with `CONN` or `DISC` are [`Body::Status`]; any other
//!   `0x12` body, an unknown type, and a `0x00` body that is not exactly the SYN are kept
//!   opaque as [`Body::Other`].
//! * Control bodies other than `0x1A` must carry the 12-byte sub-header; `0x1A` is recognised
//!   by its first byte alone.

use std::net::Ipv4Addr;

use bytes::Bytes;
use thiserror::Error;

/// The four magic bytes that open every frame.
pub const MAGIC: [u8; 4] = *b"PTCP";
/// Length of the frame header.
pub const HEADER_LEN: usize = 24;
/// Length of the sub-header (`type`, `len`, `realm`, zero) that opens typed bodies.
pub const SUB_HEADER_LEN: usize = 12;
/// The exact body of a SYN frame.
pub const SYN_BODY: [u8; 4] = [0x00, 0x03, 0x01, 0x00];
/// The `pid` a SYN frame carries.
pub const SYN_PID: u32 = 0x0002_FFFF;
/// Length of a BIND body.
pub const BIND_LEN: usize = 20;

/// Body type byte of DATA.
pub const TYPE_DATA: u8 = 0x10;
/// Body type byte of BIND.
pub const TYPE_BIND: u8 = 0x11;
/// Body type byte of STATUS (CONN/DISC).
pub const TYPE_STATUS: u8 = 0x12;
/// Body type byte of HEARTBEAT.
pub const TYPE_HEARTBEAT: u8 = 0x13;
/// Body type byte of SIGN REQUEST.
pub const TYPE_SIGN_REQUEST: u8 = 0x17;
/// Body type byte of SIGN.
pub const TYPE_SIGN: u8 = 0x18;
/// Body type byte of AUTH.
pub const TYPE_AUTH: u8 = 0x19;
/// Body type byte of AUTH RESPONSE.
pub const TYPE_AUTH_RESPONSE: u8 = 0x1A;
/// Body type byte of AUTH FINAL.
pub const TYPE_AUTH_FINAL: u8 = 0x1B;

use text::hex_excerpt;

/// The 24-byte frame header (after the magic, all fields big-endian u32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Header {
    /// Sender's cumulative body bytes sent before this frame.
    pub sent: u32,
    /// Cumulative ack: the next `sent` the sender expects from its peer.
    pub recv: u32,
    /// Packet id (SYN: `0x0002FFFF`; otherwise a 16-bit count or window, see `PidPolicy`).
    pub pid: u32,
    /// Sender's message counter, +1 per frame sent.
    pub lmid: u32,
    /// Echo of the peer's most recent `lmid`.
    pub rmid: u32,
}

/// Whether a STATUS body says the realm is connected or disconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `CONN`: the realm's TCP connection is up.
    Conn,
    /// `DISC`: the realm is closed or refused.
    Disc,
}

impl Status {
    /// The four ASCII bytes on the wire.
    pub fn as_bytes(self) -> &'static [u8; 4] {
        match self {
            Status::Conn => b"CONN",
            Status::Disc => b"DISC",
        }
    }
}

/// A frame body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// No body: a pure acknowledgement.
    Empty,
    /// `00 03 01 00`: session synchronisation.
    Syn,
    /// `0x10`: realm payload bytes.
    Data {
        /// Realm the bytes belong to.
        realm: u32,
        /// The payload.
        payload: Bytes,
    },
    /// `0x11`: open a realm to `ip:port` on the device.
    Bind {
        /// Realm id chosen by the client.
        realm: u32,
        /// Target TCP port.
        port: u16,
        /// Target IPv4 address (every known client sends 127.0.0.1).
        ip: Ipv4Addr,
    },
    /// `0x12` with `CONN`/`DISC`.
    Status {
        /// Realm the status is about.
        realm: u32,
        /// Connected or disconnected.
        status: Status,
        /// Whether a NUL follows the four status bytes (some devices append one).
        nul: bool,
    },
    /// `0x13`: keep-alive, answered with an empty ack.
    Heartbeat,
    /// `0x17`: ask the relay agent for a sign.
    SignRequest,
    /// `0x18`: the agent's sign (bytes after the 12-byte sub-header).
    Sign(Bytes),
    /// `0x19`: present the sign to the device.
    Auth(Bytes),
    /// `0x1A`: the device accepted the sign (bytes after the sub-header, if any).
    AuthResponse(Bytes),
    /// `0x1B`: finish authentication; the device answers with an empty frame.
    AuthFinal,
    /// Any other body (unknown type, `0x0A`, non-status `0x12`), kept whole and opaque.
    Other(Bytes),
}

impl Body {
    /// The type byte, or `None` for an empty body.
    pub fn kind(&self) -> Option<u8> {
        Some(match self {
            Body::Empty => return None,
            Body::Syn => 0x00,
            Body::Data { .. } => TYPE_DATA,
            Body::Bind { .. } => TYPE_BIND,
            Body::Status { .. } => TYPE_STATUS,
            Body::Heartbeat => TYPE_HEARTBEAT,
            Body::SignRequest => TYPE_SIGN_REQUEST,
            Body::Sign(_) => TYPE_SIGN,
            Body::Auth(_) => TYPE_AUTH,
            Body::AuthResponse(_) => TYPE_AUTH_RESPONSE,
            Body::AuthFinal => TYPE_AUTH_FINAL,
            Body::Other(raw) => return raw.first().copied(),
        })
    }

    /// Number of bytes the body occupies on the wire (what it adds to `sent`).
    pub fn wire_len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Syn => SYN_BODY.len(),
            Body::Data { payload, .. } => SUB_HEADER_LEN + payload.len(),
            Body::Bind { .. } => BIND_LEN,
            Body::Status { nul, .. } => SUB_HEADER_LEN + 4 + usize::from(*nul),
            Body::Heartbeat | Body::SignRequest | Body::AuthFinal => SUB_HEADER_LEN,
            Body::Sign(s) | Body::Auth(s) | Body::AuthResponse(s) => SUB_HEADER_LEN + s.len(),
            Body::Other(raw) => raw.len(),
        }
    }

    /// Whether this is the empty body.
    pub fn is_empty(&self) -> bool {
        matches!(self, Body::Empty)
    }

    /// Parses a body (the bytes after the 24-byte header). Offsets in errors are relative
    /// to the body.
    pub fn parse(body: &[u8]) -> Result<Body, FrameError> {
        parse_body(body, body, 0)
    }

    /// Appends the body's wire form to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Body::Empty => {}
            Body::Syn => out.extend_from_slice(&SYN_BODY),
            Body::Data { realm, payload } => {
                // 24 bits on the wire; readers mask to 16 and compare modulo 2^16.
                let len = (payload.len() & 0xFF_FFFF) as u32;
                write_sub_header(out, TYPE_DATA, len, *realm);
                out.extend_from_slice(payload);
            }
            Body::Bind { realm, port, ip } => {
                write_sub_header(out, TYPE_BIND, 0, *realm);
                out.extend_from_slice(&u32::from(*port).to_be_bytes());
                out.extend_from_slice(&ip.octets());
            }
            Body::Status { realm, status, nul } => {
                write_sub_header(out, TYPE_STATUS, 0, *realm);
                out.extend_from_slice(status.as_bytes());
                if *nul {
                    out.push(0);
                }
            }
            Body::Heartbeat => write_sub_header(out, TYPE_HEARTBEAT, 0, 0),
            Body::SignRequest => write_sub_header(out, TYPE_SIGN_REQUEST, 0, 0),
            Body::AuthFinal => write_sub_header(out, TYPE_AUTH_FINAL, 0, 0),
            Body::Sign(s) | Body::Auth(s) | Body::AuthResponse(s) => {
                let kind = self.kind().unwrap_or_default();
                write_sub_header(out, kind, 0, 0);
                out.extend_from_slice(s);
            }
            Body::Other(raw) => out.extend_from_slice(raw),
        }
    }
}

fn write_sub_header(out: &mut Vec<u8>, kind: u8, len24: u32, realm: u32) {
    let len = len24.to_be_bytes();
    out.extend_from_slice(&[kind, len[1], len[2], len[3]]);
    out.extend_from_slice(&realm.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
}

/// One PTCP frame: header plus body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The counters.
    pub header: Header,
    /// The body.
    pub body: Body,
}

impl Frame {
    /// Parses one datagram.
    pub fn parse(datagram: &[u8]) -> Result<Frame, FrameError> {
        let header = Header::parse(datagram)?;
        let body = parse_body(datagram, &datagram[HEADER_LEN..], HEADER_LEN)?;
        Ok(Frame { header, body })
    }

    /// Appends the frame's wire form to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER_LEN + self.body.wire_len());
        self.header.write(out);
        self.body.write(out);
    }

    /// The frame's wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.wire_len());
        self.write(&mut out);
        out
    }
}

impl Header {
    /// Parses the header at the start of `datagram` (checks length and magic only).
    pub fn parse(datagram: &[u8]) -> Result<Header, FrameError> {
        if datagram.len() < HEADER_LEN {
            return Err(FrameError::new(
                datagram,
                datagram.len(),
                FrameErrorKind::TooShort {
                    len: datagram.len(),
                },
            ));
        }
        if datagram[..4] != MAGIC {
            let mut magic = [0; 4];
            magic.copy_from_slice(&datagram[..4]);
            return Err(FrameError::new(
                datagram,
                0,
                FrameErrorKind::BadMagic { found: magic },
            ));
        }
        Ok(Header {
            sent: be32(&datagram[4..]),
            recv: be32(&datagram[8..]),
            pid: be32(&datagram[12..]),
            lmid: be32(&datagram[16..]),
            rmid: be32(&datagram[20..]),
        })
    }

    /// Appends the magic and the five counters to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        for v in [self.sent, self.recv, self.pid, self.lmid, self.rmid] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Reads a big-endian u32 from the first four bytes (callers check the length).
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses `body`, which starts at `offset` within `whole` (used for error context).
fn parse_body(whole: &[u8], body: &[u8], offset: usize) -> Result<Body, FrameError> {
    let Some(&kind) = body.first() else {
        return Ok(Body::Empty);
    };
    let need = |n: usize| -> Result<(), FrameError> {
        if body.len() < n {
            Err(FrameError::new(
                whole,
                offset,
                FrameErrorKind::TruncatedBody {
                    kind,
                    need: n,
                    have: body.len(),
                },
            ))
        } else {
            Ok(())
        }
    };
    let rest = || Bytes::copy_from_slice(body.get(SUB_HEADER_LEN..).unwrap_or_default());
    Ok(match kind {
        0x00 if body == SYN_BODY => Body::Syn,
        TYPE_DATA => {
            need(SUB_HEADER_LEN)?;
            let declared = usize::from(u16::from_be_bytes([body[2], body[3]]));
            let available = body.len() - SUB_HEADER_LEN;
            let take = if declared == available & 0xFFFF || declared == 0 {
                available
            } else if declared < available {
                declared
            } else {
                return Err(FrameError::new(
                    whole,
                    offset + 1,
                    FrameErrorKind::DataLength {
                        declared,
                        available,
                    },
                ));
            };
            Body::Data {
                realm: be32(&body[4..]),
                payload: Bytes::copy_from_slice(&body[SUB_HEADER_LEN..SUB_HEADER_LEN + take]),
            }
        }
        TYPE_BIND => {
            need(BIND_LEN)?;
            Body::Bind {
                realm: be32(&body[4..]),
                port: u16::from_be_bytes([body[14], body[15]]),
                ip: Ipv4Addr::new(body[16], body[17], body[18], body[19]),
            }
        }
        TYPE_STATUS => {
            let status = match body.get(SUB_HEADER_LEN..SUB_HEADER_LEN + 4) {
                Some(b"CONN") => Some(Status::Conn),
                Some(b"DISC") => Some(Status::Disc),
                _ => None,
            };
            match status {
                Some(status) => Body::Status {
                    realm: be32(&body[4..]),
                    status,
                    nul: body.get(SUB_HEADER_LEN + 4) == Some(&0),
                },
                None => Body::Other(Bytes::copy_from_slice(body)),
            }
        }
        TYPE_HEARTBEAT => {
            need(SUB_HEADER_LEN)?;
            Body::Heartbeat
        }
        TYPE_SIGN_REQUEST => {
            need(SUB_HEADER_LEN)?;
            Body::SignRequest
        }
        TYPE_SIGN => {
            need(SUB_HEADER_LEN)?;
            Body::Sign(rest())
        }
        TYPE_AUTH => {
            need(SUB_HEADER_LEN)?;
            Body::Auth(rest())
        }
        TYPE_AUTH_RESPONSE => Body::AuthResponse(rest()),
        TYPE_AUTH_FINAL => {
            need(SUB_HEADER_LEN)?;
            Body::AuthFinal
        }
        _ => Body::Other(Bytes::copy_from_slice(body)),
    })
}

/// What was wrong with a datagram.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FrameErrorKind {
    /// Shorter than the 24-byte header.
    #[error("{len} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// The first four bytes are not `PTCP`.
    #[error("magic is {} instead of PTCP", hex::encode(found))]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// A typed body is shorter than its fixed part.
    #[error("body type {kind:#04x} needs {need} bytes, has {have}")]
    TruncatedBody {
        /// The body type byte.
        kind: u8,
        /// Minimum body length for the type.
        need: usize,
        /// Actual body length.
        have: usize,
    },
    /// A DATA length field larger than the payload that follows.
    #[error("DATA declares {declared} payload bytes, only {available} follow")]
    DataLength {
        /// Length field (low 16 bits).
        declared: usize,
        /// Payload bytes present.
        available: usize,
    },
}

/// A datagram that is not a valid PTCP frame, with the bytes needed to find it in a capture.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("PTCP frame: {kind} (at byte {offset}; datagram {excerpt})")]
pub struct FrameError {
    /// What was wrong.
    pub kind: FrameErrorKind,
    /// Byte offset of the problem within the datagram.
    pub offset: usize,
    /// Hex of the datagram's first bytes.
    pub excerpt: String,
}

impl FrameError {
    fn new(datagram: &[u8], offset: usize, kind: FrameErrorKind) -> Self {
        FrameError {
            kind,
            offset,
            excerpt: hex_excerpt(datagram),
        }
    }
}
