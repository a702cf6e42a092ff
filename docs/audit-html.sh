#!/bin/sh
# Regenerates docs/audit-html.png, the picture of the HTML audit report in docs/audit.md, from a
# fixed and neutral audit (examples/audit_html.rs: example names, users and digests, no
# machine's address, host name or user) rendered by fleetpin's own HTML renderer, then shot by
# headless Chromium. Run from anywhere: docs/audit-html.sh
set -eu
cd "$(dirname "$0")/.."
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run -q --example audit_html > "$tmp/audit.html"
"$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1310,620 \
  --screenshot="$tmp/audit.png" "file://$tmp/audit.html" 2>/dev/null
cp "$tmp/audit.png" docs/audit-html.png
echo "wrote docs/audit-html.png"
