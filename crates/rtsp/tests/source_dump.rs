//! What `camgate dump` does, end to end: frames from `RtspSource` written with `media::mux`
//! give files that ffprobe counts frame for frame and ffmpeg decodes without error, and a
//! fragmented MP4 cut after any complete fragment still plays.

mod source_support;

use std::path::{Path, PathBuf};

use media::mux::{FileFormat, FileWriter};
use rtsp::source::{MediaSelection, RtspSourceOptions, RtspTransport};
use source_support::{
    GstServer, TestMedia, ffmpeg_decode_errors, ffprobe_codec, ffprobe_count, open, tmp_dir,
};

/// Frames written per track (by stream track index) and the writer's output path.
struct Dumped {
    path: PathBuf,
    /// Stream track index → frames written.
    written: Vec<(usize, u64)>,
}

/// Dumps `video_frames` video frames from a server for `media` into `name`.
async fn dump(media: TestMedia, transport: RtspTransport, name: &str, video_frames: u64) -> Dumped {
    let server = GstServer::file(media).await;
    let path = tmp_dir().join(format!("{}-{name}", std::process::id()));
    let format = FileFormat::from_path(&path).unwrap();
    let options = RtspSourceOptions {
        transport,
        media: if format.has_audio() {
            MediaSelection::All
        } else {
            MediaSelection::Video
        },
        ..Default::default()
    };
    let mut s = open(&server.url, options).await.unwrap();
    let tracks = s.track_infos().to_vec();
    let mut w = FileWriter::create(&path, &tracks, true).unwrap();
    let lead = w.tracks()[0];
    let read = async {
        while w.frames_written(lead) < video_frames {
            let f = s.frame().await.unwrap();
            w.write_frame(&f).unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), read)
        .await
        .expect("frames within 15 s");
    let written = w
        .tracks()
        .iter()
        .map(|&t| (t, w.frames_written(t)))
        .collect();
    w.finish().unwrap();
    Dumped { path, written }
}

fn assert_decodes_cleanly(path: &Path) {
    let errors = ffmpeg_decode_errors(path);
    assert!(errors.is_empty(), "{}: {errors}", path.display());
}

#[tokio::test]
async fn h264_annexb_file_has_every_frame_written() {
    let d = dump(TestMedia::H264Pcma, RtspTransport::Tcp, "out.h264", 100).await;
    assert_eq!(d.written, vec![(0, 100)]);
    assert_eq!(ffprobe_codec(&d.path, "v"), "h264");
    assert_eq!(ffprobe_count(&d.path, "v"), 100);
    assert_decodes_cleanly(&d.path);
}

#[tokio::test]
async fn h265_annexb_file_has_every_frame_written() {
    let d = dump(TestMedia::H265, RtspTransport::Udp, "out.h265", 100).await;
    assert_eq!(d.written, vec![(0, 100)]);
    assert_eq!(ffprobe_codec(&d.path, "v"), "hevc");
    assert_eq!(ffprobe_count(&d.path, "v"), 100);
    assert_decodes_cleanly(&d.path);
}

#[tokio::test]
async fn mp4_with_h264_and_aac_has_every_frame_written() {
    let d = dump(TestMedia::H264Aac, RtspTransport::Tcp, "h264_aac.mp4", 100).await;
    assert_eq!(d.written.len(), 2, "{:?}", d.written);
    assert_eq!(ffprobe_codec(&d.path, "v"), "h264");
    assert_eq!(ffprobe_codec(&d.path, "a"), "aac");
    assert_eq!(ffprobe_count(&d.path, "v"), d.written[0].1);
    assert_eq!(ffprobe_count(&d.path, "a"), d.written[1].1);
    assert_decodes_cleanly(&d.path);
}

#[tokio::test]
async fn mp4_with_h264_and_pcma_has_every_frame_written() {
    let d = dump(
        TestMedia::H264Pcma,
        RtspTransport::Udp,
        "h264_pcma.mp4",
        100,
    )
    .await;
    assert_eq!(d.written.len(), 2, "{:?}", d.written);
    assert_eq!(ffprobe_codec(&d.path, "a"), "pcm_alaw");
    assert_eq!(ffprobe_count(&d.path, "v"), d.written[0].1);
    assert_eq!(ffprobe_count(&d.path, "a"), d.written[1].1);
    assert_decodes_cleanly(&d.path);
}

#[tokio::test]
async fn mp4_with_h265_has_every_frame_written() {
    let d = dump(TestMedia::H265, RtspTransport::Tcp, "h265.mp4", 100).await;
    assert_eq!(d.written, vec![(0, 100)]);
    assert_eq!(ffprobe_codec(&d.path, "v"), "hevc");
    assert_eq!(ffprobe_count(&d.path, "v"), 100);
    assert_decodes_cleanly(&d.path);
}

#[tokio::test]
async fn mp4_with_mjpeg_has_every_frame_written() {
    let d = dump(TestMedia::Mjpeg, RtspTransport::Tcp, "mjpeg.mp4", 60).await;
    assert_eq!(d.written, vec![(0, 60)]);
    assert_eq!(ffprobe_codec(&d.path, "v"), "mjpeg");
    assert_eq!(ffprobe_count(&d.path, "v"), 60);
    assert_decodes_cleanly(&d.path);
}

#[tokio::test]
async fn mjpeg_stream_file_has_every_frame_written() {
    let d = dump(TestMedia::Mjpeg, RtspTransport::Tcp, "out.mjpeg", 60).await;
    assert_eq!(ffprobe_count(&d.path, "v"), 60);
    assert_decodes_cleanly(&d.path);
}

/// Top-level boxes of an MP4 file as (type, start, end).
fn top_level_boxes(data: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        assert!(size >= 8, "bad box size at {pos}");
        out.push((data[pos + 4..pos + 8].try_into().unwrap(), pos, pos + size));
        pos += size;
    }
    assert_eq!(pos, data.len(), "the file ends inside a box");
    out
}

/// The sample count of every `trun` inside a `moof`.
fn moof_samples(moof: &[u8]) -> u64 {
    let mut n = 0;
    let mut i = 0;
    while let Some(p) = moof[i..].windows(4).position(|w| w == b"trun") {
        let at = i + p;
        n += u64::from(u32::from_be_bytes(
            moof[at + 8..at + 12].try_into().unwrap(),
        ));
        i = at + 4;
    }
    n
}

#[tokio::test]
async fn mp4_cut_after_a_fragment_still_plays() {
    let d = dump(TestMedia::H264Pcma, RtspTransport::Tcp, "cut.mp4", 100).await;
    let data = std::fs::read(&d.path).unwrap();
    let boxes = top_level_boxes(&data);
    let kinds: Vec<&[u8; 4]> = boxes.iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds[..2], [b"ftyp", b"moov"]);
    assert!(
        kinds[2..].chunks(2).all(|p| p == [b"moof", b"mdat"]),
        "{kinds:?}"
    );
    assert!(
        boxes.len() >= 8,
        "expected several fragments, got {}",
        boxes.len()
    );

    // Cut right after the second fragment: exactly its frames, no decode errors.
    let (_, moof1_start, moof1_end) = boxes[2];
    let (_, moof2_start, moof2_end) = boxes[4];
    let end = boxes[5].2;
    let samples =
        moof_samples(&data[moof1_start..moof1_end]) + moof_samples(&data[moof2_start..moof2_end]);
    let cut = tmp_dir().join(format!("{}-cut-exact.mp4", std::process::id()));
    std::fs::write(&cut, &data[..end]).unwrap();
    let v = ffprobe_count(&cut, "v");
    let a = ffprobe_count(&cut, "a");
    assert_eq!(v + a, samples, "frames in the first two fragments");
    assert!(v >= 25, "{v} video frames");
    assert_decodes_cleanly(&cut);

    // Cut in the middle of the third fragment: still probes, with at least the complete ones.
    let middle = (boxes[7].1 + boxes[7].2) / 2;
    let cut = tmp_dir().join(format!("{}-cut-middle.mp4", std::process::id()));
    std::fs::write(&cut, &data[..middle]).unwrap();
    assert!(ffprobe_count(&cut, "v") >= v);
}
