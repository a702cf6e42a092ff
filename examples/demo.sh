#!/usr/bin/env bash
# The fleet in a box: on a machine with no Docker engine, bring up three real Docker hosts and a
# registry (tests/fleet/fleet.sh, as root), then do what an operator does with fleetpin: plan,
# apply, upgrade one service, roll it back. The fleet stays up afterwards so you can keep
# playing; `tests/fleet/fleet.sh down` removes it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

tests/fleet/fleet.sh up 3
cargo build -q
bin=$PWD/target/debug/fleetpin
fleetpin() { "$bin" "$@"; }
work=$(mktemp -d)
cp examples/fleet-demo.yaml "$work/platform.yaml"
cd "$work"
git init -q && git add platform.yaml
git -c user.name=demo -c user.email=demo@example.test commit -qm "demo platform"
export FLEETPIN_USER=demo@example.test

run fleetpin validate
run fleetpin plan demo
run fleetpin apply demo --yes
for h in 11 12 13; do say "curl http://10.213.7.$h:8081/version"; curl -s "http://10.213.7.$h:8081/version"; echo; done

say "sed -i 's/shop: \"1.0.0\"/shop: \"1.1.0\"/' platform.yaml && git commit -am 'shop 1.1.0'"
sed -i 's/shop: "1.0.0"/shop: "1.1.0"/' platform.yaml
git -c user.name=demo -c user.email=demo@example.test commit -qam "shop 1.1.0"
run fleetpin plan demo
run fleetpin apply demo --yes
run fleetpin rollback demo -s shop --yes
run git log --oneline -3
run fleetpin plan demo --detailed-exitcode
printf '\nThe manifest is in %s; the fleet is still up: tests/fleet/fleet.sh down removes it.\n' "$work"
