#!/usr/bin/env python3
"""Writes the fleetpin manifest of the simulated fleet (engines.py): N hosts x S services, every
pin "1.0.0", and, with --spec-hashes, the spec hash fleetpin computes for each service, which
engines.py puts on its containers so that `fleetpin plan` finds them unchanged.

The spec hash is fleetpin's own (src/manifest/resolve.rs), so it is not recomputed here: the real
binary is asked once, with `plan --format json` on the same services against one stub engine with
no containers, where every change is a `create` carrying its `spec_hash`. The hash covers the
container name, image, pin, env, networks... but not the host, so one host gives every host's
(scale.sh checks that plan then says "unchanged" for all N x S).

    manifest.py --hosts 1000 -o sim.yaml --spec-hashes hashes.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def manifest(a, hosts, base):
    services = [f"svc{s:02d}" for s in range(1, a.services + 1)]
    out = [f"# The simulated fleet of benches/sim (manifest.py): {hosts} hosts x {a.services} services.",
           f"platform: {a.platform}", "services:"]
    out += [f'  {s}: {{image: "{a.repo.format(svc=s)}"}}' for s in services]
    out += ["environments:", f"  {a.env}:", "    hosts:"]
    out += [f'      h{i + 1:04d}: {{endpoint: "tcp://127.0.0.1:{base + i}", insecure: true}}'
            for i in range(hosts)]
    out += ["    versions:"] + [f'      {s}: "{a.version}"' for s in services]
    return "\n".join(out) + "\n"


def spec_hashes(a):
    """{service: spec hash}, from `fleetpin plan --format json` against one empty stub engine."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "one-host.yaml")
        with open(path, "w") as f:
            f.write(manifest(a, 1, a.stub_port))
        stub = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "engines.py"), "--hosts", "1", "--services", "0",
             "--base", str(a.stub_port), "--control-port", "0", "--latency-ms", "0"],
            stdout=subprocess.PIPE, text=True)
        try:
            if not stub.stdout.readline().startswith("ready"):
                sys.exit("manifest.py: the stub engine did not start")
            run = subprocess.run([a.bin, "-q", "-f", path, "plan", a.env, "--format", "json"],
                                 capture_output=True, text=True)
        finally:
            stub.terminate()
            stub.wait()
    if run.returncode != 0:
        sys.exit(f"manifest.py: fleetpin plan failed ({run.returncode}): {run.stderr.strip()}")
    changes = json.loads(run.stdout)["hosts"][0]["changes"]
    hashes = {c["service"]: c["spec_hash"] for c in changes if c.get("spec_hash")}
    if len(hashes) != a.services:
        sys.exit(f"manifest.py: expected {a.services} spec hashes, got {len(hashes)}")
    return hashes


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--base", type=int, default=20000, help="port of host h0001's engine")
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--platform", default="sim")
    p.add_argument("--env", default="prod")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--repo", default="registry.sim.invalid:5000/sim/{svc}",
                   help="image repository; {svc} is replaced by the service name (as engines.py)")
    p.add_argument("-o", "--out", required=True, help="the manifest to write")
    p.add_argument("--spec-hashes", help="also write {service: spec hash} here, for engines.py")
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/fleetpin"))
    p.add_argument("--stub-port", type=int, default=19998, help="loopback port of the stub engine")
    a = p.parse_args()
    with open(a.out, "w") as f:
        f.write(manifest(a, a.hosts, a.base))
    if a.spec_hashes:
        with open(a.spec_hashes, "w") as f:
            json.dump(spec_hashes(a), f, indent=1)
            f.write("\n")
