//! SDP session descriptions (RFC 8866, parsed by sdp-types) as JSON: the session, and each
//! media with its formats, `rtpmap`s and `fmtp`s broken out and the codec that camgate maps
//! each payload type to (`media::sdp::codec_from_rtpmap`), or why it cannot.

use media::{Codec, TrackInfo};
use sdp_types::{Attribute, Bandwidth, Connection, ParserError, Session};

use super::{Fault, Obj};

/// `{"type":"sdp",...}` for the SDP text `data`.
pub(crate) fn dissect(data: &[u8]) -> Result<Obj, Fault> {
    // sdp-types 0.1.8 asserts on some malformed input: a hostile capture must not panic us.
    let parsed = std::panic::catch_unwind(|| Session::parse(data)).map_err(|_| {
        Fault::new(
            0,
            "malformed SDP: the parser rejected its structure".to_string(),
        )
    })?;
    let s = parsed.map_err(|e| Fault::new(line_offset(data, error_line(&e)), e.to_string()))?;
    let mut o = Obj::new().with("type", "sdp").with(
        "origin",
        Obj::new()
            .with_opt("username", s.origin.username.clone())
            .with("session_id", s.origin.sess_id.clone())
            .with("session_version", s.origin.sess_version)
            .with("nettype", s.origin.nettype.clone())
            .with("addrtype", s.origin.addrtype.clone())
            .with("address", s.origin.unicast_address.clone()),
    );
    o.set("session_name", s.session_name.clone());
    if let Some(i) = &s.session_description {
        o.set("session_info", i.as_str());
    }
    if let Some(u) = &s.uri {
        o.set("uri", u.as_str());
    }
    if let Some(c) = &s.connection {
        o.set("connection", connection(c));
    }
    if !s.bandwidths.is_empty() {
        o.set("bandwidths", bandwidths(&s.bandwidths));
    }
    if !s.times.is_empty() {
        let times: Vec<String> = s
            .times
            .iter()
            .map(|t| format!("{} {}", t.start_time, t.stop_time))
            .collect();
        o.set("times", times);
    }
    if !s.attributes.is_empty() {
        o.set("attributes", attributes(&s.attributes));
    }
    let medias: Vec<Obj> = s.medias.iter().map(media).collect();
    o.set("media", medias);
    Ok(o)
}

fn media(m: &sdp_types::Media) -> Obj {
    let formats: Vec<String> = m.fmt.split_whitespace().map(str::to_string).collect();
    let mut o = Obj::new()
        .with("media", m.media.as_str())
        .with("port", m.port)
        .with_opt("num_ports", m.num_ports)
        .with("proto", m.proto.as_str())
        .with("formats", formats);
    if let Some(t) = &m.media_title {
        o.set("title", t.as_str());
    }
    if let Some(c) = m.connections.first() {
        o.set("connection", connection(c));
    }
    if !m.bandwidths.is_empty() {
        o.set("bandwidths", bandwidths(&m.bandwidths));
    }
    let value = |name: &str| {
        m.attributes
            .iter()
            .find(|a| a.attribute == name)
            .and_then(|a| a.value.clone())
    };
    if let Some(c) = value("control") {
        o.set("control", c);
    }
    let mut rtpmaps = Vec::new();
    for a in m.attributes.iter().filter(|a| a.attribute == "rtpmap") {
        let v = a.value.as_deref().unwrap_or("");
        let (pt, enc) = v.split_once(' ').unwrap_or((v, ""));
        let mut parts = enc.trim().split('/');
        let encoding = parts.next().unwrap_or("");
        let clock = parts.next().and_then(|c| c.parse::<u32>().ok());
        let channels = parts.next().and_then(|c| c.parse::<u32>().ok());
        rtpmaps.push(
            Obj::new()
                .with_opt("payload_type", pt.trim().parse::<u32>().ok())
                .with("encoding", encoding)
                .with_opt("clock_rate", clock)
                .with_opt("channels", channels),
        );
    }
    if !rtpmaps.is_empty() {
        o.set("rtpmap", rtpmaps);
    }
    let mut fmtps = Vec::new();
    for a in m.attributes.iter().filter(|a| a.attribute == "fmtp") {
        let v = a.value.as_deref().unwrap_or("");
        let (pt, params) = v.split_once(' ').unwrap_or((v, ""));
        let mut p = Obj::new();
        for item in params.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some((k, v)) => p.set(k.trim(), v.trim()),
                None => p.set(item, true),
            }
        }
        fmtps.push(
            Obj::new()
                .with_opt("payload_type", pt.trim().parse::<u32>().ok())
                .with("params", p),
        );
    }
    if !fmtps.is_empty() {
        o.set("fmtp", fmtps);
    }
    let codecs: Vec<Obj> = m
        .fmt
        .split_whitespace()
        .filter_map(|f| f.parse::<u8>().ok())
        .map(|pt| codec(pt, &m.attributes))
        .collect();
    if !codecs.is_empty() {
        o.set("codecs", codecs);
    }
    let others: Vec<Attribute> = m
        .attributes
        .iter()
        .filter(|a| a.attribute != "rtpmap" && a.attribute != "fmtp")
        .cloned()
        .collect();
    if !others.is_empty() {
        o.set("attributes", attributes(&others));
    }
    o
}

/// What camgate makes of payload type `pt` (via `media::sdp::codec_from_rtpmap`): the codec
/// and its parameters, or why it cannot use it.
fn codec(pt: u8, attrs: &[Attribute]) -> Obj {
    let value_for = |name: &str| {
        attrs.iter().filter(|a| a.attribute == name).find_map(|a| {
            let v = a.value.as_deref()?;
            let (p, rest) = v.split_once(' ').unwrap_or((v, ""));
            (p.trim().parse::<u8>().ok() == Some(pt)).then_some(rest.trim())
        })
    };
    let o = Obj::new().with("payload_type", pt);
    match media::sdp::codec_from_rtpmap(pt, value_for("rtpmap"), value_for("fmtp")) {
        Err(e) => o.with("error", e.to_string()),
        Ok(c) => {
            let o = o.with("codec", TrackInfo::new(c.clone()).codec_name());
            match c {
                Codec::H264 { sps, pps } => o
                    .with("sps", hex::encode(sps))
                    .with("pps", hex::encode(pps)),
                Codec::H265 { vps, sps, pps } => o
                    .with("vps", hex::encode(vps))
                    .with("sps", hex::encode(sps))
                    .with("pps", hex::encode(pps)),
                Codec::Jpeg => o,
                Codec::G711 { rate, channels, .. } => {
                    o.with("rate", rate).with("channels", channels)
                }
                Codec::Aac {
                    config,
                    rate,
                    channels,
                } => o
                    .with("config", hex::encode(config))
                    .with("rate", rate)
                    .with("channels", channels),
            }
        }
    }
}

fn connection(c: &Connection) -> String {
    format!("{} {} {}", c.nettype, c.addrtype, c.connection_address)
}

fn bandwidths(b: &[Bandwidth]) -> Vec<String> {
    b.iter()
        .map(|b| format!("{}:{}", b.bwtype, b.bandwidth))
        .collect()
}

fn attributes(attrs: &[Attribute]) -> Vec<Obj> {
    attrs
        .iter()
        .map(|a| {
            Obj::new()
                .with("name", a.attribute.as_str())
                .with_opt("value", a.value.clone())
        })
        .collect()
}

/// The 1-based line an SDP error names, if any.
#[allow(deprecated)]
fn error_line(e: &ParserError) -> Option<usize> {
    use ParserError::*;
    match *e {
        UnexpectedLine(n, _)
        | InvalidLineFormat(n, _)
        | InvalidFieldEncoding(n, _)
        | InvalidFieldFormat(n, _)
        | MissingField(n, _)
        | FieldTrailingData(n, _)
        | InvalidVersion(n, _)
        | MultipleVersions(n)
        | MultipleOrigins(n)
        | MultipleSessionNames(n)
        | MultipleSessionDescription(n)
        | MultipleUris(n)
        | MultipleConnections(n)
        | MultipleTimeZones(n)
        | MultipleMediaTitles(n)
        | MultipleKeys(n) => Some(n),
        NoVersion | NoOrigin | NoSessionName => None,
    }
}

/// The byte offset where 1-based `line` starts (0 when unknown).
fn line_offset(data: &[u8], line: Option<usize>) -> usize {
    match line {
        Some(n) if n > 1 => data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(n - 2)
            .map_or(0, |(i, _)| i + 1),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=Media Server\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
        a=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
        a=fmtp:96 packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0LgH5ZSAoAt,aM4xsg==\r\n\
        a=control:trackID=0\r\nm=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000/1\r\na=control:trackID=1\r\n";

    #[test]
    fn media_with_rtpmap_and_fmtp() {
        let v = dissect(SDP.as_bytes()).unwrap().to_value();
        assert_eq!(v["type"], "sdp");
        assert_eq!(v["origin"]["address"], "10.0.0.5");
        assert_eq!(v["session_name"], "Media Server");
        let video = &v["media"][0];
        assert_eq!(video["media"], "video");
        assert_eq!(video["formats"][0], "96");
        assert_eq!(video["control"], "trackID=0");
        assert_eq!(video["rtpmap"][0]["encoding"], "H264");
        assert_eq!(video["rtpmap"][0]["clock_rate"], 90000);
        assert_eq!(video["fmtp"][0]["params"]["packetization-mode"], "1");
        assert_eq!(
            video["fmtp"][0]["params"]["sprop-parameter-sets"],
            "Z0LgH5ZSAoAt,aM4xsg=="
        );
        assert_eq!(v["media"][1]["rtpmap"][0]["channels"], 1);
        assert_eq!(video["codecs"][0]["codec"], "h264");
        assert_eq!(video["codecs"][0]["sps"], "6742e01f965202802d");
        assert_eq!(video["codecs"][0]["pps"], "68ce31b2");
        assert_eq!(v["media"][1]["codecs"][0]["codec"], "pcma");
        assert_eq!(v["media"][1]["codecs"][0]["rate"], 8000);
    }

    #[test]
    fn bad_sdp_names_the_line() {
        let data = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=video x RTP/AVP 96\r\n";
        let f = dissect(data).unwrap_err();
        assert!(f.message.contains("line 3"), "{f:?}");
        assert_eq!(f.offset, data.iter().position(|&b| b == b'm').unwrap());
        assert!(dissect(b"hello").is_err());
    }
}
