//! DHDiscover: the UDP probe (a DHIP-framed `DHDiscover.search`, port 37810) and the
//! `client.notifyDevInfo` replies. Replies may lack the header, vary in header length, end in
//! a NUL, and arrive several times (one per interface): the parser searches for the JSON and
//! [`Dedup`] keeps one per device.

use std::collections::HashSet;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use crate::frame::{Decoder, Terminator, encode, encode_with, trim_json};
use crate::header::{HEADER_LEN, PREFIX};
use crate::{EnvelopeError, envelope};

/// The UDP port devices listen on.
pub const PORT: u16 = 37810;
/// The multicast group devices join (camgate sends only where its configuration says).
pub const MULTICAST_GROUP: [u8; 4] = [239, 255, 255, 251];

/// The probe datagram: a DHIP header and `{"method":"DHDiscover.search",...}`.
pub fn probe(request_id: u32) -> Bytes {
    let json = br#"{"method":"DHDiscover.search","params":{"mac":"","uni":1}}"#;
    let mut out = BytesMut::new();
    encode(0, request_id, json, &[], &mut out);
    out.freeze()
}

/// True if `datagram` is a well-framed DHIP `DHDiscover.search` (bare JSON is not: devices
/// ignore it).
pub fn is_probe(datagram: &[u8]) -> bool {
    let mut d = Decoder::default();
    d.push(datagram);
    match d.next_message() {
        Ok(Some(m)) => {
            envelope::Request::from_json(&m.json).is_ok_and(|r| r.method == "DHDiscover.search")
        }
        _ => false,
    }
}

/// A reply datagram carrying `device_info` for a device with `mac`.
pub fn reply(device_info: &Value, mac: &str, term: Terminator) -> Bytes {
    let body = json!({"mac": mac, "method": "client.notifyDevInfo", "params": {"deviceInfo": device_info}});
    let mut out = BytesMut::new();
    let text = serde_json::to_vec(&body).unwrap_or_default();
    encode_with(0, 0, &text, term, &[], &mut out);
    out.freeze()
}

/// A device as its discovery reply describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    /// `mac` of the reply.
    pub mac: Option<String>,
    /// `SerialNo`.
    pub serial: Option<String>,
    /// `DeviceType` (model).
    pub device_type: Option<String>,
    /// `DeviceClass` (IPC, NVR, VTO...).
    pub device_class: Option<String>,
    /// `Vendor`.
    pub vendor: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `MachineName`.
    pub machine_name: Option<String>,
    /// `IPv4Address.IPAddress`.
    pub ipv4: Option<String>,
    /// `HttpPort`.
    pub http_port: Option<u16>,
    /// `Port`: the TCP service port (37777, 35000 or 5000).
    pub port: Option<u16>,
    /// `VideoInputChannels`.
    pub video_inputs: Option<u64>,
    /// The whole `deviceInfo` object.
    pub raw: Value,
}

impl DeviceInfo {
    /// A key identifying the device: serial number, else MAC.
    pub fn key(&self) -> Option<&str> {
        self.serial.as_deref().or(self.mac.as_deref())
    }
}

/// Parses a reply datagram (with or without a DHIP header; trailing NUL tolerated).
pub fn parse_reply(datagram: &[u8]) -> Result<DeviceInfo, EnvelopeError> {
    // Skip a DHIP header: its length bytes may be `{` (0x7B, e.g. a 123-byte JSON).
    let body = if datagram.len() >= HEADER_LEN && datagram.starts_with(&PREFIX) {
        &datagram[HEADER_LEN..]
    } else {
        datagram
    };
    let start = body
        .iter()
        .position(|b| *b == b'{')
        .ok_or_else(|| EnvelopeError::NotAnObject {
            excerpt: envelope::excerpt(datagram),
        })?;
    let text = trim_json(&body[start..]);
    let v: Value = serde_json::from_slice(text).map_err(|e| EnvelopeError::Json {
        reason: e.to_string(),
        excerpt: envelope::excerpt(text),
    })?;
    let info = v
        .get("params")
        .and_then(|p| p.get("deviceInfo"))
        .cloned()
        .ok_or_else(|| EnvelopeError::Missing {
            field: "params.deviceInfo",
            excerpt: envelope::excerpt(text),
        })?;
    let s = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
    let n = |k: &str| info.get(k).and_then(envelope::as_u64_lenient);
    Ok(DeviceInfo {
        mac: v.get("mac").and_then(Value::as_str).map(str::to_owned),
        serial: s("SerialNo"),
        device_type: s("DeviceType"),
        device_class: s("DeviceClass"),
        vendor: s("Vendor"),
        version: s("Version"),
        machine_name: s("MachineName"),
        ipv4: info
            .get("IPv4Address")
            .and_then(|a| a.get("IPAddress"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        http_port: n("HttpPort").and_then(|p| u16::try_from(p).ok()),
        port: n("Port").and_then(|p| u16::try_from(p).ok()),
        video_inputs: n("VideoInputChannels"),
        raw: info,
    })
}

/// Keeps the first reply of each device (by serial number, else MAC, else source address).
#[derive(Debug, Default)]
pub struct Dedup {
    seen: HashSet<String>,
}

impl Dedup {
    /// True the first time a device is seen.
    pub fn first(&mut self, d: &DeviceInfo, source: &str) -> bool {
        let key = d.key().unwrap_or(source).to_string();
        self.seen.insert(key)
    }
}
