//! The ffmpeg subprocess that turns H.264/H.265 into JPEG, and the Annex B input it reads.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use media::codec::nal::{AvcIter, avc_to_annexb_into};
use media::{Codec, Frame};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::ApiError;

/// How long one snapshot decode may take.
const DECODE_TIMEOUT: Duration = Duration::from_secs(10);

/// The raw input format ffmpeg needs for `codec`, if it is H.264 or H.265.
pub(super) fn input_format(codec: &Codec) -> Option<&'static str> {
    match codec {
        Codec::H264 { .. } => Some("h264"),
        Codec::H265 { .. } => Some("hevc"),
        _ => None,
    }
}

/// Appends `frame` to `out` as Annex B. A keyframe that lacks any of its codec's parameter
/// sets gets the ones from the track (`codec`) in front.
pub(super) fn annexb_frame(codec: &Codec, frame: &Frame, out: &mut Vec<u8>) {
    if frame.keyframe {
        let mut have = [false; 3]; // VPS, SPS, PPS
        for nal in AvcIter::new(&frame.data) {
            let Some(&b0) = nal.first() else { continue };
            match codec {
                Codec::H264 { .. } => match b0 & 0x1f {
                    7 => have[1] = true,
                    8 => have[2] = true,
                    _ => {}
                },
                Codec::H265 { .. } => match (b0 >> 1) & 0x3f {
                    32 => have[0] = true,
                    33 => have[1] = true,
                    34 => have[2] = true,
                    _ => {}
                },
                _ => {}
            }
        }
        let sets: Vec<&Bytes> = match codec {
            Codec::H264 { sps, pps } if !(have[1] && have[2]) => vec![sps, pps],
            Codec::H265 { vps, sps, pps } if !(have[0] && have[1] && have[2]) => {
                vec![vps, sps, pps]
            }
            _ => Vec::new(),
        };
        for ps in sets.into_iter().filter(|p| !p.is_empty()) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(ps);
        }
    }
    avc_to_annexb_into(&frame.data, out);
}

/// The error for a failed spawn: a missing binary says that ffmpeg is needed.
pub(super) fn spawn_error(ffmpeg: &str, e: &std::io::Error) -> ApiError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ApiError::internal(format!(
            "ffmpeg is needed for H.264/H.265 snapshots and MJPEG, and {ffmpeg:?} was not found \
             (install ffmpeg or set the path of the binary)"
        ))
    } else {
        ApiError::internal(format!("cannot start {ffmpeg:?}: {e}"))
    }
}

/// Decodes one Annex B access unit (with its parameter sets) to a JPEG.
pub(super) async fn decode_to_jpeg(
    ffmpeg: &str,
    format: &str,
    annexb: Vec<u8>,
) -> Result<Bytes, ApiError> {
    let mut child = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            format,
            "-i",
            "pipe:0",
        ])
        .args([
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error(ffmpeg, &e))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Write while the output is read, so that neither pipe can fill up and stall the other.
    let writer = tokio::spawn(async move {
        // A write error means ffmpeg exited early; its status and stderr tell why.
        let _ = stdin.write_all(&annexb).await;
        let _ = stdin.shutdown().await;
    });
    let out = tokio::time::timeout(DECODE_TIMEOUT, child.wait_with_output()).await;
    writer.abort();
    let out = match out {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(ApiError::internal(format!("ffmpeg failed: {e}"))),
        Err(_) => {
            return Err(ApiError::internal(format!(
                "ffmpeg did not decode the keyframe within {} s",
                DECODE_TIMEOUT.as_secs()
            )));
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if !out.status.success() || !out.stdout.starts_with(&[0xff, 0xd8]) {
        return Err(ApiError::internal(format!(
            "ffmpeg could not decode the keyframe ({}): {}",
            out.status,
            if stderr.is_empty() {
                "no output"
            } else {
                stderr
            }
        )));
    }
    Ok(Bytes::from(out.stdout))
}

/// Starts a long-running decoder: Annex B `format` on stdin, a JPEG per picture on stdout.
pub(super) fn spawn_mjpeg_encoder(ffmpeg: &str, format: &str) -> Result<Child, ApiError> {
    Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        // Start at once: no probing beyond the first picture, no input buffering.
        .args(["-fflags", "nobuffer", "-flags", "low_delay"])
        .args(["-probesize", "32", "-analyzeduration", "0"])
        .args(["-f", format, "-i", "pipe:0"])
        .args([
            "-fps_mode",
            "passthrough",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "-q:v",
            "5",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error(ffmpeg, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::codec::nal::{annexb_units, avc_from_units};

    fn h264() -> Codec {
        Codec::H264 {
            sps: Bytes::from_static(&[0x67, 1]),
            pps: Bytes::from_static(&[0x68, 2]),
        }
    }

    #[test]
    fn keyframe_without_parameter_sets_gets_them_from_the_track() {
        let idr: &[u8] = &[0x65, 9, 9];
        let f = Frame::new(0, 0, true, avc_from_units([idr]));
        let mut out = Vec::new();
        annexb_frame(&h264(), &f, &mut out);
        assert_eq!(
            annexb_units(&out),
            vec![&[0x67, 1][..], &[0x68, 2][..], idr]
        );
    }

    #[test]
    fn keyframe_with_parameter_sets_is_left_alone() {
        let units: [&[u8]; 3] = [&[0x67, 5], &[0x68, 6], &[0x65, 9]];
        let f = Frame::new(0, 0, true, avc_from_units(units));
        let mut out = Vec::new();
        annexb_frame(&h264(), &f, &mut out);
        assert_eq!(annexb_units(&out), units.to_vec());
    }

    #[test]
    fn h265_keyframe_missing_vps_gets_all_three() {
        let codec = Codec::H265 {
            vps: Bytes::from_static(&[0x40, 1]),
            sps: Bytes::from_static(&[0x42, 1]),
            pps: Bytes::from_static(&[0x44, 1]),
        };
        let units: [&[u8]; 2] = [&[0x42, 7], &[0x26, 1, 9]];
        let f = Frame::new(0, 0, true, avc_from_units(units));
        let mut out = Vec::new();
        annexb_frame(&codec, &f, &mut out);
        assert_eq!(annexb_units(&out).len(), 5);
    }
}
