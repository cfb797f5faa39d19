#!/usr/bin/env bash
# RTSP fan-out benchmark: camgate against GStreamer's gst-rtsp-server and against the "limit"
# (a server that only writes pre-recorded interleaved bytes in 16 KiB writes), N readers of
# one 4 Mbit/s H.264 stream over TCP and UDP, plus warm-start latency and memory per stream.
# Prints a Markdown report on stdout; with --update also appends it to BENCHMARKS.md.
#
#   bench/rtsp_fanout.sh [--update] [--duration SECS] [--readers "1 50 200"] [--ramp-ms MS]
#                        [--no-build] [--fresh] [--limit-write-size BYTES]
#
# Everything runs on 127.0.0.1. Generated data (input file, recording, logs) goes to
# target/bench-data (override with CAMGATE_BENCH_DATA). Needs ffmpeg, and python3-gi with
# gir1.2-gst-rtsp-server-1.0 for /usr/bin/python3. Takes about 10 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${CAMGATE_BENCH_DATA:-$ROOT/target/bench-data}
PY=/usr/bin/python3 # python3-gi is installed for the system python only
BIN=$ROOT/target/release
DURATION=20
NS="1 50 200"
RAMP_MS=10
LIMIT_WRITE=16384
UPDATE=0
BUILD=1
FRESH=0

while [ $# -gt 0 ]; do
    case "$1" in
    --update) UPDATE=1 ;;
    --duration) DURATION=$2; shift ;;
    --readers) NS=$2; shift ;;
    --ramp-ms) RAMP_MS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --fresh) FRESH=1 ;;
    --limit-write-size) LIMIT_WRITE=$2; shift ;; # 0: one write per frame
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "rtsp_fanout.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

mkdir -p "$DATA"
RUN=$DATA/run
rm -rf "$RUN"
mkdir -p "$RUN"
RESULTS=$RUN/results.jsonl
: >"$RESULTS"

log() { echo "rtsp_fanout: $*" >&2; }

# Children we started, killed by pid on exit.
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # PID: stops one child we started and forgets it
    local p keep=()
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

cpu_ticks() { awk '$3 == "Z" { exit 1 } { print $14 + $15 }' "/proc/$1/stat"; } # fails once PID is gone
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json_get() { $PY -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[k]
print(d)' "$1"; }

wait_url() { # FILE PID: waits for {"url": ...} on the first line of FILE
    local i
    for i in $(seq 1 200); do
        if [ -s "$1" ]; then
            head -n1 "$1" | json_get url
            return
        fi
        kill -0 "$2" 2>/dev/null || { log "server $2 died; see ${1%.out}.err"; exit 1; }
        sleep 0.1
    done
    log "no URL in $1 after 20 s"
    exit 1
}

# ---------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    log "building (release)"
    (cd "$ROOT" && cargo build --release -q -p camgate -p camgate-bench)
fi

INPUT=$DATA/in.mkv
if [ ! -s "$INPUT" ] || [ "$FRESH" = 1 ]; then
    log "making the input: 30 s of 1280x720 25 fps H.264 at 4 Mbit/s, GOP 50, no B-frames"
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 \
        -c:v libx264 -b:v 4M -maxrate 4M -bufsize 2M -g 50 -bf 0 -preset veryfast -t 30 "$INPUT"
fi

start_gst() { # NAME PATH: starts a gst-rtsp-server reference on the input; sets GST_URL, GST_PID
    $PY "$ROOT/bench/gst_rtsp_server.py" --port 0 --file "$INPUT" --path "$2" \
        >"$RUN/$1.out" 2>"$RUN/$1.err" &
    GST_PID=$!
    PIDS+=("$GST_PID")
    GST_URL=$(wait_url "$RUN/$1.out" "$GST_PID")
}

start_camgate() { # NAME CONFIG: sets CG_PID, CG_RTSP, CG_HTTP
    "$BIN/camgate" serve -c "$2" >"$RUN/$1.out" 2>"$RUN/$1.err" &
    CG_PID=$!
    PIDS+=("$CG_PID")
    local i
    for i in $(seq 1 100); do
        curl -sf "http://$CG_HTTP/api/streams" >/dev/null 2>&1 && return
        kill -0 "$CG_PID" 2>/dev/null || { log "camgate died; see $RUN/$1.err"; exit 1; }
        sleep 0.1
    done
    log "camgate did not start; see $RUN/$1.err"
    exit 1
}

camgate_config() { # FILE SOURCE_URL COUNT: COUNT cameras named cam, c1, c2... (0 = none)
    {
        echo "[server]"
        echo "rtsp_listen = \"$CG_RTSP\""
        echo "http_listen = \"$CG_HTTP\""
        echo "rtp_port = 0"
        local i
        for ((i = 0; i < $3; i++)); do
            echo
            echo "[[camera]]"
            if [ "$i" = 0 ]; then echo 'name = "cam"'; else echo "name = \"c$i\""; fi
            echo "source = \"$2\""
            echo "preload = true"
        done
    } >"$1"
}

wait_warm() { # COUNT: waits until COUNT streams are streaming with a full GOP cached
    local i n
    for i in $(seq 1 300); do
        n=$(curl -sf "http://$CG_HTTP/api/streams" | $PY -c 'import json, sys
d = json.load(sys.stdin)
print(sum(1 for s in d.values() if s["state"] == "streaming" and s["gop_frames"] >= 25))' || echo 0)
        [ "$n" -ge "$1" ] && return
        # gst-rtsp-server can abort on its own assertion (see run_case's caller).
        kill -0 "$SRC_PID" 2>/dev/null ||
            { log "the upstream source server died; see $RUN/gst-src.err (run again)"; exit 1; }
        sleep 0.1
    done
    log "camgate streams not warm after 30 s"
    exit 1
}

hub_counters() { # prints {"drops": D, "overflows": O} summed over camgate's streams
    curl -sf "http://$CG_HTTP/api/streams" | $PY -c 'import json, sys
d = json.load(sys.stdin).values()
print(json.dumps({"drops": sum(s["drops"] for s in d), "overflows": sum(s["overflows"] for s in d)}))'
}

run_case() { # SERVER PID URL N TRANSPORT
    local server=$1 pid=$2 url=$3 n=$4 transport=$5 ramp=$RAMP_MS c0 c1 hub0="{}" hub1="{}"
    [ "$n" = 1 ] && ramp=0
    sleep 2 # let the previous run's sessions go
    [ "$server" = camgate ] && hub0=$(hub_counters)
    # A server that dies during the run has no result: DIED=1 tells the caller.
    DIED=0
    c0=$(cpu_ticks "$pid" 2>/dev/null) || { DIED=1; return 0; }
    "$BIN/rtsp-load" --url "$url" --readers "$n" --transport "$transport" \
        --duration "$DURATION" --ramp-ms "$ramp" >"$RUN/load-$server-$transport-$n.json" \
        2>"$RUN/load-$server-$transport-$n.err" || true
    c1=$(cpu_ticks "$pid" 2>/dev/null) || { DIED=1; return 0; }
    [ "$server" = camgate ] && hub1=$(hub_counters)
    $PY - "$server" "$transport" "$n" "$c0" "$c1" "$hub0" "$hub1" \
        "$RUN/load-$server-$transport-$n.json" >>"$RESULTS" <<'EOF'
import json, sys
server, transport, n, c0, c1, hub0, hub1, path = sys.argv[1:]
try:
    load = json.load(open(path))
except ValueError:
    sys.exit(f"rtsp-load wrote no JSON for {server} {transport} {n}; see {path[:-5]}.err")
h0, h1 = json.loads(hub0), json.loads(hub1)
hub = {k: h1[k] - h0[k] for k in h1} if h1 else None
cpu = (float(c1) - float(c0)) / 100
print(json.dumps({"kind": "fanout", "server": server, "transport": transport, "n": int(n),
                  "cpu_s": cpu, "hub": hub, "load": load}))
gb = load["rtp_bytes"] / 1e9
print(f"rtsp_fanout: {server} {transport} N={n}: server CPU {cpu:.2f} s, {gb:.2f} GB, "
      f"{cpu / gb if gb else 0:.3f} s/GB, frames/reader {load['frames_min']}-{load['frames_max']}, "
      f"RTP lost {load['seq_lost']}, frames skipped {load['frames_missing']}, "
      f"failed {load['failed_readers']}, hub {hub}", file=sys.stderr)
EOF
}

$PY - "$DURATION" "$RAMP_MS" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')" "$LIMIT_WRITE" \
    >>"$RESULTS" <<'EOF'
import datetime, json, os, platform, sys
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
print(json.dumps({"kind": "meta", "duration": float(sys.argv[1]), "ramp_ms": int(sys.argv[2]),
                  "limit_write_size": int(sys.argv[4]),
                  "rev": sys.argv[3], "cpu": cpu, "cores": os.cpu_count(),
                  "kernel": platform.release(),
                  "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "input": "testsrc2 1280x720 25 fps, x264 veryfast 4 Mbit/s (maxrate 4M, bufsize 2M), GOP 50, no B-frames, 30 s, looped"}))
EOF

# ---------------------------------------------------------------------------------------------
log "starting servers"
start_gst gst-ref /ref
REF_URL=$GST_URL REF_PID=$GST_PID
start_gst gst-src /src
SRC_URL=$GST_URL SRC_PID=$GST_PID
CG_RTSP=127.0.0.1:$(free_port)
CG_HTTP=127.0.0.1:$(free_port)
camgate_config "$RUN/camgate1.toml" "$SRC_URL" 1
start_camgate camgate1 "$RUN/camgate1.toml"
CAM_PID=$CG_PID
CAM_URL=rtsp://$CG_RTSP/cam
wait_warm 1

RECORDING=$DATA/camgate-25s.interleaved
if [ ! -s "$RECORDING" ] || [ ! -s "$RECORDING.sdp" ] || [ "$FRESH" = 1 ] ||
    [ "$BIN/camgate" -nt "$RECORDING" ] || [ "$INPUT" -nt "$RECORDING" ]; then
    log "recording 25 s of one camgate TCP reader for the limit server"
    "$BIN/rtsp-load" --url "$CAM_URL" --readers 1 --duration 25 --record "$RECORDING" \
        >"$RUN/record.json"
fi
"$BIN/limit-server" --recording "$RECORDING" --write-size "$LIMIT_WRITE" >"$RUN/limit.out" 2>"$RUN/limit.err" &
LIMIT_PID=$!
PIDS+=("$LIMIT_PID")
LIMIT_URL=$(wait_url "$RUN/limit.out" "$LIMIT_PID")

for n in $NS; do
    for transport in tcp udp; do
        run_case gstreamer "$REF_PID" "$REF_URL" "$n" "$transport"
        if [ "$DIED" = 1 ]; then
            # gst-rtsp-server sometimes aborts on its own assertion
            # (gst_rtsp_media_get_rates) as a client plays the remade shared media.
            log "the reference server died (see $RUN/gst-ref.err); restarting it and repeating gstreamer $transport N=$n"
            start_gst gst-ref-again /ref
            REF_URL=$GST_URL REF_PID=$GST_PID
            run_case gstreamer "$REF_PID" "$REF_URL" "$n" "$transport"
            [ "$DIED" = 0 ] || { log "the reference server died again; see $RUN/gst-ref-again.err"; exit 1; }
        fi
        run_case camgate "$CAM_PID" "$CAM_URL" "$n" "$transport"
        [ "$DIED" = 0 ] || { log "camgate died; see $RUN/camgate1.err"; exit 1; }
        if [ "$transport" = tcp ]; then
            run_case limit "$LIMIT_PID" "$LIMIT_URL" "$n" tcp
            [ "$DIED" = 0 ] || { log "the limit server died; see $RUN/limit.err"; exit 1; }
        fi
    done
done
FANOUT_HWM=$(hwm_kb "$CAM_PID")
stop "$LIMIT_PID"

# ---------------------------------------------------------------------------------------------
log "warm-start latency: 20 sequential readers each"
sleep 2
"$BIN/rtsp-load" --url "$CAM_URL" --readers 20 --sequential --ramp-ms 1000 --duration 5 \
    >"$RUN/warm-camgate.json"
# gst-rtsp-server stops a shared media without clients: keep one reader on it meanwhile.
"$BIN/rtsp-load" --url "$REF_URL" --readers 1 --duration 120 >/dev/null 2>&1 &
KEEPER=$!
PIDS+=("$KEEPER")
sleep 3
"$BIN/rtsp-load" --url "$REF_URL" --readers 20 --sequential --ramp-ms 1000 --duration 5 \
    >"$RUN/warm-gstreamer.json"
stop "$KEEPER"
for s in camgate gstreamer; do
    $PY -c 'import json, sys
print(json.dumps({"kind": "warm", "server": sys.argv[1], "load": json.load(open(sys.argv[2]))}))' \
        "$s" "$RUN/warm-$s.json" >>"$RESULTS"
done
stop "$CAM_PID"

# ---------------------------------------------------------------------------------------------
log "memory: camgate with 0 and with 10 warm streams"
camgate_config "$RUN/camgate0.toml" "$SRC_URL" 0
start_camgate camgate0 "$RUN/camgate0.toml"
sleep 3
RSS0=$(rss_kb "$CG_PID")
stop "$CG_PID"
camgate_config "$RUN/camgate10.toml" "$SRC_URL" 10
start_camgate camgate10 "$RUN/camgate10.toml"
wait_warm 10
sleep 4 # a few more GOPs, so every cache has been filled and emptied more than once
# Sample for two GOPs: the largest RSS, and the largest sum of the GOP caches (a full GOP each).
RSS10=0
GOP=0
for _ in $(seq 1 16); do
    r=$(rss_kb "$CG_PID")
    g=$(curl -sf "http://$CG_HTTP/api/streams" | $PY -c 'import json, sys
print(sum(s["gop_bytes"] for s in json.load(sys.stdin).values()))')
    [ "$r" -gt "$RSS10" ] && RSS10=$r
    [ "$g" -gt "$GOP" ] && GOP=$g
    sleep 0.25
done
stop "$CG_PID"
echo "{\"kind\": \"memory\", \"rss0_kb\": $RSS0, \"rss10_kb\": $RSS10, \"gop_bytes\": $GOP, \"fanout_hwm_kb\": $FANOUT_HWM}" >>"$RESULTS"

# ---------------------------------------------------------------------------------------------
REPORT=$RUN/report.md
$PY "$ROOT/bench/fanout_report.py" "$RESULTS" >"$REPORT"
cat "$REPORT"
if [ "$UPDATE" = 1 ]; then
    ENTRY=$RUN/entry.md
    {
        echo
        head -n1 "$REPORT"
        echo
        echo "Command: \`bench/rtsp_fanout.sh --update --duration $DURATION --readers \"$NS\" --ramp-ms $RAMP_MS --limit-write-size $LIMIT_WRITE\`"
        tail -n +2 "$REPORT"
    } >"$ENTRY"
    # The run goes last in the fan-out section's Results, before the next "## " section.
    $PY - "$ROOT/BENCHMARKS.md" "$ENTRY" <<'EOP'
import sys
path, entry = sys.argv[1], open(sys.argv[2]).read()
lines = open(path).read().split("\n")
start = lines.index("## RTSP fan-out: camgate, GStreamer and the limit")
end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
while end > start and lines[end - 1] == "":
    end -= 1
out = lines[:end] + entry.rstrip("\n").split("\n") + [""] + lines[end:]
if out[-1] != "":
    out.append("")
open(path, "w").write("\n".join(out).rstrip("\n") + "\n")
EOP
    log "added to BENCHMARKS.md (end of the fan-out results)"
fi
log "raw results in $RUN"
