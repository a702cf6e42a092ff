#!/usr/bin/env bash
# Why: how do `fleetpin plan` and `fleetpin audit` scale to 1,000 hosts, and how far are they from
# the floor (the bare Engine API calls they need)? Starts one engines.py process simulating the
# largest fleet, writes the manifests (manifest.py), then for each size times fleetpin (release
# binary, under `ulimit -n $FD_LIMIT`) against floor.py, interleaved over ROUNDS rounds, with
# fleetpin's peak RSS (GNU time) and peak open fds (sampled from /proc), the engines' CPU time and
# request counters per run. Prints markdown tables (report.py); every run's files stay in $OUT/runs.
# Loopback only. See benches/sim/README.md, section "Scale".
#
# Knobs (environment): SIZES="100 300 1000" ROUNDS=3 SERVICES=20 LATENCY_MS=20 FD_LIMIT=4096
#   FD_SAMPLE=0.05 BIN=target/release/fleetpin BASE=20000 CONTROL=19999 OUT=target/bench-sim
set -euo pipefail
shopt -s nullglob
SIM=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SIM/../.." && pwd)
BIN=${BIN:-$ROOT/target/release/fleetpin}
SIZES=${SIZES:-100 300 1000}
ROUNDS=${ROUNDS:-3}
SERVICES=${SERVICES:-20}
LATENCY_MS=${LATENCY_MS:-20}
FD_LIMIT=${FD_LIMIT:-4096}
FD_SAMPLE=${FD_SAMPLE:-0.05}
BASE=${BASE:-20000}
CONTROL=${CONTROL:-19999}
OUT=${OUT:-$ROOT/target/bench-sim}
PY=${PY:-python3}
ENV_NAME=prod   # manifest.py's and engines.py's default environment (platform: sim)
MAX=$(printf '%s\n' $SIZES | sort -n | tail -1)
say() { printf '[scale.sh] %s\n' "$*" >&2; }

[ -x "$BIN" ] || { say "no fleetpin binary at $BIN"; exit 1; }
if [ ! -x /usr/bin/time ]; then
    say "installing GNU time (Debian package time)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq time || { apt-get update -qq && apt-get install -y -qq time; }; } >/dev/null
fi
rm -rf "$OUT/runs" && mkdir -p "$OUT/runs"

# 1. Manifests, and the spec hashes the engines label their containers with.
say "manifests for $SIZES hosts x $SERVICES services"
"$PY" "$SIM/manifest.py" --hosts "$MAX" --services "$SERVICES" --base "$BASE" --bin "$BIN" \
    -o "$OUT/sim-$MAX.yaml" --spec-hashes "$OUT/spec-hashes.json"
for n in $SIZES; do
    [ "$n" = "$MAX" ] || "$PY" "$SIM/manifest.py" --hosts "$n" --services "$SERVICES" --base "$BASE" -o "$OUT/sim-$n.yaml"
done

# 2. The engines: one process, its fd limit raised to the hard limit (listeners + connections).
#    Past that limit the engines refuse connections (accept_errors, flagged in the table): that
#    measures the simulator, not fleetpin, so FD_LIMIT + MAX must stay under it.
if (( MAX + FD_LIMIT + 64 > $(ulimit -Hn) )); then
    say "warning: $MAX listeners + FD_LIMIT=$FD_LIMIT client connections may exceed the engines' fd limit $(ulimit -Hn)"
fi
( ulimit -n "$(ulimit -Hn)"; exec "$PY" "$SIM/engines.py" --hosts "$MAX" --base "$BASE" \
    --control-port "$CONTROL" --services "$SERVICES" --latency-ms "$LATENCY_MS" \
    --spec-hashes "$OUT/spec-hashes.json" ) >"$OUT/engines.log" 2>&1 &
EPID=$!
trap 'kill -TERM $EPID 2>/dev/null; wait $EPID 2>/dev/null || true' EXIT
until grep -q '^ready' "$OUT/engines.log"; do
    kill -0 $EPID 2>/dev/null || { cat "$OUT/engines.log" >&2; exit 1; }
    sleep 0.2
done
say "$(head -1 "$OUT/engines.log")"

stats() {  # the engines' counters since the last call, as JSON; zeroes them
    local fd body
    exec {fd}<>"/dev/tcp/127.0.0.1/$CONTROL"
    printf 'GET /_stats?reset=1 HTTP/1.0\r\n\r\n' >&$fd
    body=$(cat <&$fd)
    exec {fd}>&-
    printf '%s\n' "${body#*$'\r\n\r\n'}"
}

fd_peak() {  # PID FILE: the peak count of open fds of PID's child (fleetpin under GNU time)
    # Every FD_SAMPLE seconds (0.05): reading /proc/PID/fd costs ~1 ms per 1,000 fds of CPU that
    # fleetpin and the engines also need; at 0.01 s it slowed a 100-host audit by ~10%.
    local tp=$1 kid="" peak=0 nap fds LC_ALL=C
    exec {nap}<> <(:)   # `read -t` on a pipe nobody writes: a sleep without a fork
    while [ -z "$kid" ] && [ -e "/proc/$tp" ]; do
        read -r kid _ <"/proc/$tp/task/$tp/children" 2>/dev/null || read -t 0.001 -u $nap || true
    done
    while [ -n "$kid" ] && [ -e "/proc/$kid" ]; do
        fds=("/proc/$kid/fd/"*)
        (( ${#fds[@]} > peak )) && peak=${#fds[@]}
        read -t "$FD_SAMPLE" -u $nap || true
    done
    echo $peak >"$2"
}

fleetpin_run() {  # N NAME ARGS...: one timed fleetpin run
    local n=$1 tag="$OUT/runs/$1-$2-r$round" t0 rc=0; shift 2
    stats >/dev/null
    t0=$EPOCHREALTIME
    ( ulimit -n "$FD_LIMIT"; exec /usr/bin/time -v -o "$tag.time" "$BIN" -q --no-color \
        -f "$OUT/sim-$n.yaml" "$@" ) >"$tag.out" 2>"$tag.err" &
    local tp=$!
    fd_peak $tp "$tag.fds" &
    local sp=$!
    wait $tp || rc=$?
    echo "$t0 $EPOCHREALTIME" >"$tag.wall"
    wait $sp || true
    echo $rc >"$tag.rc"
    stats >"$tag.stats"
}

floor_run() {  # N NAME ARGS...: one floor.py run (it times itself)
    local n=$1 tag="$OUT/runs/$1-$2-r$round" rc=0; shift 2
    stats >/dev/null
    ( ulimit -n "$FD_LIMIT"; exec "$PY" "$SIM/floor.py" "$@" --hosts "$n" --base "$BASE" --json ) \
        >"$tag.out" 2>"$tag.err" || rc=$?
    echo $rc >"$tag.rc"
    stats >"$tag.stats"
}

# 3. Interleaved rounds: fleetpin, then the floors, for plan and audit.
for n in $SIZES; do
    say "$n hosts: checking that plan finds every service unchanged"
    "$BIN" -q -f "$OUT/sim-$n.yaml" plan "$ENV_NAME" --format json 2>/dev/null >"$OUT/runs/$n-check.json" || true
    "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; n=int(sys.argv[2])
if s != {"unchanged": n}: sys.exit(f"plan summary {s}, expected unchanged: {n}")' \
        "$OUT/runs/$n-check.json" $((n * SERVICES))
    stats >/dev/null
    for round in $(seq "$ROUNDS"); do
        say "$n hosts, round $round/$ROUNDS"
        fleetpin_run "$n" fleetpin-plan plan "$ENV_NAME"
        floor_run "$n" floor-plan plan
        floor_run "$n" floor-plan+version plan --with-version
        fleetpin_run "$n" fleetpin-audit audit --format json
        floor_run "$n" floor-audit-k1 audit --conns-per-host 1
        floor_run "$n" floor-audit-auto audit --conns-per-host auto
    done
done

"$PY" "$SIM/report.py" "$OUT/runs" --services "$SERVICES" --latency-ms "$LATENCY_MS" \
    --fd-limit "$FD_LIMIT" --fd-sample "$FD_SAMPLE" --bin "$BIN" | tee "$OUT/results.md"
