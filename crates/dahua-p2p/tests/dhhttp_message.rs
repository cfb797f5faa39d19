//! DH-HTTP message parsing and serialization: the real transcripts, the leniencies, the errors
//! and the round trip.

use dahua_p2p::dhhttp::{
    Headers, Message, Method, ParseErrorKind, Request, Response, parse_message, parse_request,
    parse_response, serial_in_path,
};
use proptest::prelude::*;

#[test]
fn parses_the_p2psrv_reply_from_the_notes() {
    let d = b"HTTP/1.1 200 OK\r\nDate: 2023-12-18T19:19:43Z\r\nCSeq: 2\r\nContent-Type: \r\n\
              Content-Length: 65\r\n\r\n<body><DS>45.43.62.214:8802</DS><US>45.43.62.214:8803</US></body>";
    let r = parse_response(d).unwrap();
    assert_eq!((r.code, r.reason.as_str()), (200, "OK"));
    assert_eq!(r.cseq(), Some(2));
    assert_eq!(r.content_length(), Some(65));
    assert_eq!(r.headers.get("content-type"), Some(""));
    assert_eq!(r.date(), Some("2023-12-18T19:19:43Z"));
    assert_eq!(r.body_xml().unwrap().get("US"), Some("45.43.62.214:8803"));
}

#[test]
fn reason_phrases_with_spaces_and_punctuation() {
    let r = parse_response(b"HTTP/1.1 200 Server Nat Info!\r\n\r\n").unwrap();
    assert_eq!(r.reason, "Server Nat Info!");
    let r = parse_response(b"HTTP/1.1 403 DevPwd_InvalidDigest\r\n\r\n").unwrap();
    assert_eq!((r.code, r.reason.as_str()), (403, "DevPwd_InvalidDigest"));
    let r = parse_response(b"HTTP/1.1 100\r\n\r\n").unwrap();
    assert_eq!((r.code, r.reason.as_str()), (100, ""));
    assert!(r.is_provisional());
}

#[test]
fn parses_a_smartpss_request() {
    let d = b"DHPOST /device/ABC123/p2p-channel HTTP/1.1\r\nCSeq: 5\r\n\
              Authorization: WSSE profile=\"UsernameToken\"\r\n\
              X-WSSE: UsernameToken Username=\"u\", PasswordDigest=\"d\", Nonce=\"1\", Created=\"c\"\r\n\
              Content-Type: \r\nContent-Length: 21\r\n\r\n<body><A>1</A></body>";
    let r = parse_request(d).unwrap();
    assert_eq!(r.method, Method::DhPost);
    assert_eq!(r.path, "/device/ABC123/p2p-channel");
    assert_eq!(r.serial(), Some("ABC123"));
    assert_eq!(r.cseq(), Some(5));
    assert_eq!(r.body_xml().unwrap().get("A"), Some("1"));
    assert_eq!(r.serialize(), d.to_vec());
}

#[test]
fn all_verbs_are_recognised() {
    for (t, m) in [
        ("DHGET", Method::DhGet),
        ("DHPOST", Method::DhPost),
        ("NFGET", Method::NfGet),
        ("NFPOST", Method::NfPost),
        ("GET", Method::Get),
        ("POST", Method::Post),
        ("UNBIND", Method::Other("UNBIND".into())),
    ] {
        let r = parse_request(format!("{t} /x HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
        assert_eq!(r.method, m);
        assert_eq!(r.method.as_str(), t);
    }
    assert!(Method::NfPost.is_post() && Method::NfGet.is_get());
}

#[test]
fn header_without_space_and_with_empty_value() {
    let r = parse_response(b"HTTP/1.1 200 OK\r\nCSeq:7\r\nContent-Type:\r\nX-A :  b c  \r\n\r\n")
        .unwrap();
    assert_eq!(r.cseq(), Some(7));
    assert_eq!(r.headers.get("Content-Type"), Some(""));
    assert_eq!(r.headers.get("x-a"), Some("b c"));
}

#[test]
fn lf_only_line_ends() {
    let r = parse_response(b"HTTP/1.1 200 OK\nCSeq: 3\nContent-Length: 4\n\nabcd").unwrap();
    assert_eq!((r.cseq(), r.body.as_slice()), (Some(3), &b"abcd"[..]));
    let r = parse_response(b"HTTP/1.1 200 OK\r\nCSeq: 3\n\r\nxy").unwrap();
    assert_eq!(r.body, b"xy");
}

#[test]
fn missing_content_length_takes_the_rest_of_the_datagram() {
    let r = parse_response(b"HTTP/1.1 200 OK\r\nCSeq: 1\r\n\r\n<body><A>1</A></body>").unwrap();
    assert_eq!(r.body, b"<body><A>1</A></body>");
    let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nxyz").unwrap();
    assert_eq!(r.body, b"xyz", "an empty Content-Length counts as absent");
}

#[test]
fn head_without_blank_line_has_no_body() {
    let r = parse_response(b"HTTP/1.1 200 OK\r\nCSeq: 1").unwrap();
    assert_eq!(r.cseq(), Some(1));
    assert!(r.body.is_empty());
}

#[test]
fn shorter_content_length_cuts_the_body() {
    let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcdef").unwrap();
    assert_eq!(r.body, b"ab");
}

#[test]
fn longer_content_length_is_an_error_with_context() {
    let e = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 120\r\n\r\n<body/>")
        .unwrap_err()
        .with_peer("45.43.62.214:8800".parse().unwrap());
    assert_eq!(
        e.kind,
        ParseErrorKind::BodyTruncated {
            declared: 120,
            available: 7
        }
    );
    assert_eq!(e.offset, 40);
    let msg = e.to_string();
    assert!(msg.contains("45.43.62.214:8800"), "{msg}");
    assert!(msg.contains("Content-Length 120"), "{msg}");
    assert!(msg.contains("3c 62 6f 64 79"), "{msg}");
}

#[test]
fn malformed_messages_say_what_is_wrong() {
    let kind = |d: &[u8]| parse_response(d).unwrap_err().kind;
    assert_eq!(kind(b""), ParseErrorKind::Empty);
    assert_eq!(kind(b"\r\nHTTP/1.1 200 OK\r\n"), ParseErrorKind::Empty);
    assert!(matches!(
        kind(b"HTTX/1.1 200 OK\r\n"),
        ParseErrorKind::BadStartLine(_)
    ));
    assert!(matches!(
        kind(b"HTTP/1.1 20 OK\r\n"),
        ParseErrorKind::BadStatusCode(_)
    ));
    assert!(matches!(
        kind(b"HTTP/1.1 2000 OK\r\n"),
        ParseErrorKind::BadStatusCode(_)
    ));
    assert!(matches!(
        kind(b"HTTP/1.1 200 OK\r\nNoColon\r\n"),
        ParseErrorKind::BadHeaderLine(_)
    ));
    assert!(matches!(
        kind(b"HTTP/1.1 200 OK\r\n: v\r\n"),
        ParseErrorKind::BadHeaderLine(_)
    ));
    assert!(matches!(
        kind(b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"),
        ParseErrorKind::BadContentLength(_)
    ));
    assert_eq!(
        kind(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy"),
        ParseErrorKind::ConflictingContentLength(1, 2)
    );
    assert_eq!(kind(b"HTTP/1.1 200 \xffOK\r\n"), ParseErrorKind::NotText);
    let req = |d: &[u8]| parse_request(d).unwrap_err().kind;
    assert!(matches!(
        req(b"DHGET /x\r\n\r\n"),
        ParseErrorKind::BadStartLine(_)
    ));
    assert!(matches!(
        req(b"DHGET /x y HTTP/1.1\r\n\r\n"),
        ParseErrorKind::BadStartLine(_)
    ));
}

#[test]
fn parse_message_dispatches_on_http_prefix() {
    assert!(matches!(
        parse_message(b"HTTP/1.1 200 OK\r\n\r\n"),
        Ok(Message::Response(_))
    ));
    assert!(matches!(
        parse_message(b"NFGET /online/stun HTTP/1.1\r\n\r\n"),
        Ok(Message::Request(_))
    ));
}

#[test]
fn headers_lookup_and_edit_case_insensitively() {
    let mut h = Headers::new();
    h.push("CSeq", "1");
    h.push("X-A", "a");
    h.push("cseq", "2");
    assert_eq!(h.get_all("CSEQ").collect::<Vec<_>>(), ["1", "2"]);
    h.set("Cseq", "3");
    assert_eq!(
        h.0,
        [("CSeq".into(), "3".into()), ("X-A".into(), "a".into())]
    );
    h.insert(0, "First", "f");
    assert_eq!(h.position("x-a"), Some(2));
    h.remove("X-a");
    assert_eq!(h.len(), 2);
}

#[test]
fn set_body_keeps_content_length_in_step() {
    let r = Request::new(Method::DhPost, "/x")
        .with_header("Content-Length", "0")
        .with_body(b"hello".to_vec());
    assert_eq!(r.content_length(), Some(5));
    let r = Request::new(Method::DhPost, "/x").with_body(b"hello".to_vec());
    assert_eq!(r.content_length(), None, "no header is added");
    assert_eq!(parse_request(&r.serialize()).unwrap(), r);
}

#[test]
fn reply_to_echoes_cseq_and_request_id() {
    let req = Request::new(Method::NfGet, "/online/p2psrv/SN")
        .with_header("x-pcs-request-id", "abc")
        .with_header("CSeq", "-12");
    let body = dahua_p2p::xmlbody::XmlBody::new().with("US", "1.2.3.4:8803");
    let resp = Response::reply_to(&req, 200, "OK", 1_702_927_183).with_xml_body(
        &body,
        Default::default(),
        true,
    );
    let text = String::from_utf8(resp.serialize()).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nDate: 2023-12-18T19:19:43Z\r\nCSeq: -12\r\nx-pcs-request-id: abc\r\n\
         Content-Type: \r\nContent-Length: 72\r\n\r\n\
         <?xml version=\"1.0\" encoding=\"UTF-8\"?><body><US>1.2.3.4:8803</US></body>"
    );
    assert_eq!(parse_response(text.as_bytes()).unwrap(), resp);
}

#[test]
fn serial_is_found_in_every_device_path() {
    assert_eq!(serial_in_path("/online/p2psrv/SN1"), Some("SN1"));
    assert_eq!(serial_in_path("/probe/device/SN2"), Some("SN2"));
    assert_eq!(serial_in_path("/info/device/SN3"), Some("SN3"));
    assert_eq!(serial_in_path("/device/SN4/p2p-channel"), Some("SN4"));
    assert_eq!(serial_in_path("/online/relay"), None);
    assert_eq!(serial_in_path("/probe/p2psrv"), None);
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_.-]{0,12}"
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]([ -~]{0,30}[!-~])?"]
}

fn headers() -> impl Strategy<Value = Headers> {
    proptest::collection::vec((token(), value()), 0..6).prop_map(|v| {
        Headers(
            v.into_iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("Content-Length"))
                .collect(),
        )
    })
}

fn body() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (proptest::collection::vec(any::<u8>(), 0..64), any::<bool>())
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::DhGet),
        Just(Method::DhPost),
        Just(Method::NfGet),
        Just(Method::NfPost),
        Just(Method::Get),
        Just(Method::Post),
        "[A-Z]{1,8}".prop_map(|t| Method::from_token(&t)),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(
        m in method(),
        path in "/[!-~]{0,40}",
        h in headers(),
        (b, with_len) in body(),
    ) {
        let mut r = Request { method: m, path, headers: h, body: Vec::new() };
        if with_len {
            r.headers.push("Content-Length", "0");
        }
        r.set_body(b);
        prop_assert_eq!(parse_request(&r.serialize()).unwrap(), r);
    }

    #[test]
    fn responses_round_trip(
        code in 100u16..1000,
        reason in prop_oneof![Just(String::new()), "[!-~]([ -~]{0,20}[!-~])?"],
        h in headers(),
        (b, with_len) in body(),
    ) {
        let mut r = Response { code, reason, headers: h, body: Vec::new() };
        if with_len {
            r.headers.push("Content-Length", "0");
        }
        r.set_body(b);
        prop_assert_eq!(parse_response(&r.serialize()).unwrap(), r);
    }

    #[test]
    fn whatever_parses_reserializes_to_the_same(d in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(m) = parse_message(&d) {
            prop_assert_eq!(parse_message(&m.serialize()).unwrap(), m);
        }
    }

    #[test]
    fn near_valid_text_parses_or_fails_cleanly(
        d in "(HTTP/1.1 [0-9]{3}|DHGET /x HTTP/1.1)(\r?\n[A-Za-z-]{0,6}:? ?[ -~]{0,8}){0,4}(\r?\n\r?\n[ -~]{0,20})?",
    ) {
        if let Ok(m) = parse_message(d.as_bytes()) {
            prop_assert_eq!(parse_message(&m.serialize()).unwrap(), m);
        }
    }
}
