//! Fuzzes the RTSP server's connection framing (requests and interleaved frames, the input
//! split into reads at fuzzer-chosen points) and its `Authorization` checks with arbitrary
//! client bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsp::server::auth::{Attempt, DigestNonce};
use rtsp::server::framing::{Framer, Item};
use rtsp::server::{Authenticator, User};

fuzz_target!(|data: &[u8]| {
    let auth = Authenticator::new(vec![User {
        username: "admin".into(),
        password: "pw".into(),
    }]);
    let mut nonce = DigestNonce::new();
    // The first byte picks the read size, so heads arrive in pieces as from a slow client.
    let (step, data) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s).max(1), rest),
        None => return,
    };
    let mut framer = Framer::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    loop {
        let more = (data.len() - fed).min(step);
        buf.extend_from_slice(&data[fed..fed + more]);
        fed += more;
        loop {
            let used = match framer.next_item(&buf) {
                Err(_) | Ok(Item::NeedMore) => break,
                Ok(Item::Interleaved { used, .. }) | Ok(Item::Other(used)) => used,
                Ok(Item::Request(req, used)) => {
                    let h = req
                        .header(&rtsp_types::headers::AUTHORIZATION)
                        .map(|v| v.as_str());
                    let uri = req.request_uri().map_or("", |u| u.as_str());
                    let _ = auth.check(
                        Attempt {
                            method: "DESCRIBE",
                            uri,
                            authorization: h,
                        },
                        &mut nonce,
                    );
                    used
                }
            };
            assert!(used > 0 && used <= buf.len());
            buf.drain(..used);
        }
        if fed == data.len() {
            break;
        }
    }
});
