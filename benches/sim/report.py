#!/usr/bin/env python3
"""Turns the run files scale.sh leaves in OUT/runs into its markdown tables: wall time median
(min–max) per size and run, against the floor, with CPU, memory, fds and the engines' counters.

    report.py target/bench-sim/runs --services 20 --latency-ms 20 --fd-limit 4096 --bin BIN
"""

import argparse
import glob
import hashlib
import json
import os
import re
import statistics
import time
from collections import defaultdict

RUNS = [("fleetpin-plan", "fleetpin plan"), ("floor-plan", "floor plan"),
        ("floor-plan+version", "floor plan + GET /version"), ("fleetpin-audit", "fleetpin audit --format json"),
        ("floor-audit-k1", "floor audit, 1 conn/host"), ("floor-audit-auto", "floor audit, (fd limit − 32) / hosts conns/host")]


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def gnu_time(text, field):
    m = re.search(re.escape(field) + r": (.+)", text)
    return float(m[1]) if m else None


def run(tag, n, name, services):
    """One run's numbers from its files."""
    r = {"rc": int(read(tag + ".rc", "1").strip() or 1)}
    st = json.loads(read(tag + ".stats", "{}") or "{}")
    r.update(engines_cpu=st.get("cpu_seconds"), requests=st.get("requests", {}),
             conns=st.get("connections"), peak_open=st.get("peak_open_connections"),
             accept_errors=st.get("accept_errors", 0))
    out = read(tag + ".out")
    if name.startswith("fleetpin"):
        t0, t1 = map(float, read(tag + ".wall").split())
        tv = read(tag + ".time")
        r.update(wall=t1 - t0, rss_mb=(gnu_time(tv, "Maximum resident set size (kbytes)") or 0) / 1024,
                 cpu=(gnu_time(tv, "User time (seconds)") or 0) + (gnu_time(tv, "System time (seconds)") or 0),
                 fds=int(read(tag + ".fds", "0").strip() or 0))
        if name == "fleetpin-plan":
            r["check"] = f"{n * services} unchanged" if f"Plan: no changes on {n} hosts." in out else "NOT all unchanged"
        else:
            try:
                rows = json.loads(out)["rows"]
                ok = sum(x["status"] == "ok" for x in rows)
                r["full"] = sum(x["since"] is not None and x["digest"] is not None for x in rows)
                r["check"] = f"ok {ok}/{len(rows)}"
            except (ValueError, KeyError):
                r["check"] = "no JSON"
    else:
        f = json.loads(out) if out.strip() else {}
        r.update(wall=f.get("wall_seconds"), cpu=f.get("client_cpu_seconds"), rss_mb=None,
                 fds=f.get("connections"), check=f"{f.get('errors', '?')} errors")
    if r["rc"]:
        r["check"] = f"exit {r['rc']}; " + r["check"]
    if r["accept_errors"]:
        r["check"] += f"; ENGINES OUT OF FDS ({r['accept_errors']} accept errors)"
    return r


def spread(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main(a):
    runs = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(a.runs, "*.rc"))):
        m = re.fullmatch(r"(\d+)-(.+)-r(\d+)\.rc", os.path.basename(path))
        if m:
            n = int(m[1])
            runs[n, m[2]].append(run(path[:-3], n, m[2], a.services))
    sizes = sorted({n for n, _ in runs})
    digest = hashlib.sha256(open(a.bin, "rb").read()).hexdigest()[:12] if a.bin and os.path.exists(a.bin) else "?"
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(a.bin))) if digest != "?" else "?"
    print(f"## Scale: {a.services} services per host, {a.latency_ms:g} ms per request, "
          f"{os.cpu_count()} cores\n")
    print(f"fleetpin: `{a.bin}` (sha256 {digest}…, built {built}), run under `ulimit -n {a.fd_limit}`; "
          "engines.py and the client share the machine's cores. Wall: median (min–max) over "
          f"{max((len(v) for v in runs.values()), default=0)} interleaved rounds; fleetpin's includes "
          "process start and output, the floor's only its requests. × floor: plan against `floor plan`, "
          "audit against the better of the two audit floors (one connection per host, or as many "
          "per host as the same fd limit allows, at most one per request). Peak fds: fleetpin's, sampled every "
          f"{a.fd_sample * 1000:g} ms from /proc (the engines' peak open connections are exact); for the floor, "
          "its connections.\n")
    print("| hosts | run | wall s | × floor | client CPU s | engines CPU s | peak RSS MB | peak fds "
          "| TCP conns (engines) | peak open conns | check |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        med = {k: statistics.median([r["wall"] for r in v if r["wall"] is not None] or [0])
               for (m, k), v in runs.items() if m == n}
        floors = {"fleetpin-plan": med.get("floor-plan"),
                  "fleetpin-audit": min(med.get("floor-audit-k1", 1e9), med.get("floor-audit-auto", 1e9))}
        for key, label in RUNS:
            rs = runs.get((n, key))
            if not rs:
                continue
            ratio = f"{med[key] / floors[key]:.1f}×" if floors.get(key) else ""
            checks = sorted({r["check"] for r in rs})
            if key == "fleetpin-audit":
                full = [r.get("full", 0) for r in rs]
                checks.append(f"since+digest filled {spread(full, '{:.0f}')} of {n * a.services}")
                if min(full) < n * a.services:
                    ratio += " †"
            print(f"| {n} | {label} | {spread([r['wall'] for r in rs])} | {ratio} "
                  f"| {spread([r['cpu'] for r in rs])} | {spread([r['engines_cpu'] for r in rs])} "
                  f"| {spread([r['rss_mb'] for r in rs], '{:.0f}')} | {spread([r['fds'] for r in rs], '{:.0f}')} "
                  f"| {spread([r['conns'] for r in rs], '{:.0f}')} | {spread([r['peak_open'] for r in rs], '{:.0f}')} "
                  f"| {'; '.join(checks)} |")
    print("\n† fleetpin's audit left rows without `since` or `digest` (their inspect failed, e.g. for "
          "want of file descriptors, and was dropped silently): it did less than the floor does.")
    print("\n### Engine API calls per host (median over rounds, from the engines' counters)\n")
    print("| hosts | run | calls per host | TCP connections per host |")
    print("|---:|---|---|---:|")
    for n in sizes:
        for key, label in RUNS:
            rs = runs.get((n, key))
            if not rs:
                continue
            paths = sorted({p for r in rs for p in r["requests"]})
            calls = ", ".join(f"`{p}` {statistics.median([r['requests'].get(p, 0) for r in rs]) / n:.2f}"
                              for p in paths)
            conns = statistics.median([r["conns"] or 0 for r in rs]) / n
            print(f"| {n} | {label} | {calls} | {conns:.2f} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs")
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--latency-ms", type=float, default=20)
    p.add_argument("--fd-limit", default="4096")
    p.add_argument("--bin")
    p.add_argument("--fd-sample", type=float, default=0.05, help="seconds between fd samples")
    main(p.parse_args())
