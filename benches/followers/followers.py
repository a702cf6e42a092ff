#!/usr/bin/env python3
"""The serving side's cost of 1,000 agents following one reference: an OCI registry against
`git daemon` (issue 24), measured side by side in one run, on loopback only.

Why: an agent follows its reference either with `git fetch` of one branch every interval, or
(`oci://REGISTRY/PATH:TAG`) with one `HEAD /v2/<path>/manifests/<tag>` whose
Docker-Content-Digest it compares, fetching the manifest and its two blobs only when the digest
moved. This says what each costs the server that 1,000 such followers poll.

What it does:
  * server A: Debian's `docker-registry` (distribution 2.8; installed with apt-get when missing),
    Debian's default config less auth: filesystem storage in a temporary directory, in-memory
    blob-descriptor cache, plain HTTP on 127.0.0.1, default logging (info + access log, to a file).
    One OCI image manifest (a JSON config blob, one ~32 KB gzip layer) is pushed under a tag with
    plain HTTP requests (POST + PUT blob uploads, PUT manifest).
  * server B: `git daemon --export-all --reuseaddr` on 127.0.0.1 serving a bare repository of
    500 commits, each changing one line of a 200-line YAML file.
  * each server runs in a cgroup of its own (cgroup v2 when /sys/fs/cgroup is unified, else the
    v1 cpuacct hierarchy, else the v2 hierarchy mounted at /sys/fs/cgroup/unified); git daemon's
    upload-pack children stay in it. The simulated followers run in a third cgroup, in a driver
    process of their own, so the client side's cost (33 git processes a second) is counted
    apart and never in the server's figure.
  * followers: FOLLOWERS (1,000) coroutines, each polling every INTERVAL (30 s) from a random
    phase (~33 polls/s). Registry followers send the HEAD request like an agent's HTTP client:
    `reuse` keeps one keep-alive connection per follower (what an agent with one client does,
    idle 30 s < the usual 90 s pool timeout), `fresh` opens a connection per poll (what a new
    process per poll would). Git followers run the agent's exact command
    `git --git-dir CACHE fetch --quiet --no-tags --no-write-fetch-head -- URL
    +refs/heads/main:refs/fleetpin/followed`, each into a bare cache of its own, up to date.
  * per mode: WARMUP seconds (>= INTERVAL, so every follower has polled and connected once), then
    a WINDOW during which server CPU (cgroup usage), client CPU, the whole machine's busy CPU
    (/proc/stat), the achieved poll rate and every poll's latency are taken. Then, for `reuse`
    and `git`, the reference moves once (a new image under the tag / a new commit on main) and a
    second window of one interval + MOVE_SLACK seconds is taken, in which every follower must see
    the move once: for the registry HEAD then GET manifest, GET config, GET layer; for git a fetch
    of one new commit.

Rerun:  python3 benches/followers/followers.py            (as root: cgroups, apt-get)
Knobs (environment): FOLLOWERS=1000 INTERVAL=30 WARMUP=30 WINDOW=120 MOVE_SLACK=8
  MODES=reuse,fresh,git  ROUNDS=1  REG_PORT=18500  GIT_PORT=18501  OUT=target/bench-followers
  SEED=24 IDLE=20 (seconds of each server with no follower, first)
Prints a markdown table and writes it, with the raw figures (results.json) and both servers'
logs, to OUT. Takes ~9 minutes a round (+1 to build 1,000 caches).
Loopback only; every process it starts is ended by pid and its cgroups removed at exit.
"""

import asyncio
import gzip
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

FOLLOWERS = int(os.environ.get("FOLLOWERS", "1000"))
INTERVAL = float(os.environ.get("INTERVAL", "30"))
WARMUP = float(os.environ.get("WARMUP", str(INTERVAL)))
WINDOW = float(os.environ.get("WINDOW", "120"))
MOVE_SLACK = float(os.environ.get("MOVE_SLACK", "8"))
MODES = [m for m in os.environ.get("MODES", "reuse,fresh,git").split(",") if m]
ROUNDS = int(os.environ.get("ROUNDS", "1"))
REG_PORT = int(os.environ.get("REG_PORT", "18500"))
GIT_PORT = int(os.environ.get("GIT_PORT", "18501"))
OUT = os.environ.get("OUT", os.path.join(ROOT, "target", "bench-followers"))
SEED = int(os.environ.get("SEED", "24"))
IDLE = float(os.environ.get("IDLE", "20"))

REPO_PATH = "fleetpin/reference"  # the registry repository
TAG = "prod"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
FOLLOWED_REF = "refs/fleetpin/followed"


def say(msg):
    print(f"[followers] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cgroups


class Cgroup:
    """A child cgroup whose CPU usage (µs) can be read; v2 or the v1 cpuacct controller."""

    def __init__(self, name):
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            base, self.kind = "/sys/fs/cgroup", "v2"
        elif os.path.exists("/sys/fs/cgroup/cpuacct/cpuacct.usage"):
            base, self.kind = "/sys/fs/cgroup/cpuacct", "v1-cpuacct"
        elif os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
            base, self.kind = "/sys/fs/cgroup/unified", "v2-unified"
        else:
            raise SystemExit("no cgroup hierarchy with CPU accounting found")
        self.path = os.path.join(base, name)
        os.makedirs(self.path, exist_ok=True)

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def enter(self):
        """For Popen(preexec_fn=...): the child joins before it execs, so whatever it forks
        (`git daemon` starts git-daemon at once) is counted too."""
        return lambda: self.add(os.getpid())

    def usage_usec(self):
        if self.kind == "v1-cpuacct":
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read()) / 1000.0
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return float(v)
        raise RuntimeError("no usage_usec in cpu.stat")

    def pids(self):
        with open(os.path.join(self.path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]

    def remove(self):
        # Ends what is left in it (all started by this run), then removes it.
        for _ in range(50):
            try:
                left = self.pids()
            except FileNotFoundError:
                return
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        try:
            os.rmdir(self.path)
        except OSError as e:
            say(f"could not remove {self.path}: {e}")


def machine_busy_usec():
    """All CPUs' non-idle time from /proc/stat, in µs."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) * 1e6 / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the registry


def http(method, url, body=None, headers=None):
    """One plain-HTTP request with its own connection: (status, headers, body)."""
    import http.client

    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    path = u.path + ("?" + u.query if u.query else "")
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.headers, data


def push_blob(base, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    st, h, _ = http("HEAD", f"{base}/v2/{REPO_PATH}/blobs/{digest}")
    if st == 200:
        return digest
    st, h, body = http("POST", f"{base}/v2/{REPO_PATH}/blobs/uploads/")
    if st != 202:
        raise SystemExit(f"blob upload start: {st} {body[:200]!r}")
    loc = urllib.parse.urljoin(base + "/", h["Location"])
    sep = "&" if "?" in loc else "?"
    st, h, body = http(
        "PUT",
        f"{loc}{sep}digest={urllib.parse.quote(digest)}",
        body=data,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
    )
    if st != 201:
        raise SystemExit(f"blob upload: {st} {body[:200]!r}")
    return digest


def reference_layer(version):
    """A small gzip layer: the manifest YAML plus ~32 KB of incompressible filler (the size of a
    reference with a few files), different for each version."""
    rnd = random.Random(version)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in (
            ("manifest.yaml", yaml_text(version).encode()),
            ("filler.bin", bytes(rnd.getrandbits(8) for _ in range(32 * 1024))),
        ):
            ti = tarfile.TarInfo(name)
            ti.size = len(content)
            ti.mtime = 0
            tar.addfile(ti, io.BytesIO(content))
    return gzip.compress(buf.getvalue(), mtime=0)


def push_image(base, version):
    """Pushes one OCI image (config + one layer) under TAG; returns (digest, total bytes)."""
    layer = reference_layer(version)
    tar_digest = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"org.fleetpin.reference.version": str(version)}},
            "rootfs": {"type": "layers", "diff_ids": [tar_digest]},
        }
    ).encode()
    cd, ld = push_blob(base, config), push_blob(base, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": ld, "size": len(layer)}],
        }
    ).encode()
    st, h, body = http(
        "PUT",
        f"{base}/v2/{REPO_PATH}/manifests/{TAG}",
        body=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    if st != 201:
        raise SystemExit(f"manifest put: {st} {body[:300]!r}")
    return h["Docker-Content-Digest"], len(manifest) + len(config) + len(layer)


def start_registry(work, cg):
    if not shutil.which("docker-registry"):
        say("docker-registry missing: apt-get install docker-registry")
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "docker-registry"],
            check=True,
            stdout=subprocess.DEVNULL,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        )
    store = os.path.join(work, "registry")
    os.makedirs(store)
    cfg = os.path.join(work, "registry.yml")
    # Debian's /etc/docker/registry/config.yml less auth, on loopback, storage in `store`.
    with open(cfg, "w") as f:
        f.write(
            f"""version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {store}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{REG_PORT}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""
        )
    log = open(os.path.join(work, "registry.log"), "w")
    p = subprocess.Popen(
        ["docker-registry", "serve", cfg], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        preexec_fn=cg.enter(),
    )
    wait_port(REG_PORT, p)
    return p


def wait_port(port, proc):
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


# ---------------------------------------------------------------- git


def yaml_text(version):
    """A 200-line manifest; version n differs from n-1 in one line."""
    lines = ["environments:", "  prod:", "    hosts: [h1, h2, h3]", "services:"]
    i = 0
    while len(lines) < 200:
        lines.append(f"  svc{i:03d}:")
        lines.append(f"    image: registry.example/svc{i:03d}:1.{(version + i) // 49}.{i}")
        i += 1
    lines = lines[:200]
    # the one line that moves with each version
    lines[5] = f"    image: registry.example/svc000:1.{version}.0"
    return "\n".join(lines) + "\n"


def git(*args, cwd=None, input=None, env=None):
    return subprocess.run(
        ["git", *args], cwd=cwd, input=input, check=True, capture_output=True, env=env
    ).stdout


def build_repo(work, commits=500):
    """A bare repository of `commits` commits on main, through fast-import."""
    bare = os.path.join(work, "git", "reference.git")
    git("init", "--quiet", "--bare", "--initial-branch=main", bare)
    out = io.StringIO()
    t0 = 1_780_000_000
    for n in range(1, commits + 1):
        data = yaml_text(n).encode()
        msg = f"prod: svc000 to 1.{n}.0\n".encode()
        out.write(f"commit refs/heads/main\nmark :{n}\n")
        out.write(f"committer Bench <bench@example.org> {t0 + n * 600} +0000\n")
        out.write(f"data {len(msg)}\n{msg.decode()}\n")
        if n > 1:
            out.write(f"from :{n - 1}\n")
        out.write(f"M 100644 inline manifest.yaml\ndata {len(data)}\n{data.decode()}\n")
    git("--git-dir", bare, "fast-import", "--quiet", input=out.getvalue().encode())
    git("--git-dir", bare, "gc", "--quiet", "--aggressive")
    return bare, commits


def add_commit(bare, n):
    """One more commit on main of the served repository, changing one line."""
    data = yaml_text(n).encode()
    blob = git("--git-dir", bare, "hash-object", "-w", "--stdin", input=data).decode().strip()
    tree = (
        git("--git-dir", bare, "mktree", input=f"100644 blob {blob}\tmanifest.yaml\n".encode())
        .decode()
        .strip()
    )
    parent = git("--git-dir", bare, "rev-parse", "refs/heads/main").decode().strip()
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.org",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.org",
    )
    commit = (
        git("--git-dir", bare, "commit-tree", tree, "-p", parent, "-m", f"prod: svc000 to 1.{n}.0",
            env=env)
        .decode()
        .strip()
    )
    git("--git-dir", bare, "update-ref", "refs/heads/main", commit, parent)
    return commit


def start_git_daemon(work, cg):
    log = open(os.path.join(work, "git-daemon.log"), "w")
    p = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--reuseaddr",
            f"--base-path={os.path.join(work, 'git')}",
            "--listen=127.0.0.1",
            f"--port={GIT_PORT}",
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        preexec_fn=cg.enter(),
    )
    wait_port(GIT_PORT, p)
    return p


def git_url():
    return f"git://127.0.0.1:{GIT_PORT}/reference.git"


def fetch_args(cache):
    return [
        "git", "--git-dir", cache, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
        "--", git_url(), f"+refs/heads/main:{FOLLOWED_REF}",
    ]


def make_caches(work, n):
    """One bare cache per follower, up to date (the agent's cache after its last fetch): one
    made by a real fetch, the others copies of it."""
    root = os.path.join(work, "caches")
    os.makedirs(root)
    first = os.path.join(root, "0")
    git("init", "--quiet", "--bare", first)
    subprocess.run(fetch_args(first), check=True, env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
    for i in range(1, n):
        shutil.copytree(first, os.path.join(root, str(i)), symlinks=True)
    return root


def read_ref(cache):
    try:
        with open(os.path.join(cache, FOLLOWED_REF)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return git("--git-dir", cache, "rev-parse", FOLLOWED_REF).decode().strip()


# ---------------------------------------------------------------- the driver (its own process)


class Conn:
    """A minimal HTTP/1.1 client connection over asyncio streams (HEAD and GET)."""

    def __init__(self, port):
        self.port, self.r, self.w = port, None, None

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self):
        if self.w is not None:
            self.w.close()
            self.r = self.w = None

    async def request(self, method, path, accept, keep):
        if self.w is None:
            await self.open()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"User-Agent: fleetpin-bench\r\nAccept: {accept}\r\n"
            + ("" if keep else "Connection: close\r\n")
            + "\r\n"
        )
        self.w.write(head.encode())
        await self.w.drain()
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        body = b""
        if method != "HEAD":
            if "content-length" not in hdrs:
                raise RuntimeError(f"no Content-Length in the answer to {path}")
            body = await self.r.readexactly(int(hdrs["content-length"]))
        if not keep or hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, body


async def registry_follower(i, st, phase, mode):
    keep = mode == "reuse"
    conn = Conn(REG_PORT)
    known = st["digest0"]
    base = f"/v2/{REPO_PATH}"
    k = 0
    while True:
        due = st["t0"] + phase + k * INTERVAL
        k += 1
        if due >= st["end"]:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if due >= st["end"]:  # the end was moved to one interval after the move
            break
        t = time.monotonic()
        kind, ok = "poll", True
        try:
            for attempt in (0, 1):
                try:
                    s, h, _ = await conn.request("HEAD", f"{base}/manifests/{TAG}", OCI_MANIFEST,
                                                 keep)
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    # the server closed an idle keep-alive connection: what a client does
                    conn.close()
                    st["reconnects"] += 1
                    if attempt:
                        raise
            digest = h.get("docker-content-digest")
            ok = s == 200 and bool(digest)
            if ok and digest != known:
                kind = "download"
                s, h, m = await conn.request("GET", f"{base}/manifests/{digest}", OCI_MANIFEST,
                                             keep)
                man = json.loads(m)
                for d in [man["config"]] + man["layers"]:
                    s2, _, blob = await conn.request("GET", f"{base}/blobs/{d['digest']}", "*/*",
                                                     keep)
                    if s2 != 200 or "sha256:" + hashlib.sha256(blob).hexdigest() != d["digest"]:
                        raise RuntimeError(f"blob {d['digest']}: {s2}")
                known = digest
        except Exception as e:  # noqa: BLE001 - a failed poll is counted, not fatal
            ok = False
            st["errors"].append(repr(e)[:200])
            conn.close()
        st["polls"].append((t, time.monotonic() - t, ok, kind, i))
    conn.close()


async def git_follower(i, st, phase):
    cache = os.path.join(st["caches"], str(i))
    known = read_ref(cache)
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    k = 0
    while True:
        due = st["t0"] + phase + k * INTERVAL
        k += 1
        if due >= st["end"]:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if due >= st["end"]:  # the end was moved to one interval after the move
            break
        t = time.monotonic()
        kind, ok = "poll", True
        try:
            p = await asyncio.create_subprocess_exec(
                *fetch_args(cache), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
            )
            _, err = await p.communicate()
            ok = p.returncode == 0
            if not ok:
                st["errors"].append(err.decode(errors="replace")[-200:])
            else:
                now = read_ref(cache)
                if now != known:
                    kind, known = "download", now
        except Exception as e:  # noqa: BLE001
            ok = False
            st["errors"].append(repr(e)[:200])
        st["polls"].append((t, time.monotonic() - t, ok, kind, i))


def summarize(polls, a, b):
    sel = [p for p in polls if a <= p[0] < b]
    lat = sorted(p[1] for p in sel)
    dl = sorted(p[1] for p in sel if p[3] == "download")

    def pct(q, xs=lat):
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else None

    return {
        "polls": len(sel),
        "failed": sum(1 for p in sel if not p[2]),
        "downloads": sum(1 for p in sel if p[3] == "download"),
        "rate": len(sel) / (b - a),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": lat[-1] * 1000 if lat else None,
        "download_p50_ms": pct(0.50, dl),
        "download_p99_ms": pct(0.99, dl),
    }


def driver(args):
    """Runs the followers of one mode; prints one JSON result. Started by main() in the
    clients' cgroup."""
    mode, server_cg, client_cg, extra = args[0], args[1], args[2], json.loads(args[3])
    try:
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    except (AttributeError, OSError):
        pass
    srv, cli = Cgroup(server_cg), Cgroup(client_cg)
    move = extra.get("move", False)
    rng = random.Random(SEED)
    phases = [rng.uniform(0, INTERVAL) for _ in range(FOLLOWERS)]
    t0 = time.monotonic() + 1.0
    w0, w1 = t0 + WARMUP, t0 + WARMUP + WINDOW
    m0 = w1 + 0.5
    st = {"t0": t0, "end": (m0 + INTERVAL + 5) if move else w1, "polls": [], "errors": [],
          "reconnects": 0, "digest0": extra.get("digest0"), "caches": extra.get("caches")}
    marks = {}

    def mark(name):
        marks[name] = (time.monotonic(), srv.usage_usec(), cli.usage_usec(), machine_busy_usec())

    async def clock():
        await asyncio.sleep(w0 - time.monotonic())
        mark("w0")
        await asyncio.sleep(w1 - time.monotonic())
        mark("w1")
        if move:
            await asyncio.sleep(max(0.0, m0 - time.monotonic()))
            # The reference moves (a push: not counted), then one interval in which every
            # follower polls once and so sees it once; the followers stop after it.
            # The window starts before the push, so that a poll which saw the move while it was
            # being pushed is in it: the registry's push (2 blob uploads, 1 manifest) is counted.
            mark("m0")
            loop = asyncio.get_running_loop()
            st["moved_to"] = await loop.run_in_executor(None, do_move, mode, extra)
            st["end"] = time.monotonic() + INTERVAL
            await asyncio.sleep(max(0.0, st["end"] + MOVE_SLACK - time.monotonic()))
            mark("m1")

    async def run():
        tasks = [clock()]
        for i in range(FOLLOWERS):
            if mode == "git":
                tasks.append(git_follower(i, st, phases[i]))
            else:
                tasks.append(registry_follower(i, st, phases[i], mode))
        await asyncio.gather(*tasks)

    asyncio.run(run())

    def span(a, b, polls_from, polls_to):
        (ta, sa, ca, ma), (tb, sb, cb, mb) = marks[a], marks[b]
        d = tb - ta
        s = summarize(st["polls"], polls_from, polls_to)
        srv_s, cli_s, mach_s = (sb - sa) / 1e6, (cb - ca) / 1e6, (mb - ma) / 1e6
        s.update(
            seconds=d,
            server_cpu_s=srv_s,
            client_cpu_s=cli_s,
            other_cpu_s=mach_s - srv_s - cli_s,
            server_cpu_s_per_min=srv_s / d * 60,
            server_core_pct=srv_s / d * 100,
            server_cpu_ms_per_poll=srv_s * 1000 / s["polls"] if s["polls"] else None,
            client_cpu_ms_per_poll=cli_s * 1000 / s["polls"] if s["polls"] else None,
        )
        return s

    res = {"mode": mode, "steady": span("w0", "w1", w0, w1), "reconnects": st["reconnects"],
           "errors": st["errors"][:5], "error_count": len(st["errors"])}
    if move:
        # polls from the move on, through one interval: each follower's one download is there
        res["move"] = span("m0", "m1", marks["m0"][0], st["end"])
        res["moved_to"] = st.get("moved_to")
        # a poll started just before the push may have got it already (git: the ref list is
        # read ~50 ms into a fetch): the figure is followers that got it at all
        res["move"]["followers_got_it"] = len({p[4] for p in st["polls"] if p[3] == "download"})
    print(json.dumps(res), flush=True)


def do_move(mode, extra):
    if mode == "git":
        return add_commit(extra["bare"], extra["commits"] + 1)
    digest, size = push_image(f"http://127.0.0.1:{REG_PORT}", extra["version"] + 1)
    return {"digest": digest, "bytes": size}


# ---------------------------------------------------------------- main


def run_mode(mode, work, cgs, state):
    server = cgs["registry"] if mode in ("reuse", "fresh") else cgs["git"]
    extra = {}
    if mode == "git":
        # every git round starts from caches at the served tip (a move adds one commit)
        extra = {"caches": state["caches"], "bare": state["bare"], "commits": state["commits"],
                 "move": True}
    else:
        extra = {"digest0": state["digest"], "version": state["version"],
                 "move": mode == "reuse"}
    p = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--drive", mode,
         os.path.basename(server.path), os.path.basename(cgs["clients"].path), json.dumps(extra)],
        stdout=subprocess.PIPE, text=True, preexec_fn=cgs["clients"].enter(),
    )
    out, _ = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"driver for {mode} failed ({p.returncode})")
    res = json.loads(out.strip().splitlines()[-1])
    if mode == "git" and res.get("moved_to"):
        state["commits"] += 1
    elif mode == "reuse" and res.get("moved_to"):
        state["version"] += 1
        state["digest"] = res["moved_to"]["digest"]
        state["image_bytes"] = res["moved_to"]["bytes"]
    return res


def fmt(x, nd=1):
    return "–" if x is None else f"{x:,.{nd}f}"


def table(results, meta):
    name = {
        "reuse": "registry, HEAD manifest, one keep-alive connection per follower",
        "fresh": "registry, HEAD manifest, a new connection per poll",
        "git": "git daemon, `git fetch` of one branch (up to date)",
    }
    movename = {
        "reuse": "registry, tag moved: HEAD + GET manifest + 2 blobs",
        "git": "git daemon, one new commit fetched",
    }
    rows = [
        "| what | polls/s | server CPU s/min | % of one core | server CPU per poll, ms "
        "| p50 / p99 latency, ms | client CPU per poll, ms | other processes, cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r["steady"]
        rows.append(
            f"| {name[r['mode']]} (round {r['round']}) | {fmt(s['rate'])} | "
            f"{fmt(s['server_cpu_s_per_min'], 2)} | {fmt(s['server_core_pct'], 2)} | "
            f"{fmt(s['server_cpu_ms_per_poll'], 2)} | {fmt(s['p50_ms'])} / {fmt(s['p99_ms'])} | "
            f"{fmt(s['client_cpu_ms_per_poll'], 2)} | {fmt(s['other_cpu_s'] / s['seconds'], 2)} |"
        )
    moves = [r for r in results if "move" in r]
    if moves:
        rows += [
            "",
            f"The reference moves once: the {fmt(INTERVAL, 0)} s (+{fmt(MOVE_SLACK, 0)} s) "
            "after it, in which every follower sees it once:",
            "",
            "| what | followers that got it | server CPU s in the interval | same interval "
            "without a move, s | extra server CPU per follower, ms | p50 / p99 latency of a "
            "download, ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in moves:
            m, s = r["move"], r["steady"]
            # the same interval of polls without a move (the slack after it has no polls)
            base = s["server_cpu_s"] / s["seconds"] * (m["seconds"] - MOVE_SLACK)
            extra = (m["server_cpu_s"] - base) * 1000 / max(1, m["downloads"])
            rows.append(
                f"| {movename[r['mode']]} (round {r['round']}) | {m['followers_got_it']:,} of "
                f"{FOLLOWERS:,} ({m['downloads']:,} in the interval) | {fmt(m['server_cpu_s'], 2)} | {fmt(base, 2)} | "
                f"{fmt(extra, 2)} | {fmt(m['download_p50_ms'])} / {fmt(m['download_p99_ms'])} |"
            )
    return "\n".join(rows)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--drive":
        return driver(sys.argv[2:])
    if os.geteuid() != 0:
        raise SystemExit("run as root: it makes cgroups (and may apt-get install docker-registry)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, FOLLOWERS * 4 + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < FOLLOWERS * 2 + 64:
        raise SystemExit(f"open-file limit {want} is too low for {FOLLOWERS} followers")
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fleetpin-followers-")
    tag = f"fleetpin-followers-{os.getpid()}"
    cgs, procs = {}, []
    try:
        for k in ("registry", "git", "clients"):
            cgs[k] = Cgroup(f"{tag}-{k}")
        say(f"cgroups ({cgs['git'].kind}); work dir {work}")
        reg = start_registry(work, cgs["registry"])
        procs.append(reg)
        digest, size = push_image(f"http://127.0.0.1:{REG_PORT}", 1)
        say(f"registry on 127.0.0.1:{REG_PORT}: {REPO_PATH}:{TAG} = {digest} ({size} bytes)")
        bare, commits = build_repo(work)
        gd = start_git_daemon(work, cgs["git"])
        procs.append(gd)
        say(f"git daemon on 127.0.0.1:{GIT_PORT}: {commits} commits, "
            f"{du(bare) // 1024} KiB; making {FOLLOWERS} caches")
        caches = make_caches(work, FOLLOWERS)
        state = {"digest": digest, "version": 1, "image_bytes": size, "bare": bare,
                 "commits": commits, "caches": caches}
        meta = {
            "followers": FOLLOWERS, "interval": INTERVAL, "warmup": WARMUP, "window": WINDOW,
            "cgroup": cgs["git"].kind, "cpus": os.cpu_count(),
            "registry": subprocess.run(["docker-registry", "--version"], capture_output=True,
                                       text=True).stdout.strip(),
            "git": subprocess.run(["git", "--version"], capture_output=True,
                                  text=True).stdout.strip(),
            "repo_kib": du(bare) // 1024, "cache_kib": du(os.path.join(caches, "0")) // 1024,
            "image_bytes": size,
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }
        # what each server costs with no follower at all (the registry's health check, Go's
        # runtime; git daemon's accept loop)
        u0 = {k: cgs[k].usage_usec() for k in ("registry", "git")}
        time.sleep(IDLE)
        meta["idle_cpu_s_per_min"] = {
            k: (cgs[k].usage_usec() - u0[k]) / 1e6 / IDLE * 60 for k in ("registry", "git")
        }
        say(f"idle, CPU-s/min: {meta['idle_cpu_s_per_min']}")
        results = []
        for rnd in range(1, ROUNDS + 1):
            for mode in MODES:
                say(f"round {rnd}: {mode} ({FOLLOWERS} followers, {WARMUP:.0f} s warm-up, "
                    f"{WINDOW:.0f} s window{', then a move' if mode in ('reuse', 'git') else ''})")
                r = run_mode(mode, work, cgs, state)
                r["round"] = rnd
                results.append(r)
                s = r["steady"]
                say(f"  {s['rate']:.1f} polls/s, server {s['server_cpu_s_per_min']:.2f} CPU-s/min"
                    f" ({s['server_cpu_ms_per_poll'] or 0:.2f} ms/poll), p50 {s['p50_ms']:.1f} ms"
                    f" p99 {s['p99_ms']:.1f} ms, failed {s['failed']}, client "
                    f"{s['client_cpu_s']:.1f} s, other {s['other_cpu_s']:.1f} s")
                if "move" in r:
                    m = r["move"]
                    say(f"  move: {m['downloads']} downloads, server {m['server_cpu_s']:.2f} s in "
                        f"{m['seconds']:.0f} s")
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        md = table(results, meta)
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
        with open(os.path.join(OUT, "followers.md"), "w") as f:
            f.write(md + "\n")
        print(json.dumps(meta))
        print(md)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        for cg in cgs.values():
            cg.remove()
        for log in ("registry.log", "git-daemon.log"):
            if os.path.exists(os.path.join(work, log)):
                shutil.copy(os.path.join(work, log), os.path.join(OUT, log))
        shutil.rmtree(work, ignore_errors=True)


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_size
            except OSError:
                pass
    return total


if __name__ == "__main__":
    main()
