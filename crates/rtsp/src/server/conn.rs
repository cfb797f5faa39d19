//! One RTSP control connection: parses requests (and interleaved data from the client),
//! answers them, and owns the sessions created on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use media::hub::{HubError, Stream};
use media::rtp::interleaved::{MAX_SHARED_TRACKS, SharedRtp};
use media::{Frame, TrackInfo};
use rtsp_types::headers::{self, Transport, Transports};
use rtsp_types::{Method, Request, Response, StatusCode, Version};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::auth::{Attempt, DigestNonce};
use super::framing::{Framer, Item};
use super::sdp::{describe, payload_types};
use super::sender::{Output, Prepared, SenderTrack, run_sender};
use super::udp::{Activity, now_ms};
use super::wire::SharedWire;
use super::{AuthFailure, RtspServer};

/// How a session's track is delivered.
#[derive(Clone, Debug)]
enum TrackTransport {
    Tcp { channel: u8 },
    Udp { rtp: SocketAddr, rtcp: SocketAddr },
}

struct Session {
    stream: Arc<Stream>,
    tracks: Arc<[TrackInfo]>,
    setup: HashMap<usize, (TrackTransport, u32)>,
    sender: Option<JoinHandle<()>>,
    activity: Activity,
    server: Arc<RtspServer>,
}

impl Session {
    fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.setup
            .values()
            .filter_map(|(t, _)| match t {
                TrackTransport::Udp { rtp, rtcp } => Some([*rtp, *rtcp]),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn is_udp(&self) -> bool {
        self.setup
            .values()
            .any(|(t, _)| matches!(t, TrackTransport::Udp { .. }))
    }

    fn stop(&mut self) {
        if let Some(h) = self.sender.take() {
            h.abort();
            self.server.counters.playing.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop();
        if let Some(u) = &self.server.udp {
            u.unregister(&self.udp_addrs());
        }
        self.server
            .counters
            .sessions
            .fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) struct Connection {
    server: Arc<RtspServer>,
    peer: SocketAddr,
    local: SocketAddr,
    rd: tokio::net::tcp::OwnedReadHalf,
    wr: SharedWire,
    sessions: HashMap<String, Session>,
    kick: tokio::sync::watch::Receiver<u64>,
    /// Every sender task sends its task id here when it is over (see [`SenderEnded`]).
    ended_tx: tokio::sync::mpsc::UnboundedSender<tokio::task::Id>,
    ended_rx: tokio::sync::mpsc::UnboundedReceiver<tokio::task::Id>,
    framer: Framer,
    /// The Digest nonce of this connection (a header from another connection is stale).
    nonce: DigestNonce,
    /// A request on this connection passed authentication (or, with no users, was made).
    authenticated: bool,
    /// When the last request arrived (or the connection opened).
    last_request: Instant,
}

/// A wait in whole seconds for `Retry-After`, rounded up (at least 1).
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The longest a throttled login's answer is held back.
const THROTTLED_ANSWER_DELAY: Duration = Duration::from_secs(1);

/// Why a connection is closed for lack of activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timeout {
    /// A request began but did not arrive in full in time.
    Request,
    /// No request passed authentication in time.
    Unauthenticated,
    /// Nothing played and no request came in time.
    Idle,
}

/// A response under construction: status, extra headers, body.
struct Reply {
    status: StatusCode,
    headers: Vec<(headers::HeaderName, String)>,
    body: Vec<u8>,
    /// Start this session's sender after the reply is written.
    start: Option<(String, Box<Prepared>)>,
    /// Hold the reply back this long (a client that must wait before logging in again).
    delay: Option<Duration>,
}

impl Reply {
    fn new(status: StatusCode) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            start: None,
            delay: None,
        }
    }

    fn header(mut self, name: headers::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

fn stream_path(req: &Request<Vec<u8>>) -> Option<(String, Option<usize>)> {
    let url = req.request_uri()?;
    let mut segs: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let mut track = None;
    if let Some(n) = segs.last().and_then(|l| l.strip_prefix("trackID=")) {
        track = Some(n.parse().ok()?);
        segs.pop();
    } else if let Some((_, n)) = url.query().and_then(|q| q.rsplit_once("/trackID=")) {
        // A base URL with a query: clients append the control URL after the query
        // (`/stream?x=1/trackID=0`).
        track = Some(n.parse().ok()?);
    }
    if segs.is_empty() {
        return None;
    }
    Some((segs.join("/"), track))
}

impl Connection {
    pub(crate) fn new(server: Arc<RtspServer>, sock: TcpStream, peer: SocketAddr) -> Self {
        let local = sock.local_addr().unwrap_or(server.local_addr());
        let (rd, wr) = sock.into_split();
        let (ended_tx, ended_rx) = tokio::sync::mpsc::unbounded_channel();
        Connection {
            peer,
            local,
            rd,
            wr: SharedWire::new(wr),
            sessions: HashMap::new(),
            kick: server.kick.subscribe(),
            ended_tx,
            ended_rx,
            server,
            framer: Framer::new(),
            nonce: DigestNonce::new(),
            authenticated: false,
            last_request: Instant::now(),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut buf = BytesMut::with_capacity(4096);
        let mut closing = self.server.closing.subscribe();
        // Since when the buffer has held an incomplete message.
        let mut partial_since: Option<Instant> = None;
        loop {
            // Handle everything already buffered.
            let mut progressed = false;
            loop {
                match self.framer.next_item(&buf) {
                    Ok(Item::NeedMore) => break,
                    Ok(Item::Interleaved { used, .. }) => {
                        // RTCP receiver reports from a TCP client: proof of life.
                        buf.advance(used);
                        progressed = true;
                        self.touch_all();
                    }
                    Ok(Item::Other(used)) => {
                        buf.advance(used);
                        progressed = true;
                    }
                    Ok(Item::Request(req, used)) => {
                        buf.advance(used);
                        progressed = true;
                        self.last_request = Instant::now();
                        if !self.handle(req).await {
                            return;
                        }
                    }
                    Err(e) => {
                        if let Some(suppressed) =
                            self.server.malformed_log.allow(std::time::Instant::now())
                        {
                            warn!(peer = %self.peer, "{e} (malformed messages not logged since the last line: {suppressed})");
                        }
                        self.server.counters.errors.fetch_add(1, Ordering::Relaxed);
                        let _ = self
                            .write_raw(b"RTSP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                }
            }
            if buf.is_empty() {
                partial_since = None;
            } else if progressed || partial_since.is_none() {
                partial_since = Some(Instant::now());
            }
            let deadline = self.deadline(partial_since);
            // Only UDP sessions need a clock (their liveness is the client's requests and
            // RTCP); a connection with none sleeps until it has something to do.
            let has_udp = self.sessions.values().any(Session::is_udp);
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                r = self.rd.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                _ = self.kick.changed() => return,
                true = async { closing.wait_for(|c| *c).await.is_ok() } => {
                    self.close_cleanly().await;
                    return;
                }
                _ = tokio::time::sleep_until(deadline.map_or(far, |d| d.0)), if deadline.is_some() => {
                    if let Some((_, why)) = deadline {
                        self.time_out(why).await;
                    }
                    return;
                }
                Some(ended) = self.ended_rx.recv() => {
                    if self
                        .sessions
                        .values()
                        .any(|s| s.sender.as_ref().is_some_and(|h| h.id() == ended))
                    {
                        // A playing session's sender ended by itself (most often on a write
                        // error: the client is gone).
                        return;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)), if has_udp => {}
            }
            self.expire_sessions();
        }
    }

    /// When the connection times out, and why, if nothing arrives before.
    fn deadline(&self, partial_since: Option<Instant>) -> Option<(Instant, Timeout)> {
        let p = &self.server.cfg.policy;
        if let Some(t) = partial_since {
            return Some((t + p.header_timeout, Timeout::Request));
        }
        if !self.authenticated {
            return Some((self.last_request + p.auth_timeout, Timeout::Unauthenticated));
        }
        if !self.sessions.values().any(|s| s.sender.is_some()) {
            return Some((self.last_request + p.idle_timeout, Timeout::Idle));
        }
        None
    }

    async fn time_out(&mut self, why: Timeout) {
        self.server
            .counters
            .timed_out
            .fetch_add(1, Ordering::Relaxed);
        let p = &self.server.cfg.policy;
        match why {
            Timeout::Request => {
                debug!(peer = %self.peer, "closing: no complete request within {:?}", p.header_timeout);
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    self.write_raw(b"RTSP/1.0 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"),
                )
                .await;
            }
            Timeout::Unauthenticated => {
                debug!(peer = %self.peer, "closing: not authenticated within {:?}", p.auth_timeout);
            }
            Timeout::Idle => {
                debug!(peer = %self.peer, "closing: idle for {:?}", p.idle_timeout);
            }
        }
        self.close_cleanly().await;
    }

    /// Ends every session (a sender stops between writes, so no frame is cut), sends what is
    /// still queued, closes the write side (FIN) and reads what the client still sends for a
    /// moment, so that the close is not a reset.
    async fn close_cleanly(&mut self) {
        for s in self.sessions.values_mut() {
            s.stop();
        }
        let limit = Duration::from_secs(1);
        if let Ok(mut w) = tokio::time::timeout(limit, self.wr.lock()).await {
            let _ = tokio::time::timeout(limit, w.flush(limit)).await;
            let _ = tokio::time::timeout(limit, w.shutdown()).await;
        }
        let mut scratch = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while let Ok(n) = self.rd.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }

    fn touch_all(&self) {
        for s in self.sessions.values() {
            s.activity.store(now_ms(), Ordering::Relaxed);
        }
    }

    fn expire_sessions(&mut self) {
        let timeout = self.server.cfg.session_timeout.as_millis() as u64;
        let now = now_ms();
        self.sessions.retain(|id, s| {
            let keep =
                !s.is_udp() || now.saturating_sub(s.activity.load(Ordering::Relaxed)) < timeout;
            if !keep {
                info!(session = %id, stream = %s.stream.name(), "UDP session timed out");
            }
            keep
        });
    }

    async fn write_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = self.wr.lock().await;
        w.write_all(bytes, self.server.cfg.write_timeout).await
    }

    /// Answers one request; false closes the connection.
    async fn handle(&mut self, req: Request<Vec<u8>>) -> bool {
        if let Some(name) = control_character_in(&req) {
            // Never echo such a value (it could split the reply's headers).
            debug!(peer = %self.peer, header = %name, "request refused: control character in a header");
            self.server.counters.errors.fetch_add(1, Ordering::Relaxed);
            return self
                .write_raw(b"RTSP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await
                .is_ok();
        }
        let cseq = req.header(&headers::CSEQ).map(|v| v.as_str().to_string());
        let version = req.version();
        let reply = match &cseq {
            None => Reply::new(StatusCode::BadRequest),
            Some(_) => self.dispatch(&req).await,
        };
        if reply.status.is_client_error() || reply.status.is_server_error() {
            self.server.counters.errors.fetch_add(1, Ordering::Relaxed);
            debug!(peer = %self.peer, method = ?req.method(), status = ?reply.status, "request refused");
        }
        if let Some(delay) = reply.delay {
            // The answer to a throttled login waits, so that a client hammering on one
            // connection costs one answer per delay, not one per round trip.
            let mut closing = self.server.closing.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = closing.wait_for(|c| *c) => return false,
            }
        }
        let version = if version == Version::V2_0 {
            Version::V1_0
        } else {
            version
        };
        let mut b = Response::builder(version, reply.status).header(
            headers::SERVER,
            concat!("camgate/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(c) = &cseq {
            b = b.header(headers::CSEQ, c.as_str());
        }
        for (n, v) in reply.headers {
            b = b.header(n, v);
        }
        let resp = b.build(reply.body);
        let mut out = Vec::with_capacity(256);
        if resp.write(&mut out).is_err() {
            return false;
        }
        if let Err(e) = self.write_raw(&out).await {
            debug!(peer = %self.peer, "cannot write a reply: {e}");
            return false;
        }
        if let Some((id, prepared)) = reply.start {
            self.start_sender(&id, *prepared);
        }
        true
    }

    fn authenticate(&mut self, req: &Request<Vec<u8>>) -> Result<(), Reply> {
        let server = self.server.clone();
        let authorization = req.header(&headers::AUTHORIZATION).map(|v| v.as_str());
        let ip = self.peer.ip();
        if authorization.is_some()
            && !server.auth.is_open()
            && let Err(wait) = server.cfg.gate.login_allowed(ip, std::time::Instant::now())
        {
            // This address failed too often: its credentials are not even looked at, and the
            // answer comes after (at most a second of) the wait.
            let mut r = Reply::new(StatusCode::ServiceUnavailable)
                .header(headers::RETRY_AFTER, whole_seconds(wait).to_string());
            r.delay = Some(wait.min(THROTTLED_ANSWER_DELAY));
            return Err(r);
        }
        let uri = req.request_uri().map_or("", |u| u.as_str());
        let attempt = Attempt {
            method: method_name(req.method()),
            uri,
            authorization,
        };
        match server.auth.check(attempt, &mut self.nonce) {
            Ok(_) => {
                if !self.authenticated && !server.auth.is_open() {
                    server.cfg.gate.login_succeeded(ip);
                }
                self.authenticated = true;
                Ok(())
            }
            Err(f) => {
                if f.is_failed_login() {
                    debug!(peer = %self.peer, "RTSP authentication failed: {f}");
                    server.cfg.gate.login_failed(
                        ip,
                        f.user().unwrap_or(""),
                        "RTSP",
                        std::time::Instant::now(),
                    );
                }
                let mut r = Reply::new(StatusCode::Unauthorized);
                for c in server.auth.challenges(&self.nonce, f == AuthFailure::Stale) {
                    r = r.header(headers::WWW_AUTHENTICATE, c);
                }
                Err(r)
            }
        }
    }

    async fn dispatch(&mut self, req: &Request<Vec<u8>>) -> Reply {
        if *req.method() == Method::Options {
            return Reply::new(StatusCode::Ok).header(
                headers::PUBLIC,
                "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER",
            );
        }
        if let Err(r) = self.authenticate(req) {
            return r;
        }
        let session_id = req.header(&headers::SESSION).map(|v| {
            v.as_str()
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
        if let Some(s) = session_id.as_ref().and_then(|id| self.sessions.get(id)) {
            s.activity.store(now_ms(), Ordering::Relaxed);
        }
        match req.method() {
            Method::Describe => self.describe(req).await,
            Method::Setup => self.setup(req, session_id).await,
            Method::Play => self.play(req, session_id).await,
            Method::Pause => match session_id
                .and_then(|id| self.sessions.get_mut(&id).map(|s| (id, s)))
            {
                Some((id, s)) => {
                    s.stop();
                    Reply::new(StatusCode::Ok).header(headers::SESSION, self.session_header(&id))
                }
                None => Reply::new(StatusCode::SessionNotFound),
            },
            Method::Teardown => match session_id {
                Some(id) => match self.sessions.remove(&id) {
                    Some(s) => {
                        self.server
                            .counters
                            .teardowns
                            .fetch_add(1, Ordering::Relaxed);
                        info!(peer = %self.peer, stream = %s.stream.name(), session = %id, "teardown");
                        Reply::new(StatusCode::Ok)
                    }
                    None => Reply::new(StatusCode::SessionNotFound),
                },
                None => Reply::new(StatusCode::SessionNotFound),
            },
            Method::GetParameter | Method::SetParameter => match session_id {
                Some(id) if !self.sessions.contains_key(&id) => {
                    Reply::new(StatusCode::SessionNotFound)
                }
                Some(id) => {
                    Reply::new(StatusCode::Ok).header(headers::SESSION, self.session_header(&id))
                }
                None => Reply::new(StatusCode::Ok),
            },
            _ => Reply::new(StatusCode::NotImplemented),
        }
    }

    fn session_header(&self, id: &str) -> String {
        format!("{id};timeout={}", self.server.cfg.session_timeout.as_secs())
    }

    fn lookup(&self, req: &Request<Vec<u8>>) -> Result<(Arc<Stream>, Option<usize>), Reply> {
        let Some((name, track)) = stream_path(req) else {
            return Err(Reply::new(StatusCode::NotFound));
        };
        match self.server.hub.get(&name) {
            Ok(s) => Ok((s, track)),
            Err(_) => Err(Reply::new(StatusCode::NotFound)),
        }
    }

    async fn tracks_of(&self, stream: &Arc<Stream>) -> Result<Arc<[TrackInfo]>, Reply> {
        match stream.describe().await {
            Ok(t) => Ok(t),
            Err(HubError::NotFound(_)) => Err(Reply::new(StatusCode::NotFound)),
            Err(e) => {
                warn!(peer = %self.peer, stream = %stream.name(), "{e}");
                Err(Reply::new(StatusCode::ServiceUnavailable))
            }
        }
    }

    async fn describe(&mut self, req: &Request<Vec<u8>>) -> Reply {
        let (stream, _) = match self.lookup(req) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let tracks = match self.tracks_of(&stream).await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let base = match req.request_uri() {
            Some(u) => {
                let s = u.as_str().trim_end_matches('/').to_string();
                format!("{s}/")
            }
            None => format!("rtsp://{}/{}/", self.local, stream.name()),
        };
        let body = describe(stream.name(), &self.local.ip().to_string(), &tracks);
        let mut r = Reply::new(StatusCode::Ok)
            .header(headers::CONTENT_TYPE, "application/sdp")
            .header(headers::CONTENT_BASE, base);
        r.body = body;
        r
    }

    async fn setup(&mut self, req: &Request<Vec<u8>>, session_id: Option<String>) -> Reply {
        let (stream, track) = match self.lookup(req) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let tracks = match self.tracks_of(&stream).await {
            Ok(t) => t,
            Err(r) => return r,
        };
        // A SETUP of the aggregate URL is allowed only for a single-track stream.
        let track = match track {
            Some(t) if t < tracks.len() => t,
            None if tracks.len() == 1 => 0,
            _ => return Reply::new(StatusCode::NotFound),
        };
        let transports = match req.typed_header::<Transports>() {
            Ok(Some(t)) => t,
            _ => return Reply::new(StatusCode::UnsupportedTransport),
        };
        let id = match session_id {
            Some(id) => {
                match self.sessions.get(&id) {
                    Some(s) if Arc::ptr_eq(&s.stream, &stream) => {}
                    Some(_) => return Reply::new(StatusCode::AggregateOperationNotAllowed),
                    None => return Reply::new(StatusCode::SessionNotFound),
                }
                id
            }
            None => {
                let max = self.server.cfg.policy.max_sessions;
                if self.sessions.len() >= max {
                    info!(peer = %self.peer, "SETUP refused: this connection holds {max} sessions (max_sessions_per_connection)");
                    return Reply::new(StatusCode::ServiceUnavailable);
                }
                let id = format!("{:016x}", rand::random::<u64>());
                self.server
                    .counters
                    .sessions
                    .fetch_add(1, Ordering::Relaxed);
                self.sessions.insert(
                    id.clone(),
                    Session {
                        stream: stream.clone(),
                        tracks: tracks.clone(),
                        setup: HashMap::new(),
                        sender: None,
                        activity: Arc::new(now_ms().into()),
                        server: self.server.clone(),
                    },
                );
                id
            }
        };
        let ssrc: u32 = rand::random();
        let mut chosen = None;
        for t in transports.iter() {
            let Transport::Rtp(rtp) = t else { continue };
            if rtp.profile != headers::transport::RtpProfile::Avp {
                continue;
            }
            let p = &rtp.params;
            let tcp = rtp.lower_transport == Some(headers::transport::RtpLowerTransport::Tcp);
            if tcp {
                let used: Vec<u8> = self.sessions[&id]
                    .setup
                    .iter()
                    .filter(|(k, _)| **k != track)
                    .filter_map(|(_, (t, _))| match t {
                        TrackTransport::Tcp { channel } => Some(*channel),
                        _ => None,
                    })
                    .collect();
                let channel = match p.interleaved {
                    Some((c, _)) => c,
                    None => (0..=254u8)
                        .step_by(2)
                        .find(|c| !used.contains(c))
                        .unwrap_or(0),
                };
                if used.contains(&channel) || channel == u8::MAX {
                    continue;
                }
                // On the usual channel a track shares the stream's packets and SSRC.
                let ssrc = if usize::from(channel) == 2 * track && track < MAX_SHARED_TRACKS {
                    self.shared_rtp(&stream).ssrc(track)
                } else {
                    ssrc
                };
                chosen = Some((
                    TrackTransport::Tcp { channel },
                    format!(
                        "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={ssrc:08X}",
                        channel,
                        channel + 1
                    ),
                    ssrc,
                ));
                break;
            }
            if !p.unicast && p.destination.is_some() {
                continue;
            }
            let (Some(udp), Some((cport, cport2))) = (&self.server.udp, p.client_port) else {
                continue;
            };
            let ip = self.peer.ip();
            let rtp_addr = SocketAddr::new(ip, cport);
            let rtcp_addr = SocketAddr::new(ip, cport2.unwrap_or(cport.wrapping_add(1)));
            let (sp, sp2) = udp.ports();
            chosen = Some((
                TrackTransport::Udp {
                    rtp: rtp_addr,
                    rtcp: rtcp_addr,
                },
                format!(
                    "RTP/AVP;unicast;client_port={}-{};server_port={sp}-{sp2};ssrc={ssrc:08X}",
                    rtp_addr.port(),
                    rtcp_addr.port()
                ),
                ssrc,
            ));
            break;
        }
        let Some((tt, header, ssrc)) = chosen else {
            return Reply::new(StatusCode::UnsupportedTransport);
        };
        let session = self
            .sessions
            .get_mut(&id)
            .expect("session just found or made");
        if let (TrackTransport::Udp { rtp, rtcp }, Some(u)) = (&tt, &self.server.udp) {
            u.register(&[*rtp, *rtcp], &session.activity);
        }
        session.setup.insert(track, (tt, ssrc));
        debug!(peer = %self.peer, stream = %stream.name(), track, transport = %header, "setup");
        Reply::new(StatusCode::Ok)
            .header(headers::TRANSPORT, header)
            .header(headers::SESSION, self.session_header(&id))
    }

    async fn play(&mut self, req: &Request<Vec<u8>>, session_id: Option<String>) -> Reply {
        let Some(id) = session_id else {
            return Reply::new(StatusCode::SessionNotFound);
        };
        let header = self.session_header(&id);
        let Some(s) = self.sessions.get(&id) else {
            return Reply::new(StatusCode::SessionNotFound);
        };
        if s.setup.is_empty() {
            return Reply::new(StatusCode::MethodNotValidInThisState);
        }
        let mut r = Reply::new(StatusCode::Ok)
            .header(headers::SESSION, header)
            .header(headers::RANGE, "npt=now-");
        if s.sender.is_some() {
            return r;
        }
        let prepared = match self.prepare_sender(&id).await {
            Ok(p) => p,
            Err(r) => return r,
        };
        let base = req
            .request_uri()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .unwrap_or_default();
        let base = match base.rfind("/trackID=") {
            Some(i) => base[..i].to_string(),
            None => base,
        };
        let info: Vec<String> = prepared
            .tracks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
            .map(|(i, t)| {
                let (seq, rtptime) = t.rtp_info();
                format!("url={base}/trackID={i};seq={seq};rtptime={rtptime}")
            })
            .collect();
        r = r.header(headers::RTP_INFO, info.join(","));
        r.start = Some((id, Box::new(prepared)));
        r
    }

    /// The stream's shared packetization (made on first use).
    fn shared_rtp(&self, stream: &Arc<Stream>) -> Arc<SharedRtp> {
        let max_payload = self.server.cfg.max_payload;
        stream.shared_rtp(|| SharedRtp::new(max_payload, payload_types))
    }

    /// Subscribes the session's reader and fixes each track's first sequence number and RTP
    /// time, so PLAY can announce them in RTP-Info before any packet is sent.
    async fn prepare_sender(&mut self, id: &str) -> Result<Prepared, Reply> {
        let s = self
            .sessions
            .get(id)
            .ok_or(Reply::new(StatusCode::SessionNotFound))?;
        let mut reader = match s.stream.subscribe().await {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %self.peer, stream = %s.stream.name(), "cannot play: {e}");
                return Err(Reply::new(StatusCode::ServiceUnavailable));
            }
        };
        // The first frame fixes the media time at which this session starts.
        let first = match reader.try_recv() {
            Some(f) => Some(f),
            None => tokio::time::timeout(Duration::from_secs(2), reader.recv())
                .await
                .ok()
                .flatten(),
        };
        let start_secs = first.as_ref().map_or(0.0, |f| {
            let rate = s.tracks.get(f.track).map_or(90_000, |t| t.clock_rate());
            f.ts as f64 / f64::from(rate)
        });
        let mut taken: Vec<Arc<Frame>> = first.into_iter().collect();
        let pts = payload_types(&s.tracks);
        // Sessions whose tracks are all on their usual interleaved channels write the stream's
        // own packets, if the frames they start with have them.
        let shareable = s.setup.iter().all(|(&idx, (tt, _))| {
            matches!(tt, TrackTransport::Tcp { channel } if usize::from(*channel) == 2 * idx)
        });
        let clocks = if shareable && taken.iter().all(|f| f.wire().is_some()) {
            let shared = self.shared_rtp(&s.stream);
            // Under the clocks' lock no frame is numbered: the frames queued now plus the
            // next numbers account for every packet this session will get.
            shared.with_clocks(s.tracks.len(), |clocks| {
                while let Some(f) = reader.try_recv() {
                    taken.push(f);
                }
                clocks.to_vec()
            })
        } else {
            Vec::new()
        };
        let shared = !clocks.is_empty() && taken.iter().all(|f| f.wire().is_some());
        let mut tracks: Vec<Option<SenderTrack>> = vec![None; s.tracks.len()];
        for (&idx, (tt, ssrc)) in &s.setup {
            if idx >= s.tracks.len() {
                continue;
            }
            let info = s.tracks[idx].clone();
            let start_ts = (start_secs * f64::from(info.clock_rate())) as i64;
            let out = match tt {
                TrackTransport::Tcp { channel } if shared => {
                    let clock = clocks[idx];
                    let first_seq = taken
                        .iter()
                        .find(|f| f.track == idx)
                        .and_then(|f| f.wire())
                        .map_or(clock.next_seq, |w| w.first_seq);
                    tracks[idx] = Some(SenderTrack::shared(
                        info,
                        pts[idx],
                        *ssrc,
                        *channel,
                        start_ts,
                        first_seq,
                        clock.ts_base,
                    ));
                    continue;
                }
                TrackTransport::Tcp { channel } => Output::Tcp { channel: *channel },
                TrackTransport::Udp { rtp, rtcp } => Output::Udp {
                    rtp: *rtp,
                    rtcp: *rtcp,
                },
            };
            tracks[idx] = Some(SenderTrack::new(info, pts[idx], *ssrc, out, start_ts));
        }
        Ok(Prepared {
            reader,
            first: taken,
            tracks,
        })
    }

    fn start_sender(&mut self, id: &str, prepared: Prepared) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let udp = prepared
            .tracks
            .iter()
            .flatten()
            .any(|t| matches!(t.output(), Output::Udp { .. }));
        let udp_pair = if udp { self.server.udp.clone() } else { None };
        let wr = self.wr.clone();
        let cfg = self.server.cfg.clone();
        let counters = self.server.counters.clone();
        let peer = self.peer;
        self.server.counters.playing.fetch_add(1, Ordering::Relaxed);
        info!(%peer, stream = %s.stream.name(), session = %id, udp, "play");
        let ended = self.ended_tx.clone();
        s.sender = Some(tokio::spawn(async move {
            let _ended = SenderEnded {
                tx: ended,
                id: tokio::task::id(),
            };
            if let Err(e) = run_sender(prepared, wr, udp_pair, &cfg, &counters).await {
                debug!(%peer, "sender ended: {e}");
            }
        }));
    }
}

/// Tells the connection that a sender task is over, however it ended (returned, failed,
/// panicked or was aborted). The connection ignores the news of a sender it stopped itself
/// (the session no longer holds that sender).
struct SenderEnded {
    tx: tokio::sync::mpsc::UnboundedSender<tokio::task::Id>,
    id: tokio::task::Id,
}

impl Drop for SenderEnded {
    fn drop(&mut self) {
        let _ = self.tx.send(self.id);
    }
}

/// The name of the first header whose value holds a control character (other than tab).
fn control_character_in(req: &Request<Vec<u8>>) -> Option<String> {
    req.headers().find_map(|(name, value)| {
        value
            .as_str()
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
            .then(|| name.as_str().chars().take(64).collect())
    })
}

fn method_name(m: &Method) -> &str {
    match m {
        Method::Describe => "DESCRIBE",
        Method::GetParameter => "GET_PARAMETER",
        Method::Options => "OPTIONS",
        Method::Pause => "PAUSE",
        Method::Play => "PLAY",
        Method::PlayNotify => "PLAY_NOTIFY",
        Method::Redirect => "REDIRECT",
        Method::Setup => "SETUP",
        Method::SetParameter => "SET_PARAMETER",
        Method::Teardown => "TEARDOWN",
        Method::Announce => "ANNOUNCE",
        Method::Record => "RECORD",
        Method::Extension(s) => s.as_str(),
    }
}
