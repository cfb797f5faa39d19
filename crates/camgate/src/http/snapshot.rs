//! `GET /api/frame.jpeg?src=NAME`: a JPEG of the stream's latest cached keyframe.
//!
//! With a GOP cached the answer is immediate: JPEG cameras return their last picture as is,
//! H.264/H.265 cameras get their cached keyframe decoded by ffmpeg, and that JPEG is kept per
//! stream (keyed by the keyframe) so that further requests within the same GOP are answered
//! from memory. An idle stream is started and the first keyframe awaited (10 s, then 503).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use media::hub::Stream;
use media::{Codec, Frame, MediaKind, TrackInfo};

use super::{ApiError, Ctx, ffmpeg, src_param};

/// How long an idle stream may take to deliver its first keyframe.
const KEYFRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The last decoded snapshot of each stream.
#[derive(Default)]
pub(super) struct SnapshotCache {
    streams: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

/// A JPEG and the keyframe it was decoded from.
struct Cached {
    key: (i64, Instant),
    jpeg: Bytes,
}

impl SnapshotCache {
    /// The cache slot of one stream; its lock also serialises decodes of that stream.
    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        self.streams
            .lock()
            .expect("snapshot cache")
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

pub(super) async fn frame_jpeg(
    State(ctx): State<Ctx>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let name = src_param(query.as_deref())?;
    let stream = ctx.app.hub.get(&name)?;
    let (track, frame) = latest_picture(&stream).await?;
    let jpeg = match &track.codec {
        Codec::Jpeg => frame.data.clone(),
        codec => {
            let Some(format) = ffmpeg::input_format(codec) else {
                return Err(ApiError::unavailable(format!(
                    "stream {name:?} has no picture track ({})",
                    track.codec_name()
                )));
            };
            let key = (frame.ts, frame.received);
            let slot = ctx.snapshots.slot(&name);
            let mut cached = slot.lock().await;
            match cached.as_ref() {
                Some(c) if c.key == key => c.jpeg.clone(),
                _ => {
                    let mut annexb = Vec::with_capacity(frame.data.len() + 128);
                    ffmpeg::annexb_frame(codec, &frame, &mut annexb);
                    let jpeg = ffmpeg::decode_to_jpeg(&ctx.app.ffmpeg, format, annexb).await?;
                    *cached = Some(Cached {
                        key,
                        jpeg: jpeg.clone(),
                    });
                    jpeg
                }
            }
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-cache, no-store"),
        ],
        jpeg,
    )
        .into_response())
}

/// The video track and its most recent decodable picture: the cached keyframe (H.264/H.265) or
/// the last cached JPEG, else the first keyframe of a fresh subscription.
async fn latest_picture(stream: &Arc<Stream>) -> Result<(TrackInfo, Arc<Frame>), ApiError> {
    let gop = stream.gop();
    if !gop.is_empty() {
        // The source runs, so this returns at once; it also counts as demand, keeping a
        // stream that is polled for snapshots warm.
        let tracks = stream.describe().await?;
        let (vi, track) = video_track(stream, &tracks)?;
        let pick = match track.codec {
            Codec::Jpeg => gop.iter().rev().find(|f| f.track == vi),
            _ => gop.iter().find(|f| f.track == vi && f.keyframe),
        };
        if let Some(f) = pick {
            return Ok((track.clone(), f.clone()));
        }
    }
    let wait = async {
        let mut reader = stream.subscribe().await?;
        let tracks = reader.tracks().clone();
        let (vi, track) = video_track(stream, &tracks)?;
        let track = track.clone();
        while let Some(f) = reader.recv().await {
            if f.track == vi && f.keyframe {
                return Ok((track, f));
            }
        }
        Err(ApiError::unavailable(format!(
            "stream {:?} closed before its first keyframe",
            stream.name()
        )))
    };
    match tokio::time::timeout(KEYFRAME_TIMEOUT, wait).await {
        Ok(res) => res,
        Err(_) => {
            let why = stream
                .stats()
                .last_error
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            Err(ApiError::unavailable(format!(
                "stream {:?} delivered no keyframe within {} s{why}",
                stream.name(),
                KEYFRAME_TIMEOUT.as_secs()
            )))
        }
    }
}

/// The first video track, or 503 for an audio-only stream.
pub(super) fn video_track<'a>(
    stream: &Stream,
    tracks: &'a [TrackInfo],
) -> Result<(usize, &'a TrackInfo), ApiError> {
    tracks
        .iter()
        .enumerate()
        .find(|(_, t)| t.kind() == MediaKind::Video)
        .ok_or_else(|| {
            ApiError::unavailable(format!(
                "stream {:?} has no video track (codecs: {})",
                stream.name(),
                tracks
                    .iter()
                    .map(|t| t.codec_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}
