#!/usr/bin/env python3
"""How long a pushed pin takes to reach every host followed by pull agents, and what an idle
agent costs: the figures of docs/benchmarks.md's pull-agent section (issue 14).

One agent per fleet host, each in that host's network namespace and talking to its engine's unix
socket (as tests/fleet_agent.rs runs them), all following a bare repository served by `git daemon`
on the fleet bridge. Each round pushes a new pin and times, from `git push` returning, until each
host's service answers with the new version. Then, idle, it reads each agent's CPU time and
memory from /proc and traces one agent with strace to count its engine calls per sync.

    tests/fleet/fleet.sh up 12            # or a copy of the fleet for benchmarks
    benches/agent_spread.py               # FLEET_ENV, BIN, INTERVAL, IDLE_SECS to change
    FOLLOW="git oci" benches/agent_spread.py   # both ways, side by side (default: git)

With FOLLOW=oci the agents follow the reference through the fleet's registry (`fleetpin publish`
after each commit, `agent --ref oci://…`), and each round is timed from `fleetpin publish`
returning.

Not part of CI: timings on a shared 2-core machine are figures to compare, not assertions.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLEET_ENV = os.environ.get("FLEET_ENV", "/run/fleetpin-fleet/fleet.env")
BIN = os.environ.get("BIN", os.path.join(ROOT, "target/release/fleetpin"))
INTERVAL = int(os.environ.get("INTERVAL", "5"))
IDLE_SECS = int(os.environ.get("IDLE_SECS", "60"))
FOLLOW = os.environ.get("FOLLOW", "git").split()
PORT = 19401
GIT_PORT = 19402
# 1.1.0 and 1.2.0 are new containers (pull, create, gate); 1.0.0 at the end is a pin moved back:
# the retained container is started again.
ROUNDS = ["1.1.0", "1.2.0", "1.0.0"]


def env():
    out = {}
    for line in open(FLEET_ENV):
        k, _, v = line.rstrip("\n").partition("=")
        if k:
            out[k] = v
    return out


def git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.test", *args],
        cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def bridge(netns):
    route = subprocess.run(
        ["ip", "netns", "exec", netns, "ip", "-4", "route", "show", "default"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return route[route.index("via") + 1]


def manifest(fleet, hosts, version, mode="git"):
    m = f"platform: agbench\nretain: 2\nservices:\n  web:\n    image: {fleet['FLEET_IMAGE']}\n"
    m += f"    ports: [\"{PORT}:8080\"]\nenvironments:\n  prod:\n    pull: {'oci' if mode == 'oci' else 'true'}\n    hosts:\n"
    for h in hosts:
        # The TLS host has no plain endpoint: its unix socket (the agents use --endpoint anyway).
        tcp = fleet[f'FLEET_{h.upper()}_TCP']
        m += (f"      {h}: {{endpoint: \"{tcp}\", insecure: true}}\n" if tcp
              else f"      {h}: {{endpoint: \"{fleet[f'FLEET_{h.upper()}_UNIX']}\"}}\n")
    m += f"    versions:\n      web: \"{version}\"\n"
    if mode == "oci":
        m += f"reference: {{repository: \"{fleet['FLEET_REGISTRY']}/agbench/reference\", insecure: true}}\n"
    return m


def publish(work, text, message, mode="git"):
    with open(os.path.join(work, "platform.yaml"), "w") as f:
        f.write(text)
    git(work, "add", "platform.yaml")
    git(work, "commit", "-qm", message)
    git(work, "push", "-q", "-f", "origin", "HEAD:refs/heads/main")
    if mode == "oci":
        subprocess.run([BIN, "publish", "--tag", "main"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})


def version(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}:{PORT}/version", timeout=1) as r:
            return r.read().decode().strip()
    except Exception:
        return None


def wait_all(fleet, hosts, want, limit=300):
    """Seconds until each host serves `want` (polled every 100 ms, all hosts at once)."""
    start = time.monotonic()
    arrived = {}
    with ThreadPoolExecutor(len(hosts)) as pool:
        while len(arrived) < len(hosts):
            pending = [h for h in hosts if h not in arrived]
            seen = pool.map(lambda h: (h, version(fleet[f"FLEET_{h.upper()}_ADDR"])), pending)
            now = time.monotonic() - start
            for h, v in seen:
                if v == want:
                    arrived[h] = now
            if now > limit:
                sys.exit(f"{want} not on {sorted(set(hosts) - set(arrived))} after {limit} s")
            time.sleep(0.1)
    return arrived


def proc_times(pid):
    """(own CPU seconds, waited children's CPU seconds)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def proc_mem(pid):
    got = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            got[k] = int(v.split()[0]) / 1024
    return got


def clean(fleet, hosts):
    """Removes what an earlier run left (the `agbench` containers), so the first sync starts empty."""
    for h in hosts:
        sock = {**os.environ, "DOCKER_HOST": fleet[f"FLEET_{h.upper()}_UNIX"]}
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", "name=^agbench-"],
                             capture_output=True, text=True, env=sock).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], env=sock, stdout=subprocess.DEVNULL, check=True)


def main():
    for mode in FOLLOW:
        run(mode)


def run(mode):
    fleet = env()
    hosts = fleet["FLEET_HOSTS"].split()
    clean(fleet, hosts)
    print(f"== agents following {mode}")
    work = tempfile.mkdtemp(prefix="fleetpin-agent-bench.")
    served = os.path.join(work, "served")
    bare = os.path.join(served, "platform.git")
    os.makedirs(served)
    git(work, "init", "-q")
    git("/", "init", "-q", "--bare", bare)
    git(work, "remote", "add", "origin", bare)
    addr = bridge(fleet["FLEET_H1_NETNS"])
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip()
    daemon = subprocess.Popen(
        [os.path.join(exec_path, "git-daemon"), "--reuseaddr", "--export-all",
         f"--listen={addr}", f"--port={GIT_PORT}", f"--base-path={served}", served],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    agents = []
    try:
        time.sleep(0.5)
        publish(work, manifest(fleet, hosts, "1.0.0", mode), "1.0.0", mode)
        for h in hosts:
            log = open(os.path.join(work, f"agent-{h}.log"), "w")
            agents.append(subprocess.Popen(
                ["ip", "netns", "exec", fleet[f"FLEET_{h.upper()}_NETNS"], BIN, "agent",
                 *(["--repo", f"git://{addr}:{GIT_PORT}/platform.git", "--branch", "main"] if mode == "git"
                   else ["--ref", f"oci://{fleet['FLEET_REGISTRY']}/agbench/reference:main", "--insecure-registry"]),
                 "--env", "prod", "--host", h, "--endpoint", fleet[f"FLEET_{h.upper()}_UNIX"],
                 "--interval", f"{INTERVAL}s", "--cache-dir", os.path.join(work, f"cache-{h}")],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1", "NO_PROXY": "*", "no_proxy": "*"},
            ))
        first = wait_all(fleet, hosts, "1.0.0")
        print(f"{len(hosts)} agents, --interval {INTERVAL}s, binary {BIN}")
        print(f"first sync to serving 1.0.0 on every host: {max(first.values()):.1f} s")
        rows = []
        for v in ROUNDS:
            time.sleep(INTERVAL + 2)  # settle: every agent idle, on the last version
            publish(work, manifest(fleet, hosts, v, mode), v, mode)
            arrived = sorted(wait_all(fleet, hosts, v).values())
            rows.append((v, arrived))
            print(f"{'publish' if mode == 'oci' else 'push'} {v}: first host {arrived[0]:.1f} s, median {statistics.median(arrived):.1f} s, "
                  f"last host {arrived[-1]:.1f} s (interval + 10 s = {INTERVAL + 10} s)")

        # Idle: every agent in sync. CPU and memory from /proc; one agent traced for its calls.
        time.sleep(2 * INTERVAL)
        before = {a.pid: proc_times(a.pid) for a in agents}
        trace = os.path.join(work, "agent.strace")
        tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-s", "64", "-o", trace, "-e", "trace=execve,write,writev,sendto",
             "-p", str(agents[0].pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(IDLE_SECS)
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
        after = {a.pid: proc_times(a.pid) for a in agents}
        own = [after[p][0] - before[p][0] for p in before]
        kids = [after[p][1] - before[p][1] for p in before]
        mem = [proc_mem(a.pid) for a in agents]
        text = open(trace, errors="replace").read()
        # One sync = one `git fetch` the agent started (the lookups along PATH that fail do not count).
        fetches = len(re.findall(r'execve\("[^"]*git", \["git", "--git-dir", [^\]]*"fetch".*\) = 0$', text, re.M))
        calls = re.findall(r'(?:write|writev|sendto)\(\d+, .*?"(GET|POST|PUT|DELETE|HEAD) (/[^ ?"\\]*)', text)
        if mode == "oci":
            # One sync = one HEAD of the followed tag at the registry (not an engine call).
            fetches = sum(1 for m, p in calls if m == "HEAD" and "/manifests/" in p)
            calls = [(m, p) for m, p in calls if "/manifests/" not in p and "/blobs/" not in p]
        kinds = {}
        for method, path in calls:
            path = re.sub(r"^/v[0-9.]+", "", path)
            path = re.sub(r"/containers/(?!json$|create$)[^/]+", "/containers/{id}", path)
            kinds[f"{method} {path}"] = kinds.get(f"{method} {path}", 0) + 1
        per_min = 60 / IDLE_SECS
        print(f"idle over {IDLE_SECS} s, per agent: own CPU {statistics.median(own) * per_min:.2f} s/min "
              f"(max {max(own) * per_min:.2f}), git children {statistics.median(kids) * per_min:.2f} s/min; "
              f"VmRSS {statistics.median(m['VmRSS'] for m in mem):.0f} MB "
              f"(VmHWM max {max(m['VmHWM'] for m in mem):.0f} MB)")
        print(f"traced agent: {fetches} syncs, {len(calls)} engine calls "
              f"({len(calls) / max(fetches, 1):.1f} per sync): "
              + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
        json.dump({"follow": mode, "hosts": len(hosts), "interval": INTERVAL,
                   "rounds": {v: a for v, a in rows}, "idle_own_cpu_s": own,
                   "idle_children_cpu_s": kids, "mem_mb": mem, "syncs": fetches,
                   "calls": kinds}, open(os.path.join(work, f"result-{mode}.json"), "w"), indent=1)
        print(f"raw figures in {work}/result-{mode}.json")
    finally:
        for a in agents:
            a.send_signal(signal.SIGTERM)
        for a in agents:
            try:
                a.wait(timeout=15)
            except subprocess.TimeoutExpired:
                a.kill()
        daemon.kill()


if __name__ == "__main__":
    main()
