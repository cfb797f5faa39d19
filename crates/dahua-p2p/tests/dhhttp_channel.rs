//! p2p-channel bodies: type 0 as captured, type 1 with the golden device-auth vectors, the
//! cloud's reading and checking of both, and the Server Nat Info answer.

use dahua_p2p::addr::{Aid, IdentifyStyle, LocalAddrList};
use dahua_p2p::devauth::{AuthCheckFailure, DeviceCredentials};
use dahua_p2p::dhhttp::{ChannelError, P2pChannelRequest, ReceivedP2pChannel, ServerNatInfo};
use dahua_p2p::xmlbody::{ElementOrder, XmlBody};

fn aid() -> Aid {
    Aid::parse("d4 9e 67 a8 2b d4 7e 1e").unwrap()
}

fn device() -> DeviceCredentials {
    DeviceCredentials::with_salt("admin", "pass123", "Rs4lt")
}

#[test]
fn type0_body_matches_the_kbivms_capture() {
    let req = P2pChannelRequest {
        aid: aid(),
        local: LocalAddrList::parse("192.168.112.1,192.168.1.82:40000").unwrap(),
        version: "5.0.0".into(),
    };
    assert_eq!(
        req.type0_body(IdentifyStyle::Unpadded, true)
            .to_xml(ElementOrder::AsGiven),
        "<body><Identify>d4 9e 67 a8 2b d4 7e 1e</Identify><IpEncrpt>true</IpEncrpt>\
         <LocalAddr>63.87.143.254,63.87.254.173:40000</LocalAddr><version>5.0.0</version></body>"
    );
}

#[test]
fn cloud_reads_a_type0_body_and_undoes_the_inversion() {
    let local = LocalAddrList::parse("192.168.112.1,192.168.1.82:40000").unwrap();
    let req = P2pChannelRequest {
        aid: aid(),
        local: local.clone(),
        version: "5.0.0".into(),
    };
    let got = ReceivedP2pChannel::from_body(&req.type0_body(IdentifyStyle::Padded, true)).unwrap();
    assert_eq!(got.aid, aid());
    assert!(got.auth.is_none());
    assert_eq!(got.local_addrs(None).unwrap(), local);
    assert_eq!(got.verify(&device()), Err(AuthCheckFailure::Missing));
}

#[test]
fn type1_body_signs_the_encrypted_local_addr() {
    let req = P2pChannelRequest {
        aid: aid(),
        local: LocalAddrList::parse("127.0.0.1:40000").unwrap(),
        version: "5.0.0".into(),
    };
    let body = req.type1_body(IdentifyStyle::Unpadded, &device(), 777, 1_700_000_000);
    assert_eq!(
        body.to_xml(ElementOrder::AsGiven),
        "<body><CreateDate>1700000000</CreateDate>\
         <DevAuth>t2Cqkm5AuqmP1raemFgKyu6CmoJeIOZIevOQYZbF3gE=</DevAuth><Nonce>777</Nonce>\
         <RandSalt>Rs4lt</RandSalt><UserName>admin</UserName>\
         <Identify>d4 9e 67 a8 2b d4 7e 1e</Identify><IpEncrptV2>true</IpEncrptV2>\
         <LocalAddr>/R40Newcuzi0faikzfZA</LocalAddr><version>5.0.0</version></body>"
    );
    let got = ReceivedP2pChannel::from_body(&body).unwrap();
    assert_eq!(got.verify(&device()), Ok(()));
    assert_eq!(got.local_addrs(Some(&device())).unwrap(), req.local);
    assert_eq!(got.local_addrs(None), Err(ChannelError::NeedsCredentials));
    let other = DeviceCredentials::with_salt("admin", "other", "Rs4lt");
    assert!(matches!(
        got.verify(&other),
        Err(AuthCheckFailure::BadDevAuth { .. })
    ));
}

#[test]
fn body_without_identify_is_rejected() {
    let b = XmlBody::new().with("LocalAddr", "1.2.3.4:5");
    assert_eq!(
        ReceivedP2pChannel::from_body(&b),
        Err(ChannelError::Missing("Identify"))
    );
}

const ISSUE3: &str = "<body><Identify>8a 77 c6 8d b5 fe e6 58</Identify><IpEncrpt>false</IpEncrpt>\
    <LocalAddr>192.168.1.110:45660</LocalAddr><NatValueT>1</NatValueT>\
    <Policy>p2p,udprelay</Policy><PubAddr>212.200.247.162:15634</PubAddr>\
    <Relay>:0</Relay><version>6.0.0</version></body>";

#[test]
fn server_nat_info_from_issue_3() {
    let info = ServerNatInfo::from_body(&XmlBody::parse(ISSUE3.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        info.pub_addr,
        Some("212.200.247.162:15634".parse().unwrap())
    );
    assert!(info.allows("udprelay") && !info.allows("tcprelay"));
    assert_eq!(
        info.local_addrs(None).unwrap().last().unwrap().to_string(),
        "192.168.1.110:45660"
    );
    assert_eq!(info.version.as_deref(), Some("6.0.0"));
    assert_eq!(
        info.to_body(IdentifyStyle::Unpadded)
            .to_xml(ElementOrder::AsGiven),
        ISSUE3
    );
}

#[test]
fn type1_answer_is_decrypted_with_the_answer_nonce() {
    let key = device().key();
    let info = ServerNatInfo {
        aid: Some(aid()),
        local_addr: Some(key.encrypt(-123_456, "192.168.57.20,192.168.0.108:51980")),
        nonce: Some(-123_456),
        policy: vec!["p2p".into(), "udprelay".into()],
        pub_addr: Some("198.51.100.7:40001".parse().unwrap()),
        ..ServerNatInfo::default()
    };
    let body = info.to_body(IdentifyStyle::Padded);
    let back = ServerNatInfo::from_body(&body).unwrap();
    assert_eq!(back, info);
    let local = back.local_addrs(Some(&key)).unwrap();
    assert_eq!(local.last().unwrap().to_string(), "192.168.0.108:51980");
    assert_eq!(back.local_addrs(None), Err(ChannelError::NeedsCredentials));
}

#[test]
fn answer_without_pub_addr_still_parses() {
    let b = XmlBody::new()
        .with("Policy", "p2p")
        .with("PubAddr", "garbage");
    let info = ServerNatInfo::from_body(&b).unwrap();
    assert_eq!(info.pub_addr, None);
    assert_eq!(
        info.local_addrs(None),
        Err(ChannelError::Missing("LocalAddr"))
    );
}
