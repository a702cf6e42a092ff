"""What the console's matrix must show, compared with `fleetpin audit --format json`: shared by
the Chromium test (browser.py, selenium) and the Firefox test (firefox.py, Marionette), so both
browsers are held to the same comparison. It knows no WebDriver client: it is given `js`, a
function running a script in the page (`js(script, *args)` returns its value), and `wait_for`,
a function polling a condition (`wait_for(secs, cond, what)` returns cond()'s first truthy value
or fails the test).
"""

import json

# The audit's statuses, best to worst (`Status` in src/ops/audit.rs): a cell says the worst.
SEVERITY = ["ok", "drift", "missing", "stopped", "unhealthy", "rolled-back", "orphan", "conflict",
            "unreachable"]

# One snapshot of every cell of the environments' rows, read in the page at once: the matrix may
# be drawn again between two WebDriver calls.
PAGE_CELLS_JS = (
    "return Array.from(document.querySelectorAll('#matrix tr[data-env] > td.cell')).map(c =>"
    " [c.dataset.env, c.dataset.service, c.dataset.status, c.dataset.version || '',"
    "  (c.querySelector('.line .st') || {}).textContent || ''])")

# The hosts' rows of a hosts table (the matrix's expanded cell or the service page's containers):
# host, status, version, pin, digest, state, health.
HOST_ROW_JS = (
    "[r.dataset.host, r.dataset.status, r.children[2].textContent, r.children[3].textContent,"
    " r.children[4].title, r.children[6].textContent, r.children[7].textContent]")

EXPANDED_ROWS_JS = (
    "return Array.from(document.querySelectorAll('tr.detail .detail-box'))"
    ".filter(b => b.querySelector('h2').textContent === arguments[0])"
    ".map(b => Array.from(b.querySelectorAll('tbody tr[data-host]')).map(r => " + HOST_ROW_JS + "))")

SERVICE_ROWS_JS = (
    "return Array.from(document.querySelectorAll('table#containers tbody tr[data-host]'))"
    ".map(r => " + HOST_ROW_JS + ")")


def worst(statuses):
    return max(statuses, key=lambda st: SEVERITY.index(st) if st in SEVERITY else 1)


def expected_cells(audit):
    """env/service -> its audit rows, as the matrix draws them (every row, orphans too)."""
    cells = {}
    for r in audit.get("rows", []):
        cells.setdefault((r["environment"], r["service"]), []).append(r)
    return cells


def expected_hosts(rows):
    """host -> what its row in a hosts table says, from the audit's rows of one cell."""
    return {r["host"]: [r["status"], r.get("running") or "—", r.get("pinned") or "—",
                        r.get("digest") or "", r.get("state") or "—", r.get("health") or "—"]
            for r in rows}


def drift_kind(row):
    """The kind of a drift, from the audit's words (the audit has no typed field for it)."""
    if row["status"] != "drift" or not row.get("detail"):
        return ""
    if row["detail"].startswith("runs digest"):
        return "digest"
    if row["detail"].startswith("runs "):
        return "version"
    return "settings"


def page_cells(js):
    return {(e, s): (st, v, text) for e, s, st, v, text in js(PAGE_CELLS_JS)}


def host_rows(js, wait_for, env, service):
    """Expands the cell and reads its hosts' rows; collapses it again."""
    sel = f'td.cell[data-env="{env}"][data-service="{service}"] button[data-expand]'
    js("document.querySelector(arguments[0]).click()", sel)
    want = f"{service} in {env}"
    rows = wait_for(15, lambda: (js(EXPANDED_ROWS_JS, want) or [None])[0], f"the hosts of {want}")
    js("document.querySelector(arguments[0]).click()", sel)
    return rows


def matrix_problems(js, wait_for, audit):
    """Where the matrix differs from the audit: its set of cells, each cell's worst status and
    versions, and each cell's hosts once expanded."""
    cells = expected_cells(audit)
    if not cells:
        return [f"the audit has no rows: {json.dumps(audit)[:500]}"]
    seen = page_cells(js)
    if set(seen) != set(cells):
        return [f"the matrix's cells {sorted(seen)} are not the audit's {sorted(cells)}"]
    problems = []
    for (env, service), rows in cells.items():
        status, version, _ = seen[(env, service)]
        want = worst([r["status"] for r in rows])
        if status != want:
            problems.append(f"{env}/{service}: the matrix says {status}, the audit {want} ({[r['status'] for r in rows]})")
        shown = set(v for v in version.split(",") if v)
        versions = set(r["running"] for r in rows if r.get("running"))
        if shown != versions:
            problems.append(f"{env}/{service}: the matrix shows versions {shown}, the audit {versions}")
        got = {r[0]: r[1:] for r in host_rows(js, wait_for, env, service)}
        expected = expected_hosts(rows)
        if got != expected:
            problems.append(f"{env}/{service}: the hosts shown {got}, the audit's {expected}")
    return problems


def service_problems(js, audit, env, service):
    """Where the service page's containers table differs from the audit's rows of that cell."""
    rows = expected_cells(audit).get((env, service), [])
    if not rows:
        return [f"the audit has no row for {env}/{service}"]
    got = {r[0]: r[1:] for r in js(SERVICE_ROWS_JS)}
    expected = expected_hosts(rows)
    if got != expected:
        return [f"the service page of {env}/{service} shows {got}, the audit {expected}"]
    return []
