//! Fuzzes the Dahua P2P cloud parsers with arbitrary datagrams: DH-HTTP requests and
//! responses (which must re-serialize to an equal message), flat XML bodies (which must write
//! back to an equal body) and the p2p-channel bodies read from them, the response
//! classification and the transactor's matching, and the small text values (X-WSSE, Created,
//! Identify, LocalAddr).

#![no_main]

use std::time::Instant;

use dahua_p2p::addr::{Aid, LocalAddrList};
use dahua_p2p::dhhttp::{
    CloudError, Method, ReceivedP2pChannel, Request, ServerNatInfo, Transactor, TransactorConfig,
    is_clock_skew, parse_date, parse_request, parse_response,
};
use dahua_p2p::wsse::{UsernameToken, parse_created};
use dahua_p2p::xmlbody::{ElementOrder, XmlBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let peer = "192.0.2.1:8800".parse().unwrap();
    if let Ok(req) = parse_request(data) {
        assert_eq!(parse_request(&req.serialize()).unwrap(), req);
        let _ = req.body_xml();
        let _ = req.serial();
    }
    if let Ok(resp) = parse_response(data) {
        assert_eq!(parse_response(&resp.serialize()).unwrap(), resp);
        let _ = is_clock_skew(&resp);
        let req = Request::new(Method::DhGet, "/device/SN/p2p-channel");
        let err = CloudError::classify(&req, peer, &resp);
        assert_eq!(err.is_none(), resp.code < 300);
        if let Some(e) = err {
            let _ = e.to_string();
        }
        if let Some(d) = resp.date() {
            let _ = parse_date(d);
        }
    }
    let mut t = Transactor::new(TransactorConfig {
        seed: Some(1),
        ..TransactorConfig::default()
    });
    let now = Instant::now();
    let id = t.start(now, peer, Request::new(Method::DhGet, "/probe/p2psrv"));
    if t.handle_datagram(now, peer, data).is_ok() && !t.is_pending(id) {
        assert!(t.poll_event().is_some());
    }
    if let Ok(body) = XmlBody::parse(data) {
        let again = XmlBody::parse(body.to_xml(ElementOrder::AsGiven).as_bytes()).unwrap();
        assert_eq!(again, body);
        let mut sorted = body.clone();
        sorted
            .entries
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let again = XmlBody::parse(body.to_xml(ElementOrder::KeySorted).as_bytes()).unwrap();
        assert_eq!(again, sorted);
        if let Ok(info) = ServerNatInfo::from_body(&body) {
            let _ = info.local_addrs(None);
        }
        if let Ok(ch) = ReceivedP2pChannel::from_body(&body) {
            let _ = ch.local_addrs(None);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(tok) = UsernameToken::parse(text) {
            if !tok.username.contains('"') {
                let _ = UsernameToken::parse(&tok.header_value());
            }
        }
        let _ = parse_created(text);
        if let Ok(aid) = Aid::parse(text) {
            assert_eq!(Aid::parse(&aid.to_string()).unwrap(), aid);
        }
        if let Ok(l) = LocalAddrList::parse(text) {
            assert_eq!(LocalAddrList::parse(&l.to_string()).unwrap(), l);
        }
    }
});
