//! Dahua P2P datagrams as JSON: DH-HTTP requests and responses (with their flat XML bodies),
//! inverted STUN and PTCP frames, decoded by the `dahua-p2p` crate's own parsers.

use dahua_p2p::demux::{Kind, classify};
use dahua_p2p::dhhttp::{Message, parse_message};
use dahua_p2p::ptcp::{Body, Frame, Status};
use dahua_p2p::stun::StunMessage;
use dahua_p2p::xmlbody::XmlBody;

use super::{Fault, Obj};

/// Whether a datagram looks like the kind (used to skip other traffic in captures).
pub(crate) fn looks_like(kind: super::DissectKind, data: &[u8]) -> bool {
    let k = classify(data);
    match kind {
        super::DissectKind::DhHttp => k == Kind::Http,
        super::DissectKind::Stun => k == Kind::InvertedStun || k == Kind::PlainStun,
        super::DissectKind::Ptcp => k == Kind::Ptcp,
        _ => false,
    }
}

fn body_obj(body: &[u8]) -> Option<Obj> {
    if body.is_empty() {
        return None;
    }
    match XmlBody::parse(body) {
        Ok(x) => {
            let mut o = Obj::new();
            for (k, v) in x.iter() {
                o.set(k, v);
            }
            Some(o)
        }
        Err(_) => Some(Obj::new().with("text", String::from_utf8_lossy(body).into_owned())),
    }
}

/// One DH-HTTP datagram.
pub(crate) fn dissect_dh_http(data: &[u8]) -> Result<Obj, Fault> {
    let msg = parse_message(data).map_err(|e| Fault::new(e.offset, e.kind.to_string()))?;
    let (mut o, headers, body) = match &msg {
        Message::Request(r) => (
            Obj::new()
                .with("type", "dh-http-request")
                .with("method", r.method.as_str())
                .with("path", r.path.as_str()),
            &r.headers,
            &r.body,
        ),
        Message::Response(r) => (
            Obj::new()
                .with("type", "dh-http-response")
                .with("code", r.code)
                .with("reason", r.reason.as_str()),
            &r.headers,
            &r.body,
        ),
    };
    let mut h = Obj::new();
    for (k, v) in headers.iter() {
        h.set(k, v);
    }
    o.set("headers", h);
    if let Some(b) = body_obj(body) {
        o.set("body", b);
    }
    Ok(o)
}

/// One STUN datagram (inverted as Dahua sends it, or plain).
pub(crate) fn dissect_stun(data: &[u8]) -> Result<Obj, Fault> {
    let (encoding, msg) = match classify(data) {
        Kind::PlainStun => (
            "plain",
            StunMessage::parse_plain(data).map_err(|e| Fault::new(0, e.why))?,
        ),
        _ => (
            "inverted",
            StunMessage::parse_inverted(data).map_err(|e| Fault::new(0, e.why))?,
        ),
    };
    let kind = match msg.msg_type {
        dahua_p2p::stun::BINDING_REQUEST => "binding-request",
        dahua_p2p::stun::BINDING_SUCCESS => "binding-success",
        _ => "other",
    };
    Ok(Obj::new()
        .with("type", "stun")
        .with("encoding", encoding)
        .with("message", kind)
        .with("message_type", msg.msg_type)
        .with("length", msg.length)
        .with("cookie", hex::encode(msg.cookie))
        .with("transaction_id", hex::encode(msg.txid))
        .with_opt("aid", msg.aid().map(|a| a.to_string()))
        .with(
            "aid_role",
            if msg.is_controlling() {
                "controlling"
            } else {
                "controlled"
            },
        )
        .with_opt("address", msg.address().map(|a| a.to_string())))
}

/// One PTCP frame.
pub(crate) fn dissect_ptcp(data: &[u8]) -> Result<Obj, Fault> {
    let f = Frame::parse(data).map_err(|e| Fault::new(e.offset, e.kind.to_string()))?;
    let h = &f.header;
    let o = Obj::new()
        .with("type", "ptcp")
        .with("sent", h.sent)
        .with("recv", h.recv)
        .with("pid", format!("{:#010x}", h.pid))
        .with("lmid", h.lmid)
        .with("rmid", h.rmid);
    let realm = |r: u32| format!("{r:#010x}");
    let body = match &f.body {
        Body::Empty => Obj::new().with("kind", "ack"),
        Body::Syn => Obj::new().with("kind", "syn"),
        Body::Data { realm: r, payload } => Obj::new()
            .with("kind", "data")
            .with("realm", realm(*r))
            .with("length", payload.len())
            .with("payload", preview(payload)),
        Body::Bind { realm: r, port, ip } => Obj::new()
            .with("kind", "bind")
            .with("realm", realm(*r))
            .with("target", format!("{ip}:{port}")),
        Body::Status {
            realm: r,
            status,
            nul,
        } => Obj::new()
            .with("kind", "status")
            .with("realm", realm(*r))
            .with(
                "status",
                match status {
                    Status::Conn => "CONN",
                    Status::Disc => "DISC",
                },
            )
            .with("trailing_nul", *nul),
        Body::Heartbeat => Obj::new().with("kind", "heartbeat"),
        Body::SignRequest => Obj::new().with("kind", "sign-request"),
        Body::Sign(s) => Obj::new().with("kind", "sign").with("sign", hex::encode(s)),
        Body::Auth(s) => Obj::new().with("kind", "auth").with("sign", hex::encode(s)),
        Body::AuthResponse(b) => Obj::new()
            .with("kind", "auth-response")
            .with("bytes", hex::encode(b)),
        Body::AuthFinal => Obj::new().with("kind", "auth-final"),
        Body::Other(b) => Obj::new()
            .with("kind", "other")
            .with("bytes", hex::encode(b)),
    };
    Ok(o.with("body", body))
}

/// Printable payloads (RTSP through a realm) as text, others as hex, cut at 64 bytes.
fn preview(p: &[u8]) -> String {
    let cut = &p[..p.len().min(64)];
    if cut
        .iter()
        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\n')
    {
        String::from_utf8_lossy(cut).into_owned()
    } else {
        hex::encode(cut)
    }
}
