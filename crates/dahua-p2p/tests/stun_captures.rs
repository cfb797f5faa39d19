//! Inverted STUN: the two real captures, the message builders, tolerance of odd attributes
//! and round trips.

use std::net::SocketAddrV4;

use dahua_p2p::addr::Aid;
use dahua_p2p::stun::{
    ATTR_ADDRESS, ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, Attribute, BINDING_REQUEST,
    BINDING_SUCCESS, MAGIC_COOKIE, StunMessage, inverted, relay_plain_reply,
};
use proptest::prelude::*;

const CAPTURED_REQUEST: &str = "fffeffe7 deed5bbd b303ef13 412b12ae f9bab266 7fd5fff7 2b619857 \
                                d42b81e1 fffbfff7 fffea813 2102d265";
const CAPTURED_SUCCESS: &str = "fefeffe7 deed5bbd d3fa95ab 9298c8e0 6b6e844e 7fd6fff7 2b619857 \
                                d42b81e1 fffbfff7 fffea813 3f57fe37";

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text.replace(' ', "")).unwrap()
}

fn aid() -> Aid {
    Aid::parse("d4 9e 67 a8 2b d4 7e 1e").unwrap()
}

fn txid(h: &str) -> [u8; 12] {
    hex::decode(h).unwrap().try_into().unwrap()
}

#[test]
fn captured_client_binding_request_decodes() {
    let wire = bytes(CAPTURED_REQUEST);
    assert_eq!(wire.len(), 44);
    let m = StunMessage::parse_inverted(&wire).unwrap();
    assert_eq!(m.msg_type, BINDING_REQUEST);
    assert_eq!(m.length, 24);
    assert_eq!(m.cookie, MAGIC_COOKIE);
    assert_eq!(m.txid, txid("4cfc10ecbed4ed5106454d99"));
    assert!(m.is_controlling());
    assert_eq!(m.aid(), Some(aid()));
    assert_eq!(m.address(), Some("222.253.45.154:22508".parse().unwrap()));
    assert_eq!(m.to_inverted_bytes(), wire);
}

#[test]
fn captured_binding_success_decodes() {
    let wire = bytes(CAPTURED_SUCCESS);
    let m = StunMessage::parse_inverted(&wire).unwrap();
    assert_eq!(m.msg_type, BINDING_SUCCESS);
    assert_eq!(m.length, 24);
    assert_eq!(m.txid, txid("2c056a546d67371f94917bb1"));
    assert!(!m.is_controlling());
    assert_eq!(m.attribute(ATTR_ICE_CONTROLLED), Some(&aid().0[..]));
    assert_eq!(m.address(), Some("192.168.1.200:22508".parse().unwrap()));
    assert_eq!(m.to_inverted_bytes(), wire);
}

#[test]
fn builders_reproduce_the_captures() {
    let public: SocketAddrV4 = "222.253.45.154:22508".parse().unwrap();
    let req = StunMessage::binding_request(
        MAGIC_COOKIE,
        txid("4cfc10ecbed4ed5106454d99"),
        aid(),
        public,
    );
    assert_eq!(req.to_inverted_bytes(), bytes(CAPTURED_REQUEST));
    let lan: SocketAddrV4 = "192.168.1.200:22508".parse().unwrap();
    let ok =
        StunMessage::binding_success(MAGIC_COOKIE, txid("2c056a546d67371f94917bb1"), aid(), lan);
    assert_eq!(ok.to_inverted_bytes(), bytes(CAPTURED_SUCCESS));
}

#[test]
fn binding_confirm_is_32_bytes_starting_fefefff3() {
    let c = StunMessage::binding_confirm(MAGIC_COOKIE, [7; 12], aid());
    let wire = c.to_inverted_bytes();
    assert_eq!(wire.len(), 32);
    assert_eq!(wire[..4], [0xfe, 0xfe, 0xff, 0xf3]);
    assert_eq!(wire[20..24], [0x7f, 0xd6, 0xff, 0xf7]);
    let back = StunMessage::parse_inverted(&wire).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.aid(), Some(aid()));
    assert_eq!(back.address(), None);
}

#[test]
fn dhp2p_confirm_is_44_bytes_with_length_12() {
    let c = StunMessage::binding_confirm_dhp2p(
        MAGIC_COOKIE,
        [7; 12],
        aid(),
        "192.168.1.200:22508".parse().unwrap(),
    );
    let wire = c.to_inverted_bytes();
    assert_eq!(wire.len(), 44);
    assert_eq!(wire[..4], [0xfe, 0xfe, 0xff, 0xf3]);
    let back = StunMessage::parse_inverted(&wire).unwrap();
    assert_eq!(back.length, 12);
    assert_eq!(back.address(), Some("192.168.1.200:22508".parse().unwrap()));
    assert_eq!(back.to_inverted_bytes(), wire);
}

#[test]
fn bad_or_missing_address_attributes_still_parse() {
    // Address attribute with the bytes left un-inverted (as some clients send it).
    let mut wire = bytes(CAPTURED_REQUEST);
    for b in &mut wire[32..] {
        *b = !*b;
    }
    let m = StunMessage::parse_inverted(&wire).unwrap();
    assert_eq!(m.aid(), Some(aid()));
    assert_eq!(m.address(), None, "type ffff, not 0004");
    // Address attribute cut off after its header.
    let m = StunMessage::parse_inverted(&bytes(CAPTURED_REQUEST)[..36]).unwrap();
    assert_eq!(m.attribute(ATTR_ADDRESS), Some(&[][..]));
    assert_eq!(m.address(), None);
    // No attributes at all.
    let m = StunMessage::parse_inverted(&bytes(CAPTURED_REQUEST)[..20]).unwrap();
    assert!(m.attributes.is_empty());
    assert_eq!(m.aid(), None);
}

#[test]
fn short_datagrams_are_errors_with_hex() {
    let e = StunMessage::parse_inverted(&[0xff, 0xfe, 0xff]).unwrap_err();
    assert!(e.to_string().contains("ff fe ff"), "{e}");
    assert!(
        StunMessage::parse_inverted(&[0x7f; 20]).is_err(),
        "decoded type 0x80.."
    );
}

#[test]
fn plain_form_of_the_relay_flow() {
    let plain = inverted(&bytes(CAPTURED_REQUEST));
    let m = StunMessage::parse_plain(&plain).unwrap();
    assert_eq!(m.msg_type, BINDING_REQUEST);
    assert_eq!(m.to_plain_bytes(), plain);
    let reply = relay_plain_reply(&plain).unwrap();
    assert_eq!(reply[..2], [0x01, 0x01]);
    assert_eq!(reply[2..24], plain[2..24]);
    assert_eq!(reply[24..32], [0; 8]);
    assert_eq!(reply[32..], plain[32..]);
    let r = StunMessage::parse_plain(&reply).unwrap();
    assert_eq!(r.msg_type, BINDING_SUCCESS);
    assert_eq!(r.txid, m.txid);
    assert!(relay_plain_reply(&plain[..31]).is_none());
}

fn any_message() -> impl Strategy<Value = StunMessage> {
    let attr = (
        prop_oneof![
            Just(ATTR_ICE_CONTROLLING),
            Just(ATTR_ICE_CONTROLLED),
            Just(ATTR_ADDRESS),
            any::<u16>()
        ],
        proptest::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(|(typ, value)| Attribute { typ, value });
    (
        prop_oneof![Just(BINDING_REQUEST), Just(BINDING_SUCCESS), 0u16..0x4000],
        any::<u16>(),
        any::<[u8; 4]>(),
        any::<[u8; 12]>(),
        proptest::collection::vec(attr, 0..4),
    )
        .prop_map(|(msg_type, length, cookie, txid, attributes)| StunMessage {
            msg_type,
            length,
            cookie,
            txid,
            attributes,
        })
}

proptest! {
    #[test]
    fn inverted_messages_round_trip(m in any_message()) {
        prop_assert_eq!(StunMessage::parse_inverted(&m.to_inverted_bytes()).unwrap(), m.clone());
        prop_assert_eq!(StunMessage::parse_plain(&m.to_plain_bytes()).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_parse_or_fail_cleanly(d in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(m) = StunMessage::parse_inverted(&d) {
            let again = StunMessage::parse_inverted(&m.to_inverted_bytes()).unwrap();
            prop_assert_eq!(again, m);
        }
    }
}
