//! DHIP messages on a byte stream: a streaming [`Decoder`] (exactly `[16]` body bytes per
//! packet, JSON/binary split at `[24]`, fragment reassembly) and the encoders, including the
//! variants devices emit (a counted `\n` or NUL after the JSON, fragmented replies).
//!
//! Two fragment models are public and no capture settles which devices use:
//! - **total length** (DahuaConsole): `[24]` is the message's total length, larger than
//!   `[16]`; continuation packets carry raw bytes. The decoder joins them into one message.
//! - **per-packet JSON** (python-dhip): every packet has its own small JSON and a data chunk,
//!   with `[20]` counting up. The decoder hands each packet over with its `index`, and
//!   [`Reassembler`] joins the data of packets 1.. onto packet 0.

use bytes::{Bytes, BytesMut};

use crate::FrameError;
use crate::header::{HEADER_LEN, Header};

/// Largest message the decoder accepts by default (16 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

/// One message (or one per-packet-JSON fragment) read from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Header session number.
    pub session: u32,
    /// Header request id.
    pub request_id: u32,
    /// Fragment index (`[20]`); above 0 for per-packet-JSON continuation packets.
    pub index: u32,
    /// The JSON text, trailing whitespace and NULs removed.
    pub json: Bytes,
    /// The binary part after the JSON (empty for most messages).
    pub data: Bytes,
    /// The header of the message's first packet (its length fields, for tools that show
    /// them; `session`, `request_id` and `index` above are copied from it).
    pub header: Header,
}

/// Removes trailing whitespace and NULs (devices end JSON with `\n`, discovery replies with
/// `\0`).
pub fn trim_json(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b'\n' | b'\r' | b' ' | b'\t' | 0))
        .map_or(0, |i| i + 1);
    &b[..end]
}

fn trim_bytes(b: Bytes) -> Bytes {
    let n = trim_json(&b).len();
    b.slice(..n)
}

/// A total-length message being joined.
#[derive(Debug)]
struct Partial {
    /// The first packet's header.
    header: Header,
    total: usize,
    bytes: BytesMut,
}

/// Splits a DHIP byte stream into messages.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_message: usize,
    partial: Option<Partial>,
    failed: Option<FrameError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Decoder {
    /// A decoder refusing messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            max_message,
            partial: None,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The buffer to read into directly (then no `push` is needed).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. After an error the
    /// stream is out of step and the same error is returned again: close the connection.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.next_inner() {
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    fn next_inner(&mut self) -> Result<Option<Message>, FrameError> {
        loop {
            if self.buf.len() < 8 {
                if !self.buf.is_empty() && self.buf[..] != crate::header::PREFIX[..self.buf.len()] {
                    return Err(FrameError::BadPrefix {
                        protocol: crate::header::Protocol::recognise(&self.buf),
                        hex: hex::encode(&self.buf[..]),
                    });
                }
                return Ok(None);
            }
            if self.buf.len() < HEADER_LEN {
                // Check the prefix early, so a peer speaking something else fails at once.
                Header::parse(&{
                    let mut a = [0u8; HEADER_LEN];
                    a[..8].copy_from_slice(&self.buf[..8]);
                    a
                })?;
                return Ok(None);
            }
            let h = Header::parse(&self.buf)?;
            let len = h.package_length as usize;
            if len > self.max_message {
                return Err(FrameError::TooLarge {
                    len,
                    max: self.max_message,
                });
            }
            if self.buf.len() < HEADER_LEN + len {
                self.buf.reserve(HEADER_LEN + len - self.buf.len());
                return Ok(None);
            }
            let mut packet = self.buf.split_to(HEADER_LEN + len);
            let _ = packet.split_to(HEADER_LEN);
            let total = h.message_length as usize;
            let dl = h.data_length as usize;
            if let Some(p) = &mut self.partial {
                if p.header.request_id != h.request_id {
                    return Err(FrameError::InterleavedFragment {
                        expected: p.header.request_id,
                        got: h.request_id,
                    });
                }
                p.bytes.extend_from_slice(&packet);
                if p.bytes.len() < p.total {
                    continue;
                }
                let p = self.partial.take().expect("partial present");
                return Ok(Some(Message {
                    session: p.header.session,
                    request_id: p.header.request_id,
                    index: 0,
                    json: trim_bytes(p.bytes.freeze()),
                    data: Bytes::new(),
                    header: p.header,
                }));
            }
            if dl == 0 && total > len {
                if total > self.max_message {
                    return Err(FrameError::TooLarge {
                        len: total,
                        max: self.max_message,
                    });
                }
                let mut bytes = BytesMut::with_capacity(total);
                bytes.extend_from_slice(&packet);
                self.partial = Some(Partial {
                    header: h,
                    total,
                    bytes,
                });
                continue;
            }
            let body = packet.freeze();
            let json_len = if dl > 0 { total.min(len) } else { len };
            return Ok(Some(Message {
                session: h.session,
                request_id: h.request_id,
                index: h.package_index,
                json: trim_bytes(body.slice(..json_len)),
                data: body.slice(json_len..),
                header: h,
            }));
        }
    }
}

/// What devices put after the JSON text (counted in the lengths).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Terminator {
    /// Nothing (most devices, python-dhip).
    #[default]
    None,
    /// A newline (VTO firmware).
    Newline,
    /// A NUL byte (some discovery replies).
    Nul,
}

impl Terminator {
    fn bytes(self) -> &'static [u8] {
        match self {
            Terminator::None => b"",
            Terminator::Newline => b"\n",
            Terminator::Nul => b"\0",
        }
    }
}

/// Appends one packet: header, `json` (plus `term`), then `data`.
pub fn encode_with(
    session: u32,
    request_id: u32,
    json: &[u8],
    term: Terminator,
    data: &[u8],
    out: &mut BytesMut,
) {
    let json_len = json.len() + term.bytes().len();
    Header {
        session,
        request_id,
        package_length: (json_len + data.len()) as u32,
        package_index: 0,
        message_length: json_len as u32,
        data_length: data.len() as u32,
    }
    .write(out);
    out.extend_from_slice(json);
    out.extend_from_slice(term.bytes());
    out.extend_from_slice(data);
}

/// Appends one packet carrying `json` and a binary `data` trailer.
pub fn encode(session: u32, request_id: u32, json: &[u8], data: &[u8], out: &mut BytesMut) {
    encode_with(session, request_id, json, Terminator::None, data, out);
}

/// How a message is split over several packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentModel {
    /// python-dhip: every packet has its own JSON (`{"id":N}` after the first) and a chunk of
    /// the data; `[20]` counts up.
    PerPacketJson,
    /// DahuaConsole: `[24]` is the total length; the message bytes are cut into pieces.
    TotalLength,
}

/// Appends `json` + `data` split into `pieces` packets following `model`. With
/// [`FragmentModel::TotalLength`] the data is not carried (that model has no binary part).
pub fn encode_fragmented(
    session: u32,
    request_id: u32,
    json: &[u8],
    data: &[u8],
    model: FragmentModel,
    pieces: usize,
    out: &mut BytesMut,
) {
    let pieces = pieces.max(1);
    match model {
        FragmentModel::PerPacketJson => {
            let chunk = data.len().div_ceil(pieces).max(1);
            let mut chunks = data.chunks(chunk);
            let small = format!("{{\"id\":{request_id}}}");
            for i in 0..pieces {
                let j: &[u8] = if i == 0 { json } else { small.as_bytes() };
                let d = chunks.next().unwrap_or(&[]);
                Header {
                    session,
                    request_id,
                    package_length: (j.len() + d.len()) as u32,
                    package_index: i as u32,
                    message_length: j.len() as u32,
                    data_length: d.len() as u32,
                }
                .write(out);
                out.extend_from_slice(j);
                out.extend_from_slice(d);
            }
        }
        FragmentModel::TotalLength => {
            let chunk = json.len().div_ceil(pieces).max(1);
            for c in json.chunks(chunk) {
                Header {
                    session,
                    request_id,
                    package_length: c.len() as u32,
                    package_index: 0,
                    message_length: json.len() as u32,
                    data_length: 0,
                }
                .write(out);
                out.extend_from_slice(c);
            }
        }
    }
}

/// Joins per-packet-JSON fragments: packet 0 is held until the following packets (index 1,
/// 2, ...) of the same request id stop coming, and their data is appended to it.
#[derive(Debug)]
pub struct Reassembler {
    held: Option<(Message, BytesMut)>,
    max_message: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Reassembler {
    /// A reassembler refusing joined data larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Reassembler {
            held: None,
            max_message,
        }
    }

    /// Feeds one decoded message. Returns the messages that are complete now: a held message
    /// is complete when a packet that does not continue it arrives. Continuations that take
    /// the joined data past the limit are an error (the held message is dropped): a peer that
    /// never stops continuing a message must not exhaust memory.
    pub fn push(&mut self, m: Message) -> Result<Vec<Message>, FrameError> {
        let mut out = Vec::new();
        if m.index > 0 {
            if let Some((h, data)) = &mut self.held
                && h.request_id == m.request_id
            {
                let len = data.len() + m.data.len();
                if len > self.max_message {
                    self.held = None;
                    return Err(FrameError::TooLarge {
                        len,
                        max: self.max_message,
                    });
                }
                data.extend_from_slice(&m.data);
                return Ok(out);
            }
            // A continuation of nothing: deliver it as it is.
            out.extend(self.flush());
            out.push(m);
            return Ok(out);
        }
        out.extend(self.flush());
        let data = BytesMut::from(&m.data[..]);
        self.held = Some((m, data));
        Ok(out)
    }

    /// The held message, with the data of its continuations.
    pub fn flush(&mut self) -> Option<Message> {
        self.held.take().map(|(mut m, data)| {
            m.data = data.freeze();
            m
        })
    }

    /// True while a message is held.
    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(index: u32, data: &[u8]) -> Message {
        Message {
            session: 1,
            request_id: 5,
            index,
            json: Bytes::from_static(br#"{"id":5}"#),
            data: Bytes::copy_from_slice(data),
            header: Header::default(),
        }
    }

    #[test]
    fn continuations_past_the_limit_are_refused_not_buffered() {
        // A device that keeps sending packets 1, 2, 3... of one reply grew the joined data
        // without bound.
        let mut r = Reassembler::new(1000);
        assert_eq!(r.push(packet(0, &[0; 100])), Ok(vec![]));
        for i in 1..10 {
            assert_eq!(r.push(packet(i, &[1; 100])), Ok(vec![]));
        }
        assert_eq!(
            r.push(packet(10, &[2; 100])),
            Err(FrameError::TooLarge {
                len: 1100,
                max: 1000
            })
        );
        assert!(!r.is_holding());
        // Up to the limit the data is joined as before.
        let mut r = Reassembler::new(1000);
        r.push(packet(0, &[0; 500])).unwrap();
        r.push(packet(1, &[1; 500])).unwrap();
        assert_eq!(r.flush().unwrap().data.len(), 1000);
    }
}
