//! One named stream: its source lifecycle (on-demand start, idle stop, reconnect, liveness),
//! timestamp continuity across reconnects, the GOP cache and the fan-out to readers.
//!
//! Every timer and timestamp of the lifecycle comes from `tokio::time`, so tests drive it on a
//! paused clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::HubError;
use super::backoff::Backoff;
use super::gop::GopCache;
use super::lease::{Lease, Offered};
use super::reader::{Reader, ReaderShared};
use crate::rtp::interleaved::SharedRtp;
use crate::{Frame, MediaKind, Source, SourceSession, TrackInfo};

/// Tracks a stream takes at most (RTP payload types and interleaved channels are per track).
pub const MAX_TRACKS: usize = 16;

/// How long a source may take to end its session politely (`SourceSession::close`).
const CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// How a stream runs its source and treats its readers.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Dial the source at start and keep it up without readers.
    pub preload: bool,
    /// Stop the source this long after the last reader leaves.
    pub idle_timeout: Duration,
    /// How long a dial (and a describe waiting on it) may take.
    pub start_timeout: Duration,
    /// No frame on the primary (video) track for this long means the session is dead.
    pub video_timeout: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// A session that ran this long resets the backoff.
    pub healthy_after: Duration,
    /// Byte budget of the GOP cache; 0 disables it.
    pub gop_cache_bytes: usize,
    /// Byte budget of each reader's queue.
    pub reader_queue_bytes: usize,
    /// Frame budget of each reader's queue.
    pub reader_queue_frames: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            preload: false,
            idle_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(10),
            video_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(30),
            gop_cache_bytes: 8 << 20,
            reader_queue_bytes: 16 << 20,
            reader_queue_frames: 4096,
        }
    }
}

/// Where a stream's source is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Not running (no demand).
    Idle,
    /// Dialling the source.
    Connecting,
    /// Receiving frames.
    Streaming,
    /// Waiting before the next reconnect.
    Backoff,
    /// Removed or shut down.
    Closed,
}

/// A snapshot of a stream's state and counters, for the API and metrics.
#[derive(Clone, Debug, Serialize)]
pub struct StreamStats {
    /// Stream name.
    pub name: String,
    /// The source's description (no credentials).
    pub source: String,
    /// Lifecycle state.
    pub state: StreamState,
    /// Codec names of the current tracks.
    pub codecs: Vec<String>,
    /// Readers now subscribed.
    pub readers: usize,
    /// Incoming bitrate over the last second, bits/s.
    pub bitrate_bps: u64,
    /// Frames received from the source since start.
    pub frames_in: u64,
    /// Payload bytes received from the source since start.
    pub bytes_in: u64,
    /// Frames readers lost for being too slow (sum over readers, ever).
    pub drops: u64,
    /// Times a reader's queue overflowed and skipped to a keyframe.
    pub overflows: u64,
    /// Sessions started after the first one.
    pub reconnects: u64,
    /// Frames in the GOP cache.
    pub gop_frames: usize,
    /// Bytes in the GOP cache.
    pub gop_bytes: usize,
    /// The last source error, if any.
    pub last_error: Option<String>,
}

#[derive(Clone, Debug)]
enum Tracks {
    Unknown,
    Ready(Arc<[TrackInfo]>),
    Failed(String),
}

#[derive(Clone, Copy, Debug, Default)]
struct TsMap {
    offset: i64,
    last_out: Option<i64>,
    last_wall: Option<Instant>,
    rebase: bool,
}

/// One reader, and its socket while the reader lends it (see [`Lease`]). The leases sit in
/// this flat list so that the fan-out to lent sockets touches nothing else.
struct Entry {
    shared: Arc<ReaderShared>,
    lease: Option<Lease>,
}

impl Entry {
    /// Ends the loan and hands the lease to the reader's task.
    fn give_back(&mut self) {
        if let Some(mut lease) = self.lease.take() {
            lease.end();
            self.shared.give_back(lease);
        }
    }
}

struct Inner {
    state: StreamState,
    running: bool,
    closed: bool,
    readers: Vec<Entry>,
    leases: usize,
    last_demand: Instant,
    gop: GopCache,
    primary: usize,
    primary_is_video: bool,
    ts: Vec<TsMap>,
    last_primary: Instant,
    last_error: Option<String>,
    codecs: Vec<String>,
    sessions: u64,
    frames_in: u64,
    bytes_in: u64,
    drops: u64,
    overflows: u64,
    window_start: Instant,
    window_bytes: u64,
    bitrate_bps: u64,
    /// Stream-wide RTP packetization, once an RTSP server has asked for it.
    shared_rtp: Option<Arc<SharedRtp>>,
}

/// A named stream of the Hub.
pub struct Stream {
    name: String,
    source: Arc<dyn Source>,
    opts: StreamOptions,
    inner: Mutex<Inner>,
    tracks: watch::Sender<Tracks>,
    /// True while the source task runs.
    running: watch::Sender<bool>,
    wake: Notify,
    next_reader: AtomicU64,
}

impl Stream {
    pub(crate) fn new(name: &str, source: Arc<dyn Source>, opts: StreamOptions) -> Arc<Stream> {
        let now = Instant::now();
        Arc::new(Stream {
            name: name.to_string(),
            source,
            inner: Mutex::new(Inner {
                state: StreamState::Idle,
                running: false,
                closed: false,
                readers: Vec::new(),
                shared_rtp: None,
                leases: 0,
                last_demand: now,
                gop: GopCache::new(opts.gop_cache_bytes),
                primary: 0,
                primary_is_video: false,
                ts: Vec::new(),
                last_primary: now,
                last_error: None,
                codecs: Vec::new(),
                sessions: 0,
                frames_in: 0,
                bytes_in: 0,
                drops: 0,
                overflows: 0,
                window_start: now,
                window_bytes: 0,
                bitrate_bps: 0,
            }),
            opts,
            tracks: watch::channel(Tracks::Unknown).0,
            running: watch::channel(false).0,
            wake: Notify::new(),
            next_reader: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("stream lock")
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream's options.
    pub fn options(&self) -> &StreamOptions {
        &self.opts
    }

    /// Lifecycle state now.
    pub fn state(&self) -> StreamState {
        self.lock().state
    }

    /// Starts the source task if it is not running (a no-op once closed).
    pub fn ensure_running(self: &Arc<Self>) {
        let mut inner = self.lock();
        if inner.running || inner.closed {
            return;
        }
        inner.running = true;
        inner.last_demand = Instant::now();
        self.running.send_replace(true);
        drop(inner);
        let me = self.clone();
        tokio::spawn(async move { me.run().await });
    }

    /// Resolves once the source task is not running (at once if it is not).
    pub async fn stopped(&self) {
        let mut rx = self.running.subscribe();
        let _ = rx.wait_for(|r| !*r).await;
    }

    /// The stream's tracks, starting the source if needed and waiting up to `start_timeout`.
    pub async fn describe(self: &Arc<Self>) -> Result<Arc<[TrackInfo]>, HubError> {
        self.lock().leases += 1;
        let res = self.wait_tracks().await;
        let mut inner = self.lock();
        inner.leases -= 1;
        inner.last_demand = Instant::now();
        res
    }

    async fn wait_tracks(self: &Arc<Self>) -> Result<Arc<[TrackInfo]>, HubError> {
        let mut rx = self.tracks.subscribe();
        // A failure recorded before this call belongs to an earlier attempt: wait for the next.
        let stale_failure = matches!(&*rx.borrow_and_update(), Tracks::Failed(_));
        if let Tracks::Ready(t) = &*rx.borrow() {
            return Ok(t.clone());
        }
        self.ensure_running();
        let deadline = Instant::now() + self.opts.start_timeout;
        let mut ignore_failure = stale_failure;
        loop {
            {
                let cur = rx.borrow_and_update();
                match &*cur {
                    Tracks::Ready(t) => return Ok(t.clone()),
                    Tracks::Failed(reason) if !ignore_failure => {
                        return Err(HubError::Unavailable {
                            name: self.name.clone(),
                            reason: reason.clone(),
                        });
                    }
                    _ => {}
                }
            }
            ignore_failure = false;
            if self.lock().closed {
                return Err(HubError::Closed(self.name.clone()));
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(HubError::Closed(self.name.clone())),
                Err(_) => {
                    let reason = self
                        .lock()
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "the source did not start in time".into());
                    return Err(HubError::Unavailable {
                        name: self.name.clone(),
                        reason,
                    });
                }
            }
        }
    }

    /// Subscribes a new reader. It starts with the cached GOP (a keyframe first) or, with no
    /// GOP cached, at the next keyframe.
    pub async fn subscribe(self: &Arc<Self>) -> Result<Reader, HubError> {
        self.lock().leases += 1;
        let tracks = self.wait_tracks().await;
        let mut inner = self.lock();
        inner.leases -= 1;
        inner.last_demand = Instant::now();
        let tracks = tracks?;
        if inner.closed {
            return Err(HubError::Closed(self.name.clone()));
        }
        let id = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ReaderShared::new(
            id,
            self.opts.reader_queue_bytes,
            self.opts.reader_queue_frames,
        ));
        shared.prime(inner.gop.frames());
        inner.readers.push(Entry {
            shared: shared.clone(),
            lease: None,
        });
        drop(inner);
        debug!(stream = %self.name, reader = id, "reader subscribed");
        Ok(Reader {
            stream: self.clone(),
            shared,
            tracks,
        })
    }

    /// The stream's shared RTP packetization, made by `make` on first use. From then on every
    /// frame is packetized once, in stream order, as it arrives.
    /// Frames already in the GOP cache are packetized at once, oldest first, so that a reader
    /// starting from the cache gets them too.
    pub fn shared_rtp(&self, make: impl FnOnce() -> Arc<SharedRtp>) -> Arc<SharedRtp> {
        let mut inner = self.lock();
        if let Some(s) = &inner.shared_rtp {
            return s.clone();
        }
        let shared = make();
        if let Tracks::Ready(tracks) = &*self.tracks.borrow() {
            shared.set_tracks(tracks);
            for f in inner.gop.frames() {
                if let Some(info) = tracks.get(f.track) {
                    shared.prepare(f, info);
                }
            }
        }
        inner.shared_rtp = Some(shared.clone());
        shared
    }

    /// Takes `lease` for the reader, if the reader may lend now (see [`Reader::lend`]).
    pub(crate) fn lend(&self, reader: &ReaderShared, lease: Lease) -> bool {
        let mut inner = self.lock();
        let Some(e) = inner.readers.iter_mut().find(|e| e.shared.id == reader.id) else {
            return false;
        };
        if e.lease.is_some() || lease.wanted() || !reader.may_lend() {
            return false;
        }
        e.lease = Some(lease);
        true
    }

    /// Ends the loan of the reader's socket, if lent (see `ReaderHandle::recall`).
    pub(crate) fn recall(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(e) = inner.readers.iter_mut().find(|e| e.shared.id == id) {
            e.give_back();
        }
    }

    pub(crate) fn remove_reader(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(pos) = inner.readers.iter().position(|e| e.shared.id == id) {
            let r = inner.readers.swap_remove(pos).shared;
            let (dropped, overflows, _) = r.counters();
            debug!(stream = %self.name, reader = id, dropped, overflows, "reader left");
        }
        inner.last_demand = Instant::now();
        drop(inner);
        self.wake.notify_one();
    }

    /// Stops the source and disconnects every reader.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.state = StreamState::Closed;
        for mut e in inner.readers.drain(..) {
            e.give_back();
            e.shared.close();
        }
        drop(inner);
        self.tracks
            .send_replace(Tracks::Failed("stream closed".into()));
        self.wake.notify_one();
    }

    /// State and counters now.
    pub fn stats(&self) -> StreamStats {
        let inner = self.lock();
        let bitrate_bps = if inner.window_start.elapsed() > Duration::from_secs(2) {
            0
        } else {
            inner.bitrate_bps
        };
        StreamStats {
            name: self.name.clone(),
            source: self.source.describe(),
            state: inner.state,
            codecs: inner.codecs.clone(),
            readers: inner.readers.len(),
            bitrate_bps,
            frames_in: inner.frames_in,
            bytes_in: inner.bytes_in,
            drops: inner.drops,
            overflows: inner.overflows,
            reconnects: inner.sessions.saturating_sub(1),
            gop_frames: inner.gop.frames().len(),
            gop_bytes: inner.gop.bytes(),
            last_error: inner.last_error.clone(),
        }
    }

    /// The cached GOP (keyframe first), e.g. for snapshots; empty if none is cached.
    pub fn gop(&self) -> Vec<Arc<Frame>> {
        self.lock().gop.frames().to_vec()
    }

    /// True while someone wants the source running.
    fn demanded(&self, inner: &Inner) -> bool {
        if inner.closed {
            return false;
        }
        self.opts.preload
            || !inner.readers.is_empty()
            || inner.leases > 0
            || inner.last_demand.elapsed() < self.opts.idle_timeout
    }

    fn set_state(&self, state: StreamState) {
        let mut inner = self.lock();
        if !inner.closed {
            inner.state = state;
        }
    }

    async fn run(self: Arc<Self>) {
        let mut backoff = Backoff::new(self.opts.backoff_min, self.opts.backoff_max);
        loop {
            if !self.demanded(&self.lock()) {
                break;
            }
            self.set_state(StreamState::Connecting);
            let started = Instant::now();
            // A source that panics (a parser bug on hostile input) is a failed session like
            // any other: this camera reconnects, and no other camera notices.
            let attempt = async {
                match tokio::time::timeout(self.opts.start_timeout, self.source.connect()).await {
                    Ok(Ok(mut session)) => {
                        let result = self.run_session(&mut session).await;
                        if result.is_ok() {
                            // Demand ended (or the stream closed): end the camera session
                            // politely. A failed session is just dropped.
                            if tokio::time::timeout(CLOSE_LIMIT, session.close())
                                .await
                                .is_err()
                            {
                                debug!(stream = %self.name, "the source did not close within {CLOSE_LIMIT:?}");
                            }
                        }
                        result
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "connect timed out after {:?}",
                        self.opts.start_timeout
                    )),
                }
            };
            let result = match std::panic::AssertUnwindSafe(attempt).catch_unwind().await {
                Ok(r) => r,
                Err(_) => Err("the source panicked (a bug; reported above)".to_string()),
            };
            match result {
                Ok(()) => break, // stopped for lack of demand
                Err(reason) => {
                    warn!(stream = %self.name, source = %self.source.describe(), "{reason}");
                    {
                        let mut inner = self.lock();
                        inner.last_error = Some(reason.clone());
                        inner.gop.clear();
                    }
                    self.tracks.send_replace(Tracks::Failed(reason));
                }
            }
            if started.elapsed() >= self.opts.healthy_after {
                backoff.reset();
            }
            self.set_state(StreamState::Backoff);
            let delay = backoff.next_delay();
            let until = Instant::now() + delay;
            // Sleep, but give up early when demand disappears.
            while Instant::now() < until {
                if !self.demanded(&self.lock()) {
                    break;
                }
                let left = until.saturating_duration_since(Instant::now());
                let _ =
                    tokio::time::timeout(left.min(Duration::from_secs(1)), self.wake.notified())
                        .await;
            }
        }
        let mut inner = self.lock();
        inner.running = false;
        if !inner.closed {
            inner.state = StreamState::Idle;
        }
        inner.gop.clear();
        inner.codecs.clear();
        let closed = inner.closed;
        // Under the lock, so that a new task started right after cannot be marked stopped.
        self.running.send_replace(false);
        drop(inner);
        if !matches!(&*self.tracks.borrow(), Tracks::Failed(_)) {
            self.tracks.send_replace(Tracks::Unknown);
        }
        if closed {
            info!(stream = %self.name, "source stopped (stream closed)");
        } else {
            info!(stream = %self.name, "source stopped (no readers)");
        }
    }

    /// Runs one session until it fails (`Err`) or demand ends (`Ok`).
    async fn run_session(
        self: &Arc<Self>,
        session: &mut Box<dyn SourceSession>,
    ) -> Result<(), String> {
        let tracks: Arc<[TrackInfo]> = session.tracks().into();
        if tracks.is_empty() {
            return Err("the source offered no usable track".into());
        }
        if tracks.len() > MAX_TRACKS {
            return Err(format!(
                "the source offered {} tracks; a stream has at most {MAX_TRACKS}",
                tracks.len()
            ));
        }
        {
            let mut inner = self.lock();
            inner.primary = tracks
                .iter()
                .position(|t| t.kind() == MediaKind::Video)
                .unwrap_or(0);
            inner.primary_is_video = tracks[inner.primary].kind() == MediaKind::Video;
            inner.ts.resize(tracks.len(), TsMap::default());
            for t in inner.ts.iter_mut() {
                t.rebase = true;
            }
            inner.codecs = tracks.iter().map(|t| t.codec_name().to_string()).collect();
            if let Some(shared) = &inner.shared_rtp {
                shared.set_tracks(&tracks);
            }
            inner.sessions += 1;
            inner.last_primary = Instant::now();
            inner.last_error = None;
            inner.gop.clear();
            if !inner.closed {
                inner.state = StreamState::Streaming;
            }
        }
        info!(stream = %self.name, codecs = ?self.lock().codecs, "source connected");
        self.tracks.send_replace(Tracks::Ready(tracks.clone()));
        let check_every = Duration::from_millis(250);
        loop {
            tokio::select! {
                res = session.next_frame() => {
                    let frame = res.map_err(|e| e.to_string())?;
                    if frame.track >= tracks.len() {
                        return Err(format!("source sent a frame for unknown track {}", frame.track));
                    }
                    self.push(frame, &tracks);
                }
                _ = tokio::time::sleep(check_every) => {}
                _ = self.wake.notified() => {}
            }
            let inner = self.lock();
            if !self.demanded(&inner) {
                return Ok(());
            }
            let silent = inner.last_primary.elapsed();
            if silent > self.opts.video_timeout {
                let what = if inner.primary_is_video {
                    "video"
                } else {
                    "media"
                };
                return Err(format!("no {what} for {:.1} s", silent.as_secs_f64()));
            }
        }
    }

    fn push(&self, frame: Frame, tracks: &[TrackInfo]) {
        let mut inner = self.lock();
        let now = Instant::now();
        let rate = tracks[frame.track].clock_rate() as f64;
        let map = &mut inner.ts[frame.track];
        if map.rebase {
            map.offset = match (map.last_out, map.last_wall) {
                (Some(last), Some(wall)) => {
                    let gap = ((now - wall).as_secs_f64() * rate) as i64;
                    last + gap.max(1) - frame.ts
                }
                _ => 0,
            };
            map.rebase = false;
        }
        let ts = frame.ts + map.offset;
        map.last_out = Some(ts);
        map.last_wall = Some(now);
        let frame = Arc::new(frame.with_ts(ts));
        if let Some(shared) = &inner.shared_rtp {
            shared.prepare(&frame, &tracks[frame.track]);
        }

        let len = frame.data.len() as u64;
        inner.frames_in += 1;
        inner.bytes_in += len;
        inner.window_bytes += len;
        let window = inner.window_start.elapsed();
        if window >= Duration::from_secs(1) {
            inner.bitrate_bps = (inner.window_bytes as f64 * 8.0 / window.as_secs_f64()) as u64;
            inner.window_bytes = 0;
            inner.window_start = now;
        }
        let is_primary = frame.track == inner.primary;
        if is_primary {
            inner.last_primary = now;
        }
        let is_sync = is_primary && (frame.keyframe || !inner.primary_is_video);
        inner.gop.push(&frame, is_sync);
        let mut drops = 0;
        let mut overflows = 0;
        for e in inner.readers.iter_mut() {
            if let Some(lease) = &mut e.lease {
                match lease.offer(&frame) {
                    Offered::Done => continue,
                    Offered::Back => {
                        e.give_back();
                        continue;
                    }
                    Offered::BackAndQueue => e.give_back(),
                }
            }
            let out = e.shared.push(&frame, is_sync);
            drops += out.dropped;
            overflows += u64::from(out.overflowed);
        }
        inner.drops += drops;
        inner.overflows += overflows;
    }
}
