//! Fuzzes DHDiscover: `parse_reply` and `is_probe` never panic on arbitrary datagrams; a
//! reply written by `reply` for a device info built from the input (serial, MAC, padding
//! that moves the header's length bytes around, any terminator) parses back, framed and
//! bare, to the same serial, MAC and ports; `probe` is a probe and a reply is not.

#![no_main]

use dhip::discovery::{Dedup, is_probe, parse_reply, probe, reply};
use dhip::frame::Terminator;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = parse_reply(data) {
        let _ = d.key();
        let mut dd = Dedup::default();
        assert!(dd.first(&d, "192.0.2.1:37810"));
        assert!(!dd.first(&d, "192.0.2.1:37810"));
    }
    let _ = is_probe(data);

    // Generated info: [term][serial len][mac len][pad len: 2 bytes][port: 2 bytes] then text.
    let [t, sl, ml, p0, p1, q0, q1, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut chars = text.chars();
    let serial: String = chars.by_ref().take(usize::from(*sl)).collect();
    let mac: String = chars.take(usize::from(*ml)).collect();
    let pad = "x".repeat(usize::from(u16::from_le_bytes([*p0, *p1])) % 1024);
    let port = u16::from_le_bytes([*q0, *q1]);
    let term = [Terminator::None, Terminator::Newline, Terminator::Nul][usize::from(*t % 3)];
    let info = json!({
        "SerialNo": serial,
        "DeviceType": "IPC-HFW",
        "Port": port,
        "HttpPort": 80,
        "Pad": pad,
    });
    let framed = reply(&info, &mac, term);
    assert!(!is_probe(&framed));
    for bytes in [&framed[..], &framed[32..]] {
        let d = parse_reply(bytes).unwrap_or_else(|e| panic!("reply does not parse: {e}"));
        assert_eq!(d.serial.as_deref(), Some(serial.as_str()));
        assert_eq!(d.mac.as_deref(), Some(mac.as_str()));
        assert_eq!(d.port, Some(port));
        assert_eq!(d.http_port, Some(80));
        assert_eq!(d.raw, info);
    }
    assert!(is_probe(&probe(u32::from(*t))));
});
