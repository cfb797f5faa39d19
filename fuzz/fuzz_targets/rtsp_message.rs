//! Fuzzes the RTSP server's connection framing (requests and interleaved frames) and its
//! `Authorization` checks with arbitrary client bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsp::server::framing::{Item, next_item};
use rtsp::server::{Authenticator, User};

fuzz_target!(|data: &[u8]| {
    let auth = Authenticator::new(vec![User {
        username: "admin".into(),
        password: "pw".into(),
    }]);
    let mut buf = data;
    while let Ok(item) = next_item(buf) {
        let used = match item {
            Item::NeedMore => break,
            Item::Interleaved { used, .. } | Item::Other(used) => used,
            Item::Request(req, used) => {
                let h = req.header(&rtsp_types::headers::AUTHORIZATION).map(|v| v.as_str());
                let _ = auth.check("DESCRIBE", h);
                used
            }
        };
        assert!(used > 0 && used <= buf.len());
        buf = &buf[used..];
    }
});
