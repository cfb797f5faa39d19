//! `camgate dump`: record an RTSP camera to a file (`.h264`, `.h265`, `.mjpeg` or fragmented
//! `.mp4`) straight from an `RtspSource`, without a Hub, with a live progress line.
//!
//! Whatever stops the recording (`--duration`, `--frames`, Ctrl-C, the camera hanging up or
//! failing), the file is finished so it plays, and the RTSP session is torn down.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use media::mux::{FileFormat, FileWriter, MuxError};
use media::{SourceError, SourceErrorKind, TrackInfo};
use rtsp::source::{MediaSelection, RtspSource, RtspSourceOptions, RtspTransport};
use thiserror::Error;

/// RTP transport for `--transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpTransport {
    /// RTP interleaved on the RTSP TCP connection.
    Tcp,
    /// RTP over UDP.
    Udp,
}

/// Arguments of `camgate dump`.
#[derive(Clone, Debug, clap::Args)]
pub struct DumpArgs {
    /// Camera URL: rtsp://[user[:password]@]host[:port]/path
    pub url: String,
    /// Output file; its extension picks the format: .h264/.264, .h265/.265/.hevc, .mjpeg, .mp4
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// Stop after this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Stop after this many video frames
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// RTP transport
    #[arg(long, value_enum, default_value_t = DumpTransport::Tcp)]
    pub transport: DumpTransport,
    /// User name (overrides the URL's)
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (overrides the URL's)
    #[arg(short = 'P', long)]
    pub password: Option<String>,
    /// Leave audio out of .mp4 files
    #[arg(long)]
    pub no_audio: bool,
}

/// Why a dump failed.
#[derive(Debug, Error)]
pub enum DumpError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The camera could not be reached, refused us, or failed mid-stream.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The output file could not be created or written.
    #[error("{path}: {source}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        source: MuxError,
    },
    /// Ctrl-C before the stream started; no file was written.
    #[error("interrupted before the stream started")]
    Interrupted,
}

/// Why the recording loop stopped.
enum Stop {
    Duration,
    Frames,
    Interrupted,
    Source(SourceError),
    Output(MuxError),
}

/// Records the camera at `args.url` to `args.output` until a stop condition, then finishes
/// the file and tears the session down.
pub async fn run(args: DumpArgs) -> Result<(), DumpError> {
    let format = FileFormat::from_path(&args.output).ok_or_else(|| {
        DumpError::Usage(format!(
            "{}: unknown output format; use .h264/.264, .h265/.265/.hevc, .mjpeg or .mp4",
            args.output.display()
        ))
    })?;
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(DumpError::Usage(format!(
            "--duration must be a positive number of seconds, not {d}"
        )));
    }
    if args.frames == Some(0) {
        return Err(DumpError::Usage("--frames must be at least 1".into()));
    }
    let audio = format.has_audio() && !args.no_audio;
    let options = RtspSourceOptions {
        transport: match args.transport {
            DumpTransport::Tcp => RtspTransport::Tcp,
            DumpTransport::Udp => RtspTransport::Udp,
        },
        username: args.username.clone(),
        password: args.password.clone(),
        media: if audio {
            MediaSelection::All
        } else {
            MediaSelection::Video
        },
        ..RtspSourceOptions::default()
    };
    let source = RtspSource::new(&args.url, options)?;
    eprintln!("dump: connecting to {}", source.url());

    // SIGINT (Ctrl-C) or SIGTERM: stop and leave a playable file.
    let mut ctrl_c = std::pin::pin!(crate::signals::stop());
    let mut session = tokio::select! {
        r = source.open() => r?,
        _ = &mut ctrl_c => return Err(DumpError::Interrupted),
    };
    let mut tracks: Vec<TrackInfo> = session.track_infos().to_vec();
    let output_err = |source| DumpError::Output {
        path: args.output.clone(),
        source,
    };
    let mut writer = FileWriter::create(&args.output, &tracks, audio).map_err(output_err)?;
    let counted = writer.tracks()[0];
    let names: Vec<String> = writer
        .tracks()
        .iter()
        .map(|&t| format!("{} (track {t})", tracks[t].codec_name()))
        .collect();
    eprintln!(
        "dump: writing {} to {}",
        names.join(" + "),
        args.output.display()
    );

    let start = Instant::now();
    let deadline = args
        .duration
        .map(|d| tokio::time::Instant::from_std(start + Duration::from_secs_f64(d)));
    let mut progress = Progress::new(start);
    let mut frames = 0u64;
    let stop = loop {
        tokio::select! {
            biased;
            _ = &mut ctrl_c => break Stop::Interrupted,
            _ = sleep_until(deadline) => break Stop::Duration,
            r = session.frame() => {
                let frame = match r {
                    Ok(f) => f,
                    Err(e) => break Stop::Source(e),
                };
                if frame.keyframe
                    && let Some(now) = session.track_infos().get(frame.track)
                    && tracks.get(frame.track) != Some(now)
                {
                    writer.update_track(frame.track, now);
                    tracks[frame.track] = now.clone();
                }
                match writer.write_frame(&frame) {
                    Ok(true) if frame.track == counted => frames += 1,
                    Ok(_) => {}
                    Err(e) => break Stop::Output(e),
                }
                progress.update(frames, writer.bytes_written(), false);
                if args.frames.is_some_and(|n| frames >= n) {
                    break Stop::Frames;
                }
            }
        }
    };

    // Finish the file whatever happened, then let the TEARDOWN go out.
    let bytes_before = writer.bytes_written();
    let finished = writer.finish();
    drop(session);
    source.await_teardown(Duration::from_secs(2)).await;
    progress.update(frames, bytes_before, true);
    eprintln!();
    let reason = match &stop {
        Stop::Duration => "duration reached".to_string(),
        Stop::Frames => "frame count reached".to_string(),
        Stop::Interrupted => "interrupted".to_string(),
        Stop::Source(e) if e.kind == SourceErrorKind::Ended => "the camera ended the stream".into(),
        Stop::Source(e) => format!("source failed: {e}"),
        Stop::Output(e) => format!("write failed: {e}"),
    };
    eprintln!(
        "dump: stopped ({reason}); {frames} frames in {}",
        args.output.display()
    );
    let finish_result = finished.map(drop).map_err(output_err);
    match stop {
        Stop::Output(e) => Err(output_err(e)),
        Stop::Source(e) if e.kind != SourceErrorKind::Ended => {
            finish_result?;
            Err(DumpError::Source(e))
        }
        _ => finish_result,
    }
}

/// Sleeps until the deadline, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The `\r`-updated progress line on stderr.
struct Progress {
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(start: Instant) -> Self {
        Progress { start, last: None }
    }

    fn update(&mut self, frames: u64, bytes: u64, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.start).as_secs_f64();
        // Too early for a meaningful rate.
        let fps = if secs >= 0.5 {
            frames as f64 / secs
        } else {
            0.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{frames} frames  {secs:.1} s  {}  {fps:.1} fps   ",
            human_bytes(bytes)
        );
        let _ = err.flush();
    }
}

/// Bytes in B/KiB/MiB/GiB with one decimal.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        dump: DumpArgs,
    }

    #[test]
    fn parses_every_option() {
        let cli = Cli::try_parse_from([
            "dump",
            "rtsp://cam/x",
            "-o",
            "out.mp4",
            "--duration",
            "2.5",
            "--frames",
            "100",
            "--transport",
            "udp",
            "-u",
            "admin",
            "-P",
            "pw",
            "--no-audio",
        ])
        .unwrap();
        let a = cli.dump;
        assert_eq!(a.url, "rtsp://cam/x");
        assert_eq!(a.output, PathBuf::from("out.mp4"));
        assert_eq!(a.duration, Some(2.5));
        assert_eq!(a.frames, Some(100));
        assert_eq!(a.transport, DumpTransport::Udp);
        assert_eq!(a.username.as_deref(), Some("admin"));
        assert_eq!(a.password.as_deref(), Some("pw"));
        assert!(a.no_audio);
    }

    #[test]
    fn human_bytes_scales() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[tokio::test]
    async fn unknown_extensions_and_bad_limits_are_usage_errors() {
        let base = DumpArgs {
            url: "rtsp://127.0.0.1:1/x".into(),
            output: PathBuf::from("out.avi"),
            duration: None,
            frames: None,
            transport: DumpTransport::Tcp,
            username: None,
            password: None,
            no_audio: false,
        };
        assert!(matches!(run(base.clone()).await, Err(DumpError::Usage(_))));
        let zero = DumpArgs {
            output: PathBuf::from("out.mp4"),
            frames: Some(0),
            ..base.clone()
        };
        assert!(matches!(run(zero).await, Err(DumpError::Usage(_))));
        let negative = DumpArgs {
            output: PathBuf::from("out.mp4"),
            duration: Some(-1.0),
            ..base
        };
        assert!(matches!(run(negative).await, Err(DumpError::Usage(_))));
    }
}
