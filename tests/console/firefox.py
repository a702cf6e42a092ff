#!/usr/bin/env python3
"""The console's pages in a real headless Firefox ESR, against `fleetpin serve` on the test fleet:
the console must work in current Chromium (browser.py) and in Firefox ESR. Firefox is driven
over Marionette, the remote protocol built into it (length-prefixed JSON on a TCP port), by the
small client below: geckodriver, which selenium would need, is not packaged by Debian, and
Marionette needs nothing but the browser. Run by tests/fleet_console.rs after the Chromium run,
with the environment that run had (CONSOLE_URL, AUDIT_CMD; FIREFOX optionally names the binary).

Steps: a fresh profile shows the sign-in view and no cell; alice signs in through the OpenID
provider's form; the matrix agrees with `fleetpin audit --format json` cell by cell and host by
host (matrix.py, the same comparison as the Chromium test); the service page's containers agree
with the audit's rows of that cell and show each host's gate as passed.

  firefox.py [--screenshot PATH] [--service ENV/SERVICE]

--screenshot writes the matrix at laptop size (a 1366 x 768 viewport) as PNG. Prints one JSON
line of timings. Exit status 0 when every step held.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import matrix

URL = os.environ["CONSOLE_URL"].rstrip("/")
LAPTOP = (1366, 768)
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the WebDriver element reference's key

# A profile that talks to nothing but the console: no first-run pages, updates, telemetry or
# remote settings, and no proxy. marionette.port 0 makes Firefox pick a free port and write it
# to MarionetteActivePort in the profile.
PREFS = {
    "marionette.port": 0,
    "network.proxy.type": 0,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "startup.homepage_welcome_url": "about:blank",
    "app.update.disabledForTesting": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "services.settings.server": "http://127.0.0.1:1/",
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
}


class Failed(Exception):
    pass


class Marionette:
    """Firefox with a fresh profile, and a WebDriver session over its Marionette socket."""

    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="fleetpin-firefox-")
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for k, v in PREFS.items():
                f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")
        self.log = open(os.path.join(self.profile, "firefox.log"), "w+")
        env = dict(os.environ, MOZ_HEADLESS="1")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--marionette", "--no-remote", "--profile", self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.sock = None
        self.next_id = 0
        port_file = os.path.join(self.profile, "MarionetteActivePort")
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"firefox exited ({self.proc.returncode}): {self.log_text()}")
            try:
                port = int(open(port_file).read().strip())
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise Failed(f"firefox opened no Marionette port within 60 s: {self.log_text()}")
                time.sleep(0.2)
        self.reader = self.sock.makefile("rb")
        hello = self.read()
        if hello.get("applicationType") != "gecko":
            raise Failed(f"not Marionette: {hello}")
        # Marionette takes the capabilities themselves as the command's parameters.
        caps = self.cmd("WebDriver:NewSession", {
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 60000, "script": 30000, "implicit": 0},
        })["capabilities"]
        self.version = caps.get("browserVersion", "")

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def read(self):
        size = b""
        while True:
            c = self.reader.read(1)
            if not c:
                raise Failed("firefox closed the Marionette connection")
            if c == b":":
                break
            size += c
        return json.loads(self.reader.read(int(size)))

    def cmd(self, name, params=None):
        self.next_id += 1
        body = json.dumps([0, self.next_id, name, params or {}]).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body)
        while True:
            kind, mid, error, result = self.read()
            if kind == 1 and mid == self.next_id:
                break
        if error:
            raise Failed(f"{name}: {error.get('error')}: {error.get('message')}")
        return result

    def js(self, script, *args):
        return self.cmd("WebDriver:ExecuteScript", {"script": script, "args": list(args)})["value"]

    def get(self, url):
        self.cmd("WebDriver:Navigate", {"url": url})

    def find(self, css):
        return self.cmd("WebDriver:FindElements", {"using": "css selector", "value": css})

    def click(self, elem):
        self.cmd("WebDriver:ElementClick", {"id": elem[ELEMENT]})

    def type(self, elem, text):
        self.cmd("WebDriver:ElementSendKeys", {"id": elem[ELEMENT], "text": text})

    def url(self):
        return self.cmd("WebDriver:GetCurrentURL")["value"]

    def viewport(self, width, height):
        """Sizes the window so the page's viewport is width x height (the toolbars left out)."""
        self.cmd("WebDriver:SetWindowRect", {"width": width, "height": height})
        inner = self.js("return [window.innerWidth, window.innerHeight]")
        self.cmd("WebDriver:SetWindowRect", {"width": 2 * width - inner[0], "height": 2 * height - inner[1]})
        inner = self.js("return [window.innerWidth, window.innerHeight]")
        if inner != [width, height]:
            raise Failed(f"the viewport is {inner}, not {[width, height]}")

    def screenshot(self, path):
        png = base64.b64decode(self.cmd("WebDriver:TakeScreenshot", {"full": False})["value"])
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)

    def quit(self):
        try:
            if self.sock:
                self.cmd("Marionette:Quit", {"flags": ["eForceQuit"]})
        except (Failed, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def wait_for(ff):
    """Polls cond until it gives a truthy value; fails with the page's text after secs."""
    def wait(secs, cond, what):
        deadline = time.monotonic() + secs
        last = None
        while time.monotonic() < deadline:
            try:
                got = cond()
                if got:
                    return got
            except Failed as e:  # an element drawn anew between two calls: look again
                last = e
            time.sleep(0.2)
        body = ff.js("return document.body ? document.body.innerText : ''") or ""
        raise Failed(f"{what} (within {secs}s{'; ' + str(last) if last else ''}); page: {ff.url()}\n{body[:2000]}")
    return wait


def run_audit():
    done = subprocess.run(os.environ["AUDIT_CMD"], shell=True, capture_output=True, text=True)
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise Failed(f"the audit printed no JSON (exit {done.returncode}): {done.stdout[:500]} {done.stderr[:1000]}")


def settled_audit():
    """The audit once no container's health check is still starting."""
    audit = run_audit()
    deadline = time.monotonic() + 60
    while any(r.get("health") == "starting" for r in audit.get("rows", [])) and time.monotonic() < deadline:
        time.sleep(2)
        audit = run_audit()
    return audit


def ready(ff):
    return ff.js("return document.body.getAttribute('data-ready')") == "true"


def sign_in(ff, wait, user):
    ff.get(URL + "/")
    link = wait(30, lambda: ff.find("#signin-oidc"), "the sign-in view")[0]
    ff.click(link)
    field = wait(30, lambda: ff.find("input[name=login]"), "the provider's form")[0]
    ff.type(field, user)
    ff.click(wait(10, lambda: ff.find("form button"), "the provider's button")[0])
    wait(60, lambda: ready(ff), f"the matrix after {user} signed in")
    who = ff.js("return document.getElementById('who').textContent")
    if user not in who:
        raise Failed(f"#who says {who!r} for {user}")


def agree(wait, what, problems_now):
    """Waits (45 s) until problems_now() finds nothing; fails with what it found last."""
    last = []

    def ok():
        last[:] = problems_now()
        return not last
    try:
        wait(45, ok, what)
    except Failed:
        raise Failed(f"{what}: " + "; ".join(last))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--screenshot", help="where to write the matrix at laptop size (PNG)")
    ap.add_argument("--service", default="test/web", help="ENV/SERVICE whose page is checked")
    args = ap.parse_args()
    env, service = args.service.split("/")
    out = {}
    started = time.monotonic()
    ff = Marionette(os.environ.get("FIREFOX", "/usr/bin/firefox-esr"))
    try:
        out["firefox"] = ff.version
        out["started_s"] = round(time.monotonic() - started, 2)
        wait = wait_for(ff)
        ff.viewport(*LAPTOP)

        # A browser with no session: the sign-in view, no data.
        ff.get(URL + "/")
        wait(30, lambda: ff.find("#signin-oidc"), "the sign-in view")
        if ff.find("td.cell"):
            raise Failed("matrix cells shown without a session")

        t = time.monotonic()
        sign_in(ff, wait, "alice")
        out["signed_in_s"] = round(time.monotonic() - t, 2)

        # The matrix, cell by cell and host by host, against the audit of now (the Chromium run
        # before this one changed the fleet: a drift and a rollback).
        t = time.monotonic()
        audit = settled_audit()
        agree(wait, "the matrix and the audit differ",
              lambda: matrix.matrix_problems(ff.js, wait, audit))
        out["cells"] = len(matrix.expected_cells(audit))
        out["matrix_s"] = round(time.monotonic() - t, 2)
        if args.screenshot:
            ff.js("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
            time.sleep(0.3)
            ff.screenshot(args.screenshot)

        # A service page: its containers are the audit's rows of that cell; each gate passed.
        t = time.monotonic()
        ff.get(f"{URL}/#/service/{env}/{service}")
        wait(30, lambda: ff.find("table#containers tr[data-host]"), "the service page's containers")
        agree(wait, "the service page and the audit differ",
              lambda: matrix.service_problems(ff.js, audit, env, service))
        hosts = [r[0] for r in ff.js(matrix.SERVICE_ROWS_JS)]
        for h in hosts:
            wait(30, lambda: ff.js(
                "const c = document.querySelector(arguments[0]); return c && c.dataset.gate",
                f'table#containers tr[data-host="{h}"] td[data-gate]') == "passed",
                f"the gate of {service} on {h} shown as passed")
        out["service_hosts"] = len(hosts)
        out["service_s"] = round(time.monotonic() - t, 2)
    except Failed as e:
        print(f"FAIL (Firefox {ff.version}): {e}", file=sys.stderr)
        if args.screenshot:
            try:
                ff.screenshot(os.path.splitext(args.screenshot)[0] + "-failure.png")
            except (Failed, OSError):
                pass
        ff.quit()
        sys.exit(1)
    ff.quit()
    out["total_s"] = round(time.monotonic() - started, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
