#!/bin/sh
# Fills fuzz/corpus/manifest with seeds: the bad-manifest corpus, the reference manifests and
# the examples. The corpus directory is not committed (see .gitignore); rerun this script instead.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$here/corpus/manifest"
mkdir -p "$out"
for f in "$root"/tests/bad/*.yaml "$root"/manifests/*.yaml "$root"/examples/*.yaml; do
    [ -f "$f" ] && cp "$f" "$out/$(basename "$(dirname "$f")")-$(basename "$f")"
done
echo "$(ls "$out" | wc -l) seeds in $out"
