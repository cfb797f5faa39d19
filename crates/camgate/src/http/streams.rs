//! `GET /api/streams`: every stream's state and counters as an object keyed by name (as go2rtc
//! returns it), or one stream's with `?src=NAME`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use media::hub::StreamStats;

use super::{ApiError, Ctx, optional_src};

pub(super) async fn streams(
    State(ctx): State<Ctx>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(name) = optional_src(query.as_deref())? {
        let stream = ctx.app.hub.get(&name)?;
        return Ok(Json(stream.stats()).into_response());
    }
    let all: BTreeMap<String, StreamStats> = ctx
        .app
        .hub
        .streams()
        .iter()
        .map(|s| (s.name().to_string(), s.stats()))
        .collect();
    Ok(Json(all).into_response())
}
