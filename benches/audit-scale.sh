#!/usr/bin/env bash
# How audit and plan scale with the fleet: the same platform (SERVICES services per host) audited
# on 1, 3, 6 and 12 hosts, timed with hyperfine in one run. Concurrency should make 12 hosts cost
# about one host. Healthchecks are disabled here: a 1 s check on ~200 containers is a load of
# its own on 2 cores, which would be measured instead of fleetpin. Usage (as root; brings up a 12-host fleet and takes it down):
#   benches/audit-scale.sh [SERVICES]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
services=${1:-10}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build -q --release
bin=$PWD/target/release/fleetpin
tests/fleet/fleet.sh up 12
trap 'tests/fleet/fleet.sh down' EXIT
eval "$(tests/fleet/fleet.sh env)"
work=$(mktemp -d)
manifest() { # $1 = number of hosts
  {
    echo "platform: scale"
    echo "services:"
    for s in $(seq "$services"); do echo "  svc$s: {image: $FLEET_IMAGE, ports: [\"$((19000 + s)):8080\"], healthcheck: {test: [NONE]}}"; done
    echo "environments:"
    echo "  bench:"
    echo "    hosts:"
    for h in $(seq "$1"); do echo "      h$h: {endpoint: \"tcp://10.213.7.$((10 + h)):2375\", insecure: true}"; done
    echo "    versions:"
    for s in $(seq "$services"); do echo "      svc$s: \"1.0.0\""; done
  } > "$work/hosts-$1.yaml"
}
for n in 1 3 6 12; do manifest "$n"; done
FLEETPIN_USER=bench "$bin" -f "$work/hosts-12.yaml" apply bench --yes -q >/dev/null || { echo "apply failed"; exit 1; }
hyperfine -N -w 2 -r 10 --export-markdown "$work/audit.md" \
  "$bin -f $work/hosts-1.yaml audit bench --format json" \
  "$bin -f $work/hosts-3.yaml audit bench --format json" \
  "$bin -f $work/hosts-6.yaml audit bench --format json" \
  "$bin -f $work/hosts-12.yaml audit bench --format json" >/dev/null
hyperfine -N -w 2 -r 10 --export-markdown "$work/plan.md" \
  "$bin -f $work/hosts-1.yaml plan bench" \
  "$bin -f $work/hosts-12.yaml plan bench" >/dev/null
sed "s#$bin#fleetpin#g; s#$work/##g" "$work/audit.md" "$work/plan.md"
/usr/bin/time -v "$bin" -f "$work/hosts-12.yaml" plan bench 2>&1 >/dev/null | grep -E "Maximum resident"
