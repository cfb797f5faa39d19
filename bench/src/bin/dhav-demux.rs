//! DHAV demux throughput: camgate's demuxer against `ffmpeg -f dhav -i FILE -c copy -f null -`
//! on the same file, alternating runs, medians reported as MB/s (file bytes per wall-clock
//! second, file access included for both). camgate runs two ways: streaming (`read` into the
//! demuxer's buffer, one copy, as from a socket) and whole-file (`mmap`, every payload a
//! zero-copy slice of the mapping). ffmpeg's fixed start-up cost is measured on a file of a
//! few packets and reported beside.
//!
//! Without `--file` it builds one: x264 encodes `testsrc2` (1280x720, 25 fps, 4 Mbit/s, one
//! access unit delimiter per picture), each access unit becomes a DHAV packet (key frames with
//! the size and codec records, G.711 audio packets between pictures), repeated until the file
//! reaches `--mb`. ffmpeg must read the whole file back (its frame count is checked).
//!
//! ```sh
//! cargo build --release -p camgate-bench --bin dhav-demux
//! target/release/dhav-demux --mb 512 --runs 5
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bytes::BytesMut;
use clap::Parser;
use dhip::dhav::{
    AudioCodec, Demuxer, PackedDate, PacketSpec, PacketType, VideoCodec, audio_ext, video_ext,
    write_packet,
};

#[derive(Parser, Debug)]
struct Args {
    /// A DHAV file to use instead of the generated one.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Size of the generated file in MB.
    #[arg(long, default_value_t = 512)]
    mb: usize,
    /// Runs of each demuxer (alternating).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where generated data goes.
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
}

fn run(cmd: &mut Command) -> Result<std::process::Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// Splits an Annex B stream with access unit delimiters into access units.
fn access_units(es: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 5 <= es.len() {
        if es[i..i + 4] == [0, 0, 0, 1] && es[i + 4] & 0x1f == 9 {
            starts.push(i);
            i += 5;
        } else {
            i += 1;
        }
    }
    starts.push(es.len());
    starts.windows(2).map(|w| &es[w[0]..w[1]]).collect()
}

fn is_idr(au: &[u8]) -> bool {
    au.windows(5)
        .any(|w| w[..4] == [0, 0, 0, 1] && w[4] & 0x1f == 5)
        || au
            .windows(4)
            .any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
}

fn generate(dir: &Path, mb: usize) -> Result<(PathBuf, u64), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let es = dir.join("dhav-src.h264");
    if !es.exists() {
        run(Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=25",
                "-t",
                "30",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-b:v",
                "4M",
                "-maxrate",
                "4M",
                "-bufsize",
                "2M",
                "-g",
                "50",
                "-bf",
                "0",
                "-x264-params",
                "aud=1",
                "-f",
                "h264",
            ])
            .arg(&es))?;
    }
    let es_bytes = std::fs::read(&es).map_err(|e| e.to_string())?;
    let aus = access_units(&es_bytes);
    let path = dir.join(format!("bench-{mb}mb.dav"));
    let ext = video_ext(VideoCodec::H264(2), 1280, 720, 25);
    let aext = audio_ext(AudioCodec::Alaw, 1, 8000);
    let tone = vec![0xd5u8; 320];
    let mut out = BytesMut::with_capacity(mb << 20);
    let mut frame = 0u32;
    let t0 = 1_715_000_000i64;
    let mut pictures = 0u64;
    while out.len() < mb << 20 {
        for au in &aus {
            if au.len() <= 6 {
                continue;
            }
            let ms_total = u64::from(frame) * 40;
            let key = is_idr(au);
            write_packet(
                &PacketSpec {
                    kind: if key {
                        PacketType::VideoKey
                    } else {
                        PacketType::VideoP
                    },
                    channel: 0,
                    frame_number: frame,
                    date: PackedDate::from_unix(t0 + (ms_total / 1000) as i64),
                    ms: ms_total as u16,
                    ext: if key { &ext } else { &[] },
                    payload: au,
                },
                &mut out,
            );
            write_packet(
                &PacketSpec {
                    kind: PacketType::Audio,
                    channel: 0,
                    frame_number: frame,
                    date: PackedDate::from_unix(t0 + (ms_total / 1000) as i64),
                    ms: ms_total as u16,
                    ext: &aext,
                    payload: &tone,
                },
                &mut out,
            );
            frame += 1;
            pictures += 1;
        }
    }
    std::fs::write(&path, &out).map_err(|e| e.to_string())?;
    Ok((path, pictures))
}

/// Demuxes the file with camgate; returns (seconds, video packets, payload bytes).
fn camgate_run(path: &Path) -> Result<(f64, u64, u64), String> {
    use std::io::Read;
    let t = Instant::now();
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut d = Demuxer::new();
    let mut video = 0u64;
    let mut bytes = 0u64;
    const READ: usize = 4 << 20;
    loop {
        // Read straight into the demuxer's buffer: one copy, like any reader of a file.
        let buf = d.buffer_mut();
        let old = buf.len();
        buf.resize(old + READ, 0);
        let n = file.read(&mut buf[old..]).map_err(|e| e.to_string())?;
        buf.truncate(old + n);
        if n == 0 {
            break;
        }
        while let Some(p) = d.next_packet() {
            if p.kind.is_video() {
                video += 1;
            }
            bytes += p.payload.len() as u64;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    if d.stats().skipped_bytes != 0 {
        return Err(format!("camgate skipped {} bytes", d.stats().skipped_bytes));
    }
    Ok((secs, video, bytes))
}

/// A read-only memory mapping of a file.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and private; nothing writes through it, so sharing the
// pointer between threads is sound.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` come from a successful mmap and are unmapped once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

fn map(path: &Path) -> Result<bytes::Bytes, String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len() as usize;
    if len == 0 {
        return Ok(bytes::Bytes::new());
    }
    // SAFETY: a private read-only mapping of a file we opened; the file is not modified while
    // the benchmark runs.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(format!("mmap failed: {}", std::io::Error::last_os_error()));
    }
    Ok(bytes::Bytes::from_owner(Mapped { ptr, len }))
}

/// Demuxes the mapped file with camgate; returns (seconds, video packets, payload bytes).
fn camgate_mmap_run(path: &Path) -> Result<(f64, u64, u64), String> {
    let t = Instant::now();
    let data = map(path)?;
    let mut all = Demuxer::demux_all(data);
    let mut video = 0u64;
    let mut bytes = 0u64;
    for p in all.by_ref() {
        if p.kind.is_video() {
            video += 1;
        }
        bytes += p.payload.len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    if all.stats().skipped_bytes != 0 {
        return Err(format!(
            "camgate skipped {} bytes",
            all.stats().skipped_bytes
        ));
    }
    Ok((secs, video, bytes))
}

/// Demuxes the file with ffmpeg; returns (seconds, video frames ffmpeg reported).
fn ffmpeg_run(path: &Path) -> Result<(f64, u64), String> {
    let t = Instant::now();
    let out = run(Command::new("ffmpeg")
        .args(["-v", "error", "-nostats", "-f", "dhav", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v",
            "-c",
            "copy",
            "-progress",
            "pipe:1",
            "-f",
            "null",
            "-",
        ]))?;
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let frames = text
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("frame="))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok((secs, frames))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), String> {
    let a = Args::parse();
    let (path, pictures) = match &a.file {
        Some(f) => (f.clone(), 0),
        None => generate(&a.data, a.mb)?,
    };
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    let mb = size as f64 / 1e6;
    let (mut ours, mut mapped, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut our_video, mut their_video) = (0, 0);
    for _ in 0..a.runs.max(1) {
        let (s, v, b) = camgate_run(&path)?;
        ours.push(s);
        our_video = v;
        let (s, v2, b2) = camgate_mmap_run(&path)?;
        if (v2, b2) != (v, b) {
            return Err(format!(
                "mmap run found {v2} pictures / {b2} bytes, read run {v} / {b}"
            ));
        }
        mapped.push(s);
        let (s, f) = ffmpeg_run(&path)?;
        theirs.push(s);
        their_video = f;
    }
    if pictures > 0 && our_video != pictures {
        return Err(format!("camgate found {our_video} of {pictures} pictures"));
    }
    if their_video + 2 < our_video {
        return Err(format!(
            "ffmpeg read {their_video} video frames, camgate {our_video}: not the same work"
        ));
    }
    // ffmpeg's fixed cost (process start, probing), from a file of a few packets.
    let tiny = a.data.join("bench-tiny.dav");
    let data = std::fs::read(&path).map_err(|e| e.to_string())?;
    let mut d = Demuxer::new();
    d.push(&data[..data.len().min(4 << 20)]);
    let mut end = 0;
    for _ in 0..100 {
        match d.next_packet() {
            Some(_) => end = data.len().min(4 << 20) - d.buffered(),
            None => break,
        }
    }
    std::fs::write(&tiny, &data[..end]).map_err(|e| e.to_string())?;
    drop(data);
    let mut fixed = Vec::new();
    for _ in 0..a.runs.max(1) {
        fixed.push(ffmpeg_run(&tiny)?.0);
    }
    let fixed = median(&mut fixed);
    let (o, t) = (median(&mut ours), median(&mut theirs));
    let m = median(&mut mapped);
    let report = serde_json::json!({
        "file": path, "bytes": size, "video_packets": our_video, "ffmpeg_video_frames": their_video,
        "runs": a.runs, "camgate_s": o, "ffmpeg_s": t,
        "camgate_mb_s": mb / o, "ffmpeg_mb_s": mb / t, "ratio": t / o,
        "ffmpeg_fixed_s": fixed, "ffmpeg_mb_s_without_fixed": mb / (t - fixed).max(1e-9),
        "ratio_without_fixed": (t - fixed) / o,
        "camgate_mmap_s": m, "camgate_mmap_mb_s": mb / m, "mmap_ratio": t / m,
        "mmap_ratio_without_fixed": (t - fixed) / m,
    });
    println!("{report}");
    eprintln!(
        "DHAV demux of {mb:.0} MB ({our_video} pictures), medians of {} runs:\n  \
         ffmpeg {:.0} MB/s ({:.0} MB/s without its {:.0} ms start-up)\n  \
         camgate streaming (read) {:.0} MB/s: {:.1}x ffmpeg ({:.1}x without its start-up)\n  \
         camgate whole file (mmap) {:.0} MB/s: {:.1}x ffmpeg ({:.1}x without its start-up)",
        a.runs,
        mb / t,
        mb / (t - fixed).max(1e-9),
        fixed * 1000.0,
        mb / o,
        t / o,
        (t - fixed) / o,
        mb / m,
        t / m,
        (t - fixed) / m,
    );
    Ok(())
}
