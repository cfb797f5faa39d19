//! Dahua DHIP and DHAV: DHIP messages from a TCP byte stream (or one per UDP discovery
//! datagram), and DHAV packets from a `.dav` file or an RPC_Loadfile body. Parsing is the
//! `dhip` crate's; this module only shapes the JSON.

use bytes::Bytes;
use dhip::dhav::{Demuxer, Packet, PacketType, VideoCodec};
use dhip::envelope::{Incoming, Request, SessionId};
use dhip::frame::{Decoder, Message};
use dhip::header::PREFIX;
use serde_json::Value;

use super::{DissectError, Fault, Obj};

fn session_node(s: &Option<SessionId>) -> Value {
    match s {
        Some(SessionId::Int(n)) => Value::from(*n),
        Some(SessionId::Str(s)) => Value::from(s.clone()),
        None => Value::Null,
    }
}

/// The JSON object of one DHIP message.
pub(crate) fn message_obj(m: &Message) -> Result<Obj, Fault> {
    let json: Value = serde_json::from_slice(&m.json).map_err(|e| {
        Fault::new(
            0,
            format!(
                "invalid JSON in DHIP message {} ({e}): {}",
                m.request_id,
                String::from_utf8_lossy(&m.json[..m.json.len().min(120)])
            ),
        )
    })?;
    let incoming = Incoming::from_json(&m.json).map_err(|e| Fault::new(0, e.to_string()))?;
    let is_request = json.get("method").is_some() && json.get("result").is_none();
    let mut o = match (&incoming, is_request) {
        (Incoming::Notification(n), true) if n.method.starts_with("client.notify") => Obj::new()
            .with("type", "dhip-push")
            .with("method", n.method.clone()),
        (Incoming::Notification(_), _) => {
            let r = Request::from_json(&m.json).map_err(|e| Fault::new(0, e.to_string()))?;
            let mut o = Obj::new()
                .with("type", "dhip-request")
                .with("method", r.method.clone());
            if let Some(obj) = r.object {
                o.set("object", obj);
            }
            o
        }
        (Incoming::Response(r), _) => {
            let mut o = Obj::new()
                .with("type", "dhip-response")
                .with("result", r.result.clone());
            if let Some(e) = &r.error {
                o.set(
                    "error",
                    Obj::new()
                        .with("code", e.code)
                        .with_opt("message", e.message.clone())
                        .with("meaning", dhip::codes::describe(e.code)),
                );
            }
            o
        }
    };
    o.set("session", m.session);
    o.set("id", m.request_id);
    o.set("index", m.index);
    if let Incoming::Response(r) = &incoming {
        o.set("json_session", session_node(&r.session));
    }
    let h = &m.header;
    o.set(
        "header",
        Obj::new()
            .with("package_length", h.package_length)
            .with("package_index", h.package_index)
            .with("message_length", h.message_length)
            .with("data_length", h.data_length),
    );
    o.set("json", json);
    o.set("data_len", m.data.len());
    Ok(o)
}

/// A stream of DHIP bytes being cut into messages (one TCP direction, or `--hex`).
#[derive(Debug, Default)]
pub(crate) struct DhipStream {
    dec: Decoder,
    /// Bytes pushed so far (offsets in errors count from the stream's start).
    offset: usize,
}

impl DhipStream {
    /// Adds bytes.
    pub(crate) fn push(&mut self, b: &[u8]) {
        self.dec.push(b);
        self.offset += b.len();
    }

    /// The next message as JSON; `Ok(None)` when more bytes are needed.
    pub(crate) fn next(&mut self) -> Result<Option<Obj>, Fault> {
        let start = self.offset - self.dec.buffered();
        match self.dec.next_message() {
            Ok(Some(m)) => Ok(Some(
                message_obj(&m).map_err(|f| Fault::new(start, f.message))?,
            )),
            Ok(None) => Ok(None),
            Err(e) => Err(Fault::new(start, e.to_string())),
        }
    }

    /// Bytes left undecoded.
    pub(crate) fn pending(&self) -> usize {
        self.dec.buffered()
    }
}

/// Every DHIP message of `bytes` (a TCP stream's payload).
pub(crate) fn dissect_stream(
    bytes: &[u8],
    emit: &mut dyn FnMut(Obj) -> Result<(), DissectError>,
) -> Result<(), DissectError> {
    let mut s = DhipStream::default();
    s.push(bytes);
    while let Some(o) = s
        .next()
        .map_err(|f| DissectError::malformed("DHIP", bytes, f.offset, f.message))?
    {
        emit(o)?;
    }
    if s.pending() > 0 {
        let at = bytes.len() - s.pending();
        return Err(DissectError::malformed(
            "DHIP",
            bytes,
            at,
            format!(
                "the input ends inside a message ({} bytes left)",
                s.pending()
            ),
        ));
    }
    Ok(())
}

/// One UDP datagram on the discovery port: a DHIP-framed probe or reply, or a bare JSON reply.
pub(crate) fn dissect_datagram(data: &[u8]) -> Result<Obj, Fault> {
    if data.starts_with(&PREFIX) {
        let mut d = Decoder::default();
        d.push(data);
        return match d.next_message() {
            Ok(Some(m)) => {
                let mut o = message_obj(&m)?;
                if let Ok(info) = dhip::discovery::parse_reply(data) {
                    o.set("device", device_obj(&info));
                }
                Ok(o)
            }
            Ok(None) => Err(Fault::new(
                data.len(),
                "the datagram ends inside the DHIP message",
            )),
            Err(e) => Err(Fault::new(0, e.to_string())),
        };
    }
    let info = dhip::discovery::parse_reply(data).map_err(|e| Fault::new(0, e.to_string()))?;
    Ok(Obj::new()
        .with("type", "dhip-discovery-reply")
        .with("device", device_obj(&info)))
}

fn device_obj(d: &dhip::discovery::DeviceInfo) -> Obj {
    Obj::new()
        .with_opt("serial", d.serial.clone())
        .with_opt("type", d.device_type.clone())
        .with_opt("class", d.device_class.clone())
        .with_opt("ip", d.ipv4.clone())
        .with_opt("port", d.port)
        .with_opt("http_port", d.http_port)
        .with_opt("mac", d.mac.clone())
}

/// Whether a datagram could be DHIP (discovery).
pub(crate) fn looks_like(data: &[u8]) -> bool {
    data.starts_with(&PREFIX) || data.contains(&b'{')
}

fn kind_name(k: PacketType) -> &'static str {
    match k {
        PacketType::VideoKey => "video-key",
        PacketType::VideoP => "video-p",
        PacketType::VideoB => "video-b",
        PacketType::Jpeg => "jpeg",
        PacketType::Audio => "audio",
        PacketType::Aux => "aux",
        PacketType::OldMpeg4 => "old-mpeg4",
        PacketType::Other(_) => "other",
    }
}

/// The JSON object of one DHAV packet.
pub(crate) fn dhav_obj(p: &Packet) -> Obj {
    let d = p.date;
    let mut o = Obj::new()
        .with("type", "dhav")
        .with("kind", kind_name(p.kind))
        .with("type_byte", format!("0x{:02x}", p.kind.to_byte()))
        .with("channel", p.channel)
        .with("frame_number", p.frame_number)
        .with(
            "date",
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                d.year, d.month, d.day, d.hour, d.minute, d.second
            ),
        )
        .with("ms", p.ms)
        .with("pts_ms", p.pts_ms)
        .with("length", p.payload.len() + 32)
        .with("payload_len", p.payload.len());
    if let Some(v) = p.video {
        let mut vo = Obj::new();
        if let Some(c) = v.codec {
            vo.set("codec", c.name());
        }
        vo.set("width", v.width);
        vo.set("height", v.height);
        vo.set("fps", v.fps);
        o.set("video", vo);
        let h265 = v.codec == Some(VideoCodec::H265);
        let types: Vec<super::Node> = media::codec::nal::annexb_units(&p.payload)
            .iter()
            .filter_map(|n| n.first())
            .map(|b| {
                let t = if h265 { (b >> 1) & 0x3f } else { b & 0x1f };
                super::Node::from(t)
            })
            .collect();
        o.set("nal_types", types);
    }
    if let Some(a) = p.audio {
        o.set(
            "audio",
            Obj::new()
                .with("codec", a.codec.name())
                .with("channels", a.channels)
                .with("rate", a.rate),
        );
    }
    o.set(
        "payload_preview",
        hex::encode(&p.payload[..p.payload.len().min(16)]),
    );
    o
}

/// Every DHAV packet of `bytes`, then a resync summary if bytes were skipped.
pub(crate) fn dissect_dhav(
    bytes: Bytes,
    emit: &mut dyn FnMut(Obj) -> Result<(), DissectError>,
) -> Result<(), DissectError> {
    let mut all = Demuxer::demux_all(bytes);
    for p in all.by_ref() {
        emit(dhav_obj(&p))?;
    }
    let st = all.stats();
    if st.skipped_bytes > 0 {
        emit(
            Obj::new()
                .with("type", "dhav-resync")
                .with("skipped_bytes", st.skipped_bytes)
                .with("resyncs", st.resyncs),
        )?;
    }
    Ok(())
}

/// A DHAV byte stream from a capture, cut into packets as it arrives.
#[derive(Debug, Default)]
pub(crate) struct DhavStream {
    demux: Demuxer,
    started: bool,
}

impl DhavStream {
    /// Adds bytes (the stream starts at the first `DHAV`, e.g. after an HTTP response head).
    pub(crate) fn push(&mut self, b: &[u8]) {
        if !self.started {
            if let Some(p) = b.windows(4).position(|w| w == dhip::dhav::MAGIC) {
                self.started = true;
                self.demux.push(&b[p..]);
            }
            return;
        }
        self.demux.push(b);
    }

    /// The next packet's JSON.
    pub(crate) fn next(&mut self) -> Option<Obj> {
        self.demux.next_packet().map(|p| dhav_obj(&p))
    }
}
