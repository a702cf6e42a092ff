#!/usr/bin/env python3
"""The soak: every operation mixed with every fault on the private fleet, and an observer that
proves nothing is lost.

Fault tests each inject one fault alone; production meets them together and over hours. This
driver runs, for --duration seconds and from --seed, two operators (two clones of one shared
remote, pushing pins with fetch+rebase+retry), two pull agents each following an environment of
its own (one over git, one through the registry: `fleetpin publish` + `--ref oci://`), and a fault
injector, all at once. The observer (observer.py) never uses fleetpin's code: it
reads the engines' API, the published ports, the volumes and the git remote itself, every second
and at quiescent checkpoints. Every decision goes to the operation log (--log, JSON lines), so a
failure is replayable (--replay LOG); the figures go to --out.

Run on the fleet (root):  FLEET_SMALL_DATAROOT=h2:384m tests/fleet/fleet.sh run \
    python3 tests/soak/soak.py --duration 300 --seed 1 --log soak.jsonl --out soak.json
Exit: 0 no violation, 1 violations, 2 the fleet or a tool is missing (never a silent skip).
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import observer as obs  # noqa: E402

PLATFORM = "soak"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "2.0.0"]
GOOD_PIN = "1.2.0"
HEALTH_TIMEOUT = 20
LOCK_TTL = 30
AGENT_INTERVAL = 3
RETAIN = 2
GIT_PORT = 18899
COUNTER_SCRIPT = (
    "trap 'exit 0' TERM INT; httpd -p 8080 -h /www; "
    "n=$(tail -n 1 /data/counter 2>/dev/null); case $n in ''|*[!0-9]*) n=0;; esac; "
    "while :; do n=$((n+1)); echo $n >> /data/counter; sleep 1 & wait $!; done"
)


def now():
    return time.monotonic()


class Stop(Exception):
    pass


# ------------------------------------------------------------------------------------ setting --


class Setting:
    """The soak's platform on the fleet: environments, hosts, ports, the remote and the clones."""

    def __init__(self, fleet, work, fleetpin, sops, keygen, oci=True):
        self.fleet = fleet
        self.work = work
        self.fleetpin = fleetpin
        self.sops = sops
        self.keygen = keygen
        h = fleet.hosts
        if len(h) < 3:
            raise SystemExit("the soak needs 3 fleet hosts")
        # Push environments on h1 and h2; the pull environments on h3 (kept apart from push ones):
        # `edge` followed over git, `depot` through the registry (published references).
        self.envs = {
            "recette": {"hosts": [h[0], h[1]], "pull": False, "port": 18810,
                        "services": ["web", "counter", "vault"]},
            "prod": {"hosts": [h[0], h[1]], "pull": False, "port": 18820,
                     "services": ["web", "counter", "vault"]},
            "edge": {"hosts": [h[2]], "pull": "git", "port": 18830,
                     "services": ["web", "counter"]},
        }
        self.reference = None
        if oci:
            self.envs["depot"] = {"hosts": [h[2]], "pull": "oci", "port": 18840,
                                  "services": ["web", "counter"]}
            self.reference = f"{fleet.registry}/{PLATFORM}/reference"
        self.remote = os.path.join(work, "served", "platform.git")
        self.age_key = os.path.join(work, "ops.agekey")
        self.secret_values = []

    def pull_envs(self):
        return [env for env, e in self.envs.items() if e["pull"]]

    def port(self, env, svc):
        return self.envs[env]["port"] + {"web": 1, "counter": 2, "vault": 3}[svc]

    def manifest(self, pins):
        f = self.fleet
        m = [f"platform: {PLATFORM}", f"retain: {RETAIN}", "git: {push: true}"]
        if self.reference:
            m.append(f'reference: {{repository: "{self.reference}", insecure: true}}')
        m.append("services:")
        m += ["  web:", f"    image: {f.image}", '    ports: ["18811:8080"]', "    restart: always"]
        m += ["  counter:", f"    image: {f.image}", '    ports: ["18812:8080"]',
              '    volumes: ["count:/data"]', f"    command: [\"sh\", \"-c\", {json.dumps(COUNTER_SCRIPT)}]"]
        m += ["  vault:", f"    image: {f.image}", '    ports: ["18813:8080"]',
              "    env_file: secrets/vault.env"]
        m.append("environments:")
        for env, e in self.envs.items():
            m.append(f"  {env}:")
            if e["pull"]:
                m.append("    pull: true" if e["pull"] == "git" else "    pull: oci")
            m.append("    hosts:")
            for h in e["hosts"]:
                m.append(f'      {h.name}: {{endpoint: "{h.tcp}", insecure: true}}')
            if env != "recette":
                m.append("    overrides:")
                for s in e["services"]:
                    m.append(f'      {s}: {{ports: ["{self.port(env, s)}:8080"]}}')
            m.append("    versions:")
            for s in e["services"]:
                m.append(f'      {s}: "{pins[env][s]}"')
        return "\n".join(m) + "\n"


def run(cmd, cwd=None, env=None, timeout=120, check=False, input=None):
    p = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True,
                       input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd}: exit {p.returncode}: {p.stderr.strip()[-600:]}")
    return p


def git(cwd, *args, user="soak", timeout=60, check=False):
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    return run(["git", "-c", f"user.name={user}", "-c", f"user.email={user}@example.test",
                "-c", "commit.gpgsign=false", "-c", "rebase.autoStash=false", *args],
               cwd=cwd, env=env, timeout=timeout, check=check)


# ---------------------------------------------------------------------------------------- log --


class OpLog:
    """The operation log: one JSON object a line, numbered; what replays a run."""

    def __init__(self, path, seed):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.seq = 0
        self.t0 = now()
        self.write({"event": "start", "seed": seed})

    def t(self):
        return round(now() - self.t0, 3)

    def write(self, rec):
        with self.lock:
            self.seq += 1
            rec = {"seq": self.seq, "t": self.t(), **rec}
            self.f.write(json.dumps(rec, sort_keys=True) + "\n")
            self.f.flush()
            return self.seq

    def position(self):
        with self.lock:
            return self.seq


class Figures:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = {}
        self.faults = {}
        self.checks = {}
        self.checkpoints = 0
        self.violations = []

    def add(self, table, key, n=1):
        with self.lock:
            d = getattr(self, table)
            d[key] = d.get(key, 0) + n


class Violations:
    def __init__(self, log, figures, seed):
        self.log, self.figures, self.seed = log, figures, seed
        self.lock = threading.Lock()
        self.seen = set()

    def __call__(self, kind, detail, key=None):
        with self.lock:
            if key is not None:
                if key in self.seen:
                    return
                self.seen.add(key)
            pos = self.log.position()
            msg = f"VIOLATION [seed {self.seed}, op log line {pos}] {kind}: {detail}"
            print(msg, file=sys.stderr, flush=True)
            self.log.write({"event": "violation", "kind": kind, "detail": detail, "at": pos})
            self.figures.violations.append({"kind": kind, "detail": detail, "log_line": pos,
                                            "seed": self.seed})


# ------------------------------------------------------------------------------------- driver --


class Driver:
    def __init__(self, args, fleet):
        self.args = args
        self.fleet = fleet
        self.seed = args.seed
        self.work = tempfile.mkdtemp(prefix="fleetpin-soak.")
        self.out_dir = os.path.join(self.work, "out")
        os.makedirs(self.out_dir)
        self.log = OpLog(args.log, args.seed)
        self.figures = Figures()
        self.violation = Violations(self.log, self.figures, args.seed)
        self.s = Setting(fleet, self.work, args.fleetpin, args.sops, args.age_keygen, oci=args.oci)
        self.deadline = None
        self.stopping = threading.Event()
        self.paused = threading.Event()
        self.idle = {}  # actor -> Event set while the actor waits at a pause
        self.procs_lock = threading.Lock()
        self.procs = {}  # pid -> (actor, env, Popen)
        self.out_seq = 0
        self.replay = self.load_replay(args.replay) if args.replay else None
        self.state = obs.State()
        self.agents = {}  # pull environment -> its agent's Popen
        self.agent_lock = threading.Lock()
        self.git_daemon = None
        self.unlock_due = {}  # actor -> env whose run was killed (an unlock is due, as documented)

    # ---- replay --------------------------------------------------------------------------

    @staticmethod
    def load_replay(path):
        q = {}
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("event") == "decision":
                    q.setdefault(r["actor"], []).append(r)
        return q

    def decide(self, actor, rng, choose):
        """The actor's next decision: drawn from its RNG, or the log's next one under --replay
        (waiting for its logged time, so the interleaving is as close as the machine allows)."""
        if self.replay is not None:
            q = self.replay.get(actor, [])
            if not q:
                raise Stop()
            d = q.pop(0)
            while self.log.t() < d["t"] and not self.stopping.is_set():
                time.sleep(0.05)
            rec = {k: v for k, v in d.items() if k not in ("seq", "t")}
        else:
            rec = {"event": "decision", "actor": actor, **choose(rng)}
        rec["seq_decision"] = self.log.write(rec)
        return rec

    # ---- processes ---------------------------------------------------------------------------

    def out_path(self, actor, what):
        with self.procs_lock:
            self.out_seq += 1
            n = self.out_seq
        return os.path.join(self.out_dir, f"{n:05d}-{actor}-{what}")

    def fleetpin_env(self, actor):
        e = dict(os.environ)
        for v in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
            e.pop(v, None)
        e["SOPS_AGE_KEY_FILE"] = self.s.age_key
        e["FLEETPIN_USER"] = f"{actor}@example.test"
        e["FLEETPIN_LOCK_TTL"] = str(LOCK_TTL)
        e["GIT_TERMINAL_PROMPT"] = "0"
        e["GIT_AUTHOR_NAME"] = e["GIT_COMMITTER_NAME"] = actor
        e["GIT_AUTHOR_EMAIL"] = e["GIT_COMMITTER_EMAIL"] = f"{actor}@example.test"
        return e

    def fleetpin(self, actor, cwd, args, env_name, clock=None, timeout=300):
        """Runs fleetpin as `actor`; returns (exit code, stdout, stderr, killed)."""
        cmd = [self.s.fleetpin, *args]
        if clock:
            cmd = ["faketime", "-f", f"{clock:+d}", *cmd]
        path = self.out_path(actor, args[0])
        t = now()
        with open(path + ".out", "w") as o, open(path + ".err", "w") as e:
            p = subprocess.Popen(cmd, cwd=cwd, env=self.fleetpin_env(actor), stdout=o, stderr=e,
                                 stdin=subprocess.DEVNULL)
            with self.procs_lock:
                self.procs[p.pid] = (actor, env_name, p, args[0])
            before = self.observer.serving_before(env_name) \
                if args[0] in ("apply", "rollback") and actor in ("alice", "bob") else {}
            started = self.state.op_started(env_name)
            code = None
            try:
                code = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                code = p.wait()
                self.violation("hang", f"{actor}: fleetpin {' '.join(args)} ran over {timeout} s "
                               f"(output {path}.err)")
            finally:
                with self.procs_lock:
                    self.procs.pop(p.pid, None)
                self.state.op_ended(env_name, started, code == 0,
                                    args[0] in ("apply", "rollback"))
        out = open(path + ".out").read()
        err = open(path + ".err").read()
        was_killed = code == -signal.SIGKILL
        if before and not was_killed:
            self.observer.after_run(env_name, before, " ".join(args[:4]), code, started[1])
        self.figures.add("ops", f"{args[0]} exit {code if not was_killed else 'SIGKILL'}")
        # 2 is an answer of `audit --exit-code` (drift) and `plan --detailed-exitcode`, judged
        # by the checkpoint; anything else outside 0/1 is a crash.
        expected = (0, 1, 2) if args[0] in ("audit", "plan") else (0, 1)
        if not was_killed and code not in expected:
            self.violation("crash", f"{actor}: fleetpin {' '.join(args)} exited {code}: "
                           f"{err.strip()[-400:]}")
        if "panicked" in err:
            self.violation("panic", f"{actor}: fleetpin {' '.join(args)}: {err.strip()[-400:]}")
        return code, out, err, was_killed, round(now() - t, 2), path

    # ---- setup ---------------------------------------------------------------------------

    def setup(self):
        s = self.s
        os.makedirs(os.path.dirname(s.remote))
        run([s.keygen, "-o", s.age_key], check=True)
        self.age_public = [ln.split(": ", 1)[1] for ln in open(s.age_key)
                           if ln.startswith("# public key: ")][0]
        git(self.work, "init", "-q", "--bare", "-b", "main", s.remote, check=True)
        seedrepo = os.path.join(self.work, "seed")
        git(self.work, "clone", "-q", s.remote, seedrepo, check=True)
        git(seedrepo, "checkout", "-q", "-b", "main")
        pins = {env: {svc: "1.0.0" for svc in e["services"]} for env, e in s.envs.items()}
        with open(os.path.join(seedrepo, "platform.yaml"), "w") as f:
            f.write(s.manifest(pins))
        os.makedirs(os.path.join(seedrepo, "secrets"))
        self.write_secret(seedrepo, random.Random(f"{self.seed}-secret-0"))
        git(seedrepo, "add", "-A", check=True)
        git(seedrepo, "commit", "-q", "-m", "soak: the platform", check=True)
        git(seedrepo, "push", "-q", "-u", "origin", "main", check=True)
        self.clones = {}
        for actor in ("alice", "bob"):
            d = os.path.join(self.work, actor)
            git(self.work, "clone", "-q", s.remote, d, check=True)
            self.clones[actor] = d
        # Clean slate on the fleet: nothing of an earlier soak.
        for h in self.fleet.hosts:
            obs.Docker(h.tcp).remove_prefix([f"{PLATFORM}-", f"fleetpin-lock-{PLATFORM}-"])
        self.start_git_daemon()
        if s.reference:
            # What CI does on every push: the reference published to the registry.
            code, out, err, _, _, path = self.fleetpin("setup", seedrepo, ["publish"], "depot")
            if code != 0:
                raise RuntimeError(f"setup: publish exited {code}: {err[-1500:]}")
        # The push environments deployed once, so every service starts out serving.
        for env in ("recette", "prod"):
            code, out, err, _, _, path = self.fleetpin(
                "setup", self.clones["alice"],
                ["apply", env, "--yes", "--health-timeout", str(HEALTH_TIMEOUT)], env)
            if code != 0:
                raise RuntimeError(f"setup: apply {env} exited {code}: {err[-1500:]}")
        for env in s.pull_envs():
            self.start_agent(env)
        for env in s.pull_envs():
            if self.wait_agent_synced(env, self.remote_head(), 120) is None:
                raise RuntimeError(f"setup: the {env} agent did not sync in 120 s")

    def write_secret(self, repo, rng):
        value = "soak-secret-" + "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789")
                                         for _ in range(20))
        self.s.secret_values.append(value)
        with tempfile.TemporaryDirectory() as d:
            plain = os.path.join(d, "vault.env")
            with open(plain, "w") as f:
                f.write(f"VAULT_TOKEN={value}\n")
            env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
            p = run([self.s.sops, "--disable-version-check", "--encrypt", "--age", self.age_public,
                     "--input-type", "dotenv", "--output-type", "dotenv", plain], cwd=d, env=env,
                    check=True)
        with open(os.path.join(repo, "secrets", "vault.env"), "w") as f:
            f.write(p.stdout)
        return hashlib.sha256(value.encode()).hexdigest()[:12]

    def start_git_daemon(self):
        exec_path = run(["git", "--exec-path"], check=True).stdout.strip()
        base = os.path.dirname(self.s.remote)
        self.git_daemon = subprocess.Popen(
            [os.path.join(exec_path, "git-daemon"), "--reuseaddr", "--export-all",
             f"--listen={self.fleet.bridge}", f"--port={GIT_PORT}", f"--base-path={base}", base],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if obs.tcp_open(self.fleet.bridge, GIT_PORT):
                return
            time.sleep(0.1)
        raise RuntimeError("git daemon did not listen")

    def start_agent(self, env):
        h = self.s.envs[env]["hosts"][0]
        path = self.out_path("agent", f"agent-{env}")
        if self.s.envs[env]["pull"] == "oci":
            follow = ["--ref", f"oci://{self.s.reference}:main", "--insecure-registry"]
        else:
            follow = ["--repo", f"git://{self.fleet.bridge}:{GIT_PORT}/platform.git",
                      "--branch", "main"]
        cmd = ["ip", "netns", "exec", h.netns, self.s.fleetpin, "agent", *follow,
               "--env", env, "--host", h.name, "--endpoint", h.unix,
               "--interval", f"{AGENT_INTERVAL}s", "--health-timeout", str(HEALTH_TIMEOUT),
               "--cache-dir", os.path.join(self.work, f"agent-cache-{env}")]
        with self.agent_lock:
            f = open(path + ".log", "w")
            a = subprocess.Popen(cmd, env=self.fleetpin_env("agent"), stdout=f,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.agents[env] = a
            f.close()
        self.log.write({"event": "agent-started", "env": env, "pid": a.pid, "output": path + ".log"})

    def remote_head(self):
        return git(self.work, "--git-dir", self.s.remote, "rev-parse", "main", check=True).stdout.strip()

    def wait_agent_synced(self, env, commit, limit):
        h = self.s.envs[env]["hosts"][0]
        d = obs.Docker(h.tcp)
        deadline = now() + limit
        while now() < deadline:
            labels = d.labels(f"{PLATFORM}-{env}.agent")
            if labels and labels.get("io.fleetpin.agent.commit") == commit:
                return labels
            time.sleep(1)
        return None

    # ---- operators -----------------------------------------------------------------------

    def operator(self, actor):
        rng = random.Random(f"{self.seed}-{actor}")
        repo = self.clones[actor]
        clock_until = 0.0
        clock = 0
        repair_env = None
        while not self.stopping.is_set():
            self.pause_point(actor)
            if self.stopping.is_set():
                break

            def choose(r):
                d = {"sleep": round(r.uniform(0.5, 4.0), 2)}
                k = r.choices(["pin", "apply", "rollback", "promote", "edge", "secret"],
                              [30, 20, 16, 10, 14, 10])[0]
                d["op"] = k
                d["env"] = {"pin": "recette", "apply": r.choice(["recette", "prod"]),
                            "rollback": "recette", "promote": "prod",
                            "edge": r.choice(self.s.pull_envs()), "secret": "recette"}[k]
                svcs = ["web", "counter", "vault"] if k != "edge" else ["web", "counter"]
                d["service"] = r.choice(svcs)
                d["version"] = "broken" if r.random() < 0.12 and d["service"] != "vault" \
                    else r.choice(VERSIONS)
                d["secret_seed"] = r.randrange(1 << 30)
                return d

            try:
                d = self.decide(actor, rng, choose)
            except Stop:
                break
            time.sleep(d["sleep"])
            if self.stopping.is_set():
                break
            # An operator whose run was killed reruns (the documented repair); sometimes unlocks first.
            if repair_env is not None:
                if self.unlock_due.pop(actor, None) and rng.random() < 0.5:
                    self.op_unlock(actor, repo, repair_env, clock)
                d = {**d, "op": "apply", "env": repair_env, "repair": True}
                self.log.write({"event": "repair-run", "actor": actor, "env": repair_env})
                repair_env = None
            if self.state.clock_step.get(actor) and now() >= clock_until:
                # A clock step decided by the fault injector: this operator's next runs are off.
                clock = self.state.clock_step.pop(actor)
                clock_until = now() + 30
            elif now() >= clock_until:
                clock = 0
            try:
                killed_env = self.do(actor, repo, d, clock)
            except Exception as e:  # noqa: BLE001 - a driver error is logged, the soak goes on
                self.log.write({"event": "driver-error", "actor": actor, "error": repr(e),
                                "trace": traceback.format_exc()[-1500:]})
                killed_env = None
            if killed_env:
                repair_env = killed_env
        self.idle.setdefault(actor, threading.Event()).set()

    def pause_point(self, actor):
        ev = self.idle.setdefault(actor, threading.Event())
        while self.paused.is_set() and not self.stopping.is_set():
            ev.set()
            time.sleep(0.2)
        ev.clear()

    def sync(self, actor, repo):
        """`git pull --rebase`; a conflict is settled by taking the remote's side (the local
        commit's pin was already acted on, or is made again on top)."""
        p = git(repo, "pull", "-q", "--rebase", user=actor)
        if p.returncode != 0:
            git(repo, "rebase", "--abort", user=actor)
            git(repo, "fetch", "-q", "origin", user=actor)
            git(repo, "reset", "-q", "--hard", "@{u}", user=actor)
            self.log.write({"event": "rebase-conflict", "actor": actor,
                            "error": p.stderr.strip()[-300:]})
            self.figures.add("ops", "git rebase conflict settled")
            return False
        return True

    def push(self, actor, repo):
        """Pushes the local commits: on a rejection, fetch, rebase, retry (as documented)."""
        for attempt in range(8):
            p = git(repo, "push", "-q", user=actor)
            if p.returncode == 0:
                self.figures.add("ops", "git push ok" if attempt == 0 else "git push ok after retry")
                return True
            self.figures.add("ops", "git push rejected")
            if not self.sync(actor, repo):
                return False
            time.sleep(random.uniform(0.1, 0.5))
        return False

    def edit_pin(self, repo, env, svc, version):
        path = os.path.join(repo, "platform.yaml")
        text = open(path).read()
        new = set_pin(text, env, svc, version)
        if new == text:
            return False
        with open(path, "w") as f:
            f.write(new)
        return True

    def do(self, actor, repo, d, clock):
        """One operation; returns the environment of a run this soak SIGKILLed, if any."""
        op, env, svc, ver = d["op"], d["env"], d["service"], d["version"]
        ht = ["--health-timeout", str(HEALTH_TIMEOUT)]
        killed = None

        def fp(args, e=env):
            nonlocal killed
            code, out, err, was_killed, secs, path = self.fleetpin(actor, repo, args, e, clock)
            self.log.write({"event": "op", "actor": actor, "args": args, "exit": code,
                            "killed": was_killed, "secs": secs, "clock": clock,
                            "output": path, "tail": err.strip()[-240:]})
            if was_killed and args[0] != "publish":
                killed = e
                self.unlock_due[actor] = e
            return code, out, err

        self.sync(actor, repo)
        if op in ("pin", "edge"):
            for _ in range(4):
                if not self.edit_pin(repo, env, svc, ver):
                    break
                git(repo, "commit", "-q", "-am", f"soak: {env} {svc} -> {ver}", user=actor)
                if self.push(actor, repo):
                    break
            if op == "pin":
                fp(["apply", env, "--yes", "--lock-wait", "60s", *ht])
            elif self.s.envs[env]["pull"] == "oci":
                # What CI does after a push: publish the reference (its agent follows the tag).
                fp(["publish"])
        elif op == "apply":
            fp(["apply", env, "--yes", "--lock-wait", "60s", *ht])
        elif op == "rollback":
            code, out, err = fp(["rollback", env, "-s", svc, "--yes", *ht])
            if code == 1 and "rejected" in err:
                self.push(actor, repo)
        elif op == "promote":
            code, out, err = fp(["promote", "recette", "prod"], "prod")
            if code == 1 and "rejected" in err:
                self.push(actor, repo)
            if not killed:
                fp(["apply", "prod", "--yes", "--lock-wait", "60s", *ht])
        elif op == "secret":
            h = self.write_secret(repo, random.Random(d["secret_seed"]))
            git(repo, "commit", "-q", "-am", "soak: new vault token", user=actor)
            self.log.write({"event": "secret-changed", "actor": actor, "sha256_12": h})
            self.figures.add("ops", "secret changed")
            if self.push(actor, repo):
                fp(["apply", env, "--yes", "--lock-wait", "60s", *ht])
        return killed

    def op_unlock(self, actor, repo, env, clock):
        """`fleetpin unlock ENV`, after this operator's run was killed: only while no other run
        of that environment is alive (what the docs ask a person to check first)."""
        with self.procs_lock:
            busy = any(e == env for (_, e, _, _) in self.procs.values())
        if busy:
            return
        code, out, err, was_killed, secs, path = self.fleetpin(actor, repo, ["unlock", env], env, clock)
        self.log.write({"event": "op", "actor": actor, "args": ["unlock", env], "exit": code,
                        "secs": secs, "output": path, "tail": err.strip()[-240:]})

    # ---- faults --------------------------------------------------------------------------

    def fleet_sh(self, *args, env=None):
        p = run([os.path.join(REPO_ROOT, "tests", "fleet", "fleet.sh"), *args], timeout=180,
                env=dict(os.environ, **(env or {})))
        if p.returncode != 0:
            self.log.write({"event": "fleet.sh-error", "args": list(args), "err": p.stderr[-400:]})
        return p.returncode == 0

    def fault_kinds(self):
        kinds = ["kill-fleetpin", "kill-agent", "kill-host", "cut", "registry-stop",
                 "registry-slow", "clock-step"]
        if self.fleet.small_dataroot:
            kinds.append("disk-full")
        if self.args.faults:
            wanted = self.args.faults.split(",")
            # kill-engine only when asked for: see docs/reliability.md (the engine itself then
            # leaves old sandboxes answering for addresses it hands out again).
            unknown = set(wanted) - set(kinds) - {"kill-engine"}
            if unknown:
                raise SystemExit(f"--faults: unknown or unavailable {sorted(unknown)}; have {kinds}")
            kinds = [k for k in kinds + ["kill-engine"] if k in wanted]
        return kinds

    def injector(self):
        rng = random.Random(f"{self.seed}-faults")
        kinds = self.fault_kinds()
        bag = []
        busy = set()
        busy_lock = threading.Lock()
        threads = []
        while not self.stopping.is_set():
            self.pause_point("faults")
            if self.stopping.is_set():
                break

            def choose(r):
                # A shuffled bag of every kind: each kind as often as the others, at random times.
                if not bag:
                    bag.extend(r.sample(kinds, len(kinds)))
                return {"sleep": round(r.uniform(self.args.fault_gap / 2, self.args.fault_gap * 1.5), 2),
                        "fault": bag.pop(),
                        "host": r.choice([h.name for h in self.fleet.hosts[:3]]),
                        "hold": round(r.uniform(2, 12), 2), "pick": r.random(),
                        "offset": r.choice([-1, 1]) * r.randint(600, 86400 * 3)}

            try:
                d = self.decide("faults", rng, choose)
            except Stop:
                break
            end = now() + d["sleep"]
            while now() < end and not self.stopping.is_set() and not self.paused.is_set():
                time.sleep(0.1)
            if self.stopping.is_set() or self.paused.is_set():
                continue
            kind = d["fault"]
            target = {"kill-host": d["host"], "kill-engine": d["host"], "cut": d["host"],
                      "registry-stop": "registry",
                      "registry-slow": "registry", "disk-full": "disk"}.get(kind)
            with busy_lock:
                if target and target in busy:
                    self.log.write({"event": "fault-skipped", "fault": kind, "why": f"{target} busy"})
                    continue
                if target:
                    busy.add(target)

            def held(kind=kind, d=d, target=target):
                try:
                    self.fault(kind, d)
                finally:
                    with busy_lock:
                        busy.discard(target)

            if target:
                t = threading.Thread(target=held, daemon=True)
                t.start()
                threads.append(t)
            else:
                self.fault(kind, d)
            threads = [t for t in threads if t.is_alive()]
        for t in threads:
            t.join(timeout=120)
        self.idle.setdefault("faults", threading.Event()).set()

    def hold(self, secs):
        end = now() + secs
        while now() < end and not self.stopping.is_set() and not self.paused.is_set():
            time.sleep(0.1)

    def fault(self, kind, d):
        host = d["host"]
        if kind == "kill-fleetpin":
            live = []
            # Wait (a little) for a run in flight: a kill of nothing is no fault.
            for _ in range(100):
                with self.procs_lock:
                    live = sorted(((pid, a, e, c) for pid, (a, e, p, c) in self.procs.items()
                                   if p.poll() is None and a in ("alice", "bob")))
                if live or self.stopping.is_set() or self.paused.is_set():
                    break
                time.sleep(0.1 + d["pick"] / 5)
            if not live:
                self.log.write({"event": "fault-skipped", "fault": kind, "why": "no run in flight"})
                return
            pid, actor, env, cmd = live[int(d["pick"] * len(live))]
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            if cmd != "publish":  # a killed publish leaves no host to repair
                self.state.killed_run(env)
            self.record_fault(kind, {"pid": pid, "actor": actor, "env": env, "command": cmd})
        elif kind == "kill-agent":
            envs = self.s.pull_envs()
            env = envs[int(d["pick"] * len(envs))]
            with self.agent_lock:
                a = self.agents.get(env)
                if a is None or a.poll() is not None:
                    return
                a.kill()
                a.wait()
            self.state.killed_run(env)
            self.record_fault(kind, {"pid": a.pid, "env": env})
            self.hold(min(d["hold"], 5))
            self.start_agent(env)
        elif kind in ("kill-host", "kill-engine"):
            # kill-host: dockerd SIGKILLed, as a dockerd crash under systemd, where containerd
            # is a service of its own (Debian's and Docker's packages); kill-engine: dockerd,
            # its containerd and its docker-proxy processes at once.
            self.state.host_fault(host, True)
            self.record_fault(kind, {"host": host})
            self.fleet_sh("kill-host", host,
                          env={"FLEET_KILL_DOCKERD_ONLY": "1" if kind == "kill-host" else "0"})
            self.hold(d["hold"])
            self.fleet_sh("start-host", host)
            self.state.host_restarted(host, self.envs_on(host))
            self.state.host_fault(host, False)
            self.log.write({"event": "healed", "fault": kind, "host": host})
        elif kind == "cut":
            self.state.host_fault(host, True)
            self.record_fault(kind, {"host": host})
            self.fleet_sh("cut", host)
            self.hold(d["hold"])
            self.fleet_sh("restore", host)
            self.state.host_fault(host, False)
            self.log.write({"event": "healed", "fault": kind, "host": host})
        elif kind == "registry-stop":
            self.record_fault(kind, {})
            self.fleet_sh("stop-registry")
            self.hold(d["hold"])
            self.fleet_sh("start-registry")
            self.log.write({"event": "healed", "fault": kind})
        elif kind == "registry-slow":
            # This kernel has no netem: a token bucket on the registry's side of its link slows
            # every answer (a pull of a 1 MB layer takes seconds).
            ns = self.fleet.registry_netns
            self.record_fault(kind, {"rate": "400kbit"})
            run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
                 "rate", "400kbit", "burst", "8kb", "latency", "2s"])
            self.hold(d["hold"] * 2)
            run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root"])
            self.log.write({"event": "healed", "fault": kind})
        elif kind == "clock-step":
            actor = "alice" if d["pick"] < 0.5 else "bob"
            self.state.clock_step[actor] = d["offset"]
            self.record_fault(kind, {"actor": actor, "offset_s": d["offset"]})
        elif kind == "disk-full":
            h = self.fleet.small_dataroot
            path = os.path.join(self.fleet.small_dataroot_dir, "soak-fill")
            self.state.host_fault(h, True, disk=True)
            self.record_fault(kind, {"host": h})
            run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", "count=100000"], timeout=60)
            self.hold(d["hold"])
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            self.state.host_fault(h, False, disk=True)
            self.log.write({"event": "healed", "fault": kind, "host": h})

    def record_fault(self, kind, detail):
        self.figures.add("faults", kind)
        self.log.write({"event": "fault", "fault": kind, **detail})

    def envs_on(self, host):
        return [e for e, v in self.s.envs.items() if host in [h.name for h in v["hosts"]]]

    # ---- checkpoints -----------------------------------------------------------------------

    def pause_all(self):
        self.paused.set()
        for a in ("alice", "bob", "faults"):
            self.idle.setdefault(a, threading.Event())
        deadline = now() + 400
        for a in ("alice", "bob", "faults"):
            while not self.idle[a].is_set() and now() < deadline:
                time.sleep(0.2)
        # Heal anything a fault left (a fault thread stops holding when paused).
        time.sleep(1)
        while self.state.any_host_fault() and now() < deadline:
            time.sleep(0.2)

    def checkpoint(self, final=False):
        self.log.write({"event": "checkpoint-start", "final": final})
        self.pause_all()
        self.state.quiet = True
        self.figures.checkpoints += 1
        ck = obs.Checkpoint(self, self.violation, self.figures)
        try:
            ck.run()
        except Exception as e:  # noqa: BLE001
            self.violation("checkpoint-error", f"{e!r}: {traceback.format_exc()[-1200:]}")
        self.log.write({"event": "checkpoint-end", "final": final})
        self.state.quiet = False
        self.state.reset_after_checkpoint()
        if not final:
            self.paused.clear()

    # ---- main ----------------------------------------------------------------------------

    def main(self):
        t_start = now()
        self.observer = obs.Observer(self, self.violation, self.figures)
        try:
            self.setup()
        except Exception as e:  # noqa: BLE001
            self.violation("setup", f"{e!r}: {traceback.format_exc()[-1200:]}")
            self.finish(t_start)
            return 1
        ot = threading.Thread(target=self.observer.loop, daemon=True)
        ot.start()
        actors = [threading.Thread(target=self.operator, args=(a,), daemon=True)
                  for a in ("alice", "bob")]
        actors.append(threading.Thread(target=self.injector, daemon=True))
        for t in actors:
            t.start()
        end = t_start + self.args.duration
        next_ck = now() + self.args.checkpoint_every
        while now() < end:
            time.sleep(0.5)
            if now() >= next_ck and end - now() > 60:
                self.checkpoint()
                next_ck = now() + self.args.checkpoint_every
        self.checkpoint(final=True)
        self.stopping.set()
        for t in actors:
            t.join(timeout=60)
        self.observer.stop = True
        ot.join(timeout=10)
        self.finish(t_start)
        return 1 if self.figures.violations else 0

    def finish(self, t_start):
        self.stopping.set()
        with self.agent_lock:
            for a in self.agents.values():
                if a.poll() is None:
                    a.terminate()
            for a in self.agents.values():
                try:
                    a.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    a.kill()
        if self.git_daemon:
            self.git_daemon.kill()
            self.git_daemon.wait()
        f = self.figures
        doc = {"seed": self.seed, "duration_s": round(now() - t_start, 1),
               "operations": sum(v for k, v in f.ops.items() if k.split()[0] in
                                 ("apply", "rollback", "promote", "unlock", "publish")),
               "operations_by_kind": dict(sorted(f.ops.items())),
               "faults": sum(f.faults.values()), "faults_by_kind": dict(sorted(f.faults.items())),
               "checks": dict(sorted(f.checks.items())), "checks_total": sum(f.checks.values()),
               "checkpoints": f.checkpoints, "violations": f.violations,
               "log": os.path.abspath(self.args.log), "work": self.work}
        with open(self.args.out, "w") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
        self.log.write({"event": "end", "violations": len(f.violations)})
        print(json.dumps({k: v for k, v in doc.items() if k != "violations"}, sort_keys=True),
              file=sys.stderr)
        print(f"soak: seed {self.seed}: {len(f.violations)} violation(s)", file=sys.stderr)
        if not self.args.keep and not f.violations:
            shutil.rmtree(self.work, ignore_errors=True)


def set_pin(text, env, svc, version):
    """The manifest with `env`'s pin of `svc` set to `version` (the rest byte for byte)."""
    lines = text.split("\n")
    in_env = in_versions = False
    for i, ln in enumerate(lines):
        if re.match(r"^  [a-z][a-z0-9]*:\s*$", ln):
            in_env = ln.strip() == f"{env}:"
            in_versions = False
        elif in_env and re.match(r"^    versions:\s*$", ln):
            in_versions = True
        elif in_env and re.match(r"^    \S", ln):
            in_versions = False
        elif in_env and in_versions and re.match(rf"^      {svc}:", ln):
            lines[i] = f'      {svc}: "{version}"'
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=300, help="seconds (default 300)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log", default="soak-log.jsonl", help="the operation log (JSON lines)")
    ap.add_argument("--out", default="soak-figures.json", help="the figures (JSON)")
    ap.add_argument("--replay", help="take every decision from this operation log")
    ap.add_argument("--checkpoint-every", type=float, default=150, help="seconds (default 150)")
    ap.add_argument("--fault-gap", type=float, default=8, help="mean seconds between faults")
    ap.add_argument("--fleetpin", default=os.environ.get("FLEETPIN_BIN") or os.path.join(
        REPO_ROOT, "target", "release", "fleetpin"))
    ap.add_argument("--sops", default=os.environ.get("FLEETPIN_TEST_SOPS") or shutil.which("sops"))
    ap.add_argument("--age-keygen", default=os.environ.get("FLEETPIN_TEST_AGE_KEYGEN")
                    or shutil.which("age-keygen"))
    ap.add_argument("--faults", help="only these fault kinds, comma-separated (default: all: "
                    "kill-fleetpin, kill-agent, kill-host, cut, registry-stop, registry-slow, "
                    "clock-step, disk-full; kill-engine only when named)")
    ap.add_argument("--no-oci", dest="oci", action="store_false",
                    help="leave out the agent environment that follows the registry (oci://)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    missing = [n for n, p in (("fleetpin", args.fleetpin), ("sops", args.sops),
                              ("age-keygen", args.age_keygen), ("faketime", shutil.which("faketime")),
                              ("tc", shutil.which("tc"))) if not p or not os.access(p, os.X_OK)]
    if missing:
        print(f"soak: missing {', '.join(missing)} (see docs/reliability.md)", file=sys.stderr)
        return 2
    try:
        fleet = obs.Fleet.load()
    except obs.FleetDown as e:
        print(f"soak: the fleet is not reachable: {e}; run it under tests/fleet/fleet.sh run",
              file=sys.stderr)
        return 2
    if not fleet.small_dataroot:
        print("soak: WARNING: no host has a small data-root (start the fleet with "
              "FLEET_SMALL_DATAROOT=h2:1g): the disk-full fault is left out", file=sys.stderr)
    return Driver(args, fleet).main()


if __name__ == "__main__":
    sys.exit(main())
