//! Device control of configured cameras:
//!
//! - `GET /api/cameras/{name}/info`: identity and versions;
//! - `GET|PUT /api/cameras/{name}/config/{section}`: read or write a whole configuration section
//!   (the PUT body is the section's JSON);
//! - `POST /api/cameras/{name}/ptz`: a PTZ request (`{"action":"move","direction":"Left"}`,
//!   `{"action":"preset","op":"goto","index":3}`, `{"action":"absolute","pan":90,"tilt":10}`...);
//! - `POST /api/cameras/{name}/reboot`;
//! - `GET /api/cameras/{name}/events`: server-sent events, one JSON object per event; every
//!   client of a camera shares one event connection to the device.
//!
//! A camera whose kind has no control answers 404 saying so.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, Ctx};
use crate::control::{CameraControl, ControlError, PtzRequest};

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            ControlError::Unavailable(m) => ApiError::unavailable(m),
            ControlError::Device(m) => ApiError::new(StatusCode::BAD_GATEWAY, m),
        }
    }
}

fn control(ctx: &Ctx, name: &str) -> Result<Arc<dyn CameraControl>, ApiError> {
    if let Some(c) = ctx.app.controls.get(name) {
        return Ok(c.clone());
    }
    let msg = if ctx.app.hub.get(name).is_ok() {
        format!("camera {name:?} has no control interface (only DHIP and Dahua P2P cameras do)")
    } else {
        format!("no camera named {name:?}")
    };
    Err(ApiError::new(StatusCode::NOT_FOUND, msg))
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

pub(super) async fn info(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(control(&ctx, &name)?.info().await?))
}

pub(super) async fn get_config(
    State(ctx): State<Ctx>,
    Path((name, section)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(control(&ctx, &name)?.get_config(&section).await?))
}

pub(super) async fn put_config(
    State(ctx): State<Ctx>,
    Path((name, section)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let c = control(&ctx, &name)?;
    let table = parse_body(&body)?;
    if !table.is_object() && !table.is_array() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a configuration section is a JSON object (or a list, one per channel)",
        ));
    }
    c.set_config(&section, table).await?;
    Ok(Json(json!({"ok": true})))
}

pub(super) async fn ptz(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let c = control(&ctx, &name)?;
    let req: PtzRequest = serde_json::from_value(parse_body(&body)?)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad PTZ request: {e}")))?;
    Ok(Json(c.ptz(req).await?))
}

pub(super) async fn reboot(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    control(&ctx, &name)?.reboot().await?;
    Ok(Json(json!({"ok": true})))
}

pub(super) async fn events(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let c = control(&ctx, &name)?;
    let rx = c.events().await?;
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> =
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            let v = match rx.recv().await {
                Ok(v) => v,
                // This client fell behind: say how many it missed and go on.
                Err(RecvError::Lagged(n)) => json!({"type": "lagged", "missed": n}),
                Err(RecvError::Closed) => return None,
            };
            let kind = v["type"].as_str().unwrap_or("event").to_string();
            let data = if kind == "event" {
                v["event"].to_string()
            } else {
                v.to_string()
            };
            Some((Ok(SseEvent::default().event(kind).data(data)), rx))
        }));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
