//! The test-pattern H.264 encoder checked against ffmpeg/ffprobe: strictly valid streams,
//! exact (lossless) pictures, correct cropping, small P pictures and a picture that moves.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use media::codec::nal::avc_to_annexb_into;
use sim::testsrc::h264::{EncodedFrame, H264Encoder};
use sim::testsrc::pattern::TestPattern;

/// Runs an interop tool, failing with a clear message if it is not installed.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}): install ffmpeg (Debian package `ffmpeg`) to run these tests"
        )
    })
}

/// A fresh scratch file path for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("camgate-testsrc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The wall clock shown in frame `n` of the test streams (25 fps from 13:14:15.000 UTC).
fn wall(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(13 * 3600 + 14 * 60 + 15) + Duration::from_millis(40 * n)
}

/// Encodes `frames` pictures of the pattern; returns the frames and the Annex B stream.
fn encode(width: usize, height: usize, gop: u32, frames: u64) -> (Vec<EncodedFrame>, Vec<u8>) {
    let mut pattern = TestPattern::new(width, height).with_label("demo");
    let mut enc = H264Encoder::new(width, height, gop);
    let mut annexb = Vec::new();
    let mut out = Vec::new();
    for n in 0..frames {
        let f = enc.encode(pattern.render(n, wall(n)));
        avc_to_annexb_into(&f.data, &mut annexb);
        out.push(f);
    }
    (out, annexb)
}

/// Asserts that ffmpeg decodes `path` with -xerror and prints nothing.
fn assert_decodes_cleanly(path: &str) {
    let out = run(
        "ffmpeg",
        &["-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffmpeg decode of {path} failed ({}): {stderr}",
        out.status
    );
}

/// ffprobe's view of the first video stream: decoded frame count, size, profile and level,
/// as "key=value" pairs.
fn probe(path: &str) -> Vec<(String, String)> {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height,profile,level",
            "-of",
            "default=noprint_wrappers=1",
            path,
        ],
    );
    assert!(
        out.status.success(),
        "ffprobe {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One field of a [`probe`] result.
fn field<'a>(probed: &'a [(String, String)], key: &str) -> &'a str {
    probed
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("ffprobe printed no {key}: {probed:?}"))
}

#[test]
fn stream_of_150_frames_decodes_without_errors_at_640x360() {
    let (frames, annexb) = encode(640, 360, 50, 150);
    let path = scratch("pattern-640x360.h264");
    std::fs::write(&path, &annexb).unwrap();
    let path = path.to_str().unwrap();
    assert_decodes_cleanly(path);
    let probed = probe(path);
    assert_eq!(field(&probed, "nb_read_frames"), "150");
    assert_eq!(field(&probed, "width"), "640");
    assert_eq!(field(&probed, "height"), "360");
    assert_eq!(field(&probed, "profile"), "Constrained Baseline");
    assert_eq!(field(&probed, "level"), "31");
    let keys: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].keyframe).collect();
    assert_eq!(keys, [0, 50, 100]);
}

#[test]
fn decoded_pictures_equal_the_rendered_pattern_exactly() {
    let (w, h) = (640usize, 360usize);
    let (_, annexb) = encode(w, h, 50, 60);
    let path = scratch("lossless.h264");
    std::fs::write(&path, &annexb).unwrap();
    let out = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame_len = w * h * 3 / 2;
    assert_eq!(out.stdout.len(), 60 * frame_len);
    let mut pattern = TestPattern::new(w, h).with_label("demo");
    for n in 0..60u64 {
        let pic = pattern.render(n, wall(n));
        let got = &out.stdout[n as usize * frame_len..(n as usize + 1) * frame_len];
        let (gy, gc) = got.split_at(w * h);
        let (gu, gv) = gc.split_at(w * h / 4);
        for row in 0..h {
            assert_eq!(
                gy[row * w..(row + 1) * w],
                pic.y[row * pic.width..row * pic.width + w],
                "frame {n}, luma row {row}"
            );
        }
        for row in 0..h / 2 {
            let cw = pic.width / 2;
            assert_eq!(
                gu[row * w / 2..(row + 1) * w / 2],
                pic.u[row * cw..row * cw + w / 2]
            );
            assert_eq!(
                gv[row * w / 2..(row + 1) * w / 2],
                pic.v[row * cw..row * cw + w / 2]
            );
        }
    }

    // The block really moves: find the white run on the block's centre row.
    let find_block = |n: usize| {
        let (_, by, side) = pattern.block_rect(n as u64);
        let row = by + side / 2;
        let y = &out.stdout[n * frame_len + row * w..n * frame_len + (row + 1) * w];
        let start = y.iter().position(|&p| p == 235).expect("white block");
        let len = y[start..].iter().take_while(|&&p| p == 235).count();
        (start, len)
    };
    let (x10, len10) = find_block(10);
    let (x20, len20) = find_block(20);
    assert_eq!(
        (x10, len10),
        (pattern.block_rect(10).0, pattern.block_rect(10).2)
    );
    assert_eq!(len20, len10);
    assert!(
        x20 > x10,
        "block at x={x10} in frame 10 and x={x20} in frame 20"
    );
}

#[test]
fn p_frames_are_much_smaller_than_idr_frames() {
    let (frames, _) = encode(640, 360, 50, 100);
    let idr = frames[0].data.len();
    let p: Vec<usize> = frames
        .iter()
        .filter(|f| !f.keyframe)
        .map(|f| f.data.len())
        .collect();
    let avg_p = p.iter().sum::<usize>() / p.len();
    // I_PCM: 384 bytes per macroblock, 40x23 macroblocks.
    assert!(idr > 40 * 23 * 384, "IDR of {idr} bytes");
    assert!(
        avg_p * 20 < idr,
        "average P {avg_p} bytes vs IDR {idr} bytes"
    );
    assert!(p.iter().all(|&s| s > 0 && s < idr / 10));
}

#[test]
fn sizes_not_multiple_of_16_are_cropped_and_multiples_are_not() {
    for (w, h) in [(200usize, 120usize), (320, 240), (648, 362)] {
        let (_, annexb) = encode(w, h, 10, 25);
        let path = scratch(&format!("crop-{w}x{h}.h264"));
        std::fs::write(&path, &annexb).unwrap();
        let path = path.to_str().unwrap();
        assert_decodes_cleanly(path);
        let probed = probe(path);
        let size = (field(&probed, "width"), field(&probed, "height"));
        assert_eq!(size, (&*w.to_string(), &*h.to_string()), "{w}x{h}");
        assert_eq!(field(&probed, "nb_read_frames"), "25", "{w}x{h}");
    }
}

#[test]
fn frame_num_wraps_and_forced_keyframes_decode_cleanly() {
    let mut pattern = TestPattern::new(160, 96);
    let mut enc = H264Encoder::new(160, 96, 0);
    let mut annexb = Vec::new();
    let mut keys = 0;
    for n in 0..600u64 {
        if n == 400 || n == 401 {
            enc.force_keyframe();
        }
        let f = enc.encode(pattern.render(n, wall(n)));
        keys += usize::from(f.keyframe);
        avc_to_annexb_into(&f.data, &mut annexb);
    }
    assert_eq!(keys, 3);
    let path = scratch("wrap.h264");
    std::fs::write(&path, &annexb).unwrap();
    let path = path.to_str().unwrap();
    assert_decodes_cleanly(path);
    assert_eq!(field(&probe(path), "nb_read_frames"), "600");
}
