#!/usr/bin/env python3
"""The client side of serve.sh: one round of measurements against a running `fleetpin serve`
(round), and the table of every round (report). Standard library only; the /metrics text is
parsed with prometheus_client when the interpreter has it (serve.sh's PROM_PY), else checked by
hand (benches/sim/README.md, section "The console").

A round, against a server started just before it (so that its cache is empty):

  1. cold audit     the first GET /api/v1/audit: the server reads the fleet; engines' counters
  2. cached audit   CACHED_GETS sequential GETs right after it, each answered from the reading
  3. cached metrics METRICS_GETS sequential GET /metrics; the last one parsed
  4. floors         floor.py audit, 1 connection per host and `auto` (the better is the floor)
  5. cold metrics   after the reading expired: the first scrape, which reads the fleet again
  6. pollers        1 client, then CLIENTS clients (the order alternates between rounds), each
                    polling GET /api/v1/audit every POLL_INTERVAL s for POLL_SECONDS s, starting
                    at the same instant on an expired reading; the engines' counters of each
  7. peak RSS       VmHWM of the server's process after each step (serve.sh adds GNU time's)

    serve_bench.py round --url http://127.0.0.1:18420 --token-file T --control 19999 \
        --pid PID --hosts 1000 --round 1 -o r1.json
    serve_bench.py report RUNS_DIR
"""

import argparse
import glob
import http.client
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_AGE = 15.0  # src/serve/cache.rs MAX_AGE: a reading older than this is read again
HEAD_RE = re.compile(rb'"age_seconds":\s*([0-9.]+),\s*"read_at":\s*"([^"]+)"')


class Server:
    """GETs on one keep-alive connection, with the token."""

    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.token = u.hostname, u.port, token
        self.conn = None

    def get(self, path):
        """(status, body bytes, seconds from sending to the last byte)."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            t0 = time.perf_counter()
            try:
                self.conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, body, time.perf_counter() - t0
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()


ENGINES_CPU = [0.0]  # the engines' CPU seconds, summed over every stats() call of the round


def stats(control, reset=True):
    """The engines' counters since the last reset (engines.py's /_stats); zeroes them."""
    c = http.client.HTTPConnection("127.0.0.1", control, timeout=30)
    c.request("GET", "/_stats?reset=1" if reset else "/_stats")
    doc = json.loads(c.getresponse().read())
    c.close()
    if reset:
        ENGINES_CPU[0] += doc.get("cpu_seconds", 0)
    return doc


def cpu_busy():
    """CPU seconds the whole machine has spent busy since boot (/proc/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
    return busy / tick


def proc_cpu(pid):
    """A process's user + system CPU seconds so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def own_cpu():
    """This client's CPU seconds and its children's (the floors)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def vm_hwm(pid):
    """The process's peak resident set (MB) so far, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def loadavg():
    """The machine's 1-minute load average: the other work on the same cores."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def age_of(body):
    """(age_seconds, read_at) from the head of an audit answer, without parsing all of it."""
    m = HEAD_RE.search(body[:200])
    return (float(m[1]), m[2].decode()) if m else (None, None)


class Expiry:
    """When the server's reading expires, from the age its answers carry."""

    def __init__(self):
        self.read_at_mono = None

    def saw(self, body, received):
        age, _ = age_of(body)
        if age is not None:
            self.read_at_mono = received - age

    def saw_metrics(self, text, received):
        m = re.search(r"^fleetpin_fleet_read_age_seconds ([0-9.e+-]+)", text, re.M)
        if m:
            self.read_at_mono = received - float(m[1])

    def wait(self, margin=0.5):
        if self.read_at_mono is not None:
            left = self.read_at_mono + MAX_AGE + margin - time.monotonic()
            if left > 0:
                time.sleep(left)


def age_in_metrics(text):
    m = re.search(r"^fleetpin_fleet_read_age_seconds ([0-9.e+-]+)", text, re.M)
    return float(m[1]) if m else None


def check_audit(body, hosts, services):
    """What the cold answer holds: rows, how many ok, how many with since and digest."""
    doc = json.loads(body)
    rows = doc.get("hosts", {}).get("rows", [])
    ok = sum(r["status"] == "ok" for r in rows)
    full = sum(r.get("since") is not None and r.get("digest") is not None for r in rows)
    return {"rows": len(rows), "ok": ok, "full": full, "expected": hosts * services,
            "bytes": len(body)}


def parse_metrics(text):
    """How the scrape parses: with prometheus_client (both parsers) when present, else by hand."""
    out = {}
    try:
        from prometheus_client.parser import text_string_to_metric_families as classic
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
    except ImportError:
        classic = om = None
    if classic:
        for name, parse in (("prometheus", classic), ("openmetrics", om)):
            try:
                fams = list(parse(text))
                out[name] = {"families": len(fams), "samples": sum(len(f.samples) for f in fams)}
            except Exception as e:  # the parser's own errors are plain ValueErrors and others
                out[name] = {"error": f"{type(e).__name__}: {e}"[:200]}
    else:
        # By hand: every line is a comment or `name{labels} value`, and it ends with # EOF.
        bad = [l for l in text.splitlines() if l and not l.startswith("#")
               and not re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEinfNa]+', l)]
        out["by_hand"] = {"samples": sum(1 for l in text.splitlines() if l and not l.startswith("#")),
                          "bad_lines": len(bad), "eof": text.rstrip().endswith("# EOF"),
                          "first_bad": bad[0][:120] if bad else None}
    out["info_series"] = len(re.findall(r"^fleetpin_service_info\{", text, re.M))
    return out


def floor(a, conns):
    r = subprocess.run([sys.executable if not a.floor_py else a.floor_py, os.path.join(HERE, "floor.py"),
                        "audit", "--hosts", str(a.hosts), "--base", str(a.base),
                        "--conns-per-host", conns, "--json"], capture_output=True, text=True)
    doc = json.loads(r.stdout) if r.stdout.strip() else {}
    doc["rc"] = r.returncode
    return doc


def pollers(a, clients, token):
    """CLIENTS clients polling the audit every POLL_INTERVAL s for POLL_SECONDS s, all starting
    at once; each waits for its answer before the next tick (a late answer skips ticks)."""
    start = time.monotonic() + 0.2
    latencies, reads, errors = [], set(), []
    lock = threading.Lock()

    def client():
        s = Server(a.url, token)
        k = 0
        try:
            while True:
                tick = start + k * a.poll_interval
                if tick >= start + a.poll_seconds:
                    break
                now = time.monotonic()
                if tick > now:
                    time.sleep(tick - now)
                status, body, dt = s.get("/api/v1/audit")
                _, read_at = age_of(body)
                with lock:
                    latencies.append((k, dt))
                    reads.add(read_at)
                    if status != 200:
                        errors.append(status)
                # The next tick after the answer: a client never has two requests out.
                k = max(k + 1, int((time.monotonic() - start) / a.poll_interval) + 1)
        finally:
            s.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = [dt for _, dt in latencies]
    first = [dt for k, dt in latencies if k == 0]
    return {"clients": clients, "seconds": round(time.monotonic() - t0, 2), "requests": len(lat),
            "errors": len(errors), "readings_seen": len(reads - {None}),
            "latency_median": statistics.median(lat), "latency_max": max(lat),
            "first_median": statistics.median(first), "first_max": max(first)}


def round_(a):
    token = open(a.token_file).read().strip()
    s = Server(a.url, token)
    exp = Expiry()
    out = {"round": a.round, "hosts": a.hosts, "services": a.services,
           "poll_interval": a.poll_interval, "rss_mb": {}}
    rss = lambda step: out["rss_mb"].__setitem__(step, vm_hwm(a.pid))
    say = lambda m: print(f"[serve_bench r{a.round}] {m}", file=sys.stderr, flush=True)
    rss("start")
    out["loadavg"] = [loadavg()]
    stats(a.control)
    ENGINES_CPU[0] = 0.0
    t0, busy0, server0, own0 = time.monotonic(), cpu_busy(), proc_cpu(a.pid), own_cpu()

    # 1. Cold: the first answer after the server started reads the fleet.
    status, body, dt = s.get("/api/v1/audit")
    exp.saw(body, time.monotonic())
    st = stats(a.control)
    out["cold_audit"] = {"status": status, "seconds": dt, "engine_requests": st["total_requests"],
                         "engine_connections": st["connections"], **check_audit(body, a.hosts, a.services)}
    say(f"cold audit {dt:.2f} s, {len(body)} bytes, {st['total_requests']} engine requests")
    rss("cold_audit")

    # 2. Cached: sequential answers from that reading.
    times, read_ats = [], set()
    for _ in range(a.cached_gets):
        status, body, dt = s.get("/api/v1/audit")
        times.append(dt)
        read_ats.add(age_of(body)[1])
    st = stats(a.control)
    out["cached_audit"] = {"n": len(times), "seconds": times, "readings": len(read_ats),
                           "engine_requests": st["total_requests"]}
    say(f"cached audit median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
    rss("cached_audit")

    # 3. Cached scrapes.
    times = []
    for _ in range(a.metrics_gets):
        status, body, dt = s.get("/metrics")
        times.append(dt)
    text = body.decode()
    st = stats(a.control)
    out["cached_metrics"] = {"n": len(times), "seconds": times, "status": status, "bytes": len(body),
                             "engine_requests": st["total_requests"], "parse": parse_metrics(text)}
    say(f"cached metrics median {statistics.median(times) * 1000:.1f} ms, {len(body)} bytes")
    rss("cached_metrics")

    # 4. The floors, in the same conditions.
    for conns in ("1", "auto"):
        f = floor(a, conns)
        st = stats(a.control)
        out[f"floor_{conns}"] = {**f, "engine_requests": st["total_requests"]}
        say(f"floor audit {conns}: {f.get('wall_seconds')} s")

    # 5. A cold scrape: the first after the reading expired. It is answered from that reading
    # at once, and the fleet is read again behind it: wait for that read (a younger age in a
    # scrape) so that its engine requests stay out of the pollers' counters.
    exp.wait()
    stats(a.control)
    status, body, dt = s.get("/metrics")
    old_age = age_in_metrics(body.decode())
    exp.saw_metrics(body.decode(), time.monotonic())
    t_refresh = time.monotonic()
    refreshed = None
    while time.monotonic() - t_refresh < 120:
        time.sleep(0.25)
        _, b, _ = s.get("/metrics")
        age = age_in_metrics(b.decode())
        if age is not None and old_age is not None and age < old_age:
            refreshed = time.monotonic() - t_refresh
            exp.saw_metrics(b.decode(), time.monotonic())
            break
    st = stats(a.control)
    out["cold_metrics"] = {"status": status, "seconds": dt, "engine_requests": st["total_requests"],
                           "stale_age": old_age, "refreshed_after": refreshed}
    say(f"cold metrics {dt:.3f} s (a reading {old_age} s old; a new one {refreshed} s later)")
    rss("cold_metrics")
    s.close()

    # 6. Pollers: 1 and CLIENTS, each from an expired reading; the order alternates by round.
    order = [1, a.clients] if a.round % 2 else [a.clients, 1]
    for n in order:
        exp.wait()
        stats(a.control)
        p = pollers(a, n, token)
        st = stats(a.control)
        p.update(engine_requests=st["total_requests"], engine_connections=st["connections"])
        out[f"pollers_{'one' if n == 1 else 'many'}"] = p
        exp.read_at_mono = time.monotonic()  # at the latest: the last answer's reading
        say(f"{n} pollers: {p['requests']} answers, {p['readings_seen']} readings, "
            f"{st['total_requests']} engine requests")
        rss(f"pollers_{n}")
    out["loadavg"].append(loadavg())
    ours = {"server": proc_cpu(a.pid) - server0, "engines": ENGINES_CPU[0], "clients": own_cpu() - own0}
    out["cpu"] = {"wall": time.monotonic() - t0, "machine": cpu_busy() - busy0, **ours,
                  "others": cpu_busy() - busy0 - sum(ours.values())}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


def spread(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def report(a):
    rounds = []
    for path in sorted(glob.glob(os.path.join(a.runs, "r*.json"))):
        r = json.load(open(path))
        tv = open(path[:-5] + ".time").read() if os.path.exists(path[:-5] + ".time") else ""
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv)
        r["rss_time_mb"] = int(m[1]) / 1024 if m else None
        rounds.append(r)
    if not rounds:
        sys.exit("report: no rounds")
    n, svc = rounds[0]["hosts"], rounds[0]["services"]
    ms = "{:.1f}"
    col = lambda f: [f(r) for r in rounds]
    floor_k1 = statistics.median(col(lambda r: r["floor_1"].get("wall_seconds")))
    floor_auto = statistics.median(col(lambda r: r["floor_auto"].get("wall_seconds")))
    floor_best = min(floor_k1, floor_auto)
    cold = col(lambda r: r["cold_audit"]["seconds"])
    cached_all = [t for r in rounds for t in r["cached_audit"]["seconds"]]
    cached_med = col(lambda r: statistics.median(r["cached_audit"]["seconds"]) * 1000)
    cached_max = col(lambda r: max(r["cached_audit"]["seconds"]) * 1000)
    mcached_med = col(lambda r: statistics.median(r["cached_metrics"]["seconds"]) * 1000)
    mcached_max = col(lambda r: max(r["cached_metrics"]["seconds"]) * 1000)
    mcold = col(lambda r: r["cold_metrics"]["seconds"])
    one = col(lambda r: r["pollers_one"]["engine_requests"])
    many = col(lambda r: r["pollers_many"]["engine_requests"])
    clients = rounds[0]["pollers_many"]["clients"]
    rss_proc = col(lambda r: max(v for v in r["rss_mb"].values() if v is not None))
    rss_time = col(lambda r: r["rss_time_mb"])
    rss_peak = max(v for v in rss_proc + rss_time if v is not None)
    verdict = lambda ok: "yes" if ok else "**no**"
    checks = sorted({f"{r['cold_audit']['ok']}/{r['cold_audit']['rows']} ok, since+digest "
                     f"{r['cold_audit']['full']}" for r in rounds})
    parse = rounds[-1]["cached_metrics"]["parse"]
    parsed = "; ".join(f"{k}: " + (v["error"] if "error" in v else
                                   ", ".join(f"{x} {y}" for x, y in v.items()))
                       for k, v in parse.items() if isinstance(v, dict))
    print(f"## fleetpin serve: {n} hosts × {svc} services, {a.latency_ms:g} ms per engine request, "
          f"{os.cpu_count()} cores\n")
    print(f"Median (min–max) over {len(rounds)} rounds, each against a server started for it; "
          f"cached figures are per round medians and maxima of {rounds[0]['cached_audit']['n']} "
          f"(audit) and {rounds[0]['cached_metrics']['n']} (/metrics) sequential GETs on one "
          "keep-alive connection. Client-side times: request sent to last byte read.\n")
    print("| measure | fleetpin serve | floor / bound | holds |")
    print("|---|---:|---:|---|")
    print(f"| audit, cold (first GET after start), s | {spread(cold)} | floor {floor_best:.2f} "
          f"(1 conn/host {spread(col(lambda r: r['floor_1'].get('wall_seconds')))}, auto "
          f"{spread(col(lambda r: r['floor_auto'].get('wall_seconds')))}); ≤ 1.5× = {1.5 * floor_best:.2f} "
          f"| {verdict(statistics.median(cold) <= 1.5 * floor_best)} ({statistics.median(cold) / floor_best:.2f}×) |")
    per_round = col(lambda r: r["cold_audit"]["seconds"] / min(r["floor_1"].get("wall_seconds") or 1e9,
                                                             r["floor_auto"].get("wall_seconds") or 1e9))
    print(f"| audit, cold ÷ that round's better floor | {spread(per_round)}× | ≤ 1.5× "
          f"| {verdict(max(per_round) <= 1.5)} |")
    print(f"| audit, cached, ms: median | {spread(cached_med, ms)} | < 50 | "
          f"{verdict(max(cached_med) < 50)} |")
    print(f"| audit, cached, ms: max | {spread(cached_max, ms)} | < 50 | {verdict(max(cached_max) < 50)} "
          f"(all {len(cached_all)}: p90 {sorted(cached_all)[int(0.9 * len(cached_all))] * 1000:.1f}) |")
    print(f"| /metrics, cached, ms: median | {spread(mcached_med, ms)} | < 200 | {verdict(max(mcached_med) < 200)} |")
    print(f"| /metrics, cached, ms: max | {spread(mcached_max, ms)} | < 200 | {verdict(max(mcached_max) < 200)} |")
    print(f"| /metrics, first scrape after the reading expired (answered from it; the fleet read again behind), ms "
          f"| {spread([v * 1000 for v in mcold], '{:.1f}')} | < 200 "
          f"| {verdict(max(mcold) < 0.2)} |")
    print(f"| …the reading it answered from, s old / the next reading there after, s | "
          f"{spread(col(lambda r: r['cold_metrics'].get('stale_age')))} / "
          f"{spread(col(lambda r: r['cold_metrics'].get('refreshed_after')))} | | |")
    print(f"| engine requests, 1 client polling every {rounds[0].get('poll_interval', 1):g} s "
          f"for {rounds[0]['pollers_one']['seconds']:.0f} s | {spread(one, '{:.0f}')} | | |")
    print(f"| engine requests, {clients} clients polling at once | {spread(many, '{:.0f}')} | = 1 client "
          f"| {verdict(all(x == y for x, y in zip(one, many)))} |")
    print(f"| fleet readings, 1 client / {clients} clients | "
          f"{spread(col(lambda r: r['pollers_one']['readings_seen']), '{:.0f}')} / "
          f"{spread(col(lambda r: r['pollers_many']['readings_seen']), '{:.0f}')} | | |")
    print(f"| audit answer time, {clients} clients: first (cold, all at once), s | "
          f"{spread(col(lambda r: r['pollers_many']['first_median']))} median, "
          f"{spread(col(lambda r: r['pollers_many']['first_max']))} max | | |")
    print(f"| audit answer time, {clients} clients: every answer, s | "
          f"{spread(col(lambda r: r['pollers_many']['latency_median']), '{:.3f}')} median, "
          f"{spread(col(lambda r: r['pollers_many']['latency_max']))} max | | |")
    print(f"| peak RSS, MB (VmHWM; GNU time) | {spread(rss_proc, '{:.0f}')}; {spread(rss_time, '{:.0f}')} "
          f"| ≤ 200 | {verdict(rss_peak <= 200)} (max {rss_peak:.0f}) |")
    print(f"\nCold audit answers: {'; '.join(checks)} of {n * svc} rows, "
          f"{spread(col(lambda r: r['cold_audit']['bytes'] / 1e6))} MB of JSON, "
          f"{spread(col(lambda r: r['cold_audit']['engine_requests']), '{:.0f}')} engine requests "
          f"(floor: {spread(col(lambda r: r['floor_1'].get('requests')), '{:.0f}')}). "
          f"Cached answers asked the engines {sum(col(lambda r: r['cached_audit']['engine_requests']))} "
          f"requests and saw {sorted(set(col(lambda r: r['cached_audit']['readings'])))} reading(s) "
          f"per round. /metrics: {rounds[-1]['cached_metrics']['bytes'] / 1e6:.1f} MB, "
          f"{rounds[-1]['cached_metrics']['parse']['info_series']} fleetpin_service_info series; "
          f"parsed: {parsed}.")
    print("\nCPU seconds per round (wall s × cores available): " + "; ".join(
        f"r{r['round']} {r['cpu']['wall']:.0f} s × {os.cpu_count()}: server {r['cpu']['server']:.1f}, "
        f"engines {r['cpu']['engines']:.1f}, clients and floors {r['cpu']['clients']:.1f}, "
        f"**other processes {r['cpu']['others']:.1f}** (load average {r['loadavg'][0]:.1f}–{r['loadavg'][-1]:.1f})"
        for r in rounds) + ".")
    steps = list(rounds[0]["rss_mb"])
    print("\nVmHWM after each step, MB (per round): " + "; ".join(
        f"{s} {spread([r['rss_mb'].get(s) for r in rounds], '{:.0f}')}" for s in steps) + ".")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("round")
    r.add_argument("--url", default="http://127.0.0.1:18420")
    r.add_argument("--token-file", required=True)
    r.add_argument("--control", type=int, default=19999)
    r.add_argument("--pid", type=int, required=True, help="the server's process (not GNU time's)")
    r.add_argument("--hosts", type=int, default=1000)
    r.add_argument("--services", type=int, default=20)
    r.add_argument("--base", type=int, default=20000)
    r.add_argument("--round", type=int, default=1)
    r.add_argument("--cached-gets", type=int, default=50)
    r.add_argument("--metrics-gets", type=int, default=20)
    r.add_argument("--clients", type=int, default=50)
    r.add_argument("--poll-seconds", type=float, default=30)
    r.add_argument("--poll-interval", type=float, default=1)
    r.add_argument("--floor-py", help="the interpreter for floor.py (default: this one)")
    r.add_argument("-o", "--out", required=True)
    q = sub.add_parser("report")
    q.add_argument("runs")
    q.add_argument("--latency-ms", type=float, default=20)
    a = p.parse_args()
    round_(a) if a.command == "round" else report(a)
