#!/usr/bin/env python3
"""fleetpin against its peers, on a fleet that is up: the driver behind benches/compare.sh.

Standard library only. Reads the fleet from the environment (`eval "$(fleet.sh env)"`), runs
every measurement interleaved (A B C, A B C, …, the order reversed every other round), and prints
markdown tables: medians with min–max, health waits apart from orchestration, the engine floors
measured in the same run, and which targets hold. Raw numbers go to $BENCH_OUT/results.json.

Traffic goes only to the fleet's own addresses (its hosts' Engine APIs and published ports).
Every loop here is bounded in count and time.
"""

import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

T = time.perf_counter
E = os.environ
ROUNDS = int(E.get("ROUNDS", "5"))
GROWTH_ROUNDS = int(E.get("GROWTH_ROUNDS", str(2 * ROUNDS)))
SERVICES = 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLEETPIN = E.get("FLEETPIN_BIN", os.path.join(REPO, "target/release/fleetpin"))
DOCKER = E.get("DOCKER_CLI", "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker")
COMPOSE = E.get("COMPOSE_BIN", shutil.which("docker-compose") or "docker-compose")
PLAYBOOK = E.get("ANSIBLE_PLAYBOOK", "")  # empty: the Ansible rows are skipped
OUT = E.get("BENCH_OUT", os.path.join(REPO, "target/bench-compare"))
IMAGE = E["FLEET_IMAGE"]
OLD, NEW = "1.0.0", "1.1.0"
NHOSTS = int(E["FLEET_HOSTS_COUNT"])
GROWTH = [n for n in (1, 3, 6, 12) if n <= NHOSTS]
MULTI = 4
API = "/v1.41"  # Engine 20.10; every call below exists in this version

WORK = tempfile.mkdtemp(prefix="fleetpin-compare-")
os.makedirs(OUT, exist_ok=True)
LOG = open(os.path.join(OUT, "run.log"), "w")


def log(msg):
    line = f"[compare {time.strftime('%H:%M:%S')}] {msg}"
    print(line, file=sys.stderr, flush=True)
    print(line, file=LOG, flush=True)


def host(k, what):
    return E[f"FLEET_H{k}_{what}"]


def svc(i):
    return f"svc{i:02d}"


# ------------------------------------------------------------------ engine client --
class UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Api:
    """A keep-alive Engine API client on a unix:// or tcp:// endpoint (the floor and the setup)."""

    def __init__(self, endpoint, timeout=60):
        self.endpoint = endpoint
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        if self.endpoint.startswith("unix://"):
            return UnixConn(self.endpoint[len("unix://"):], self.timeout)
        hp = self.endpoint[len("tcp://"):]
        h, p = hp.rsplit(":", 1)
        return http.client.HTTPConnection(h, int(p), timeout=self.timeout)

    def req(self, method, path, body=None, ok=(200, 201, 204, 304), query=None):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, API + path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        if r.status not in ok:
            raise RuntimeError(f"{method} {path} on {self.endpoint}: {r.status} {raw[:300]!r}")
        if raw and (r.getheader("Content-Type") or "").startswith("application/json"):
            try:
                return r.status, json.loads(raw)
            except ValueError:  # a stream of JSON lines (pull)
                pass
        return r.status, raw

    def containers(self, prefix):
        _, lst = self.req("GET", "/containers/json",
                          query={"all": "1", "filters": json.dumps({"name": [f"^/{prefix}"]})})
        return {c["Names"][0][1:]: c for c in lst}


def parallel(fns):
    """Runs the callables in threads, returns their results (exceptions re-raised)."""
    res = [None] * len(fns)
    err = []

    def one(i, f):
        try:
            res[i] = f()
        except Exception as e:  # noqa: BLE001 - reported below
            err.append(e)

    ts = [threading.Thread(target=one, args=(i, f)) for i, f in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if err:
        raise err[0]
    return res


def cleanup(k, prefixes, networks=()):
    """Removes every container on host k whose name starts with one of the prefixes (force, never
    volumes), then the named networks. Untimed."""
    api = Api(host(k, "UNIX"))
    _, lst = api.req("GET", "/containers/json", query={"all": "1"})
    ids = [c["Id"] for c in lst if any(c["Names"][0][1:].startswith(p) for p in prefixes)]

    def rm(i):
        return lambda: Api(host(k, "UNIX")).req("DELETE", f"/containers/{i}", query={"force": "1"},
                                                ok=(204, 404))
    for chunk in range(0, len(ids), 16):
        parallel([rm(i) for i in ids[chunk:chunk + 16]])
    for n in networks:
        api.req("DELETE", f"/networks/{n}", ok=(204, 404))


def wait_healthy(api, names, prefix, timeout=120, poll=0.05):
    """perf_counter() at which every named container is running and healthy (polled list calls)."""
    deadline = T() + timeout
    while T() < deadline:
        cs = api.containers(prefix)
        if all(n in cs and cs[n]["State"] == "running" and "(healthy)" in cs[n]["Status"] for n in names):
            return T()
        time.sleep(poll)
    raise RuntimeError(f"not healthy within {timeout}s: {names}")


# ---------------------------------------------------------------- subprocesses --
class Run:
    def __init__(self, wall, cpu, maxrss_kb, rc, out, err):
        self.wall, self.cpu, self.maxrss_kb, self.rc, self.out, self.err = wall, cpu, maxrss_kb, rc, out, err

    def json(self):
        return json.loads(self.out)


def run(cmd, env=None, cwd=None, ok=(0,), what=None):
    """Runs cmd, timing its wall clock here and its CPU and peak RSS from wait4."""
    full_env = dict(E)
    full_env.update(env or {})
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = T()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=full_env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = T() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    r = Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, p.returncode, out, err)
    if ok is not None and r.rc not in ok:
        raise RuntimeError(f"{what or cmd[0]} exited {r.rc}: {' '.join(cmd)}\n{err[-2000:]}\n{out[-1000:]}")
    return r


FP_ENV = {"FLEETPIN_USER": "bench", "NO_COLOR": "1"}


def fp(manifest, *args, ok=(0,)):
    return run([FLEETPIN, "-q", "-f", manifest, *args], env=FP_ENV, ok=ok, what="fleetpin " + args[0])


def fp_report(r):
    """(seconds of health wait, number of actions) from an apply/rollback JSON report. A host's
    services are gated together (one depends_on wave here: they are independent), so a host's
    wait is its longest gate, not their sum; over several hosts, the mean of the hosts' waits."""
    doc = r.json()
    if not doc.get("ok"):
        raise RuntimeError(f"fleetpin reported failure: {r.out[-2000:]}")
    acts = [a for h in doc["hosts"] for a in h["actions"]]
    waits = [max((a["health_seconds"] for a in h["actions"]), default=0.0) for h in doc["hosts"]]
    busy = [w for w, h in zip(waits, doc["hosts"]) if h["actions"]]
    return (sum(busy) / len(busy) if busy else 0.0), len(acts)


# ------------------------------------------------------------------- generators --
def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def manifest(path, platform_, env, hosts, port0, versions, no_health=False, count=SERVICES):
    lines = [f"platform: {platform_}", "services:"]
    hc = ", healthcheck: {test: [NONE]}" if no_health else ""
    for i in range(1, count + 1):
        lines.append(f'  {svc(i)}: {{image: {IMAGE}, ports: ["{port0 + i}:8080"]{hc}}}')
    lines += ["environments:", f"  {env}:", "    hosts:"]
    for name, endpoint in hosts:
        extra = ", insecure: true" if endpoint.startswith("tcp://") else ""
        lines.append(f'      {name}: {{endpoint: "{endpoint}"{extra}}}')
    lines.append("    versions:")
    for i in range(1, count + 1):
        lines.append(f'      {svc(i)}: "{versions.get(svc(i), OLD)}"')
    return write(path, "\n".join(lines) + "\n")


def compose_file(path, versions):
    """The single-host manifest as a compose file: same images, ports, container names, restart."""
    lines = ['version: "2.4"', "services:"]
    for i in range(1, SERVICES + 1):
        s = svc(i)
        lines += [f"  {s}:", f"    image: {IMAGE}:{versions.get(s, OLD)}",
                  f"    container_name: fpb-one-{s}", f'    ports: ["{18000 + i}:8080"]',
                  "    restart: unless-stopped"]
    return write(path, "\n".join(lines) + "\n")


def playbook(path, versions):
    """One community.docker.docker_container task per service, docker_host per inventory host."""
    lines = ["- hosts: fleet", "  gather_facts: false", "  tasks:"]
    for i in range(1, SERVICES + 1):
        s = svc(i)
        lines += [f"    - name: {s}", "      community.docker.docker_container:",
                  '        docker_host: "{{ docker_host }}"', f"        name: ans-{s}",
                  f"        image: {IMAGE}:{versions.get(s, OLD)}",
                  f'        published_ports: ["{18200 + i}:8080"]',
                  "        restart_policy: unless-stopped",
                  '        healthcheck: {test: ["NONE"]}',
                  "        state: started"]
    return write(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------- prober --
class Prober(threading.Thread):
    """GET /version on addr:port every `period`, each with a short timeout; bounded in count and
    time. Records (time, answered, body)."""

    def __init__(self, addr, port, period=0.01, max_seconds=40.0, max_probes=4000, timeout=0.25):
        super().__init__(daemon=True)
        self.addr, self.port, self.period, self.timeout = addr, port, period, timeout
        self.max_seconds, self.max_probes = max_seconds, max_probes
        self.samples = []
        self.halt = threading.Event()

    def probe(self):
        try:
            with socket.create_connection((self.addr, self.port), timeout=self.timeout) as s:
                s.settimeout(self.timeout)
                s.sendall(b"GET /version HTTP/1.0\r\nHost: probe\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            return head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n", 1)[0], body.decode(errors="replace")
        except OSError:
            return False, ""

    def run(self):
        start = T()
        nxt = start
        while not self.halt.is_set() and T() - start < self.max_seconds and len(self.samples) < self.max_probes:
            t = T()
            ok, body = self.probe()
            self.samples.append((t, ok, body))
            nxt += self.period
            time.sleep(max(0.0, nxt - T()))

    def seen(self, body):
        return any(ok and b == body for _, ok, b in self.samples[-20:])

    def longest_gap(self):
        """Longest time between two consecutive answered probes, and the number of failed probes."""
        oks = [t for t, ok, _ in self.samples if ok]
        gaps = [b - a for a, b in zip(oks, oks[1:])]
        return (max(gaps) if gaps else float("inf")), sum(1 for _, ok, _ in self.samples if not ok)


def probe_during(addr, port, action, expect):
    p = Prober(addr, port)
    p.start()
    time.sleep(0.3)
    if not p.seen(OLD):
        p.halt.set()
        raise RuntimeError(f"{addr}:{port} does not answer {OLD} before the upgrade")
    action()
    deadline = T() + 20
    while T() < deadline and not p.seen(expect):
        time.sleep(0.02)
    time.sleep(0.2)
    p.halt.set()
    p.join()
    if not p.seen(expect):
        raise RuntimeError(f"{addr}:{port} never answered {expect}")
    return p.longest_gap()


# ---------------------------------------------------------------- noise monitor --
class Noise(threading.Thread):
    """Every 2 s, the CPU time used by processes that are neither this driver's (and what it
    runs) nor the fleet's (its tracking cgroup): another build or test run on the machine skews
    every number, and this says how much of it there was, per section."""

    def __init__(self):
        super().__init__(daemon=True)
        self.me = os.getpid()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.boot = time.time() - float(open("/proc/uptime").read().split()[0])
        self.start_ticks = (time.time() - self.boot) * self.tick
        with open(f"/proc/{host(1, 'PID')}/cgroup") as f:
            cg = [line.split(":", 2)[2].strip() for line in f if ":pids:" in line or line.startswith("0::")]
        self.fleet_cg = "/" + cg[0].strip("/").split("/")[0] if cg else None
        self.last, self.cg_cache, self.comm = {}, {}, {}
        self.section, self.by_section, self.by_comm = "setup", {}, {}
        self.halt = threading.Event()

    def ours(self, pid, ppid_of):
        p, n = pid, 0
        while p and p != "0" and n < 64:
            if p == str(self.me):
                return True
            p, n = ppid_of.get(p), n + 1
        if pid not in self.cg_cache:
            try:
                with open(f"/proc/{pid}/cgroup") as f:
                    self.cg_cache[pid] = any(self.fleet_cg and line.split(":", 2)[2].startswith(self.fleet_cg + "/")
                                             for line in f)
            except OSError:
                self.cg_cache[pid] = False
        return self.cg_cache[pid]

    def scan(self):
        stats = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            comm = raw[raw.find("(") + 1:raw.rfind(")")]
            f = raw[raw.rfind(")") + 2:].split()
            stats[pid] = (f[1], int(f[11]) + int(f[12]) + int(f[13]) + int(f[14]), int(f[19]), comm)
        ppid_of = {p: v[0] for p, v in stats.items()}
        for pid, (_, ticks, started, comm) in stats.items():
            prev = self.last.get(pid)
            if prev is None:
                prev = 0 if started > self.start_ticks else ticks
            self.last[pid] = ticks
            d = ticks - prev
            if d > 0 and not self.ours(pid, ppid_of):
                self.by_section[self.section] = self.by_section.get(self.section, 0) + d / self.tick
                self.by_comm[comm] = self.by_comm.get(comm, 0) + d / self.tick

    def run(self):
        while not self.halt.wait(2.0):
            self.scan()

    def summary(self):
        top = sorted(self.by_comm.items(), key=lambda kv: -kv[1])[:4]
        secs = ", ".join(f"{k} {v:.0f} s" for k, v in self.by_section.items() if v >= 0.5)
        return (f"{sum(self.by_section.values()):.0f} CPU-seconds ({secs or 'none'}); top: "
                + (", ".join(f"{k} {v:.0f} s" for k, v in top if v >= 0.5) or "none"))


NOISE = None


def section(name):
    if NOISE:
        NOISE.scan()
        NOISE.section = name


# ------------------------------------------------------------------- recording --
R = {}  # R[row][tool] = list of dicts


def rec(row, tool, **kw):
    R.setdefault(row, {}).setdefault(tool, []).append(kw)
    log(f"{row} / {tool}: " + ", ".join(f"{k}={v * 1000:.0f}ms" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items()))


# ------------------------------------------------------- single host: 3 tools --
H1 = 1
ADDR1 = host(H1, "ADDR")
ONE_PREFIX = "fpb-one-"
NAMES = [f"fpb-one-{svc(i)}" for i in range(1, SERVICES + 1)]


def teardown_one():
    cleanup(H1, ["fpb-", "fleetpin-lock-fpb-"], networks=["fpb-one-default", "fpbcmp_default", "fpb-floor"])
    time.sleep(0.5)


def slot_fleetpin():
    d = os.path.join(WORK, "fp-one")
    os.makedirs(d, exist_ok=True)
    m = os.path.join(d, "platform.yaml")
    ep = [("h1", host(H1, "UNIX"))]
    manifest(m, "fpb", "one", ep, 18000, {})
    r = fp(m, "--format", "json", "apply", "one", "--yes")
    h, n = fp_report(r)
    assert n == SERVICES, n
    rec("converge", "fleetpin", wall=r.wall, health=h, orch=r.wall - h, cpu=r.cpu)
    r = fp(m, "plan", "one", "--detailed-exitcode")
    rec("noop", "fleetpin plan", wall=r.wall, cpu=r.cpu)
    r = fp(m, "--format", "json", "apply", "one", "--yes")
    assert fp_report(r)[1] == 0
    rec("noop", "fleetpin apply", wall=r.wall, cpu=r.cpu)
    manifest(m, "fpb", "one", ep, 18000, {"svc01": NEW})
    r = fp(m, "--format", "json", "apply", "one", "--yes")
    h, n = fp_report(r)
    assert n == 1, n
    rec("upgrade", "fleetpin", wall=r.wall, health=h, orch=r.wall - h, cpu=r.cpu)
    r = fp(m, "--format", "json", "rollback", "one", "-s", "svc01", "--yes", "--no-commit")
    h, n = fp_report(r)
    assert n == 1, n
    rec("rollback", "fleetpin", wall=r.wall, health=h, orch=r.wall - h, cpu=r.cpu)
    manifest(m, "fpb", "one", ep, 18000, {})
    fp(m, "plan", "one", "--detailed-exitcode")  # exit 0: nothing pending after the rollback
    manifest(m, "fpb", "one", ep, 18000, {"svc02": NEW})
    gap, failed = probe_during(ADDR1, 18002, lambda: fp_report(fp(m, "--format", "json", "apply", "one", "--yes")), NEW)
    rec("gap", "fleetpin", gap=gap, failed_probes=failed)


def compose(path, *args):
    return run([COMPOSE, "--ansi", "never", "-p", "fpbcmp", "-f", path, *args],
               env={"DOCKER_HOST": host(H1, "UNIX"), "DOCKER_CONFIG": os.path.join(WORK, "docker-config")},
               what="docker-compose")


def slot_compose():
    api = Api(host(H1, "UNIX"))
    f = os.path.join(WORK, "docker-compose.yml")
    compose_file(f, {})
    t0 = T()
    r = compose(f, "up", "-d")
    t2 = wait_healthy(api, NAMES, ONE_PREFIX)
    rec("converge", "docker-compose", wall=t2 - t0, orch=r.wall, health=t2 - t0 - r.wall, cpu=r.cpu)
    r = compose(f, "up", "-d")
    rec("noop", "docker-compose up -d", wall=r.wall, cpu=r.cpu)
    compose_file(f, {"svc01": NEW})
    t0 = T()
    r = compose(f, "up", "-d")
    t2 = wait_healthy(api, ["fpb-one-svc01"], ONE_PREFIX)
    rec("upgrade", "docker-compose", wall=t2 - t0, orch=r.wall, health=t2 - t0 - r.wall, cpu=r.cpu)
    compose_file(f, {})
    t0 = T()
    r = compose(f, "up", "-d")
    t2 = wait_healthy(api, ["fpb-one-svc01"], ONE_PREFIX)
    rec("rollback", "docker-compose", wall=t2 - t0, orch=r.wall, health=t2 - t0 - r.wall, cpu=r.cpu)
    compose_file(f, {"svc02": NEW})
    gap, failed = probe_during(ADDR1, 18002, lambda: compose(f, "up", "-d"), NEW)
    rec("gap", "docker-compose", gap=gap, failed_probes=failed)


def docker(*args):
    return run([DOCKER, "-H", host(H1, "UNIX"), *args],
               env={"DOCKER_CONFIG": os.path.join(WORK, "docker-config")}, what="docker " + args[0])


def docker_run(i, version):
    return docker("run", "-d", "--name", f"fpb-one-{svc(i)}", "-p", f"{18000 + i}:8080",
                  "--restart", "unless-stopped", f"{IMAGE}:{version}")


def docker_replace(i, version):
    """What an operator types: stop, rm, run. Returns the summed wall and CPU."""
    rs = [docker("stop", f"fpb-one-{svc(i)}"), docker("rm", f"fpb-one-{svc(i)}"), docker_run(i, version)]
    return sum(r.wall for r in rs), sum(r.cpu for r in rs)


def floor_body(i, version, net):
    """The create body fleetpin sends for a service, written by hand (labels of the same size)."""
    s = svc(i)
    labels = {f"io.fleetpin.{k}": v for k, v in {
        "platform": "fpb", "environment": "one", "service": s, "version": version,
        "spec-hash": "0" * 64, "commit": "uncommitted", "deployed-at": "2026-11-23T00:00:00Z",
        "deployed-by": "bench", "restart": "unless-stopped", "spec-hash-scheme": "1"}.items()}
    return {"Image": f"{IMAGE}:{version}", "Env": [], "Labels": labels,
            "ExposedPorts": {"8080/tcp": {}},
            "HostConfig": {"PortBindings": {"8080/tcp": [{"HostPort": str(18000 + i)}]}, "Mounts": [],
                           "RestartPolicy": {"Name": "unless-stopped"}, "NetworkMode": net},
            "NetworkingConfig": {"EndpointsConfig": {net: {"Aliases": [s]}}}}


def slot_raw():
    api = Api(host(H1, "UNIX"))
    t0 = T()
    walls = cpu = 0.0
    for i in range(1, SERVICES + 1):
        r = docker_run(i, OLD)
        walls += r.wall
        cpu += r.cpu
    t1 = T()
    t2 = wait_healthy(api, NAMES, ONE_PREFIX)
    rec("converge", "docker run x20", wall=t2 - t0, orch=t1 - t0, health=t2 - t1, cpu=cpu)
    t0 = T()
    w, cpu = docker_replace(1, NEW)
    t1 = T()
    t2 = wait_healthy(api, ["fpb-one-svc01"], ONE_PREFIX)
    rec("upgrade", "docker stop+rm+run", wall=t2 - t0, orch=t1 - t0, health=t2 - t1, cpu=cpu)
    gap, failed = probe_during(ADDR1, 18002, lambda: docker_replace(2, NEW), NEW)
    rec("gap", "docker stop+rm+run", gap=gap, failed_probes=failed)
    # The floor: the bare Engine API calls an upgrade needs (create, stop, start) and a rollback
    # needs (stop, start), on svc03 of this stack, over one keep-alive connection to the socket.
    api.req("POST", "/networks/create", {"Name": "fpb-floor", "Driver": "bridge"}, ok=(201, 409))
    old_id = api.containers("fpb-one-svc03")["fpb-one-svc03"]["Id"]
    api.req("GET", "/_ping")
    t0 = T()
    _, c = api.req("POST", "/containers/create", floor_body(3, NEW, "fpb-floor"),
                   query={"name": "fpb-one-svc03.floor"})
    t1 = T()
    api.req("POST", f"/containers/{old_id}/stop")
    t2 = T()
    api.req("POST", f"/containers/{c['Id']}/start")
    t3 = T()
    rec("floor upgrade", "create+stop+start", wall=t3 - t0, create=t1 - t0, stop=t2 - t1, start=t3 - t2)
    wait_healthy(api, ["fpb-one-svc03.floor"], ONE_PREFIX)
    t0 = T()
    api.req("POST", f"/containers/{c['Id']}/stop")
    t1 = T()
    api.req("POST", f"/containers/{old_id}/start")
    t2 = T()
    rec("floor rollback", "stop+start", wall=t2 - t0, stop=t1 - t0, start=t2 - t1)
    wait_healthy(api, ["fpb-one-svc03"], ONE_PREFIX)
    # The same upgrade floor on Docker's default bridge (no user-defined network, so no embedded
    # DNS to set up at start): what the network choice costs, as fleetpin and compose make one.
    old_id = api.containers("fpb-one-svc04")["fpb-one-svc04"]["Id"]
    body = floor_body(4, NEW, "bridge")
    del body["NetworkingConfig"]
    t0 = T()
    _, c = api.req("POST", "/containers/create", body, query={"name": "fpb-one-svc04.floor"})
    t1 = T()
    api.req("POST", f"/containers/{old_id}/stop")
    t2 = T()
    api.req("POST", f"/containers/{c['Id']}/start")
    t3 = T()
    rec("floor upgrade bridge", "create+stop+start", wall=t3 - t0, create=t1 - t0, stop=t2 - t1, start=t3 - t2)


def slot_fleetpin_sizes():
    """Converging 1 and then 12 independent services from empty, each until healthy: with
    services swapped concurrently (depends_on waves), 12 should cost about one health wait."""
    d = os.path.join(WORK, "fp-sizes")
    os.makedirs(d, exist_ok=True)
    m = os.path.join(d, "platform.yaml")
    ep = [("h1", host(H1, "UNIX"))]
    for n in (1, 12):
        manifest(m, "fpb", "one", ep, 18000, {}, count=n)
        r = fp(m, "--format", "json", "apply", "one", "--yes")
        h, acts = fp_report(r)
        assert acts == n, acts
        rec(f"converge {n}", "fleetpin", wall=r.wall, cpu=r.cpu)
        teardown_one()


def floor_at_once(n):
    """The bare API creating and starting services 1..n at once (one connection each, on a user
    network as fleetpin makes), then waiting until all are healthy. Returns (t0, t1, t2)."""
    api = Api(host(H1, "UNIX"))
    api.req("POST", "/networks/create", {"Name": "fpb-floor", "Driver": "bridge"}, ok=(201, 409))
    api.req("GET", "/_ping")

    def one(i):
        def go():
            a = Api(host(H1, "UNIX"))
            _, c = a.req("POST", "/containers/create", floor_body(i, OLD, "fpb-floor"),
                         query={"name": f"fpb-one-{svc(i)}"})
            a.req("POST", f"/containers/{c['Id']}/start")
        return go

    t0 = T()
    parallel([one(i) for i in range(1, n + 1)])
    t1 = T()
    t2 = wait_healthy(api, NAMES[:n], ONE_PREFIX)
    return t0, t1, t2


def slot_sizes_floor():
    """The same 1 and 12 services from empty through the bare API, all at once: what the engine
    itself takes for twelve against one on this machine."""
    for n in (1, 12):
        t0, t1, t2 = floor_at_once(n)
        rec(f"converge {n}", "floor: bare API, at once", wall=t2 - t0, orch=t1 - t0, health=t2 - t1)
        teardown_one()


def slot_twenty():
    """fleetpin and the bare-API floor converging the 20 services from empty (rows `converge 20`)."""
    d = os.path.join(WORK, "fp-sizes")
    os.makedirs(d, exist_ok=True)
    m = os.path.join(d, "platform.yaml")
    manifest(m, "fpb", "one", [("h1", host(H1, "UNIX"))], 18000, {})
    r = fp(m, "--format", "json", "apply", "one", "--yes")
    assert fp_report(r)[1] == SERVICES
    rec("converge 20", "fleetpin", wall=r.wall, cpu=r.cpu)
    teardown_one()
    t0, t1, t2 = floor_at_once(SERVICES)
    rec("converge 20", "floor: bare API, at once", wall=t2 - t0, orch=t1 - t0, health=t2 - t1)


def sizes_only():
    log(f"converge 1, 12 and 20 from empty: {ROUNDS} rounds of fleetpin / the bare-API floor on h1")
    teardown_one()
    slots = [("fleetpin 1 and 12", slot_fleetpin_sizes), ("floor 1 and 12", slot_sizes_floor),
             ("fleetpin and floor 20", slot_twenty)]
    for rnd in range(ROUNDS):
        for name, f in (slots if rnd % 2 == 0 else slots[::-1]):
            log(f"round {rnd + 1}/{ROUNDS}: {name}")
            try:
                f()
            finally:
                teardown_one()


def slot_floor_converge():
    """The concurrent floor of a converge from empty: the bare API creates and starts all 20
    services at once (one connection each, on a user network as fleetpin makes), then waits until
    all are healthy (one health interval of the image)."""
    t0, t1, t2 = floor_at_once(SERVICES)
    rec("converge", "floor: bare API, 20 at once", wall=t2 - t0, orch=t1 - t0, health=t2 - t1)


def single_host():
    log(f"single host: {ROUNDS} rounds of fleetpin / docker-compose / docker run on h1 "
        f"({SERVICES} services with the images' 1 s healthcheck)")
    teardown_one()
    slots = [("fleetpin", slot_fleetpin), ("docker-compose", slot_compose), ("docker", slot_raw),
             ("fleetpin 1 and 12", slot_fleetpin_sizes), ("floor x20", slot_floor_converge),
             ("floor 1 and 12", slot_sizes_floor)]
    for rnd in range(ROUNDS):
        order = slots if rnd % 2 == 0 else slots[::-1]
        for name, f in order:
            log(f"round {rnd + 1}/{ROUNDS}: {name}")
            try:
                f()
            finally:
                teardown_one()


# ------------------------------------------ through a reverse proxy: start-first --
# The same stack for both tools on h1: a graceful app (`api`) behind the fleet's Caddy proxy, which
# resolves the alias `api` through Docker's DNS every second and retries. fleetpin swaps `api`
# start-first; docker-compose recreates it (stop, then start). A client sends 100 requests a second
# through the proxy, each with a 2 s timeout (the proxy may retry within that), during an upgrade
# and during a rollback.
GRACEFUL = E.get("FLEET_GRACEFUL_IMAGE", "")
CADDY = E.get("FLEET_CADDY_IMAGE", "")
CADDY_TAG = E.get("FLEET_CADDY_TAG", "")


def proxy_manifest(path, version):
    write(path, "\n".join([
        "platform: fpz",
        "services:",
        f"  api: {{image: {GRACEFUL}, networks: [front], update: {{order: start-first, drain: 2s}}}}",
        f"  proxy: {{image: {CADDY}, ports: [\"18720:80\"], networks: [front], env: {{UPSTREAM_NAME: api}}}}",
        "environments:",
        "  z:",
        f"    hosts: {{h1: {{endpoint: \"{host(H1, 'UNIX')}\"}}}}",
        f"    versions: {{api: \"{version}\", proxy: \"{CADDY_TAG}\"}}",
        "",
    ]))


def proxy_compose(path, version):
    write(path, "\n".join([
        "version: '2.4'",
        "services:",
        f"  api: {{image: '{GRACEFUL}:{version}'}}",
        f"  proxy: {{image: '{CADDY}:{CADDY_TAG}', ports: ['18721:80'], environment: {{UPSTREAM_NAME: api}}}}",
        "",
    ]))


def probe_proxy(port, action, expect, before):
    p = Prober(ADDR1, port, period=0.01, max_seconds=60, max_probes=6000, timeout=2.0)
    p.start()
    deadline = T() + 20
    while T() < deadline and not p.seen(before):
        time.sleep(0.05)
    if not p.seen(before):
        p.halt.set()
        raise RuntimeError(f"the proxy on {port} does not answer {before}")
    time.sleep(0.5)
    action()
    deadline = T() + 30
    while T() < deadline and not p.seen(expect):
        time.sleep(0.02)
    time.sleep(1.0)
    p.halt.set()
    p.join()
    gap, failed = p.longest_gap()
    return gap, failed, len(p.samples)


def probe_broken(port, action, serving):
    """Requests answered by the broken release while `action` deploys it, over 8 s after."""
    p = Prober(ADDR1, port, period=0.01, max_seconds=60, max_probes=6000, timeout=2.0)
    p.start()
    deadline = T() + 20
    while T() < deadline and not p.seen(serving):
        time.sleep(0.05)
    time.sleep(0.5)
    action()
    time.sleep(8.0)
    p.halt.set()
    p.join()
    gap, failed = p.longest_gap()
    broken = sum(1 for _, ok, b in p.samples if ok and b == "broken")
    return broken, failed, len(p.samples)


def through_proxy():
    if not (GRACEFUL and CADDY):
        log("through-a-proxy rows skipped: the fleet has no proxy or graceful image")
        return
    d = os.path.join(WORK, "proxy")
    os.makedirs(d, exist_ok=True)
    m = os.path.join(d, "platform.yaml")
    c = os.path.join(d, "docker-compose.yml")

    def teardown():
        cleanup(H1, ["fpz-", "fleetpin-lock-fpz-", "fpzcmp_"], networks=["fpz-z-front", "fpzcmp_default"])
        time.sleep(0.5)

    def fleetpin_round():
        proxy_manifest(m, OLD)
        fp(m, "apply", "z", "--yes")
        proxy_manifest(m, NEW)
        gap, failed, n = probe_proxy(18720, lambda: fp(m, "apply", "z", "--yes"), NEW, OLD)
        rec("proxy upgrade", "fleetpin start-first", gap=gap, failed=failed, requests=n)
        gap, failed, n = probe_proxy(
            18720, lambda: fp(m, "rollback", "z", "-s", "api", "--yes", "--no-commit"), OLD, NEW)
        rec("proxy rollback", "fleetpin start-first", gap=gap, failed=failed, requests=n)
        proxy_manifest(m, "broken")
        broken, failed, n = probe_broken(18720, lambda: fp(m, "apply", "z", "--yes", ok=(1,)), OLD)
        rec("proxy broken", "fleetpin start-first", broken=broken, failed=failed, requests=n)
        teardown()

    def compose_round():
        env = {"DOCKER_HOST": host(H1, "UNIX"), "DOCKER_CONFIG": os.path.join(WORK, "docker-config")}

        def up():
            run([COMPOSE, "--ansi", "never", "-p", "fpzcmp", "-f", c, "up", "-d"], env=env, what="docker-compose")
        proxy_compose(c, OLD)
        up()
        proxy_compose(c, NEW)
        gap, failed, n = probe_proxy(18721, up, NEW, OLD)
        rec("proxy upgrade", "docker-compose", gap=gap, failed=failed, requests=n)
        proxy_compose(c, OLD)
        gap, failed, n = probe_proxy(18721, up, OLD, NEW)
        rec("proxy rollback", "docker-compose", gap=gap, failed=failed, requests=n)
        proxy_compose(c, "broken")
        broken, failed, n = probe_broken(18721, up, OLD)
        rec("proxy broken", "docker-compose", broken=broken, failed=failed, requests=n)
        teardown()

    teardown()
    for r in range(ROUNDS):
        for f in (fleetpin_round, compose_round) if r % 2 == 0 else (compose_round, fleetpin_round):
            f()


# ---------------------------------------------------------- several hosts, growth --
def multi_and_growth():
    d = os.path.join(WORK, "multi")
    os.makedirs(d, exist_ok=True)
    mh = [(f"h{k}", host(k, "TCP")) for k in range(1, MULTI + 1)]
    mm = os.path.join(d, "four.yaml")
    manifest(mm, "fpm", "four", mh, 18100, {}, no_health=True)
    grow = {}
    for n in GROWTH:
        grow[n] = manifest(os.path.join(d, f"grow-{n}.yaml"), "grow", "g",
                           [(f"h{k}", host(k, "TCP")) for k in range(1, n + 1)], 18300, {}, no_health=True)
    log(f"setting up: fleetpin on {MULTI} hosts and the growth platform on {GROWTH[-1]} hosts "
        f"({SERVICES} services each, no healthcheck: each gated by update.monitor, 10 s by default)")
    env = dict(E, **FP_ENV)
    procs = [subprocess.Popen([FLEETPIN, "-q", "-f", m, "apply", e, "--yes"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for m, e in ((mm, "four"), (grow[GROWTH[-1]], "g"))]

    def setups_done():
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"setup apply failed: {err.decode()[-2000:]}")
    if not PLAYBOOK:
        log("Ansible rows skipped (no ansible-playbook with community.docker)")
    multi_rounds(d, mm, mh, ansible_on=bool(PLAYBOOK), before_rounds=setups_done)
    for k in range(1, MULTI + 1):
        cleanup(k, ["fpm-", "ans-", "fleetpin-lock-fpm-"], networks=["fpm-four-default"])
    growth(grow)


def run_ansible(d, inv, versions):
    pb = playbook(os.path.join(d, "play.yml"), versions)
    r = run([PLAYBOOK, "-i", inv, pb], cwd=d, what="ansible-playbook",
            env={"ANSIBLE_CONFIG": os.path.join(d, "ansible.cfg"), "ANSIBLE_HOME": os.path.join(d, ".ansible"),
                 "ANSIBLE_LOCAL_TEMP": os.path.join(d, ".ansible/tmp"), "ANSIBLE_REMOTE_TMP": os.path.join(d, ".ansible/tmp")})
    recap = re.findall(r"^(h\d+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", r.out, re.M)
    if len(recap) != MULTI or any(int(x[3]) or int(x[4]) for x in recap):
        raise RuntimeError(f"ansible-playbook: unexpected recap\n{r.out[-3000:]}")
    return r, sum(int(x[2]) for x in recap)


def multi_rounds(d, mm, mh, ansible_on=True, before_rounds=lambda: None):
    inv = write(os.path.join(d, "inventory.ini"), "[fleet]\n" + "".join(
        f"h{k} docker_host={host(k, 'TCP')}\n" for k in range(1, MULTI + 1)) +
        f"\n[fleet:vars]\nansible_connection=local\nansible_python_interpreter={E.get('ANSIBLE_PYTHON', sys.executable)}\n")
    write(os.path.join(d, "ansible.cfg"), "[defaults]\nforks = 8\nhost_key_checking = False\n"
          "retry_files_enabled = False\ndeprecation_warnings = False\nlocalhost_warning = False\n"
          "interpreter_python = auto_silent\n")
    if ansible_on:
        log("setting up: Ansible stack on the same hosts, meanwhile (untimed)")
        _, changed = run_ansible(d, inv, {})
        assert changed == MULTI * SERVICES, changed
    before_rounds()
    log(f"several hosts: {ROUNDS} rounds, {MULTI} hosts over tcp, {SERVICES} services each")
    version = OLD
    for rnd in range(ROUNDS):
        version = NEW if version == OLD else OLD
        tools = ["fleetpin", "ansible"] if ansible_on else ["fleetpin"]
        for tool in (tools if rnd % 2 == 0 else tools[::-1]):
            if tool == "fleetpin":
                manifest(mm, "fpm", "four", mh, 18100, {"svc01": version}, no_health=True)
                r = fp(mm, "--format", "json", "apply", "four", "--yes")
                h, n = fp_report(r)
                assert n == MULTI, n
                rec("multi change", "fleetpin", wall=r.wall, health=h, orch=r.wall - h, cpu=r.cpu)  # h: the hosts' mean already
                r = fp(mm, "--format", "json", "apply", "four", "--yes")
                assert fp_report(r)[1] == 0
                rec("multi noop", "fleetpin apply", wall=r.wall, cpu=r.cpu)
                r = fp(mm, "plan", "four", "--detailed-exitcode")
                rec("multi noop", "fleetpin plan", wall=r.wall, cpu=r.cpu)
            else:
                r, changed = run_ansible(d, inv, {"svc01": version})
                assert changed == MULTI, changed
                rec("multi change", "ansible", wall=r.wall, orch=r.wall, cpu=r.cpu)
                r, changed = run_ansible(d, inv, {"svc01": version})
                assert changed == 0, changed
                rec("multi noop", "ansible", wall=r.wall, cpu=r.cpu)


def engine_cpu(ks):
    """CPU seconds used so far by the dockerds of hosts ks (all their threads)."""
    total = 0
    for k in ks:
        pid = host(k, "PID")
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
    return total / 1e9


def curl_floor(urls):
    """All the given Engine API calls at once from one curl process (one connection each). The
    floor is the longest transfer (curl's own time_total: no process start), the run is returned
    for its CPU."""
    cfg = os.path.join(WORK, "curl-floor.cfg")
    write(cfg, "".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls))
    r = run(["curl", "--noproxy", "*", "-sS", "--fail", "--parallel", "--parallel-immediate",
             "--parallel-max", "500", "-w", "%{time_total}\\n", "-K", cfg], what="curl")
    times = [float(x) for x in r.out.split()]
    assert len(times) == len(urls), (len(times), len(urls))
    return max(times), r


def growth(grow):
    log(f"fleet growth: audit and plan of 'grow' on {GROWTH} hosts, {GROWTH_ROUNDS} rounds interleaved")
    # The calls audit makes per host, for the floor: version, one list, an inspect per running
    # container and per image.
    calls = {}
    for n in GROWTH:
        urls = []
        for k in range(1, n + 1):
            base = "http://" + host(k, "TCP")[len("tcp://"):] + API
            cs = Api(host(k, "UNIX")).containers("grow-g-")
            assert len(cs) == SERVICES, (k, len(cs))
            urls.append(base + "/version")
            urls.append(base + "/containers/json?" + urllib.parse.urlencode(
                {"all": "true", "filters": json.dumps({"name": ["^/grow-g-"]})}))
            urls += [base + f"/containers/{c['Id']}/json" for c in cs.values()]
            urls += [base + f"/images/{i}/json" for i in sorted({c["ImageID"] for c in cs.values()})]
        calls[n] = urls
    for rnd in range(GROWTH_ROUNDS):
        order = GROWTH if rnd % 2 == 0 else GROWTH[::-1]
        for n in order:
            ks = range(1, n + 1)
            e0 = engine_cpu(ks)
            r = fp(grow[n], "--format", "json", "audit", "g")
            e1 = engine_cpu(ks)
            rows = r.json()["rows"]
            assert len(rows) == n * SERVICES and all(x["status"] == "ok" for x in rows), r.out[-500:]
            rec(f"audit {n}", "fleetpin audit", wall=r.wall, cpu=r.cpu, engine_cpu=e1 - e0)
        for n in order:
            ks = range(1, n + 1)
            e0 = engine_cpu(ks)
            r = fp(grow[n], "plan", "g", "--detailed-exitcode")
            e1 = engine_cpu(ks)
            rec(f"plan {n}", "fleetpin plan", wall=r.wall, cpu=r.cpu, engine_cpu=e1 - e0)
        for n in order:
            ks = range(1, n + 1)
            e0 = engine_cpu(ks)
            w, r = curl_floor(calls[n])
            e1 = engine_cpu(ks)
            rec(f"audit {n}", "floor: same calls, all at once (curl)", wall=w, cpu=r.cpu, engine_cpu=e1 - e0)
            plan_urls = [u for u in calls[n] if u.endswith("/version") or "/containers/json?" in u]
            w, r = curl_floor(plan_urls)
            rec(f"plan {n}", "floor: same calls, all at once (curl)", wall=w, cpu=r.cpu)
    big = grow[GROWTH[-1]]
    for what, args in (("plan", ["plan", "g"]), ("audit", ["--format", "json", "audit", "g"])):
        for _ in range(3):
            r = run(["/usr/bin/time", "-v", FLEETPIN, "-q", "-f", big, *args], env=FP_ENV, what="time -v")
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.err)
            rec(f"rss {what} {GROWTH[-1]}", "fleetpin", rss_kb=int(m.group(1)))
    for k in range(1, GROWTH[-1] + 1):
        cleanup(k, ["grow-", "fleetpin-lock-grow-"], networks=["grow-g-default"])


# ------------------------------------------------------------------ pure plan --
def cargo_bench():
    if E.get("BENCH_CARGO", "1") != "1":
        return
    log("pure plan: cargo bench --bench plan (criterion)")
    r = run(["cargo", "bench", "--bench", "plan", "--", "--noplot"], cwd=REPO, what="cargo bench")
    for name, key in (("parse_resolve_plan 2000x200", "pure plan"), ("part: parse+check", "pure parse+check"),
                      ("part: resolve 200 hosts", "pure resolve"), ("part: classify+plan 200 hosts", "pure classify+plan")):
        m = re.search(re.escape(name) + r"\s+time:\s+\[([\d.]+) (\w+) ([\d.]+) (\w+) ([\d.]+) (\w+)\]", r.out)
        if m:
            unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
            lo, mid, hi = (float(m.group(i)) * unit[m.group(i + 1)] for i in (1, 3, 5))
            rec(key, "criterion", wall=mid, lo=lo, hi=hi)
    m = re.search(r"^plan bench: .*$", r.err + r.out, re.M)
    if m:
        R.setdefault("_notes", {})["plan_shape"] = m.group(0)


# ------------------------------------------------------------------- the report --
def ms(x):
    if x is None:
        return "—"
    if x == float("inf"):
        return "∞"
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def col(row, tool, key="wall"):
    return [x[key] for x in R.get(row, {}).get(tool, []) if x.get(key) is not None]


def med(row, tool, key="wall"):
    v = col(row, tool, key)
    return statistics.median(v) if v else None


def cell(row, tool, key="wall"):
    v = col(row, tool, key)
    if not v:
        return "—"
    return f"{ms(statistics.median(v))} ({ms(min(v))}–{ms(max(v))})"


def report(info):
    out = []
    p = out.append
    p(f"## Results ({info['date']}, {ROUNDS} rounds interleaved, median (min–max))\n")
    p("Wall = until the changed containers are healthy: fleetpin's own wall (it gates on health); for")
    p("docker-compose and `docker` the command's wall plus the wait, polled from outside, until Docker")
    p("reports `healthy`. Orchestration = fleetpin's wall minus its reported `health_seconds`; for the")
    p("others, the command's own wall (they do not wait).\n")
    p("| row | tool | wall (until healthy) | of which health wait | orchestration |")
    p("| --- | --- | --- | --- | --- |")
    single = [
        ("converge", "converge 20 services from empty, 1 host", ["fleetpin", "docker-compose", "docker run x20", "floor: bare API, 20 at once"]),
        ("converge 1", "converge 1 service from empty, 1 host", ["fleetpin", "floor: bare API, at once"]),
        ("converge 12", "converge 12 independent services from empty, 1 host", ["fleetpin", "floor: bare API, at once"]),
        ("upgrade", "upgrade 1 service of 20, 1 host", ["fleetpin", "docker-compose", "docker stop+rm+run"]),
        ("rollback", "roll back 1 service, 1 host", ["fleetpin", "docker-compose"]),
    ]
    for row, label, tools in single:
        for t in tools:
            p(f"| {label} | {t} | {cell(row, t)} | {cell(row, t, 'health')} | {cell(row, t, 'orch')} |")
    for t in ["fleetpin plan", "fleetpin apply", "docker-compose up -d"]:
        p(f"| no-op, 1 host (20 services) | {t} | {cell('noop', t)} | — | {cell('noop', t)} |")
    p(f"| floor: upgrade (bare API: create, stop, start) | Engine API | {cell('floor upgrade', 'create+stop+start')} | — | "
      f"create {ms(med('floor upgrade', 'create+stop+start', 'create'))}, stop {ms(med('floor upgrade', 'create+stop+start', 'stop'))}, "
      f"start {ms(med('floor upgrade', 'create+stop+start', 'start'))} |")
    p(f"| floor: upgrade on the default bridge instead of a user network | Engine API | {cell('floor upgrade bridge', 'create+stop+start')} | — | "
      f"create {ms(med('floor upgrade bridge', 'create+stop+start', 'create'))}, stop {ms(med('floor upgrade bridge', 'create+stop+start', 'stop'))}, "
      f"start {ms(med('floor upgrade bridge', 'create+stop+start', 'start'))} |")
    p(f"| floor: rollback (bare API: stop, start) | Engine API | {cell('floor rollback', 'stop+start')} | — | "
      f"stop {ms(med('floor rollback', 'stop+start', 'stop'))}, start {ms(med('floor rollback', 'stop+start', 'start'))} |")
    for t in ["fleetpin", "ansible"]:
        if col("multi change", t):
            p(f"| change 1 service of 20 on {MULTI} hosts (no healthcheck) | {t} | {cell('multi change', t)} | "
              f"{cell('multi change', t, 'health') if t == 'fleetpin' else '—'} | {cell('multi change', t, 'orch')} |")
    for t in ["fleetpin plan", "fleetpin apply", "ansible"]:
        if col("multi noop", t):
            p(f"| no-op on {MULTI} hosts (20 services each) | {t} | {cell('multi noop', t)} | — | {cell('multi noop', t)} |")
    p("")
    p("### Service interruption during an upgrade (probe every 10 ms on the published port)\n")
    p("| tool | longest window without an answer | failed probes |")
    p("| --- | --- | --- |")
    for t in ["fleetpin", "docker-compose", "docker stop+rm+run"]:
        p(f"| {t} | {cell('gap', t, 'gap')} | {statistics.median(col('gap', t, 'failed_probes')) if col('gap', t, 'failed_probes') else '—'} (median) |")
    p("")
    if col("proxy upgrade", "fleetpin start-first", "gap"):
        p("### Through a reverse proxy (Caddy re-resolving the alias every second, retrying; a graceful app; 100 requests a second, 2 s timeout)\n")
        p("| change | tool | failed requests (median, max) | requests (median) | longest gap between answers |")
        p("| --- | --- | --- | --- | --- |")
        for row, label in (("proxy upgrade", "upgrade"), ("proxy rollback", "rollback")):
            for t in ("fleetpin start-first", "docker-compose"):
                f = col(row, t, "failed")
                n = col(row, t, "requests")
                if f:
                    p(f"| {label} | {t} | {statistics.median(f):.0f}, {max(f)} | {statistics.median(n):.0f} | {cell(row, t, 'gap')} |")
        for t in ("fleetpin start-first", "docker-compose"):
            b = col("proxy broken", t, "broken")
            if b:
                f = col("proxy broken", t, "failed")
                n = col("proxy broken", t, "requests")
                p(f"| a release that never becomes healthy (answers by it: median {statistics.median(b):.0f}, max {max(b)}) | {t} | "
                  f"{statistics.median(f):.0f}, {max(f)} | {statistics.median(n):.0f} | — |")
        p("")
    p(f"### Fleet growth ({SERVICES} services per host, no healthcheck, {GROWTH_ROUNDS} rounds interleaved)\n")
    p("| hosts | audit | ratio to 1 host | audit floor (same calls at once, curl) | floor ratio | engines' CPU per audit | fleetpin CPU | plan | ratio | plan floor |")
    p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    a1, p1 = med("audit 1", "fleetpin audit"), med("plan 1", "fleetpin plan")
    f1 = med("audit 1", "floor: same calls, all at once (curl)")
    for n in GROWTH if a1 and p1 and f1 else []:
        a, pl = med(f"audit {n}", "fleetpin audit"), med(f"plan {n}", "fleetpin plan")
        fl = med(f"audit {n}", "floor: same calls, all at once (curl)")
        p(f"| {n} | {cell(f'audit {n}', 'fleetpin audit')} | {a / a1:.2f}× | {cell(f'audit {n}', 'floor: same calls, all at once (curl)')} | "
          f"{fl / f1:.2f}× | {ms(med(f'audit {n}', 'fleetpin audit', 'engine_cpu'))} | {ms(med(f'audit {n}', 'fleetpin audit', 'cpu'))} | "
          f"{cell(f'plan {n}', 'fleetpin plan')} | {pl / p1:.2f}× | {ms(med(f'plan {n}', 'floor: same calls, all at once (curl)'))} |")
    p("")
    big = GROWTH[-1]
    rss_p = max(col(f"rss plan {big}", "fleetpin", "rss_kb") or [0]) / 1024
    rss_a = max(col(f"rss audit {big}", "fleetpin", "rss_kb") or [0]) / 1024
    p(f"Peak RSS (`/usr/bin/time -v`, max of 3): `fleetpin plan` on {big} hosts {rss_p:.1f} MB, `fleetpin audit` on {big} hosts {rss_a:.1f} MB.\n")
    if col("pure plan", "criterion"):
        p(f"Pure planning (criterion, `cargo bench --bench plan`): parse + resolve + plan of 2,000 services × 200 hosts "
          f"{ms(med('pure plan', 'criterion'))} (parse+check {ms(med('pure parse+check', 'criterion'))}, "
          f"resolve {ms(med('pure resolve', 'criterion'))}, classify+plan {ms(med('pure classify+plan', 'criterion'))}).\n")

    # targets
    p("### Targets (ratios of medians from this run)\n")
    p("| target | measured | holds |")
    p("| --- | --- | --- |")

    def tgt(label, value, limit, text):
        if value is None:
            p(f"| {label} | not measured | — |")
            return
        p(f"| {label} | {text} | {'yes' if value <= limit else '**no**'} |")

    up_o, fl_u, cmp_u = med("upgrade", "fleetpin", "orch"), med("floor upgrade", "create+stop+start"), med("upgrade", "docker-compose", "orch")
    rb_o, fl_r, cmp_r = med("rollback", "fleetpin", "orch"), med("floor rollback", "stop+start"), med("rollback", "docker-compose", "orch")
    if None not in (up_o, fl_u, cmp_u):
        tgt("upgrade 1 of 20: orchestration ≤ 1.3× floor", up_o / fl_u, 1.3, f"{ms(up_o)} / {ms(fl_u)} = {up_o / fl_u:.2f}×")
        tgt("upgrade 1 of 20: orchestration ≤ 0.3× docker-compose wall", up_o / cmp_u, 0.3, f"{ms(up_o)} / {ms(cmp_u)} = {up_o / cmp_u:.2f}×")
    if None not in (rb_o, fl_r, cmp_r):
        tgt("rollback: orchestration ≤ 1.3× floor", rb_o / fl_r, 1.3, f"{ms(rb_o)} / {ms(fl_r)} = {rb_o / fl_r:.2f}×")
        tgt("rollback: orchestration ≤ 0.25× docker-compose wall", rb_o / cmp_r, 0.25, f"{ms(rb_o)} / {ms(cmp_r)} = {rb_o / cmp_r:.2f}×")
    c1, c12 = med("converge 1", "fleetpin"), med("converge 12", "fleetpin")
    if None not in (c1, c12):
        f1, f12 = med("converge 1", "floor: bare API, at once"), med("converge 12", "floor: bare API, at once")
        floor_ratio = f" (the floor: {f12 / f1:.2f}×)" if f1 and f12 else ""
        tgt("converge 12 independent ≤ 2.5× converge 1", c12 / c1, 2.5, f"{ms(c12)} / {ms(c1)} = {c12 / c1:.2f}×{floor_ratio}")
    c20, cf, cc = med("converge", "fleetpin"), med("converge", "floor: bare API, 20 at once"), med("converge", "docker-compose")
    if None not in (c20, cf, cc):
        tgt("converge 20 until healthy ≤ 1.3× the concurrent floor", c20 / cf, 1.3, f"{ms(c20)} / {ms(cf)} = {c20 / cf:.2f}×")
        tgt("converge 20 until healthy ≤ 0.6× docker-compose", c20 / cc, 0.6, f"{ms(c20)} / {ms(cc)} = {c20 / cc:.2f}× (the floor: {cf / cc:.2f}×)")
    np_, nc = med("noop", "fleetpin plan"), med("noop", "docker-compose up -d")
    if None not in (np_, nc):
        tgt("no-op plan ≤ 0.3× docker-compose no-op up -d", np_ / nc, 0.3, f"{ms(np_)} / {ms(nc)} = {np_ / nc:.3f}×")
    if a1 and med(f"audit {big}", "fleetpin audit"):
        a12 = med(f"audit {big}", "fleetpin audit")
        tgt(f"audit of {big} hosts ≤ 1.5× audit of 1 host", a12 / a1, 1.5, f"{ms(a12)} / {ms(a1)} = {a12 / a1:.2f}× (floor: {med(f'audit {big}', 'floor: same calls, all at once (curl)') / f1:.2f}×)")
    pp = med("pure plan", "criterion")
    tgt("pure plan 2,000 × 200 ≤ 150 ms", pp, 0.15, ms(pp) if pp else "")
    tgt(f"fleetpin RSS < 40 MB ({big}-host plan)", rss_p, 40, f"{rss_p:.1f} MB")
    p("")
    p("### Machine\n")
    for k, v in info.items():
        p(f"- {k}: {v}")
    return "\n".join(out) + "\n"


def machine_info():
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, timeout=60).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    _, v = Api(host(1, "UNIX")).req("GET", "/version")
    ans = ""
    if PLAYBOOK:
        ans = cmd(PLAYBOOK, "--version").splitlines()[0]
        coll = cmd(os.path.join(os.path.dirname(PLAYBOOK), "ansible-galaxy"), "collection", "list", "community.docker")
        m = re.search(r"community\.docker\s+(\S+)", coll)
        ans += f", community.docker {m.group(1) if m else '?'}"
        pipv = cmd(os.path.join(os.path.dirname(PLAYBOOK), "pip"), "show", "ansible")
        m = re.search(r"^Version: (\S+)", pipv, re.M)
        ans += f" (pip ansible {m.group(1) if m else '?'})"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "fleetpin": cmd(FLEETPIN, "--version") + f" (git {cmd('git', '-C', REPO, 'rev-parse', '--short=12', 'HEAD')}"
                    + (", dirty" if cmd("git", "-C", REPO, "status", "--porcelain", "--", "src") else "") + "), release build",
        "nproc": cmd("nproc"),
        "RAM": f"{mem:.1f} GiB",
        "kernel": platform.release(),
        "OS": cmd("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "Docker Engine": f"{v.get('Version')} (API {v.get('ApiVersion')}), {NHOSTS} dockerds in network namespaces (fleet.sh), storage {E.get('FLEET_STORAGE_DRIVER', '?')}",
        "docker CLI": cmd(DOCKER, "--version"),
        "docker-compose": cmd(COMPOSE, "version", "--short"),
        "ansible": ans or "not run",
        "python (driver)": sys.version.split()[0],
        "load average at start": load,
        "other fleets / dockerds": other_load(),
    }


def other_load():
    """Whether another fleet or dockerd shares the machine (it would skew every number)."""
    mine = {str(E[f"FLEET_H{k}_PID"]) for k in range(1, NHOSTS + 1)}
    others = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or p in mine:
            continue
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().strip() == "dockerd":
                    others.append(p)
        except OSError:
            pass
    return f"{len(others)} other dockerd process(es) running" if others else "none"


def warm_up():
    """Untimed: fleetpin imports its lock image on each host at its first apply, and every tool's
    files come into the page cache."""
    d = os.path.join(WORK, "warm")
    os.makedirs(d, exist_ok=True)
    m = write(os.path.join(d, "warm.yaml"), "\n".join(
        ["platform: warm", "services:", f"  w: {{image: {IMAGE}, healthcheck: {{test: [NONE]}}}}",
         "environments:", "  w:", "    hosts:"]
        + [f'      h{k}: {{endpoint: "{host(k, "TCP")}", insecure: true}}' for k in range(1, NHOSTS + 1)]
        + ["    versions: {w: \"1.0.0\"}", ""]))
    log("warm-up: one throw-away service on every host (untimed)")
    fp(m, "apply", "w", "--yes")
    for k in range(1, NHOSTS + 1):
        cleanup(k, ["warm-", "fleetpin-lock-warm-"], networks=["warm-w-default"])
    run([COMPOSE, "version"], what="docker-compose")
    run([DOCKER, "--version"], what="docker")
    if PLAYBOOK:
        run([PLAYBOOK, "--version"], what="ansible-playbook")


def main():
    os.makedirs(os.path.join(WORK, "docker-config"), exist_ok=True)
    info = machine_info()
    log(f"work dir {WORK}; results in {OUT}")
    if info["other fleets / dockerds"] != "none":
        log(f"WARNING: {info['other fleets / dockerds']}: the numbers will be noisy")
    # Every image the rows use is on every host before anything is timed.
    log("pulling the test images on every host (untimed)")
    def pull(k, t):
        _, raw = Api(host(k, "UNIX"), timeout=300).req("POST", "/images/create", query={"fromImage": IMAGE, "tag": t})
        if b'"error' in raw:
            raise RuntimeError(f"pull of {IMAGE}:{t} on h{k}: {raw[-300:]!r}")
    parallel([(lambda k=k, t=t: pull(k, t)) for k in range(1, NHOSTS + 1) for t in (OLD, NEW)])
    for ref in ([f"{GRACEFUL}:{OLD}", f"{GRACEFUL}:{NEW}", f"{CADDY}:{CADDY_TAG}"] if GRACEFUL and CADDY else []):
        img, tag = ref.rsplit(":", 1)
        _, raw = Api(host(H1, "UNIX"), timeout=300).req("POST", "/images/create", query={"fromImage": img, "tag": tag})
        if b'"error' in raw:
            raise RuntimeError(f"pull of {ref} on h1: {raw[-300:]!r}")
    global NOISE
    NOISE = Noise()
    NOISE.start()
    warm_up()
    t0 = T()
    # BENCH_ONLY=proxy,single,multi,cargo runs some sections only (while developing a row).
    only = [x for x in E.get("BENCH_ONLY", "").split(",") if x]
    for key, name, fn in (("single", "single host", single_host), ("proxy", "through a proxy", through_proxy),
                          ("multi", "several hosts + growth", multi_and_growth), ("cargo", "cargo bench", cargo_bench),
                          ("sizes", "converge 1 and 12 (only with BENCH_ONLY=sizes)", sizes_only)):
        if key == "sizes" and "sizes" not in only:
            continue
        if not only or key in only:
            section(name)
            fn()
    NOISE.scan()
    NOISE.halt.set()
    info["CPU used by other processes during the run"] = NOISE.summary()
    info["load average at end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    info["other fleets / dockerds at end"] = other_load()
    info["driver run time"] = f"{(T() - t0) / 60:.1f} min"
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"info": info, "results": R}, f, indent=1, default=str)
    text = report(info)
    write(os.path.join(OUT, "results.md"), text)
    print(text)
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
