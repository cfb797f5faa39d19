#!/usr/bin/env python3
"""Markdown report of one bench/soak.sh run, from the files it leaves in its data directory
(run.json, readers.json, abuse.json, samples.jsonl, probes.jsonl, camgate.log, metrics-*.txt).

    soak_report.py DATA_DIR     the run's report (a "### Run of ..." subsection)
    soak_report.py --about      the section's introduction
    soak_report.py --append BENCHMARKS.md REPORT
                                appends REPORT at the end of the soak section (made, with the
                                introduction, the first time)
"""

import collections
import json
import os
import re
import sys

ABOUT = """\
What the hardening asks of a server on an open network: honest readers keep every frame while
others abuse it, and the abuse costs bounded descriptors and memory, no panic, no crash.

### The command

```sh
bench/soak.sh                   # 10 minutes; prints the report (Markdown) on stdout
bench/soak.sh --update          # and appends it here
bench/soak.sh --duration 60 -- --guess-pause-ms 10   # flags after -- go to soak-abuse
```

### What runs

- **camgate** (release) with one `[[users]]` viewer and one preloaded camera: a simulated
  camera (`camgate sim rtsp`, H.264 640x360 25 fps GOP 50 + G.711, Digest-protected), pulled
  over TCP. Default limits: 1024 connections, 128 per address, header timeout 10 s, login
  back-off after 5 failures (1 s doubling to 60 s).
- **Honest readers** (`rtsp-load`, 127.0.0.1): 20 RTSP readers over TCP for the whole run,
  logged in with Digest (`qop=auth`, nonce count), counting frames, RTP sequence gaps and
  frames missing from the timestamp sequence. An honest `GET /api/streams` with the right
  password every 30 s besides.
- **Abuse** (`soak-abuse`, one single-threaded process, from its own addresses), all at once,
  from 3 s after the readers start until 3 s before they stop:
  - *slowloris*: 200 connections (100 RTSP, 100 HTTP) from 127.0.0.2, each sending an
    endless request head a byte per second; reconnects when closed. One address, so that past
    the per-address limit (128) the rest are refused with 503 and retry every second;
  - *garbage*: 50 connections/s from 127.0.2.1–254 (many addresses, so that the login
    back-off does not keep the bad Authorization headers from being parsed), RTSP and HTTP in
    turn: random bytes, bad request lines, a 20–40 KB header, up to 1600 headers, control
    characters in a header value, multibyte UTF-8 in Digest parameters (`nonce="€€€€€€€€"`)
    and Basic, bad `Content-Length`s, stray interleaved frames; each waits up to 3 s for the
    answer;
  - *auth guessing*: 4 keep-alive connections from 127.0.0.4, 2 RTSP (DESCRIBE with a wrong
    Digest answer to the connection's own challenge, `qop=auth`, and wrong Basic, in turn), 2
    HTTP (`GET /api/streams`, wrong Basic), each sending its next guess as soon as the answer
    arrives, 401, 503 or 429 alike;
  - *churn*: 200 connections/s from 127.0.1.1–4 to both ports, closed at once without a byte
    (FIN and RST in turn).
- **Measured**: camgate's open descriptors (`/proc/PID/fd`), RSS, threads and CPU at start,
  every 30 s and 5 s after the load ends; "panicked" in its log; whether it is alive at the
  end and exits 0 on SIGTERM; the generator's, the readers' and the camera's CPU, and the
  machine's busy share (`/proc/stat`), since all of it shares the machine's cores."""


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def num(v, fmt="{:,}"):
    return "–" if v is None else fmt.format(v).replace(",", " ")


def ok(cond):
    return "yes" if cond else "**NO**"


def hub_sums(hub):
    keys = ("drops", "overflows", "reconnects")
    return {k: sum(s.get(k, 0) or 0 for s in hub.values() if isinstance(s, dict)) for k in keys}


def metrics(path):
    """Gate counters from a Prometheus text file: name -> value (summed over labels)."""
    out = collections.Counter()
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"(camgate_(?:connections|login|logins|rtsp_timeouts)\w*)(?:\{[^}]*\})? ([0-9.e+]+)$", line.strip())
                if m:
                    out[m.group(1)] += float(m.group(2))
    except OSError:
        pass
    return out


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_summary(path):
    levels = collections.Counter()
    kinds = collections.Counter()
    try:
        with open(path, errors="replace") as f:
            for raw in f:
                line = ANSI.sub("", raw.rstrip("\n"))
                m = re.search(r"\b(TRACE|DEBUG|INFO|WARN|ERROR)\b", line)
                if not m:
                    continue
                levels[m.group(1)] += 1
                if m.group(1) in ("WARN", "ERROR"):
                    msg = line[m.end():].strip()
                    msg = re.sub(r"first bytes [0-9a-f]+", "first bytes …", msg)
                    msg = re.sub(r"\s*\w+=\S+", "", msg)  # key=value fields (peer, ...)
                    msg = re.sub(r"\d+(\.\d+)*", "N", msg)
                    kinds[f"{m.group(1)} {msg[:110]}"] += 1
    except OSError:
        pass
    return levels, kinds


def report(data):
    run = load(os.path.join(data, "run.json"), {})
    readers = load(os.path.join(data, "readers.json"), {})
    abuse = load(os.path.join(data, "abuse.json"), {})
    samples = jsonl(os.path.join(data, "samples.jsonl"))
    probes = jsonl(os.path.join(data, "probes.jsonl"))
    out = []
    p = out.append
    dirty = " + uncommitted changes" if run.get("dirty") else ""
    p(f"### Run of {run.get('date', '?')} (camgate {run.get('rev', '?')}{dirty}), "
      f"{run.get('cores', '?')} vCPU")
    p("")
    extra = f" -- {run['abuse_args']}" if run.get("abuse_args") else ""
    p(f"Command: `bench/soak.sh --duration {run.get('duration')}{extra}` "
      f"({run.get('readers')} readers; CPU: {run.get('cpu', '?')})")
    p("")

    # Honest readers.
    per = readers.get("per_reader") or []
    play = [r.get("play_s") or 0 for r in per]
    expected = sum(round(s * 25) for s in play)
    hub0, hub1 = hub_sums(run.get("hub_start") or {}), hub_sums(run.get("hub_end") or {})
    hub = {k: hub1[k] - hub0[k] for k in hub0}
    missed = (readers.get("frames_missing") or 0)
    seq_lost = readers.get("seq_lost") or 0
    p("**Honest readers** (20 × RTSP/TCP, Digest login, 127.0.0.1):")
    p("")
    p("| readers failed | frames | per reader | 25 fps × play time | RTP seq lost (gaps) | frames missing (gaps) | late / depacketize errors | hub drops / reconnects |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|")
    p(f"| {readers.get('failed_readers', '–')} of {readers.get('readers', '–')} "
      f"| {num(readers.get('frames'))} "
      f"| {num(readers.get('frames_min'))}–{num(readers.get('frames_max'))} "
      f"| {num(expected)} "
      f"| {num(seq_lost)} ({num(readers.get('seq_gap_events'))}) "
      f"| {num(missed)} ({num(readers.get('frame_gaps'))}) "
      f"| {num(readers.get('late_packets'))} / {num(readers.get('depacketize_errors'))} "
      f"| {num(hub.get('drops'))} / {num(hub.get('reconnects'))} |")
    if readers.get("errors"):
        p("")
        p("Reader errors: " + "; ".join(f"`{e}`" for e in readers["errors"]))
    good = [x for x in probes if x.get("status") == 200]
    slow = max((x.get("seconds") or 0 for x in probes), default=None)
    p("")
    kf = readers.get("first_keyframe_ms") or {}
    p(f"Frames beyond 25 fps × play time come from the GOP cache at PLAY (a reader starts with "
      f"the cached GOP). PLAY to first keyframe: p50 {num(kf.get('p50'), '{:.1f}')} ms, max "
      f"{num(kf.get('max'), '{:.1f}')} ms.")
    p("")
    p(f"Honest HTTP probes (`GET /api/streams`, right password, every {run.get('sample_s', 30)} s): "
      f"{len(good)} of {len(probes)} answered 200, slowest "
      f"{num(None if slow is None else slow * 1000, '{:.1f}')} ms.")
    p("")

    # Abuse.
    loads = abuse.get("loads") or {}
    p(f"**Abuse** (soak-abuse, {num(abuse.get('wall_s'), '{:.0f}')} s):")
    p("")
    p("| load | server | connections | connect errors | sent | 401 | 408 | 429 | 503 | 400 | other answers | closed by server | resets | no answer | skipped | held (mean / max) |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("slowloris", "garbage", "auth_guessing", "churn"):
        for proto in ("rtsp", "http"):
            c = (loads.get(name) or {}).get(proto)
            if not c:
                continue
            answers = c.get("answers") or {}
            other = sum(v for k, v in answers.items() if k not in ("401", "408", "429", "503", "400"))
            held = c.get("held_ms") or {}
            held_s = (f"{held['mean'] / 1000:.1f} s / {held['max'] / 1000:.1f} s"
                      if held.get("count") else "–")
            p(f"| {name.replace('_', ' ')} | {proto.upper()} | {num(c.get('connections'))} "
              f"| {num(c.get('connect_errors'))} | {num(c.get('sent'))} "
              f"| {num(c.get('unauthorized_401'))} | {num(c.get('timeouts_408'))} "
              f"| {num(c.get('refused_429'))} | {num(c.get('refused_503'))} "
              f"| {num(c.get('bad_request_400'))} | {num(other)} "
              f"| {num(c.get('closed_by_server'))} | {num(c.get('resets'))} "
              f"| {num(c.get('no_answer'))} | {num(c.get('skipped'))} | {held_s} |")
    others = collections.Counter()
    errors = []
    for name, l in loads.items():
        for proto in ("rtsp", "http"):
            c = l.get(proto) or {}
            for k, v in (c.get("answers") or {}).items():
                if k not in ("401", "408", "429", "503", "400"):
                    others[f"{k}"] += v
            for e in c.get("error_messages") or []:
                errors.append(f"{name}/{proto}: {e}")
    if others:
        p("")
        p("Other answers: " + ", ".join(f"{k} × {num(v)}" for k, v in sorted(others.items())))
    kinds = (loads.get("garbage") or {}).get("kinds") or {}
    if kinds:
        p("")
        p("Garbage outcomes per kind (first answer, or how the connection ended): " + "; ".join(
            f"{k}: " + ", ".join(f"{o} × {num(n)}" for o, n in sorted(v.items(), key=lambda x: -x[1]))
            for k, v in sorted(kinds.items())))
    if errors:
        p("")
        p("Generator-side errors seen: " + "; ".join(f"`{e}`" for e in errors[:12]))
    p("")

    # camgate's resources.
    def series(key):
        return [s.get(key) for s in samples if isinstance(s.get(key), (int, float))]

    fds, rss, thr = series("fds"), series("rss_kb"), series("threads")
    first = samples[0] if samples else {}
    last = samples[-1] if samples else {}
    during = [s for s in samples if s.get("label") not in ("start", "end")]
    half = during[len(during) // 3:] if len(during) >= 3 else during
    growth = None
    if len(half) >= 2 and all(isinstance(s.get("rss_kb"), (int, float)) for s in (half[0], half[-1])):
        growth = (half[-1]["rss_kb"] - half[0]["rss_kb"]) / 1024
    p("**camgate** (samples every 30 s; start before the load, end 5 s after it):")
    p("")
    p("| | start | end | max during the run |")
    p("|---|---:|---:|---:|")
    p(f"| open fds | {num(first.get('fds'))} | {num(last.get('fds'))} | {num(max(fds, default=None))} |")
    mb = lambda v: None if v is None else v / 1024
    p(f"| RSS | {num(mb(first.get('rss_kb')), '{:.1f} MB')} | {num(mb(last.get('rss_kb')), '{:.1f} MB')} "
      f"| {num(mb(max(rss, default=None)), '{:.1f} MB')} |")
    p(f"| threads | {num(first.get('threads'))} | {num(last.get('threads'))} | {num(max(thr, default=None))} |")
    p("")
    if growth is not None:
        p(f"RSS from the sample at one third of the run to the last one under load: "
          f"{growth:+.1f} MB.")
    m = metrics(os.path.join(data, "metrics-end.txt"))
    if m:
        p("Gate counters at the end (`/metrics`): " + ", ".join(
            f"`{k}` {num(int(v))}" for k, v in sorted(m.items())) + ".")
    p("")

    # CPU.
    busy, idle = run.get("machine_busy_ticks"), run.get("machine_idle_ticks")
    wall = abuse.get("wall_s") or run.get("duration") or 1
    cores = run.get("cores") or 1
    p("**CPU** (the machine's cores are shared by everything below):")
    p("")
    window = run.get("window_s") or wall
    p(f"| process (over the {window:.0f} s of load) | CPU s | share of one core |")
    p("|---|---:|---:|")
    ours = 0.0
    rows = [
        ("camgate", (run.get("camgate_cpu_ticks") or 0) / 100 if run.get("camgate_cpu_ticks") is not None else None),
        ("soak-abuse (the abuse generator)", abuse.get("generator_cpu_s")),
        (f"rtsp-load ({run.get('readers')} readers)", readers.get("client_cpu_s")),
        ("simulated camera", run["sim_cpu_ticks"] / 100 if run.get("sim_cpu_ticks") is not None else None),
    ]
    for name, secs in rows:
        if secs is None:
            continue
        ours += secs
        p(f"| {name} | {secs:.1f} | {100 * secs / window:.0f} % |")
    if busy is not None and idle is not None and busy + idle > 0:
        other = max(busy / 100 - ours, 0)
        p(f"| everything else on the machine (other users' jobs, kernel) | {other:.0f} | {100 * other / window:.0f} % |")
        p(f"| whole machine (`/proc/stat`) | {busy / 100:.0f} | "
          f"{100 * busy / (busy + idle):.0f} % of {cores} cores busy |")
    p("")

    # Health.
    levels, lkinds = log_summary(os.path.join(data, "camgate.log"))
    term = run.get("sigterm_exit")
    log_kb = (run.get("log_bytes") or 0) / 1024
    p("**Health**: panics in camgate's log: **{}**; alive at the end: {}; exit status on SIGTERM: {}; "
      "log (`--log info`): {} lines, {:.0f} KB ({}).".format(
          run.get("panics", "?"), ok(run.get("alive_at_end") == 1),
          "–" if term is None else term, num(run.get("log_lines")), log_kb,
          ", ".join(f"{k} {num(v)}" for k, v in sorted(levels.items())) or "none"))
    if lkinds:
        p("")
        p("Most frequent warnings (numbers as N, fields left out):")
        p("")
        for k, v in lkinds.most_common(8):
            p(f"- {num(v)} × `{k}`")
    p("")
    verdict = [
        ("no honest frame missed", missed == 0 and seq_lost == 0 and (readers.get("failed_readers") == 0)),
        ("no panic", run.get("panics") == 0),
        ("alive", run.get("alive_at_end") == 1),
        ("fds back to start (±10)", isinstance(first.get("fds"), int) and isinstance(last.get("fds"), int)
         and abs(last["fds"] - first["fds"]) <= 10),
    ]
    p("Targets: " + "; ".join(f"{k}: {ok(v)}" for k, v in verdict) + ".")
    return "\n".join(out)


HEADING = "## Soak: abuse beside 20 honest readers"


def append(path, report_path):
    with open(path) as f:
        text = f.read().rstrip("\n")
    with open(report_path) as f:
        run = f.read().strip("\n")
    if HEADING not in text.split("\n"):
        text += "\n\n" + HEADING + "\n\n" + ABOUT
    # The run goes last in the soak section, before the next "## " section if any.
    lines = text.split("\n")
    start = lines.index(HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    while end > start and lines[end - 1] == "":
        end -= 1
    tail = [""] + lines[end:] if end < len(lines) else []
    out = lines[:end] + ["", *run.split("\n")] + tail
    with open(path, "w") as f:
        f.write("\n".join(out).rstrip("\n") + "\n")


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--about":
        print(ABOUT)
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--append":
        append(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(report(sys.argv[1]))


if __name__ == "__main__":
    main()
