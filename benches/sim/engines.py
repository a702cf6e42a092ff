#!/usr/bin/env python3
"""N fake Docker engines in one process, so that `fleetpin plan` and `fleetpin audit` can be
measured against 1,000 hosts on one machine (benches/sim/README.md, section "Scale").

Engine i listens on 127.0.0.1:BASE+i and answers, after an injected latency, the Engine API calls
those commands make (API 1.41, as a Docker 20.10.24 would): /_ping, /version, /info,
/containers/json (honouring `all` and the `name` regex filter), /containers/{id|name}/json and
/images/{id|ref}/json, with or without a /vX.Y prefix (bollard 0.21 sends none); anything else is
a 404 with a JSON message. Each engine runs S healthy containers {P}-{E}-svc01.. with the labels
fleetpin writes; their io.fleetpin.spec-hash comes from --spec-hashes (written by manifest.py), so
that plan finds them unchanged. HTTP/1.1 keep-alive and HTTP/1.0, one request at a time per
connection (pipelined requests are answered in order), as Go's net/http does.

Counters (requests per method and path pattern, TCP connections, peak open connections, CPU
seconds) are served as JSON by GET /_stats on the control port (?reset=1 zeroes them after
reading) and printed on SIGINT/SIGTERM.

    engines.py --hosts 1000 --base 20000 --services 20 --spec-hashes hashes.json
"""

import argparse
import asyncio
import hashlib
import json
import re
import resource
import signal
import sys
import time
import urllib.parse
from collections import Counter
from email.utils import formatdate

API = "1.41"
VERSION = {
    "Platform": {"Name": "Docker Engine - Community"},
    "Version": "20.10.24", "ApiVersion": API, "MinAPIVersion": "1.12",
    "GitCommit": "5d6db84", "GoVersion": "go1.19.7", "Os": "linux", "Arch": "amd64",
    "KernelVersion": "6.1.0-sim", "BuildTime": "2023-04-04T18:18:29.000000000+00:00",
}
PLACEHOLDER_HASH = "0" * 64
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented"}


def sha(*parts):
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


class Stats:
    def __init__(self):
        self.open = 0
        self.reset()

    def reset(self):
        self.requests = Counter()
        self.connections = 0
        self.accept_errors = 0  # accepts refused for want of file descriptors (EMFILE)
        self.peak_open = self.open
        self.cpu0 = time.process_time()

    def doc(self):
        return {"requests": dict(sorted(self.requests.items())),
                "total_requests": sum(self.requests.values()),
                "connections": self.connections, "open_connections": self.open,
                "peak_open_connections": self.peak_open, "accept_errors": self.accept_errors,
                "cpu_seconds": round(time.process_time() - self.cpu0, 3)}


STATS = Stats()


class Engine:
    """One host's containers and images, with its answers built once."""

    def __init__(self, a, index, hashes):
        port = a.base + index
        self.fail_images = index < a.fail_image_inspects
        self.started = time.time() - 3 * 3600
        self.containers, self.images, self.by_key, self.list_cache = [], {}, {}, {}
        for s in range(1, a.services + 1):
            svc = f"svc{s:02d}"
            repo = a.repo.format(svc=svc)
            versions = [(a.version, "running", "")] + [
                (f"0.{k}.0", "exited", f".prev-{k:013d}-{sha(port, svc, k)[:8]}")
                for k in range(a.retained, 0, -1)]
            for k, (version, state, suffix) in enumerate(versions):
                self.add(a, port, svc, repo, version, state, suffix, hashes, created_ago=k)

    def add(self, a, port, svc, repo, version, state, suffix, hashes, created_ago):
        name = f"{a.platform}-{a.env}-{svc}{suffix}"
        cid = sha("container", port, name)
        ref = f"{repo}:{version}"
        image_id = "sha256:" + sha("image", ref)
        created = int(self.started) - 86400 * (created_ago + 1)
        running = state == "running"
        labels = {
            "io.fleetpin.platform": a.platform, "io.fleetpin.environment": a.env,
            "io.fleetpin.service": svc, "io.fleetpin.version": version,
            "io.fleetpin.spec-hash": hashes.get(svc, PLACEHOLDER_HASH) if running else sha("old", svc, version),
            "io.fleetpin.spec-hash-scheme": "1", "io.fleetpin.commit": sha("commit", version)[:40],
            "io.fleetpin.deployed-at": rfc3339(created), "io.fleetpin.deployed-by": "sim@fleetpin",
            "io.fleetpin.restart": "unless-stopped",
        }
        net = f"{a.platform}-{a.env}-default"
        endpoint = {"Aliases": [svc, cid[:12]], "NetworkID": sha("net", port, net),
                    "EndpointID": sha("ep", cid) if running else "", "Gateway": "172.18.0.1" if running else "",
                    "IPAddress": f"172.18.0.{len(self.containers) % 250 + 2}" if running else "",
                    "IPPrefixLen": 16 if running else 0, "MacAddress": "02:42:ac:12:00:02" if running else ""}
        check = {"Test": ["CMD", "/app", "-healthcheck"], "Interval": 10_000_000_000,
                 "Timeout": 3_000_000_000, "Retries": 3}
        summary = {
            "Id": cid, "Names": ["/" + name], "Image": ref, "ImageID": image_id, "Command": "/app",
            "Created": created, "Ports": [], "Labels": labels, "State": state,
            "Status": "Up 3 hours (healthy)" if running else "Exited (0) 2 days ago",
            "HostConfig": {"NetworkMode": net}, "NetworkSettings": {"Networks": {net: endpoint}},
            "Mounts": [],
        }
        started_at = rfc3339(self.started if running else created)
        health_log = [{"Start": rfc3339(time.time() - 10), "End": rfc3339(time.time() - 9.99),
                       "ExitCode": 0, "Output": "ok\n"}]
        inspect = {
            "Id": cid, "Created": rfc3339(created), "Path": "/app", "Args": [],
            "State": {"Status": state, "Running": running, "Paused": False, "Restarting": False,
                      "OOMKilled": False, "Dead": False, "Pid": 4242 if running else 0,
                      "ExitCode": 0, "Error": "", "StartedAt": started_at,
                      "FinishedAt": "0001-01-01T00:00:00Z" if running else rfc3339(created + 60),
                      "Health": {"Status": "healthy" if running else "unhealthy",
                                 "FailingStreak": 0, "Log": health_log}},
            "Image": image_id, "Name": "/" + name, "RestartCount": 0, "Driver": "overlay2",
            "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
            "HostConfig": {"NetworkMode": net, "RestartPolicy": {
                "Name": "unless-stopped" if running else "no", "MaximumRetryCount": 0}},
            "Mounts": [],
            "Config": {"Hostname": cid[:12], "Domainname": "", "User": "", "Tty": False,
                       "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["/app"], "Healthcheck": check, "Image": ref, "WorkingDir": "",
                       "Labels": labels},
            "NetworkSettings": {"SandboxID": sha("sandbox", cid) if running else "",
                                "SandboxKey": "", "Ports": {}, "Networks": {net: endpoint}},
        }
        if image_id not in self.images:
            self.images[image_id] = body({
                "Id": image_id, "RepoTags": [ref], "RepoDigests": [f"{repo}@sha256:{sha('digest', ref)}"],
                "Created": rfc3339(created - 3600), "Author": "", "Architecture": "amd64",
                "Os": "linux", "Size": 12_345_678,
                "Config": {"Env": [], "Cmd": ["/app"], "Healthcheck": check, "Labels": {}},
                "RootFS": {"Type": "layers", "Layers": ["sha256:" + sha("layer", ref)]}})
            self.by_key[("image", ref)] = image_id
            self.by_key[("image", image_id[7:])] = image_id
        self.containers.append(summary)
        data = body(inspect)
        for key in (cid, name, "/" + name):
            self.by_key[("container", key)] = data

    def list(self, query):
        """GET /containers/json: all, filters={"name": [regex, ...]} (or the older map form)."""
        if query not in self.list_cache:
            q = urllib.parse.parse_qs(query)
            show_all = q.get("all", ["0"])[0].lower() in ("1", "true")
            try:
                filters = json.loads(q.get("filters", ["{}"])[0] or "{}")
                names = filters.pop("name", [])
                names = list(names) if isinstance(names, (list, dict)) else None
                if filters or names is None:
                    return 400, {"message": f"invalid filter '{next(iter(filters), 'name')}'"}
                regexes = [re.compile(n) for n in names]
            except (ValueError, re.error, TypeError) as e:
                return 400, {"message": f"invalid filters: {e}"}
            self.list_cache[query] = 200, body([
                c for c in self.containers
                if (show_all or c["State"] == "running")
                and all(any(r.search(n) for n in c["Names"]) for r in regexes)])
        return self.list_cache[query]

    def answer(self, method, target):
        """(status, body bytes or JSON-able, content type) for one request."""
        path, _, query = target.partition("?")
        m = re.match(r"/v(\d+)\.(\d+)(/.*)", path)
        if m:
            asked, path = (int(m[1]), int(m[2])), m[3]
            if asked > (1, 41):
                return 400, {"message": f"client version {m[1]}.{m[2]} is too new. "
                                        f"Maximum supported API version is {API}"}
            if asked < (1, 12):
                return 400, {"message": f"client version {m[1]}.{m[2]} is too old. "
                                        "Minimum supported API version is 1.12, please upgrade "
                                        "your client to a newer version"}
        if method not in ("GET", "HEAD"):
            known = path in ("/_ping", "/version", "/info", "/containers/json") or re.fullmatch(
                r"/(containers|images)/.+/json", path)
            return (405, {"message": "method not allowed"}) if known else (404, {"message": "page not found"})
        if path == "/_ping":
            return 200, b"OK"
        if path == "/version":
            return 200, VERSION_BODY
        if path == "/info":
            return 200, body({"ID": "SIM", "Containers": len(self.containers),
                              "ContainersRunning": sum(c["State"] == "running" for c in self.containers),
                              "Images": len(self.images), "ServerVersion": VERSION["Version"],
                              "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "OSType": "linux",
                              "Architecture": "x86_64", "NCPU": 4, "MemTotal": 8 << 30,
                              "SystemTime": rfc3339(time.time())})
        if path == "/containers/json":
            return self.list(query)
        m = re.fullmatch(r"/(containers|images)/(.+)/json", path)
        if m:
            what, key = m[1][:-1], urllib.parse.unquote(m[2])
            if what == "container":
                found = self.by_key.get((what, key)) or self.prefix(key)
            elif self.fail_images:
                return 500, {"message": "simulated failure (--fail-image-inspects)"}
            else:
                found = self.images.get(key) or self.images.get(self.by_key.get((what, key)))
            if found:
                return 200, found
            return 404, {"message": f"No such {what}: {key}"}
        return 404, {"message": "page not found"}

    def prefix(self, key):
        """A container by a unique prefix of its id, as the engine allows."""
        hits = [c["Id"] for c in self.containers if c["Id"].startswith(key)]
        return self.by_key[("container", hits[0])] if len(hits) == 1 else None


def body(doc):
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


VERSION_BODY = body(VERSION)


def pattern(method, path):
    """The counter key of a request: its method and path, ids replaced by {id}."""
    path = path.partition("?")[0]
    path = re.sub(r"^(/v\d+\.\d+)?/(containers|images)/.+/json$", r"\1/\2/{id}/json", path)
    return f"{method} {path}"


_date = [0, b""]


def date_header():
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, formatdate(now, usegmt=True).encode()]
    return _date[1]


class Conn(asyncio.Protocol):
    """One client connection: requests answered one at a time, each after the latency."""

    def __init__(self, engine, latency):
        self.engine, self.latency = engine, latency
        self.buf, self.busy, self.closed, self.transport = bytearray(), False, False, None

    def connection_made(self, transport):
        self.transport = transport
        STATS.connections += 1
        STATS.open += 1
        STATS.peak_open = max(STATS.peak_open, STATS.open)

    def connection_lost(self, exc):
        self.closed = True
        STATS.open -= 1

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self.next_request()

    def next_request(self):
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536:
                self.reply(431, {"message": "request header too large"}, False, False)
            return
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        head = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                return self.reply(400, {"message": "malformed header"}, False, False)
            headers[k.strip().lower()] = v.strip()
        if len(head) != 3 or not head[2].startswith("HTTP/1.") or not head[1].startswith("/"):
            return self.reply(400, {"message": "malformed request line"}, False, False)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self.reply(501, {"message": "chunked request bodies are not supported"}, False, False)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            return self.reply(400, {"message": "bad Content-Length"}, False, False)
        if len(self.buf) < end + 4 + length:
            return  # the body is still coming
        del self.buf[:end + 4 + length]
        method, target, version = head
        conn = headers.get("connection", "").lower()
        keep = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn
        STATS.requests[pattern(method, target)] += 1
        status, payload = self.engine.answer(method, target)
        self.busy = True
        asyncio.get_running_loop().call_later(
            self.latency, self.reply, status, payload, keep, method == "HEAD", version == "HTTP/1.0")

    def reply(self, status, payload, keep, head_only=False, http10=False):
        if self.closed:
            return
        data = payload if isinstance(payload, bytes) else body(payload)
        ctype = b"text/plain; charset=utf-8" if data == b"OK" else b"application/json"
        conn = b"Connection: close\r\n" if not keep else (b"Connection: keep-alive\r\n" if http10 else b"")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nApi-Version: %s\r\nContent-Type: %s\r\nDocker-Experimental: false\r\n"
            b"Ostype: linux\r\nServer: Docker/20.10.24 (linux)\r\nDate: %s\r\n%sContent-Length: %d\r\n\r\n"
            % (status, REASONS[status].encode(), API.encode(), ctype, date_header(), conn, len(data))
            + (b"" if head_only else data))
        self.busy = False
        if not keep:
            self.transport.close()
            self.closed = True
        elif self.buf:
            self.next_request()


async def control(reader, writer):
    """The control port: GET /_stats[?reset=1]."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        target = head.split(" ")[1] if " " in head else ""
        if target.partition("?")[0] == "/_stats":
            status, data = 200, body(STATS.doc())
            if "reset=1" in target:
                STATS.reset()
        else:
            status, data = 404, body({"message": "page not found"})
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % (status, REASONS[status].encode(), len(data)) + data)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def on_loop_error(loop, context):
    """EMFILE on accept: counted (asyncio retries that listener a second later), not a traceback
    per attempt; a run with accept errors measured the simulator's fd limit, not the client."""
    if context.get("message", "").startswith("socket.accept() out of system resource"):
        if not STATS.accept_errors:
            print(f"engines: accept failed: {context.get('exception')} (see accept_errors in /_stats)",
                  file=sys.stderr, flush=True)
        STATS.accept_errors += 1
    else:
        loop.default_exception_handler(context)


async def main(a):
    hashes = json.load(open(a.spec_hashes)) if a.spec_hashes else {}
    missing = [f"svc{s:02d}" for s in range(1, a.services + 1) if f"svc{s:02d}" not in hashes]
    if missing:
        print(f"engines: no spec hash for {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}: "
              "plan will say reconfigure (pass --spec-hashes from manifest.py)", file=sys.stderr)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(on_loop_error)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # every listener and connection is an fd
    latency = a.latency_ms / 1000
    servers = []
    for i in range(a.hosts):
        engine = Engine(a, i, hashes)
        servers.append(await loop.create_server(
            lambda e=engine: Conn(e, latency), a.bind, a.base + i, backlog=a.backlog, reuse_address=True))
    if a.control_port:
        servers.append(await asyncio.start_server(control, a.bind, a.control_port))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    STATS.reset()
    print(f"ready {a.hosts} engines on {a.bind}:{a.base}..{a.base + a.hosts - 1}"
          f" (control {a.bind}:{a.control_port}, latency {a.latency_ms:g} ms, fd limit {hard})",
          flush=True)
    await stop.wait()
    for s in servers:
        s.close()
    print(json.dumps(STATS.doc(), indent=1), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--base", type=int, default=20000, help="port of the first engine (default 20000)")
    p.add_argument("--bind", default="127.0.0.1", help="a loopback address")
    p.add_argument("--control-port", type=int, default=19999, help="GET /_stats here (0: none)")
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--platform", default="sim")
    p.add_argument("--env", default="prod")
    p.add_argument("--version", default="1.0.0", help="io.fleetpin.version of the running containers")
    p.add_argument("--repo", default="registry.sim.invalid:5000/sim/{svc}",
                   help="image repository; {svc} is replaced by the service name")
    p.add_argument("--retained", type=int, default=0,
                   help="exited .prev- containers per service (listed with all=true)")
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--spec-hashes", help="JSON {service: spec hash}, from manifest.py")
    p.add_argument("--backlog", type=int, default=1024)
    p.add_argument("--fail-image-inspects", type=int, default=0, metavar="K",
                   help="engines 0..K-1 answer 500 to every image inspect (a fault for tests)")
    args = p.parse_args()
    if not args.bind.startswith("127.") and args.bind != "::1":
        p.error("--bind must be a loopback address")
    if args.base + args.hosts > 32768:
        p.error("ports must stay below 32768 (the ephemeral range starts there)")
    asyncio.run(main(args))
