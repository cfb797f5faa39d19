//! `GET /metrics`: per-stream and RTSP server counters in the Prometheus text exposition format
//! (version 0.0.4), written by hand.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use media::hub::{Hub, StreamState, StreamStats};
use rtsp::server::{Gate, ServerCounters};

use super::Ctx;

pub(super) async fn metrics(State(ctx): State<Ctx>) -> impl IntoResponse {
    let body = render(&ctx.app.hub, ctx.app.rtsp.as_deref(), Some(&ctx.app.gate));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// One per-stream metric: name, type, help, and how to read it from the stats.
struct StreamMetric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&StreamStats) -> u64,
}

const STREAM_METRICS: &[StreamMetric] = &[
    StreamMetric {
        name: "camgate_stream_up",
        kind: "gauge",
        help: "1 while the stream's source is delivering media, else 0.",
        value: |s| u64::from(s.state == StreamState::Streaming),
    },
    StreamMetric {
        name: "camgate_stream_readers",
        kind: "gauge",
        help: "Readers subscribed to the stream now.",
        value: |s| s.readers as u64,
    },
    StreamMetric {
        name: "camgate_stream_bitrate_bps",
        kind: "gauge",
        help: "Incoming bitrate over the last second, in bits per second.",
        value: |s| s.bitrate_bps,
    },
    StreamMetric {
        name: "camgate_stream_bytes_in_total",
        kind: "counter",
        help: "Payload bytes received from the source.",
        value: |s| s.bytes_in,
    },
    StreamMetric {
        name: "camgate_stream_frames_in_total",
        kind: "counter",
        help: "Frames received from the source.",
        value: |s| s.frames_in,
    },
    StreamMetric {
        name: "camgate_stream_reader_drops_total",
        kind: "counter",
        help: "Frames readers lost for being too slow.",
        value: |s| s.drops,
    },
    StreamMetric {
        name: "camgate_stream_reader_overflows_total",
        kind: "counter",
        help: "Times a reader's queue overflowed and skipped to the next keyframe.",
        value: |s| s.overflows,
    },
    StreamMetric {
        name: "camgate_stream_reconnects_total",
        kind: "counter",
        help: "Source sessions started after the first one.",
        value: |s| s.reconnects,
    },
    StreamMetric {
        name: "camgate_stream_gop_bytes",
        kind: "gauge",
        help: "Bytes in the stream's GOP cache.",
        value: |s| s.gop_bytes as u64,
    },
];

/// One server-wide RTSP metric.
struct RtspMetric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&ServerCounters) -> u64,
}

const RTSP_METRICS: &[RtspMetric] = &[
    RtspMetric {
        name: "camgate_rtsp_connections",
        kind: "gauge",
        help: "Open RTSP TCP connections.",
        value: |c| c.connections.load(Ordering::Relaxed) as u64,
    },
    RtspMetric {
        name: "camgate_rtsp_sessions",
        kind: "gauge",
        help: "Live RTSP sessions.",
        value: |c| c.sessions.load(Ordering::Relaxed) as u64,
    },
    RtspMetric {
        name: "camgate_rtsp_playing",
        kind: "gauge",
        help: "RTSP sessions playing now.",
        value: |c| c.playing.load(Ordering::Relaxed) as u64,
    },
    RtspMetric {
        name: "camgate_rtsp_rtp_packets_total",
        kind: "counter",
        help: "RTP packets sent by the RTSP server.",
        value: |c| c.rtp_packets.load(Ordering::Relaxed),
    },
    RtspMetric {
        name: "camgate_rtsp_rtp_bytes_total",
        kind: "counter",
        help: "RTP bytes (headers and payload) sent by the RTSP server.",
        value: |c| c.rtp_bytes.load(Ordering::Relaxed),
    },
    RtspMetric {
        name: "camgate_rtsp_errors_total",
        kind: "counter",
        help: "RTSP requests answered with a 4xx or 5xx status.",
        value: |c| c.errors.load(Ordering::Relaxed),
    },
    RtspMetric {
        name: "camgate_rtsp_timeouts_total",
        kind: "counter",
        help: "RTSP connections closed for an incomplete request, no authentication or idleness.",
        value: |c| c.timed_out.load(Ordering::Relaxed),
    },
];

/// One metric of the gate both servers admit connections through.
struct GateMetric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Gate) -> u64,
}

const GATE_METRICS: &[GateMetric] = &[
    GateMetric {
        name: "camgate_connections_open",
        kind: "gauge",
        help: "Client connections open now (RTSP and HTTP).",
        value: |g| g.open() as u64,
    },
    GateMetric {
        name: "camgate_connections_refused_total",
        kind: "counter",
        help: "Client connections refused for max_connections or max_connections_per_address.",
        value: |g| g.counters().refused.load(Ordering::Relaxed),
    },
    GateMetric {
        name: "camgate_login_failures_total",
        kind: "counter",
        help: "Failed logins (RTSP and HTTP).",
        value: |g| g.counters().failed_logins.load(Ordering::Relaxed),
    },
    GateMetric {
        name: "camgate_logins_throttled_total",
        kind: "counter",
        help: "Logins refused unchecked because their address was backing off.",
        value: |g| g.counters().throttled_logins.load(Ordering::Relaxed),
    },
];

/// The whole exposition: every stream's metrics, then the RTSP server's if it runs, then the
/// gate's.
pub(super) fn render(hub: &Hub, rtsp: Option<&ServerCounters>, gate: Option<&Gate>) -> String {
    let stats: Vec<StreamStats> = hub.streams().iter().map(|s| s.stats()).collect();
    let mut out = String::with_capacity(256 + stats.len() * STREAM_METRICS.len() * 64);
    for m in STREAM_METRICS {
        let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
        for s in &stats {
            let _ = writeln!(
                out,
                "{}{{stream=\"{}\"}} {}",
                m.name,
                escape_label(&s.name),
                (m.value)(s)
            );
        }
    }
    if let Some(c) = rtsp {
        for m in RTSP_METRICS {
            let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
            let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
            let _ = writeln!(out, "{} {}", m.name, (m.value)(c));
        }
    }
    if let Some(g) = gate {
        for m in GATE_METRICS {
            let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
            let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
            let _ = writeln!(out, "{} {}", m.name, (m.value)(g));
        }
    }
    out
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn rtsp_counters_are_rendered_with_help_and_type() {
        let hub = Hub::new();
        let c = ServerCounters::default();
        c.sessions.store(3, Ordering::Relaxed);
        c.rtp_bytes.store(12345, Ordering::Relaxed);
        let text = render(&hub, Some(&c), None);
        assert!(text.contains("# TYPE camgate_rtsp_sessions gauge\ncamgate_rtsp_sessions 3\n"));
        assert!(text.contains(
            "# TYPE camgate_rtsp_rtp_bytes_total counter\ncamgate_rtsp_rtp_bytes_total 12345\n"
        ));
        assert!(text.contains("# HELP camgate_stream_up "));
        assert!(!render(&hub, None, None).contains("camgate_rtsp_"));
        let g = Gate::new(Default::default(), Default::default());
        let _open = g.admit("10.0.0.1".parse().unwrap(), "t").unwrap();
        let text = render(&hub, None, Some(&g));
        assert!(
            text.contains("# TYPE camgate_connections_open gauge\ncamgate_connections_open 1\n")
        );
    }
}
