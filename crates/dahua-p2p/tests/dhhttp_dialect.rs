//! Dialects and credential profiles, the classification of cloud errors, and the clock rule.

use std::net::SocketAddr;

use dahua_p2p::addr::{Aid, IdentifyStyle};
use dahua_p2p::dhhttp::{
    CSeqStyle, CloudError, Dialect, Method, PROFILE_NAMES, Profile, Request, Response, Verb,
    clock_offset, is_clock_skew, parse_date,
};
use dahua_p2p::wsse::{self, CreatedStyle, UsernameToken};
use dahua_p2p::xmlbody::{ElementOrder, XmlBody};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn peer() -> SocketAddr {
    "45.43.62.214:8803".parse().unwrap()
}

fn names(r: &Request) -> Vec<&str> {
    r.headers.iter().map(|(n, _)| n).collect()
}

#[test]
fn smartpss_get_has_no_content_headers() {
    let mut rng = StdRng::seed_from_u64(1);
    let r = Profile::smartpss().request(Verb::Get, "/probe/p2psrv", None, 1_788_696_000, &mut rng);
    assert_eq!(r.method, Method::DhGet);
    assert_eq!(names(&r), ["CSeq", "Authorization", "X-WSSE"]);
    assert_eq!(
        r.headers.get("Authorization"),
        Some("WSSE profile=\"UsernameToken\"")
    );
    let tok = UsernameToken::parse(r.headers.get("X-WSSE").unwrap()).unwrap();
    assert_eq!(tok.created, "2026-09-06T12:00:00Z");
    let n: i64 = tok.nonce.parse().unwrap();
    assert!((0..1 << 31).contains(&n));
    let pair = Profile::smartpss().credentials();
    assert!(
        wsse::verify(
            &pair,
            r.headers.get("X-WSSE").unwrap(),
            1_788_696_000,
            Some(5)
        )
        .is_ok()
    );
}

#[test]
fn smartpss_post_has_empty_content_type_and_length() {
    let mut rng = StdRng::seed_from_u64(1);
    let body = b"<body><Client>:0</Client></body>";
    let r = Profile::smartpss().request(Verb::Post, "/relay/start/T", Some(body), 0, &mut rng);
    assert_eq!(r.method, Method::DhPost);
    assert_eq!(
        names(&r),
        [
            "CSeq",
            "Authorization",
            "X-WSSE",
            "Content-Type",
            "Content-Length"
        ]
    );
    assert_eq!(r.headers.get("Content-Type"), Some(""));
    assert_eq!(r.content_length(), Some(body.len()));
    let text = String::from_utf8(r.serialize()).unwrap();
    assert!(text.contains("\r\nContent-Type: \r\n"), "{text}");
}

#[test]
fn unauthenticated_request_leaves_out_wsse() {
    let r = Dialect::dmss().request(Verb::Get, "/online/stun", None, None);
    assert_eq!(r.method, Method::NfGet);
    assert!(!r.headers.contains("X-WSSE") && !r.headers.contains("Authorization"));
    assert!(r.headers.contains("X-ToUType"));
}

#[test]
fn dmss_created_uses_the_configured_offset() {
    let mut d = Dialect::dmss();
    d.created = CreatedStyle::Offset(3 * 3600);
    assert_eq!(
        d.created(1_788_696_000 - 3 * 3600),
        "2026-09-06T12:00:00+03:00"
    );
    let tok = d.sign(
        &Profile::dmss().credentials(),
        0,
        &mut StdRng::seed_from_u64(0),
    );
    assert!(tok.created.ends_with("+03:00"));
}

#[test]
fn resign_replaces_only_the_token() {
    let d = Dialect::smartpss();
    let pair = Profile::smartpss().credentials();
    let mut r = d.request(
        Verb::Get,
        "/x",
        Some(&UsernameToken::sign(&pair, "1", "a")),
        None,
    );
    r.headers.set("CSeq", "4");
    d.resign(&mut r, &UsernameToken::sign(&pair, "2", "b"));
    assert_eq!(names(&r), ["CSeq", "Authorization", "X-WSSE"]);
    assert_eq!(r.cseq(), Some(4));
    assert!(r.headers.get("X-WSSE").unwrap().contains("Nonce=\"2\""));
}

#[test]
fn dialects_differ_where_the_notes_say() {
    let (s, d) = (Dialect::smartpss(), Dialect::dmss());
    assert_eq!(
        (s.cseq, d.cseq),
        (CSeqStyle::Counter, CSeqStyle::RandomSigned)
    );
    assert_eq!(
        (s.identify, d.identify),
        (IdentifyStyle::Unpadded, IdentifyStyle::Padded)
    );
    assert_eq!(s.created, CreatedStyle::Utc);
    assert!(matches!(d.created, CreatedStyle::Offset(_)));
    let aid = Aid([0, 1, 0xa, 0x10, 0xab, 0xcd, 0xef, 0xff]);
    assert_eq!(aid.format(s.identify), "0 1 a 10 ab cd ef ff");
    assert_eq!(aid.format(d.identify), "00 01 0a 10 ab cd ef ff");
    assert_eq!(
        Dialect::by_name("easyviewer").unwrap().method(Verb::Post),
        Method::NfPost
    );
    assert!(Dialect::by_name("nope").is_none());
}

#[test]
fn profiles_by_name() {
    for name in PROFILE_NAMES {
        assert_eq!(Profile::by_name(name).unwrap().name, name);
    }
    assert!(Profile::by_name("gdmss").is_none());
    let p = Profile::by_name("legacy").unwrap();
    assert_eq!((p.username, p.user_key), ("P2PClient", "YXQ3Mahe-5H-R1Z_"));
    assert_eq!(p.default_cloud, "www.easy4ipcloud.com:8800");
    assert_eq!(Profile::dmss().default_cloud, "p2p.dolynkcloud.com:8800");
    assert_eq!(Profile::dmss().dialect.name, "dmss");
    assert_eq!(Profile::amcrest().default_cloud, "p2p.amcrestview.com:8800");
    assert_eq!(
        Profile::smartpss().username,
        "cba1b29e32cb17aa46b8ff9e73c7f40b"
    );
}

fn request(path: &str) -> Request {
    let mut rng = StdRng::seed_from_u64(1);
    Profile::smartpss().request(Verb::Get, path, None, 0, &mut rng)
}

fn with_error(code: u16, reason: &str, error: Option<&str>) -> Response {
    let r = Response::new(code, reason).with_header("Date", "2023-12-18T19:19:43Z");
    match error {
        Some(e) => r.with_xml_body(
            &XmlBody::new().with("Error", e),
            ElementOrder::AsGiven,
            false,
        ),
        None => r,
    }
}

#[test]
fn success_is_not_an_error() {
    let req = request("/online/p2psrv/SN");
    assert_eq!(
        CloudError::classify(&req, peer(), &Response::new(200, "OK")),
        None
    );
    assert_eq!(
        CloudError::classify(&req, peer(), &Response::new(100, "Trying")),
        None
    );
}

#[test]
fn not_found_means_unknown_serial_or_offline_device() {
    let e = CloudError::classify(
        &request("/online/p2psrv/ABC"),
        peer(),
        &Response::new(404, "Not Found"),
    );
    assert!(matches!(&e, Some(CloudError::UnknownSerial { serial, .. }) if serial == "ABC"));
    let e = CloudError::classify(
        &request("/probe/device/ABC"),
        peer(),
        &Response::new(404, "Not Found"),
    )
    .unwrap();
    assert!(matches!(&e, CloudError::DeviceOffline { serial, .. } if serial == "ABC"));
    let msg = e.to_string();
    assert!(
        msg.contains("ABC") && msg.contains("45.43.62.214:8803"),
        "{msg}"
    );
}

#[test]
fn unauthorized_means_bad_pair_or_clock_skew() {
    let req = request("/online/p2psrv/SN");
    let e = CloudError::classify(&req, peer(), &with_error(401, "Unauthorized", None)).unwrap();
    assert!(
        matches!(&e, CloudError::BadAppCredentials { username, .. } if username == "cba1b29e32cb17aa46b8ff9e73c7f40b")
    );
    let skew = with_error(401, "Unauthorized", Some("TimeOut"));
    assert!(is_clock_skew(&skew));
    let e = CloudError::classify(&req, peer(), &skew).unwrap();
    assert_eq!(
        e,
        CloudError::ClockSkew {
            peer: peer(),
            path: "/online/p2psrv/SN".into(),
            server_date: Some("2023-12-18T19:19:43Z".into())
        }
    );
    assert!(e.to_string().contains("clock"));
}

#[test]
fn forbidden_distinguishes_auth_required_from_wrong_password() {
    let req = request("/device/SN9/p2p-channel");
    let body = XmlBody::new()
        .with("ErrCode", "4")
        .with("Error", "DevPwd_InvalidSalt")
        .with("Policy", "p2p,udprelay");
    let r = Response::new(403, "Forbidden").with_xml_body(&body, ElementOrder::AsGiven, false);
    let e = CloudError::classify(&req, peer(), &r).unwrap();
    assert!(matches!(&e, CloudError::DeviceAuthRequired { serial, .. } if serial == "SN9"));
    let e =
        CloudError::classify(&req, peer(), &Response::new(403, "DevPwd_InvalidDigest")).unwrap();
    assert!(
        matches!(&e, CloudError::WrongDevicePassword { detail, .. } if detail == "DevPwd_InvalidDigest")
    );
    let e = CloudError::classify(&req, peer(), &Response::new(403, "Forbidden")).unwrap();
    assert!(matches!(e, CloudError::Other { code: 403, .. }));
}

#[test]
fn other_codes_keep_code_reason_and_error_text() {
    let e = CloudError::classify(
        &request("/relay/agent"),
        peer(),
        &with_error(500, "Oops", Some("Busy")),
    )
    .unwrap();
    assert_eq!(
        e.to_string(),
        "45.43.62.214:8803 answered /relay/agent with 500 Oops (Busy)"
    );
    let e = CloudError::no_answer(&request("/probe/p2psrv"), peer(), 5);
    assert!(e.to_string().contains("after 5 transmissions"));
}

#[test]
fn clock_offset_from_iso_and_rfc1123_dates() {
    let server = 1_702_927_183; // 2023-12-18T19:19:43Z
    assert_eq!(parse_date("2023-12-18T19:19:43Z"), Some(server));
    assert_eq!(parse_date("Mon, 18 Dec 2023 19:19:43 GMT"), Some(server));
    assert_eq!(parse_date("18 Dec 2023 19:19:43 GMT"), Some(server));
    assert_eq!(clock_offset("2023-12-18T19:19:43Z", server - 90), Some(90));
    assert_eq!(
        clock_offset("2023-12-18T22:19:43+03:00", server + 5),
        Some(-5)
    );
    assert_eq!(clock_offset("yesterday", server), None);
    assert_eq!(parse_date("Mon, 18 Foo 2023 19:19:43 GMT"), None);
}

#[test]
fn timeout_must_be_a_401_to_be_skew() {
    assert!(!is_clock_skew(&with_error(
        403,
        "Forbidden",
        Some("TimeOut")
    )));
    assert!(!is_clock_skew(&with_error(
        401,
        "Unauthorized",
        Some("Other")
    )));
    assert!(is_clock_skew(&with_error(
        401,
        "Unauthorized",
        Some("timeout")
    )));
}
