//! The test-pattern JPEG encoder checked against ffmpeg/ffprobe: baseline 4:2:0 JFIF of the
//! display size that decodes to the pattern.

use std::process::{Command, Output};
use std::time::UNIX_EPOCH;

use sim::testsrc::jpeg::JpegPatternEncoder;
use sim::testsrc::pattern::TestPattern;

/// Runs an interop tool, failing with a clear message if it is not installed.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}): install ffmpeg (Debian package `ffmpeg`) to run these tests"
        )
    })
}

#[test]
fn jpeg_is_decodable_yuvj420p_of_the_display_size_and_matches_the_pattern() {
    let mut pattern = TestPattern::new(640, 360).with_label("snap");
    let pic = pattern.render(33, UNIX_EPOCH);
    let jpeg = JpegPatternEncoder::new(640, 360).encode(pic);
    let dir = std::env::temp_dir().join(format!("camgate-testsrc-jpeg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pattern.jpg");
    std::fs::write(&path, &jpeg).unwrap();
    let path = path.to_str().unwrap();

    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,pix_fmt",
            "-of",
            "csv=p=0",
            path,
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mjpeg,640,360,yuvj420p",
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(
        "ffmpeg",
        &[
            "-v", "error", "-xerror", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", "-",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 640 * 360);
    // Full-range decoded luma against the limited-range source, expanded.
    let mut err = 0u64;
    for row in 0..360 {
        for x in 0..640 {
            let src = f64::from(pic.y[row * pic.width + x]);
            let want = ((src - 16.0) * 255.0 / 219.0).clamp(0.0, 255.0);
            err += (f64::from(out.stdout[row * 640 + x]) - want).abs() as u64;
        }
    }
    let mean = err as f64 / (640.0 * 360.0);
    assert!(mean < 3.0, "mean absolute luma error {mean}");
    // The moving block is where the pattern put it (white, 255 after range expansion).
    let (bx, by, side) = pattern.block_rect(33);
    let centre = out.stdout[(by + side / 2) * 640 + bx + side / 2];
    assert!(centre > 240, "block centre luma {centre}");
}

#[test]
fn quality_changes_size_and_stays_baseline() {
    let mut pattern = TestPattern::default();
    let pic = pattern.render(0, UNIX_EPOCH);
    let low = JpegPatternEncoder::new(640, 360)
        .with_quality(30)
        .encode(pic);
    let high = JpegPatternEncoder::new(640, 360)
        .with_quality(95)
        .encode(pic);
    assert!(
        low.len() < high.len(),
        "q30 {} >= q95 {}",
        low.len(),
        high.len()
    );
    for j in [&low, &high] {
        assert!(j.windows(2).any(|m| m == [0xff, 0xc0]), "SOF0 present");
        assert!(!j.windows(2).any(|m| m == [0xff, 0xc2]), "not progressive");
        assert!(!j.windows(2).any(|m| m == [0xff, 0xdd]), "no DRI");
    }
}
