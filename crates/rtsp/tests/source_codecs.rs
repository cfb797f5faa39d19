//! `RtspSource` against GStreamer's RTSP server: every supported codec, over TCP and UDP,
//! gives frames in `media::Frame`'s conventions with the right `TrackInfo`s.

mod source_support;

use media::codec::nal::AvcIter;
use media::codec::{h264, h265};
use media::{Codec, Frame, G711Law, MediaKind, TrackInfo};
use rtsp::source::{MediaSelection, RtspSourceOptions, RtspTransport};
use source_support::{GstServer, TestMedia, collect, ffmpeg_file, open};

fn opts(transport: RtspTransport) -> RtspSourceOptions {
    RtspSourceOptions {
        transport,
        ..Default::default()
    }
}

fn frames_of(frames: &[Frame], track: usize) -> Vec<&Frame> {
    frames.iter().filter(|f| f.track == track).collect()
}

/// Timestamps of one track strictly increase.
fn assert_monotonic(frames: &[&Frame], what: &str) {
    for w in frames.windows(2) {
        assert!(
            w[1].ts > w[0].ts,
            "{what}: timestamp went from {} to {}",
            w[0].ts,
            w[1].ts
        );
    }
}

/// Every frame is a well-formed AVC-format access unit, keyframes are flagged and carry
/// their parameter sets, and at least one keyframe arrived.
fn assert_nal_frames(frames: &[&Frame], sps_type: u8, nal_type: fn(&[u8]) -> Option<u8>) {
    let mut keyframes = 0;
    for f in frames {
        let mut it = AvcIter::new(&f.data);
        let units: Vec<&[u8]> = it.by_ref().collect();
        assert!(
            !it.truncated() && !units.is_empty(),
            "malformed AVC frame at ts {}",
            f.ts
        );
        if f.keyframe {
            keyframes += 1;
            assert!(
                units.iter().any(|u| nal_type(u) == Some(sps_type)),
                "keyframe at ts {} lacks its SPS",
                f.ts
            );
        }
    }
    assert!(keyframes >= 1, "no keyframe in {} frames", frames.len());
}

/// Checks the shape of an H.264 + G.711 A-law session.
fn check_h264_pcma(tracks: &[TrackInfo], frames: &[Frame]) {
    assert_eq!(tracks.len(), 2, "{tracks:?}");
    let Codec::H264 { sps, pps } = &tracks[0].codec else {
        panic!("track 0 is {:?}", tracks[0].codec);
    };
    let parsed = h264::Sps::parse(sps).expect("valid SPS");
    assert_eq!((parsed.width, parsed.height), (320, 240));
    assert_eq!(h264::nal_type(pps), Some(h264::NAL_PPS));
    assert_eq!(
        tracks[1].codec,
        Codec::G711 {
            law: G711Law::A,
            rate: 8000,
            channels: 1
        }
    );
    let video = frames_of(frames, 0);
    let audio = frames_of(frames, 1);
    assert!(video.len() >= 50);
    assert_nal_frames(&video, h264::NAL_SPS, h264::nal_type);
    assert_monotonic(&video, "h264");
    assert!(!audio.is_empty(), "no audio frames");
    assert_monotonic(&audio, "pcma");
    assert!(audio.iter().all(|f| f.keyframe && !f.data.is_empty()));
    // 25 fps in a 90 kHz clock.
    let deltas: Vec<i64> = video.windows(2).map(|w| w[1].ts - w[0].ts).collect();
    assert!(deltas.iter().all(|&d| d == 3600), "video deltas {deltas:?}");
}

#[tokio::test]
async fn h264_and_pcma_over_tcp() {
    let server = GstServer::file(TestMedia::H264Pcma).await;
    let mut s = open(&server.url, opts(RtspTransport::Tcp)).await.unwrap();
    let (tracks, frames) = collect(&mut s, 50).await;
    check_h264_pcma(&tracks, &frames);
}

#[tokio::test]
async fn h264_and_pcma_over_udp() {
    let server = GstServer::file(TestMedia::H264Pcma).await;
    let mut s = open(&server.url, opts(RtspTransport::Udp)).await.unwrap();
    let (tracks, frames) = collect(&mut s, 50).await;
    check_h264_pcma(&tracks, &frames);
}

#[tokio::test]
async fn h264_and_aac_give_raw_access_units_and_the_audio_config() {
    let server = GstServer::file(TestMedia::H264Aac).await;
    let mut s = open(&server.url, opts(RtspTransport::Tcp)).await.unwrap();
    let (tracks, frames) = collect(&mut s, 50).await;
    assert!(matches!(tracks[0].codec, Codec::H264 { .. }));
    let Codec::Aac {
        config,
        rate,
        channels,
    } = &tracks[1].codec
    else {
        panic!("track 1 is {:?}", tracks[1].codec);
    };
    assert_eq!((*rate, *channels), (16000, 1));
    // AudioSpecificConfig: AAC-LC (2), 16 kHz (index 8), mono.
    assert_eq!(&config[..2], &[0x14, 0x08], "config {config:02x?}");
    let audio = frames_of(&frames, 1);
    assert!(!audio.is_empty());
    assert_monotonic(&audio, "aac");
    for f in &audio {
        assert!(
            f.data.len() < 2 || !(f.data[0] == 0xff && f.data[1] & 0xf0 == 0xf0),
            "AAC frame has an ADTS header"
        );
    }
    // 1024 samples per AAC frame.
    assert!(audio.windows(2).all(|w| w[1].ts - w[0].ts == 1024));
    let video = frames_of(&frames, 0);
    assert_nal_frames(&video, h264::NAL_SPS, h264::nal_type);
    assert_monotonic(&video, "h264");
}

async fn check_h265(transport: RtspTransport) {
    let server = GstServer::file(TestMedia::H265).await;
    let mut s = open(&server.url, opts(transport)).await.unwrap();
    let (tracks, frames) = collect(&mut s, 50).await;
    assert_eq!(tracks.len(), 1);
    let Codec::H265 { vps, sps, pps } = &tracks[0].codec else {
        panic!("track 0 is {:?}", tracks[0].codec);
    };
    assert_eq!(h265::nal_type(vps), Some(h265::NAL_VPS));
    assert_eq!(h265::nal_type(pps), Some(h265::NAL_PPS));
    let parsed = h265::Sps::parse(sps).expect("valid SPS");
    assert_eq!((parsed.width, parsed.height), (320, 240));
    let video = frames_of(&frames, 0);
    assert_nal_frames(&video, h265::NAL_SPS, h265::nal_type);
    assert!(
        video
            .iter()
            .filter(|f| f.keyframe)
            .all(|f| h265::is_keyframe(&f.data)),
        "a frame flagged key has no IRAP picture"
    );
    assert_monotonic(&video, "h265");
}

#[tokio::test]
async fn h265_over_tcp() {
    check_h265(RtspTransport::Tcp).await;
}

#[tokio::test]
async fn h265_over_udp() {
    check_h265(RtspTransport::Udp).await;
}

async fn check_mjpeg(transport: RtspTransport) {
    let server = GstServer::file(TestMedia::Mjpeg).await;
    let mut s = open(&server.url, opts(transport)).await.unwrap();
    let (tracks, frames) = collect(&mut s, 50).await;
    assert_eq!(tracks, vec![TrackInfo::new(Codec::Jpeg)]);
    assert!(frames.len() >= 50);
    for f in &frames {
        assert!(f.keyframe);
        assert_eq!(&f.data[..2], &[0xff, 0xd8], "JPEG starts with SOI");
        assert_eq!(
            &f.data[f.data.len() - 2..],
            &[0xff, 0xd9],
            "JPEG ends with EOI"
        );
        let info = media::codec::jpeg::parse(&f.data).expect("parseable JPEG");
        assert_eq!((info.width, info.height), (320, 240));
    }
    assert_monotonic(&frames.iter().collect::<Vec<_>>(), "jpeg");
}

#[tokio::test]
async fn mjpeg_over_tcp() {
    check_mjpeg(RtspTransport::Tcp).await;
}

#[tokio::test]
async fn mjpeg_over_udp() {
    check_mjpeg(RtspTransport::Udp).await;
}

#[tokio::test]
async fn media_video_sets_up_only_the_video_track() {
    let server = GstServer::file(TestMedia::H264Pcma).await;
    let options = RtspSourceOptions {
        media: MediaSelection::Video,
        ..Default::default()
    };
    let mut s = open(&server.url, options).await.unwrap();
    let (tracks, frames) = collect(&mut s, 30).await;
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].kind(), MediaKind::Video);
    assert!(frames.iter().all(|f| f.track == 0));
}

#[tokio::test]
async fn media_audio_sets_up_only_the_audio_track() {
    let server = GstServer::file(TestMedia::H264Pcma).await;
    let options = RtspSourceOptions {
        media: MediaSelection::Audio,
        ..Default::default()
    };
    let mut s = open(&server.url, options).await.unwrap();
    let tracks = s.track_infos().to_vec();
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].codec_name(), "pcma");
    for _ in 0..5 {
        let f = s.frame().await.unwrap();
        assert_eq!(f.track, 0);
    }
}

#[tokio::test]
async fn the_session_works_through_the_source_trait() {
    use media::Source;
    let server = GstServer::file(TestMedia::Mjpeg).await;
    let source = rtsp::source::RtspSource::new(&server.url, RtspSourceOptions::default()).unwrap();
    assert_eq!(source.describe(), server.url);
    let mut session = source.connect().await.unwrap();
    assert_eq!(session.tracks(), vec![TrackInfo::new(Codec::Jpeg)]);
    let f = session.next_frame().await.unwrap();
    assert_eq!(f.track, 0);
    drop(session);
    assert!(
        source
            .await_teardown(std::time::Duration::from_secs(5))
            .await,
        "TEARDOWN was not acknowledged"
    );
}

#[tokio::test]
async fn a_mid_stream_resolution_change_updates_the_track() {
    // One MPEG-TS file whose second half has another resolution (TS files join byte-wise), so
    // GStreamer runs a single-branch pipeline and the change reaches the payloader in-band.
    let x264 = |name: &str, source: &str, secs: &str, offset: &str| {
        ffmpeg_file(
            name,
            &[
                "-f",
                "lavfi",
                "-i",
                source,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-bf",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-t",
                secs,
                "-output_ts_offset",
                offset,
            ],
        )
    };
    let big = x264("switch_320.ts", "testsrc=size=320x240:rate=25", "1", "0");
    let small = x264("switch_160.ts", "testsrc=size=160x120:rate=25", "4", "1");
    let joined = big.with_file_name("switch_joined.ts");
    let tmp = big.with_file_name(format!("switch_joined.{}.tmp", std::process::id()));
    let mut bytes = std::fs::read(&big).unwrap();
    bytes.extend(std::fs::read(&small).unwrap());
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &joined).unwrap();
    let server = GstServer::launch(&format!(
        "( filesrc location=\"{}\" ! tsdemux ! h264parse ! rtph264pay name=pay0 pt=96 \
         config-interval=-1 )",
        joined.display()
    ))
    .await;
    let opts = RtspSourceOptions {
        connect_timeout_s: 30.0,
        ..RtspSourceOptions::default()
    };
    let mut s = open(&server.url, opts).await.unwrap();
    let size = |t: &TrackInfo| match &t.codec {
        Codec::H264 { sps, .. } => {
            let p = h264::Sps::parse(sps).unwrap();
            (p.width, p.height)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(size(&s.track_infos()[0]), (320, 240));
    // Generous: the switch comes 1 s in, but a loaded CI machine runs GStreamer slowly.
    let changed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let f = s.frame().await.unwrap();
            if size(&s.track_infos()[0]) == (160, 120) {
                break f;
            }
        }
    })
    .await
    .expect("the new parameters within 30 s");
    assert!(changed.keyframe, "parameters change on a keyframe");
    let mut it = AvcIter::new(&changed.data);
    let sps = it
        .find(|u| h264::nal_type(u) == Some(h264::NAL_SPS))
        .unwrap();
    assert_eq!(
        h264::Sps::parse(sps).unwrap().width,
        160,
        "in-band SPS is the new one"
    );
}
