#!/usr/bin/env bash
#
# zero-downtime-check.sh - standalone check that the fleet's Caddy images
# (tests/fleet/fleet.sh: fleetpin/caddy, fleetpin/graceful) give a swap
# without a single failed request.
#
# On one fleet host (default h1) it creates a user bridge network, runs
# graceful:1.0.0 with the network alias `api`, and the caddy proxy in front
# of it (-p PORT:80, UPSTREAM_NAME=api). From the root namespace it then sends
# GET http://<host addr>:PORT/version, one request after the other with a
# 20 ms pause, while it does by hand what a start-first deployer does:
#
#   swap   (default) start graceful:1.1.0 with the alias, wait 2 s, `docker
#          stop` the 1.0.0 container. Expected: no failure, both versions answer.
#   broken start graceful:broken WITHOUT the alias (it runs but never gets
#          healthy), wait until it is unhealthy, remove it again. Expected: no
#          failure, every answer is 1.0.0.
#
# It prints a timeline, the number of requests and failures, the longest time
# without an answer, the slowest request and the answers per version; then
# removes everything it created (containers, network, and the images it had
# to pull). Exit status: 0 when the expectation holds, 1 when not, 2 on
# usage/setup errors.
#
# Usage: sudo tests/fleet/zero-downtime-check.sh [swap|broken]
# Knobs: ZD_HOST (h1), ZD_PORT (18990), ZD_AFTER (seconds of load after the
# swap, 3), ZD_INTERVAL (pause between requests, 0.02).
# Needs: a fleet that is up (fleet.sh up), root (the hosts' unix sockets),
# the docker CLI and curl.

set -euo pipefail

readonly ENV_FILE=/run/fleetpin-fleet/fleet.env
readonly MODE=${1:-swap}
readonly HOST=${ZD_HOST:-h1}
readonly PORT=${ZD_PORT:-18990}
readonly AFTER=${ZD_AFTER:-3}
readonly INTERVAL=${ZD_INTERVAL:-0.02}
readonly ALIAS=api

T_START=$EPOCHREALTIME
say() { printf '[zd %6.2fs] %s\n' "$(rel "$EPOCHREALTIME")" "$*" >&2; }
die() { say "ERROR: $*"; exit 2; }
rel() { awk -v a="$1" -v b="$T_START" 'BEGIN { printf "%.2f", a - b }'; }

case $MODE in swap | broken) ;; -h | --help | help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 0 ;; *) die "usage: $0 [swap|broken]" ;; esac
[ $# -le 1 ] || die "usage: $0 [swap|broken]"

# ---------------------------------------------------------------- fleet.env --
[ -r "$ENV_FILE" ] || die "fleet is not up ($ENV_FILE missing); run: tests/fleet/fleet.sh up"
declare -A E=()
while IFS='=' read -r k v; do
    [[ $k =~ ^[A-Z_][A-Z0-9_]*$ ]] && E[$k]=$v
done <"$ENV_FILE"
K=${HOST^^}
for k in FLEET_CADDY_IMAGE FLEET_CADDY_TAG FLEET_GRACEFUL_IMAGE "FLEET_${K}_UNIX" "FLEET_${K}_ADDR"; do
    [ -n "${E[$k]:-}" ] || die "$ENV_FILE has no $k (unknown host $HOST, or a fleet started by an older fleet.sh: run fleet.sh up again)"
done
CADDY=${E[FLEET_CADDY_IMAGE]}:${E[FLEET_CADDY_TAG]}
OLD_IMG=${E[FLEET_GRACEFUL_IMAGE]}:1.0.0
if [ "$MODE" = swap ]; then NEW_IMG=${E[FLEET_GRACEFUL_IMAGE]}:1.1.0; else NEW_IMG=${E[FLEET_GRACEFUL_IMAGE]}:broken; fi
URL="http://${E[FLEET_${K}_ADDR]}:$PORT/version"

P=fpzd-$$
NET=$P-net OLD=$P-old NEW=$P-new PROXY=$P-proxy
TMP=""
DOCKER_OK=""          # set once the docker client points at the fleet host
PULLED=()
LOAD_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LOAD_PID" ]; then
        touch "$TMP/stop"
        kill "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    if [ -n "$DOCKER_OK" ]; then
        docker rm -f "$OLD" "$NEW" "$PROXY" >/dev/null 2>&1 || true
        docker network rm "$NET" >/dev/null 2>&1 || true
        local img
        for img in ${PULLED[@]+"${PULLED[@]}"}; do docker rmi "$img" >/dev/null 2>&1 || true; done
    fi
    if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# hermetic docker client: this host's unix socket, no user config
TMP=$(mktemp -d /tmp/fleetpin-zd.XXXXXX)
LOG=$TMP/requests     # one line per request: start end curl-rc http-code body
EVENTS=$TMP/events    # "time text" lines for the timeline
export DOCKER_HOST=${E[FLEET_${K}_UNIX]} DOCKER_CONFIG=$TMP/docker-config DOCKER_CLI_HINTS=false
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
mkdir -p "$DOCKER_CONFIG"
command -v docker >/dev/null && command -v curl >/dev/null || die "needs the docker CLI and curl"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "cannot talk to $HOST's dockerd at $DOCKER_HOST (root? fleet up?)"
DOCKER_OK=1

event() { echo "$EPOCHREALTIME $*" >>"$EVENTS"; say "$*"; }

# container health: starting | healthy | unhealthy
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null || echo gone; }
wait_health() { # CONTAINER WANT TIMEOUT_S
    local i
    for i in $(seq 1 $(($3 * 10))); do
        [ "$(health "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    docker logs --tail 20 "$1" >&2 2>&1 || true
    die "$1 is not $2 after $3 s (it is $(health "$1"))"
}

# ------------------------------------------------------------------- set up --
say "$MODE check on $HOST ($DOCKER_HOST): ${OLD_IMG##*/} -> ${NEW_IMG##*/} behind ${CADDY##*/}, GET $URL"
for img in "$OLD_IMG" "$NEW_IMG" "$CADDY"; do
    docker image inspect "$img" >/dev/null 2>&1 && continue
    docker pull -q "$img" >/dev/null || die "docker pull $img failed"
    PULLED+=("$img")
done
docker network create "$NET" >/dev/null
docker run -d --name "$OLD" --network "$NET" --network-alias "$ALIAS" "$OLD_IMG" >/dev/null
wait_health "$OLD" healthy 15
docker run -d --name "$PROXY" --network "$NET" -p "$PORT:80" -e "UPSTREAM_NAME=$ALIAS" "$CADDY" >/dev/null
wait_health "$PROXY" healthy 15
for i in $(seq 1 100); do
    [ "$(curl --noproxy '*' -s --max-time 2 "$URL" 2>/dev/null || true)" = 1.0.0 ] && break
    [ "$i" -lt 100 ] || die "the proxy does not answer 1.0.0 on $URL"
    sleep 0.1
done
say "old (1.0.0) and proxy are healthy; the proxy answers"

# --------------------------------------------------------------------- load --
load() {
    local t0 t1 out rc code body
    while [ ! -e "$TMP/stop" ]; do
        t0=$EPOCHREALTIME
        rc=0
        out=$(curl --noproxy '*' -sS --max-time 10 -w '\n%{http_code}' "$URL" 2>"$TMP/curl.err") || rc=$?
        t1=$EPOCHREALTIME
        code=${out##*$'\n'}
        body=${out%$'\n'*}
        [ "$body" != "$out" ] || body=""
        [ "$rc" -eq 0 ] || body=$(head -c 200 "$TMP/curl.err")   # curl's error message
        body=${body//[[:space:]]/_}
        printf '%s %s %s %s %s\n' "$t0" "$t1" "$rc" "${code:-000}" "${body:--}" >>"$LOG"
        sleep "$INTERVAL"
    done
}
: >"$LOG"
T_START=$EPOCHREALTIME
load &
LOAD_PID=$!
event "load started: GET $URL, a ${INTERVAL}s pause between requests"
sleep 1

# --------------------------------------------------------------------- swap --
if [ "$MODE" = swap ]; then
    docker run -d --name "$NEW" --network "$NET" --network-alias "$ALIAS" "$NEW_IMG" >/dev/null
    event "started ${NEW_IMG##*/} with alias $ALIAS"
    sleep 2
    event "docker stop ${OLD_IMG##*/} (new one: $(health "$NEW"))"
    t=$EPOCHREALTIME
    docker stop "$OLD" >/dev/null
    event "old stopped in $(awk -v a="$EPOCHREALTIME" -v b="$t" 'BEGIN { printf "%.2f", a - b }')s, exit code $(docker inspect -f '{{.State.ExitCode}}' "$OLD")"
else
    docker run -d --name "$NEW" --network "$NET" "$NEW_IMG" >/dev/null
    event "started ${NEW_IMG##*/} WITHOUT the alias"
    wait_health "$NEW" unhealthy 15
    v=$(docker exec "$NEW" wget -q -O- http://127.0.0.1:8080/version 2>/dev/null || echo '?')
    event "new one is unhealthy (its /version answers '$v'); removing it, the old one stays"
    docker rm -f "$NEW" >/dev/null
    event "new one removed"
fi
sleep "$AFTER"
touch "$TMP/stop"
wait "$LOAD_PID" || true
LOAD_PID=""
event "load stopped"

# ------------------------------------------------------------------- result --
# failures: curl error, HTTP status other than 200, or a body that is no version
# times are relative to the start of the load
read -r total fails gap gap_at slow slow_at <<<"$(awk -v s="$T_START" '
    { n++; ok = ($3 == 0 && $4 == 200 && $5 ~ /^(1\.0\.0|1\.1\.0|broken)$/)
      if (!ok) f++
      if ($2 - $1 > slow) { slow = $2 - $1; slow_at = $1 - s }
      if (last == "") last = s
      if (ok) { if ($2 - last > gap) { gap = $2 - last; gap_at = last - s }; last = $2 }
      end = $2 }
    END { if (end - last > gap) { gap = end - last; gap_at = last - s }   # no answer until the end
          printf "%d %d %.3f %.2f %.3f %.2f\n", n, f, gap, gap_at, slow, slow_at }' "$LOG")"
answers=$(awk -v s="$T_START" '$3 == 0 && $4 == 200 {
        c[$5]++; if (!($5 in first)) first[$5] = $2 - s; last[$5] = $2 - s }
    END { for (v in c) printf "%s=%d (+%.2fs..+%.2fs)  ", v, c[v], first[v], last[v] }' "$LOG")
echo "mode:        $MODE on $HOST (${OLD_IMG##*/} -> ${NEW_IMG##*/}, proxy ${CADDY##*/})"
echo "requests:    $total in $(awk -v a="$(tail -n1 "$LOG" | cut -d' ' -f2)" -v b="$T_START" 'BEGIN { printf "%.1f", a - b }')s"
echo "failures:    $fails"
echo "longest gap: ${gap}s without an answer (from +${gap_at}s)"
echo "slowest:     ${slow}s (sent at +${slow_at}s)"
echo "answers:     ${answers:-none}"
if [ "$fails" -gt 0 ]; then
    echo "failed requests (start-relative time, curl rc, status, body):"
    awk -v s="$T_START" '!($3 == 0 && $4 == 200 && $5 ~ /^(1\.0\.0|1\.1\.0|broken)$/) { printf "  +%.3fs rc=%s status=%s %s\n", $1 - s, $3, $4, $5 }' "$LOG" | head -n 20
fi

ok=1
[ "$total" -gt 0 ] || ok=""
[ "$fails" -eq 0 ] || ok=""
n_old=$(awk '$5 == "1.0.0" && $4 == 200 { n++ } END { print n + 0 }' "$LOG")
n_new=$(awk '$5 == "1.1.0" && $4 == 200 { n++ } END { print n + 0 }' "$LOG")
n_other=$(awk '$4 == 200 && $5 != "1.0.0" && $5 != "1.1.0" { n++ } END { print n + 0 }' "$LOG")
if [ "$MODE" = swap ]; then
    { [ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ]; } || { echo "expected answers from both 1.0.0 and 1.1.0"; ok=""; }
else
    { [ "$n_new" -eq 0 ] && [ "$n_other" -eq 0 ]; } || { echo "expected every answer from 1.0.0"; ok=""; }
fi
if [ -n "$ok" ]; then echo "OK"; exit 0; fi
echo "FAILED"
exit 1
