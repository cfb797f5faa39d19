//! The response-shape quirks (§3.4), discovery replies in their variants, RTSP URL templates
//! and HTTP Digest.

use dhip::digest::{self, Challenge as DigestChallenge};
use dhip::discovery::{self, Dedup};
use dhip::envelope::{Incoming, JsonStyle, Request, Response, SessionId, as_u64_lenient};
use dhip::frame::Terminator;
use dhip::rtsp_url::{self, Template};
use serde_json::{Value, json};

fn resp(s: &str) -> Response {
    Response::from_json(s.as_bytes()).unwrap()
}

#[test]
fn extract_prefers_params_then_a_non_bool_result() {
    assert_eq!(
        resp(r#"{"result":true,"params":{"table":{"a":1}}}"#).extract(),
        json!({"table":{"a":1}})
    );
    assert_eq!(
        resp(r#"{"result":"2026-06-18 11:46:19","params":null}"#).extract(),
        json!("2026-06-18 11:46:19")
    );
    assert_eq!(resp(r#"{"result":77}"#).extract(), json!(77));
    assert_eq!(
        resp(r#"{"result":true,"params":[{"Name":"admin"}]}"#).extract(),
        json!([{"Name":"admin"}])
    );
    assert_eq!(resp(r#"{"result":true,"params":{}}"#).extract(), json!({}));
    assert_eq!(resp(r#"{"result":false}"#).extract(), json!(false));
}

#[test]
fn success_is_truthiness_and_false_can_be_an_answer() {
    assert!(resp(r#"{"result":true}"#).is_success());
    assert!(resp(r#"{"result":77}"#).is_success());
    assert!(!resp(r#"{"result":0}"#).is_success());
    assert!(resp(r#"{"result":"x"}"#).is_success());
    let moving = resp(r#"{"id":3,"result":false}"#);
    assert!(!moving.is_success() && moving.error.is_none());
}

#[test]
fn sessions_are_numbers_or_strings_and_numbers_may_be_floats() {
    assert_eq!(
        resp(r#"{"result":true,"session":"4f8fc4ebe6ab2b4b6a04909b3fb91686"}"#).session,
        Some(SessionId::Str("4f8fc4ebe6ab2b4b6a04909b3fb91686".into()))
    );
    assert_eq!(
        resp(r#"{"result":true,"session":2147483643}"#).session,
        Some(SessionId::Int(2_147_483_643))
    );
    assert_eq!(as_u64_lenient(&json!(1739830027.0)), Some(1_739_830_027));
    assert_eq!(as_u64_lenient(&json!(1.5)), None);
    assert_eq!(resp(r#"{"id":4.0,"result":true}"#).id, Some(4));
}

#[test]
fn devices_accept_requests_with_null_params_and_extra_keys() {
    let r = Request::from_json(
        br#"{"method":"global.keepAlive","params":null,"id":9,"session":5,"magic":"0x1234"}"#,
    )
    .unwrap();
    assert_eq!(r.params, Value::Null);
    assert_eq!(r.extra["magic"], "0x1234");
    assert!(Request::from_json(br#"{"params":{}}"#).is_err());
    assert!(Request::from_json(b"[1,2]").is_err());
    assert!(Incoming::from_json(b"{\"id\":1,").is_err());
}

#[test]
fn spaced_style_looks_like_the_access_controller() {
    let r = Response {
        id: Some(0),
        session: Some(SessionId::Int(29_757_655)),
        result: json!(false),
        params: json!({"realm":"Login to ASI1201E"}),
        error: Some(dhip::envelope::RpcError {
            code: 268_632_079,
            message: None,
        }),
    };
    let s = String::from_utf8(r.to_json(JsonStyle::Spaced)).unwrap();
    assert!(s.starts_with("{ \"error\": { \"code\": 268632079 }"), "{s}");
    assert_eq!(resp(&s), r);
}

#[test]
fn the_probe_is_the_documented_90_bytes() {
    let p = discovery::probe(0);
    assert_eq!(p.len(), 90);
    assert_eq!(
        hex::encode(&p[..32]),
        "20000000444849500000000000000000 3a000000000000003a00000000000000".replace(' ', "")
    );
    assert!(discovery::is_probe(&p));
    assert!(!discovery::is_probe(&p[32..]), "bare JSON is not a probe");
}

#[test]
fn discovery_replies_parse_with_or_without_header_and_nul() {
    let info = json!({"SerialNo":"ABC","DeviceType":"IPC-HDW","DeviceClass":"IPC","Port":37777,
        "HttpPort":80,"IPv4Address":{"IPAddress":"127.0.0.1"},"VideoInputChannels":1});
    let framed = discovery::reply(&info, "3c:ef:8c:41:6c:ce", Terminator::Nul);
    let d = discovery::parse_reply(&framed).unwrap();
    assert_eq!(d.serial.as_deref(), Some("ABC"));
    assert_eq!(d.port, Some(37777));
    assert_eq!(d.ipv4.as_deref(), Some("127.0.0.1"));
    assert_eq!(d.mac.as_deref(), Some("3c:ef:8c:41:6c:ce"));
    let bare = discovery::parse_reply(&framed[32..]).unwrap();
    assert_eq!(bare, d);
    let mut seen = Dedup::default();
    assert!(seen.first(&d, "127.0.0.1:37810"));
    assert!(!seen.first(&bare, "127.0.0.1:37810"));
    assert!(discovery::parse_reply(b"\x20\0\0\0DHIP").is_err());
}

#[test]
fn rtsp_urls_escape_credentials_and_use_one_based_channels() {
    assert_eq!(rtsp_url::encode_credential("ad@min"), "ad%40min");
    assert_eq!(rtsp_url::encode_credential("p:w/d"), "p%3Aw%2Fd");
    assert_eq!(
        rtsp_url::url("h", 554, "ad@min", "p:w/d", &Template::Dahua, 0, 1),
        "rtsp://ad%40min:p%3Aw%2Fd@h:554/cam/realmonitor?channel=1&subtype=1"
    );
    assert_eq!(
        Template::parse("zn").unwrap().path(1, 0),
        "/H264?ch=2&subtype=0"
    );
    assert_eq!(
        Template::parse("/live/{channel0}/{subtype}")
            .unwrap()
            .path(3, 1),
        "/live/3/1"
    );
    assert_eq!(
        rtsp_url::url("::1", 554, "", "", &Template::Bare, 0, 0),
        "rtsp://[::1]:554"
    );
    assert!(Template::parse("nonsense").is_err());
}

#[test]
fn digest_answers_verify_with_and_without_qop() {
    for qop in ["qop=\"auth\", ", ""] {
        let h = format!("Digest realm=\"Login to X\", {qop}nonce=\"abc\", opaque=\"o\"");
        let c = DigestChallenge::parse(&h).unwrap();
        assert_eq!(c.qop_auth, !qop.is_empty());
        let a = c.authorization(
            "admin",
            "pw",
            "GET",
            "/cgi-bin/snapshot.cgi?channel=1",
            1,
            "cn",
        );
        let ok = |n: &str| n == "abc";
        assert!(digest::verify(
            Some(&a),
            "Login to X",
            ok,
            "GET",
            "admin",
            "pw"
        ));
        assert!(!digest::verify(
            Some(&a),
            "Login to X",
            ok,
            "GET",
            "admin",
            "wrong"
        ));
        assert!(!digest::verify(
            Some(&a),
            "Login to X",
            |_| false,
            "GET",
            "admin",
            "pw"
        ));
    }
    assert!(DigestChallenge::parse("Basic realm=\"x\"").is_none());
}
