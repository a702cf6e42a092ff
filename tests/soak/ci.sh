#!/usr/bin/env bash
# The soak's CI run (docs/reliability.md): 5 minutes at a fixed seed, so a change that breaks an
# invariant fails CI with a replayable seed and operation log. Non-zero on a violation, and when
# the fleet (or a tool the soak needs) is missing: never a silent skip.
# SOAK_SEED, SOAK_DURATION (seconds) and SOAK_DIR (where the log and figures go) override;
# SOAK_FAULTS (comma-separated kinds, soak.py --faults) narrows the faults, empty = all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${FLEETPIN_BIN:-${FLEETPIN_AGENT_BINARY:-}}
if [ -z "$bin" ]; then
    bin=target/release/fleetpin
    [ -x "$bin" ] || bin=target/debug/fleetpin
fi
# fleetpin runs in the operators' clones: an absolute path.
bin=$(realpath "$bin")
dir=${SOAK_DIR:-$(mktemp -d /tmp/fleetpin-soak.XXXXXX)}
mkdir -p "$dir"
echo "soak: seed ${SOAK_SEED:-7001}, ${SOAK_DURATION:-300} s, $bin; log and figures in $dir" >&2
rc=0
python3 tests/soak/soak.py --duration "${SOAK_DURATION:-300}" --seed "${SOAK_SEED:-7001}" \
    --fleetpin "$bin" --log "$dir/log.jsonl" --out "$dir/figures.json" \
    ${SOAK_FAULTS:+--faults "$SOAK_FAULTS"} || rc=$?
cat "$dir/figures.json" 2>/dev/null || true
exit $rc
