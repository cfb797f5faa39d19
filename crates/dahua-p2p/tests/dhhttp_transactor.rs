//! The sans-IO request transactor: CSeq assignment, retransmission, matching, provisional
//! responses, clock skew, refresh mode, and seeded lossy simulations.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dahua_p2p::dhhttp::{
    CSeqCounter, Dialect, Disposition, Method, Profile, Request, Response, RetransmitSchedule,
    StartOptions, Transactor, TransactorConfig, TxEvent, Verb, ZeroCSeqPolicy, parse_request,
};
use dahua_p2p::xmlbody::XmlBody;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main_server() -> SocketAddr {
    "45.43.62.214:8800".parse().unwrap()
}

fn agent() -> SocketAddr {
    "169.197.116.85:27077".parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn smartpss() -> Transactor {
    Transactor::new(TransactorConfig {
        seed: Some(7),
        ..TransactorConfig::default()
    })
}

fn get(path: &str) -> Request {
    let mut rng = StdRng::seed_from_u64(1);
    Profile::smartpss().request(Verb::Get, path, None, 1_700_000_000, &mut rng)
}

fn sent(t: &mut Transactor, now: Instant) -> Vec<(SocketAddr, Request)> {
    std::iter::from_fn(|| t.poll_transmit(now))
        .map(|(a, b)| (a, parse_request(&b).unwrap()))
        .collect()
}

fn events(t: &mut Transactor) -> Vec<TxEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

fn reply(req: &Request, code: u16, reason: &str) -> Response {
    Response::reply_to(req, code, reason, 1_700_000_000)
}

#[test]
fn counter_cseq_starts_at_one_and_goes_first() {
    let mut t = smartpss();
    let now = Instant::now();
    t.start(now, main_server(), get("/probe/p2psrv"));
    t.start(now, main_server(), get("/online/relay"));
    let out = sent(&mut t, now);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, main_server());
    assert_eq!(out[0].1.cseq(), Some(1));
    assert_eq!(out[1].1.cseq(), Some(2));
    assert_eq!(out[0].1.headers.0[0].0, "CSeq");
    assert_eq!(out[0].1.method, Method::DhGet);
}

#[test]
fn shared_counter_spans_transactors() {
    let counter = CSeqCounter::new();
    let mk = || {
        Transactor::new(TransactorConfig {
            counter: counter.clone(),
            ..TransactorConfig::default()
        })
    };
    let (mut a, mut b) = (mk(), mk());
    let now = Instant::now();
    a.start(now, main_server(), get("/a"));
    b.start(now, main_server(), get("/b"));
    a.start(now, main_server(), get("/c"));
    let cseqs: Vec<_> = sent(&mut a, now)
        .into_iter()
        .chain(sent(&mut b, now))
        .map(|(_, r)| r.cseq().unwrap())
        .collect();
    assert_eq!(cseqs, [1, 3, 2]);
}

#[test]
fn cseq_without_placeholder_goes_after_the_dialect_preamble() {
    let mut t = Transactor::new(TransactorConfig::with_dialect(Dialect::dmss()));
    let r = Request::new(Method::NfGet, "/online/stun")
        .with_header("X-Version", "6.7.11")
        .with_header("X-ToUType", "Dmss_Android")
        .with_header("Other", "x");
    let now = Instant::now();
    t.start(now, main_server(), r);
    let (_, out) = sent(&mut t, now).remove(0);
    let names: Vec<_> = out.headers.iter().map(|(n, _)| n.to_owned()).collect();
    assert_eq!(
        names,
        [
            "X-Version",
            "X-ToUType",
            "x-pcs-request-id",
            "CSeq",
            "Other"
        ]
    );
}

#[test]
fn dmss_uses_random_signed_cseq_and_request_ids_in_header_order() {
    let profile = Profile::dmss();
    let mut t = Transactor::new(TransactorConfig {
        seed: Some(3),
        ..TransactorConfig::with_dialect(profile.dialect.clone())
    });
    let mut rng = StdRng::seed_from_u64(2);
    let body = XmlBody::new().with("Dev", "SN");
    let body = body.to_xml(Default::default());
    let now = Instant::now();
    let mut cseqs = Vec::new();
    for _ in 0..20 {
        let r = profile.request(
            Verb::Post,
            "/relay/agent",
            Some(body.as_bytes()),
            1_700_000_000,
            &mut rng,
        );
        t.start(now, main_server(), r);
    }
    for (_, r) in sent(&mut t, now) {
        let names: Vec<_> = r.headers.iter().map(|(n, _)| n.to_owned()).collect();
        assert_eq!(
            names,
            [
                "X-Version",
                "X-Sversion",
                "x-pcs-request-id",
                "X-ToUType",
                "CSeq",
                "Authorization",
                "X-WSSE",
                "Content-Type",
                "Content-Length"
            ]
        );
        assert_eq!(r.method, Method::NfPost);
        let rid = r.headers.get("x-pcs-request-id").unwrap();
        assert!(rid.len() == 32 && rid.bytes().all(|b| b.is_ascii_hexdigit()));
        let c = r.cseq().unwrap();
        assert!(c != 0 && i64::from(i32::MIN) <= c && c <= i64::from(i32::MAX));
        cseqs.push(c);
    }
    assert!(
        cseqs.iter().any(|&c| c < 0),
        "negative CSeqs occur: {cseqs:?}"
    );
}

#[test]
fn retransmits_identical_bytes_on_the_doubling_schedule_then_times_out() {
    let mut t = smartpss();
    let t0 = Instant::now();
    let id = t.start(t0, main_server(), get("/probe/p2psrv"));
    let first = t.poll_transmit(t0).unwrap().1;
    let mut sends = vec![Duration::ZERO];
    let mut now = t0;
    while let Some(deadline) = t.poll_timeout() {
        assert!(deadline > now);
        now = deadline;
        t.handle_timeout(now);
        while let Some((dest, bytes)) = t.poll_transmit(now) {
            assert_eq!((dest, &bytes), (main_server(), &first));
            sends.push(now - t0);
        }
    }
    assert_eq!(sends, [0, 500, 1500, 3500, 7500].map(ms));
    assert_eq!(now - t0, ms(11_500));
    match events(&mut t).as_slice() {
        [
            TxEvent::TimedOut {
                id: i,
                dest,
                transmissions: 5,
                request,
            },
        ] => {
            assert_eq!((*i, *dest), (id, main_server()));
            assert_eq!(request.path, "/probe/p2psrv");
        }
        other => panic!("{other:?}"),
    }
    assert!(!t.is_pending(id));
}

#[test]
fn nothing_happens_before_the_deadline() {
    let mut t = smartpss();
    let t0 = Instant::now();
    t.start(t0, main_server(), get("/x"));
    t.poll_transmit(t0);
    t.handle_timeout(t0 + ms(499));
    assert!(t.poll_transmit(t0).is_none());
    assert!(t.poll_event().is_none());
}

#[test]
fn response_matched_by_cseq_finishes_and_late_duplicates_are_ignored() {
    let mut t = smartpss();
    let now = Instant::now();
    let id = t.start(now, main_server(), get("/online/p2psrv/SN"));
    let (_, req) = sent(&mut t, now).remove(0);
    let resp = reply(&req, 200, "OK");
    assert_eq!(
        t.handle_response(now, main_server(), &resp),
        Disposition::Final(id)
    );
    match events(&mut t).as_slice() {
        [
            TxEvent::Done {
                id: i,
                from,
                response,
                request,
            },
        ] => {
            assert_eq!((*i, *from), (id, main_server()));
            assert_eq!(**response, resp);
            assert_eq!(request.cseq(), Some(1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.handle_response(now, main_server(), &resp),
        Disposition::Duplicate(id)
    );
    assert!(t.poll_event().is_none());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn unknown_cseq_is_unmatched() {
    let mut t = smartpss();
    let now = Instant::now();
    t.start(now, main_server(), get("/x"));
    let r = Response::new(200, "OK").with_header("CSeq", "99");
    assert_eq!(
        t.handle_response(now, main_server(), &r),
        Disposition::Unmatched
    );
    assert!(t.poll_event().is_none());
}

#[test]
fn trying_stops_retransmits_and_extends_the_wait() {
    let mut t = smartpss();
    let t0 = Instant::now();
    let id = t.start(t0, main_server(), get("/device/SN/p2p-channel"));
    let (_, req) = sent(&mut t, t0).remove(0);
    let trying = reply(&req, 100, "Trying");
    let at = t0 + ms(300);
    assert_eq!(
        t.handle_response(at, main_server(), &trying),
        Disposition::Provisional(id)
    );
    assert_eq!(events(&mut t), [TxEvent::Provisional { id, code: 100 }]);
    assert_eq!(t.poll_timeout(), Some(at + Duration::from_secs(10)));
    t.handle_timeout(t0 + Duration::from_secs(5));
    assert!(
        t.poll_transmit(t0).is_none(),
        "no retransmit after 100 Trying"
    );
    let done = reply(&req, 200, "Server Nat Info!");
    assert_eq!(
        t.handle_response(t0 + ms(1100), main_server(), &done),
        Disposition::Final(id)
    );
    assert!(matches!(events(&mut t).as_slice(), [TxEvent::Done { .. }]));
}

#[test]
fn trying_without_final_answer_times_out_after_the_provisional_wait() {
    let mut t = smartpss();
    let t0 = Instant::now();
    let id = t.start(t0, main_server(), get("/device/SN/p2p-channel"));
    let (_, req) = sent(&mut t, t0).remove(0);
    t.handle_response(t0, main_server(), &reply(&req, 100, "Trying"));
    t.poll_event();
    t.handle_timeout(t0 + Duration::from_secs(10));
    assert!(matches!(
        events(&mut t).as_slice(),
        [TxEvent::TimedOut { id: i, transmissions: 1, .. }] if *i == id
    ));
}

#[test]
fn repeated_trying_does_not_extend_the_wait_again() {
    let mut t = smartpss();
    let t0 = Instant::now();
    let id = t.start(t0, main_server(), get("/device/SN/p2p-channel"));
    let (_, req) = sent(&mut t, t0).remove(0);
    let trying = reply(&req, 100, "Trying");
    for s in 0..30 {
        t.handle_response(t0 + Duration::from_secs(s), main_server(), &trying);
        t.handle_timeout(t0 + Duration::from_secs(s));
    }
    // A cloud answering `100 Trying` every second still times out 10 s after the first one.
    let timed_out: Vec<_> = std::iter::from_fn(|| t.poll_event())
        .filter(|e| matches!(e, TxEvent::TimedOut { id: i, .. } if *i == id))
        .collect();
    assert_eq!(timed_out.len(), 1);
}

#[test]
fn cseq_zero_is_matched_by_source_by_default() {
    let mut t = smartpss();
    let now = Instant::now();
    let id = t.start(now, main_server(), get("/x"));
    t.poll_transmit(now);
    let zero = Response::new(200, "OK").with_header("CSeq", "0");
    assert_eq!(
        t.handle_response(now, agent(), &zero),
        Disposition::Unmatched
    );
    assert_eq!(
        t.handle_response(now, main_server(), &zero),
        Disposition::Final(id)
    );
}

#[test]
fn missing_cseq_counts_as_zero() {
    let mut t = smartpss();
    let now = Instant::now();
    let id = t.start(now, main_server(), get("/x"));
    let r = Response::new(200, "OK");
    assert_eq!(
        t.handle_response(now, main_server(), &r),
        Disposition::Final(id)
    );
}

#[test]
fn cseq_zero_policy_ignore() {
    let mut t = Transactor::new(TransactorConfig {
        zero_cseq: ZeroCSeqPolicy::Ignore,
        ..TransactorConfig::default()
    });
    let now = Instant::now();
    t.start(now, main_server(), get("/x"));
    let zero = Response::new(200, "OK").with_header("CSeq", "0");
    assert_eq!(
        t.handle_response(now, main_server(), &zero),
        Disposition::Unmatched
    );
}

#[test]
fn relay_channel_answer_from_the_agent_matches() {
    let mut t = smartpss();
    let now = Instant::now();
    let opts = StartOptions {
        schedule: Some(RetransmitSchedule::relay_channel()),
        answer_from: Some(agent()),
        refresh: false,
    };
    let id = t.start_with(now, main_server(), get("/device/SN/relay-channel"), opts);
    let (_, req) = sent(&mut t, now).remove(0);
    // With its CSeq, from the agent:
    let r = reply(&req, 200, "Server Nat Info!");
    let mut t2 = smartpss();
    let id2 = t2.start(now, main_server(), get("/device/SN/relay-channel"));
    assert_eq!(
        t2.handle_response(now, agent(), &r),
        Disposition::Final(id2)
    );
    // Without a CSeq, from the declared responder:
    let bare = Response::new(200, "Server Nat Info!");
    assert_eq!(
        t.handle_response(now, agent(), &bare),
        Disposition::Final(id)
    );
}

#[test]
fn relay_channel_schedule_resends_at_0_7_and_1_9_seconds() {
    let mut t = smartpss();
    let t0 = Instant::now();
    let opts = StartOptions {
        schedule: Some(RetransmitSchedule::relay_channel()),
        ..StartOptions::default()
    };
    t.start_with(t0, main_server(), get("/device/SN/relay-channel"), opts);
    t.poll_transmit(t0);
    let mut at = Vec::new();
    while let Some(d) = t.poll_timeout() {
        t.handle_timeout(d);
        if t.poll_transmit(d).is_some() {
            at.push(d - t0);
        }
    }
    assert_eq!(at, [ms(700), ms(1900)]);
}

#[test]
fn request_id_matches_when_cseq_is_zero() {
    let mut t = Transactor::new(TransactorConfig {
        seed: Some(9),
        zero_cseq: ZeroCSeqPolicy::Ignore,
        ..TransactorConfig::with_dialect(Dialect::dmss())
    });
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(4);
    let a = t.start(
        now,
        main_server(),
        Profile::dmss().request(Verb::Get, "/a", None, 0, &mut rng),
    );
    let b = t.start(
        now,
        main_server(),
        Profile::dmss().request(Verb::Get, "/b", None, 0, &mut rng),
    );
    let reqs = sent(&mut t, now);
    let rid_b = reqs[1].1.headers.get("x-pcs-request-id").unwrap();
    let r = Response::new(200, "OK")
        .with_header("CSeq", "0")
        .with_header("x-pcs-request-id", rid_b);
    assert_eq!(
        t.handle_response(now, main_server(), &r),
        Disposition::Final(b)
    );
    assert!(t.is_pending(a));
}

#[test]
fn clock_skew_401_is_reported_distinctly() {
    let mut t = smartpss();
    let now = Instant::now();
    let id = t.start(now, main_server(), get("/online/p2psrv/SN"));
    let (_, req) = sent(&mut t, now).remove(0);
    let skew = reply(&req, 401, "Unauthorized").with_xml_body(
        &XmlBody::new().with("Error", "TimeOut"),
        Default::default(),
        false,
    );
    t.handle_response(now, main_server(), &skew);
    assert!(matches!(events(&mut t).as_slice(), [TxEvent::ClockSkew { id: i, .. }] if *i == id));
    let id = t.start(now, main_server(), get("/online/p2psrv/SN"));
    let (_, req) = sent(&mut t, now).remove(0);
    t.handle_response(now, main_server(), &reply(&req, 401, "Unauthorized"));
    assert!(matches!(events(&mut t).as_slice(), [TxEvent::Done { id: i, .. }] if *i == id));
}

#[test]
fn refresh_mode_asks_for_a_resigned_request_and_keeps_the_cseq() {
    let profile = Profile::dmss();
    let mut t = Transactor::new(TransactorConfig {
        seed: Some(5),
        ..TransactorConfig::with_dialect(profile.dialect.clone())
    });
    let mut rng = StdRng::seed_from_u64(6);
    let t0 = Instant::now();
    let opts = StartOptions {
        schedule: Some(RetransmitSchedule::dmss_p2p_channel()),
        refresh: true,
        ..StartOptions::default()
    };
    let first = profile.request(
        Verb::Post,
        "/device/SN/p2p-channel",
        Some(b"<body/>"),
        100,
        &mut rng,
    );
    let id = t.start_with(t0, main_server(), first, opts);
    let (_, sent1) = sent(&mut t, t0).remove(0);
    t.handle_timeout(t0 + ms(550));
    assert!(
        t.poll_transmit(t0).is_none(),
        "refresh mode does not resend by itself"
    );
    assert_eq!(
        events(&mut t),
        [TxEvent::RefreshNeeded {
            id,
            transmission: 2
        }]
    );
    let fresh = profile.request(
        Verb::Post,
        "/device/SN/p2p-channel",
        Some(b"<body/>"),
        101,
        &mut rng,
    );
    assert!(t.refresh(id, fresh));
    let (_, sent2) = sent(&mut t, t0).remove(0);
    assert_eq!(sent2.cseq(), sent1.cseq());
    assert_eq!(
        sent2.headers.get("x-pcs-request-id"),
        sent1.headers.get("x-pcs-request-id")
    );
    assert_ne!(sent2.headers.get("X-WSSE"), sent1.headers.get("X-WSSE"));
    assert_eq!(t.cseq_of(id), sent1.cseq());
    t.cancel(id);
    assert!(!t.refresh(id, sent2));
}

#[test]
fn garbage_datagrams_are_errors_naming_the_peer() {
    let mut t = smartpss();
    let e = t
        .handle_datagram(Instant::now(), main_server(), b"PTCP\0\0\0\0")
        .unwrap_err();
    assert!(e.to_string().contains("45.43.62.214:8800"), "{e}");
}

/// A lossy, duplicating, reordering network between a transactor and an echoing server.
fn simulate(seed: u64, loss: f64, dup: f64, requests: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = Transactor::new(TransactorConfig {
        seed: Some(seed),
        ..TransactorConfig::with_dialect(if seed.is_multiple_of(2) {
            Dialect::smartpss()
        } else {
            Dialect::dmss()
        })
    });
    let t0 = Instant::now();
    let mut now = t0;
    let mut ids = Vec::new();
    for i in 0..requests {
        ids.push(t.start(now, main_server(), get(&format!("/r/{i}"))));
    }
    // In-flight responses: (arrival time, response).
    let mut wire: Vec<(Instant, Response)> = Vec::new();
    let mut terminal = std::collections::HashMap::new();
    for _ in 0..10_000 {
        while let Some((_, bytes)) = t.poll_transmit(now) {
            if rng.gen_bool(loss) {
                continue;
            }
            let req = parse_request(&bytes).unwrap();
            let mut resp = reply(&req, 200, "OK");
            resp.set_body(req.path.clone().into_bytes());
            let copies = if rng.gen_bool(dup) { 2 } else { 1 };
            for _ in 0..copies {
                if !rng.gen_bool(loss) {
                    wire.push((now + ms(rng.gen_range(1..900)), resp.clone()));
                }
            }
        }
        while let Some(ev) = t.poll_event() {
            let (id, ok) = match ev {
                TxEvent::Done {
                    id,
                    request,
                    response,
                    ..
                } => {
                    assert_eq!(
                        response.body,
                        request.path.as_bytes(),
                        "matched the right request"
                    );
                    (id, true)
                }
                TxEvent::TimedOut { id, .. } => (id, false),
                other => panic!("{other:?}"),
            };
            assert!(
                terminal.insert(id, ok).is_none(),
                "one terminal event per request"
            );
        }
        let next_wire = wire.iter().map(|(at, _)| *at).min();
        let next = match (next_wire, t.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(x) => x,
                None => break,
            },
        };
        now = now.max(next);
        let (due, later): (Vec<_>, Vec<_>) = wire.into_iter().partition(|(at, _)| *at <= now);
        wire = later;
        for (_, resp) in due {
            t.handle_response(now, main_server(), &resp);
        }
        t.handle_timeout(now);
    }
    assert_eq!(terminal.len(), requests, "every request finished");
    assert!(now - t0 <= ms(11_500 + 900));
    if loss == 0.0 {
        assert!(terminal.values().all(|ok| *ok));
    }
}

#[test]
fn lossless_network_answers_everything() {
    simulate(1, 0.0, 0.3, 20);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn every_request_ends_exactly_once_under_loss_and_duplication(
        seed in any::<u64>(),
        loss in 0.0f64..0.7,
        dup in 0.0f64..0.5,
    ) {
        simulate(seed, loss, dup, 8);
    }
}
