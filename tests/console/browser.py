#!/usr/bin/env python3
"""The console's pages in a real headless Chromium, driven through WebDriver (selenium and
Debian's chromium-driver), against `fleetpin serve` on the test fleet. Run by
tests/fleet_console.rs, which brings up the fleet scenario, the OpenID provider and the server,
and passes what to expect in the environment:

  CONSOLE_URL     the server (http://127.0.0.1:PORT)
  AUDIT_JSON      a file holding `fleetpin audit --format json` taken just before
  DRIFT_CMD       a shell command that changes a container by hand (the matrix must show it)
  AUDIT_CMD       a shell command printing `fleetpin audit --format json` now
  DRIFT_CELL      env/service of the cell DRIFT_CMD makes drift (the audit's status and kind)
  ROLLBACK_CELL   env/service the signed-in deployer rolls back from the page
  ROLLBACK_PLAN   what its confirmation must say a host goes to before Go (`h1: 1.1.0 → 1.0.0`)
  AXE_JS          axe-core's axe.min.js (npm), run in the page
  SHOTS_DIR       optional: where to write screenshots (laptop and phone sizes)
  CONSOLE_TEST_ALL  optional: 1 to go on after a failed step and list every failure at the end

Steps: alice (deploy) signs in through the provider's form; the matrix agrees with the audit,
cell by cell and host by host; axe-core finds no serious or critical violation (laptop and
phone); a container changed by hand shows as the audit's drift, and its kind, within the
refresh interval; the service page shows the gate and the retained release; a rollback from the
page ends with its outcome and commit, whose link opens the history on that commit's row; the
row's diff shows the pin line it changed; alice signs out; carol (view) signs in and sees no
action. Prints one JSON line with what happened (the commit id, timings) for the Rust side to
check. Exit status 0 when every step held.
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

# The comparison with the audit, shared with the Firefox test (firefox.py).
import matrix
from matrix import drift_kind, expected_cells, worst

URL = os.environ["CONSOLE_URL"].rstrip("/")
SHOTS = os.environ.get("SHOTS_DIR")
LAPTOP = (1366, 768)
PHONE = (390, 844)
ALL = os.environ.get("CONSOLE_TEST_ALL") == "1"
FAILURES = []


class StepFailed(Exception):
    pass


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    if ALL:
        raise StepFailed(msg)
    sys.exit(1)


def step(name, fn, *args):
    """Runs one step; with CONSOLE_TEST_ALL a failure is noted and the next step runs."""
    if not ALL:
        return fn(*args)
    try:
        return fn(*args)
    except StepFailed as e:
        FAILURES.append(f"{name}: {e}")
    except Exception as e:  # a step that could not even run counts as failed
        FAILURES.append(f"{name}: {type(e).__name__}: {e}")
    return None


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


def click(d, secs, css, what):
    """Clicks the element `css` names, found again if the page drew it anew in between (the
    matrix is drawn again whenever the fleet's reading changes)."""
    def clicked(d):
        e = d.find_element(By.CSS_SELECTOR, css)
        if not (e.is_displayed() and e.is_enabled()):
            return False
        e.click()
        return True
    wait(d, secs, clicked, what)


def phone(d):
    """The viewport of a 390 x 844 phone (the window's frame left out), as a phone reports it."""
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True})
    time.sleep(0.5)
    width = d.execute_script("return window.innerWidth")
    if width != PHONE[0]:
        fail(f"the phone viewport is {width} px wide")


def laptop(d):
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    d.set_window_size(*LAPTOP)
    time.sleep(0.3)


def shot(d, name, size=None):
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    if size == PHONE:
        phone(d)
    elif size:
        laptop(d)
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


def wait_for(d):
    """matrix.py's waiting, through selenium's."""
    return lambda secs, cond, what: wait(d, secs, lambda d: cond(), what)


def page_cells(d):
    return matrix.page_cells(d.execute_script)


def host_rows(d, env, service):
    return matrix.host_rows(d.execute_script, wait_for(d), env, service)


def matrix_problems(d, audit):
    return matrix.matrix_problems(d.execute_script, wait_for(d), audit)


def check_matrix(d, audit):
    problems = matrix_problems(d, audit)
    if problems:
        fail("; ".join(problems))
    return len(expected_cells(audit))


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


def axe_both(d, where, out, key):
    """axe-core at laptop size, then at phone size (the layout changes under 600 px)."""
    out[key + "_minor"] = axe(d, where)
    phone(d)
    out[key + "_phone_minor"] = axe(d, where + " at phone size")
    laptop(d)


def run_audit():
    done = subprocess.run(os.environ["AUDIT_CMD"], shell=True, capture_output=True, text=True)
    try:
        return json.loads(done.stdout)
    except ValueError:
        fail(f"the audit printed no JSON (exit {done.returncode}): {done.stdout[:500]} {done.stderr[:1000]}")


def drift_step(d, out, drift_env, drift_service):
    # A container changed by hand: the audit's drift, of its kind, within the refresh interval
    # (the fleet is read at most every 15 s, the page polls every few seconds).
    subprocess.run(os.environ["DRIFT_CMD"], shell=True, check=True)
    changed = time.monotonic()
    audit = run_audit()
    rows = expected_cells(audit).get((drift_env, drift_service), [])
    if not rows:
        fail(f"the audit after the change has no row for {drift_env}/{drift_service}")
    want = worst([r["status"] for r in rows])
    if want != "drift":
        fail(f"the change by hand is not a drift for the audit: {rows}")
    kinds = sorted(set(drift_kind(r) for r in rows) - {""})
    want_text = f"{want} ({', '.join(kinds)})" if kinds else want
    out["drift_expected"] = want_text

    def shown(d):
        st, _, text = page_cells(d).get((drift_env, drift_service), ("", "", ""))
        return st == want and text.endswith(" " + want_text)
    wait(d, 45, shown, f"{drift_env}/{drift_service} showing the audit's {want_text}")
    out["drift_shown_s"] = round(time.monotonic() - changed, 1)
    # The whole matrix agrees with the audit after the change too, once the new container's
    # health check has settled (`starting` at first; the page may have read it later).
    deadline = time.monotonic() + 60
    while any(r.get("health") == "starting" for r in audit.get("rows", [])) and time.monotonic() < deadline:
        time.sleep(2)
        audit = run_audit()
    last = []

    def agrees(d):
        last[:] = matrix_problems(d, audit)
        return not last
    try:
        WebDriverWait(d, 45, poll_frequency=1,
                      ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(agrees)
    except Exception:
        fail("after the change, the matrix and the audit differ: " + "; ".join(last))


def service_step(d, out, audit, env, service):
    d.get(f"{URL}/#/service/{env}/{service}")
    # The containers are drawn from the audit at once, then drawn again when the releases
    # (read from the hosts) arrive: a row found before that is gone after it (CI met it as a
    # StaleElementReferenceException). So wait for the releases, then read the hosts in one
    # script, which the page cannot redraw in the middle of.
    wait(d, 30, EC.presence_of_element_located((By.CSS_SELECTOR, "table#containers tr[data-host]")),
         "the service page's containers")
    wait(d, 30, lambda d: "Reading the hosts" not in d.find_element(By.ID, "retained-box").text,
         "the service page's releases read")
    hosts = d.execute_script(
        "return [...document.querySelectorAll('table#containers tbody tr[data-host]')].map((r) => r.dataset.host)")
    want = sorted(set(r["host"] for r in expected_cells(audit).get((env, service), [])))
    if not want or sorted(hosts) != want:
        fail(f"the service page of {env}/{service} lists hosts {sorted(hosts)}, the audit {want}")
    out["service_hosts"] = len(hosts)

    def retained():
        # 1.0.0 was retained by the 1.0.0 -> 1.1.0 apply (retain: 2), on every host of the service.
        for h in hosts:
            wait(d, 30, EC.presence_of_element_located(
                (By.CSS_SELECTOR, f'table#retained tr[data-host="{h}"][data-version="1.0.0"][data-role="retained"]')),
                f"1.0.0 retained on {h}")

    def gate():
        # The last gate: the current container passed its (fleetpin makes it current only then).
        for h in hosts:
            wait(d, 30, lambda d: d.find_element(
                By.CSS_SELECTOR, f'table#containers tr[data-host="{h}"] td[data-gate]').get_attribute("data-gate") == "passed",
                f"the gate of {service} on {h} shown as passed")
    step("the retained releases", retained)
    step("the last gate", gate)
    axe_both(d, "the service page", out, "axe_service")
    shot(d, "service-laptop", LAPTOP)
    shot(d, "service-phone", PHONE)
    laptop(d)


def commit_link_step(d, out, env):
    # The outcome's commit link opens the history on that commit's row, marked and focused.
    commit = out["commit"]
    d.find_element(By.ID, "op-commit").click()
    wait(d, 10, lambda d: d.current_url.endswith(f"#/history/{env}/{commit}"),
         f"the history of {env} at commit {commit} (url {d.current_url})")
    row = wait(d, 30, EC.presence_of_element_located((By.CSS_SELECTOR, "#history tr.selected")),
               "the commit's row marked")
    marked = row.get_attribute("data-commit")
    if not (marked.startswith(commit) or commit.startswith(marked)):
        fail(f"the marked row is commit {marked}, the outcome named {commit}")
    if len(d.find_elements(By.CSS_SELECTOR, "#history tr.selected")) != 1:
        fail("more than one history row marked")
    if row.get_attribute("aria-current") != "true":
        fail("the marked row does not say aria-current")
    focused = d.execute_script(
        "const a = document.activeElement; return a && a.closest('tr') ? a.closest('tr').dataset.commit : null")
    if focused != marked:
        fail(f"the focus is on {focused!r}, not on the commit's row {marked}")


def diff_step(d, out, env):
    # A history row expands to its diff: the pin's line removed and written again.
    if not d.current_url.split("#")[-1].startswith(f"/history/{env}"):
        d.get(f"{URL}/#/history/{env}")
    wait(d, 30, EC.presence_of_element_located((By.CSS_SELECTOR, "#history tbody tr[data-commit]")),
         "the history's rows")
    row = d.find_elements(By.CSS_SELECTOR, "#history tbody tr[data-commit]")[0]
    commit = row.get_attribute("data-commit")
    pin = row.find_element(By.CSS_SELECTOR, "ul.pins li")
    service, old, new = (pin.get_attribute("data-service"), pin.get_attribute("data-from"),
                         pin.get_attribute("data-to"))
    row.find_element(By.CSS_SELECTOR, "button[data-diff]").click()
    lines = f'tr.diff-row[data-commit="{commit}"] pre.diff'
    wait(d, 30, lambda d: d.find_element(By.CSS_SELECTOR, lines + " .d-add"), f"the diff of {commit}")
    added = [e.text for e in d.find_elements(By.CSS_SELECTOR, lines + " .d-add")]
    removed = [e.text for e in d.find_elements(By.CSS_SELECTOR, lines + " .d-del")]
    if not any(service in t and new in t and t.startswith("+") for t in added):
        fail(f"the diff of {commit} writes no line with {service} {new}: {added}")
    if old and not any(service in t and old in t and t.startswith("-") for t in removed):
        fail(f"the diff of {commit} removes no line with {service} {old}: {removed}")
    out["diff_lines"] = len(added) + len(removed)


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
        out["cells"] = step("the matrix", check_matrix, d, audit)
        step("axe on the matrix", axe_both, d, "the matrix", out, "axe_matrix")
        shot(d, "matrix-laptop", LAPTOP)
        shot(d, "matrix-phone", PHONE)
        laptop(d)

        step("drift", drift_step, d, out, drift_env, drift_service)
        step("the service page", service_step, d, out, audit, rb_env, rb_service)

        # Rollback from the matrix: plan shown, confirmed, followed to its outcome.
        d.get(URL + "/")
        wait(d, 30, lambda d: ready(d), "the matrix again")
        click(d, 30, f'button[data-action="rollback"][data-env="{rb_env}"][data-service="{rb_service}"]',
              "the rollback button")
        wait(d, 30, EC.visibility_of_element_located((By.ID, "confirm")), "the confirmation dialog")
        wait(d, 30, lambda d: d.find_element(By.ID, "confirm-plan").text.strip() != "", "what the rollback will do")
        # The confirmation says where each host goes back to (the server's plan), not only
        # what runs now; Go is offered once that plan is shown.
        rb_plan = os.environ["ROLLBACK_PLAN"]
        wait(d, 30, lambda d: rb_plan in d.find_element(By.ID, "confirm-plan").text,
             f"the rollback's plan naming {rb_plan}")
        wait(d, 30, lambda d: d.find_element(By.ID, "confirm-go").is_enabled(), "the Go button enabled")
        out["axe_confirm_minor"] = axe(d, "the confirmation dialog")
        shot(d, "confirm-laptop", LAPTOP)
        shot(d, "confirm-phone", PHONE)
        laptop(d)
        d.find_element(By.ID, "confirm-go").click()
        outcome = wait(d, 180, EC.presence_of_element_located((By.CSS_SELECTOR, "#op-outcome[data-ok]")),
                       "the rollback's outcome")
        if outcome.get_attribute("data-ok") != "true":
            fail(f"the rollback failed: {outcome.text}\n{d.find_element(By.ID, 'op-events').text}")
        commits = d.find_elements(By.ID, "op-commit")
        if not commits:
            fail("the outcome names no commit")
        out["commit"] = commits[0].text.strip()
        step("the outcome's commit link", commit_link_step, d, out, rb_env)
        step("a commit's diff", diff_step, d, out, rb_env)
        step("axe on the history", axe_both, d, "the history page", out, "axe_history")
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
    if FAILURES:
        print("FAILED STEPS:\n" + "\n".join(FAILURES), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
