//! The byte-exact exchanges and real-device frames of the protocol notes (§1, §6.4), and
//! round trips of the encoder through the streaming decoder under arbitrary chunking.

use bytes::BytesMut;
use dhip::envelope::{Incoming, Request, Response, SessionId};
use dhip::frame::{
    Decoder, FragmentModel, Message, Reassembler, Terminator, encode, encode_fragmented,
    encode_with,
};
use dhip::header::{Header, Protocol};
use dhip::{FrameError, codes};
use proptest::prelude::*;

fn hex_bytes(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn decode_all(bytes: &[u8]) -> Vec<Message> {
    let mut d = Decoder::default();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        out.push(m);
    }
    out
}

#[test]
fn stage_one_probe_encodes_byte_exact() {
    let json = br#"{"method":"global.login","id":1,"params":{"userName":"admin","password":"","clientType":"Web3.0","loginType":"Direct"}}"#;
    let mut out = BytesMut::new();
    encode(0, 1, json, &[], &mut out);
    assert_eq!(out.len(), 151);
    assert_eq!(
        out[..32],
        hex_bytes("20000000 44484950 00000000 01000000 77000000 00000000 77000000 00000000")[..]
    );
}

#[test]
fn challenge_from_the_fake_device_decodes_with_its_session() {
    let body = br#"{"id":1,"session":195948557,"result":false,"error":{"code":268632079,"message":"login challenge!"},"params":{"realm":"Login to FAKE","random":"987654321","encryption":"Default"}}"#;
    let mut wire =
        hex_bytes("20000000 44484950 0df0ad0b 01000000 b2000000 00000000 b2000000 00000000");
    wire.extend_from_slice(body);
    assert_eq!(wire.len(), 210);
    let m = decode_all(&wire).remove(0);
    assert_eq!((m.session, m.request_id), (195_948_557, 1));
    let Incoming::Response(r) = Incoming::from_json(&m.json).unwrap() else {
        panic!("a response")
    };
    assert_eq!(r.error.as_ref().unwrap().code, codes::LOGIN_CHALLENGE);
    assert_eq!(r.session, Some(SessionId::Int(195_948_557)));
    assert!(!r.is_success());
}

#[test]
fn append_data_trailer_splits_at_the_json_length() {
    let json =
        br#"{"method":"upgrader.appendData","id":5,"params":{"length":4},"session":195948557}"#;
    let mut out = BytesMut::new();
    encode(195_948_557, 5, json, b"ABCD", &mut out);
    assert_eq!(
        out[..32],
        hex_bytes("20000000 44484950 0df0ad0b 05000000 55000000 00000000 51000000 04000000")[..]
    );
    let m = decode_all(&out).remove(0);
    assert_eq!(&m.json[..], &json[..]);
    assert_eq!(&m.data[..], b"ABCD");
    let r = Request::from_json(&m.json).unwrap();
    assert_eq!(r.method, "upgrader.appendData");
    assert_eq!(r.session, Some(SessionId::Int(195_948_557)));
}

#[test]
fn per_packet_json_fragments_join_their_data() {
    let mut wire = Vec::new();
    for (h, body) in [
        (
            "20000000 44484950 0df0ad0b 04000000 2d000000 00000000 29000000 04000000",
            &br#"{"result":true,"params":{"SID":1},"id":4}AAAA"#[..],
        ),
        (
            "20000000 44484950 0df0ad0b 04000000 0c000000 01000000 08000000 04000000",
            br#"{"id":4}BBBB"#,
        ),
        (
            "20000000 44484950 0df0ad0b 04000000 0c000000 02000000 08000000 04000000",
            br#"{"id":4}CCCC"#,
        ),
    ] {
        wire.extend(hex_bytes(h));
        wire.extend_from_slice(body);
    }
    let msgs = decode_all(&wire);
    assert_eq!(msgs.iter().map(|m| m.index).collect::<Vec<_>>(), [0, 1, 2]);
    let mut r = Reassembler::default();
    let mut done = Vec::new();
    for m in msgs {
        done.extend(r.push(m).unwrap());
    }
    assert!(done.is_empty(), "held until something else arrives");
    let whole = r.flush().unwrap();
    assert_eq!(&whole.data[..], b"AAAABBBBCCCC");
    let resp = Response::from_json(&whole.json).unwrap();
    assert_eq!(resp.params["SID"], 1);
    // The same bytes from the encoder.
    let mut out = BytesMut::new();
    encode_fragmented(
        195_948_557,
        4,
        br#"{"result":true,"params":{"SID":1},"id":4}"#,
        b"AAAABBBBCCCC",
        FragmentModel::PerPacketJson,
        3,
        &mut out,
    );
    assert_eq!(&out[..], &wire[..]);
}

#[test]
fn total_length_fragments_are_joined_into_one_message() {
    let json =
        br#"{"id":7,"result":true,"params":{"table":{"MachineName":"cam-with-a-long-name"}}}"#;
    let mut out = BytesMut::new();
    encode_fragmented(9, 7, json, &[], FragmentModel::TotalLength, 4, &mut out);
    let msgs = decode_all(&out);
    assert_eq!(msgs.len(), 1);
    assert_eq!(&msgs[0].json[..], &json[..]);
    assert_eq!(msgs[0].request_id, 7);
}

#[test]
fn real_vto_reply_with_counted_newline_and_two_pushes_in_one_read() {
    let err = b"{\"error\":{\"code\":268959743,\"message\":\"Unknown error! error code was not set in service!\"},\"id\":18,\"result\":false,\"session\":427917332}\n";
    assert_eq!(err.len(), 134);
    let push = b"{\"id\":8,\"method\":\"client.notifyEventStream\",\"params\":{\"SID\":513,\"eventList\":[{\"Action\":\"Pulse\",\"Code\":\"SIPRegisterResult\",\"Data\":{\"LocaleTime\":\"2025-02-17 23:07:07\",\"RealUTC\":1739830027,\"Success\":true,\"UTC\":1739830027.0},\"Index\":0}]},\"session\":427917332}\n";
    assert_eq!(push.len(), 255);
    let mut wire =
        hex_bytes("20000000 44484950 14808119 12000000 86000000 00000000 86000000 00000000");
    wire.extend_from_slice(err);
    // The push as the device sends it: the newline counted in both lengths.
    let mut p = BytesMut::new();
    encode_with(
        427_917_332,
        8,
        &push[..254],
        Terminator::Newline,
        &[],
        &mut p,
    );
    assert_eq!(p[16], 0xff);
    wire.extend_from_slice(&p);
    wire.extend_from_slice(&p);
    let msgs = decode_all(&wire);
    assert_eq!(msgs.len(), 3);
    let Incoming::Response(r) = Incoming::from_json(&msgs[0].json).unwrap() else {
        panic!()
    };
    assert_eq!(r.id, Some(18));
    assert_eq!(r.error.as_ref().unwrap().code, codes::UNKNOWN_ERROR);
    for m in &msgs[1..] {
        let Incoming::Notification(n) = Incoming::from_json(&m.json).unwrap() else {
            panic!("a push")
        };
        assert_eq!(n.method, "client.notifyEventStream");
        assert_eq!(n.id, Some(8));
        assert_eq!(n.params["eventList"][0]["Code"], "SIPRegisterResult");
    }
}

#[test]
fn spaced_access_controller_challenge_without_message_parses() {
    let body = br#"{ "result": false, "params": { "realm": "Login to ASI1201E", "random": "29757655", "encryption": "Default" }, "error": { "code": 268632079 }, "id": 0, "session": 29757655 }"#;
    assert_eq!(body.len(), 172);
    let mut wire =
        hex_bytes("20000000 44484950 d710c601 00000000 ac000000 00000000 ac000000 00000000");
    wire.extend_from_slice(body);
    let m = decode_all(&wire).remove(0);
    assert_eq!(m.session, 29_757_655);
    let r = Response::from_json(&m.json).unwrap();
    assert_eq!(r.error.unwrap().message, None);
}

#[test]
fn other_protocols_are_named_in_the_error() {
    let mut d = Decoder::default();
    d.push(&[0xa0, 0x01, 0x00, 0x60, 0, 0, 0, 0, 0]);
    match d.next_message() {
        Err(FrameError::BadPrefix { protocol, .. }) => assert_eq!(protocol, Protocol::Dvrip),
        other => panic!("{other:?}"),
    }
    assert!(d.next_message().is_err(), "stays failed");
    let mut d = Decoder::default();
    d.push(b"HTTP/1.1 400 Bad Request\r\n");
    let e = d.next_message().unwrap_err();
    assert!(e.to_string().contains("HTTP"), "{e}");
    // A bad prefix is caught from the first bytes, before a whole header arrives.
    let mut d = Decoder::default();
    d.push(b"PIHD");
    assert!(d.next_message().is_err());
}

#[test]
fn a_length_beyond_the_limit_is_an_error_not_an_allocation() {
    let mut d = Decoder::new(1024);
    let h = Header {
        package_length: u32::MAX,
        message_length: u32::MAX,
        ..Header::default()
    };
    d.push(&h.to_bytes());
    assert!(matches!(d.next_message(), Err(FrameError::TooLarge { .. })));
    let mut d = Decoder::new(1024);
    let h = Header {
        package_length: 10,
        message_length: 1 << 30,
        ..Header::default()
    };
    d.push(&h.to_bytes());
    d.push(&[b' '; 10]);
    assert!(matches!(d.next_message(), Err(FrameError::TooLarge { .. })));
}

proptest! {
    #[test]
    fn encoded_messages_survive_any_chunking(
        msgs in prop::collection::vec(
            (any::<u32>(), any::<u32>(), "[ -~]{0,300}", prop::collection::vec(any::<u8>(), 0..300), 0u8..3),
            1..8,
        ),
        cuts in prop::collection::vec(1usize..97, 1..40),
    ) {
        let mut wire = BytesMut::new();
        let mut want = Vec::new();
        for (session, id, json, data, term) in &msgs {
            // JSON text never ends in whitespace here (trailing whitespace is trimmed).
            let json = format!("{{\"t\":{}}}", serde_json::Value::from(json.clone()));
            let term = [Terminator::None, Terminator::Newline, Terminator::Nul][*term as usize];
            encode_with(*session, *id, json.as_bytes(), term, data, &mut wire);
            want.push((*session, *id, json, data.clone()));
        }
        let mut d = Decoder::default();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < wire.len() {
            let n = cuts[i % cuts.len()].min(wire.len() - pos);
            d.push(&wire[pos..pos + n]);
            pos += n;
            i += 1;
            while let Some(m) = d.next_message().unwrap() {
                got.push((m.session, m.request_id, String::from_utf8(m.json.to_vec()).unwrap(), m.data.to_vec()));
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn requests_round_trip_through_json(
        method in "[a-zA-Z.]{1,30}", id in any::<u32>(), session in prop::option::of(any::<u32>()),
        object in prop::option::of(any::<u32>()), n in any::<i64>(), s in ".{0,20}",
    ) {
        let mut r = Request::new(method, serde_json::json!({"n": n, "s": s}), u64::from(id));
        r.session = session.map(|s| SessionId::Int(u64::from(s)));
        r.object = object.map(u64::from);
        let back = Request::from_json(&r.to_json()).unwrap();
        prop_assert_eq!(back, r);
    }
}
