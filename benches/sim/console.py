#!/usr/bin/env python3
"""The console's matrix first render in headless Chromium: from navigation to all cells painted.

  ./console.py --url http://127.0.0.1:8420 --token fpt_… [--rounds 5] [--cached]

Signs in with the break-glass token (serve.yaml `break_glass: true`), then ROUNDS times: navigates
to `/`, and reads when the page set `body[data-ready]` (the page sets it in the animation frame
after inserting the matrix), measured in the page from the navigation's start
(`performance.timeOrigin`), through a script Chromium runs before the page's own. Prints one JSON
line per round and a summary line: cells, first render ms (median, min, max), and the
transfer size of the audit answer. Needs selenium and Debian's chromium + chromium-driver.
"""

import argparse
import json
import statistics
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

WATCH = """
window.__fp_painted = null;
new MutationObserver((_, obs) => {
  if (document.body && document.body.dataset.ready === 'true' && window.__fp_painted === null) {
    requestAnimationFrame(() => requestAnimationFrame(() => { window.__fp_painted = performance.now(); }));
    obs.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-ready'], childList: true});
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--width", type=int, default=1366)
    ap.add_argument("--height", type=int, default=768)
    a = ap.parse_args()
    url = a.url.rstrip("/")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for o in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server",
              f"--window-size={a.width},{a.height}"):
        opts.add_argument(o)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(120)
    try:
        d.get(url + "/healthz")
        status = d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/auth/break-glass', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({token: arguments[0]})}).then(r => done(r.status));", a.token)
        if status != 200:
            sys.exit(f"break-glass sign-in answered {status}")
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
        times = []
        for i in range(a.rounds):
            d.get("about:blank")
            d.get(url + "/")
            deadline = time.monotonic() + 60
            painted = None
            while time.monotonic() < deadline:
                painted = d.execute_script("return window.__fp_painted")
                if painted is not None:
                    break
                time.sleep(0.05)
            if painted is None:
                sys.exit("the matrix never became ready")
            cells = d.execute_script("return document.querySelectorAll('td.cell').length")
            audit = d.execute_script(
                "const e = performance.getEntriesByType('resource').filter(r => r.name.includes('/api/v1/audit'));"
                "return e.length ? {ms: e[0].duration, bytes: e[0].transferSize || e[0].encodedBodySize} : null")
            times.append(painted)
            print(json.dumps({"round": i + 1, "first_render_ms": round(painted), "cells": cells, "audit": audit}))
        print(json.dumps({
            "summary": True,
            "rounds": len(times),
            "median_ms": round(statistics.median(times)),
            "min_ms": round(min(times)),
            "max_ms": round(max(times)),
        }))
    finally:
        d.quit()


if __name__ == "__main__":
    main()
