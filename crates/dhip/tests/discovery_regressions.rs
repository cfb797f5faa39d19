//! Regressions found by the `dhip_discovery` fuzz target.

use dhip::discovery::{parse_reply, reply};
use dhip::frame::Terminator;
use serde_json::json;

/// A framed reply whose header length bytes are `{` (0x7B: a JSON of 123 bytes, 379, ...)
/// was parsed from that byte instead of the JSON and failed.
#[test]
fn header_length_byte_that_is_a_brace() {
    let mut hit = 0;
    for pad in 0..700 {
        for term in [Terminator::None, Terminator::Newline, Terminator::Nul] {
            let info = json!({"SerialNo": "7E0ABCDEFGH", "Pad": "x".repeat(pad)});
            let framed = reply(&info, "", term);
            if framed[16..32].contains(&b'{') {
                hit += 1;
            }
            let d = parse_reply(&framed).unwrap_or_else(|e| panic!("pad {pad} {term:?}: {e}"));
            assert_eq!(d.serial.as_deref(), Some("7E0ABCDEFGH"));
            assert_eq!(d.mac.as_deref(), Some(""));
        }
    }
    assert!(hit > 0, "no length byte was 0x7B");
}

/// The fuzzer's input: an empty serial and MAC with a 1262-byte pad give a 1403-byte
/// (0x57B) JSON.
#[test]
fn fuzz_crash_4abefac1() {
    let info = json!({"SerialNo": "", "DeviceType": "IPC-HFW", "Port": 12288, "HttpPort": 80, "Pad": "x".repeat(1262)});
    let framed = reply(&info, "", Terminator::None);
    assert_eq!(framed[16], b'{');
    let d = parse_reply(&framed).unwrap();
    assert_eq!(d.serial.as_deref(), Some(""));
    assert_eq!(d.port, Some(12288));
}
