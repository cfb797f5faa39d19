//! PTCP frame codec: the byte vectors of the protocol notes (§7 synthetic frames, the mcw0
//! capture, the §4 DATA example), the lenient readings the notes ask for, errors with
//! context, and round-trip properties for every body kind.

use std::net::Ipv4Addr;

use bytes::Bytes;
use dahua_p2p::ptcp::{Body, Frame, FrameErrorKind, Header, Status};
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn body(s: &str) -> Body {
    Body::parse(&h(s)).unwrap()
}

/// Asserts that `bytes` parses to `frame` and that `frame` serializes back to `bytes`.
fn assert_exact(bytes: &[u8], frame: &Frame) {
    assert_eq!(&Frame::parse(bytes).unwrap(), frame);
    assert_eq!(frame.to_bytes(), bytes);
}

#[test]
fn first_syn_vector() {
    let bytes = h("50544350 00000000 00000000 0002ffff 00000000 00000000 00030100");
    let frame = Frame {
        header: Header {
            sent: 0,
            recv: 0,
            pid: 0x0002_FFFF,
            lmid: 0,
            rmid: 0,
        },
        body: Body::Syn,
    };
    assert_exact(&bytes, &frame);
}

#[test]
fn sign_request_after_syn_vector() {
    let bytes =
        h("50544350 00000004 00000004 0000ffff 00000001 00000000 17000000 00000000 00000000");
    let frame = Frame {
        header: Header {
            sent: 4,
            recv: 4,
            pid: 0xFFFF,
            lmid: 1,
            rmid: 0,
        },
        body: Body::SignRequest,
    };
    assert_exact(&bytes, &frame);
}

#[test]
fn bind_realm_12345678_port_554_vector() {
    let bytes = h("11000000 12345678 00000000 0000022a 7f000001");
    let b = Body::Bind {
        realm: 0x1234_5678,
        port: 554,
        ip: Ipv4Addr::LOCALHOST,
    };
    assert_eq!(Body::parse(&bytes).unwrap(), b);
    let mut out = Vec::new();
    b.write(&mut out);
    assert_eq!(out, bytes);
}

#[test]
fn mcw0_bind_port_37777() {
    assert_eq!(
        body("11000000 36ef034a 00000000 00009391 7f000001"),
        Body::Bind {
            realm: 0x36EF_034A,
            port: 37777,
            ip: Ipv4Addr::LOCALHOST
        }
    );
}

#[test]
fn conn_and_disc_vectors() {
    for (hexs, status) in [
        ("12000000 12345678 00000000 434f4e4e", Status::Conn),
        ("12000000 12345678 00000000 44495343", Status::Disc),
    ] {
        let bytes = h(hexs);
        let b = Body::Status {
            realm: 0x1234_5678,
            status,
            nul: false,
        };
        assert_eq!(Body::parse(&bytes).unwrap(), b);
        let mut out = Vec::new();
        b.write(&mut out);
        assert_eq!(out, bytes);
    }
}

#[test]
fn status_with_trailing_nul_is_recognised() {
    assert_eq!(
        body("12000000 12345678 00000000 434f4e4e 00"),
        Body::Status {
            realm: 0x1234_5678,
            status: Status::Conn,
            nul: true
        }
    );
}

#[test]
fn non_status_0x12_body_stays_opaque() {
    let raw = h("12000b34 00000001 00000000 abcdef");
    assert_eq!(Body::parse(&raw).unwrap(), Body::Other(Bytes::from(raw)));
    let short = h("12000b34");
    assert_eq!(
        Body::parse(&short).unwrap(),
        Body::Other(Bytes::from(short))
    );
}

#[test]
fn heartbeat_vector() {
    let bytes = h("13000000 00000000 00000000");
    assert_eq!(Body::parse(&bytes).unwrap(), Body::Heartbeat);
    let mut out = Vec::new();
    Body::Heartbeat.write(&mut out);
    assert_eq!(out, bytes);
}

#[test]
fn mcw0_capture_data_frame() {
    let bytes = h(
        "50544350 00000018 00000014 0000ffeb 0000001c 0533fe32 10000020 36ef034a \
         00000000 a0010000 00000000 c4a3af48 9956b6b4 54abaeb6 0121d671 05020001 0000a1aa",
    );
    assert_eq!(bytes.len(), 68);
    let f = Frame::parse(&bytes).unwrap();
    assert_eq!(
        f.header,
        Header {
            sent: 24,
            recv: 20,
            pid: 0xFFEB,
            lmid: 28,
            rmid: 0x0533_FE32
        }
    );
    let Body::Data { realm, payload } = &f.body else {
        panic!("not DATA: {:?}", f.body)
    };
    assert_eq!(*realm, 0x36EF_034A);
    assert_eq!(payload.len(), 32);
    assert_eq!(&payload[..4], &[0xa0, 0x01, 0x00, 0x00]);
    assert_eq!(f.to_bytes(), bytes);
}

#[test]
fn synthetic_rtsp_options_data_body() {
    let bytes = h(
        "1000002f 12345678 00000000 4f505449 4f4e5320 72747370 3a2f2f31 32372e30 \
         2e302e31 2f205254 53502f31 2e300d0a 43536571 3a20310d 0a0d0a",
    );
    let b = Body::Data {
        realm: 0x1234_5678,
        payload: Bytes::from_static(b"OPTIONS rtsp://127.0.0.1/ RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    };
    assert_eq!(Body::parse(&bytes).unwrap(), b);
    let mut out = Vec::new();
    b.write(&mut out);
    assert_eq!(out, bytes);
}

#[test]
fn data_length_reads_the_same_as_be24_or_be16() {
    // dh-fwd reads a BE16 at +2; byte 1 is then "reserved" and may be non-zero.
    let be24 = body("10000003 00000001 00000000 616263");
    let be16 = body("10ff0003 00000001 00000000 616263");
    assert_eq!(be24, be16);
    assert_eq!(
        be24,
        Body::Data {
            realm: 1,
            payload: Bytes::from_static(b"abc")
        }
    );
}

#[test]
fn data_payload_is_the_rest_when_length_is_zero() {
    assert_eq!(
        body("10000000 00000001 00000000 616263"),
        Body::Data {
            realm: 1,
            payload: Bytes::from_static(b"abc")
        }
    );
}

#[test]
fn data_shorter_length_trims_trailing_bytes() {
    assert_eq!(
        body("10000002 00000001 00000000 616263"),
        Body::Data {
            realm: 1,
            payload: Bytes::from_static(b"ab")
        }
    );
}

#[test]
fn data_longer_length_than_datagram_is_an_error() {
    let e = Body::parse(&h("10000009 00000001 00000000 616263")).unwrap_err();
    assert_eq!(
        e.kind,
        FrameErrorKind::DataLength {
            declared: 9,
            available: 3
        }
    );
}

#[test]
fn sign_is_the_bytes_after_the_sub_header() {
    assert_eq!(
        body("18000000 00000000 00000000 c0ffee"),
        Body::Sign(Bytes::from_static(&[0xc0, 0xff, 0xee]))
    );
    assert_eq!(
        body("19000000 00000000 00000000 c0ffee"),
        Body::Auth(Bytes::from_static(&[0xc0, 0xff, 0xee]))
    );
}

#[test]
fn auth_response_is_recognised_by_its_first_byte() {
    assert_eq!(body("1a00"), Body::AuthResponse(Bytes::new()));
    assert_eq!(
        body("1a000000 00000000 00000000"),
        Body::AuthResponse(Bytes::new())
    );
    assert_eq!(body("1b000000 00000000 00000000"), Body::AuthFinal);
}

#[test]
fn type_0x0a_and_unknown_types_stay_opaque() {
    assert_eq!(body("0a00"), Body::Other(Bytes::from_static(&[0x0a, 0x00])));
    assert_eq!(
        body("7f0102"),
        Body::Other(Bytes::from_static(&[0x7f, 1, 2]))
    );
    // A 0x00 body that is not exactly the SYN (the "app dialect" answer to 0x19).
    assert_eq!(
        body("00000000 00000000"),
        Body::Other(Bytes::from_static(&[0; 8]))
    );
}

#[test]
fn empty_body_is_an_ack() {
    let bytes = h("50544350 00000010 00000020 0000fffe 00000003 00000002");
    let f = Frame::parse(&bytes).unwrap();
    assert_eq!(f.body, Body::Empty);
    assert_eq!(f.to_bytes(), bytes);
}

#[test]
fn short_datagram_error_carries_hex_excerpt() {
    let e = Frame::parse(&h("5054435000")).unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::TooShort { len: 5 });
    assert_eq!(e.excerpt, "50 54 43 50 00");
    assert!(e.to_string().contains("50 54 43 50 00"), "{e}");
}

#[test]
fn bad_magic_is_an_error() {
    let e = Frame::parse(&h("48545450 00000000 00000000 0002ffff 00000000 00000000")).unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::BadMagic { found: *b"HTTP" });
    assert!(e.to_string().contains("48545450"), "{e}");
}

#[test]
fn truncated_typed_bodies_are_errors_with_offsets() {
    let mut bytes = h("50544350 00000000 00000000 0000ffff 00000000 00000000");
    bytes.extend(h("11000000 12345678"));
    let e = Frame::parse(&bytes).unwrap_err();
    assert_eq!(
        e.kind,
        FrameErrorKind::TruncatedBody {
            kind: 0x11,
            need: 20,
            have: 8
        }
    );
    assert_eq!(e.offset, 24);
    for short in ["1000", "1300", "1700", "18", "19000000", "1b"] {
        assert!(Body::parse(&h(short)).is_err(), "{short} parsed");
    }
}

#[test]
fn long_datagram_excerpt_is_cut_and_says_how_long() {
    let mut bytes = h("50544350 00000000 00000000 0000ffff 00000000 00000000 10000100");
    bytes.extend([0; 200]);
    let e = Frame::parse(&bytes).unwrap_err();
    assert!(e.excerpt.ends_with("(228 bytes)"), "{}", e.excerpt);
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_body() -> impl Strategy<Value = Body> {
    let known = [0x00, 0x10, 0x11, 0x12, 0x13, 0x17, 0x18, 0x19, 0x1a, 0x1b];
    prop_oneof![
        Just(Body::Empty),
        Just(Body::Syn),
        (any::<u32>(), arb_bytes(1400)).prop_map(|(realm, payload)| Body::Data { realm, payload }),
        (any::<u32>(), any::<u16>(), any::<u32>()).prop_map(|(realm, port, ip)| Body::Bind {
            realm,
            port,
            ip: Ipv4Addr::from(ip)
        }),
        (any::<u32>(), any::<bool>(), any::<bool>()).prop_map(|(realm, conn, nul)| Body::Status {
            realm,
            status: if conn { Status::Conn } else { Status::Disc },
            nul
        }),
        Just(Body::Heartbeat),
        Just(Body::SignRequest),
        arb_bytes(64).prop_map(Body::Sign),
        arb_bytes(64).prop_map(Body::Auth),
        arb_bytes(64).prop_map(Body::AuthResponse),
        Just(Body::AuthFinal),
        (any::<u8>(), arb_bytes(40))
            .prop_filter("unknown type", move |(k, _)| !known.contains(k))
            .prop_map(|(k, rest)| {
                let mut raw = vec![k];
                raw.extend_from_slice(&rest);
                Body::Other(Bytes::from(raw))
            }),
        // A 0x12 body that is not CONN/DISC.
        arb_bytes(30)
            .prop_filter("not a status", |rest| {
                let d = rest.get(11..15);
                d != Some(b"CONN") && d != Some(b"DISC")
            })
            .prop_map(|rest| {
                let mut raw = vec![0x12];
                raw.extend_from_slice(&rest);
                Body::Other(Bytes::from(raw))
            }),
    ]
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(sent, recv, pid, lmid, rmid)| Header {
            sent,
            recv,
            pid,
            lmid,
            rmid,
        })
}

proptest! {
    #[test]
    fn every_frame_round_trips(header in arb_header(), body in arb_body()) {
        let frame = Frame { header, body };
        let bytes = frame.to_bytes();
        prop_assert_eq!(bytes.len(), 24 + frame.body.wire_len());
        prop_assert_eq!(Frame::parse(&bytes), Ok(frame));
    }

    #[test]
    fn arbitrary_bytes_parse_or_fail_and_what_parses_round_trips(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..120),
        magic in any::<bool>(),
    ) {
        if magic && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(b"PTCP");
        }
        if let Ok(f) = Frame::parse(&bytes) {
            let again = f.to_bytes();
            prop_assert!(again.len() <= bytes.len() + 16);
            prop_assert_eq!(Frame::parse(&again), Ok(f));
        }
    }
}
