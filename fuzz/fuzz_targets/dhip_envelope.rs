//! Fuzzes the DHIP/RPC2 JSON envelope with arbitrary bytes: `Incoming`, `Request` and
//! `Response` parsing never panics; a parsed request writes back (`to_json`) to text that
//! parses to an equal request; a parsed response writes back in both JSON styles to text
//! that parses to an equal response, and `extract`/`is_success` hold up; a parsed push
//! writes back to an equal push. The input is also tried wrapped in an envelope, as the
//! value of `params` or of the error code. JSON numbers are compared as numbers: serde_json's default
//! float parsing is best-effort, so a float may come back an ulp or so off.

#![no_main]

use dhip::envelope::{Incoming, JsonStyle, Request, Response};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Equal JSON, floats within a few ulps (integers exactly).
fn approx_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            if x.is_f64() || y.is_f64() {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                return (x - y).abs() <= x.abs().max(y.abs()) * 1e-14;
            }
            false
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| approx_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| approx_eq(v, w)))
        }
        (a, b) => a == b,
    }
}

fn same_request(a: &Request, b: &Request) -> bool {
    a == b
        || (a.method == b.method
            && a.id == b.id
            && a.session == b.session
            && a.object == b.object
            && approx_eq(&a.params, &b.params)
            && approx_eq(
                &Value::Object(a.extra.clone()),
                &Value::Object(b.extra.clone()),
            ))
}

fn same_response(a: &Response, b: &Response) -> bool {
    a == b
        || (a.id == b.id
            && a.session == b.session
            && a.error == b.error
            && approx_eq(&a.result, &b.result)
            && approx_eq(&a.params, &b.params))
}

fn check_response(r: &Response) {
    let x = r.extract();
    let _ = r.is_success();
    // `extract` returns one of the two members.
    assert!(x == r.params || x == r.result);
    if let Some(e) = &r.error {
        let _ = e.to_string();
    }
    if let Some(s) = &r.session {
        let _ = s.to_string();
        let _ = s.header_value();
    }
    for style in [JsonStyle::Compact, JsonStyle::Spaced] {
        let text = r.to_json(style);
        let back = Response::from_json(&text).expect("written response must parse");
        assert!(
            same_response(&back, r),
            "{style:?}: {r:?} came back as {back:?}"
        );
        assert_eq!(back.is_success(), r.is_success());
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // The input as the value of members, so the request, push and response paths are
    // reached without the fuzzer first spelling out an envelope.
    for (head, tail) in [
        (
            &br#"{"method":"a.b","id":7,"session":1,"params":"#[..],
            &b"}"[..],
        ),
        (br#"{"id":7,"result":true,"params":"#, b"}"),
        (br#"{"id":7,"error":{"code":"#, b"}}"),
    ] {
        check(&[head, data, tail].concat());
    }
});

fn check(data: &[u8]) {
    match Incoming::from_json(data) {
        Ok(Incoming::Response(r)) => check_response(&r),
        Ok(Incoming::Notification(n)) => {
            let text = JsonStyle::Compact.render(&n.to_value());
            match Incoming::from_json(&text).expect("written push must parse") {
                Incoming::Notification(back) => {
                    assert_eq!(back.method, n.method);
                    assert_eq!(back.id, n.id);
                    assert_eq!(back.session, n.session);
                    assert_eq!(back.callback, n.callback);
                    assert!(approx_eq(&back.params, &n.params));
                }
                other => panic!("push came back as {other:?}"),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(r) = Request::from_json(data) {
        let text = r.to_json();
        let back = Request::from_json(&text).expect("written request must parse");
        assert!(same_request(&back, &r), "{r:?} came back as {back:?}");
        // And it is a fixed point from then on.
        assert_eq!(
            Request::from_json(&back.to_json()).unwrap().method,
            r.method
        );
    }
    if let Ok(r) = Response::from_json(data) {
        check_response(&r);
    }
}
