#!/usr/bin/env python3
"""The console's pages in a real headless Chromium, driven through WebDriver (selenium and
Debian's chromium-driver), against `fleetpin serve` on the test fleet. Run by
tests/fleet_console.rs, which brings up the fleet scenario, the OpenID provider and the server,
and passes what to expect in the environment:

  CONSOLE_URL     the server (http://127.0.0.1:PORT)
  AUDIT_JSON      a file holding `fleetpin audit --format json` taken just before
  DRIFT_CMD       a shell command that changes a container by hand (the matrix must show it)
  DRIFT_CELL      env/service of the cell that must leave `ok` after DRIFT_CMD
  ROLLBACK_CELL   env/service the signed-in deployer rolls back from the page
  AXE_JS          axe-core's axe.min.js (npm), run in the page
  SHOTS_DIR       optional: where to write screenshots (laptop and phone sizes)

Steps: alice (deploy) signs in through the provider's form; the matrix agrees with the audit;
axe-core finds no serious or critical violation; a container changed by hand shows as drift
within the refresh interval; a rollback from the page ends with its outcome and commit; alice
signs out; carol (view) signs in and sees no action. Prints one JSON line with what happened
(the commit id, timings) for the Rust side to check. Exit status 0 when every step held.
"""

import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["CONSOLE_URL"].rstrip("/")
SHOTS = os.environ.get("SHOTS_DIR")
LAPTOP = (1366, 768)
PHONE = (390, 844)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--no-proxy-server", f"--window-size={LAPTOP[0]},{LAPTOP[1]}"):
        opts.add_argument(a)
    svc = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(service=svc, options=opts)
    d.set_page_load_timeout(60)
    return d


def wait(d, secs, cond, what):
    # The matrix is drawn again on every poll: an element found one instant may be replaced
    # the next, and reading it then raises StaleElementReferenceException. That is a reason
    # to look again, not a failure (CI met it once: the cell showed "stopped" as expected).
    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(d, secs, poll_frequency=0.2, ignored_exceptions=ignored).until(cond)
    except Exception as e:
        shot(d, "failure-" + what.replace(" ", "-"))
        fail(f"{what} (within {secs}s: {type(e).__name__}); page: {d.current_url}\n"
             f"{d.find_element(By.TAG_NAME, 'body').text[:2000]}")


def shot(d, name, size=None):
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    if size:
        d.set_window_size(*size)
        time.sleep(0.5)
    d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def ready(d):
    return d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"


def sign_in(d, user):
    d.get(URL + "/")
    link = wait(d, 30, EC.element_to_be_clickable((By.ID, "signin-oidc")), "the sign-in view")
    link.click()
    field = wait(d, 30, EC.presence_of_element_located((By.NAME, "login")), "the provider's form")
    field.send_keys(user)
    field.submit()
    wait(d, 60, lambda d: ready(d), f"the matrix after {user} signed in")
    who = d.find_element(By.ID, "who").text
    if user not in who:
        fail(f"#who says {who!r} for {user}")


def sign_out(d):
    d.find_element(By.ID, "signout").click()
    wait(d, 30, EC.presence_of_element_located((By.ID, "signin-oidc")), "the sign-in view after sign-out")
    # The session is over on the server too: the API answers 401 with the old cookie.
    status = d.execute_script(
        "return fetch('/api/v1/whoami', {credentials: 'same-origin'}).then(r => r.status)")
    if status != 401:
        fail(f"whoami after sign-out answered {status}")


def cell(d, env, service):
    return d.find_element(By.CSS_SELECTOR, f'td.cell[data-env="{env}"][data-service="{service}"]')


def expected_cells(audit):
    """env/service -> (worst status, versions) from the audit document."""
    cells = {}
    for r in audit.get("rows", []):
        if r["status"] == "orphan":  # not pinned there: no cell of the matrix
            continue
        key = (r["environment"], r["service"])
        cells.setdefault(key, {"status": set(), "versions": set()})
        cells[key]["status"].add(r["status"])
        if r.get("running"):
            cells[key]["versions"].add(r["running"])
    return cells


def check_matrix(d, audit):
    cells = expected_cells(audit)
    if not cells:
        fail(f"the audit has no rows: {json.dumps(audit)[:500]}")
    # One snapshot of every cell, read in the page at once: the matrix may be drawn again
    # between two WebDriver calls.
    seen = d.execute_script(
        "return Array.from(document.querySelectorAll('td.cell')).map(c =>"
        " [c.dataset.env, c.dataset.service, c.dataset.status, c.dataset.version || ''])")
    first = {}
    for e, s, st, v in seen:  # the environment's row comes before any per-host row
        first.setdefault((e, s), (st, v))
    seen = first
    for (env, service), want in cells.items():
        if (env, service) not in seen:
            fail(f"{env}/{service}: no cell in the matrix (cells: {sorted(seen)[:20]})")
        status, version = seen[(env, service)]
        if len(want["status"]) == 1 and status not in want["status"]:
            fail(f"{env}/{service}: the matrix says {status}, the audit {want['status']}")
        if want["status"] != {"ok"} and status == "ok":
            fail(f"{env}/{service}: the matrix says ok, the audit {want['status']}")
        shown = set(v for v in version.split(",") if v)
        if shown != want["versions"]:
            fail(f"{env}/{service}: the matrix shows versions {shown}, the audit {want['versions']}")
    return len(cells)


def axe(d, where):
    src = open(os.environ["AXE_JS"]).read()
    d.execute_script(src)
    res = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));")
    bad = [v for v in res if v.get("impact") in ("serious", "critical")]
    if bad:
        fail(f"axe-core on {where}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n.get('target') for n in v.get('nodes', [])][:3]}"
            for v in bad))
    return len(res)


def main():
    audit = json.load(open(os.environ["AUDIT_JSON"]))
    drift_env, drift_service = os.environ["DRIFT_CELL"].split("/")
    rb_env, rb_service = os.environ["ROLLBACK_CELL"].split("/")
    out = {}
    d = driver()
    try:
        # A browser with no session: the sign-in view, no data.
        d.get(URL + "/")
        wait(d, 30, EC.presence_of_element_located((By.ID, "signin-oidc")), "the sign-in view")
        if d.find_elements(By.CSS_SELECTOR, "td.cell"):
            fail("matrix cells shown without a session")

        started = time.monotonic()
        sign_in(d, "alice")
        out["signed_in_s"] = round(time.monotonic() - started, 2)
        out["cells"] = check_matrix(d, audit)
        out["axe_matrix_minor"] = axe(d, "the matrix")
        shot(d, "matrix-laptop", LAPTOP)
        shot(d, "matrix-phone", PHONE)
        d.set_window_size(*LAPTOP)

        # A container changed by hand: drift within the refresh interval (the fleet is read at
        # most every 15 s, the page polls every few seconds).
        subprocess.run(os.environ["DRIFT_CMD"], shell=True, check=True)
        changed = time.monotonic()
        wait(d, 45, lambda d: cell(d, drift_env, drift_service).get_attribute("data-status") != "ok",
             f"{drift_env}/{drift_service} showing the hand-made change")
        out["drift_shown_s"] = round(time.monotonic() - changed, 1)

        # The service page.
        d.get(f"{URL}/#/service/{rb_env}/{rb_service}")
        wait(d, 30, EC.presence_of_element_located((By.CSS_SELECTOR, "table#containers tr[data-host]")),
             "the service page's containers")
        out["axe_service_minor"] = axe(d, "the service page")
        shot(d, "service-laptop", LAPTOP)
        shot(d, "service-phone", PHONE)
        d.set_window_size(*LAPTOP)

        # Rollback from the matrix: plan shown, confirmed, followed to its outcome.
        d.get(URL + "/")
        wait(d, 30, lambda d: ready(d), "the matrix again")
        button = wait(d, 30, EC.element_to_be_clickable(
            (By.CSS_SELECTOR, f'button[data-action="rollback"][data-env="{rb_env}"][data-service="{rb_service}"]')),
            "the rollback button")
        button.click()
        wait(d, 30, EC.visibility_of_element_located((By.ID, "confirm")), "the confirmation dialog")
        wait(d, 30, lambda d: d.find_element(By.ID, "confirm-plan").text.strip() != "", "what the rollback will do")
        out["axe_confirm_minor"] = axe(d, "the confirmation dialog")
        shot(d, "confirm-laptop", LAPTOP)
        shot(d, "confirm-phone", PHONE)
        d.set_window_size(*LAPTOP)
        d.find_element(By.ID, "confirm-go").click()
        outcome = wait(d, 180, EC.presence_of_element_located((By.CSS_SELECTOR, "#op-outcome[data-ok]")),
                       "the rollback's outcome")
        if outcome.get_attribute("data-ok") != "true":
            fail(f"the rollback failed: {outcome.text}\n{d.find_element(By.ID, 'op-events').text}")
        commits = d.find_elements(By.ID, "op-commit")
        if not commits:
            fail("the outcome names no commit")
        out["commit"] = commits[0].text.strip()
        sign_out(d)
    finally:
        d.quit()
    # A view person, in a browser of their own (the provider still knows alice in the first).
    d = driver()
    try:
        sign_in(d, "carol")
        actions = d.find_elements(By.CSS_SELECTOR, "button[data-action]")
        if actions:
            fail(f"a view person sees {len(actions)} action buttons")
        d.get(f"{URL}/#/service/{rb_env}/{rb_service}")
        wait(d, 30, EC.presence_of_element_located((By.CSS_SELECTOR, "table#containers tr[data-host]")),
             "the service page for carol")
        if d.find_elements(By.CSS_SELECTOR, "button[data-action]"):
            fail("a view person sees an action on the service page")
    finally:
        d.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
