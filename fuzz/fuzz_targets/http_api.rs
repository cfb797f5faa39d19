//! Fuzzes the HTTP API's request handling as a whole: camgate's router (Basic auth and the
//! login back-off, query parsing, every route, JSON bodies) with users configured and one live
//! stream, fed requests made from the input.
//!
//! The input is: a method byte, then the path and query up to the first newline, then the
//! `Authorization` value up to the next newline (`{A}` becomes valid Basic credentials), then
//! the body. A handler that panics fails the run.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use bytes::Bytes;
use camgate::http::{AppState, router};
use camgate_fuzz::{hub_with, runtime};
use futures_util::future::BoxFuture;
use libfuzzer_sys::fuzz_target;
use media::hub::Hub;
use media::{Codec, Frame, Source, SourceError, SourceSession, TrackInfo};
use tower::ServiceExt;

/// A camera of 16×16 JPEG frames (no decoder is needed for pictures of it).
struct Camera;

struct Session;

/// A valid 16×16 baseline JPEG would be large to embed; a minimal SOI..EOI frame is enough for
/// the routes, which pass JPEG through.
const JPEG: &[u8] = &[0xff, 0xd8, 0xff, 0xd9];

impl Source for Camera {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        Box::pin(async { Ok(Box::new(Session) as Box<dyn SourceSession>) })
    }

    fn describe(&self) -> String {
        "fuzz camera".into()
    }
}

impl SourceSession for Session {
    fn tracks(&self) -> Vec<TrackInfo> {
        vec![TrackInfo::new(Codec::Jpeg)]
    }

    fn next_frame(&mut self) -> BoxFuture<'_, Result<Frame, SourceError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            Ok(Frame::new(0, 0, true, Bytes::from_static(JPEG)))
        })
    }
}

fn hub() -> &'static Arc<Hub> {
    static HUB: OnceLock<Arc<Hub>> = OnceLock::new();
    HUB.get_or_init(|| hub_with(Arc::new(Camera)))
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let target = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let auth = String::from_utf8_lossy(parts.next().unwrap_or_default())
        .replace("{A}", "Basic dmlld2VyOnMzY3JldA==");
    let body = parts.next().unwrap_or_default().to_vec();
    let uri = if target.starts_with('/') {
        target
    } else {
        format!("/{target}")
    };
    let mut req = Request::builder()
        .method(METHODS[usize::from(m) % METHODS.len()].clone())
        .uri(uri);
    if !auth.is_empty() {
        req = req.header("authorization", auth);
    }
    let Ok(req) = req.body(Body::from(body)) else {
        return; // not a request hyper would have parsed
    };
    let state = AppState {
        users: vec![("viewer".into(), "s3cret".into())],
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..AppState::new(hub().clone())
    };
    runtime().block_on(async move {
        let resp = router(state).oneshot(req).await;
        let Ok(resp) = resp;
        // Read a little of the body (an MJPEG stream never ends).
        let body = resp.into_body();
        let _ = tokio::time::timeout(
            Duration::from_millis(5),
            axum::body::to_bytes(body, 1 << 20),
        )
        .await;
    });
});
