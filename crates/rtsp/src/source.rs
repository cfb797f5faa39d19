//! `RtspSource`: an RTSP camera as a `media::Source`, on the retina client.
//!
//! Owns the mapping from retina's streams, parameters and frames to camgate's `TrackInfo`s and
//! `Frame`s, the classification of retina's errors into `SourceErrorKind`s, and the naming of
//! retina's tolerance policies as config options (see [`RtspSourceOptions`]).
//!
//! H.264/H.265 frames come out of retina as 4-byte length-prefixed NAL units with the
//! parameter sets prepended to every keyframe (`FrameFormat` with `FourByteLength` framing and
//! `EachKeyFrame` insertion); MJPEG as complete JPEG files; AAC as raw access units with the
//! AudioSpecificConfig in the track; G.711 as raw samples. Timestamps are retina's `elapsed()`
//! (RTP time since the start of the session, 64-bit, in the track's clock rate).

mod options;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use media::{
    Codec, Frame, G711Law, MediaKind, Source, SourceError, SourceErrorKind, SourceSession,
    TrackInfo,
};
use retina::client::{Demuxed, PlayOptions, SessionGroup, SessionOptions, SetupOptions};
use retina::codec::{
    CodecItem, FrameFormat, ParameterSetInsertion, ParametersRef, VideoParametersCodec,
};
use tracing::{debug, info, warn};
use url::Url;

pub use options::{
    InitialSequenceNumberPolicy, InitialTimestampPolicy, MediaSelection, RtspSourceOptions,
    RtspTransport, SessionIdPolicy, TeardownPolicy, UnassignedChannelDataPolicy,
    UnknownRtcpSsrcPolicy,
};

/// The frame format asked of retina: AVC-style NAL units with in-band parameter sets on
/// every keyframe (`media::Frame`'s convention) and raw AAC.
const FRAME_FORMAT: FrameFormat = FrameFormat {
    h26x_framing: retina::codec::h26x::Framing::FourByteLength,
    parameter_set_insertion: ParameterSetInsertion::EachKeyFrame,
    aac_framing: retina::codec::aac::Framing::Raw,
};

/// How long a new connection waits for the `TEARDOWN` of the previous session.
const STALE_SESSION_WAIT: Duration = Duration::from_secs(2);

/// Frames held while waiting for the video parameters of a camera that omits them from SDP.
const MAX_BUFFERED_FRAMES: usize = 2000;

/// An RTSP camera, dialled with retina.
pub struct RtspSource {
    /// The URL without userinfo; this is what retina sees and what logs show.
    url: Url,
    creds: Option<retina::client::Credentials>,
    options: Arc<RtspSourceOptions>,
    group: Arc<SessionGroup>,
}

impl std::fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspSource")
            .field("url", &self.url.as_str())
            .field(
                "username",
                &self.creds.as_ref().map(|c| c.username.as_str()),
            )
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RtspSource {
    /// A source for `url` (`rtsp://[user[:password]@]host[:port]/path`) with these options.
    ///
    /// Credentials in the URL are used when `options` has none and are removed from the URL
    /// handed to retina and shown by `describe()`.
    pub fn new(url: &str, options: RtspSourceOptions) -> Result<Self, SourceError> {
        let mut parsed = Url::parse(url).map_err(|e| {
            SourceError::new(
                SourceErrorKind::Protocol,
                format!("{}: invalid RTSP URL: {e}", redact_str(url)),
            )
        })?;
        if parsed.scheme() != "rtsp" {
            return Err(SourceError::new(
                SourceErrorKind::Protocol,
                format!(
                    "{}: unsupported scheme {:?}; expected rtsp://",
                    redact_url(&parsed),
                    parsed.scheme()
                ),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(SourceError::new(
                SourceErrorKind::Protocol,
                format!("{}: RTSP URL has no host", redact_url(&parsed)),
            ));
        }
        let url_user = text::percent_decode(parsed.username());
        let url_pass = parsed.password().map(text::percent_decode);
        // Cannot fail for a URL with a host.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);

        let username = options
            .username
            .clone()
            .or_else(|| (!url_user.is_empty()).then_some(url_user));
        let password = options.password.clone().or(url_pass);
        let creds = match (username, password) {
            (Some(username), password) => Some(retina::client::Credentials {
                username,
                password: password.unwrap_or_default(),
            }),
            (None, Some(_)) => {
                return Err(SourceError::new(
                    SourceErrorKind::Auth,
                    format!("{parsed}: a password was given without a user name"),
                ));
            }
            (None, None) => None,
        };
        let group = Arc::new(SessionGroup::default().named(parsed.to_string()));
        Ok(RtspSource {
            url: parsed,
            creds,
            options: Arc::new(options),
            group,
        })
    }

    /// The URL without credentials.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The options in effect.
    pub fn options(&self) -> &RtspSourceOptions {
        &self.options
    }

    /// Connects and returns the concrete session type (`Source::connect` boxes it).
    pub async fn open(&self) -> Result<RtspSession, SourceError> {
        open(
            self.url.clone(),
            self.creds.clone(),
            self.options.clone(),
            self.group.clone(),
        )
        .await
    }

    /// Waits (at most `limit`) for the `TEARDOWN`s of dropped sessions to be attempted.
    ///
    /// Dropping an `RtspSession` starts its `TEARDOWN` in a background task; a program about to
    /// exit calls this so the request actually goes out. Returns false on timeout or failure.
    pub async fn await_teardown(&self, limit: Duration) -> bool {
        match tokio::time::timeout(limit, self.group.await_teardown()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                debug!("{}: TEARDOWN failed: {e}", self.url);
                false
            }
            Err(_) => {
                debug!("{}: TEARDOWN not done after {limit:?}", self.url);
                false
            }
        }
    }
}

impl Source for RtspSource {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        let url = self.url.clone();
        let creds = self.creds.clone();
        let options = self.options.clone();
        let group = self.group.clone();
        Box::pin(async move {
            let session = open(url, creds, options, group).await?;
            Ok(Box::new(session) as Box<dyn SourceSession>)
        })
    }

    fn describe(&self) -> String {
        self.url.to_string()
    }
}

/// One playing RTSP session; dropping it sends `TEARDOWN` per the teardown policy (this needs
/// a tokio runtime, which retina uses for the background request).
pub struct RtspSession {
    url: Url,
    demuxed: Demuxed,
    /// Our track index for each retina stream index (`None`: not set up).
    stream_to_track: Vec<Option<usize>>,
    /// Retina stream index for each of our tracks.
    track_to_stream: Vec<usize>,
    tracks: Vec<TrackInfo>,
    /// Frames read while waiting for parameters, delivered first.
    pending: VecDeque<Frame>,
    read_timeout: Option<Duration>,
    frames: u64,
    /// Where the session's `TEARDOWN` is tracked once it is dropped.
    group: Arc<SessionGroup>,
}

impl std::fmt::Debug for RtspSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspSession")
            .field("url", &self.url.as_str())
            .field("tracks", &self.tracks)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl RtspSession {
    /// The URL (without credentials) of the camera.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The current tracks (a track's codec parameters can change mid-stream).
    pub fn track_infos(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// The server's `a=tool` SDP attribute, if any (e.g. "LIVE555 Streaming Media v2013...").
    pub fn tool(&self) -> Option<String> {
        self.demuxed.tool().map(|t| format!("{t:?}"))
    }

    /// The next frame of any track.
    pub async fn frame(&mut self) -> Result<Frame, SourceError> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(f);
        }
        // One deadline per frame: RTCP and skipped items do not keep a mute camera alive.
        let deadline = self
            .read_timeout
            .map(|limit| (limit, tokio::time::Instant::now() + limit));
        loop {
            // Retina parses what the camera sends; a panic in it is this session's error.
            let next = std::panic::AssertUnwindSafe(self.demuxed.next()).catch_unwind();
            let item = match deadline {
                Some((limit, at)) => match tokio::time::timeout_at(at, next).await {
                    Ok(item) => item,
                    Err(_) => {
                        return Err(SourceError::new(
                            SourceErrorKind::Timeout,
                            format!("{}: no media for {limit:?}", self.url),
                        ));
                    }
                },
                None => next.await,
            };
            let item = match item {
                Ok(item) => item,
                Err(panic) => return Err(retina_panic(&self.url, "reading media", panic)),
            };
            match item {
                None => {
                    return Err(SourceError::new(
                        SourceErrorKind::Ended,
                        format!("{}: the server ended the session", self.url),
                    ));
                }
                Some(Err(e)) => return Err(stream_error(&self.url, &e)),
                Some(Ok(item)) => {
                    if let Some(f) = self.convert(item) {
                        self.frames += 1;
                        return Ok(f);
                    }
                }
            }
        }
    }

    /// Turns a retina item into a frame of one of our tracks, updating track parameters.
    fn convert(&mut self, item: CodecItem) -> Option<Frame> {
        match item {
            CodecItem::VideoFrame(v) => {
                let track = self.stream_to_track.get(v.stream_id()).copied().flatten()?;
                if v.loss() > 0 {
                    debug!(
                        "{}: track {track}: {} RTP packets lost before this frame",
                        self.url,
                        v.loss()
                    );
                }
                if v.has_new_parameters() {
                    self.refresh_parameters(track);
                }
                let keyframe = v.is_random_access_point();
                let ts = v.timestamp().elapsed();
                Some(Frame::new(track, ts, keyframe, Bytes::from(v.into_data())))
            }
            CodecItem::AudioFrame(a) => {
                let track = self.stream_to_track.get(a.stream_id()).copied().flatten()?;
                if a.loss() > 0 {
                    debug!(
                        "{}: track {track}: {} RTP packets lost before this frame",
                        self.url,
                        a.loss()
                    );
                }
                let ts = a.timestamp().elapsed();
                Some(Frame::new(
                    track,
                    ts,
                    true,
                    Bytes::copy_from_slice(a.data()),
                ))
            }
            _ => None,
        }
    }

    /// Re-reads a video track's parameters from retina after a frame announced new ones.
    fn refresh_parameters(&mut self, track: usize) {
        let stream = &self.demuxed.streams()[self.track_to_stream[track]];
        let Some(codec) = codec_of(stream) else {
            return;
        };
        if self.tracks[track].codec != codec {
            let old = &self.tracks[track];
            info!(
                "{}: track {track} ({}) parameters changed: {}",
                self.url,
                old.codec_name(),
                describe_params(stream)
            );
            self.tracks[track] = TrackInfo::new(codec);
        }
    }
}

impl SourceSession for RtspSession {
    fn tracks(&self) -> Vec<TrackInfo> {
        self.tracks.clone()
    }

    fn next_frame(&mut self) -> BoxFuture<'_, Result<Frame, SourceError>> {
        Box::pin(self.frame())
    }

    /// Drops the retina session, which sends `TEARDOWN` per the teardown policy, and waits
    /// for that request to be answered or given up on.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        let (url, group) = (self.url.clone(), self.group.clone());
        drop(self);
        Box::pin(async move {
            if tokio::time::timeout(TEARDOWN_WAIT, group.await_teardown())
                .await
                .is_err()
            {
                debug!("{url}: TEARDOWN not done after {TEARDOWN_WAIT:?}");
            }
        })
    }
}

/// How long closing a session waits for its `TEARDOWN`.
const TEARDOWN_WAIT: Duration = Duration::from_secs(2);

/// Dials, describes, sets up, plays, and waits for every track's parameters.
async fn open(
    url: Url,
    creds: Option<retina::client::Credentials>,
    options: Arc<RtspSourceOptions>,
    group: Arc<SessionGroup>,
) -> Result<RtspSession, SourceError> {
    let limit = secs(options.connect_timeout_s).unwrap_or(Duration::from_secs(3600));
    let stale = group.stale_sessions();
    if stale.num_sessions > 0 {
        // A live555 server with the stale-TCP-session bug would feed the old session's data
        // into the new one; wait (bounded) for the old TEARDOWN or expiry.
        info!(
            "{url}: waiting for {} stale session(s) to be torn down",
            stale.num_sessions
        );
        let wait = limit.min(STALE_SESSION_WAIT);
        if tokio::time::timeout(wait, group.await_stale_sessions(&stale))
            .await
            .is_err()
        {
            debug!("{url}: stale session(s) still pending after {wait:?}; connecting anyway");
        }
    }
    // Retina parses the camera's answers (sdp-types 0.1.8 asserts on some malformed SDP): a
    // panic while connecting is a failed connection, not a crashed process.
    let attempt = std::panic::AssertUnwindSafe(open_inner(url.clone(), creds, &options, group))
        .catch_unwind();
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => Err(retina_panic(&url, "connecting", panic)),
        Err(_) => Err(SourceError::new(
            SourceErrorKind::Timeout,
            format!("{url}: no stream within the connect timeout of {limit:?}"),
        )),
    }
}

async fn open_inner(
    url: Url,
    creds: Option<retina::client::Credentials>,
    options: &RtspSourceOptions,
    group: Arc<SessionGroup>,
) -> Result<RtspSession, SourceError> {
    let mut session_options = SessionOptions::default()
        .creds(creds)
        .session_group(group.clone())
        .teardown(options.teardown_policy.to_retina())
        .unassigned_channel_data(options.unassigned_channel_data_policy.to_retina())
        .session_id(options.session_id_policy.to_retina());
    if let Some(ua) = &options.user_agent {
        session_options = session_options.user_agent(ua.clone());
    }
    let mut session = retina::client::Session::describe(url.clone(), session_options)
        .await
        .map_err(|e| connect_error(&url, "DESCRIBE", &e))?;

    let mut chosen = Vec::new();
    for (i, stream) in session.streams().iter().enumerate() {
        let Some(kind) = supported_kind(stream) else {
            warn!(
                "{url}: skipping stream {i} ({}/{}): not supported",
                stream.media(),
                stream.encoding_name()
            );
            continue;
        };
        let wanted = match options.media {
            MediaSelection::All => true,
            MediaSelection::Video => kind == MediaKind::Video,
            MediaSelection::Audio => kind == MediaKind::Audio,
        };
        if !wanted {
            debug!(
                "{url}: not setting up stream {i} ({}/{}): media = {:?}",
                stream.media(),
                stream.encoding_name(),
                options.media
            );
            continue;
        }
        if kind == MediaKind::Audio && stream.parameters().is_none() {
            // Retina builds audio parameters from SDP when it creates the depacketizer; none
            // means the SDP was unusable (e.g. AAC without a config), and setting it up would
            // fail the whole session.
            warn!(
                "{url}: skipping stream {i} ({}/{}): unusable parameters in SDP",
                stream.media(),
                stream.encoding_name()
            );
            continue;
        }
        chosen.push(i);
    }
    if chosen.is_empty() {
        let offered: Vec<String> = session
            .streams()
            .iter()
            .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
            .collect();
        return Err(SourceError::new(
            SourceErrorKind::Protocol,
            format!(
                "{url}: no usable track (media = {:?}; offered: {})",
                options.media,
                if offered.is_empty() {
                    "nothing".to_string()
                } else {
                    offered.join(", ")
                }
            ),
        ));
    }
    for &i in &chosen {
        let setup = SetupOptions::default()
            .transport(options.transport.to_retina())
            .frame_format(FRAME_FORMAT);
        session
            .setup(i, setup)
            .await
            .map_err(|e| connect_error(&url, "SETUP", &e))?;
    }
    let play = PlayOptions::default()
        .initial_timestamp(options.initial_timestamp_policy.to_retina())
        .initial_seq(options.initial_sequence_number_policy.to_retina())
        .unknown_rtcp_ssrc(options.unknown_rtcp_ssrc_policy.to_retina());
    let playing = session
        .play(play)
        .await
        .map_err(|e| connect_error(&url, "PLAY", &e))?;
    let demuxed = playing
        .demuxed()
        .map_err(|e| connect_error(&url, "PLAY", &e))?;

    let nstreams = demuxed.streams().len();
    let mut stream_to_track = vec![None; nstreams];
    for (t, &s) in chosen.iter().enumerate() {
        stream_to_track[s] = Some(t);
    }
    let mut rtsp = RtspSession {
        url: url.clone(),
        demuxed,
        stream_to_track,
        track_to_stream: chosen.clone(),
        tracks: Vec::new(),
        pending: VecDeque::new(),
        read_timeout: secs(options.read_timeout_s),
        frames: 0,
        group,
    };
    wait_for_parameters(&mut rtsp).await?;
    for (t, info) in rtsp.tracks.iter().enumerate() {
        let stream = &rtsp.demuxed.streams()[rtsp.track_to_stream[t]];
        info!(
            "{url}: track {t}: {} ({}) via {:?}",
            info.codec_name(),
            describe_params(stream),
            options.transport
        );
    }
    Ok(rtsp)
}

/// Fills `rtsp.tracks`, reading (and buffering) frames until every set-up stream has
/// parameters: H.264/H.265 cameras may send their parameter sets only in-band.
async fn wait_for_parameters(rtsp: &mut RtspSession) -> Result<(), SourceError> {
    let ntracks = rtsp.track_to_stream.len();
    let mut codecs: Vec<Option<Codec>> = rtsp
        .track_to_stream
        .iter()
        .map(|&s| codec_of(&rtsp.demuxed.streams()[s]))
        .collect();
    while codecs.iter().any(Option::is_none) {
        let item = match rtsp.demuxed.next().await {
            None => {
                return Err(SourceError::new(
                    SourceErrorKind::Ended,
                    format!(
                        "{}: the server ended the session before sending codec parameters",
                        rtsp.url
                    ),
                ));
            }
            Some(Err(e)) => return Err(stream_error(&rtsp.url, &e)),
            Some(Ok(item)) => item,
        };
        let stream_id = match &item {
            CodecItem::VideoFrame(v) => v.stream_id(),
            CodecItem::AudioFrame(a) => a.stream_id(),
            _ => continue,
        };
        let Some(track) = rtsp.stream_to_track.get(stream_id).copied().flatten() else {
            continue;
        };
        if codecs[track].is_none() {
            codecs[track] = codec_of(&rtsp.demuxed.streams()[stream_id]);
            if codecs[track].is_none() {
                debug!(
                    "{}: track {track}: dropping a frame that precedes the codec parameters",
                    rtsp.url
                );
                continue;
            }
        }
        // Convert without a TrackInfo refresh: tracks are filled in below.
        let frame = match item {
            CodecItem::VideoFrame(v) => Frame::new(
                track,
                v.timestamp().elapsed(),
                v.is_random_access_point(),
                Bytes::from(v.into_data()),
            ),
            CodecItem::AudioFrame(a) => Frame::new(
                track,
                a.timestamp().elapsed(),
                true,
                Bytes::copy_from_slice(a.data()),
            ),
            _ => continue,
        };
        if rtsp.pending.len() >= MAX_BUFFERED_FRAMES {
            return Err(SourceError::new(
                SourceErrorKind::Protocol,
                format!(
                    "{}: no codec parameters for track(s) {:?} after {MAX_BUFFERED_FRAMES} frames",
                    rtsp.url,
                    (0..ntracks)
                        .filter(|&t| codecs[t].is_none())
                        .collect::<Vec<_>>()
                ),
            ));
        }
        rtsp.pending.push_back(frame);
    }
    rtsp.tracks = codecs
        .into_iter()
        .map(|c| TrackInfo::new(c.expect("checked above")))
        .collect();
    Ok(())
}

/// Video or audio for the encodings we turn into frames; `None` for anything else.
fn supported_kind(stream: &retina::client::Stream) -> Option<MediaKind> {
    match (stream.media(), stream.encoding_name()) {
        ("video", "h264" | "h265") | ("video" | "image", "jpeg") => Some(MediaKind::Video),
        ("audio", "mpeg4-generic" | "pcma" | "pcmu") => Some(MediaKind::Audio),
        _ => None,
    }
}

/// The camgate codec for a retina stream, once its parameters are known.
fn codec_of(stream: &retina::client::Stream) -> Option<Codec> {
    match stream.parameters()? {
        ParametersRef::Video(v) => match v.codec_params() {
            VideoParametersCodec::H264 { sps, pps } => Some(Codec::H264 {
                sps: sps.clone(),
                pps: pps.clone(),
            }),
            VideoParametersCodec::H265 { vps, sps, pps } => Some(Codec::H265 {
                vps: vps.clone(),
                sps: sps.clone(),
                pps: pps.clone(),
            }),
            VideoParametersCodec::Jpeg => Some(Codec::Jpeg),
            _ => None,
        },
        ParametersRef::Audio(a) => {
            let channels = u8::try_from(a.channels().get()).unwrap_or(u8::MAX);
            match stream.encoding_name() {
                "mpeg4-generic" => Some(Codec::Aac {
                    config: Bytes::copy_from_slice(a.extra_data()),
                    rate: a.clock_rate(),
                    channels,
                }),
                "pcma" => Some(Codec::G711 {
                    law: G711Law::A,
                    rate: a.clock_rate(),
                    channels,
                }),
                "pcmu" => Some(Codec::G711 {
                    law: G711Law::U,
                    rate: a.clock_rate(),
                    channels,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A short description of a stream's parameters for logs.
fn describe_params(stream: &retina::client::Stream) -> String {
    match stream.parameters() {
        Some(ParametersRef::Video(v)) => {
            let (w, h) = v.pixel_dimensions();
            match v.frame_rate() {
                Some((num, den)) if num > 0 => format!(
                    "{} {w}x{h} {:.2} fps",
                    v.rfc6381_codec(),
                    f64::from(den) / f64::from(num)
                ),
                _ => format!("{} {w}x{h}", v.rfc6381_codec()),
            }
        }
        Some(ParametersRef::Audio(a)) => format!(
            "{} {} Hz, {} channel(s)",
            a.rfc6381_codec().unwrap_or(stream.encoding_name()),
            a.clock_rate(),
            a.channels()
        ),
        _ => stream.encoding_name().to_string(),
    }
}

/// Classifies an error from the connect phase (`DESCRIBE`, `SETUP`, `PLAY`).
fn connect_error(url: &Url, step: &str, e: &retina::Error) -> SourceError {
    let text = e.to_string();
    let kind = match e.status_code() {
        Some(401 | 403) => SourceErrorKind::Auth,
        Some(_) => SourceErrorKind::Protocol,
        None if text.starts_with("Unable to connect") => SourceErrorKind::Connect,
        None if text.starts_with("Timeout") => SourceErrorKind::Timeout,
        None if text.starts_with("Error reading from RTSP peer")
            || text.starts_with("Error writing to RTSP peer") =>
        {
            SourceErrorKind::Connect
        }
        None => SourceErrorKind::Protocol,
    };
    let what = match kind {
        SourceErrorKind::Auth => format!("{step} refused the credentials"),
        SourceErrorKind::Connect => "cannot reach the camera".to_string(),
        SourceErrorKind::Timeout => format!("{step} timed out"),
        _ => format!("{step} failed"),
    };
    SourceError::new(kind, format!("{url}: {what}: {text}"))
}

/// A panic of the RTSP client library on what the camera sent (a parser bug on hostile input).
fn retina_panic(url: &Url, step: &str, panic: Box<dyn std::any::Any + Send>) -> SourceError {
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    SourceError::new(
        SourceErrorKind::Protocol,
        format!(
            "{url}: {step}: the RTSP client (retina) panicked on what the camera sent: {}",
            why.replace('\n', " ")
        ),
    )
}

/// Classifies an error while streaming.
fn stream_error(url: &Url, e: &retina::Error) -> SourceError {
    let text = e.to_string();
    let kind = if text.starts_with("Error reading from RTSP peer")
        || text.starts_with("Error writing to RTSP peer")
    {
        SourceErrorKind::Ended
    } else if text.starts_with("Timeout") {
        SourceErrorKind::Timeout
    } else {
        SourceErrorKind::Protocol
    };
    SourceError::new(kind, format!("{url}: {text}"))
}

/// A positive, finite number of seconds as a `Duration`; `None` for 0, negative or NaN.
fn secs(s: f64) -> Option<Duration> {
    (s.is_finite() && s > 0.0).then(|| Duration::from_secs_f64(s.min(1e9)))
}

/// A URL for messages, without its password.
fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// An unparseable URL for messages: everything between "://" and the last '@' is hidden.
fn redact_str(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, MapDeserializer};

    fn opts_from(pairs: &[(&'static str, &'static str)]) -> Result<RtspSourceOptions, DeError> {
        RtspSourceOptions::deserialize(MapDeserializer::new(
            pairs.iter().map(|&(k, v)| (k, v.into_deserializer())),
        ))
    }

    #[test]
    fn options_default_to_tcp_all_media_and_retina_defaults() {
        let o = opts_from(&[]).unwrap();
        assert_eq!(o, RtspSourceOptions::default());
        assert_eq!(o.transport, RtspTransport::Tcp);
        assert_eq!(o.media, MediaSelection::All);
        assert_eq!(o.connect_timeout_s, 10.0);
    }

    #[test]
    fn options_parse_policy_names() {
        let o = opts_from(&[
            ("transport", "udp"),
            ("session_id_policy", "use_first"),
            ("initial_timestamp_policy", "permissive"),
            ("initial_sequence_number_policy", "ignore_suspicious_values"),
            ("unknown_rtcp_ssrc_policy", "process_packets"),
            ("teardown_policy", "always"),
            ("unassigned_channel_data_policy", "assume_stale_session"),
            ("media", "video"),
        ])
        .unwrap();
        assert_eq!(o.transport, RtspTransport::Udp);
        assert_eq!(o.session_id_policy, SessionIdPolicy::UseFirst);
        assert_eq!(
            o.initial_timestamp_policy,
            InitialTimestampPolicy::Permissive
        );
        assert_eq!(
            o.initial_sequence_number_policy,
            InitialSequenceNumberPolicy::IgnoreSuspiciousValues
        );
        assert_eq!(
            o.unknown_rtcp_ssrc_policy,
            UnknownRtcpSsrcPolicy::ProcessPackets
        );
        assert_eq!(o.teardown_policy, TeardownPolicy::Always);
        assert_eq!(
            o.unassigned_channel_data_policy,
            UnassignedChannelDataPolicy::AssumeStaleSession
        );
        assert_eq!(o.media, MediaSelection::Video);
    }

    #[test]
    fn options_reject_unknown_fields_and_values() {
        assert!(opts_from(&[("tranport", "udp")]).is_err());
        assert!(opts_from(&[("transport", "sctp")]).is_err());
        assert!(opts_from(&[("teardown_policy", "sometimes")]).is_err());
    }

    #[test]
    fn options_debug_hides_the_password() {
        let o = RtspSourceOptions {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn url_credentials_are_taken_and_stripped() {
        let s = RtspSource::new(
            "rtsp://admin:p%40ss@192.0.2.1:554/cam/realmonitor?channel=1",
            RtspSourceOptions::default(),
        )
        .unwrap();
        assert_eq!(
            s.describe(),
            "rtsp://192.0.2.1:554/cam/realmonitor?channel=1"
        );
        let c = s.creds.as_ref().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "p@ss")
        );
    }

    #[test]
    fn option_credentials_override_the_url() {
        let s = RtspSource::new(
            "rtsp://old:old@192.0.2.1/x",
            RtspSourceOptions {
                username: Some("new".into()),
                password: Some("secret".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let c = s.creds.as_ref().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("new", "secret")
        );
        assert!(!s.describe().contains("old"));
    }

    #[test]
    fn bad_urls_are_protocol_errors_without_the_password() {
        let e = RtspSource::new("http://u:pw@host/x", RtspSourceOptions::default()).unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Protocol);
        assert!(!e.message.contains("pw@"), "{}", e.message);
        let e = RtspSource::new("rtsp://u:pw@[::1/x", RtspSourceOptions::default()).unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Protocol);
        assert!(!e.message.contains("pw"), "{}", e.message);
    }

    #[tokio::test]
    async fn an_sdp_that_panics_the_sdp_parser_is_a_protocol_error() {
        // A line without `=` followed by another line made sdp-types 0.1.8 (inside retina's
        // DESCRIBE handling) fail `assert_eq!(line.key, b'm')`: a hostile camera panicked us.
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n\
                   m=video 0 RTP/AVP 96\r\nbad\r\na=rtpmap:96 H264/90000\r\n";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let camera = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let cseq = head
                        .lines()
                        .find_map(|l| l.strip_prefix("CSeq:"))
                        .unwrap_or("1")
                        .trim()
                        .to_string();
                    let answer = if head.starts_with("DESCRIBE") {
                        format!(
                            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n\
                             Content-Length: {}\r\n\r\n{sdp}",
                            sdp.len()
                        )
                    } else {
                        format!(
                            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\
                             Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
                        )
                    };
                    if sock.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        });
        let source = RtspSource::new(
            &format!("rtsp://127.0.0.1:{port}/cam"),
            RtspSourceOptions::default(),
        )
        .unwrap();
        let e = source.open().await.unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Protocol, "{e}");
        assert!(
            e.message.contains("panicked on what the camera sent"),
            "{e}"
        );
        assert!(e.message.contains(&format!("127.0.0.1:{port}/cam")), "{e}");
        camera.abort();
    }

    #[test]
    fn secs_rejects_zero_negative_and_nan() {
        assert_eq!(secs(0.0), None);
        assert_eq!(secs(-1.0), None);
        assert_eq!(secs(f64::NAN), None);
        assert_eq!(secs(1.5), Some(Duration::from_millis(1500)));
    }
}
