//! RTSP URL templates of Dahua and OEM firmware, with percent-encoded credentials. RPC
//! channels are 0-based; RTSP channels are 1-based on Dahua firmware, so `channel` here is
//! the RPC one and the URL gets `channel + 1` (the `{channel0}` placeholder keeps it 0-based).

use std::fmt;

/// Where the stream lives on the device's RTSP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// `/cam/realmonitor?channel={ch}&subtype={st}` (Dahua default).
    Dahua,
    /// The same with `&unicast=true&proto=Onvif`.
    Onvif,
    /// `/H264?ch={ch}&subtype={st}` (Zenointel/Rostelecom OEM firmware).
    Zn,
    /// No path at all.
    Bare,
    /// A path with `{channel}` (1-based), `{channel0}` (0-based) and `{subtype}` placeholders.
    Custom(String),
}

impl Template {
    /// From a configuration string: `dahua`, `onvif`, `zn`, `bare`, or a path starting with
    /// `/`.
    pub fn parse(s: &str) -> Result<Template, String> {
        match s.trim() {
            "dahua" | "default" | "" => Ok(Template::Dahua),
            "onvif" => Ok(Template::Onvif),
            "zn" => Ok(Template::Zn),
            "bare" => Ok(Template::Bare),
            p if p.starts_with('/') => Ok(Template::Custom(p.to_string())),
            other => Err(format!(
                "unknown RTSP template {other:?} (expected dahua, onvif, zn, bare or a path starting with /)"
            )),
        }
    }

    /// The path for RPC channel `channel` (0-based) and `subtype` (0 main, 1 sub, 2 third).
    pub fn path(&self, channel: u32, subtype: u32) -> String {
        let ch = channel + 1;
        match self {
            Template::Dahua => format!("/cam/realmonitor?channel={ch}&subtype={subtype}"),
            Template::Onvif => {
                format!("/cam/realmonitor?channel={ch}&subtype={subtype}&unicast=true&proto=Onvif")
            }
            Template::Zn => format!("/H264?ch={ch}&subtype={subtype}"),
            Template::Bare => String::new(),
            Template::Custom(p) => p
                .replace("{channel0}", &channel.to_string())
                .replace("{channel}", &ch.to_string())
                .replace("{subtype}", &subtype.to_string()),
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Template::Dahua => f.write_str("dahua"),
            Template::Onvif => f.write_str("onvif"),
            Template::Zn => f.write_str("zn"),
            Template::Bare => f.write_str("bare"),
            Template::Custom(p) => f.write_str(p),
        }
    }
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 - . _ ~` (nothing else is safe in a
/// URL's user or password).
pub fn encode_credential(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `rtsp://user:pass@host:port<path>` (no credentials when `user` is empty).
pub fn url(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    template: &Template,
    channel: u32,
    subtype: u32,
) -> String {
    let auth = if user.is_empty() {
        String::new()
    } else {
        format!(
            "{}:{}@",
            encode_credential(user),
            encode_credential(password)
        )
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!(
        "rtsp://{auth}{host}:{port}{}",
        template.path(channel, subtype)
    )
}
