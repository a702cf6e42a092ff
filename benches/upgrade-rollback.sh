#!/usr/bin/env bash
# Wall time of one upgraded service with `fleetpin apply`, of `fleetpin rollback`, and of the raw
# `docker stop; docker rm; docker run` an operator would type — interleaved in one run on one
# fleet host, images already pulled, health waits reported apart from orchestration.
# Usage (fleet up): benches/upgrade-rollback.sh [ROUNDS]   (prints a markdown table)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-5}
eval "$(tests/fleet/fleet.sh env)"
bin=$PWD/target/release/fleetpin
cargo build -q --release
docker() { command /usr/bin/docker -H "$FLEET_H1_UNIX" "$@"; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
manifest() {
  cat > platform.yaml <<YAML
platform: bench
services:
  web: {image: $FLEET_IMAGE, ports: ["18901:8080"]}
environments:
  b:
    hosts: {h1: {endpoint: "$FLEET_H1_UNIX"}}
    versions: {web: "$1"}
YAML
}
ms() { date +%s%3N; }
# Wait until the raw container is healthy; prints the wait in ms.
raw_health() { local t0; t0=$(ms); until [ "$(docker inspect -f '{{.State.Health.Status}}' raw-web 2>/dev/null)" = healthy ]; do sleep 0.05; done; echo $(( $(ms) - t0 )); }
docker pull -q "$FLEET_IMAGE:1.0.0" >/dev/null; docker pull -q "$FLEET_IMAGE:1.1.0" >/dev/null
docker rm -f raw-web >/dev/null 2>&1 || true
docker run -d --name raw-web -p 18902:8080 "$FLEET_IMAGE:1.0.0" >/dev/null; raw_health >/dev/null
manifest 1.0.0; NO_COLOR=1 FLEETPIN_USER=bench "$bin" apply b --yes -q >/dev/null
declare -a A_WALL A_HEALTH R_WALL R_HEALTH D_WALL D_HEALTH
for i in $(seq "$rounds"); do
  # fleetpin apply: one service 1.0.0 -> 1.1.0
  manifest 1.1.0; t0=$(ms)
  out=$(NO_COLOR=1 FLEETPIN_USER=bench "$bin" apply b --yes --format json)
  A_WALL+=($(( $(ms) - t0 ))); A_HEALTH+=("$(jq '[.hosts[].actions[].health_seconds] | add * 1000 | floor' <<<"$out")")
  # fleetpin rollback to 1.0.0 (no commit: not a git repository here)
  t0=$(ms)
  out=$(NO_COLOR=1 FLEETPIN_USER=bench "$bin" rollback b --yes --no-commit --format json)
  R_WALL+=($(( $(ms) - t0 ))); R_HEALTH+=("$(jq '[.hosts[].actions[].health_seconds] | add * 1000 | floor' <<<"$out")")
  manifest 1.0.0
  # raw docker: stop, rm, run the other version, then wait for health
  v=1.1.0; [ $((i % 2)) -eq 0 ] && v=1.0.0
  t0=$(ms)
  docker stop raw-web >/dev/null; docker rm raw-web >/dev/null
  docker run -d --name raw-web -p 18902:8080 "$FLEET_IMAGE:$v" >/dev/null
  h=$(raw_health)
  D_WALL+=($(( $(ms) - t0 ))); D_HEALTH+=("$h")
done
docker rm -f raw-web >/dev/null
NO_COLOR=1 "$bin" apply b --yes -q --prune >/dev/null 2>&1 || true
for c in $(docker ps -aq --filter name=bench-b-); do docker rm -f "$c" >/dev/null; done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minmax() { printf '%s\n' "$@" | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {print lo "–" hi}'; }
row() { local name=$1; shift; local -n w=$1 h=$2; local orch=(); for k in "${!w[@]}"; do orch+=($(( w[k] - h[k] ))); done
  printf '| %s | %s ms (%s) | %s ms (%s) | %s ms (%s) |\n' "$name" "$(med "${w[@]}")" "$(minmax "${w[@]}")" "$(med "${h[@]}")" "$(minmax "${h[@]}")" "$(med "${orch[@]}")" "$(minmax "${orch[@]}")"; }
echo "| operation ($rounds rounds, interleaved) | wall, median (min–max) | of which health wait | orchestration (wall − health) |"
echo "| --- | --- | --- | --- |"
row "fleetpin apply (upgrade 1 service)" A_WALL A_HEALTH
row "fleetpin rollback (1 service)" R_WALL R_HEALTH
row "docker stop; docker rm; docker run" D_WALL D_HEALTH
