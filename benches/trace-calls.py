#!/usr/bin/env python3
"""The Engine API calls of one fleetpin run, with how long each took and how long fleetpin itself
spent before each: the tool behind the explanations in docs/benchmarks.md.

    strace -f -tt -s 300 -o run.strace \
        -e trace=write,writev,sendto,sendmsg,read,recvfrom,recvmsg \
        fleetpin -q --format json apply ENV --yes
    benches/trace-calls.py run.strace

It pairs each HTTP request written to an engine socket (unix or tcp) with the status line read
back on the same fd. strace slows the process down a little; compare the calls with each other,
and the totals with an untraced run.
"""

import re
import sys


def ts(s):
    h, m, rest = s.split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


def main(path):
    line_re = re.compile(r"(?:\[pid\s+(\d+)\] |(\d+) +)?(\d\d:\d\d:\d\d\.\d+) (\w+)\((\d+)?,?\s*(.*)")
    pending, calls = {}, []
    start = end = None
    for line in open(path, errors="replace"):
        m = line_re.match(line)
        if not m:
            continue
        t, call, fd, rest = ts(m.group(3)), m.group(4), m.group(5), m.group(6)
        start = t if start is None else start
        end = t
        if call in ("write", "writev", "sendto", "sendmsg"):
            r = re.search(r'"((?:GET|POST|DELETE|PUT|HEAD) \S+) HTTP/1\.1', rest)
            if r:
                pending[fd] = (t, r.group(1))
        elif call in ("read", "recvfrom", "recvmsg") and '"HTTP/1.1 ' in rest and fd in pending:
            t0, req = pending.pop(fd)
            calls.append((t0, t, req, re.search(r'"HTTP/1\.1 (\d+)', rest).group(1)))
    calls.sort()
    prev, on_engine = start, 0.0
    print(f"{'at':>9}  {'fleetpin before':>15}  {'call':>9}  request")
    for t0, t1, req, code in calls:
        req = re.sub(r"[0-9a-f]{64}", "<id>", req)
        req = re.sub(r"\?.*", lambda q: q.group(0)[:50], req)
        print(f"{(t0 - start) * 1000:7.1f}ms  {(t0 - prev) * 1000:13.1f}ms  {(t1 - t0) * 1000:7.1f}ms  {code} {req}")
        prev = t1
        on_engine += t1 - t0
    total = end - start
    print(f"total {total * 1000:.1f} ms: {len(calls)} requests, {on_engine * 1000:.1f} ms waiting on the engine, "
          f"{(total - on_engine) * 1000:.1f} ms elsewhere (process start, planning, health-poll sleeps, exit)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
