// The test client's framing: the protocol crate's decoder, encoder, request envelope, login
// hash and DHAV demuxer, so the simulator is exercised against an implementation of its own.
use dhip::envelope::{Request, SessionId};
use dhip::frame::{Decoder, encode};
use dhip::header::{HEADER_LEN, Header};
use serde_json::Value;

pub struct Frame {
    pub session: u32,
    pub id: u32,
    pub index: u32,
    pub json: Value,
    /// The JSON as sent, terminator included (the decoder trims it).
    pub raw_json: Vec<u8>,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub struct FrameReader {
    d: Decoder,
}

impl FrameReader {
    pub fn new() -> Self {
        FrameReader::default()
    }
    pub fn push(&mut self, b: &[u8]) {
        self.d.push(b);
    }
    pub fn next_frame(&mut self) -> Option<Frame> {
        let head = self.head_json();
        let m = self.d.next_message().ok()??;
        let raw_json = head
            .filter(|h| h.starts_with(&m.json))
            .unwrap_or_else(|| m.json.to_vec());
        Some(Frame {
            session: m.session,
            id: m.request_id,
            index: m.index,
            json: serde_json::from_slice(&m.json).unwrap_or(Value::Null),
            raw_json,
            data: m.data.to_vec(),
        })
    }
    /// The JSON bytes of the complete packet at the head of the buffer, as sent.
    fn head_json(&mut self) -> Option<Vec<u8>> {
        let buf = self.d.buffer_mut();
        let h = Header::parse(buf).ok()?;
        let body = buf.get(HEADER_LEN..HEADER_LEN + h.package_length as usize)?;
        Some(body[..body.len().min(h.message_length as usize)].to_vec())
    }
}

pub fn frame(session: u32, id: u32, json: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    encode(session, id, json, data, &mut out);
    out.to_vec()
}

/// A framed request as python-dhip sends it: the session (once there is one) in the header
/// and the JSON, `object` for instance calls, `data` as the binary trailer.
pub fn request(
    session: u32,
    id: u32,
    method: &str,
    params: Value,
    object: Option<u64>,
    data: &[u8],
) -> Vec<u8> {
    let mut r = Request::new(method, params, u64::from(id));
    r.session = (session != 0).then(|| SessionId::Int(u64::from(session)));
    r.object = object;
    frame(session, id, &r.to_json(), data)
}

pub fn default_hash(user: &str, pw: &str, realm: &str, random: &str) -> String {
    dhip::auth::default_hash(user, pw, realm, random)
}

pub struct Packet {
    pub video: bool,
    pub audio: bool,
    pub keyframe: bool,
    pub payload: Vec<u8>,
}

pub fn demux(b: &[u8]) -> Vec<Packet> {
    use dhip::dhav::{Demuxer, PacketType};
    let mut d = Demuxer::new();
    d.push(b);
    std::iter::from_fn(|| d.next_packet())
        .map(|p| Packet {
            video: matches!(p.kind, PacketType::VideoKey | PacketType::VideoP),
            audio: p.kind == PacketType::Audio,
            keyframe: p.kind == PacketType::VideoKey,
            payload: p.payload.to_vec(),
        })
        .collect()
}
