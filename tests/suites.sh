#!/usr/bin/env bash
# Every test binary of the crate, against the fleet that `tests/fleet/fleet.sh run` brought up, in
# a few lanes at once instead of cargo test's one binary after another: the fleet's hosts idle
# while a health gate waits, so independent suites overlap well on 2 cores. Each fleet suite uses
# its own platform names and host ports, so they can share the hosts. Two suites disturb what
# others use, so they run apart from the fleet suites, one after the other, beside the suites that
# need no fleet: the fault suite kills hosts, cuts links and stops the registry (fleetpin itself
# killed, which disturbs no one, is fleet_kills, in the lanes); the rollout test
# of fleet_zero rejects h3's traffic to the registry (a push or pull on h3 by another suite would
# fail with "connection refused"). The soak (tests/soak/ci.sh: five minutes of every operation
# against every fault at a fixed seed, docs/reliability.md) disturbs everything and judges
# outages by a gate's time, so it runs last, alone; FLEET_SMALL_DATAROOT=h2:1g gives it its
# full-disk fault; SOAK=0 leaves it out (a quicker local run; CI always runs it).
#
# Usage (from the repository root, the fleet up and its fleet.env exported, as fleet.sh run does):
#   tests/suites.sh             # LANES=3 by default; SKIP="a b" leaves those binaries out
# Output: each binary's output once it ends (not interleaved), then a summary; exit 1 if any
# failed. Test names are cargo's (`cargo test --test NAME` runs one alone).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LANES=${LANES:-3}
SOLO=(fleet_faults fleet_zero)
OUT=$(mktemp -d /tmp/fleetpin-suites.XXXXXX)
say() { printf '[suites %5ss] %s\n' "$SECONDS" "$*" >&2; }

# Build once; learn where cargo put each test binary (unit tests are the lib's `fleetpin`).
cargo test --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        t = m["target"]
        name = "lib" if "lib" in t["kind"] else t["name"]
        print(name, m["executable"])
' >"$OUT/binaries"
cargo test --no-run -q 2>&1 | tail -n 3 >&2 # errors, if the JSON run hid them
[ -s "$OUT/binaries" ] || { say "no test binaries"; exit 1; }

run_one() { # name exe
    local name=$1 exe=$2 start=$SECONDS rc=0
    case " ${SKIP:-} " in *" $name "*) say "$name: skipped (SKIP)"; return 0 ;; esac
    "$exe" >"$OUT/$name.log" 2>&1 || rc=$?
    echo "$name $rc $((SECONDS - start))" >>"$OUT/results"
    say "$name: $([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)") in $((SECONDS - start)) s"
}

run_lanes() { # LANES, then "weight name exe" lines on stdin: longest first, each to the least loaded lane
    local lanes=$1 w name exe best i
    local -a load=() lane=()
    for ((i = 0; i < lanes; i++)); do load[i]=0; lane[i]=""; done
    while read -r w name exe; do
        [ -n "$name" ] || continue
        best=0
        for ((i = 1; i < lanes; i++)); do ((load[i] < load[best])) && best=$i; done
        load[best]=$((load[best] + w))
        lane[best]+="$name=$exe "
    done < <(sort -rn)
    for ((i = 0; i < lanes; i++)); do
        (for pair in ${lane[i]}; do run_one "${pair%%=*}" "${pair#*=}"; done) &
    done
    wait
}

# Seconds each took in a recorded run (unknown ones count 30): the longest start first.
declare -A WEIGHT=(
    [hostile]=270 [corpus]=75 [sim_scale]=21 [lib]=10 [planner_props]=4
    [fleet_safety]=100 [fleet_zero]=52 [fleet_apply]=45 [fleet_podman]=60 [fleet_push]=28
    [fleet_ssh]=24 [fleet_audit]=23 [fleet_registry]=22 [fleet_promote]=17 [fleet_hooks]=17
    [fleet_security]=16 [fleet_waves]=15 [fleet_logs]=15 [fleet_import]=8 [fleet_swarm]=100
    [fleet_agent]=120 [fleet_schemathesis]=150 [fleet_kills]=90
)
is_solo() { local s; for s in "${SOLO[@]}"; do [ "$1" = "$s" ] && return 0; done; return 1; }
weigh() { while read -r name exe; do echo "${WEIGHT[$name]:-30} $name $exe"; done; }

# 1. The disruptive suites, one after the other, beside the suites that need no fleet.
while read -r name exe; do is_solo "$name" && echo "$name $exe"; done <"$OUT/binaries" >"$OUT/solo"
while read -r name exe; do
    is_solo "$name" || [[ $name == fleet_* ]] || echo "$name $exe"
done <"$OUT/binaries" >"$OUT/local"
(
    while read -r name exe; do run_one "$name" "$exe"; done <"$OUT/solo"
) &
weigh <"$OUT/local" | run_lanes 1
wait

# A disruptive suite killed mid-fault (its own guards undo each fault when a test fails, not
# when the binary dies) may leave a host down, a link cut or a registry stopped: undo that
# before every other suite meets it. fleet.sh marks each fault with a file in its run directory.
heal() {
    local run h
    run=$(dirname "${FLEETPIN_FLEET_ENV:-/run/fleetpin-fleet/fleet.env}")
    for h in "$run"/h*/; do
        h=${h%/}
        h=${h##*/}
        if [ -e "$run/$h/cut" ]; then say "healing: $h's link was left cut"; tests/fleet/fleet.sh restore "$h"; fi
        if [ -e "$run/$h/down" ]; then say "healing: $h was left down"; tests/fleet/fleet.sh start-host "$h"; fi
    done
    if [ -e "$run/registry/down" ]; then say "healing: the registry was left stopped"; tests/fleet/fleet.sh start-registry; fi
    if [ -e "$run/aregistry/down" ]; then say "healing: the auth registry was left stopped"; tests/fleet/fleet.sh start-registry auth; fi
}
heal

# 2. The fleet suites in LANES lanes.
while read -r name exe; do
    is_solo "$name" || [[ $name != fleet_* ]] || echo "$name $exe"
done <"$OUT/binaries" | weigh | run_lanes "$LANES"

# 2b. The soak, alone on the fleet and the machine: its budgets are a gate's time, and it
# disturbs every host.
if [ "${SOAK:-1}" = 1 ]; then
    heal
    run_one soak tests/soak/ci.sh
else
    say "soak: left out (SOAK=0)"
fi

# 3. Every log, failures last so they are what the CI log ends with; then the summary.
failed=0
while read -r name rc secs; do [ "$rc" = 0 ] && cat "$OUT/$name.log"; done <"$OUT/results"
while read -r name rc secs; do
    [ "$rc" = 0 ] || { echo "==== $name FAILED (exit $rc) ===="; cat "$OUT/$name.log"; failed=1; }
done <"$OUT/results"
say "summary ($(wc -l <"$OUT/results") binaries, ${SECONDS} s):"
sort -k3 -rn "$OUT/results" | while read -r name rc secs; do
    printf '  %-18s %s %4s s\n' "$name" "$([ "$rc" = 0 ] && echo ok || echo FAILED)" "$secs" >&2
done
rm -rf "$OUT"
exit $failed
