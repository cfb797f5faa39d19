//! The test-pattern H.265 encoder checked against ffmpeg/ffprobe: strictly valid streams that
//! decode without a single error, exact (lossless) pictures, correct cropping, small P pictures.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use media::codec::nal::{AvcIter, avc_to_annexb_into};
use sim::testsrc::h265::{EncodedFrame, H265Encoder};
use sim::testsrc::pattern::TestPattern;
use sim::testsrc::picture::Yuv420;

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
    let dir = std::env::temp_dir().join(format!("camgate-testsrc-h265-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The wall clock shown in frame `n` of the test streams (25 fps from 13:14:15.000 UTC).
fn wall(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(13 * 3600 + 14 * 60 + 15) + Duration::from_millis(40 * n)
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

/// ffprobe's view of the first video stream as "key=value" lines.
fn probe(path: &str) -> String {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile,width,height,nb_read_frames",
            "-of",
            "default=noprint_wrappers=1",
            path,
        ],
    );
    assert!(
        out.status.success(),
        "ffprobe {path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Decodes `path` to raw yuv420p at the display size; asserts no errors.
fn decode_yuv(path: &str) -> Vec<u8> {
    let out = run(
        "ffmpeg",
        &[
            "-v", "error", "-xerror", "-i", path, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffmpeg raw decode of {path} failed ({}): {stderr}",
        out.status
    );
    out.stdout
}

/// The display-size (`w` x `h`) yuv420p bytes of a coded picture, as ffmpeg outputs them.
fn cropped(pic: &Yuv420, w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3 / 2);
    for row in 0..h {
        v.extend_from_slice(&pic.y[row * pic.width..row * pic.width + w]);
    }
    for plane in [&pic.u, &pic.v] {
        for row in 0..h / 2 {
            v.extend_from_slice(&plane[row * pic.width / 2..row * pic.width / 2 + w / 2]);
        }
    }
    v
}

/// Writes the Annex B form of `frames` to a scratch file and returns its path.
fn write_annexb(name: &str, frames: &[EncodedFrame]) -> String {
    let mut annexb = Vec::new();
    for f in frames {
        avc_to_annexb_into(&f.data, &mut annexb);
    }
    let path = scratch(name);
    std::fs::write(&path, &annexb).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Asserts that every decoded picture equals its input exactly (luma and chroma).
fn assert_lossless(decoded: &[u8], inputs: &[Vec<u8>], w: usize, h: usize) {
    let size = w * h * 3 / 2;
    assert_eq!(
        decoded.len(),
        size * inputs.len(),
        "decoded {} bytes, expected {} pictures of {w}x{h}",
        decoded.len(),
        inputs.len()
    );
    for (n, input) in inputs.iter().enumerate() {
        let got = &decoded[n * size..(n + 1) * size];
        if got != &input[..] {
            let first = got.iter().zip(input).position(|(a, b)| a != b).unwrap();
            panic!(
                "picture {n} differs from its input at byte {first} (plane offset; luma is {} bytes)",
                w * h
            );
        }
    }
}

#[test]
fn pattern_stream_decodes_without_errors_and_losslessly() {
    let (w, h) = (640, 360);
    let mut pattern = TestPattern::new(w, h).with_label("h265");
    let mut enc = H265Encoder::new(w, h, 50);
    assert_eq!(enc.coded_size(), (640, 368));
    let mut frames = Vec::new();
    let mut inputs = Vec::new();
    let mut encode_time = Duration::ZERO;
    let mut idr_time = Duration::ZERO;
    for n in 0..150 {
        let pic = pattern.render(n, wall(n));
        let t = Instant::now();
        let f = enc.encode(pic);
        let spent = t.elapsed();
        encode_time += spent;
        if f.keyframe {
            idr_time = idr_time.max(spent);
        }
        inputs.push(cropped(pic, w, h));
        frames.push(f);
    }
    let keys: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].keyframe).collect();
    assert_eq!(keys, vec![0, 50, 100], "IDR every 50 pictures");

    // Keyframes carry VPS, SPS, PPS, IDR slice; others one TRAIL_R slice.
    let types =
        |f: &EncodedFrame| -> Vec<u8> { AvcIter::new(&f.data).map(|n| n[0] >> 1).collect() };
    assert_eq!(types(&frames[0]), vec![32, 33, 34, 19]);
    assert_eq!(types(&frames[1]), vec![1]);
    let idr = frames[0].data.len();
    let p: Vec<usize> = frames
        .iter()
        .filter(|f| !f.keyframe)
        .map(|f| f.data.len())
        .collect();
    let avg_p = p.iter().sum::<usize>() / p.len();
    eprintln!(
        "H.265 640x360: IDR {idr} bytes, P avg {avg_p} bytes (max {}), encode {:.2} ms/frame \
         (slowest IDR {:.2} ms)",
        p.iter().max().unwrap(),
        encode_time.as_secs_f64() * 1000.0 / frames.len() as f64,
        idr_time.as_secs_f64() * 1000.0
    );
    assert!(
        avg_p * 10 < idr,
        "P pictures ({avg_p} B) should be far smaller than IDR ({idr} B)"
    );

    let path = write_annexb("pattern.h265", &frames);
    assert_decodes_cleanly(&path);
    let info = probe(&path);
    for want in [
        "codec_name=hevc",
        "profile=Main",
        "width=640",
        "height=360",
        "nb_read_frames=150",
    ] {
        assert!(
            info.lines().any(|l| l == want),
            "ffprobe says:\n{info}\nwanted {want}"
        );
    }
    assert_lossless(&decode_yuv(&path), &inputs, w, h);
}

/// A small deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_blocks_with_forced_keyframes_decode_losslessly() {
    // Noise content, a random third of the CUs changing in each picture (including runs of
    // zero bytes that need emulation prevention), a cropped odd-CTB-count size, a forced
    // keyframe, and gop 0 (no periodic IDR).
    let (w, h) = (170, 142);
    let mut enc = H265Encoder::new(w, h, 0);
    let (cw, ch) = enc.coded_size();
    assert_eq!((cw, ch), (176, 144));
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut pic = Yuv420::new(cw, ch, 0, 0, 0);
    for b in pic
        .y
        .iter_mut()
        .chain(pic.u.iter_mut())
        .chain(pic.v.iter_mut())
    {
        *b = rng.next() as u8;
    }
    let mut frames = Vec::new();
    let mut inputs = Vec::new();
    for n in 0..60 {
        if n > 0 {
            for cy in 0..ch / 16 {
                for cx in 0..cw / 16 {
                    let r = rng.next();
                    if !r.is_multiple_of(3) {
                        continue;
                    }
                    let zero = r.is_multiple_of(7); // an all-zero CU
                    for y in cy * 16..cy * 16 + 16 {
                        for x in cx * 16..cx * 16 + 16 {
                            pic.y[y * cw + x] = if zero { 0 } else { rng.next() as u8 };
                        }
                    }
                    for y in cy * 8..cy * 8 + 8 {
                        for x in cx * 8..cx * 8 + 8 {
                            pic.u[y * cw / 2 + x] = if zero { 0 } else { rng.next() as u8 };
                            pic.v[y * cw / 2 + x] = if zero { 0 } else { rng.next() as u8 };
                        }
                    }
                }
            }
        }
        if n == 37 {
            enc.force_keyframe();
        }
        let f = enc.encode(&pic);
        assert_eq!(f.keyframe, n == 0 || n == 37, "picture {n}");
        inputs.push(cropped(&pic, w, h));
        frames.push(f);
    }
    let path = write_annexb("random.h265", &frames);
    assert_decodes_cleanly(&path);
    let info = probe(&path);
    for want in ["width=170", "height=142", "nb_read_frames=60"] {
        assert!(
            info.lines().any(|l| l == want),
            "ffprobe says:\n{info}\nwanted {want}"
        );
    }
    assert_lossless(&decode_yuv(&path), &inputs, w, h);
}

#[test]
fn unchanged_pictures_are_all_skip_and_tiny() {
    let mut enc = H265Encoder::new(640, 368, 50);
    let pic = Yuv420::new(640, 368, 100, 110, 120);
    let idr = enc.encode(&pic);
    let p = enc.encode(&pic);
    assert!(idr.keyframe && !p.keyframe);
    // 920 skipped CUs cost a few bits each at most once the context has adapted.
    assert!(
        p.data.len() < 64,
        "all-skip P picture is {} bytes",
        p.data.len()
    );
    let path = write_annexb("static.h265", &[idr, p]);
    assert_decodes_cleanly(&path);
    let decoded = decode_yuv(&path);
    assert_lossless(
        &decoded,
        &[cropped(&pic, 640, 368), cropped(&pic, 640, 368)],
        640,
        368,
    );
}

#[test]
fn parameter_sets_are_what_ffmpeg_reports_for_the_stream() {
    let enc = H265Encoder::new(1280, 720, 25);
    assert_eq!(enc.coded_size(), (1280, 720));
    // 1280x720 at 25 fps is a level 3.1 picture size, but an all-PCM picture (1.4 MB) is
    // only within the MinCr access unit limit from level 4.1 on.
    assert_eq!(enc.level_idc(), 123);
    match enc.codec() {
        media::Codec::H265 { vps, sps, pps } => {
            assert_eq!((vps, sps, pps), (enc.vps(), enc.sps(), enc.pps()));
        }
        other => panic!("codec {other:?}"),
    }
}
