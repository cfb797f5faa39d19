// The test client's framing. STAND-IN until `camgate-dhip` lands: it reuses the
// simulator's `wire` seam; switch it to `dhip::frame` / `dhip::auth` / `dhip::dhav` so the
// client side is independent of the simulator's own framing.
use serde_json::Value;

pub struct Frame {
    pub session: u32,
    pub id: u32,
    pub index: u32,
    pub json: Value,
    pub raw_json: Vec<u8>,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub struct FrameReader {
    r: sim::dhip::wire::Reader,
}

impl FrameReader {
    pub fn new() -> Self {
        FrameReader::default()
    }
    pub fn push(&mut self, b: &[u8]) {
        self.r.push(b);
    }
    pub fn next_frame(&mut self) -> Option<Frame> {
        let m = self.r.next_message().ok()??;
        let raw = m.json.clone();
        let json = serde_json::from_slice(sim::dhip::wire::trim_json(&raw)).unwrap_or(Value::Null);
        Some(Frame {
            session: m.session,
            id: m.id,
            index: m.index,
            json,
            raw_json: raw,
            data: m.data,
        })
    }
}

pub fn frame(session: u32, id: u32, json: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = vec![0x20, 0, 0, 0, b'D', b'H', b'I', b'P'];
    for v in [
        session,
        id,
        (json.len() + data.len()) as u32,
        0,
        json.len() as u32,
        data.len() as u32,
    ] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(json);
    h.extend_from_slice(data);
    h
}

pub fn default_hash(user: &str, pw: &str, realm: &str, random: &str) -> String {
    sim::dhip::wire::expected_password(&sim::dhip::Encryption::Default, user, pw, realm, random)
        .unwrap()
}

pub struct Packet {
    pub video: bool,
    pub audio: bool,
    pub keyframe: bool,
    pub payload: Vec<u8>,
}

pub fn demux(b: &[u8]) -> Vec<Packet> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 32 <= b.len() && &b[i..i + 4] == b"DHAV" {
        let l = u32::from_le_bytes(b[i + 12..i + 16].try_into().unwrap()) as usize;
        if i + l > b.len() {
            break;
        }
        let ext = b[i + 22] as usize;
        let kind = b[i + 4];
        out.push(Packet {
            video: kind == 0xFD || kind == 0xFC,
            audio: kind == 0xF0,
            keyframe: kind == 0xFD,
            payload: b[i + 24 + ext..i + l - 8].to_vec(),
        });
        i += l;
    }
    out
}
