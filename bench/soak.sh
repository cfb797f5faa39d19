#!/usr/bin/env bash
# Soak test: camgate with [[users]] under mixed abuse (slow request heads, garbage requests,
# password guessing, connect/close churn: soak-abuse) beside 20 honest RTSP readers over TCP
# (rtsp-load, logged in with Digest) of a simulated camera, for --duration seconds (default
# 600). Samples camgate's open fds, RSS and CPU every 30 s, probes the HTTP API with the right
# password meanwhile, counts panics in camgate's log, and prints a Markdown report on stdout;
# with --update also appends it to BENCHMARKS.md ("## Soak: abuse beside 20 honest readers").
#
#   bench/soak.sh [--update] [--duration SECS] [--readers N] [--sample SECS] [--no-build]
#                 [-- SOAK-ABUSE FLAGS...]
#
# Everything runs on 127.0.0.0/8 (the abuse from 127.0.0.2-127.0.2.254, the honest readers
# from 127.0.0.1). Generated data goes to target/bench-data/soak (override the parent with
# CAMGATE_BENCH_DATA). Stops only the processes it started, by PID.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${CAMGATE_BENCH_DATA:-$ROOT/target/bench-data}/soak
PY=/usr/bin/python3
BIN=$ROOT/target/release
DURATION=600
READERS=20
SAMPLE=30
UPDATE=0
BUILD=1
ABUSE_ARGS=()
VIEWER=viewer
VIEWER_PW=soak-viewer-pw
CAM_USER=admin
CAM_PW=cam-pw

while [ $# -gt 0 ]; do
    case "$1" in
    --update) UPDATE=1 ;;
    --duration) DURATION=$2; shift ;;
    --readers) READERS=$2; shift ;;
    --sample) SAMPLE=$2; shift ;;
    --no-build) BUILD=0 ;;
    --) shift; ABUSE_ARGS=("$@"); break ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$DURATION" -ge 20 ] 2>/dev/null || { echo "soak.sh: --duration must be a whole number >= 20" >&2; exit 2; }

rm -rf "$DATA"
mkdir -p "$DATA"
SAMPLES=$DATA/samples.jsonl
PROBES=$DATA/probes.jsonl
: >"$SAMPLES"
: >"$PROBES"

log() { echo "soak: $*" >&2; }

# Children we started, killed by PID on exit.
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo null; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo null; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo null; }
fds() { if [ -d "/proc/$1/fd" ]; then ls "/proc/$1/fd" 2>/dev/null | wc -l; else echo null; fi; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat; } # busy idle
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_url() { # FILE PID: waits for {"url": ...} on the first line of FILE
    local i
    for i in $(seq 1 200); do
        if [ -s "$1" ]; then
            head -n1 "$1" | $PY -c 'import json, sys; print(json.load(sys.stdin)["url"])'
            return
        fi
        kill -0 "$2" 2>/dev/null || { log "process $2 died; see ${1%.out}.err"; exit 1; }
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

log "starting the simulated camera"
"$BIN/camgate" sim rtsp --username "$CAM_USER" --password "$CAM_PW" >"$DATA/sim.out" 2>"$DATA/sim.err" &
SIM_PID=$!
PIDS+=("$SIM_PID")
SIM_URL=$(wait_url "$DATA/sim.out" "$SIM_PID")

CG_RTSP=127.0.0.1:$(free_port)
CG_HTTP=127.0.0.1:$(free_port)
CONFIG=$DATA/camgate.toml
cat >"$CONFIG" <<EOF
[server]
rtsp_listen = "$CG_RTSP"
http_listen = "$CG_HTTP"
rtp_port = 0

[[users]]
username = "$VIEWER"
password = "$VIEWER_PW"

[[camera]]
name = "cam"
source = "$SIM_URL"
username = "$CAM_USER"
password = "$CAM_PW"
transport = "tcp"
preload = true
EOF

log "starting camgate ($CG_RTSP, $CG_HTTP)"
"$BIN/camgate" serve -c "$CONFIG" --log info >"$DATA/camgate.out" 2>"$DATA/camgate.log" &
CG_PID=$!
PIDS+=("$CG_PID")
API=http://$CG_HTTP
for i in $(seq 1 300); do
    n=$(curl -sf -u "$VIEWER:$VIEWER_PW" "$API/api/streams" 2>/dev/null | $PY -c 'import json, sys
d = json.load(sys.stdin)
print(sum(1 for s in d.values() if s["state"] == "streaming" and s["gop_frames"] >= 25))' 2>/dev/null || echo 0)
    [ "$n" -ge 1 ] && break
    kill -0 "$CG_PID" 2>/dev/null || { log "camgate died; see $DATA/camgate.log"; exit 1; }
    [ "$i" = 300 ] && { log "the stream is not warm after 30 s; see $DATA/camgate.log"; exit 1; }
    sleep 0.1
done

sample() { # LABEL: one line of camgate's fds, RSS, threads and CPU, and an honest HTTP probe
    local t code ms
    t=$(date +%s.%N)
    echo "{\"label\": \"$1\", \"t\": $t, \"fds\": $(fds "$CG_PID"), \"rss_kb\": $(rss_kb "$CG_PID"), \"threads\": $(threads "$CG_PID"), \"cpu_ticks\": $(cpu_ticks "$CG_PID")}" >>"$SAMPLES"
    # The right password from 127.0.0.1: camgate must keep answering honest clients.
    read -r code ms < <(curl -s -o /dev/null -m 10 -u "$VIEWER:$VIEWER_PW" \
        -w '%{http_code} %{time_total}\n' "$API/api/streams" 2>/dev/null || echo "000 10")
    echo "{\"label\": \"$1\", \"t\": $t, \"status\": $((10#$code)), \"seconds\": $ms}" >>"$PROBES"
}

HUB0=$(curl -sf -u "$VIEWER:$VIEWER_PW" "$API/api/streams")
curl -sf -u "$VIEWER:$VIEWER_PW" "$API/metrics" >"$DATA/metrics-start.txt" || true
read -r M_BUSY0 M_IDLE0 < <(machine_ticks)
SIM_CPU0=$(cpu_ticks "$SIM_PID")
CG_CPU0=$(cpu_ticks "$CG_PID")
W0=$(date +%s.%N)
sample start

log "$READERS honest readers for $DURATION s, abuse for $((DURATION - 6)) s beside them"
T0=$(date +%s)
"$BIN/rtsp-load" --url "rtsp://$VIEWER:$VIEWER_PW@$CG_RTSP/cam" --readers "$READERS" \
    --transport tcp --duration "$DURATION" --ramp-ms 50 --per-reader \
    >"$DATA/readers.json" 2>"$DATA/readers.err" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
# The readers log in and play first; the abuse runs while they all play.
sleep 3
"$BIN/soak-abuse" --rtsp "$CG_RTSP" --http "$CG_HTTP" --path cam --duration $((DURATION - 6)) \
    ${ABUSE_ARGS[@]+"${ABUSE_ARGS[@]}"} >"$DATA/abuse.json" 2>"$DATA/abuse.err" &
ABUSE_PID=$!
PIDS+=("$ABUSE_PID")

NEXT=$((T0 + SAMPLE))
while kill -0 "$LOAD_PID" 2>/dev/null || kill -0 "$ABUSE_PID" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$NEXT" ]; then
        sample "t+$((NEXT - T0))"
        NEXT=$((NEXT + SAMPLE))
        kill -0 "$CG_PID" 2>/dev/null || log "camgate is gone (t+$(($(date +%s) - T0)) s)"
    fi
    sleep 1
done
LOAD_RC=0
wait "$LOAD_PID" || LOAD_RC=$?
ABUSE_RC=0
wait "$ABUSE_PID" || ABUSE_RC=$?
read -r M_BUSY1 M_IDLE1 < <(machine_ticks)
SIM_CPU1=$(cpu_ticks "$SIM_PID")
CG_CPU1=$(cpu_ticks "$CG_PID")
W1=$(date +%s.%N)
HUB1=$(curl -sf -m 10 -u "$VIEWER:$VIEWER_PW" "$API/api/streams" || echo '{}')
curl -sf -m 10 -u "$VIEWER:$VIEWER_PW" "$API/metrics" >"$DATA/metrics-end.txt" || true
log "load done; letting connections close"
sleep 5
sample end
ALIVE=0
kill -0 "$CG_PID" 2>/dev/null && ALIVE=1

# A clean stop: SIGTERM, exit 0 within shutdown_timeout_s (5 s) and a little.
STOP_RC=null
if [ "$ALIVE" = 1 ]; then
    kill -TERM "$CG_PID"
    for _ in $(seq 1 80); do
        kill -0 "$CG_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$CG_PID" 2>/dev/null; then
        STOP_RC='"still running 8 s after SIGTERM"'
    else
        rc=0
        wait "$CG_PID" || rc=$?
        STOP_RC=$rc
    fi
fi

PANICS=$(grep -c "panicked" "$DATA/camgate.log" || true)
cat >"$DATA/run.json" <<EOF
{"duration": $DURATION, "readers": $READERS, "sample_s": $SAMPLE,
 "rev": "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')",
 "dirty": $(cd "$ROOT" && [ -n "$(git status --porcelain 2>/dev/null)" ] && echo true || echo false),
 "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
 "cpu": "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)", "cores": $(nproc),
 "alive_at_end": $ALIVE, "sigterm_exit": $STOP_RC, "panics": $PANICS,
 "readers_rc": $LOAD_RC, "abuse_rc": $ABUSE_RC,
 "machine_busy_ticks": $((M_BUSY1 - M_BUSY0)), "machine_idle_ticks": $((M_IDLE1 - M_IDLE0)),
 "window_s": $(awk -v a="$W0" -v b="$W1" 'BEGIN { printf "%.2f", b - a }'),
 "sim_cpu_ticks": $(if [ "$SIM_CPU0" != null ] && [ "$SIM_CPU1" != null ]; then echo $((SIM_CPU1 - SIM_CPU0)); else echo null; fi),
 "camgate_cpu_ticks": $(if [ "$CG_CPU0" != null ] && [ "$CG_CPU1" != null ]; then echo $((CG_CPU1 - CG_CPU0)); else echo null; fi),
 "log_bytes": $(stat -c %s "$DATA/camgate.log"), "log_lines": $(wc -l <"$DATA/camgate.log"),
 "abuse_args": "${ABUSE_ARGS[*]+${ABUSE_ARGS[*]}}",
 "hub_start": $HUB0, "hub_end": $HUB1}
EOF

REPORT=$DATA/report.md
$PY "$ROOT/bench/soak_report.py" "$DATA" >"$REPORT"
cat "$REPORT"
if [ "$UPDATE" = 1 ]; then
    $PY "$ROOT/bench/soak_report.py" --append "$ROOT/BENCHMARKS.md" "$REPORT"
    log "added to BENCHMARKS.md (soak section)"
fi
log "raw results in $DATA"
