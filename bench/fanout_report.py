#!/usr/bin/env python3
"""Turns the JSON lines written by bench/rtsp_fanout.sh into the Markdown tables of
BENCHMARKS.md: fan-out cost per server, transport and reader count, with ratios, the
warm-start latency, the memory check, and a verdict on each target of the issue.

Usage: fanout_report.py RESULTS.jsonl
"""

import json
import sys

# The targets.
MAX_CPU_VS_GST = 0.5
MAX_CPU_VS_LIMIT = 1.5
MAX_FIRST_KEYFRAME_MS = 50.0
MAX_EXTRA_RSS_MB = 50.0
TARGET_N = 200


def limit_writes(size):
    """How the limit server cuts the stream into writes."""
    return "each frame whole" if size == 0 else f"{size // 1024} KiB pieces"


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def cpu_per_gb(row):
    gb = row["load"]["rtp_bytes"] / 1e9
    return row["cpu_s"] / gb if gb > 0 else None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def misses(row):
    """Why a run does not count as "no reader misses a frame" (empty if it does)."""
    load = row["load"]
    why = []
    if load["failed_readers"]:
        why.append(f"{load['failed_readers']} readers failed ({'; '.join(load['errors'][:2])})")
    if load["seq_lost"]:
        why.append(f"{load['seq_lost']} RTP packets lost in {load['readers_with_seq_loss']} readers")
    if load["frames_missing"]:
        why.append(
            f"{load['frames_missing']} frames skipped in {load['readers_with_frame_gaps']} readers"
        )
    if load["depacketize_errors"]:
        why.append(f"{load['depacketize_errors']} depacketize errors")
    if load["readers_without_keyframe"]:
        why.append(f"{load['readers_without_keyframe']} readers without a keyframe")
    hub = row.get("hub") or {}
    if hub.get("drops"):
        why.append(f"hub dropped {hub['drops']} frames ({hub.get('overflows', 0)} queue overflows)")
    return why


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    meta = next((r for r in rows if r["kind"] == "meta"), {})
    fan = [r for r in rows if r["kind"] == "fanout"]
    warm = [r for r in rows if r["kind"] == "warm"]
    mem = next((r for r in rows if r["kind"] == "memory"), None)
    out = []
    p = out.append

    p(f"#### Run of {meta.get('date', '?')} (camgate {meta.get('rev', '?')})")
    p("")
    p(
        f"Machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} vCPU, kernel {meta.get('kernel', '?')}; "
        f"load generator, servers and camgate's upstream GStreamer source all on the same cores, "
        f"loopback only. Input: {meta.get('input', '?')}. Each run: {meta.get('duration', '?')} s of "
        f"playing per reader, readers started {meta.get('ramp_ms', '?')} ms apart. "
        f"The limit writes {limit_writes(meta.get('limit_write_size', 16384))}."
    )
    p("")
    p(
        "| server | transport | N | failed | frames/reader min–max | RTP lost | frames skipped "
        "| Mbit/s per reader | delivered GB | server CPU s | CPU s/GB | ÷ GStreamer | ÷ limit | load-gen CPU s |"
    )
    p("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    index = {(r["server"], r["transport"], r["n"]): r for r in fan}
    for r in fan:
        load = r["load"]
        c = cpu_per_gb(r)
        gst = index.get(("gstreamer", r["transport"], r["n"]))
        lim = index.get(("limit", "tcp", r["n"]))
        vs_gst = ratio(c, cpu_per_gb(gst)) if gst and r["server"] != "gstreamer" else None
        vs_lim = ratio(c, cpu_per_gb(lim)) if lim and r["server"] != "limit" else None
        p(
            f"| {r['server']} | {r['transport']} | {r['n']} | {load['failed_readers']} "
            f"| {load['frames_min']}–{load['frames_max']} | {load['seq_lost']} | {load['frames_missing']} "
            f"| {fmt(load['mbit_per_reader'])} | {fmt(load['rtp_bytes'] / 1e9)} | {fmt(r['cpu_s'])} "
            f"| {fmt(c, 3)} | {fmt(vs_gst)} | {fmt(vs_lim)} | {fmt(load.get('client_cpu_s'))} |"
        )
    p("")
    p(
        "CPU s/GB = the server process's user+system CPU seconds over the run (from "
        "/proc/PID/stat, handshakes and teardown included) divided by the RTP bytes (header + "
        "payload) its readers received. \"÷ limit\" compares with the TCP limit at the same N, "
        "also for UDP rows (there is no UDP limit). \"frames skipped\" counts frames missing "
        "from a reader's timestamp sequence (a frame interval longer than 1.5× the nominal one), "
        "which also catches frames a server drops without a sequence-number gap."
    )
    p("")

    if warm:
        p("Warm-start latency: 20 sequential single readers of a stream that is already playing "
          "(pauses of 0–2 s between them, so they land at every point of the 2 s GOP), time from "
          "sending PLAY to the last packet of the first complete keyframe.")
        p("")
        p("| server | readers | p50 ms | p99 ms | max ms | without keyframe |")
        p("|---|---:|---:|---:|---:|---:|")
        for w in warm:
            k = w["load"]["first_keyframe_ms"]
            p(
                f"| {w['server']} | {w['load']['readers']} | {fmt(k['p50'], 1)} | {fmt(k['p99'], 1)} "
                f"| {fmt(k['max'], 1)} | {w['load']['readers_without_keyframe']} |"
            )
        p("")

    if mem:
        p("Memory: camgate RSS with 10 preloaded, warm cameras (the same upstream stream under 10 "
          "names, no readers) against camgate with no camera.")
        p("")
        p("| camgate | RSS MB | GOP caches MB | RSS − GOP caches − empty MB |")
        p("|---|---:|---:|---:|")
        p(f"| 0 streams | {fmt(mem['rss0_kb'] / 1024, 1)} | 0 | – |")
        extra = (mem["rss10_kb"] * 1024 - mem["gop_bytes"] - mem["rss0_kb"] * 1024) / 1048576
        p(
            f"| 10 streams | {fmt(mem['rss10_kb'] / 1024, 1)} | {fmt(mem['gop_bytes'] / 1048576, 1)} "
            f"| {fmt(extra, 1)} |"
        )
        if mem.get("fanout_hwm_kb"):
            p("")
            most = max((r["n"] for r in fan), default=0)
            p(f"(For scale: camgate's peak RSS during the fan-out runs above, 1 stream and up to "
              f"{most} readers, was {fmt(mem['fanout_hwm_kb'] / 1024, 1)} MB.)")
        p("")

    p("Targets:")
    p("")
    for t in ("tcp", "udp"):
        r = index.get(("camgate", t, TARGET_N))
        if r is None:
            continue
        why = misses(r)
        verdict = "**met**" if not why else "**missed**: " + "; ".join(why)
        p(f"- N = {TARGET_N}, {t.upper()}: no reader misses a frame — {verdict}")
    for t in ("tcp", "udp"):
        r, g = index.get(("camgate", t, TARGET_N)), index.get(("gstreamer", t, TARGET_N))
        if r and g:
            q = ratio(cpu_per_gb(r), cpu_per_gb(g))
            ok = q is not None and q <= MAX_CPU_VS_GST
            p(
                f"- N = {TARGET_N}, {t.upper()}: camgate CPU per byte ≤ {MAX_CPU_VS_GST}× GStreamer's — "
                f"{fmt(q)}× ({fmt(cpu_per_gb(r), 3)} vs {fmt(cpu_per_gb(g), 3)} CPU s/GB): "
                f"**{'met' if ok else 'missed'}**"
            )
    r, lim = index.get(("camgate", "tcp", TARGET_N)), index.get(("limit", "tcp", TARGET_N))
    if r and lim:
        q = ratio(cpu_per_gb(r), cpu_per_gb(lim))
        ok = q is not None and q <= MAX_CPU_VS_LIMIT
        p(
            f"- N = {TARGET_N}, TCP: camgate CPU per byte ≤ {MAX_CPU_VS_LIMIT}× the limit's — "
            f"{fmt(q)}× ({fmt(cpu_per_gb(r), 3)} vs {fmt(cpu_per_gb(lim), 3)} CPU s/GB): "
            f"**{'met' if ok else 'missed'}**"
        )
    u = index.get(("camgate", "udp", TARGET_N))
    if u and lim:
        q = ratio(cpu_per_gb(u), cpu_per_gb(lim))
        p(
            f"- N = {TARGET_N}, UDP against the TCP limit (no UDP limit exists; for scale only): "
            f"{fmt(q)}×"
        )
    cw = next((w for w in warm if w["server"] == "camgate"), None)
    if cw:
        k = cw["load"]["first_keyframe_ms"]
        ok = (
            k["max"] is not None
            and k["max"] <= MAX_FIRST_KEYFRAME_MS
            and cw["load"]["readers_without_keyframe"] == 0
        )
        p(
            f"- Warm start: first keyframe within {MAX_FIRST_KEYFRAME_MS:.0f} ms — p50 {fmt(k['p50'], 1)} ms, "
            f"max {fmt(k['max'], 1)} ms: **{'met' if ok else 'missed'}**"
        )
    if mem:
        extra = (mem["rss10_kb"] * 1024 - mem["gop_bytes"] - mem["rss0_kb"] * 1024) / 1048576
        ok = extra <= MAX_EXTRA_RSS_MB
        p(
            f"- Ten streams cost ≤ {MAX_EXTRA_RSS_MB:.0f} MB RSS beyond their GOP caches — "
            f"{fmt(extra, 1)} MB: **{'met' if ok else 'missed'}**"
        )
    print("\n".join(out))


if __name__ == "__main__":
    main()
