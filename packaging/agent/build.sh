#!/usr/bin/env bash
# Builds the pull agent's image (packaging/agent/Dockerfile) from a fleetpin binary: gathers the
# binary, git, git's http(s) and upload-pack helpers, ssh, a /bin/sh (dash), the libraries `ldd`
# lists for each, CA certificates and a minimal /etc into a build context, then `docker build`s it
# (the legacy builder: FROM scratch needs no BuildKit). DOCKER_HOST chooses the engine.
#
# Usage: packaging/agent/build.sh [--binary PATH] [--tag TAG] [--context-only DIR]
#   --binary        the fleetpin to put in (default: target/release/fleetpin, built if missing)
#   --tag           the image's name (default: fleetpin-agent:VERSION from Cargo.toml)
#   --context-only  write the build context to DIR and stop (no docker needed)
# Prints the image's tag and size at the end.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
binary="" tag="" only=""
while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --context-only) only=$2; shift 2 ;;
        -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
tag=${tag:-fleetpin-agent:$version}
if [ -z "$binary" ]; then
    binary=$root/target/release/fleetpin
    [ -x "$binary" ] || (cd "$root" && cargo build --release --bin fleetpin)
fi
[ -x "$binary" ] || { echo "build.sh: $binary is not an executable" >&2; exit 1; }
for tool in git ssh ssh-keygen ldd; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is needed here (apt-get install git openssh-client)" >&2; exit 1; }
done

ctx=${only:-$(mktemp -d /tmp/fleetpin-agent-image.XXXXXX)}
[ -n "$only" ] || trap 'rm -rf "$ctx"' EXIT
rm -rf "$ctx/rootfs"
mkdir -p "$ctx/rootfs"/{usr/bin,usr/lib/git-core,etc/ssl/certs,tmp,root/.ssh,var/cache}
chmod 1777 "$ctx/rootfs/tmp"
chmod 700 "$ctx/rootfs/root" "$ctx/rootfs/root/.ssh"
cp "$here/Dockerfile" "$ctx/Dockerfile"

# The binary, stripped: debug symbols are most of a debug build's size.
cp "$binary" "$ctx/rootfs/usr/bin/fleetpin"
if command -v strip >/dev/null; then strip "$ctx/rootfs/usr/bin/fleetpin"; fi
cp "$(command -v git)" "$ctx/rootfs/usr/bin/git"
cp "$(command -v ssh)" "$ctx/rootfs/usr/bin/ssh"
# Signed references (docs/trust.md): git verifies SSH signatures with ssh-keygen, OpenPGP ones
# with gpg (included when this machine has it: apt-get install gnupg).
cp "$(command -v ssh-keygen)" "$ctx/rootfs/usr/bin/ssh-keygen"
verifiers="$ctx/rootfs/usr/bin/ssh-keygen"
if command -v gpg >/dev/null; then
    cp "$(command -v gpg)" "$ctx/rootfs/usr/bin/gpg"
    verifiers="$verifiers $ctx/rootfs/usr/bin/gpg"
fi
# git runs GIT_SSH_COMMAND (fleetpin's `ssh -o BatchMode=yes`, or yours), core.sshCommand and
# credential helpers through /bin/sh: without one an ssh:// fetch fails with "cannot exec".
mkdir -p "$ctx/rootfs/bin"
cp "$(readlink -f "$(command -v dash || command -v sh)")" "$ctx/rootfs/bin/sh"
core=$(git --exec-path)
# git:// and ssh:// fetch are built into git; file:// runs upload-pack, http(s) its remote helper.
cp "$core/git-remote-http" "$ctx/rootfs/usr/lib/git-core/git-remote-http"
ln -sf git-remote-http "$ctx/rootfs/usr/lib/git-core/git-remote-https"
ln -sf ../../bin/git "$ctx/rootfs/usr/lib/git-core/git-upload-pack"

# Every library the executables link, at the path the loader looks for it.
for exe in "$ctx/rootfs/usr/bin/fleetpin" "$ctx/rootfs/usr/bin/git" "$ctx/rootfs/usr/bin/ssh" \
    "$ctx/rootfs/usr/lib/git-core/git-remote-http" "$ctx/rootfs/bin/sh" $verifiers; do
    ldd "$exe" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}'
done | sort -u | while read -r lib; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
done

# https needs the CA bundle; ssh refuses to run as a uid that /etc/passwd does not name.
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/root:/usr/bin/fleetpin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/bin/fleetpin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
printf 'hosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"

if [ -n "$only" ]; then
    echo "context in $ctx ($(du -sh "$ctx/rootfs" | cut -f1))"
    exit 0
fi
DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "$tag $((size / 1024 / 1024)) MiB"
