//! `GET /api/stream.mjpeg?src=NAME`: the stream as `multipart/x-mixed-replace` JPEGs, the
//! format every browser `<img>` tag and most NVRs read.
//!
//! JPEG cameras pass through: each HTTP reader is a Hub reader and gets the camera's own JPEGs,
//! with the Hub's slow-reader policy.
//!
//! H.264/H.265 cameras are decoded by **one ffmpeg subprocess per stream, shared by all of
//! that stream's MJPEG readers** (a `Transcoder`): the first MJPEG reader starts it, later
//! readers join it and get its next JPEG at once (every JPEG stands alone), and it is killed
//! when the last of them disconnects. Decoding is the only CPU-heavy step in camgate, so N
//! browser tabs on one camera cost one decode, not N. The price is that all readers of a
//! stream get the same quality and rate; a reader that cannot keep up skips JPEGs (a bounded
//! broadcast queue) instead of slowing the others. Per-reader options (size, quality) would
//! need one process per option set, which is where this design would grow.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream;
use media::Codec;
use media::hub::{Reader, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use super::snapshot::video_track;
use super::{ApiError, Ctx, ffmpeg, src_param};

/// The multipart boundary (go2rtc uses the same).
const BOUNDARY: &str = "frame";

/// JPEGs a slow MJPEG reader may fall behind before it skips.
const READER_BACKLOG: usize = 8;

/// A JPEG larger than this is garbage (or not a JPEG): drop it and resynchronise.
const MAX_JPEG: usize = 32 << 20;

pub(super) async fn stream_mjpeg(
    State(ctx): State<Ctx>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let name = src_param(query.as_deref())?;
    let stream = ctx.app.hub.get(&name)?;
    let tracks = stream.describe().await?;
    let (vi, track) = video_track(&stream, &tracks)?;
    let source = match &track.codec {
        Codec::Jpeg => JpegSource::Direct {
            reader: stream.subscribe().await?,
            track: vi,
        },
        codec => {
            let Some(format) = ffmpeg::input_format(codec) else {
                return Err(ApiError::unavailable(format!(
                    "stream {name:?} has no picture track ({})",
                    track.codec_name()
                )));
            };
            let t = ctx
                .transcoders
                .get_or_start(&ctx.app.ffmpeg, &stream, vi, format)?;
            let rx = t.subscribe();
            JpegSource::Decoded { _transcoder: t, rx }
        }
    };
    let body = stream::unfold(
        (source, VecDeque::<Bytes>::new()),
        |(mut source, mut pending)| async move {
            loop {
                if let Some(chunk) = pending.pop_front() {
                    return Some((Ok::<_, Infallible>(chunk), (source, pending)));
                }
                let jpeg = source.next().await?;
                pending.push_back(Bytes::from(format!(
                    "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    jpeg.len()
                )));
                pending.push_back(jpeg);
                pending.push_back(Bytes::from_static(b"\r\n"));
            }
        },
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
            ),
            (header::CACHE_CONTROL, "no-cache, no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Where one MJPEG reader's JPEGs come from.
enum JpegSource {
    /// A JPEG camera: the Hub's frames as they are.
    Direct { reader: Reader, track: usize },
    /// An H.264/H.265 camera: the stream's shared decoder.
    Decoded {
        _transcoder: Arc<Transcoder>,
        rx: broadcast::Receiver<Bytes>,
    },
}

impl JpegSource {
    /// The next JPEG; `None` when the stream or the decoder ended.
    async fn next(&mut self) -> Option<Bytes> {
        match self {
            JpegSource::Direct { reader, track } => loop {
                let f = reader.recv().await?;
                if f.track == *track {
                    return Some(f.data.clone());
                }
            },
            JpegSource::Decoded { rx, .. } => loop {
                match rx.recv().await {
                    Ok(jpeg) => return Some(jpeg),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        debug!(skipped = n, "slow MJPEG reader skipped JPEGs");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
        }
    }
}

/// The running decoders, one per stream, alive while some reader holds them.
#[derive(Default)]
pub(super) struct Transcoders {
    running: Mutex<HashMap<String, Weak<Transcoder>>>,
}

impl Transcoders {
    /// The stream's decoder, started if none runs.
    fn get_or_start(
        &self,
        ffmpeg: &str,
        stream: &Arc<Stream>,
        track: usize,
        format: &'static str,
    ) -> Result<Arc<Transcoder>, ApiError> {
        let mut running = self.running.lock().expect("transcoders");
        if let Some(t) = running.get(stream.name()).and_then(Weak::upgrade)
            && !t.finished.load(Ordering::SeqCst)
            && t.format == format
        {
            return Ok(t);
        }
        running.retain(|_, t| t.strong_count() > 0);
        let t = Arc::new(Transcoder::start(ffmpeg, stream.clone(), track, format)?);
        running.insert(stream.name().to_string(), Arc::downgrade(&t));
        Ok(t)
    }
}

/// One ffmpeg turning a stream's video into JPEGs for every MJPEG reader of that stream.
/// Dropping the last handle kills the process and releases the stream.
pub(super) struct Transcoder {
    format: &'static str,
    template: broadcast::Receiver<Bytes>,
    finished: Arc<AtomicBool>,
    tasks: Vec<AbortHandle>,
}

impl Transcoder {
    fn start(
        ffmpeg: &str,
        stream: Arc<Stream>,
        track: usize,
        format: &'static str,
    ) -> Result<Transcoder, ApiError> {
        let mut child = ffmpeg::spawn_mjpeg_encoder(ffmpeg, format)?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, template) = broadcast::channel(READER_BACKLOG);
        let finished = Arc::new(AtomicBool::new(false));
        let name = stream.name().to_string();
        debug!(stream = %name, "MJPEG decoder started");

        let feeder = tokio::spawn(feed(stream, track, format, stdin));
        let errors = tokio::spawn(tail(stderr));
        let done = finished.clone();
        let errors_abort = errors.abort_handle();
        let reader = tokio::spawn(async move {
            // `child` lives in this task: aborting the task kills the process.
            split_jpegs(stdout, &tx).await;
            done.store(true, Ordering::SeqCst);
            let status = child.wait().await;
            let stderr = errors.await.unwrap_or_default();
            warn!(
                stream = %name,
                status = ?status.ok(),
                "MJPEG decoder ended: {}",
                if stderr.is_empty() { "no message" } else { stderr.trim() }
            );
        });
        Ok(Transcoder {
            format,
            template,
            finished,
            tasks: vec![feeder.abort_handle(), reader.abort_handle(), errors_abort],
        })
    }

    /// A receiver of the JPEGs decoded from now on.
    fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.template.resubscribe()
    }
}

impl Drop for Transcoder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Writes the stream's video frames to ffmpeg as Annex B until either side ends.
async fn feed(stream: Arc<Stream>, track: usize, format: &str, mut stdin: ChildStdin) {
    let mut reader = match stream.subscribe().await {
        Ok(r) => r,
        Err(e) => {
            warn!(stream = %stream.name(), "MJPEG decoder cannot read the stream: {e}");
            return;
        }
    };
    let codec = match reader.tracks().get(track).map(|t| &t.codec) {
        Some(codec) if ffmpeg::input_format(codec) == Some(format) => codec.clone(),
        _ => {
            warn!(stream = %stream.name(), "the stream's video codec changed; MJPEG readers must reconnect");
            return;
        }
    };
    let mut buf = Vec::new();
    while let Some(f) = reader.recv().await {
        if f.track != track {
            continue;
        }
        buf.clear();
        ffmpeg::annexb_frame(&codec, &f, &mut buf);
        if stdin.write_all(&buf).await.is_err() {
            break;
        }
    }
}

/// Reads ffmpeg's stdout and publishes each complete JPEG (split at SOI/EOI) to `tx`.
async fn split_jpegs(mut stdout: ChildStdout, tx: &broadcast::Sender<Bytes>) {
    let mut buf = BytesMut::with_capacity(256 << 10);
    loop {
        loop {
            match find_jpeg(&buf) {
                JpegScan::Complete(n) => {
                    // No receiver (between readers) is not an error.
                    let _ = tx.send(buf.split_to(n).freeze());
                }
                JpegScan::Garbage(n) => {
                    let _ = buf.split_to(n);
                }
                JpegScan::Incomplete => break,
            }
        }
        if buf.len() > MAX_JPEG {
            buf.clear();
        }
        buf.reserve(64 << 10);
        match stdout.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Keeps the last 4 KiB of ffmpeg's stderr (draining it so that ffmpeg never blocks on it).
async fn tail(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 4096 {
            kept.drain(..kept.len() - 4096);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// What the front of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JpegScan {
    /// A whole JPEG of this many bytes (SOI .. EOI).
    Complete(usize),
    /// This many bytes that cannot start a JPEG; drop them.
    Garbage(usize),
    /// A JPEG that needs more bytes (or nothing at all).
    Incomplete,
}

/// Finds the first JPEG at the front of `buf` by walking its markers, so that `FF D9` inside a
/// table or a thumbnail does not end it early.
pub(crate) fn find_jpeg(buf: &[u8]) -> JpegScan {
    let Some(start) = buf.windows(2).position(|w| w == [0xff, 0xd8]) else {
        // Keep a trailing 0xFF: it may be the first half of the next SOI.
        let keep = usize::from(buf.last() == Some(&0xff));
        return match buf.len() - keep {
            0 => JpegScan::Incomplete,
            n => JpegScan::Garbage(n),
        };
    };
    if start > 0 {
        return JpegScan::Garbage(start);
    }
    let mut i = 2;
    loop {
        if i >= buf.len() {
            return JpegScan::Incomplete;
        }
        if buf[i] != 0xff {
            return JpegScan::Garbage(2);
        }
        while i < buf.len() && buf[i] == 0xff {
            i += 1;
        }
        let Some(&marker) = buf.get(i) else {
            return JpegScan::Incomplete;
        };
        i += 1;
        match marker {
            0xd9 => return JpegScan::Complete(i),
            0xd8 | 0x00 => return JpegScan::Garbage(2),
            0x01 | 0xd0..=0xd7 => continue,
            _ => {}
        }
        let Some(len) = buf.get(i..i + 2) else {
            return JpegScan::Incomplete;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 {
            return JpegScan::Garbage(2);
        }
        i += len;
        if marker != 0xda {
            continue;
        }
        // Entropy-coded data: runs until a marker other than stuffing (FF 00) or RSTn.
        loop {
            let Some(p) = buf.get(i..).and_then(|b| b.iter().position(|&b| b == 0xff)) else {
                return JpegScan::Incomplete;
            };
            let j = i + p;
            match buf.get(j + 1) {
                None => return JpegScan::Incomplete,
                Some(0x00) | Some(0xd0..=0xd7) => i = j + 2,
                Some(0xff) => i = j + 1,
                Some(_) => {
                    i = j;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, a DQT whose table holds FF D9, SOS, entropy data with stuffing and RST, EOI.
    fn jpeg() -> Vec<u8> {
        let mut j = vec![0xff, 0xd8];
        j.extend_from_slice(&[0xff, 0xdb, 0x00, 0x06, 0x00, 0xff, 0xd9, 0x01]);
        j.extend_from_slice(&[0xff, 0xda, 0x00, 0x03, 0x01]);
        j.extend_from_slice(&[0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xff, 0xd9]);
        j
    }

    #[test]
    fn jpeg_ends_at_eoi_not_at_ff_d9_inside_a_segment() {
        let j = jpeg();
        let mut buf = j.clone();
        buf.extend_from_slice(&[0xff, 0xd8, 0xff]);
        assert_eq!(find_jpeg(&buf), JpegScan::Complete(j.len()));
    }

    #[test]
    fn partial_jpeg_is_incomplete_at_every_cut() {
        let j = jpeg();
        for cut in 0..j.len() {
            assert_eq!(find_jpeg(&j[..cut]), JpegScan::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_before_soi_is_skipped() {
        let mut buf = vec![1, 2, 3];
        buf.extend_from_slice(&jpeg());
        assert_eq!(find_jpeg(&buf), JpegScan::Garbage(3));
        assert_eq!(find_jpeg(&[1, 2, 0xff]), JpegScan::Garbage(2));
        assert_eq!(find_jpeg(&[0xff, 0xd8, 0x12]), JpegScan::Garbage(2));
    }
}
