#!/usr/bin/env python3
"""The floor: the Engine API calls a fleetpin command cannot do without, made against every host
at once over keep-alive connections, and nothing else. Its wall time is what `fleetpin plan` or
`fleetpin audit` would take if the client cost nothing (benches/sim/README.md, section "Scale").

  plan   per host: GET /v1.41/containers/json?all=1&filters={"name":["^/P-E-"]} (the list plan
         diffs against). --with-version adds the GET /version that API negotiation costs, first,
         on the same connection (a client that pins API 1.41, or negotiates lazily, skips it).
  audit  per host: the same list, then GET /containers/{id}/json of each running container and
         GET /images/{id}/json of each distinct image. With --conns-per-host 1 (the default) they
         go one after another on the host's one connection; with K, K at a time over K keep-alive
         connections (opened after the list, never more than requests); with `auto`, K is the
         most that fits the fd limit (RLIMIT_NOFILE) across all hosts: the best floor a client
         under the same `ulimit -n` as fleetpin can reach.

Prints one line (or JSON with --json): wall seconds, requests, connections. Exits 1 on any error
(connect failure, non-200 answer, short read).

    floor.py audit --hosts 1000 --base 20000 --conns-per-host 4
"""

import argparse
import asyncio
import json
import resource
import sys
import time
import urllib.parse


class HostError(Exception):
    pass


async def get(conn, path):
    """One GET on a keep-alive connection: the decoded JSON body (200 only)."""
    reader, writer = conn
    writer.write(f"GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: floor\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
    if "content-length" not in headers:
        raise HostError(f"GET {path}: no Content-Length")
    data = await reader.readexactly(int(headers["content-length"]))
    if status != 200:
        raise HostError(f"GET {path}: {status} {data[:200]!r}")
    if headers.get("connection", "").lower() == "close":
        raise HostError(f"GET {path}: the engine closed the connection")
    return json.loads(data)


async def host(a, port, counts):
    conns = []
    try:
        conns.append(await asyncio.open_connection(a.bind, port))
        counts["connections"] += 1
        first = conns[0]
        if a.with_version:
            await get(first, "/version")
            counts["requests"] += 1
        filters = urllib.parse.quote(json.dumps({"name": [f"^/{a.platform}-{a.env}-"]}))
        listed = await get(first, f"/v1.41/containers/json?all=1&filters={filters}")
        counts["requests"] += 1
        if a.command == "plan":
            return
        running = [c for c in listed if c["State"] == "running"]
        paths = [f"/v1.41/containers/{c['Id']}/json" for c in running]
        paths += [f"/v1.41/images/{i}/json" for i in sorted({c["ImageID"] for c in running})]

        async def worker(conn):
            if conn is None:  # the extra connections open concurrently, each for its worker
                conn = await asyncio.open_connection(a.bind, port)
                conns.append(conn)
                counts["connections"] += 1
            while paths:
                await get(conn, paths.pop(0))
                counts["requests"] += 1

        await asyncio.gather(worker(first), *(worker(None) for _ in range(min(a.k, len(paths)) - 1)))
    except (OSError, asyncio.IncompleteReadError, ValueError, HostError) as e:
        counts["errors"] += 1
        if counts["errors"] <= 3:
            print(f"floor: 127.0.0.1:{port}: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        for _, w in conns:
            w.close()


async def main(a):
    counts = {"requests": 0, "connections": 0, "errors": 0}
    if a.command == "plan":
        a.k = 1
    elif a.conns_per_host == "auto":  # every fd but a few for stdio and the event loop
        a.k = max(1, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 32) // a.hosts)
    else:
        a.k = int(a.conns_per_host)
    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(host(a, a.base + i, counts) for i in range(a.hosts)))
    wall = time.perf_counter() - t0
    result = {"command": a.command, "hosts": a.hosts, "with_version": a.with_version,
              "conns_per_host": a.k,
              "wall_seconds": round(wall, 4), "client_cpu_seconds": round(time.process_time() - cpu0, 3),
              **counts}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"floor {a.command}: {a.hosts} hosts, {result['conns_per_host']} conn/host"
              f"{', with /version' if a.with_version else ''}: {wall:.3f} s, "
              f"{counts['requests']} requests, {counts['connections']} connections, {counts['errors']} errors, "
              f"client CPU {result['client_cpu_seconds']:.2f} s")
    return 1 if counts["errors"] else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["plan", "audit"])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--base", type=int, default=20000)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--platform", default="sim")
    p.add_argument("--env", default="prod")
    p.add_argument("--with-version", action="store_true", help="one GET /version per host first")
    p.add_argument("--conns-per-host", default="1", help="audit: keep-alive connections per host, or auto")
    p.add_argument("--json", action="store_true")
    sys.exit(asyncio.run(main(p.parse_args())))
