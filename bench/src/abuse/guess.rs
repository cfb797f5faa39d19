//! Password guessing, as fast as the server answers: RTSP DESCRIBE with wrong Digest (a
//! correctly computed answer to the connection's own challenge, with `qop=auth` and a growing
//! nonce count) and wrong Basic credentials in turn, and HTTP `GET /api/streams` with wrong
//! Basic credentials. Refusals (RTSP `503`, HTTP `429`) do not stop it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::counters::{Counters, PerProto, inc};
use super::net::{NoAnswer, connect_from, read_response};
use super::{Proto, Target};
use crate::auth::{
    Challenge, Credentials, DigestInput, basic_header, digest_header, pick_challenge,
};

/// How long one answer may take.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// How the guessing is done.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connections (even: RTSP, odd: HTTP).
    pub connections: usize,
    /// Source addresses, used in turn by the connections (none: the load does nothing).
    pub sources: Vec<IpAddr>,
    /// User names guessed with (in turn).
    pub users: Vec<String>,
    /// Pause between a guess's answer and the next guess (zero: none).
    pub pause: Duration,
}

/// Guesses until cancelled (the caller drops this future at the end of the run).
pub async fn run(cfg: Config, target: Arc<Target>, counters: Arc<PerProto>) {
    if cfg.sources.is_empty() {
        return;
    }
    let mut tasks = JoinSet::new();
    for i in 0..cfg.connections {
        let (cfg, target, counters) = (cfg.clone(), target.clone(), counters.clone());
        tasks.spawn(async move {
            let proto = Proto::alternating(i);
            let src = cfg.sources[i % cfg.sources.len()];
            let c = counters.get(proto);
            let mut guess: u64 = (i as u64) << 40;
            loop {
                match connect_from(src, target.addr(proto), Duration::from_secs(5)).await {
                    Ok(s) => {
                        inc(&c.connects);
                        let end = match proto {
                            Proto::Rtsp => rtsp(s, &cfg, &target, c, &mut guess).await,
                            Proto::Http => http(s, &cfg, &target, c, &mut guess).await,
                        };
                        count_end(c, end);
                    }
                    Err(e) => c.connect_error(&e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

fn count_end(c: &Counters, end: NoAnswer) {
    match end {
        NoAnswer::Closed => inc(&c.closed_by_server),
        NoAnswer::TimedOut => inc(&c.no_answer),
        NoAnswer::Io(e) => c.io_error(&e),
        NoAnswer::Malformed(m) => {
            inc(&c.io_errors);
            c.note(format!(
                "malformed answer: {}",
                m.chars().take(80).collect::<String>()
            ));
        }
    }
}

/// Wrong credentials number `n`.
fn wrong(cfg: &Config, n: u64) -> Credentials {
    Credentials {
        username: cfg
            .users
            .get(n as usize % cfg.users.len().max(1))
            .cloned()
            .unwrap_or_else(|| "viewer".into()),
        password: format!("guess-{n:x}"),
    }
}

/// Writes `req` and reads the answer.
async fn exchange(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    req: &str,
    c: &Counters,
) -> Result<(u16, crate::rtsp::Message), NoAnswer> {
    let deadline = Instant::now() + ANSWER_WAIT;
    match tokio::time::timeout_at(deadline, s.write_all(req.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(NoAnswer::Io(e)),
        Err(_) => return Err(NoAnswer::TimedOut),
    }
    inc(&c.sent);
    let (code, m) = read_response(s, buf, deadline).await?;
    c.status(code);
    Ok((code, m))
}

/// Guesses on one RTSP connection until it ends.
async fn rtsp(
    mut s: TcpStream,
    cfg: &Config,
    target: &Target,
    c: &Counters,
    guess: &mut u64,
) -> NoAnswer {
    let url = target.rtsp_url();
    let mut buf = BytesMut::with_capacity(4096);
    let mut cseq: u32 = 0;
    let mut challenge: Option<(String, String)> = None;
    let mut nc: u32 = 0;
    let cnonce = format!("{:016x}", *guess ^ 0x5eed);
    loop {
        cseq = cseq.wrapping_add(1);
        let auth = match &challenge {
            None => None,
            Some((realm, nonce)) if guess.is_multiple_of(2) => {
                nc = nc.wrapping_add(1).max(1);
                Some(digest_header(
                    &wrong(cfg, *guess),
                    &DigestInput {
                        realm,
                        nonce,
                        method: "DESCRIBE",
                        uri: &url,
                        qop: Some((nc, &cnonce)),
                        opaque: None,
                    },
                ))
            }
            Some(_) => {
                let w = wrong(cfg, *guess);
                Some(basic_header(&w.username, &w.password))
            }
        };
        let mut req =
            format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: soak-abuse\r\n");
        if let Some(a) = &auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
            *guess += 1;
        }
        req.push_str("\r\n");
        let (code, m) = match exchange(&mut s, &mut buf, &req, c).await {
            Ok(r) => r,
            Err(e) => return e,
        };
        if code == 401
            && let Some(Challenge::Digest { realm, nonce, .. }) =
                pick_challenge(m.header_values("www-authenticate"))
        {
            if challenge.as_ref().is_none_or(|(_, n)| *n != nonce) {
                nc = 0;
            }
            challenge = Some((realm, nonce));
        }
        if !cfg.pause.is_zero() {
            tokio::time::sleep(cfg.pause).await;
        }
    }
}

/// Guesses on one HTTP keep-alive connection until it ends.
async fn http(
    mut s: TcpStream,
    cfg: &Config,
    target: &Target,
    c: &Counters,
    guess: &mut u64,
) -> NoAnswer {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let w = wrong(cfg, *guess);
        *guess += 1;
        let req = format!(
            "GET /api/streams HTTP/1.1\r\nHost: {}\r\nUser-Agent: soak-abuse\r\nAuthorization: {}\r\n\r\n",
            target.http,
            basic_header(&w.username, &w.password)
        );
        let (_, m) = match exchange(&mut s, &mut buf, &req, c).await {
            Ok(r) => r,
            Err(e) => return e,
        };
        if m.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || m.header("transfer-encoding").is_some()
        {
            // Closing (or a body framing this reader does not follow): start afresh.
            return NoAnswer::Closed;
        }
        if !cfg.pause.is_zero() {
            tokio::time::sleep(cfg.pause).await;
        }
    }
}
