"""The soak's observer: what is true on the fleet, judged without fleetpin's code.

It reads the engines through their HTTP API (plain TCP), the services through their published
ports, the counter through the volume's files on the host, the pins through the git remote, and
processes through /proc. Only the quiescent checkpoint calls fleetpin, for the two things the
issue asks of it: the repair `apply` from a fresh clone, and `audit --exit-code`.
"""

import datetime
import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse

SERVING_SLACK = 15  # seconds on top of the gate's time: stop, create, start on a loaded machine
# Seconds a service may be down while no run holds its environment's lock on the host: the lock
# is read and the port probed in the same tick, not at the same instant.
UNLOCKED_GRACE = 3
LOCK_SLACK = 60  # seconds on top of the TTL for the run that takes a dead holder's lock over


def now():
    return time.monotonic()


class FleetDown(Exception):
    pass


def tcp_open(addr, port, timeout=1.0):
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_get(addr, port, path, timeout=1.5):
    try:
        c = http.client.HTTPConnection(addr, port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None, None


class Host:
    def __init__(self, name, addr, tcp, unix, netns):
        self.name, self.addr, self.tcp, self.unix, self.netns = name, addr, tcp, unix, netns


class Fleet:
    """fleet.env, as fleet.sh wrote it."""

    @staticmethod
    def load():
        path = os.environ.get("FLEETPIN_FLEET_ENV", "/run/fleetpin-fleet/fleet.env")
        try:
            text = open(path).read()
        except OSError as e:
            raise FleetDown(f"{path}: {e.strerror}") from None
        v = dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)
        f = Fleet()
        f.image = v["FLEET_IMAGE"]
        f.registry_netns = v.get("FLEET_REGISTRY_NETNS", "fpfleet-reg")
        f.registry = v["FLEET_REGISTRY"]
        f.hosts = []
        for h in v["FLEET_HOSTS"].split():
            u = h.upper()
            if not v.get(f"FLEET_{u}_TCP"):
                continue
            f.hosts.append(Host(h, v[f"FLEET_{u}_ADDR"], v[f"FLEET_{u}_TCP"], v[f"FLEET_{u}_UNIX"],
                                v[f"FLEET_{u}_NETNS"]))
        f.small_dataroot = v.get("FLEET_SMALL_DATAROOT")
        f.small_dataroot_dir = v.get("FLEET_SMALL_DATAROOT_DIR")
        for h in f.hosts:
            try:
                Docker(h.tcp).get("/_ping", raw=True)
            except OSError as e:
                raise FleetDown(f"{h.name} ({h.tcp}) does not answer: {e}") from None
        route = subprocess.run(["ip", "netns", "exec", f.hosts[0].netns, "ip", "-4", "route",
                                "show", "default"], capture_output=True, text=True).stdout.split()
        if "via" not in route:
            raise FleetDown(f"no default route in {f.hosts[0].netns}")
        f.bridge = route[route.index("via") + 1]
        return f


class Docker:
    """The few Engine API calls the observer needs, over plain TCP."""

    def __init__(self, tcp, timeout=4.0):
        u = urllib.parse.urlparse(tcp)
        self.addr, self.port, self.timeout = u.hostname, u.port, timeout

    def request(self, method, path):
        c = http.client.HTTPConnection(self.addr, self.port, timeout=self.timeout)
        try:
            c.request(method, path)
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status >= 400 and r.status != 404:
            raise OSError(f"{method} {path}: {r.status} {body[:200]!r}")
        return r.status, body

    def get(self, path, raw=False):
        status, body = self.request("GET", path)
        if status == 404:
            return None
        return body if raw else json.loads(body)

    def containers(self, prefix):
        filters = urllib.parse.quote(json.dumps({"name": [prefix]}))
        out = []
        for c in self.get(f"/containers/json?all=1&filters={filters}") or []:
            name = c["Names"][0].lstrip("/")
            if name.startswith(prefix):
                c["name"] = name
                out.append(c)
        return out

    def labels(self, name):
        try:
            c = self.get(f"/containers/{urllib.parse.quote(name)}/json")
        except OSError:
            return None
        return (c or {}).get("Config", {}).get("Labels") if c else None

    def info(self):
        return self.get("/info")

    def remove_prefix(self, prefixes):
        for p in prefixes:
            try:
                for c in self.containers(p):
                    self.request("DELETE", f"/containers/{c['Id']}?force=1")
            except OSError:
                pass


def engine_time(info):
    """/info's SystemTime (RFC 3339 with nanoseconds) as unix seconds."""
    t = info["SystemTime"]
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", t)
    base = datetime.datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    return base.timestamp() + float(m.group(2) or 0)


def process_start(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None when the process is gone."""
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


class State:
    """What the driver knows that excuses an outage: runs in flight, faults, and the events that
    leave a service down until fleetpin runs again (a SIGKILLed run, an engine restarted)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.inflight = {}
        self.host_faults = {}
        self.healed_at = {}
        self.needs_run = {}  # env -> monotonic time of the event that needs a run to repair
        self.last_run_end = {}
        self.clock_step = {}
        self.quiet = False
        self.disk_full = False
        self.fault_epoch = 0
        self.runs = {}  # env -> runs started

    def op_started(self, env):
        with self.lock:
            self.inflight[env] = self.inflight.get(env, 0) + 1
            self.runs[env] = self.runs.get(env, 0) + 1
            return (now(), self.fault_epoch)

    def op_ended(self, env, started, ok, repairs):
        """A run ended. One that started after the event and converged (exit 0) repaired it; one
        that failed while a host fault came and went may have left a service down for the next
        run to repair (a restore the dead engine or the full disk refused)."""
        with self.lock:
            self.inflight[env] = max(0, self.inflight.get(env, 0) - 1)
            self.last_run_end[env] = now()
            t0, epoch = started
            ev = self.needs_run.get(env)
            if repairs and ok and ev and ev[0] < t0:
                self.needs_run.pop(env, None)
            if not ok and epoch != self.fault_epoch:
                self.needs_run.setdefault(env, (now(), time.time()))

    def synced(self, env, wall):
        """The agent recorded a sync at `wall` (its clock, this machine's)."""
        with self.lock:
            ev = self.needs_run.get(env)
            if ev and ev[1] < wall:
                self.needs_run.pop(env, None)

    def killed_run(self, env):
        with self.lock:
            self.needs_run[env] = (now(), time.time())

    def host_fault(self, host, on, disk=False):
        with self.lock:
            self.host_faults[host] = self.host_faults.get(host, 0) + (1 if on else -1)
            self.fault_epoch += 1
            if not on:
                self.healed_at[host] = now()
            if disk:
                self.disk_full = on

    def host_restarted(self, host, envs):
        # The engine stopped its containers (no live-restore): `unless-stopped` ones stay down
        # until a run starts them again (a documented Docker behaviour, not fleetpin's).
        with self.lock:
            for e in envs:
                self.needs_run.setdefault(e, (now(), time.time()))

    def any_host_fault(self):
        with self.lock:
            return any(v > 0 for v in self.host_faults.values())

    def faulted(self, host):
        with self.lock:
            return self.host_faults.get(host, 0) > 0

    def excused(self, env, host):
        """Why an outage of `env` on `host` is not judged now, or None."""
        with self.lock:
            if self.quiet:
                return "checkpoint"
            if self.host_faults.get(host, 0) > 0:
                return "host fault"
            # A run in flight excuses nothing: its swap must serve again within the gate's time.
            if env in self.needs_run:
                return "a run was killed or the engine restarted; waiting for the next run"
        return None

    def reset_after_checkpoint(self):
        with self.lock:
            self.needs_run.clear()


class Observer:
    """Every second: services that served serve again in time, counters only grow, no dead
    holder's lock outlives its TTL."""

    def __init__(self, driver, violation, figures):
        self.d, self.violation, self.figures = driver, violation, figures
        self.stop = False
        self.served = {}  # (env, host, svc) -> ever served
        self.down_since = {}
        self.last_excused = {}
        self.counter = {}  # (env, host) -> (max, size)
        self.dead_since = {}  # lock id -> monotonic time its owner was first seen dead
        self.last = {}  # (env, host, svc) -> (monotonic time, status, body) of the last probe
        self.locked = {}  # host -> environments whose lock container is on it (this tick)
        self.unlocked_down = {}  # (env, host, svc) -> first tick down with no lock held

    def loop(self):
        while not self.stop:
            t = now()
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - the observer must outlive a bad reading
                self.d.log.write({"event": "observer-error", "error": repr(e)})
            time.sleep(max(0.05, 1.0 - (now() - t)))

    def tick(self):
        s = self.d.s
        state = self.d.state
        threads = []
        results = {}

        def probe(key, addr, port):
            results[key] = http_get(addr, port, "/version")

        for env, e in s.envs.items():
            for h in e["hosts"]:
                if state.faulted(h.name):
                    continue
                for svc in e["services"]:
                    t = threading.Thread(target=probe, args=((env, h.name, svc), h.addr,
                                                             s.port(env, svc)))
                    t.start()
                    threads.append(t)
        for h in self.d.fleet.hosts[:3]:
            if not state.faulted(h.name):
                self.host_checks(h)
        for t in threads:
            t.join()
        self.agent_synced()
        for env, e in s.envs.items():
            for h in e["hosts"]:
                for svc in e["services"]:
                    self.judge_serving(env, h.name, svc, results.get((env, h.name, svc)))

    def agent_synced(self):
        """A sync an agent recorded after a kill or an engine restart ends that excuse."""
        for env in self.d.s.pull_envs():
            if env not in self.d.state.needs_run:
                continue
            h = self.d.s.envs[env]["hosts"][0]
            if self.d.state.faulted(h.name):
                continue
            lab = Docker(h.tcp, timeout=2.0).labels(f"soak-{env}.agent") or {}
            at = lab.get("io.fleetpin.agent.synced-at")
            if at and lab.get("io.fleetpin.agent.result") in ("in-sync", "converged"):
                try:
                    wall = datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    continue
                self.d.state.synced(env, wall)

    def judge_serving(self, env, host, svc, result):
        key = (env, host, svc)
        excuse = self.d.state.excused(env, host)
        t = now()
        if excuse:
            self.last_excused[key] = t
        if result is None:
            return  # not probed (host faulted)
        status, body = result
        self.last[key] = (t, status, body)
        self.figures.add("checks", "serving (each second)")
        if good_answer(status, body):
            self.served[key] = True
            self.down_since.pop(key, None)
            return
        if not self.served.get(key):
            return
        since = self.down_since.setdefault(key, t)
        # A swap interrupts a service only while its run holds the environment's lock on that
        # host: down with no lock held is a run that left it down (a restore that did not
        # happen), whoever repairs it later.
        locked = self.locked.get(host)
        if excuse or locked is None or env in locked:
            self.unlocked_down.pop(key, None)
        else:
            first = self.unlocked_down.setdefault(key, t)
            if t - first > UNLOCKED_GRACE:
                self.violation("down with no run holding the lock",
                               f"{env}/{host}/{svc} has not answered for {t - since:.0f} s, the "
                               f"last {t - first:.0f} s with no lock of {env} on {host} and "
                               "nothing excusing it", key=("unlocked", key, first))
        budget = self.d_gate() + SERVING_SLACK
        start = max(since, self.last_excused.get(key, 0))
        if not excuse and t - start > budget:
            if ("serving", key, since) not in self.violation.seen:
                self.diagnose_host(host)
            self.violation("not serving", f"{env}/{host}/{svc} has not answered on its port for "
                           f"{t - since:.0f} s ({t - start:.0f} s since anything excused it; "
                           f"gate {self.d_gate()} s)", key=("serving", key, since))

    def diagnose_host(self, name):
        for h in self.d.fleet.hosts:
            if h.name == name:
                Checkpoint(self.d, self.violation, self.figures).diagnose(h)

    def d_gate(self):
        return 20

    def host_checks(self, h):
        d = Docker(h.tcp, timeout=2.0)
        try:
            info = d.info()
            locks = d.containers("fleetpin-lock-soak-")
        except OSError:
            self.locked.pop(h.name, None)
            return
        self.locked[h.name] = {env for env in self.d.s.envs
                               if any(c["name"].split(".")[0] == f"fleetpin-lock-soak-{env}"
                                      for c in locks)}
        self.check_locks(h, info, locks)
        root = info.get("DockerRootDir")
        for env, e in self.d.s.envs.items():
            if h.name in [x.name for x in e["hosts"]]:
                self.check_counter(env, h, root)

    def check_counter(self, env, h, root):
        path = os.path.join(root, "volumes", f"soak-{env}-count", "_data", "counter")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = None
        key = (env, h.name)
        prev = self.counter.get(key)
        if data is None:
            if prev is not None:
                self.violation("counter lost", f"{env}/{h.name}: {path} is gone (it held "
                               f"{prev[0]})", key=("counter-lost", key))
            return
        self.figures.add("checks", "counter only grows (each second)")
        lines = data.split(b"\n")[:-1]
        nums = [int(x) for x in lines if x.isdigit()]
        top = max(nums) if nums else 0
        if prev is not None and (top < prev[0] or len(data) < prev[1]):
            self.violation("counter shrank", f"{env}/{h.name}: highest {prev[0]} -> {top}, "
                           f"size {prev[1]} -> {len(data)} bytes", key=("counter", key, top))
        self.counter[key] = (max(top, prev[0] if prev else 0), max(len(data), prev[1] if prev else 0))

    def check_locks(self, h, info, conts):
        t_engine = engine_time(info)
        t = now()
        locks = [c for c in conts if ".beat-" not in c["name"]]
        beats = [c for c in conts if ".beat-" in c["name"]]
        for c in locks:
            self.figures.add("checks", "lock of a dead holder (each second)")
            lab = c.get("Labels") or {}
            pid = lab.get("io.fleetpin.lock.pid")
            start = lab.get("io.fleetpin.lock.pid-start")
            ttl = int(lab.get("io.fleetpin.lock.ttl") or 120)
            if not pid or process_start(pid) == start:
                self.dead_since.pop(c["Id"], None)
                continue
            first = self.dead_since.setdefault(c["Id"], t)
            last_beat = max([c["Created"]] + [b["Created"] for b in beats
                                              if (b.get("Labels") or {}).get("io.fleetpin.lock.of") == c["Id"]])
            # Heartbeats after the holder died would keep a dead run's lock alive forever.
            healed = self.d.state.healed_at.get(h.name, 0)
            since = max(first, healed)
            if t - since > ttl + LOCK_SLACK and not self.d.state.faulted(h.name) \
                    and not self.d.state.quiet:
                self.violation("stale lock", f"{c['name']} on {h.name}: its holder (pid {pid}, "
                               f"{lab.get('io.fleetpin.lock.operation')}) is dead for "
                               f"{t - first:.0f} s, TTL {ttl} s, last heartbeat "
                               f"{t_engine - last_beat:.0f} s ago by the engine's clock, and no "
                               "run took it over", key=("lock", c["Id"]))


    def serving_before(self, env):
        """What of `env` answered a good release at the last probe (before a run starts)."""
        e = self.d.s.envs[env]
        out = {}
        for h in e["hosts"]:
            for svc in e["services"]:
                last = self.last.get((env, h.name, svc))
                if last and now() - last[0] < 3 and good_answer(last[1], last[2]):
                    out[(h, svc)] = last[2]
        return out

    def after_run(self, env, before, what, code, epoch):
        """A run ended (not killed, no host fault while it ran): what served a good release
        before it must serve one now — the run either swapped it or put the previous one back."""
        state = self.d.state

        def quiet():
            # Another run of the environment may be swapping the very service (it waited for the
            # lock): its own end is judged, not this one's.
            return state.fault_epoch == epoch and state.inflight.get(env, 0) == 0 \
                and state.runs.get(env, 0) == runs
        runs = state.runs.get(env, 0)
        if not quiet():
            return
        for (h, svc), was in before.items():
            self.figures.add("checks", "serving when a run ends")
            answers = []
            for _ in range(4):
                status, body = http_get(h.addr, self.d.s.port(env, svc), "/version", timeout=1.0)
                answers.append(body)
                if good_answer(status, body):
                    break
                time.sleep(0.5)
            else:
                if quiet():
                    self.violation("not serving after a run", f"{env}/{h.name}/{svc} answered "
                                   f"{was!r} before `{what}` and {answers!r} in the 2 s after it "
                                   f"ended (exit {code})")


class Checkpoint:
    """Faults healed, one repair apply from a fresh clone, then the structure."""

    def __init__(self, driver, violation, figures):
        self.d, self.violation, self.figures = driver, violation, figures

    def check(self, what):
        self.figures.add("checks", f"checkpoint: {what}")

    def pins_at(self, commit):
        cache = self.d.__dict__.setdefault("_pins_cache", {})
        if commit not in cache:
            text = subprocess.run(["git", "--git-dir", self.d.s.remote, "show",
                                   f"{commit}:platform.yaml"], capture_output=True,
                                  text=True).stdout
            cache[commit] = parse_pins(text)
        return cache[commit]

    def history(self):
        revs = subprocess.run(["git", "--git-dir", self.d.s.remote, "rev-list", "main"],
                              capture_output=True, text=True).stdout.split()
        seen = {}
        for r in revs:
            for env, pins in self.pins_at(r).items():
                for svc, v in pins.items():
                    seen.setdefault((env, svc), set()).add(tag(v))
        return revs[0], seen

    def run(self):
        from soak import GOOD_PIN, HEALTH_TIMEOUT, RETAIN, git  # noqa: PLC0415
        d = self.d
        # A fresh clone: the repair run sees only what was pushed.
        fresh = os.path.join(d.work, f"repair-{d.figures.checkpoints}")
        git(d.work, "clone", "-q", d.s.remote, fresh, check=True)
        text = open(os.path.join(fresh, "platform.yaml")).read()
        head = self.pins_at(d.remote_head())
        changed = False
        for env, pins in head.items():
            for svc, v in pins.items():
                if tag(v) == "broken":
                    from soak import set_pin  # noqa: PLC0415
                    text = set_pin(text, env, svc, GOOD_PIN)
                    changed = True
        if changed:
            with open(os.path.join(fresh, "platform.yaml"), "w") as f:
                f.write(text)
            git(fresh, "commit", "-q", "-am", "soak repair: no broken pin", user="repair", check=True)
            git(fresh, "push", "-q", user="repair", check=True)
        for env in ("recette", "prod"):
            code, out, err, killed, secs, path = d.fleetpin(
                "repair", fresh, ["apply", env, "--yes", "--lock-wait", "120s", "--health-timeout",
                                  str(HEALTH_TIMEOUT)], env)
            d.log.write({"event": "op", "actor": "repair", "args": ["apply", env], "exit": code,
                         "secs": secs, "output": path, "tail": err.strip()[-400:]})
            self.check("repair apply exits 0")
            if code != 0:
                self.violation("repair apply failed", f"apply {env} from a fresh clone exited "
                               f"{code}: {err.strip()[-700:]}")
                for h in d.s.envs[env]["hosts"]:
                    self.diagnose(h)
        if d.s.reference:
            # What CI does after the repair's push: publish the head for the oci:// agent.
            code, out, err, killed, secs, path = d.fleetpin("repair", fresh, ["publish"], "depot")
            d.log.write({"event": "op", "actor": "repair", "args": ["publish"], "exit": code,
                         "secs": secs, "output": path, "tail": err.strip()[-400:]})
            self.check("publish exits 0")
            if code != 0:
                self.violation("publish failed", f"publish from a fresh clone exited {code}: "
                               f"{err.strip()[-700:]}")
        head_commit, seen = self.history()
        for env in d.s.pull_envs():
            if d.wait_agent_synced(env, head_commit, 150) is None:
                self.violation("agent behind", f"the {env} agent did not sync "
                               f"{head_commit[:12]} within 150 s")
            self.check("agent synced the remote's head")
            # Give the agent's own apply time to end (its lock gone) before judging it.
            h = d.s.envs[env]["hosts"][0]
            for _ in range(60):
                if not Docker(h.tcp).containers(f"fleetpin-lock-soak-{env}"):
                    break
                time.sleep(1)
        pins = self.pins_at(head_commit)
        for env, e in d.s.envs.items():
            for h in e["hosts"]:
                self.structure(env, h, e["services"], pins.get(env, {}), seen, RETAIN)
        for env in d.s.envs:
            code, out, err, killed, secs, path = d.fleetpin(
                "repair", fresh, ["audit", env, "--exit-code"], env)
            self.check("audit --exit-code exits 0")
            if code != 0:
                self.violation("audit", f"audit {env} --exit-code exited {code}: "
                               f"{(out + err).strip()[-900:]}")
        self.secrets()
        self.locks()

    def structure(self, env, h, services, pins, seen, retain):
        docker = Docker(h.tcp)
        conts = docker.containers(f"soak-{env}-")
        for svc in services:
            stable = f"soak-{env}-{svc}"
            mine = [c for c in conts if c["name"] == stable or c["name"].startswith(stable + ".")]
            named = [c for c in mine if c["name"] == stable]
            self.check("one running container under the stable name")
            if len(named) != 1 or named[0]["State"] != "running":
                self.violation("structure", f"{env}/{h.name}/{svc}: under {stable}: "
                               f"{[(c['name'], c['State']) for c in named] or 'nothing'}")
                continue
            v = (named[0].get("Labels") or {}).get("io.fleetpin.version", "")
            self.check("version pinned at some commit")
            if tag(v) not in seen.get((env, svc), set()):
                self.violation("structure", f"{env}/{h.name}/{svc} runs {v!r}, which {env} never "
                               f"pinned (pinned: {sorted(seen.get((env, svc), []))})")
            self.check("runs its pin")
            want = tag(pins.get(svc, ""))
            status, body = http_get(h.addr, self.d.s.port(env, svc), "/version", timeout=3)
            if tag(v) != want or body != want:
                if body is None:
                    self.diagnose(h)
                self.violation("not on its pin", f"{env}/{h.name}/{svc}: pinned {want!r}, the "
                               f"container says {v!r}, its port answers {body!r}"
                               + self.why_no_port(docker, h, named[0], conts, body))
            kept = [c["name"] for c in mine if ".prev-" in c["name"] or ".rolled-back-" in c["name"]]
            self.check("retained <= retain")
            if len(kept) > retain:
                self.violation("retention", f"{env}/{h.name}/{svc}: {len(kept)} retained "
                               f"(retain {retain}): {kept}")
            self.check("nothing half-swapped")
            half = [c["name"] for c in mine if re.search(r"\.(old|new)(-[a-z]+)?-", c["name"])]
            if half:
                self.violation("half-swapped", f"{env}/{h.name}/{svc}: left after the repair "
                               f"run: {half}")

    def diagnose(self, h):
        """What the engine and the host's kernel say, into the log: every container of the
        platform (state, ports, recorded addresses), the networks' lists, the docker-proxy
        processes and the NAT rules; what a violation needs to be understood after the fact."""
        docker = Docker(h.tcp)
        rows = []
        try:
            for c in docker.containers("soak-"):
                ins = docker.get(f"/containers/{c['Id']}/json") or {}
                nets = (ins.get("NetworkSettings") or {}).get("Networks") or {}
                rows.append({"name": c["name"], "state": c["State"],
                             "sandbox": os.path.basename((ins.get("NetworkSettings") or {}).get("SandboxKey") or ""),
                             "started": ins.get("State", {}).get("StartedAt"),
                             "ports": [f"{p.get('PublicPort')}->{p.get('PrivatePort')}"
                                       for p in c.get("Ports") or [] if p.get("PublicPort")],
                             "nets": {n: [v.get("IPAddress"), (v.get("EndpointID") or "")[:12]]
                                      for n, v in nets.items()}})
            listed = {}
            for n in docker.get("/networks") or []:
                full = docker.get(f"/networks/{n['Id']}") or {}
                listed[n["Name"]] = {k[:12]: [v.get("Name"), v.get("IPv4Address")]
                                     for k, v in (full.get("Containers") or {}).items()}
        except OSError as e:
            rows, listed = [repr(e)], {}
        def sh(*cmd):
            return subprocess.run(["ip", "netns", "exec", h.netns, *cmd], capture_output=True,
                                  text=True).stdout[-3000:]
        run = os.path.dirname(os.environ.get("FLEETPIN_FLEET_ENV", "/run/fleetpin-fleet/fleet.env"))
        netns = {}
        nsdir = os.path.join(run, h.name, "exec", "netns")
        for f in sorted(os.listdir(nsdir)) if os.path.isdir(nsdir) else []:
            netns[f] = subprocess.run(["nsenter", f"--net={os.path.join(nsdir, f)}", "ip", "-o",
                                       "-4", "addr", "show", "scope", "global"],
                                      capture_output=True, text=True).stdout.strip()[-300:]
        self.d.log.write({"event": "diagnosis", "host": h.name, "containers": rows, "netns": netns,
                          "networks": listed,
                          "proxies": subprocess.run(["pgrep", "-af", "docker-proxy"],
                                                    capture_output=True, text=True).stdout[-3000:],
                          "nat": sh("iptables", "-t", "nat", "-S", "DOCKER"),
                          "links": sh("ip", "-o", "link", "show", "type", "veth"),
                          "addrs": sh("ip", "-o", "-4", "addr"), "routes": sh("ip", "route"),
                          "neigh": sh("ip", "neigh"), "bridges": sh("bridge", "link")})

    def why_no_port(self, docker, h, cont, conts, body):
        """When the port is dead: the container's address, whether it answers there from inside
        the host, and which other containers of the host claim that address (a stopped one keeps
        its old network sandbox after an engine crash)."""
        if body is not None:
            return ""
        try:
            ins = docker.get(f"/containers/{cont['Id']}/json")
            ip = first_ip(ins)
            direct = subprocess.run(["ip", "netns", "exec", h.netns, "curl", "-s", "-m", "2",
                                     f"http://{ip}:8080/version"], capture_output=True,
                                    text=True).stdout
            same = []
            for c in conts:
                if c["Id"] == cont["Id"]:
                    continue
                o = docker.get(f"/containers/{c['Id']}/json") or {}
                if first_ip(o) == ip:
                    same.append(f"{c['name']} ({c['State']})")
            return (f"; its address {ip} answers {direct!r} from inside the host; other "
                    f"containers claiming {ip}: {same or 'none'}; started {ins['State']['StartedAt']}")
        except (OSError, KeyError, TypeError) as e:
            return f"; (no diagnosis: {e!r})"

    def secrets(self):
        d = self.d
        values = [v.encode() for v in d.s.secret_values]
        files = [d.args.log]
        for root, _, names in os.walk(d.out_dir):
            files += [os.path.join(root, n) for n in names]
        for f in files:
            try:
                data = open(f, "rb").read()
            except OSError:
                continue
            self.check("no secret value in an output")
            for v in values:
                if v in data:
                    self.violation("secret leaked", f"a secret value is in {f}",
                                   key=("secret", f, v))

    def locks(self):
        for h in self.d.fleet.hosts[:3]:
            self.check("no lock left of a dead holder")
            for c in Docker(h.tcp).containers("fleetpin-lock-soak-"):
                lab = c.get("Labels") or {}
                pid = lab.get("io.fleetpin.lock.pid")
                if ".beat-" in c["name"] or (pid and process_start(pid) == lab.get("io.fleetpin.lock.pid-start")):
                    continue
                self.violation("stale lock", f"{c['name']} on {h.name} (holder pid {pid} dead) "
                               "survived the repair runs", key=("ck-lock", c["Id"]))


def parse_pins(text):
    """{env: {service: pin}} of a manifest in the soak's own layout (no YAML library needed:
    fleetpin edits only the version scalars, in place)."""
    pins, env, in_envs, in_versions = {}, None, False, False
    for ln in text.split("\n"):
        if re.match(r"^\S", ln):
            in_envs = ln.startswith("environments:")
            env = None
        elif in_envs and re.match(r"^  [a-z][a-z0-9]*:\s*$", ln):
            env, in_versions = ln.strip()[:-1], False
        elif env and re.match(r"^    versions:\s*$", ln):
            in_versions = True
        elif env and re.match(r"^    \S", ln):
            in_versions = False
        elif env and in_versions:
            m = re.match(r"^      ([a-z][a-z0-9_-]*):\s*[\"']?([^\"'#\s]+)", ln)
            if m:
                pins.setdefault(env, {})[m.group(1)] = m.group(2)
    return pins


def first_ip(inspected):
    """The container's address on its first network (the default bridge or fleetpin's own)."""
    ns = inspected.get("NetworkSettings") or {}
    for n in (ns.get("Networks") or {}).values():
        if n.get("IPAddress"):
            return n["IPAddress"]
    return ns.get("IPAddress") or ""


def good_answer(status, body):
    """A service serves when it answers a release that is not the one that never gets healthy
    (that one answers /version while its gate judges it, and must never be left serving)."""
    return status == 200 and body not in (None, "broken")


def tag(v):
    return v.split("@", 1)[0]
