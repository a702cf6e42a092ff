#!/usr/bin/env bash
# fleetpin against its peers, in one run on one fleet: docker-compose (v1), a plain `docker run`
# loop, Ansible's community.docker.docker_container, and the bare Engine API calls (the floor).
# Every comparison is interleaved (A B C, A B C, …) over ROUNDS rounds and reported as median
# (min–max), with health waits apart from orchestration; the result is a markdown table on stdout
# (and target/bench-compare/results.{md,json}). docs/benchmarks.md explains every row.
#
# Usage, as root (it starts a fleet of dockerds in network namespaces, ~10–15 min in all):
#   benches/compare.sh
# Knobs (environment):
#   FLEET_SH=PATH      the fleet script (default tests/fleet/fleet.sh). Its `up` first tears down
#                      any fleet it finds, so do not run this while the fleet tests run.
#   FLEET_REUSE=1      use the fleet that is up (12 hosts) instead of `up 12` + `down`
#   KEEP_FLEET=1       leave the fleet up afterwards
#   ROUNDS=5           rounds of the interleaved rows (the growth rows run 2×ROUNDS)
#   BENCH_CARGO=0      skip the criterion bench (cargo bench --bench plan)
#   BENCH_VENV=DIR     where Ansible is installed (default /tmp/fleetpin-bench-venv)
#   BENCH_ANSIBLE=0    skip the Ansible rows
#   BENCH_OUT=DIR      results directory (default target/bench-compare)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FLEET_SH=${FLEET_SH:-tests/fleet/fleet.sh}
VENV=${BENCH_VENV:-/tmp/fleetpin-bench-venv}
say() { printf '[compare.sh] %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run as root: it starts a fleet of dockerds in network namespaces"; exit 1; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# 1. Tools: Debian's docker-compose (v1, Python), GNU time, curl, venv for Ansible.
pkgs=()
command -v docker-compose >/dev/null || pkgs+=(docker-compose)
[ -x /usr/bin/time ] || pkgs+=(time)
command -v curl >/dev/null || pkgs+=(curl)
"$PY" -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
if [ ${#pkgs[@]} -gt 0 ]; then
    say "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
fi

# 2. Ansible in a venv, with community.docker (it ships inside the `ansible` package; Galaxy is
#    not needed). Any failure here skips the Ansible rows, with the reason, and nothing else.
PLAYBOOK=""
if [ "${BENCH_ANSIBLE:-1}" = 1 ]; then
    if [ ! -x "$VENV/bin/ansible-playbook" ]; then
        say "installing Ansible (pip: ansible, docker) into $VENV"
        { "$PY" -m venv "$VENV" && "$VENV/bin/pip" install -q ${ANSIBLE_PIP_SPEC:-ansible} docker; } >&2 ||
            say "pip install failed: the Ansible rows are skipped"
    fi
    if [ -x "$VENV/bin/ansible-playbook" ]; then
        if "$VENV/bin/ansible-galaxy" collection list community.docker 2>/dev/null | grep -q '^community\.docker '; then
            PLAYBOOK=$VENV/bin/ansible-playbook
        else
            say "community.docker is not in this ansible package and would have to come from Galaxy, which is not reachable here: the Ansible rows are skipped"
        fi
    fi
fi

# 3. Release builds (and the criterion bench, so that no compiler runs while measuring).
say "cargo build --release"
cargo build --release -q
if [ "${BENCH_CARGO:-1}" = 1 ]; then cargo bench --bench plan --no-run -q; fi

# 4. The fleet: 12 hosts (the growth rows need them all).
if [ "${FLEET_REUSE:-0}" != 1 ]; then
    say "$FLEET_SH up 12 (this tears down any fleet of that script that is up)"
    "$FLEET_SH" up 12
    [ "${KEEP_FLEET:-0}" = 1 ] || trap 'say "taking the fleet down"; "$FLEET_SH" down' EXIT
fi
eval "$("$FLEET_SH" env)"
[ "${FLEET_HOSTS_COUNT:-0}" -ge 4 ] || { say "the fleet has ${FLEET_HOSTS_COUNT:-0} hosts; at least 4 are needed (12 for every growth row)"; exit 1; }

# 5. Everything else, in one go. The fleet is reached directly, never through a proxy.
say "running the comparison (ROUNDS=${ROUNDS:-5})"
env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u all_proxy \
    ANSIBLE_PLAYBOOK="$PLAYBOOK" ANSIBLE_PYTHON="$VENV/bin/python3" \
    "$PY" benches/compare.py
