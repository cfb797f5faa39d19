//! The simulator's single seam to the protocol crate: DHIP framing (read, reassemble,
//! write in the configured JSON layout/terminator, both fragment models), the stage-2
//! password a scheme requires, discovery probe/reply framing, and DHAV packets.
//!
//! STAND-IN: `camgate-dhip` (branch `dhip-core`) had not been started when this was
//! written, so these bodies are a minimal local version to make the simulator runnable.
//! Each one is to become a call into `dhip` (`dhip::frame` decoder/encoders with
//! `Terminator`, `dhip::envelope::JsonStyle`, `dhip::auth::{default_hash, old_digest}`,
//! `dhip::discovery::{is_probe, reply}`, `dhip::dhav` writer) once that crate lands; nothing
//! outside this file (and `tests/support/dhip_framing.rs`) builds bytes by hand.
#![allow(missing_docs, dead_code)]
use md5::{Digest, Md5};
use serde_json::Value;

use super::options::{DhipSimOptions, FragmentModel, FragmentReplies, JsonLayout};
use super::sessions::Encryption;

pub struct Message {
    pub session: u32,
    pub id: u32,
    pub index: u32,
    pub json: Vec<u8>,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// A DahuaConsole-style message being reassembled: (session, id, total, bytes so far).
    partial: Option<(u32, u32, usize, Vec<u8>)>,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl Reader {
    pub fn new() -> Self {
        Reader::default()
    }
    pub fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub fn next_message(&mut self) -> Result<Option<Message>, String> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        if self.buf[..8] != [0x20, 0, 0, 0, b'D', b'H', b'I', b'P'] {
            return Err("bad magic".into());
        }
        if self.buf.len() < 32 {
            return Ok(None);
        }
        let len = u32_at(&self.buf, 16) as usize;
        if self.buf.len() < 32 + len {
            return Ok(None);
        }
        let (session, id, index) = (
            u32_at(&self.buf, 8),
            u32_at(&self.buf, 12),
            u32_at(&self.buf, 20),
        );
        let total = u32_at(&self.buf, 24) as usize;
        let dl = u32_at(&self.buf, 28) as usize;
        let body = self.buf[32..32 + len].to_vec();
        self.buf.drain(..32 + len);
        if dl == 0 && (total > len || self.partial.is_some()) {
            let p = self.partial.get_or_insert((session, id, total, Vec::new()));
            p.3.extend_from_slice(&body);
            if p.3.len() < p.2 {
                return self.next_message();
            }
            let (session, id, _, json) = self.partial.take().unwrap_or_default();
            return Ok(Some(Message {
                session,
                id,
                index: 0,
                json,
                data: Vec::new(),
            }));
        }
        let jl = total.min(len);
        Ok(Some(Message {
            session,
            id,
            index,
            json: body[..jl].to_vec(),
            data: body[jl..].to_vec(),
        }))
    }
}

pub fn trim_json(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b'\n' | b'\r' | b' ' | 0))
        .map_or(0, |i| i + 1);
    &b[..end]
}

fn header(session: u32, id: u32, len: usize, index: u32, jl: usize, dl: usize) -> Vec<u8> {
    let mut h = vec![0x20, 0, 0, 0, b'D', b'H', b'I', b'P'];
    for v in [session, id, len as u32, index, jl as u32, dl as u32] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

fn text(o: &DhipSimOptions, body: &Value) -> Vec<u8> {
    let mut t = match o.json {
        JsonLayout::Compact => body.to_string(),
        JsonLayout::Spaced => spaced(body),
    }
    .into_bytes();
    if o.trailing_newline {
        t.push(b'\n');
    }
    t
}

fn spaced(v: &Value) -> String {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), spaced(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
        Value::Array(a) if !a.is_empty() => {
            let inner: Vec<String> = a.iter().map(spaced).collect();
            format!("[ {} ]", inner.join(", "))
        }
        _ => v.to_string(),
    }
}

pub fn encode_json(
    o: &DhipSimOptions,
    session: u32,
    id: u32,
    body: &Value,
    data: &[u8],
) -> Vec<u8> {
    let t = text(o, body);
    let mut out = header(session, id, t.len() + data.len(), 0, t.len(), data.len());
    out.extend_from_slice(&t);
    out.extend_from_slice(data);
    out
}

pub fn encode_fragmented(
    o: &DhipSimOptions,
    session: u32,
    id: u32,
    body: &Value,
    f: &FragmentReplies,
) -> Vec<u8> {
    let t = text(o, body);
    let pieces = f.pieces.max(2);
    let mut out = Vec::new();
    match f.model {
        FragmentModel::PerPacketJson => {
            let chunk = f.data.len().div_ceil(pieces).max(1);
            let chunks: Vec<&[u8]> = f.data.chunks(chunk).collect();
            for i in 0..pieces {
                let j = if i == 0 {
                    t.clone()
                } else {
                    format!("{{\"id\":{id}}}").into_bytes()
                };
                let d = chunks.get(i).copied().unwrap_or(&[]);
                out.extend(header(
                    session,
                    id,
                    j.len() + d.len(),
                    i as u32,
                    j.len(),
                    d.len(),
                ));
                out.extend_from_slice(&j);
                out.extend_from_slice(d);
            }
        }
        FragmentModel::TotalLength => {
            let all = t.clone();
            let chunk = all.len().div_ceil(pieces).max(1);
            for c in all.chunks(chunk) {
                out.extend(header(session, id, c.len(), 0, all.len(), 0));
                out.extend_from_slice(c);
            }
        }
    }
    out
}

fn md5u(s: &str) -> String {
    hex::encode_upper(Md5::digest(s.as_bytes()))
}

pub fn expected_password(
    e: &Encryption,
    u: &str,
    p: &str,
    realm: &str,
    random: &str,
) -> Option<String> {
    match e {
        Encryption::Default => Some(md5u(&format!(
            "{u}:{random}:{}",
            md5u(&format!("{u}:{realm}:{p}"))
        ))),
        Encryption::OldDigest => Some(gen1(p)),
        Encryption::Basic => {
            use base64::Engine;
            Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        }
        Encryption::Plain => Some(p.to_owned()),
        Encryption::Other(_) => None,
    }
}

/// The 8-character "gen1" (OldDigest) hash.
fn gen1(p: &str) -> String {
    let d = Md5::digest(p.as_bytes());
    d.chunks(2)
        .map(|pair| {
            let v = ((u32::from(pair[0]) + u32::from(pair[1])) % 62) as u8;
            char::from(match v {
                0..=9 => b'0' + v,
                10..=35 => b'A' + v - 10,
                _ => b'a' + v - 36,
            })
        })
        .collect()
}

pub fn is_discovery_probe(b: &[u8]) -> bool {
    let mut r = Reader::new();
    r.push(b);
    matches!(r.next_message(), Ok(Some(m)) if serde_json::from_slice::<Value>(trim_json(&m.json)).ok().and_then(|v| v.get("method").cloned()) == Some(Value::String("DHDiscover.search".into())))
}

pub fn discovery_reply(o: &DhipSimOptions, body: &Value) -> Vec<u8> {
    let mut t = body.to_string().into_bytes();
    if o.discovery_nul {
        t.push(0);
    }
    let mut out = header(0, 0, t.len(), 0, t.len(), 0);
    out.extend(t);
    out
}

pub struct VideoPacket<'a> {
    pub channel: u8,
    pub seq: u32,
    pub keyframe: bool,
    pub utc: i64,
    pub ms: u16,
    pub width: u16,
    pub height: u16,
    pub fps: u8,
    pub annexb: &'a [u8],
}

fn packet(
    kind: u8,
    channel: u8,
    seq: u32,
    utc: i64,
    ms: u16,
    ext: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let c = super::clock::Civil::from_unix(utc);
    let date = (c.second)
        | (c.minute << 6)
        | (c.hour << 12)
        | (c.day << 17)
        | (c.month << 22)
        | (((c.year - 2000) as u32) << 26);
    let l = 24 + ext.len() + payload.len() + 8;
    let mut out = b"DHAV".to_vec();
    out.extend([kind, 0, channel, 0]);
    out.extend(seq.to_le_bytes());
    out.extend((l as u32).to_le_bytes());
    out.extend(date.to_le_bytes());
    out.extend(ms.to_le_bytes());
    out.extend([ext.len() as u8, 0]);
    out.extend_from_slice(ext);
    out.extend_from_slice(payload);
    out.extend(b"dhav");
    out.extend((l as u32).to_le_bytes());
    out
}

pub fn dhav_video(p: &VideoPacket<'_>) -> Vec<u8> {
    let ext = if p.keyframe {
        vec![
            0x80,
            0,
            (p.width / 8) as u8,
            (p.height / 8) as u8,
            0x81,
            0,
            2,
            p.fps,
        ]
    } else {
        vec![]
    };
    packet(
        if p.keyframe { 0xFD } else { 0xFC },
        p.channel,
        p.seq,
        p.utc,
        p.ms,
        &ext,
        p.annexb,
    )
}

pub fn dhav_audio(channel: u8, seq: u32, utc: i64, ms: u16, alaw: &[u8]) -> Vec<u8> {
    packet(0xF0, channel, seq, utc, ms, &[0x83, 1, 0x0E, 2], alaw)
}

pub fn dhav_aux(channel: u8, seq: u32, utc: i64, ms: u16, payload: &[u8]) -> Vec<u8> {
    packet(0xF1, channel, seq, utc, ms, &[], payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_6_4_vectors_hold() {
        let d = expected_password(
            &Encryption::Default,
            "admin",
            "admin54321",
            "Login to FAKE",
            "987654321",
        );
        assert_eq!(d.as_deref(), Some("EEC1CE3FAC638314E513BBF90A0B9D25"));
        let d = expected_password(
            &Encryption::Default,
            "admin",
            "admin",
            "Login to ASI1201E",
            "29757655",
        );
        assert_eq!(d.as_deref(), Some("8EF0CD0AEF844349F57C196712E351FC"));
        for (pw, want) in [
            ("admin", "6QNMIQGe"),
            ("admin54321", "04lnmDix"),
            ("123456", "nTBCS19C"),
            ("", "tlJwpbo6"),
        ] {
            assert_eq!(gen1(pw), want);
        }
        assert_eq!(
            expected_password(&Encryption::Other("X".into()), "a", "b", "c", "d"),
            None
        );
    }
}
