#!/usr/bin/env bash
# Why: the console (`fleetpin serve`) promises an audit answer cold within 1.5x the floor and
# under 50 ms cached, engines that 50 polling clients cost what one does, a peak RSS of at most
# 200 MB and a /metrics scrape under 200 ms, on 1,000 hosts x 20 services at 20 ms per engine
# request. This measures all of it side by side with the audit floor (floor.py) in one run:
# engines.py for the fleet, a git repository holding the sim manifest (serve follows a committed
# manifest), a serve.yaml and a view token, then ROUNDS rounds, each against a server started for
# it (under GNU time -v and `ulimit -n $FD_LIMIT`), driven by serve_bench.py. Prints a markdown
# table (serve_bench.py report), also written to $OUT/serve.md; each round's files stay in
# $OUT/serve/runs. Loopback only. See benches/sim/README.md, section "The console".
#
# Knobs (environment): HOSTS=1000 SERVICES=20 LATENCY_MS=20 ROUNDS=3 FD_LIMIT=4096 CLIENTS=50
#   POLL_SECONDS=30 CACHED_GETS=50 METRICS_GETS=20 PORT=18420 BIN=target/release/fleetpin
#   BASE=20000 CONTROL=19999 OUT=target/bench-sim PY=python3
#   PROM_PY= (a Python with prometheus_client, to parse the scrape; default: PY, or by hand)
set -euo pipefail
SIM=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SIM/../.." && pwd)
BIN=${BIN:-$ROOT/target/release/fleetpin}
HOSTS=${HOSTS:-1000}
SERVICES=${SERVICES:-20}
LATENCY_MS=${LATENCY_MS:-20}
ROUNDS=${ROUNDS:-3}
FD_LIMIT=${FD_LIMIT:-4096}
CLIENTS=${CLIENTS:-50}
POLL_SECONDS=${POLL_SECONDS:-30}
CACHED_GETS=${CACHED_GETS:-50}
METRICS_GETS=${METRICS_GETS:-20}
PORT=${PORT:-18420}
BASE=${BASE:-20000}
CONTROL=${CONTROL:-19999}
OUT=${OUT:-$ROOT/target/bench-sim}
PY=${PY:-python3}
PROM_PY=${PROM_PY:-$PY}
W=$OUT/serve
say() { printf '[serve.sh] %s\n' "$*" >&2; }

[ -x "$BIN" ] || { say "no fleetpin binary at $BIN"; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
if [ ! -x /usr/bin/time ]; then
    say "installing GNU time (Debian package time)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq time || { apt-get update -qq && apt-get install -y -qq time; }; } >/dev/null
fi
"$PROM_PY" -c 'import prometheus_client' 2>/dev/null \
    || say "no prometheus_client in $PROM_PY: the scrape is checked by hand (set PROM_PY)"
rm -rf "$W" && mkdir -p "$W/runs"

# 1. The manifest, in a git repository (serve reads the manifest's commit: a reading is for one
#    commit), beside a serve.yaml (state directory inside: tokens) and one view token.
say "manifest: $HOSTS hosts x $SERVICES services, and its spec hashes"
mkdir -p "$W/repo"
"$PY" "$SIM/manifest.py" --hosts "$HOSTS" --services "$SERVICES" --base "$BASE" --bin "$BIN" \
    -o "$W/repo/fleet.yaml" --spec-hashes "$W/spec-hashes.json"
printf 'state_dir: state\n' >"$W/repo/serve.yaml"
git -C "$W/repo" init -q -b main
git -C "$W/repo" add fleet.yaml serve.yaml
git -C "$W/repo" -c user.name=bench -c user.email=bench@fleetpin.invalid commit -q -m "sim fleet"
( cd "$W/repo" && "$BIN" -q serve token create --name bench --role view --config serve.yaml ) >"$W/token"
chmod 600 "$W/token"

# 2. The engines: one process, its fd limit raised to the hard limit.
( ulimit -n "$(ulimit -Hn)"; exec "$PY" "$SIM/engines.py" --hosts "$HOSTS" --base "$BASE" \
    --control-port "$CONTROL" --services "$SERVICES" --latency-ms "$LATENCY_MS" \
    --spec-hashes "$W/spec-hashes.json" ) >"$W/engines.log" 2>&1 &
EPID=$!
SPID=""
cleanup() {
    [ -n "$SPID" ] && kill -INT "$SPID" 2>/dev/null
    kill -TERM $EPID 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT
until grep -q '^ready' "$W/engines.log"; do
    kill -0 $EPID 2>/dev/null || { cat "$W/engines.log" >&2; exit 1; }
    sleep 0.2
done
say "$(head -1 "$W/engines.log")"

# 3. Rounds: a server started for each (an empty cache), measured, stopped with Ctrl-C.
for round in $(seq "$ROUNDS"); do
    say "round $round/$ROUNDS: starting fleetpin serve on 127.0.0.1:$PORT"
    ( cd "$W/repo"; ulimit -n "$FD_LIMIT"; exec /usr/bin/time -v -o "$W/runs/r$round.time" \
        "$BIN" -q --no-color -f fleet.yaml serve --listen "127.0.0.1:$PORT" --config serve.yaml ) \
        >"$W/runs/r$round.log" 2>&1 &
    TPID=$!
    SPID=""
    for _ in $(seq 200); do   # GNU time's child is the server
        read -r SPID _ <"/proc/$TPID/task/$TPID/children" 2>/dev/null || true
        [ -n "$SPID" ] && "$PY" -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)' \
            "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
        sleep 0.1
    done
    [ -n "$SPID" ] || { cat "$W/runs/r$round.log" >&2; exit 1; }
    ( ulimit -n "$FD_LIMIT"; exec "$PROM_PY" "$SIM/serve_bench.py" round --url "http://127.0.0.1:$PORT" \
        --token-file "$W/token" --control "$CONTROL" --pid "$SPID" --hosts "$HOSTS" \
        --services "$SERVICES" --base "$BASE" --round "$round" --cached-gets "$CACHED_GETS" \
        --metrics-gets "$METRICS_GETS" --clients "$CLIENTS" --poll-seconds "$POLL_SECONDS" \
        --floor-py "$PY" -o "$W/runs/r$round.json" )
    kill -INT "$SPID"
    wait $TPID || true
    SPID=""
done

"$PY" "$SIM/serve_bench.py" report "$W/runs" --latency-ms "$LATENCY_MS" | tee "$OUT/serve.md"
