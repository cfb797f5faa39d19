//! The `dhip://[user:pass@]HOST[:PORT]?channel=0&subtype=0` camera source: the device's
//! RTSP stream at its URL template (Dahua default, ONVIF-flavoured, the ZN OEM path, no path,
//! or a custom one), or, for devices without RTSP (`media = "dhav"`), the live DHAV stream
//! of HTTP RPC_Loadfile demuxed into H.264/H.265 and G.711 frames for the Hub.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dhip::client::ClientConfig;
use dhip::dhav::{AudioCodec, Demuxer, Packet, PacketType, VideoCodec};
use dhip::http::{HttpClient, HttpResponse};
use dhip::rtsp_url::Template;
use futures_util::future::BoxFuture;
use media::codec::nal::{annexb_to_avc, annexb_units};
use media::{
    Codec, Frame, G711Law, Source, SourceError, SourceErrorKind, SourceSession, TrackInfo,
};
use serde::Deserialize;
use tracing::{debug, warn};

use crate::dhipcmd::ptz_policy;

/// Options of a `dhip://` camera.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhipOptions {
    /// User name (also from the URL's userinfo).
    pub username: Option<String>,
    /// Password (also from the URL's userinfo).
    pub password: Option<String>,
    /// The device's RTSP port (554).
    pub rtsp_port: Option<u16>,
    /// The device's web port (80), for DHAV media.
    pub http_port: Option<u16>,
    /// RTSP URL template: dahua, onvif, zn, bare, or a path with {channel}/{channel0}/{subtype}.
    pub rtsp_template: Option<String>,
    /// `rtsp` (default) or `dhav` (HTTP RPC_Loadfile, for devices without RTSP).
    pub media: Option<String>,
    /// PTZ preset argument: arg2 or arg1 (for control).
    pub ptz_preset_arg: Option<String>,
    /// PTZ through a `ptz.factory.instance` object (for control).
    pub ptz_object: Option<bool>,
}

/// Media transport of a `dhip://` camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// The device's RTSP server.
    Rtsp,
    /// HTTP RPC_Loadfile DHAV.
    Dhav,
}

/// A parsed `dhip://` camera: where it is, who logs in, which stream.
#[derive(Clone, Debug)]
pub struct DhipTarget {
    /// Host.
    pub host: String,
    /// DHIP port.
    pub port: u16,
    /// RTSP port.
    pub rtsp_port: u16,
    /// Web port.
    pub http_port: u16,
    /// User.
    pub username: String,
    /// Password.
    pub password: String,
    /// RPC channel (0-based).
    pub channel: u32,
    /// 0 main, 1 sub.
    pub subtype: u32,
    /// RTSP template.
    pub template: Template,
    /// Media transport.
    pub media: MediaKind,
    /// PTZ policy for control.
    pub ptz: dhip::methods::PtzPolicy,
}

impl DhipTarget {
    /// Parses the URL and options, checking every value.
    pub fn parse(url: &str, o: &DhipOptions) -> Result<DhipTarget, String> {
        let u = crate::devurl::DeviceUrl::parse(url)?;
        let (host, port) = split_host_port(&u.target, 5000)
            .ok_or_else(|| format!("bad host or port {:?} in {url:?}", u.target))?;
        let channel = u.channel.unwrap_or(0);
        let subtype = u.subtype.unwrap_or(0);
        let (username, password) = u.credentials(o.username.as_ref(), o.password.as_ref())?;
        let template = Template::parse(o.rtsp_template.as_deref().unwrap_or("dahua"))?;
        let media = match o.media.as_deref().unwrap_or("rtsp") {
            "rtsp" => MediaKind::Rtsp,
            "dhav" => MediaKind::Dhav,
            other => return Err(format!("media {other:?}: expected rtsp or dhav")),
        };
        let ptz = ptz_policy(
            o.ptz_preset_arg.as_deref().unwrap_or("arg2"),
            o.ptz_object.unwrap_or(false),
        )?;
        Ok(DhipTarget {
            host,
            port,
            rtsp_port: o.rtsp_port.unwrap_or(554),
            http_port: o.http_port.unwrap_or(80),
            username,
            password,
            channel,
            subtype,
            template,
            media,
            ptz,
        })
    }

    /// The login configuration.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(&self.username, &self.password)
    }

    /// The RTSP URL (without credentials; the source sends them with Digest).
    pub fn rtsp_url(&self) -> String {
        dhip::rtsp_url::url(
            &self.host,
            self.rtsp_port,
            "",
            "",
            &self.template,
            self.channel,
            self.subtype,
        )
    }
}

/// `host`, `host:port`, `[v6]:port`.
fn split_host_port(s: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if tail.is_empty() => default,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => Some((s.to_string(), default)),
        None if !s.is_empty() => Some((s.to_string(), default)),
        None => None,
    }
}

/// A `dhip://` camera.
pub struct DhipSource {
    target: Arc<DhipTarget>,
}

impl DhipSource {
    /// Builds the source.
    pub fn new(url: &str, opts: &DhipOptions) -> Result<DhipSource, String> {
        Ok(DhipSource {
            target: Arc::new(DhipTarget::parse(url, opts)?),
        })
    }

    /// The parsed target.
    pub fn target(&self) -> &Arc<DhipTarget> {
        &self.target
    }
}

impl Source for DhipSource {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        let t = self.target.clone();
        Box::pin(async move {
            match t.media {
                MediaKind::Rtsp => {
                    let opts = rtsp::source::RtspSourceOptions {
                        username: Some(t.username.clone()),
                        password: Some(t.password.clone()),
                        ..Default::default()
                    };
                    let src = rtsp::source::RtspSource::new(&t.rtsp_url(), opts)?;
                    src.connect().await
                }
                MediaKind::Dhav => {
                    Ok(Box::new(DhavSession::open(t).await?) as Box<dyn SourceSession>)
                }
            }
        })
    }

    fn describe(&self) -> String {
        let t = &self.target;
        match t.media {
            MediaKind::Rtsp => format!("dhip://{}:{} via {}", t.host, t.port, t.rtsp_url()),
            MediaKind::Dhav => format!(
                "dhip://{}:{}?channel={}&subtype={} (DHAV over HTTP port {})",
                t.host, t.port, t.channel, t.subtype, t.http_port
            ),
        }
    }
}

fn src_err(t: &DhipTarget, e: dhip::client::Error) -> SourceError {
    use dhip::client::Error as E;
    let kind = match &e {
        E::Login { .. } => SourceErrorKind::Auth,
        E::Rpc { code: 401, .. } => SourceErrorKind::Auth,
        E::Timeout { .. } => SourceErrorKind::Timeout,
        E::Io { .. } | E::Closed { .. } => SourceErrorKind::Connect,
        _ => SourceErrorKind::Protocol,
    };
    SourceError::new(kind, format!("dhip {}: {e}", t.host))
}

/// How long to wait for the first key frame (it carries the parameter sets).
const FIRST_KEY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the stream may be silent.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A live DHAV stream turned into Hub frames.
struct DhavSession {
    target: Arc<DhipTarget>,
    http: Arc<HttpClient>,
    object: u64,
    body: HttpResponse,
    demux: Demuxer,
    tracks: Vec<TrackInfo>,
    video_codec: VideoCodec,
    audio_track: Option<usize>,
    pending: std::collections::VecDeque<Frame>,
    first_pts: Option<i64>,
    audio_pts0: Option<i64>,
    audio_samples: i64,
    /// The stream was stopped and the login ended by `close` already.
    closed: bool,
}

impl Drop for DhavSession {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let http = self.http.clone();
        let object = self.object;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                http.close_stream(object).await;
                let _ = http.logout().await;
            });
        }
    }
}

fn video_codec_of(codec: VideoCodec, payload: &[u8]) -> Option<Codec> {
    let units = annexb_units(payload);
    match codec {
        VideoCodec::H264(_) => media::codec::h264::codec_from_units(units),
        VideoCodec::H265 => media::codec::h265::codec_from_units(units),
        _ => None,
    }
}

fn audio_codec_of(codec: AudioCodec, rate: u32, channels: u8) -> Option<Codec> {
    let law = match codec {
        AudioCodec::Alaw => G711Law::A,
        AudioCodec::Mulaw(_) => G711Law::U,
        _ => return None,
    };
    Some(Codec::G711 {
        law,
        rate,
        channels,
    })
}

impl DhavSession {
    async fn open(t: Arc<DhipTarget>) -> Result<DhavSession, SourceError> {
        let http = Arc::new(HttpClient::new(&t.host, t.http_port, t.client_config()));
        http.login().await.map_err(|e| src_err(&t, e))?;
        let (object, mut body) = http
            .open_stream(t.channel, t.subtype)
            .await
            .map_err(|e| src_err(&t, e))?;
        // Read until the first key frame, which fixes the video codec and its parameters; an
        // audio packet seen on the way adds the audio track.
        let mut demux = Demuxer::new();
        let mut audio: Option<Codec> = None;
        let mut held: Vec<Packet> = Vec::new();
        let deadline = Instant::now() + FIRST_KEY_TIMEOUT;
        let (video_codec, video) = 'found: loop {
            while let Some(p) = demux.next_packet() {
                if let (PacketType::Audio, Some(ai)) = (p.kind, p.audio)
                    && audio.is_none()
                {
                    audio = audio_codec_of(ai.codec, ai.rate, ai.channels);
                }
                if p.kind == PacketType::VideoKey
                    && let Some(vc) = p.video.and_then(|v| v.codec)
                {
                    match video_codec_of(vc, &p.payload) {
                        Some(c) => {
                            held.push(p);
                            break 'found (vc, c);
                        }
                        None => {
                            return Err(SourceError::new(
                                SourceErrorKind::Protocol,
                                format!(
                                    "dhip {}: DHAV {} key frame without usable parameter sets (payload starts {})",
                                    t.host,
                                    vc.name(),
                                    hex::encode(&p.payload[..p.payload.len().min(16)])
                                ),
                            ));
                        }
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, body.chunk()).await {
                Ok(Ok(Some(c))) => demux.push(&c),
                Ok(Ok(None)) => {
                    return Err(SourceError::new(
                        SourceErrorKind::Ended,
                        format!("dhip {}: the DHAV stream ended before a key frame", t.host),
                    ));
                }
                Ok(Err(e)) => {
                    return Err(SourceError::new(
                        SourceErrorKind::Connect,
                        format!("dhip {}: reading the DHAV stream: {e}", t.host),
                    ));
                }
                Err(_) => {
                    return Err(SourceError::new(
                        SourceErrorKind::Timeout,
                        format!(
                            "dhip {}: no DHAV key frame within {} s",
                            t.host,
                            FIRST_KEY_TIMEOUT.as_secs()
                        ),
                    ));
                }
            }
        };
        let mut tracks = vec![TrackInfo::new(video)];
        let audio_track = audio.map(|a| {
            tracks.push(TrackInfo::new(a));
            1
        });
        let mut s = DhavSession {
            target: t,
            http,
            object,
            body,
            demux,
            tracks,
            video_codec,
            audio_track,
            pending: Default::default(),
            first_pts: None,
            audio_pts0: None,
            audio_samples: 0,
            closed: false,
        };
        for p in held {
            s.convert(p);
        }
        Ok(s)
    }

    /// Turns one DHAV packet into a frame (or nothing, for aux data and unknown codecs).
    fn convert(&mut self, p: Packet) {
        let pts0 = *self.first_pts.get_or_insert(p.pts_ms);
        match p.kind {
            PacketType::VideoKey | PacketType::VideoP | PacketType::VideoB => {
                if let Some(c) = p.video.and_then(|v| v.codec)
                    && c != self.video_codec
                {
                    debug!(host = %self.target.host, "DHAV video codec changed to {}", c.name());
                    return;
                }
                let ts = p.pts_ms.saturating_sub(pts0).saturating_mul(90);
                let data = annexb_to_avc(&p.payload);
                if data.is_empty() {
                    return;
                }
                self.pending
                    .push_back(Frame::new(0, ts, p.kind == PacketType::VideoKey, data));
            }
            PacketType::Audio => {
                let Some(track) = self.audio_track else {
                    return;
                };
                let Some(ai) = p.audio else { return };
                if audio_codec_of(ai.codec, ai.rate, ai.channels).is_none() {
                    return;
                }
                // G.711 timestamps count samples; follow the packet clock, but never go back.
                let rate = i64::from(ai.rate);
                let start = *self.audio_pts0.get_or_insert(p.pts_ms);
                let by_clock = p.pts_ms.saturating_sub(start).saturating_mul(rate) / 1000;
                let ts = by_clock.max(self.audio_samples);
                self.audio_samples =
                    ts.saturating_add(p.payload.len() as i64 / i64::from(ai.channels.max(1)));
                self.pending.push_back(Frame::new(
                    track,
                    ts,
                    true,
                    Bytes::copy_from_slice(&p.payload),
                ));
            }
            _ => {}
        }
    }
}

impl SourceSession for DhavSession {
    fn tracks(&self) -> Vec<TrackInfo> {
        self.tracks.clone()
    }

    /// Stops and destroys the device's stream reader and logs out, waiting for the answers.
    fn close(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        self.closed = true;
        let (http, object) = (self.http.clone(), self.object);
        drop(self);
        Box::pin(async move {
            http.close_stream(object).await;
            let _ = http.logout().await;
        })
    }

    fn next_frame(&mut self) -> BoxFuture<'_, Result<Frame, SourceError>> {
        Box::pin(async move {
            loop {
                if let Some(f) = self.pending.pop_front() {
                    return Ok(f);
                }
                if let Some(p) = self.demux.next_packet() {
                    self.convert(p);
                    continue;
                }
                let host = self.target.host.clone();
                match tokio::time::timeout(READ_TIMEOUT, self.body.chunk()).await {
                    Ok(Ok(Some(c))) => self.demux.push(&c),
                    Ok(Ok(None)) => {
                        return Err(SourceError::new(
                            SourceErrorKind::Ended,
                            format!("dhip {host}: the DHAV stream ended"),
                        ));
                    }
                    Ok(Err(e)) => {
                        warn!(%host, "DHAV stream read failed: {e}");
                        return Err(SourceError::new(
                            SourceErrorKind::Connect,
                            format!("dhip {host}: reading the DHAV stream: {e}"),
                        ));
                    }
                    Err(_) => {
                        return Err(SourceError::new(
                            SourceErrorKind::Timeout,
                            format!("dhip {host}: no DHAV data for {} s", READ_TIMEOUT.as_secs()),
                        ));
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::testsrc::h265::H265Encoder;
    use sim::testsrc::picture::Yuv420;

    /// An AVC-format access unit as Annex B, as DHAV carries it.
    fn annexb(avc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        media::codec::nal::avc_to_annexb_into(avc, &mut out);
        out
    }

    #[test]
    fn h265_key_frames_give_the_track_its_parameter_sets() {
        let mut enc = H265Encoder::new(320, 240, 25);
        let (w, h) = enc.coded_size();
        let f = enc.encode(&Yuv420::new(w, h, 80, 128, 128));
        assert!(f.keyframe);
        let codec = video_codec_of(VideoCodec::H265, &annexb(&f.data)).expect("parameter sets");
        assert_eq!(codec, enc.codec());
        assert!(video_codec_of(VideoCodec::Mjpeg, &annexb(&f.data)).is_none());
    }

    #[test]
    fn g711_audio_codecs_map_and_others_do_not() {
        assert_eq!(
            audio_codec_of(AudioCodec::Alaw, 8000, 1),
            Some(Codec::G711 {
                law: G711Law::A,
                rate: 8000,
                channels: 1
            })
        );
        assert!(matches!(
            audio_codec_of(AudioCodec::Mulaw(0x16), 16000, 1),
            Some(Codec::G711 {
                law: G711Law::U,
                rate: 16000,
                ..
            })
        ));
        assert!(audio_codec_of(AudioCodec::Aac, 48000, 2).is_none());
    }

    #[test]
    fn urls_and_options_become_a_target() {
        let o = DhipOptions {
            rtsp_template: Some("zn".into()),
            ..DhipOptions::default()
        };
        let t = DhipTarget::parse("dhip://u:p@[::1]:37777?channel=1&subtype=1", &o).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 37777));
        assert_eq!(t.rtsp_url(), "rtsp://[::1]:554/H264?ch=2&subtype=1");
        let t = DhipTarget::parse("dhip://u:p@cam", &DhipOptions::default()).unwrap();
        assert_eq!(t.port, 5000);
        assert_eq!(
            t.rtsp_url(),
            "rtsp://cam:554/cam/realmonitor?channel=1&subtype=0"
        );
        let bad = DhipOptions {
            media: Some("hls".into()),
            ..DhipOptions::default()
        };
        assert!(DhipTarget::parse("dhip://u:p@cam", &bad).is_err());
        assert!(DhipTarget::parse("dhip://cam", &DhipOptions::default()).is_err());
    }
}
