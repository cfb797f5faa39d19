//! XML bodies of DH-HTTP messages: the bodies quoted in the protocol notes, key-sorted writing
//! and property tests of the round trip and of totality.

use dahua_p2p::addr::{Aid, IdentifyStyle, LocalAddrList};
use dahua_p2p::xmlbody::{ElementOrder, XmlBody};
use proptest::prelude::*;

#[test]
fn server_nat_info_body_from_issue_3() {
    let b = XmlBody::parse(
        b"<body><Identify>8a 77 c6 8d b5 fe e6 58</Identify><IpEncrpt>false</IpEncrpt>\
          <LocalAddr>192.168.1.110:45660</LocalAddr><NatValueT>1</NatValueT>\
          <Policy>p2p,udprelay</Policy><PubAddr>212.200.247.162:15634</PubAddr>\
          <Relay>:0</Relay><version>6.0.0</version></body>",
    )
    .unwrap();
    assert_eq!(b.entries.len(), 8);
    assert_eq!(
        Aid::parse(b.get("Identify").unwrap())
            .unwrap()
            .format(IdentifyStyle::Padded),
        "8a 77 c6 8d b5 fe e6 58"
    );
    assert_eq!(b.get("PubAddr"), Some("212.200.247.162:15634"));
    let local = LocalAddrList::parse(b.get("body/LocalAddr").unwrap()).unwrap();
    assert_eq!(local.last().unwrap().to_string(), "192.168.1.110:45660");
    assert_eq!(b.get("Relay"), Some(":0"));
}

#[test]
fn relay_reply_with_prolog_from_issue_15() {
    let b = XmlBody::parse(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><body><Address>150.230.41.180:8900</Address></body>",
    )
    .unwrap();
    assert_eq!(b.get("Address"), Some("150.230.41.180:8900"));
}

#[test]
fn type0_p2p_channel_body_is_key_sorted_as_captured() {
    let b = XmlBody::new()
        .with("version", "5.0.0")
        .with("LocalAddr", "63.87.143.254,63.87.254.173:40000")
        .with("IpEncrpt", "true")
        .with("Identify", "d4 9e 67 a8 2b d4 7e 1e");
    assert_eq!(
        b.to_xml(ElementOrder::KeySorted),
        "<body><Identify>d4 9e 67 a8 2b d4 7e 1e</Identify><IpEncrpt>true</IpEncrpt>\
         <LocalAddr>63.87.143.254,63.87.254.173:40000</LocalAddr><version>5.0.0</version></body>"
    );
}

#[test]
fn forbidden_body_from_issue_2() {
    let b = XmlBody::parse(
        b"<body><ErrCode>4</ErrCode><Error>DevPwd_InvalidSalt</Error><Policy>p2p,udprelay</Policy></body>",
    )
    .unwrap();
    assert_eq!(b.get("Error"), Some("DevPwd_InvalidSalt"));
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.:-]{0,8}"
}

fn key() -> impl Strategy<Value = String> {
    proptest::collection::vec(name(), 1..4).prop_map(|v| v.join("/"))
}

fn body() -> impl Strategy<Value = XmlBody> {
    (
        name(),
        proptest::collection::vec((key(), any::<String>()), 0..8),
    )
        .prop_map(|(root, entries)| XmlBody { root, entries })
}

/// Whether writing `b` in `order` and reading it back gives `b` (sorted, for `KeySorted`).
fn round_trips(b: &XmlBody, order: ElementOrder) -> bool {
    let text = b.to_xml(order);
    let back = XmlBody::parse(text.as_bytes()).unwrap();
    let mut want = b.clone();
    if order == ElementOrder::KeySorted {
        want.entries
            .sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
    }
    back == want
}

proptest! {
    #[test]
    fn bodies_round_trip_in_given_order(b in body()) {
        prop_assert!(round_trips(&b, ElementOrder::AsGiven));
    }

    #[test]
    fn bodies_round_trip_key_sorted(b in body()) {
        prop_assert!(round_trips(&b, ElementOrder::KeySorted));
    }

    #[test]
    fn prolog_is_transparent(b in body()) {
        let text = b.to_xml_with_prolog(ElementOrder::AsGiven);
        prop_assert_eq!(XmlBody::parse(text.as_bytes()).unwrap(), b);
    }

    #[test]
    fn arbitrary_bytes_parse_or_fail_cleanly(d in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(b) = XmlBody::parse(&d) {
            let again = XmlBody::parse(b.to_xml(ElementOrder::AsGiven).as_bytes()).unwrap();
            prop_assert_eq!(again, b);
        }
    }

    #[test]
    fn markup_soup_parses_or_fails_cleanly(d in "(<[/!?]?[a-c]{0,2}( x='[<>/]')?/?>|[a-c&;# ]|&[a-z]{1,4};|<!\\[CDATA\\[[a<]?\\]\\]>|<!--[-a]?-->){0,24}") {
        if let Ok(b) = XmlBody::parse(d.as_bytes()) {
            let again = XmlBody::parse(b.to_xml(ElementOrder::AsGiven).as_bytes()).unwrap();
            prop_assert_eq!(again, b);
        }
    }
}
