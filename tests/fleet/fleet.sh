#!/usr/bin/env bash
#
# fleet.sh - a private, throw-away fleet of plain Docker hosts for fleetpin's
# integration tests and benchmarks.
#
# Why this exists: fleetpin deploys pinned image versions to many independent
# Docker engines. Testing that for real needs several engines that do not share
# images, containers or networks, plus a registry they all pull from - without
# touching the machine's own Docker setup. Each "host" here is one dockerd
# (Debian's docker.io, Engine 20.10 / API 1.41) running in its own network
# namespace with its own data-root, exec-root and containerd, reachable from
# the root namespace over a private bridge (10.213.7.0/24). A registry
# (Debian's docker-registry) lives in its own namespace, and the test images
# are built once per `up` from busybox-static (and Debian's caddy), pushed,
# and then deleted again, so every host starts empty and must pull.
#
# Hard rules this script follows (learned the hard way on shared machines):
#   * never run dockerd/containerd in the root network namespace (one once
#     removed the host's docker0); every daemon is started with
#     `nsenter --net=/var/run/netns/NAME` - not `ip netns exec`, which remounts
#     /sys and makes dockerd fail on cgroups;
#   * traffic only goes to loopback and to the fleet's own addresses;
#   * `down` must leave nothing behind, even after `kill -9` of everything,
#     so every process we start is put in a tracking cgroup, and `up` always
#     runs the `down` logic first.
#
# Usage: fleet.sh up [N] | down | env | status | run CMD... | help
#        fleet.sh kill-host|stop-host|start-host|cut|restore hK
#        fleet.sh stop-registry|start-registry [auth]
# See tests/fleet/README.md for addresses, images, fleet.env keys and the
# fault-injection commands.

set -euo pipefail

# ---------------------------------------------------------------- constants --
readonly NET_PREFIX=10.213.7            # fleet subnet (/24)
readonly BRIDGE=fpfleet0                # bridge in the root namespace
readonly BRIDGE_ADDR=${NET_PREFIX}.1
readonly NS_PREFIX=fpfleet-             # network namespaces: fpfleet-hK, fpfleet-reg
readonly VETH_PREFIX=fpf-               # root-side veth ends: fpf-hK, fpf-reg
readonly REG_NS=${NS_PREFIX}reg
readonly REG_ADDR=${NET_PREFIX}.2
readonly REG_PORT=5000
readonly REGISTRY=${REG_ADDR}:${REG_PORT}
readonly APP_REPO=${REGISTRY}/fleetpin/app
readonly PROXY_REPO=${REGISTRY}/fleetpin/proxy
readonly APP_TAGS=(1.0.0 1.1.0 1.2.0 2.0.0 broken)
readonly PROXY_TAG=1.0.0
# Caddy images (zero-downtime tests through a real reverse proxy): a proxy
# that follows a Docker network alias, and an app that drains on SIGTERM.
readonly CADDY_BIN=/usr/bin/caddy              # Debian's caddy package (bookworm: 2.6.2)
readonly CADDY_REPO=${REGISTRY}/fleetpin/caddy
readonly CADDY_TAG=2.6.2
readonly GRACEFUL_REPO=${REGISTRY}/fleetpin/graceful
readonly GRACEFUL_TAGS=(1.0.0 1.1.0 2.0.0 broken)
readonly DOCKER_TCP_PORT=2375
readonly DOCKER_TLS_PORT=2376                 # only on the FLEET_TLS_HOST host, instead of 2375
readonly MAX_HOSTS=12
readonly RUN_DIR=/run/fleetpin-fleet          # sockets, pid files, logs, fleet.env
readonly DATA_DIR=/var/lib/fleetpin-fleet     # data-roots, registry storage
readonly ENV_FILE=${RUN_DIR}/fleet.env
readonly LOCK_FILE=/run/fleetpin-fleet.lock   # outside RUN_DIR: down deletes RUN_DIR
readonly CG_NAME=fpfleet                      # tracking cgroup name (see cg_track_root)
readonly START_TIMEOUT=${FLEET_START_TIMEOUT:-90}   # seconds to wait for daemons
readonly STOP_TIMEOUT=${FLEET_STOP_TIMEOUT:-60}     # seconds stop-host/stop-registry wait after SIGTERM
# optional authenticated registry (FLEET_REGISTRY_AUTH=1)
readonly AREG_NS=${NS_PREFIX}areg
readonly AREG_ADDR=${NET_PREFIX}.3
readonly AUTH_REGISTRY=${AREG_ADDR}:${REG_PORT}
readonly AUTH_APP_REPO=${AUTH_REGISTRY}/fleetpin/app
readonly AUTH_TAGS=(1.0.0 1.1.0)
readonly AUTH_USER=fleet
readonly AUTH_PASSWORD=fleetpass
# optional TLS host (FLEET_TLS_HOST=hK)
readonly TLS_DIR=${RUN_DIR}/tls
# The sshd (always): in the namespace of host SSH_K (h2, or h1 in a one-host
# fleet), key authentication only, on ports 22 and 2222; its sessions reach
# that host's dockerd through DOCKER_HOST (sshd_config SetEnv), so
# `ssh ... docker system dial-stdio` works as on a real Docker host.
readonly SSH_DIR=${RUN_DIR}/ssh
readonly SSH_USER=root
readonly SSH_PORTS=(22 2222)
# launch.sh understands start requests on keeper.fifo (start-host, start-registry)
readonly CTL_MARKER='# fleet-ctl: v1'

# Options of this fleet: set by `up` from FLEET_TLS_HOST / FLEET_REGISTRY_AUTH,
# by the other commands from fleet.env (load_fleet).
TLS_HOST_K=""       # index K of the TLS host, or empty
AUTH_REG=""         # 1 when the authenticated registry exists
LIVE_RESTORE=""     # 1: every dockerd has live-restore (FLEET_LIVE_RESTORE=1)
SSH_K=""            # index K of the host whose namespace runs the sshd
SMALL_K=""          # index K of the host whose data-root is a small tmpfs (FLEET_SMALL_DATAROOT)
SMALL_SIZE=""       # its size (tmpfs size=, e.g. 512m)

SCRIPT_START_MS=$(date +%s%3N)

# ------------------------------------------------------------------ helpers --
log() {
    local ms=$(($(date +%s%3N) - SCRIPT_START_MS))
    printf '[fleet %3d.%ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2
}
warn() { log "WARNING: $*"; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it creates namespaces, bridges and dockerds)"
}

# Host index -> names/addresses. Hosts are h1..hN.
host_addr() { echo "${NET_PREFIX}.$((10 + $1))"; }
host_ns() { echo "${NS_PREFIX}h$1"; }
host_run() { echo "${RUN_DIR}/h$1"; }
host_sock() { echo "${RUN_DIR}/h$1/docker.sock"; }
host_is_tls() { [ -n "$TLS_HOST_K" ] && [ "$1" = "$TLS_HOST_K" ]; }
# the host's TCP endpoint: plain 2375, or TLS 2376 on the TLS host
host_tcp_url() {
    if host_is_tls "$1"; then echo "https://$(host_addr "$1"):${DOCKER_TLS_PORT}"; else echo "http://$(host_addr "$1"):${DOCKER_TCP_PORT}"; fi
}

# curl that never goes through a proxy (only fleet addresses / loopback).
qcurl() { curl --noproxy '*' -sS --connect-timeout 2 --max-time 5 "$@"; }
# GET $2 on host $1's TCP endpoint (with the fleet's client certificate on the TLS host)
host_tcp_curl() {
    local k=$1 path=$2
    shift 2
    if host_is_tls "$k"; then
        qcurl --cacert "$TLS_DIR/ca.pem" --cert "$TLS_DIR/cert.pem" --key "$TLS_DIR/key.pem" "$@" "$(host_tcp_url "$k")$path"
    else
        qcurl "$@" "$(host_tcp_url "$k")$path"
    fi
}

# Where our processes are tracked. Every process we start (dockerd and its
# children, the registry) is moved into <root>/<name>/..., and containers get
# --cgroup-parent /fpfleet/hK, so `down` can find everything even after the
# daemons were SIGKILLed and their shims/containers re-parented to init.
cg_track_root() {
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        echo /sys/fs/cgroup/${CG_NAME}                  # pure cgroup v2
    elif [ -d /sys/fs/cgroup/pids ]; then
        echo /sys/fs/cgroup/pids/${CG_NAME}             # v1: pids hierarchy
    else
        echo ""                                          # no tracking; cmdline scan only
    fi
}

# Start "$@" detached (own session, no inherited fds, stdout/stderr -> $2),
# inside tracking cgroup $1 (may be empty). Prints the pid.
spawn() {
    local cg=$1 logf=$2
    shift 2
    if [ -n "$cg" ]; then mkdir -p "$cg"; fi
    # The inner bash moves itself into the cgroup, closes every fd > 2 (so
    # daemons never hold the caller's pipes or our lock), then execs.
    setsid bash -c '
        cg=$1; shift
        if [ -n "$cg" ]; then echo $$ > "$cg/cgroup.procs"; fi
        for fd in /proc/$$/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
        done
        exec "$@"
    ' fleet-spawn "$cg" \
        env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u all_proxy \
        "$@" </dev/null >>"$logf" 2>&1 &
    echo $!
}

# The keeper: `tini -s` (subreaper) running $RUN_DIR/launch.sh, a generated
# bash script that starts the registry and every dockerd as its children and
# then waits. Why: daemons outlive `fleet.sh up`, so they get re-parented to
# PID 1; where PID 1 is not a real init (a container, a CI VM) they are reaped
# late or never, and `ps` keeps showing "dockerd <defunct>". With the keeper
# as their subreaper everything is reaped at once; `down` kills the keeper
# last. (containerd shims are re-parented to it too, for every container.)
keeper_pids() {
    local p comm args cg
    cg=$(cg_track_root)
    if [ -n "$cg" ]; then cat "$cg/keeper/cgroup.procs" 2>/dev/null || true; fi
    for p in /proc/[0-9]*; do
        read -r comm 2>/dev/null <"$p/comm" || continue
        case $comm in tini | docker-init | bash) ;; *) continue ;; esac
        args=$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null) || continue
        case $comm in
            bash) [ "$args" = "bash"$'\n'"${RUN_DIR}/launch.sh" ] && echo "${p#/proc/}" ;;
            *) case $args in *$'\n'"${RUN_DIR}/launch.sh"*) echo "${p#/proc/}" ;; esac ;;
        esac
    done
    return 0
}

# pid $1 is alive and not a zombie
alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ----------------------------------------------------------------- packages --
# Install whatever is missing. Services shipped by the packages (docker,
# containerd, docker-registry) must NOT start in the root namespace: a
# policy-rc.d that denies everything is in place during the install, and any
# daemon that still appeared is stopped and its service disabled afterwards.
ensure_packages() {
    local pkgs=()
    command -v dockerd >/dev/null || pkgs+=(docker.io)
    command -v containerd >/dev/null || pkgs+=(docker.io)
    command -v runc >/dev/null || pkgs+=(docker.io)
    command -v docker >/dev/null || pkgs+=(docker.io)
    [ -x /usr/bin/docker-registry ] || pkgs+=(docker-registry)
    if [ ! -x /bin/busybox ] || [[ $(ldd /bin/busybox 2>&1 || true) != *"not a dynamic"* ]]; then
        pkgs+=(busybox-static)   # the images are FROM scratch: busybox must be static
    fi
    command -v ip >/dev/null || pkgs+=(iproute2)
    command -v iptables >/dev/null || pkgs+=(iptables)
    command -v curl >/dev/null || pkgs+=(curl)
    command -v faketime >/dev/null || pkgs+=(faketime)   # the tests run a client whose clock is off
    [ -x /usr/sbin/sshd ] || pkgs+=(openssh-server)       # the fleet's sshd (ssh:// endpoints, git over ssh)
    command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || pkgs+=(openssh-client)
    command -v git >/dev/null || pkgs+=(git)             # `--push` runs git; the sshd serves git-receive-pack
    [ -x "$CADDY_BIN" ] || pkgs+=(caddy)                 # the caddy and graceful images
    podman_packages                                      # the Podman host (p1)
    command -v nsenter >/dev/null && command -v unshare >/dev/null && command -v flock >/dev/null \
        || pkgs+=(util-linux)
    # only for the optional TLS host / authenticated registry
    if [ -n "$TLS_HOST_K" ]; then command -v openssl >/dev/null || pkgs+=(openssl); fi
    if [ -n "$AUTH_REG" ] && ! command -v htpasswd >/dev/null && ! python3 -c 'import bcrypt' >/dev/null 2>&1; then
        pkgs+=(apache2-utils)   # htpasswd -B (bcrypt, the only hash docker-registry accepts)
    fi
    [ ${#pkgs[@]} -eq 0 ] && return 0

    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    log "installing: ${pkgs[*]}"
    local before
    before=$(root_ns_daemon_pids caddy | sort -u | tr '\n' ' ')

    local policy=/usr/sbin/policy-rc.d backup=""
    if [ -e "$policy" ]; then
        backup="${policy}.fleetpin-backup"
        cp -a "$policy" "$backup"
    fi
    printf '#!/bin/sh\n# fleetpin tests/fleet/fleet.sh: no service starts during install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    local rc=0
    (
        export DEBIAN_FRONTEND=noninteractive
        apt_install() {
            apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
        }
        apt_install "${pkgs[@]}" >/tmp/fleetpin-fleet-apt.log 2>&1 || {
            apt-get update -o DPkg::Lock::Timeout=300 >>/tmp/fleetpin-fleet-apt.log 2>&1
            apt_install "${pkgs[@]}" >>/tmp/fleetpin-fleet-apt.log 2>&1
        }
    ) || rc=$?
    if [ -n "$backup" ]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
    if [ $rc -ne 0 ]; then
        tail -n 20 /tmp/fleetpin-fleet-apt.log >&2 || true
        die "apt-get install failed (full log: /tmp/fleetpin-fleet-apt.log)"
    fi

    # Make sure the packages' own services stay off (caddy's only if we just
    # installed it: its unit would serve :80 in the root namespace at boot).
    local svc svcs=(docker containerd docker-registry)
    case " ${pkgs[*]} " in *" caddy "*) svcs+=(caddy caddy-api) ;; esac
    # openssh-server only when we installed it (the machine had no sshd of its own)
    case " ${pkgs[*]} " in *" openssh-server "*) svcs+=(ssh) ;; esac
    for svc in "${svcs[@]}"; do
        if [ -d /run/systemd/system ]; then   # systemd is PID 1
            systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
            if [ "$svc" = docker ]; then systemctl disable --now docker.socket >/dev/null 2>&1 || true; fi
            if [ "$svc" = ssh ]; then systemctl disable --now ssh.socket >/dev/null 2>&1 || true; fi
        fi
        if [ -x "/etc/init.d/$svc" ]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    local p
    for p in $(root_ns_daemon_pids caddy); do
        case " $before " in *" $p "*) continue ;; esac
        warn "package install started $(cat "/proc/$p/comm" 2>/dev/null) (pid $p) in the root namespace; stopping it"
        kill -TERM "$p" 2>/dev/null || true
        sleep 2
        kill -KILL "$p" 2>/dev/null || true
    done
    log "packages installed"
}

# dockerd / containerd / docker-registry processes (and those named in "$@",
# e.g. caddy) in the ROOT network namespace.
root_ns_daemon_pids() {
    local rootns p comm names=" dockerd containerd docker-registry $* "
    rootns=$(readlink /proc/self/ns/net)
    for p in /proc/[0-9]*; do
        read -r comm 2>/dev/null <"$p/comm" || continue
        case $names in *" $comm "*) ;; *) continue ;; esac
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$rootns" ] && echo "${p#/proc/}"
    done
    return 0
}

# --------------------------------------------------------------------- down --
# pids of this script and all its ancestors: never kill those.
self_and_ancestors() {
    local p=$$
    while [ -n "$p" ] && [ "$p" -gt 1 ] 2>/dev/null; do
        echo "$p"
        p=$(sed -e 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2) || break
    done
    [ -n "${BASHPID:-}" ] && echo "$BASHPID"
    return 0
}

# Every live process that belongs to the fleet.
fleet_pids() {
    local cg ns p comm cmd
    {
        # 1. tracking cgroup (daemons, shims, containers, registry)
        for cg in "$(cg_track_root)" /sys/fs/cgroup/*/${CG_NAME}; do
            [ -n "$cg" ] && [ -d "$cg" ] || continue
            find "$cg" -path "$cg/keeper" -prune -o -name cgroup.procs -exec cat {} + 2>/dev/null || true
        done
        # 2. anything living in our network namespaces
        for ns in $(fleet_netns); do ip netns pids "$ns" 2>/dev/null || true; done
        # 3. our daemons by command line (covers runs started without cgroups)
        for p in /proc/[0-9]*; do
            read -r comm 2>/dev/null <"$p/comm" || continue
            case $comm in
                dockerd | containerd | containerd-shim* | docker-proxy | docker-registr* | runc | docker-init | nsenter | unshare) ;;
                *) continue ;;
            esac
            cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
            case $cmd in *"$RUN_DIR"* | *"$DATA_DIR"*) echo "${p#/proc/}" ;; esac
        done
        # 4. pid files
        cat "$RUN_DIR"/*/*.pid 2>/dev/null || true
    } | grep -E '^[0-9]+$' | sort -un | grep -vxF -f <(self_and_ancestors; keeper_pids) || true
}

# zombie children of the keepers (killed, not reaped yet)
unreaped() {
    local keepers p
    keepers=" $(keeper_pids | tr '\n' ' ') "
    local st
    for p in /proc/[0-9]*; do
        read -r st 2>/dev/null <"$p/stat" || continue
        # shellcheck disable=SC2086 # split the fields after "(comm) "
        set -- ${st##*) }
        [ "${1:-}" = Z ] && case $keepers in *" ${2:-x} "*) echo "${p#/proc/}" ;; esac
    done
    return 0
}

fleet_netns() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NS_PREFIX}" || true
}

fleet_mounts() {
    # mount points (field 5 of mountinfo) under our dirs, deepest first
    awk -v a="$RUN_DIR" -v b="$DATA_DIR" \
        '$5 == a || index($5, a "/") == 1 || $5 == b || index($5, b "/") == 1 { print length($5), $5 }' \
        /proc/self/mountinfo | sort -rn | cut -d' ' -f2- | uniq
}

fleet_links() {
    ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
        grep -E "^(${VETH_PREFIX}|${BRIDGE}\$)" || true
}

# The optional root-namespace FORWARD rule (-I add, -C check, -D delete) that
# `up` adds only when that chain filters bridged traffic; `down` removes it.
fwd_rule() { iptables "$1" FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment fleetpin-fleet -j ACCEPT; }

do_down() {
    local quiet=${1:-}
    [ -n "$quiet" ] || log "down: stopping fleet"
    local i pids live p

    podman_down
    # 1. Kill every process of ours. No graceful shutdown: everything is
    #    thrown away, and SIGKILL to all (containers included) is the fastest.
    #    The keeper (subreaper) goes last so that it reaps all the others.
    for i in $(seq 1 50); do
        pids=$(fleet_pids)
        live=""
        for p in $pids; do alive "$p" && live="$live $p"; done
        [ -z "$live" ] && break
        # shellcheck disable=SC2086
        kill -KILL $live 2>/dev/null || true
        sleep 0.1
    done
    [ -z "$live" ] || warn "processes still alive after SIGKILL:$live"
    for i in $(seq 1 30); do [ -z "$(unreaped)" ] && break; sleep 0.1; done
    # Killing launch.sh makes tini reap it and exit by itself.
    for p in $(keeper_pids); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = bash ] && kill -KILL "$p" 2>/dev/null
    done
    sleep 0.05
    for i in $(seq 1 30); do
        live=""
        for p in $(keeper_pids); do alive "$p" && live="$live $p"; done
        [ -z "$live" ] && break
        # shellcheck disable=SC2086
        if [ "$i" -gt 10 ]; then kill -KILL $live 2>/dev/null || true; fi
        sleep 0.1
    done

    # 2. Unmount everything under our dirs, deepest first (lazy if busy).
    for i in 1 2 3 4 5; do
        local mounts
        mounts=$(fleet_mounts)
        [ -z "$mounts" ] && break
        while IFS= read -r p; do
            [ -n "$p" ] || continue
            umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null || true
        done <<<"$mounts"
    done
    [ -z "$(fleet_mounts)" ] || warn "mounts left: $(fleet_mounts | tr '\n' ' ')"

    # 3. Network: namespaces (takes their veth ends along), veths, bridge.
    for p in $(fleet_netns); do ip netns delete "$p" 2>/dev/null || true; done
    for p in $(fleet_links); do ip link delete "$p" 2>/dev/null || true; done
    if command -v iptables >/dev/null; then
        for i in 1 2 3; do fwd_rule -C >/dev/null 2>&1 || break; fwd_rule -D >/dev/null 2>&1 || true; done
    fi
    # namespace teardown is asynchronous in the kernel; give the links a moment
    for i in $(seq 1 30); do
        [ -z "$(fleet_links)" ] && break
        sleep 0.1
        for p in $(fleet_links); do ip link delete "$p" 2>/dev/null || true; done
    done

    # 4. Tracking / container cgroups (in every v1 hierarchy, or v2).
    local cg
    for cg in /sys/fs/cgroup/*/${CG_NAME} /sys/fs/cgroup/${CG_NAME}; do
        [ -d "$cg" ] || continue
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done

    # 5a. /run/sshd, if `up` made it and no other sshd (the machine's) runs now.
    if [ -e "${SSH_DIR}/created-run-sshd" ]; then
        local other=""
        for p in /proc/[0-9]*; do
            [ "$(cat "$p/comm" 2>/dev/null)" = sshd ] && alive "${p#/proc/}" && other=1
        done
        [ -n "$other" ] || rmdir /run/sshd 2>/dev/null || true
    fi

    # 5. State. --one-file-system: never descend into a mount we failed to remove.
    rm -rf --one-file-system "$RUN_DIR" "$DATA_DIR" 2>/dev/null || true

    # 6. Verify.
    local left=""
    [ -z "$(fleet_netns)" ] || left="$left netns:$(fleet_netns | tr '\n' ',')"
    [ -z "$(fleet_links)" ] || left="$left links:$(fleet_links | tr '\n' ',')"
    [ -z "$(fleet_mounts)" ] || left="$left mounts:$(fleet_mounts | wc -l)"
    live=""
    for p in $(fleet_pids) $(keeper_pids); do alive "$p" && live="$live,$p"; done
    [ -z "$live" ] || left="$left pids:${live#,}"
    [ ! -e "$RUN_DIR" ] && [ ! -e "$DATA_DIR" ] || left="$left dirs"
    if [ -n "$left" ]; then
        warn "down: leftovers:$left"
        return 1
    fi
    [ -n "$quiet" ] || log "down: done, nothing left"
    return 0
}

# ----------------------------------------------------------------------- up --
storage_driver() {
    if [ -n "${FLEET_STORAGE_DRIVER:-}" ]; then
        echo "$FLEET_STORAGE_DRIVER"
        return
    fi
    # overlay2 needs a working overlay mount on the data-root's filesystem
    # (with d_type); try one, fall back to vfs (slow, but always works).
    local t=${DATA_DIR}/.overlay-test
    mkdir -p "$t"/{lower,upper,work,merged}
    echo x >"$t/lower/f"
    if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
        local ok=""
        [ "$(cat "$t/merged/f" 2>/dev/null)" = x ] && ok=1
        umount "$t/merged" 2>/dev/null || umount -l "$t/merged"
        rm -rf "$t"
        if [ -n "$ok" ]; then echo overlay2; else echo vfs; fi
    else
        rm -rf "$t"
        echo vfs
    fi
}

# veth pair: root end $1 on the bridge, "eth0" with address $3 in namespace $2
attach_ns() {
    local veth=$1 ns=$2 addr=$3
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$BRIDGE_ADDR"
}

setup_network() {
    local n=$1 k
    ip link add "$BRIDGE" type bridge
    ip addr add "${BRIDGE_ADDR}/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    # With br_netfilter loaded, traffic between ports of the bridge (host <->
    # host, host <-> registry) traverses the ROOT namespace's FORWARD chain. If
    # something there filters (e.g. policy DROP), let intra-bridge traffic pass.
    if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] &&
        [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)" = 1 ] && command -v iptables >/dev/null; then
        local fwd
        fwd=$(iptables -S FORWARD 2>/dev/null || true)
        if [ -n "$fwd" ] && [ "$fwd" != "-P FORWARD ACCEPT" ]; then
            fwd_rule -C >/dev/null 2>&1 || fwd_rule -I
            log "root FORWARD chain filters; added an ACCEPT rule for $BRIDGE (removed by down)"
        fi
    fi
    attach_ns "${VETH_PREFIX}reg" "$REG_NS" "$REG_ADDR"
    if [ -n "$AUTH_REG" ]; then attach_ns "${VETH_PREFIX}areg" "$AREG_NS" "$AREG_ADDR"; fi
    for k in $(seq 1 "$n"); do
        attach_ns "${VETH_PREFIX}h$k" "$(host_ns "$k")" "$(host_addr "$k")"
    done
    swarm_network
}

# Emit one shell-quoted `launch PIDFILE CGROUP LOG CMD...` line for launch.sh.
emit_launch() { printf '%q ' launch "$@"; echo; }

# The two registries: "reg" (plain, always) and "areg" (htpasswd auth, with
# FLEET_REGISTRY_AUTH=1). Same binary, own namespace, config and storage.
reg_dir() { if [ "$1" = areg ]; then echo "${RUN_DIR}/aregistry"; else echo "${RUN_DIR}/registry"; fi; }
reg_ns() { if [ "$1" = areg ]; then echo "$AREG_NS"; else echo "$REG_NS"; fi; }
reg_hostport() { if [ "$1" = areg ]; then echo "$AUTH_REGISTRY"; else echo "$REGISTRY"; fi; }
reg_status_name() { if [ "$1" = areg ]; then echo auth-reg; else echo registry; fi; }
reg_label() { if [ "$1" = areg ]; then echo "auth registry"; else echo registry; fi; }

# htpasswd line for AUTH_USER with a bcrypt hash (docker-registry ignores other hashes)
make_htpasswd() {
    if command -v htpasswd >/dev/null; then
        htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" | sed '/^$/d'
    elif python3 -c 'import bcrypt' >/dev/null 2>&1; then
        python3 -c 'import bcrypt, sys; print(sys.argv[1] + ":" + bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt()).decode())' \
            "$AUTH_USER" "$AUTH_PASSWORD"
    else
        die "neither htpasswd (apache2-utils) nor python3's bcrypt is available to write a bcrypt htpasswd file"
    fi
}

registry_launch() { # reg|areg
    local which=$1 d cgroot storage auth=""
    d=$(reg_dir "$which")
    storage=${DATA_DIR}/${d##*/}
    mkdir -p "$d" "$storage"
    if [ "$which" = areg ]; then
        make_htpasswd >"$d/htpasswd"
        chmod 644 "$d/htpasswd"
        grep -q "^${AUTH_USER}:[\$]2[aby][\$]" "$d/htpasswd" || die "could not write a bcrypt htpasswd file"
        auth="auth:
  htpasswd:
    realm: fleetpin-fleet
    path: $d/htpasswd"
    fi
    cat >"$d/config.yml" <<EOF
# written by tests/fleet/fleet.sh - fleet-private registry, plain HTTP${auth:+, htpasswd basic auth}
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
http:
  addr: $(reg_hostport "$which")
  secret: fleetpin-fleet-not-a-secret
${auth}
EOF
    cgroot=$(cg_track_root)
    emit_launch "$d/registry.pid" "${cgroot:+$cgroot/$which}" "$d/registry.log" \
        nsenter --net=/var/run/netns/"$(reg_ns "$which")" /usr/bin/docker-registry serve "$d/config.yml"
}

dockerd_launch() {
    local k=$1 sd=$2 d cgroot tcp extra=()
    d=$(host_run "$k")
    mkdir -p "$d" "${DATA_DIR}/h$k"
    # FLEET_SMALL_DATAROOT=hK:SIZE: that data-root is a tmpfs of its own, so a test can fill it
    # (a full disk on one host) without touching the machine's disk. `down` unmounts it.
    if [ "$k" = "$SMALL_K" ] && ! mountpoint -q "${DATA_DIR}/h$k"; then
        mount -t tmpfs -o "size=$SMALL_SIZE,mode=0711" fpfleet-small "${DATA_DIR}/h$k"
    fi
    # Own config file: never read /etc/docker/daemon.json; own engine key
    # (distinct `docker info` ID per host; the option only exists in the file).
    # FLEET_LIVE_RESTORE=1: containers survive a dockerd crash/stop (see README).
    cat >"$d/daemon.json" <<EOF
{
  "deprecated-key-path": "$d/key.json"${LIVE_RESTORE:+,
  \"live-restore\": true}
}
EOF
    cgroot=$(cg_track_root)
    if host_is_tls "$k"; then
        # TLS host: only a verified TLS TCP socket (client certs signed by ca.pem)
        tcp=(--host "tcp://$(host_addr "$k"):${DOCKER_TLS_PORT}" --tlsverify
            --tlscacert "$TLS_DIR/ca.pem" --tlscert "$TLS_DIR/server-cert.pem" --tlskey "$TLS_DIR/server-key.pem")
    else
        tcp=(--host "tcp://$(host_addr "$k"):${DOCKER_TCP_PORT}" --tls=false)
    fi
    if [ -n "$AUTH_REG" ]; then extra+=(--insecure-registry "$AUTH_REGISTRY"); fi
    # nsenter --net (NOT `ip netns exec`, which remounts /sys and breaks
    # dockerd's cgroup handling); own UTS namespace so that `docker info`
    # reports Name=fpfleet-hK instead of the machine's hostname.
    # --tls=false: without it 20.10 sleeps 15 s to warn about the TCP socket.
    # --cgroup-parent: containers land in the tracking cgroup tree.
    emit_launch "$d/spawn.pid" "${cgroot:+$cgroot/h$k/daemon}" "$d/dockerd.log" \
        nsenter --net=/var/run/netns/"$(host_ns "$k")" \
        unshare --uts \
        sh -c 'echo "$0" > /proc/sys/kernel/hostname && exec "$@"' "$(host_ns "$k")" \
        dockerd \
        --config-file "$d/daemon.json" \
        --host "unix://$d/docker.sock" \
        "${tcp[@]}" \
        --data-root "${DATA_DIR}/h$k" \
        --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" \
        --storage-driver "$sd" \
        --exec-opt native.cgroupdriver=cgroupfs \
        --cgroup-parent "/${CG_NAME}/h$k" \
        --bip "172.31.$k.1/24" \
        --insecure-registry "$REGISTRY" \
        ${extra[@]+"${extra[@]}"} \
        --iptables=true
}

# Write launch.sh (registries + N dockerds) and start it under the keeper.
# launch.sh defines one start_NAME function per daemon (NAME = reg, areg, hK),
# calls them all, and then serves start requests: a line "NAME" written to
# keeper.fifo makes it call start_NAME again. That is how start-host and
# start-registry restart a daemon exactly as `up` started it (same command
# line, cgroup, log, and the keeper as parent and reaper).
start_daemons() {
    local n=$1 sd=$2 k f=${RUN_DIR}/launch.sh cgroot reaper names="reg"
    [ -z "$AUTH_REG" ] || names="$names areg"
    for k in $(seq 1 "$n"); do names="$names h$k"; done
    names="$names ssh ${SWARM_NODES[*]}"
    {
        cat <<'EOF'
#!/bin/bash
# Generated by tests/fleet/fleet.sh. Runs under `tini -s`: starts every fleet
# daemon as a child (each in its tracking cgroup, output to its log), then
# serves restart requests from keeper.fifo. Bash reaps its exited children
# (SIGCHLD) and tini the orphans. `down` kills this script last.
EOF
        echo "$CTL_MARKER"
        cat <<'EOF'
set -u
launch() { # PIDFILE CGROUP LOG CMD...
    local pidf=$1 cg=$2 logf=$3
    shift 3
    (
        if [ -n "$cg" ]; then mkdir -p "$cg" && echo "$BASHPID" >"$cg/cgroup.procs"; fi
        exec "$@"
    ) </dev/null >>"$logf" 2>&1 3<&- &
    echo $! >"$pidf.tmp" && mv -f "$pidf.tmp" "$pidf"
}
EOF
        echo "start_reg() {"
        registry_launch reg
        echo "}"
        if [ -n "$AUTH_REG" ]; then
            echo "start_areg() {"
            registry_launch areg
            echo "}"
        fi
        for k in $(seq 1 "$n"); do
            echo "start_h$k() {"
            dockerd_launch "$k" "$sd"
            echo "}"
        done
        echo "start_ssh() {"
        sshd_launch
        echo "}"
        for k in "${SWARM_NODES[@]}"; do
            echo "start_$k() {"
            swarm_dockerd_launch "$k" "$sd"
            echo "}"
        done
        for k in $names; do echo "start_$k"; done
        # Stay alive even when every daemon died (kill -9 tests): exiting would
        # end tini, and later orphans (shims, containers) would lose their
        # reaper. Block on a private FIFO (opened read-write: never EOF) and
        # start what is asked for; unknown requests are ignored.
        echo "mkfifo -m 600 $(printf '%q' "$RUN_DIR/keeper.fifo") && exec 3<>$(printf '%q' "$RUN_DIR/keeper.fifo")"
        cat <<EOF
while :; do
    req=""
    if read -r -u 3 req; then
        case " $names " in *" \$req "*) "start_\$req" ;; esac
    else
        sleep 1
    fi
done
EOF
    } >"$f"
    chmod 755 "$f"
    reaper=$(command -v tini || command -v docker-init || true)
    cgroot=$(cg_track_root)
    if [ -n "$reaper" ]; then
        spawn "${cgroot:+$cgroot/keeper}" "${RUN_DIR}/keeper.log" "$reaper" -s -- bash "$f" >"${RUN_DIR}/keeper.pid"
    else
        warn "no tini/docker-init found: killed daemons may stay <defunct> if PID 1 does not reap"
        spawn "${cgroot:+$cgroot/keeper}" "${RUN_DIR}/keeper.log" bash "$f" >"${RUN_DIR}/keeper.pid"
    fi
}

log_tail() { # file, lines (dockerd's gRPC chatter left out)
    echo "----- tail of $1 -----" >&2
    { grep -v 'module=grpc' "$1" 2>/dev/null || echo "(no log)"; } | tail -n "${2:-25}" | cut -c1-300 >&2
    echo "-----" >&2
}

# registry $1 (reg|areg, default reg) answers /v2/ (the auth one: with credentials)
registry_ready() {
    local which=${1:-reg} cred=()
    [ "$which" = areg ] && cred=(-u "$AUTH_USER:$AUTH_PASSWORD")
    [ "$(qcurl "${cred[@]+"${cred[@]}"}" -o /dev/null -w '%{http_code}' "http://$(reg_hostport "$which")/v2/" 2>/dev/null)" = 200 ]
}
# host $1 answers /_ping on its unix socket and (unless $2 = unix-only) on its TCP endpoint
host_ready() {
    [ "$(qcurl --unix-socket "$(host_sock "$1")" http://fleet/_ping 2>/dev/null)" = OK ] || return 1
    [ "${2:-}" = unix-only ] || [ "$(host_tcp_curl "$1" /_ping 2>/dev/null)" = OK ]
}

wait_registry() { # [reg|areg]
    local which=${1:-reg} deadline=$(($(date +%s) + START_TIMEOUT)) pid d
    d=$(reg_dir "$which")
    until registry_ready "$which"; do
        pid=$(cat "$d/registry.pid" 2>/dev/null || echo "")
        if [ -n "$pid" ] && ! alive "$pid"; then
            log_tail "$d/registry.log"
            die "$(reg_label "$which") exited during startup"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log_tail "$d/registry.log"
            die "$(reg_label "$which") did not answer on http://$(reg_hostport "$which")/v2/ within ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

wait_host() { # K [unix-only]
    local k=$1 deadline=$(($(date +%s) + START_TIMEOUT)) pid d what
    d=$(host_run "$k")
    what="unix://$(host_sock "$k")"
    [ "${2:-}" = unix-only ] || what="$what and $(host_tcp_url "$k" | sed 's/^https*:/tcp:/')"
    until host_ready "$k" "${2:-}"; do
        pid=$(cat "$d/spawn.pid" 2>/dev/null || echo "")
        if [ -n "$pid" ] && ! alive "$pid"; then
            log_tail "$d/dockerd.log"
            die "dockerd for h$k exited during startup (log: $d/dockerd.log)"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log_tail "$d/dockerd.log"
            die "dockerd for h$k did not answer /_ping on $what within ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

# The test app: busybox httpd on :8080 serving /version, / and /health.
# PID 1 is a shell script with TERM/INT traps - without them PID 1 ignores
# SIGTERM and every `docker stop` would wait the full 10 s timeout.
# The Caddy images (zero-downtime tests): Debian's caddy binary with the
# libraries ldd lists, plus static busybox for the healthchecks - `caddy`, a
# reverse proxy that follows a Docker network alias, and `graceful`, an app
# like the one above (caddy file_server) that drains on SIGTERM.
# Layout: local base images - "base" (busybox, entrypoint, dirs,
# healthcheck), "caddy" (caddy + libraries + busybox) and "graceful" (FROM
# caddy: Caddyfile, entrypoint, dirs, healthcheck) - then per tag a tiny image
# FROM one of them with /www and APP_VERSION (the proxy: its Caddyfile), so
# every Caddy image shares the one caddy layer. Few build steps matter: the
# legacy builder commits a container per step, which is cheap on overlay2 but
# copies the whole rootfs on vfs.
readonly BASE_IMAGE=fleetpin-fleet-base:build
readonly CADDY_BASE_IMAGE=fleetpin-fleet-caddy:build
readonly GRACEFUL_BASE_IMAGE=fleetpin-fleet-graceful:build
# A check answers in milliseconds; the 5 s timeout is for a machine loaded by parallel suites and
# builds, where starting the check process alone once took over 1 s (CI: "Health check exceeded
# timeout (1s)" twice, a healthy release judged unhealthy). A failing check fails at once.
readonly HEALTHCHECK_OPTS="--interval=1s --timeout=5s --start-period=1s --retries=2"
readonly PROXY_HEALTH_PORT=8081   # the caddy proxy's healthcheck endpoint (127.0.0.1 only)
readonly CADDY_ENTRYPOINT='["/usr/bin/caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]'

# IMAGE_SPECS kind -> the local base image its tags are built FROM
kind_base() {
    case $1 in
        app) echo "$BASE_IMAGE" ;;
        graceful) echo "$GRACEFUL_BASE_IMAGE" ;;
        caddy) echo "$CADDY_BASE_IMAGE" ;;
        *) die "unknown image kind '$1'" ;;
    esac
}

# static busybox at $1/bin/busybox, with a symlink for every applet; copied
# from $2/bin when given (one ln per applet is ~0.4 s of forks)
install_busybox() {
    local root=$1 b=/bin/busybox a
    mkdir -p "$root/bin"
    if [ -n "${2:-}" ]; then
        cp -a "$2/bin/." "$root/bin/"
        return 0
    fi
    cp "$b" "$root/bin/busybox"
    while IFS= read -r a; do
        case $a in '' | busybox | */*) continue ;; esac
        ln -s busybox "$root/bin/$a"
    done < <("$b" --list)
}

# minimal /etc/passwd and /etc/group in $1
install_etc() {
    mkdir -p "$1/etc"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$1/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
}

# $CADDY_BIN as $1/usr/bin/caddy, with the shared libraries and the dynamic
# loader that ldd lists, each at the path ldd prints (Debian's caddy is a cgo
# build: libc, libzstd, ld-linux).
install_caddy() {
    local root=$1 deps lib
    deps=$(ldd "$CADDY_BIN" 2>&1) || true   # a static build: "not a dynamic executable", nothing to copy
    case $deps in *"not found"*) die "libraries of $CADDY_BIN are missing: $(grep 'not found' <<<"$deps" | tr -s ' \t\n' ' ')" ;; esac
    mkdir -p "$root/usr/bin"
    cp "$CADDY_BIN" "$root/usr/bin/caddy"
    while IFS= read -r lib; do
        [ -n "$lib" ] || continue
        mkdir -p "$root${lib%/*}"
        cp -L "$lib" "$root$lib"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$deps")
}

# The proxy's Caddyfile. Caddy substitutes {$VAR:default} when it loads the
# file (at container start); UPSTREAM_NAME has no default (caddy refuses to
# start without it). Why these settings: Docker's embedded DNS answers the
# alias with the address of every container on the network that has it, so
# during a start-first swap the proxy sees old and new; it re-resolves every
# second. A draining (or stopped) old container refuses connections, and for
# up to a second after it is gone the proxy may still dial its address, which
# no longer answers: a short dial timeout and retries on the next upstream
# (round robin) within lb_try_duration hide both from the client.
write_proxy_caddyfile() {
    cat <<EOF
# fleetpin test reverse proxy (tests/fleet/fleet.sh); variables: LISTEN_PORT,
# UPSTREAM_NAME (required), UPSTREAM_PORT, GRACE_PERIOD
{
	admin off
	auto_https off
	grace_period {\$GRACE_PERIOD:5s}
}

:{\$LISTEN_PORT:80} {
	reverse_proxy {
		dynamic a {
			name {\$UPSTREAM_NAME}
			port {\$UPSTREAM_PORT:8080}
			refresh 1s
			resolvers 127.0.0.11:53
			dial_timeout 1s
		}
		lb_policy round_robin
		lb_try_duration 5s
		lb_try_interval 50ms
		fail_duration 2s
		transport http {
			dial_timeout 300ms
		}
	}
}

http://127.0.0.1:${PROXY_HEALTH_PORT} {
	bind 127.0.0.1
	respond /health "ok" 200
}
EOF
}

# The graceful app's Caddyfile: /www on :8080. On SIGTERM caddy closes its
# listener at once (new connections are refused), lets the requests in flight
# finish (at most GRACE_PERIOD), closes idle keep-alive connections and exits 0.
write_graceful_caddyfile() {
    cat <<'EOF'
# fleetpin graceful test app (tests/fleet/fleet.sh); variable: GRACE_PERIOD
{
	admin off
	auto_https off
	grace_period {$GRACE_PERIOD:10s}
}

:8080 {
	root * /www
	file_server
}
EOF
}

write_build_context() {
    local ctx=$1 root cv
    # app base: busybox httpd
    root=$ctx/base/rootfs
    mkdir -p "$root"/{www,data,tmp,var/log/tomcat}
    chmod 1777 "$root/tmp"
    install_busybox "$root"
    install_etc "$root"
    cat >"$root/entrypoint.sh" <<'EOF'
#!/bin/sh
# fleetpin test app (tests/fleet/fleet.sh). With arguments: run them instead.
[ "$#" -gt 0 ] && exec "$@"
if [ -d /var/log/tomcat ] && [ -w /var/log/tomcat ]; then
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) start version=${APP_VERSION} host=$(hostname)" >>/var/log/tomcat/access.log
fi
httpd -f -p 8080 -h /www &
pid=$!
# PID 1 ignores signals without a handler: trap them so `docker stop` is instant.
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
wait "$pid"
EOF
    chmod 755 "$root/entrypoint.sh"
    cat >"$ctx/base/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin
EXPOSE 8080
HEALTHCHECK $HEALTHCHECK_OPTS CMD wget -q -O- http://127.0.0.1:8080/health
ENTRYPOINT ["/entrypoint.sh"]
EOF

    # caddy base: caddy + its libraries + busybox; caddy's autosave/data dirs
    cv=$("$CADDY_BIN" version 2>/dev/null | awk '{ print $1; exit }') || true
    [ "${cv#v}" = "$CADDY_TAG" ] || warn "$CADDY_BIN is version '${cv:-?}', but the caddy image is tagged $CADDY_TAG"
    root=$ctx/caddy/rootfs
    mkdir -p "$root"/{tmp,var/lib/caddy/config,var/lib/caddy/data}
    chmod 1777 "$root/tmp"
    install_caddy "$root"
    install_busybox "$root" "$ctx/base/rootfs"
    install_etc "$root"
    cat >"$ctx/caddy/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin XDG_CONFIG_HOME=/var/lib/caddy/config XDG_DATA_HOME=/var/lib/caddy/data
EOF

    # graceful base (FROM caddy): the app's Caddyfile, entrypoint, dirs, healthcheck
    root=$ctx/graceful/rootfs
    mkdir -p "$root"/{etc/caddy,www,data,var/log/tomcat}
    write_graceful_caddyfile >"$root/etc/caddy/Caddyfile"
    cat >"$root/entrypoint.sh" <<'EOF'
#!/bin/sh
# fleetpin graceful test app (tests/fleet/fleet.sh). With arguments: run them instead.
[ "$#" -gt 0 ] && exec "$@"
if [ -d /var/log/tomcat ] && [ -w /var/log/tomcat ]; then
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) start version=${APP_VERSION} host=$(hostname)" >>/var/log/tomcat/access.log
fi
# exec: caddy is PID 1 and handles SIGTERM itself (drains, then exits 0)
exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
EOF
    chmod 755 "$root/entrypoint.sh"
    cat >"$ctx/graceful/Dockerfile" <<EOF
FROM $CADDY_BASE_IMAGE
COPY rootfs/ /
EXPOSE 8080
HEALTHCHECK $HEALTHCHECK_OPTS CMD wget -q -O- http://127.0.0.1:8080/health
ENTRYPOINT ["/entrypoint.sh"]
EOF

    # one small context per image
    local spec repo tag ver hpath kind d
    for spec in "${IMAGE_SPECS[@]}"; do
        read -r repo tag ver hpath kind <<<"$spec"
        d="$ctx/${repo##*/}-$tag"
        mkdir -p "$d"
        if [ "$kind" = caddy ]; then   # the reverse proxy: a Caddyfile, no /www
            write_proxy_caddyfile >"$d/Caddyfile"
            {
                echo "FROM $(kind_base "$kind")"
                echo "COPY Caddyfile /etc/caddy/Caddyfile"
                echo "EXPOSE 80"
                echo "LABEL org.opencontainers.image.title=fleetpin-test-${repo##*/} org.opencontainers.image.version=$ver"
                echo "HEALTHCHECK $HEALTHCHECK_OPTS CMD wget -q -O- http://127.0.0.1:${PROXY_HEALTH_PORT}/health"
                echo "ENTRYPOINT $CADDY_ENTRYPOINT"
            } >"$d/Dockerfile"
            continue
        fi
        mkdir -p "$d/www"
        printf '%s' "$ver" >"$d/www/version"
        printf '%s' "$ver" >"$d/www/index.html"
        printf 'ok' >"$d/www/health"
        {
            echo "FROM $(kind_base "$kind")"
            echo "COPY www/ /www/"
            echo "ENV APP_VERSION=$ver"
            echo "LABEL org.opencontainers.image.title=fleetpin-test-${repo##*/} org.opencontainers.image.version=$ver"
            if [ "$hpath" != health ]; then
                echo "HEALTHCHECK $HEALTHCHECK_OPTS CMD wget -q -O- http://127.0.0.1:8080/$hpath"
            fi
        } >"$d/Dockerfile"
    done

    # Both Caddyfiles must parse with this caddy (adapt only: no listener, no storage).
    local f
    for f in "$ctx/graceful/rootfs/etc/caddy/Caddyfile" "$ctx/${CADDY_REPO##*/}-$CADDY_TAG/Caddyfile"; do
        if ! env -u LISTEN_PORT -u UPSTREAM_PORT -u GRACE_PERIOD UPSTREAM_NAME=fleet-check \
            XDG_CONFIG_HOME="$ctx/.caddy" XDG_DATA_HOME="$ctx/.caddy" \
            "$CADDY_BIN" adapt --config "$f" --adapter caddyfile >/dev/null 2>"$ctx/adapt.log"; then
            log_tail "$ctx/adapt.log"
            die "$CADDY_BIN rejects the Caddyfile $f"
        fi
    done
    rm -rf "$ctx/.caddy" "$ctx/adapt.log"
    # fixed mtimes: identical layers (digests) for identical content
    find "$ctx" -exec touch -h -d '2020-01-01 00:00:00 UTC' {} +
}

# docker build of the local base image in context dir $1/$2, tagged $3
build_base() {
    if ! docker build --network none -q -t "$3" "$1/$2" >"$1/$2.log" 2>&1; then
        log_tail "$1/$2.log"
        log "ERROR: docker build of the base image $3 failed"
        return 1
    fi
}

# ACTION (build, push or build+push) for every IMAGE_SPECS entry of KIND,
# all in parallel (context dirs and logs in CTX); fails if any failed, with
# the log tail
image_jobs() { # CTX KIND ACTION
    local ctx=$1 spec repo tag ver hpath kind d pids=() refs=() i rc=0
    for spec in "${IMAGE_SPECS[@]}"; do
        read -r repo tag ver hpath kind <<<"$spec"
        [ "$kind" = "$2" ] || continue
        d="$ctx/${repo##*/}-$tag"
        (
            if [ "$3" != push ]; then docker build --network none -q -t "$repo:$tag" "$d"; fi
            if [ "$3" != build ]; then docker push -q "$repo:$tag"; fi
        ) >>"$d.log" 2>&1 &
        pids+=($!)
        refs+=("$repo:$tag $d.log")
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            log_tail "${refs[$i]#* }"
            log "ERROR: docker $3 of ${refs[$i]%% *} failed"
            rc=1
        fi
    done
    return $rc
}

# die from build_images: first stop its background jobs ($p, $g there), whose
# own failures (dockerd goes away in the teardown) would only add noise
build_fail() {
    # shellcheck disable=SC2086 # empty ones drop out
    kill ${p:-} ${g:-} 2>/dev/null || true
    die "$1"
}

build_images() {
    local ctx=${RUN_DIR}/build spec repo tag ver hpath kind p="" g=""
    rm -rf "$ctx"
    write_build_context "$ctx"
    # hermetic client: no user config/credential helpers, legacy builder, no network
    DOCKER_HOST="unix://$(host_sock 1)"
    export DOCKER_HOST DOCKER_CONFIG="${RUN_DIR}/build-client" DOCKER_BUILDKIT=0 DOCKER_CLI_HINTS=false
    mkdir -p "$DOCKER_CONFIG"
    # The critical path is the caddy layer (40 MB): its base build, the proxy
    # build, and the proxy push, where dockerd gzips the layer (~2 s). That
    # push runs while the rest is built; the graceful pushes come last and
    # mount the layer from fleetpin/caddy (dockerd would otherwise compress it
    # again for every repository).
    build_base "$ctx" base "$BASE_IMAGE" &
    p=$!
    build_base "$ctx" caddy "$CADDY_BASE_IMAGE" || build_fail "docker build of the caddy base image failed"
    wait "$p" || build_fail "docker build of the base image failed"
    image_jobs "$ctx" caddy build || build_fail "docker build of the caddy proxy image failed"
    image_jobs "$ctx" caddy push &
    p=$!
    (build_base "$ctx" graceful "$GRACEFUL_BASE_IMAGE" && image_jobs "$ctx" graceful build) &
    g=$!
    image_jobs "$ctx" app build+push || build_fail "docker build/push of the app images failed"
    wait "$g" || build_fail "docker build of the graceful images failed"
    wait "$p" || build_fail "docker push of the caddy proxy image failed"
    image_jobs "$ctx" graceful push || build_fail "docker push of the graceful images failed"
    if [ -n "$AUTH_REG" ]; then push_auth_images "$ctx"; fi
    # every host - h1 included - starts empty and must pull
    for spec in "${IMAGE_SPECS[@]}"; do
        read -r repo tag ver hpath kind <<<"$spec"
        docker rmi -f "$repo:$tag" >/dev/null
    done
    docker rmi -f "$GRACEFUL_BASE_IMAGE" "$CADDY_BASE_IMAGE" "$BASE_IMAGE" >/dev/null
    docker image prune -af >/dev/null
    docker builder prune -af >/dev/null 2>&1 || true
    docker container prune -f >/dev/null
    [ -z "$(docker images -aq)" ] || die "h1 still has images after cleanup: $(docker images -a --format '{{.Repository}}:{{.Tag}}')"
    rm -rf "$ctx" "$DOCKER_CONFIG"
    unset DOCKER_HOST DOCKER_CONFIG DOCKER_BUILDKIT DOCKER_CLI_HINTS
}

# Copies of some app tags in the authenticated registry. Runs inside
# build_images (DOCKER_HOST=h1, private DOCKER_CONFIG: the login stored there
# is deleted with it).
push_auth_images() {
    local ctx=$1 t pids=() i
    if ! printf '%s' "$AUTH_PASSWORD" |
        docker login -u "$AUTH_USER" --password-stdin "$AUTH_REGISTRY" >"$ctx/auth-login.log" 2>&1; then
        log_tail "$ctx/auth-login.log"
        die "docker login to the auth registry $AUTH_REGISTRY failed"
    fi
    for t in "${AUTH_TAGS[@]}"; do
        (docker tag "$APP_REPO:$t" "$AUTH_APP_REPO:$t" && docker push -q "$AUTH_APP_REPO:$t") >"$ctx/auth-$t.log" 2>&1 &
        pids+=($!)
    done
    i=0
    for t in "${AUTH_TAGS[@]}"; do
        if ! wait "${pids[$i]}"; then
            log_tail "$ctx/auth-$t.log"
            die "push of $AUTH_APP_REPO:$t failed"
        fi
        i=$((i + 1))
    done
    docker logout "$AUTH_REGISTRY" >/dev/null 2>&1 || true
    for t in "${AUTH_TAGS[@]}"; do docker rmi -f "$AUTH_APP_REPO:$t" >/dev/null; done
}

# "repo tag version-string health-path kind"; kind: app (busybox httpd) or
# graceful (caddy file_server) - built FROM that base, with /www -, or caddy
# (the reverse proxy). The broken tags check a path that 404s: always unhealthy.
IMAGE_SPECS=()
for _t in "${APP_TAGS[@]}"; do
    IMAGE_SPECS+=("$APP_REPO $_t $_t $([ "$_t" = broken ] && echo health-does-not-exist || echo health) app")
done
IMAGE_SPECS+=("$PROXY_REPO $PROXY_TAG proxy-$PROXY_TAG health app")
for _t in "${GRACEFUL_TAGS[@]}"; do
    IMAGE_SPECS+=("$GRACEFUL_REPO $_t $_t $([ "$_t" = broken ] && echo health-does-not-exist || echo health) graceful")
done
IMAGE_SPECS+=("$CADDY_REPO $CADDY_TAG $CADDY_TAG health caddy")
unset _t

write_env_file() {
    local n=$1 sd=$2 k hosts="" tmp
    for k in $(seq 1 "$n"); do hosts="$hosts h$k"; done
    tmp="$ENV_FILE.tmp"
    {
        echo "FLEET_REGISTRY=$REGISTRY"
        echo "FLEET_IMAGE=$APP_REPO"
        echo "FLEET_PROXY_IMAGE=$PROXY_REPO"
        echo "FLEET_TAGS=${APP_TAGS[*]}"
        echo "FLEET_CADDY_IMAGE=$CADDY_REPO"
        echo "FLEET_CADDY_TAG=$CADDY_TAG"
        echo "FLEET_GRACEFUL_IMAGE=$GRACEFUL_REPO"
        echo "FLEET_GRACEFUL_TAGS=${GRACEFUL_TAGS[*]}"
        echo "FLEET_HOSTS=${hosts# }"
        echo "FLEET_HOSTS_COUNT=$n"
        echo "FLEET_REGISTRY_NETNS=$REG_NS"
        echo "FLEET_STORAGE_DRIVER=$sd"
        if [ -n "$TLS_HOST_K" ]; then
            echo "FLEET_TLS_HOST=h$TLS_HOST_K"
            echo "FLEET_TLS_DIR=$TLS_DIR"
        fi
        if [ -n "$LIVE_RESTORE" ]; then echo "FLEET_LIVE_RESTORE=1"; fi
        if [ -n "$SMALL_K" ]; then
            echo "FLEET_SMALL_DATAROOT=h$SMALL_K"
            echo "FLEET_SMALL_DATAROOT_DIR=${DATA_DIR}/h$SMALL_K"
            echo "FLEET_SMALL_DATAROOT_SIZE=$SMALL_SIZE"
        fi
        echo "FLEET_SSH_HOST=h$SSH_K"
        echo "FLEET_SSH_USER=$SSH_USER"
        echo "FLEET_SSH_ADDR=$(ssh_addr)"
        echo "FLEET_SSH_PORTS=${SSH_PORTS[*]}"
        echo "FLEET_SSH_KEY=$SSH_DIR/id_ed25519"
        echo "FLEET_SSH_KNOWN_HOSTS=$SSH_DIR/known_hosts"
        echo "FLEET_SSH_CONFIG=$SSH_DIR/config"
        podman_env
        if [ -n "$AUTH_REG" ]; then
            echo "FLEET_AUTH_REGISTRY=$AUTH_REGISTRY"
            echo "FLEET_AUTH_USER=$AUTH_USER"
            echo "FLEET_AUTH_PASSWORD=$AUTH_PASSWORD"
            echo "FLEET_AUTH_IMAGE=$AUTH_APP_REPO"
            echo "FLEET_AUTH_TAGS=${AUTH_TAGS[*]}"
            echo "FLEET_AUTH_REGISTRY_NETNS=$AREG_NS"
        fi
        for k in $(seq 1 "$n"); do
            echo "FLEET_H${k}_ADDR=$(host_addr "$k")"
            if host_is_tls "$k"; then
                echo "FLEET_H${k}_TCP="                     # no plain endpoint on the TLS host
                echo "FLEET_H${k}_TLS=tcp://$(host_addr "$k"):${DOCKER_TLS_PORT}"
            else
                echo "FLEET_H${k}_TCP=tcp://$(host_addr "$k"):${DOCKER_TCP_PORT}"
            fi
            echo "FLEET_H${k}_UNIX=unix://$(host_sock "$k")"
            echo "FLEET_H${k}_NETNS=$(host_ns "$k")"
            echo "FLEET_H${k}_NAME=$(host_ns "$k")"
            echo "FLEET_H${k}_PID=$(cat "$(host_run "$k")/dockerd.pid")"
        done
        swarm_env
    } >"$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

fleet_size() {
    local n=${1:-${FLEET_HOSTS_COUNT:-3}}
    case $n in '' | *[!0-9]*) die "host count must be a number 1..$MAX_HOSTS, got '$n'" ;; esac
    [ "$n" -ge 1 ] && [ "$n" -le "$MAX_HOSTS" ] || die "host count must be 1..$MAX_HOSTS, got $n"
    echo "$n"
}

# FLEET_TLS_HOST / FLEET_REGISTRY_AUTH -> TLS_HOST_K / AUTH_REG (for up)
parse_up_options() {
    local n=$1 v=${FLEET_TLS_HOST:-}
    TLS_HOST_K=""
    if [ -n "$v" ]; then
        v=${v#[hH]}
        case $v in '' | *[!0-9]* | 0*) die "FLEET_TLS_HOST must be a host name h1..h$n, got '$FLEET_TLS_HOST'" ;; esac
        [ "$v" -le "$n" ] || die "FLEET_TLS_HOST=$FLEET_TLS_HOST, but the fleet has only $n host(s)"
        TLS_HOST_K=$v
    fi
    case ${FLEET_REGISTRY_AUTH:-0} in
        1 | true | yes) AUTH_REG=1 ;;
        0 | '' | false | no) AUTH_REG="" ;;
        *) die "FLEET_REGISTRY_AUTH must be 1 or 0, got '$FLEET_REGISTRY_AUTH'" ;;
    esac
    SSH_K=2
    [ "$n" -ge 2 ] || SSH_K=1
    case ${FLEET_LIVE_RESTORE:-0} in
        1 | true | yes) LIVE_RESTORE=1 ;;
        0 | '' | false | no) LIVE_RESTORE="" ;;
        *) die "FLEET_LIVE_RESTORE must be 1 or 0, got '$FLEET_LIVE_RESTORE'" ;;
    esac
    SMALL_K=""
    SMALL_SIZE=""
    if [ -n "${FLEET_SMALL_DATAROOT:-}" ]; then
        local sh=${FLEET_SMALL_DATAROOT%%:*} sz=${FLEET_SMALL_DATAROOT#*:}
        [ "$sz" != "$FLEET_SMALL_DATAROOT" ] || sz=512m
        sh=${sh#[hH]}
        case $sh in '' | *[!0-9]* | 0*) die "FLEET_SMALL_DATAROOT must be hK[:SIZE], got '$FLEET_SMALL_DATAROOT'" ;; esac
        [ "$sh" -le "$n" ] || die "FLEET_SMALL_DATAROOT=$FLEET_SMALL_DATAROOT, but the fleet has only $n host(s)"
        case $sz in *[!0-9kmgKMG]* | '') die "FLEET_SMALL_DATAROOT size must be like 512m, got '$sz'" ;; esac
        SMALL_K=$sh
        SMALL_SIZE=$sz
    fi
}

# Certificates for the TLS host $1, in $TLS_DIR: ca.pem (+ca-key.pem),
# server-cert.pem/server-key.pem (SAN IP of the host), cert.pem/key.pem
# (client), and an unrelated second CA with its own client cert
# (other-ca.pem, other-cert.pem, other-key.pem) for "wrong CA" tests.
# ECDSA P-256 keys (instant to generate; Go, curl/OpenSSL and rustls all take them).
gen_tls_certs() {
    local k=$1 d=$TLS_DIR cnf
    mkdir -p "$d"
    chmod 755 "$d"
    cnf=$d/openssl.cnf
    cat >"$cnf" <<EOF
# written by tests/fleet/fleet.sh
[req]
distinguished_name = dn
prompt = no
[dn]
CN = fleetpin-fleet
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:$(host_addr "$k")
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    ossl() { openssl "$@" >>"$d/openssl.log" 2>&1 || { log_tail "$d/openssl.log"; die "openssl $1 failed"; }; }
    newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
    mkca() { # key cert CN
        newkey "$1"
        ossl req -new -x509 -config "$cnf" -extensions ca -key "$1" -subj "/CN=$3" -days 30 -out "$2"
    }
    mkcert() { # key cert CN extensions ca-cert ca-key
        newkey "$1"
        ossl req -new -config "$cnf" -key "$1" -subj "/CN=$3" -out "$2.csr"
        ossl x509 -req -in "$2.csr" -CA "$5" -CAkey "$6" -set_serial "0x$(openssl rand -hex 8)" -days 30 \
            -extfile "$cnf" -extensions "$4" -out "$2"
        rm -f "$2.csr"
    }
    mkca "$d/ca-key.pem" "$d/ca.pem" "fleetpin-fleet test CA"
    mkcert "$d/server-key.pem" "$d/server-cert.pem" "$(host_ns "$k")" server "$d/ca.pem" "$d/ca-key.pem"
    mkcert "$d/key.pem" "$d/cert.pem" "fleetpin-fleet client" client "$d/ca.pem" "$d/ca-key.pem"
    mkca "$d/other-ca-key.pem" "$d/other-ca.pem" "fleetpin-fleet OTHER test CA"
    mkcert "$d/other-key.pem" "$d/other-cert.pem" "fleetpin-fleet other client" client "$d/other-ca.pem" "$d/other-ca-key.pem"
    # CA and server keys: root only. Client keys readable, so that tests not
    # running as root can use them (plain hosts' port 2375 is open to them anyway).
    chmod 644 "$d"/*.pem
    chmod 600 "$d/ca-key.pem" "$d/other-ca-key.pem" "$d/server-key.pem"
    rm -f "$d/openssl.log" "$cnf"
}

# ---------------------------------------------------------------------- ssh --
# The fleet's sshd, for ssh:// endpoints and git over ssh. It runs in host
# SSH_K's network namespace (address 10.213.7.(10+K), ports 22 and 2222) and
# in a mount namespace of its own, in which a minimal /etc/shadow is bound
# over the real one: with UsePAM no, sshd refuses an account whose password
# field is locked (`!`), as root's is on many machines; the copy says `*`
# (no password usable, not locked). Nothing in the root mount namespace
# changes, except /run/sshd (sshd's privilege separation directory), made
# only if missing and removed again by `down`.
# Sessions get DOCKER_HOST=unix://<hK's socket> from sshd_config's SetEnv, so
# `docker system dial-stdio` (what fleetpin and the docker CLI run over ssh)
# reaches that host's dockerd, and nothing like /var/run/docker.sock is
# created on the machine. git-upload-pack / git-receive-pack are the
# machine's (the sshd shares its filesystem): a bare repository anywhere on
# disk is reachable as ssh://root@ADDR/ABSOLUTE/PATH.git.
# Files in $SSH_DIR: ssh_host_ed25519_key(.pub), id_ed25519(.pub) (the client
# key, root-only), authorized_keys, known_hosts (both ports), config (for
# `ssh -F`), sshd_config, shadow, sshd.log.
ssh_addr() { host_addr "$SSH_K"; }

gen_ssh_files() {
    local d=$SSH_DIR addr hostkey p
    [ -n "$SSH_DIR" ] && [ -n "$SSH_K" ] || die "gen_ssh_files: SSH_DIR/SSH_K unset"
    addr=$(ssh_addr)
    mkdir -p "$d"
    chmod 755 "$d"
    rm -f "$d"/ssh_host_ed25519_key* "$d"/id_ed25519*
    ssh-keygen -q -t ed25519 -N '' -C "fleetpin-fleet sshd" -f "$d/ssh_host_ed25519_key" </dev/null >/dev/null ||
        die "ssh-keygen (host key) failed"
    ssh-keygen -q -t ed25519 -N '' -C "fleetpin-fleet client" -f "$d/id_ed25519" </dev/null >/dev/null ||
        die "ssh-keygen (client key) failed"
    chmod 600 "$d/ssh_host_ed25519_key" "$d/id_ed25519"
    cp "$d/id_ed25519.pub" "$d/authorized_keys"
    chmod 644 "$d/authorized_keys"
    hostkey=$(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")
    : >"$d/known_hosts"
    for p in "${SSH_PORTS[@]}"; do
        if [ "$p" = 22 ]; then echo "$addr $hostkey"; else echo "[$addr]:$p $hostkey"; fi >>"$d/known_hosts"
    done
    chmod 644 "$d/known_hosts"
    {
        echo "# written by tests/fleet/fleet.sh: \`ssh -F $d/config root@$addr\` (or -p 2222)"
        echo "# reaches the fleet's sshd with the fleet's key and known_hosts, and nothing else."
        echo "Host $addr"
        echo "    IdentityFile $d/id_ed25519"
        echo "    IdentitiesOnly yes"
        echo "    IdentityAgent none"
        echo "    UserKnownHostsFile $d/known_hosts"
        echo "    GlobalKnownHostsFile /dev/null"
        echo "    StrictHostKeyChecking yes"
        echo "    BatchMode yes"
        echo "    ConnectTimeout 5"
    } >"$d/config"
    chmod 644 "$d/config"
    printf 'root:*:19000:0:99999:7:::\n' >"$d/shadow"
    chmod 600 "$d/shadow"
    {
        echo "# written by tests/fleet/fleet.sh - the fleet's sshd in $(host_ns "$SSH_K"): key authentication only"
        for p in "${SSH_PORTS[@]}"; do echo "ListenAddress $addr:$p"; done
        echo "HostKey $d/ssh_host_ed25519_key"
        echo "PidFile $d/sshd.pid"
        echo "AuthorizedKeysFile $d/authorized_keys"
        echo "AuthenticationMethods publickey"
        echo "PubkeyAuthentication yes"
        echo "PasswordAuthentication no"
        echo "KbdInteractiveAuthentication no"
        echo "PermitRootLogin prohibit-password"
        echo "AllowUsers $SSH_USER"
        echo "UsePAM no"
        echo "UseDNS no"
        echo "PrintMotd no"
        echo "PrintLastLog no"
        echo "X11Forwarding no"
        echo "AllowAgentForwarding no"
        echo "AllowTcpForwarding no"
        echo "PermitTunnel no"
        echo "# tests open sessions in parallel"
        echo "MaxStartups 100:30:300"
        echo "MaxSessions 50"
        echo "LogLevel VERBOSE"
        echo "SetEnv DOCKER_HOST=unix://$(host_sock "$SSH_K")"
    } >"$d/sshd_config"
    chmod 644 "$d/sshd_config"
    if [ ! -d /run/sshd ]; then
        mkdir -m 755 /run/sshd
        touch "$d/created-run-sshd"
    fi
    /usr/sbin/sshd -t -f "$d/sshd_config" >"$d/sshd-check.log" 2>&1 || {
        log_tail "$d/sshd-check.log"
        die "sshd -t refused $d/sshd_config"
    }
    rm -f "$d/sshd-check.log"
}

# The launch line for the sshd (launch.sh's start_ssh): hK's network
# namespace, a private mount namespace with the minimal shadow, sshd in the
# foreground (-D) logging to stderr (-e: sshd.log).
sshd_launch() {
    local cgroot
    cgroot=$(cg_track_root)
    emit_launch "$SSH_DIR/spawn.pid" "${cgroot:+$cgroot/ssh}" "$SSH_DIR/sshd.log" \
        nsenter --net=/var/run/netns/"$(host_ns "$SSH_K")" \
        unshare --mount --propagation private \
        sh -c 'mount --bind "$0/shadow" /etc/shadow && exec /usr/sbin/sshd -D -e -f "$0/sshd_config"' "$SSH_DIR"
}

# `ssh` to the fleet's sshd on port $1, running "${@:2}" there
fleet_ssh() {
    local port=$1
    shift
    ssh -F "$SSH_DIR/config" -o ConnectTimeout=2 -p "$port" "$SSH_USER@$(ssh_addr)" "$@"
}

# the sshd answers on every port, and a session there reaches hK's dockerd
ssh_ready() {
    local p
    for p in "${SSH_PORTS[@]}"; do
        [ "$(fleet_ssh "$p" docker version --format '{{.Server.Os}}' </dev/null 2>/dev/null)" = linux ] || return 1
    done
}

wait_ssh() {
    local deadline=$(($(date +%s) + START_TIMEOUT)) pid
    until ssh_ready; do
        pid=$(cat "$SSH_DIR/spawn.pid" 2>/dev/null || echo "")
        if [ -n "$pid" ] && ! alive "$pid"; then
            log_tail "$SSH_DIR/sshd.log"
            die "the sshd exited during startup (log: $SSH_DIR/sshd.log)"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log_tail "$SSH_DIR/sshd.log"
            die "ssh -F $SSH_DIR/config $SSH_USER@$(ssh_addr) could not run \`docker version\` on ports ${SSH_PORTS[*]} within ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}


do_up() {
    local n sd k t0
    n=$(fleet_size "${1:-}")
    need_root
    parse_up_options "$n"
    t0=$(date +%s)
    ensure_packages
    local rootd
    rootd=$(root_ns_daemon_pids | tr '\n' ' ')
    [ -z "$rootd" ] || warn "daemon(s) running in the ROOT network namespace (not ours, left alone): pids $rootd"

    log "up: cleaning up any previous fleet"
    do_down quiet || die "could not clean up the previous fleet (see leftovers above)"

    mkdir -p "$RUN_DIR" "$DATA_DIR"
    chmod 755 "$RUN_DIR" "$DATA_DIR"
    sd=$(storage_driver)
    log "up: $n host(s), storage driver $sd, network ${NET_PREFIX}.0/24 on $BRIDGE${TLS_HOST_K:+, TLS on h$TLS_HOST_K}${AUTH_REG:+, auth registry $AUTH_REGISTRY}${LIVE_RESTORE:+, live-restore}"
    setup_network "$n"
    if [ -n "$TLS_HOST_K" ]; then
        gen_tls_certs "$TLS_HOST_K"
        log "up: TLS certificates for h$TLS_HOST_K in $TLS_DIR"
    fi
    gen_ssh_files
    local cgroot
    cgroot=$(cg_track_root)
    [ -n "$cgroot" ] && mkdir -p "$cgroot"
    start_daemons "$n" "$sd"
    wait_registry reg
    if [ -n "$AUTH_REG" ]; then wait_registry areg; fi
    wait_host 1
    log "up: registry and h1 ready; building test images on h1"
    build_images
    log "up: images pushed to $REGISTRY (${APP_REPO##*/}: ${APP_TAGS[*]}; ${PROXY_REPO##*/}: $PROXY_TAG; ${CADDY_REPO##*/}: $CADDY_TAG; ${GRACEFUL_REPO##*/}: ${GRACEFUL_TAGS[*]}); waiting for all hosts"
    for k in $(seq 2 "$n"); do wait_host "$k"; done
    wait_ssh
    swarm_form
    log "up: swarm ${SWARM_NODES[*]} at $(swarm_addr "${SWARM_NODES[0]}").. (manager ${SWARM_NODES[0]})"
    log "up: sshd on $(ssh_addr) ports ${SSH_PORTS[*]} (in h$SSH_K's namespace, DOCKER_HOST = h$SSH_K)"
    podman_up
    write_env_file "$n" "$sd"
    log "up: fleet ready in $(($(date +%s) - t0))s: h1..h$n at $(host_addr 1)..$(host_addr "$n"), env in $ENV_FILE"
}

# ------------------------------------------------------------------- podman --
# The Podman host p1: rootful Podman (Debian's podman 4.3) serving its
# Docker-compatible API (`podman system service`) on tcp://10.213.7.41:2375,
# in a namespace of its own (fpfleet-p1) on the fleet's bridge. Everything it
# keeps is private: containers.conf, storage.conf and registries.conf in
# $PODMAN_RUN (read through CONTAINERS_CONF, CONTAINERS_STORAGE_CONF,
# CONTAINERS_REGISTRIES_CONF), images in $PODMAN_DATA, networks (netavark,
# with aardvark-dns for network aliases) in $PODMAN_RUN/networks; nothing in
# /etc/containers or /var/lib/containers is read or written.
# Why these settings: no systemd here, so cgroupfs and a file events log
# (Podman's healthchecks need systemd timers and do not run: fleetpin falls
# back to its monitor gate, see docs/podman.md); the default ulimits, because
# rootful Podman asks for nofile/nproc 1048576 and runc cannot raise a limit
# above the hard one it was given; the fleet's plain-http registries as
# insecure. Self-contained: ensure_packages, up, down and the env file each
# call one function below.
readonly PODMAN_NS=${NS_PREFIX}p1
readonly PODMAN_ADDR=${NET_PREFIX}.41   # past h1..h12 (.11–.22): MAX_HOSTS fleets must not collide
readonly PODMAN_PORT=2375
readonly PODMAN_RUN=${RUN_DIR}/p1
readonly PODMAN_DATA=${DATA_DIR}/p1

podman_packages() { # called by ensure_packages: adds to its pkgs array
    command -v podman >/dev/null || pkgs+=(podman)
    command -v conmon >/dev/null || pkgs+=(conmon)
    [ -x /usr/lib/podman/netavark ] || pkgs+=(netavark)
    [ -x /usr/lib/podman/aardvark-dns ] || pkgs+=(aardvark-dns)
}

# the podman CLI on the fleet's Podman storage (no service needed)
podman_cli() {
    CONTAINERS_CONF=$PODMAN_RUN/containers.conf CONTAINERS_STORAGE_CONF=$PODMAN_RUN/storage.conf \
        CONTAINERS_REGISTRIES_CONF=$PODMAN_RUN/registries.conf podman "$@"
}

podman_up() {
    local d=$PODMAN_RUN nofile cgroot deadline
    mkdir -p "$d/networks" "$d/tmp" "$PODMAN_DATA"
    attach_ns "${VETH_PREFIX}p1" "$PODMAN_NS" "$PODMAN_ADDR"
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    {
        echo "# written by tests/fleet/fleet.sh - the fleet's Podman host"
        echo "[containers]"
        echo "log_driver = \"k8s-file\""
        echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=4096:4096\"]"
        echo "[engine]"
        echo "cgroup_manager = \"cgroupfs\""
        echo "events_logger = \"file\""
        echo "tmp_dir = \"$d/tmp\""
        echo "runtime = \"runc\""
        echo "[network]"
        echo "network_backend = \"netavark\""
        echo "network_config_dir = \"$d/networks\""
    } >"$d/containers.conf"
    {
        echo "# written by tests/fleet/fleet.sh"
        echo "[storage]"
        echo "driver = \"overlay\""
        echo "graphroot = \"$PODMAN_DATA/storage\""
        echo "runroot = \"$d/storage\""
    } >"$d/storage.conf"
    {
        echo "# written by tests/fleet/fleet.sh: the fleet's registries speak plain http"
        echo "unqualified-search-registries = []"
        echo "[[registry]]"
        echo "location = \"$REGISTRY\""
        echo "insecure = true"
        if [ -n "$AUTH_REG" ]; then
            echo "[[registry]]"
            echo "location = \"$AUTH_REGISTRY\""
            echo "insecure = true"
        fi
    } >"$d/registries.conf"
    cgroot=$(cg_track_root)
    spawn "${cgroot:+$cgroot/p1}" "$d/podman.log" \
        env CONTAINERS_CONF="$d/containers.conf" CONTAINERS_STORAGE_CONF="$d/storage.conf" \
        CONTAINERS_REGISTRIES_CONF="$d/registries.conf" \
        nsenter --net=/var/run/netns/"$PODMAN_NS" \
        podman system service --time=0 "tcp:$PODMAN_ADDR:$PODMAN_PORT" >"$d/podman.pid"
    deadline=$(($(date +%s) + START_TIMEOUT))
    until [ "$(qcurl "http://$PODMAN_ADDR:$PODMAN_PORT/_ping" 2>/dev/null)" = OK ]; do
        if ! alive "$(cat "$d/podman.pid")" || [ "$(date +%s)" -ge "$deadline" ]; then
            log_tail "$d/podman.log"
            die "podman system service did not answer on tcp://$PODMAN_ADDR:$PODMAN_PORT"
        fi
        sleep 0.2
    done
    log "up: Podman $(podman --version | awk '{print $3}') at tcp://$PODMAN_ADDR:$PODMAN_PORT ($PODMAN_NS)"
}

# Called by `down` before the fleet's processes are killed: Podman's
# containers (their conmon outside the namespace, their network namespaces
# under /run/netns) are removed through its own CLI; `down` then kills the
# service with the rest (tracking cgroup, namespace) and removes $PODMAN_RUN
# and $PODMAN_DATA.
podman_down() {
    [ -f "$PODMAN_RUN/storage.conf" ] || return 0
    command -v podman >/dev/null || return 0
    podman_cli rm --all --force --time 0 >/dev/null 2>&1 || true
    podman_cli network prune --force >/dev/null 2>&1 || true
    local p
    for p in $(pgrep -f "conmon .*$PODMAN_RUN" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
}

# fleet.env's FLEET_PODMAN_* block (nothing when the Podman host is not up)
podman_env() {
    [ -f "$PODMAN_RUN/podman.pid" ] || return 0
    echo "FLEET_PODMAN_HOST=p1"
    echo "FLEET_PODMAN_ADDR=$PODMAN_ADDR"
    echo "FLEET_PODMAN_TCP=tcp://$PODMAN_ADDR:$PODMAN_PORT"
    echo "FLEET_PODMAN_NETNS=$PODMAN_NS"
    echo "FLEET_PODMAN_VERSION=$(podman --version | awk '{print $3}')"
    echo "FLEET_PODMAN_PID=$(cat "$PODMAN_RUN/podman.pid")"
}

# -------------------------------------------------------------------- swarm --
# A two-node Docker Swarm on hosts of its own (issue 15): s1 (manager) and s2
# (worker), each one more dockerd in its own namespace on the fleet bridge,
# WITHOUT live-restore (Swarm mode refuses it). h1..hN stay plain hosts, so
# plain-host tests never see a swarm. The ingress routing mesh does not route
# inside these namespaces; swarm tests publish ports in host mode, which
# answer on each node's own address. `down` removes them with everything else
# (namespaces fpfleet-sK, veths fpf-sK, tracking cgroups, data dirs).
readonly SWARM_NODES=(s1 s2)                  # first = manager
readonly SWARM_ADDR_POOL=10.231.0.0/16        # overlay subnets (ingress, service networks)
swarm_addr() { echo "${NET_PREFIX}.$((30 + ${1#s}))"; }
swarm_ns() { echo "${NS_PREFIX}$1"; }
swarm_run() { echo "${RUN_DIR}/$1"; }
swarm_sock() { echo "${RUN_DIR}/$1/docker.sock"; }
swarm_docker() { local s=$1; shift; docker -H "unix://$(swarm_sock "$s")" "$@"; }

swarm_network() {
    local s
    for s in "${SWARM_NODES[@]}"; do attach_ns "${VETH_PREFIX}$s" "$(swarm_ns "$s")" "$(swarm_addr "$s")"; done
}

swarm_dockerd_launch() { # sK (the same daemon as dockerd_launch, minus live-restore and TLS)
    local s=$1 d cgroot extra=()
    d=$(swarm_run "$s")
    mkdir -p "$d" "${DATA_DIR}/$s"
    printf '{\n  "deprecated-key-path": "%s/key.json"\n}\n' "$d" >"$d/daemon.json"
    cgroot=$(cg_track_root)
    if [ -n "$AUTH_REG" ]; then extra+=(--insecure-registry "$AUTH_REGISTRY"); fi
    emit_launch "$d/spawn.pid" "${cgroot:+$cgroot/$s/daemon}" "$d/dockerd.log" \
        nsenter --net=/var/run/netns/"$(swarm_ns "$s")" \
        unshare --uts \
        sh -c 'echo "$0" > /proc/sys/kernel/hostname && exec "$@"' "$(swarm_ns "$s")" \
        dockerd \
        --config-file "$d/daemon.json" \
        --host "unix://$d/docker.sock" \
        --host "tcp://$(swarm_addr "$s"):${DOCKER_TCP_PORT}" --tls=false \
        --data-root "${DATA_DIR}/$s" \
        --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" \
        --storage-driver "$2" \
        --exec-opt native.cgroupdriver=cgroupfs \
        --cgroup-parent "/${CG_NAME}/$s" \
        --bip "172.31.$((30 + ${s#s})).1/24" \
        --insecure-registry "$REGISTRY" \
        ${extra[@]+"${extra[@]}"} \
        --iptables=true
}

swarm_wait_node() { # sK
    local s=$1 deadline=$(($(date +%s) + START_TIMEOUT)) d
    d=$(swarm_run "$s")
    until [ "$(qcurl --unix-socket "$(swarm_sock "$s")" http://fleet/_ping 2>/dev/null)" = OK ] &&
        [ "$(qcurl "http://$(swarm_addr "$s"):${DOCKER_TCP_PORT}/_ping" 2>/dev/null)" = OK ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log_tail "$d/dockerd.log"
            die "dockerd for swarm node $s did not answer /_ping within ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

# init on the manager, join the workers; idempotent (a node already in the
# swarm is left as it is)
swarm_form() {
    local m=${SWARM_NODES[0]} s token state
    for s in "${SWARM_NODES[@]}"; do swarm_wait_node "$s"; done
    state=$(swarm_docker "$m" info --format '{{.Swarm.LocalNodeState}}')
    if [ "$state" != active ]; then
        swarm_docker "$m" swarm init --advertise-addr "$(swarm_addr "$m")" \
            --default-addr-pool "$SWARM_ADDR_POOL" >/dev/null || die "docker swarm init on $m failed"
    fi
    token=$(swarm_docker "$m" swarm join-token -q worker)
    for s in "${SWARM_NODES[@]:1}"; do
        state=$(swarm_docker "$s" info --format '{{.Swarm.LocalNodeState}}')
        [ "$state" = active ] && continue
        swarm_docker "$s" swarm join --advertise-addr "$(swarm_addr "$s")" --token "$token" \
            "$(swarm_addr "$m"):2377" >/dev/null || die "docker swarm join on $s failed"
    done
    local deadline=$(($(date +%s) + START_TIMEOUT)) ready
    until ready=$(swarm_docker "$m" node ls --format '{{.Status}}' | grep -c '^Ready$') &&
        [ "$ready" -eq "${#SWARM_NODES[@]}" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "swarm: only ${ready:-0} of ${#SWARM_NODES[@]} nodes Ready"
        sleep 0.5
    done
}

swarm_env() {
    local s S
    echo "FLEET_SWARM_MANAGER=tcp://$(swarm_addr "${SWARM_NODES[0]}"):${DOCKER_TCP_PORT}"
    echo "FLEET_SWARM_NODES=${SWARM_NODES[*]}"
    for s in "${SWARM_NODES[@]}"; do
        S=${s^^}
        echo "FLEET_${S}_ADDR=$(swarm_addr "$s")"
        echo "FLEET_${S}_TCP=tcp://$(swarm_addr "$s"):${DOCKER_TCP_PORT}"
        echo "FLEET_${S}_UNIX=unix://$(swarm_sock "$s")"
        echo "FLEET_${S}_NETNS=$(swarm_ns "$s")"
    done
}

# ------------------------------------------------------------ env / status --
read_env_file() { # -> assoc array FLEET_ENV
    [ -r "$ENV_FILE" ] || die "fleet is not up ($ENV_FILE missing); run: tests/fleet/fleet.sh up"
    declare -gA FLEET_ENV=()
    local k v
    while IFS='=' read -r k v; do
        [[ $k =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
        FLEET_ENV[$k]=$v
    done <"$ENV_FILE"
}

# fleet.env -> FLEET_ENV, TLS_HOST_K, AUTH_REG (the options `up` was given)
load_fleet() {
    read_env_file
    TLS_HOST_K=${FLEET_ENV[FLEET_TLS_HOST]:-}
    TLS_HOST_K=${TLS_HOST_K#h}
    AUTH_REG=""
    if [ -n "${FLEET_ENV[FLEET_AUTH_REGISTRY]:-}" ]; then AUTH_REG=1; fi
    SSH_K=${FLEET_ENV[FLEET_SSH_HOST]:-}
    SSH_K=${SSH_K#h}
}

# Hosts taken down on purpose (kill-host/stop-host) are not an error here.
check_fleet_alive() {
    local h K pid
    for h in ${FLEET_ENV[FLEET_HOSTS]}; do
        [ -e "${RUN_DIR}/$h/down" ] && continue
        K=${h^^}
        pid=${FLEET_ENV[FLEET_${K}_PID]:-}
        [ -n "$pid" ] && alive "$pid" ||
            die "fleet is not up: dockerd of $h (pid ${pid:-?}) is not running; run: tests/fleet/fleet.sh up"
    done
}

shell_quote() { # only when needed, so most lines read export KEY=VALUE
    if [[ $1 =~ ^[A-Za-z0-9_./:@,+=-]*$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

do_env() {
    read_env_file
    check_fleet_alive
    local k v
    while IFS='=' read -r k v; do
        [[ $k =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
        printf 'export %s=%s\n' "$k" "$(shell_quote "$v")"
    done <"$ENV_FILE"
    printf 'export FLEETPIN_FLEET_ENV=%s\n' "$ENV_FILE"
}

# why a host/registry is down on purpose: " (killed by kill-host)", " (network cut)", ...
down_note() { # DIR [host|registry]
    local why="" n=""
    if [ -e "$1/down" ]; then why=$(cat "$1/down" 2>/dev/null || true); fi
    case $why in
        killed) n=" (killed by kill-host)" ;;
        stopped) n=" (stopped by stop-${2:-host})" ;;
    esac
    if [ -e "$1/cut" ]; then n="$n (network cut)"; fi
    printf '%s' "$n"
}

do_status() {
    load_fleet
    local h k addr sock ok=0 u t ver n which d hp
    for which in reg ${AUTH_REG:+areg}; do
        d=$(reg_dir "$which")
        hp=$(reg_hostport "$which")
        if registry_ready "$which"; then
            if [ "$which" = areg ]; then
                n=$(qcurl -u "$AUTH_USER:$AUTH_PASSWORD" "http://$hp/v2/_catalog" | tr -dc '[:print:]' || true)
            else
                n=$(qcurl "http://$hp/v2/_catalog" | tr -dc '[:print:]' || true)
            fi
            printf '%-9s %-12s ok    %s\n' "$(reg_status_name "$which")" "${hp%:*}" "$n"
        else
            printf '%-9s %-12s DOWN  http://%s/v2/%s\n' "$(reg_status_name "$which")" "${hp%:*}" "$hp" "$(down_note "$d" registry)"
            ok=1
        fi
    done
    if [ -n "$SSH_K" ]; then
        if ssh_ready; then
            printf '%-9s %-12s ok    ports %s, user %s, docker = h%s\n' sshd "$(ssh_addr)" "${SSH_PORTS[*]}" "$SSH_USER" "$SSH_K"
        else
            printf '%-9s %-12s DOWN  ssh -F %s -p PORT %s@%s docker version\n' sshd "$(ssh_addr)" "$SSH_DIR/config" "$SSH_USER" "$(ssh_addr)"
            ok=1
        fi
    fi
    for h in ${FLEET_ENV[FLEET_HOSTS]}; do
        k=${h#h}
        addr=${FLEET_ENV[FLEET_H${k}_ADDR]}
        sock=${FLEET_ENV[FLEET_H${k}_UNIX]#unix://}
        u=$(qcurl --unix-socket "$sock" http://fleet/_ping 2>/dev/null || true)
        t=$(host_tcp_curl "$k" /_ping 2>/dev/null || true)
        if [ "$u" = OK ] && [ "$t" = OK ]; then
            ver=$(qcurl --unix-socket "$sock" http://fleet/version | sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/engine \1 api \2/p' | head -n1 || true)
            n=$(qcurl --unix-socket "$sock" http://fleet/containers/json | grep -o '"Id"' | wc -l || true)
            printf '%-9s %-12s ok    %s, %s running container(s), pid %s%s\n' "$h" "$addr" "$ver" "$n" \
                "${FLEET_ENV[FLEET_H${k}_PID]}" "$(host_is_tls "$k" && echo ", TLS :$DOCKER_TLS_PORT")"
        else
            printf '%-9s %-12s DOWN  unix:%s %s:%s%s\n' "$h" "$addr" "${u:-no}" \
                "$(host_is_tls "$k" && echo tls || echo tcp)" "${t:-no}" "$(down_note "$(host_run "$k")")"
            ok=1
        fi
    done
    return $ok
}

# -------------------------------------------------------- fault injection --
# kill-host, stop-host, start-host, cut, restore, stop-registry and
# start-registry act on a running fleet. They do NOT take the fleet lock (`run`
# holds it while the tests run, and the tests call these), only a lock per
# daemon in RUN_DIR, so that two of them never act on one daemon at once.
# Markers: RUN_DIR/<hK|registry|aregistry>/down ("killed"/"stopped") and
# RUN_DIR/hK/cut; status shows them, env ignores hosts that are down.

now_ms() { date +%s%3N; }
secs_since() { # START_MS -> "1.2s"
    local ms=$(($(now_ms) - $1))
    printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# exclusive lock RUN_DIR/$1.lock on a new fd, held until this script exits
ctl_lock() {
    local f=${RUN_DIR}/$1.lock fd
    [ -d "${f%/*}" ] || die "fleet is not up (${f%/*} missing)"
    exec {fd}>"$f"
    if ! flock -n "$fd"; then
        log "waiting for another fleet.sh acting on ${1%/*} (lock $f)"
        flock -w 300 "$fd" || die "timed out waiting for the lock $f"
    fi
}

# "hK" -> K, checked against FLEET_HOSTS
parse_host() {
    local h=${1:-}
    [ -n "$h" ] || die "which host? usage: fleet.sh $CMD hK (hosts: ${FLEET_ENV[FLEET_HOSTS]})"
    case " ${FLEET_ENV[FLEET_HOSTS]} " in
        *" $h "*) echo "${h#h}" ;;
        *) die "unknown host '$h' (this fleet has: ${FLEET_ENV[FLEET_HOSTS]})" ;;
    esac
}

# live processes in network namespace $1 whose comm matches the regex $2
netns_procs() {
    local p comm
    for p in $(ip netns pids "$1" 2>/dev/null); do
        alive "$p" || continue
        read -r comm 2>/dev/null <"/proc/$p/comm" || continue
        [[ $comm =~ ^($2)$ ]] && echo "$p"
    done
    return 0
}

# the engine of host K: dockerd, its containerd and docker-proxies (NOT the
# shims and containers), plus a launch still on its way to exec dockerd
host_daemon_pids() {
    local k=$1 p comm
    {
        netns_procs "$(host_ns "$k")" 'dockerd|containerd|docker-proxy'
        p=$(cat "$(host_run "$k")/spawn.pid" 2>/dev/null || true)
        if [ -n "$p" ] && alive "$p"; then
            comm=$(cat "/proc/$p/comm" 2>/dev/null || true)
            case $comm in
                nsenter | unshare | sh)   # only if it is really our launch (pid reuse)
                    case $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) in *" $(host_run "$k")/daemon.json "*) echo "$p" ;; esac
                    ;;
            esac
        fi
    } | sort -un
}
host_dockerd_pid() { netns_procs "$(host_ns "$1")" dockerd | head -n1; }
# shims of host K's containers (they live in the host's namespace, one per container)
host_shim_count() { netns_procs "$(host_ns "$1")" 'containerd-shim.*' | wc -l; }

wait_dead() { # TIMEOUT_S PID... -> 0 once none is alive (zombies count as dead)
    local t=$1 p left i
    shift
    for i in $(seq 1 $((t * 10))); do
        left=""
        for p in "$@"; do alive "$p" && left="$left $p"; done
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    return 1
}

# The keeper (launch.sh under tini) is alive and serves start requests.
keeper_check() {
    local f=${RUN_DIR}/keeper.fifo p live=""
    grep -qxF "$CTL_MARKER" "${RUN_DIR}/launch.sh" 2>/dev/null ||
        die "this fleet was started by an older fleet.sh whose keeper cannot restart daemons; run fleet.sh up again"
    for p in $(keeper_pids); do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = bash ] && alive "$p"; then live=1; fi
    done
    if [ -z "$live" ] || [ ! -p "$f" ]; then die "the fleet's keeper (tini + ${RUN_DIR}/launch.sh) is not running; run fleet.sh up again"; fi
}

# Ask the keeper to run start_$1 again.
keeper_request() {
    local f=${RUN_DIR}/keeper.fifo fd
    keeper_check
    exec {fd}<>"$f" # read-write: never blocks
    printf '%s\n' "$1" >&"$fd"
    exec {fd}>&-
}

# replace (or add) KEY=VALUE in fleet.env, atomically
env_set() {
    ctl_lock env
    awk -v k="$1" -v v="$2" 'index($0, k "=") == 1 { if (!d) print k "=" v; d = 1; next } { print } END { if (!d) print k "=" v }' \
        "$ENV_FILE" >"$ENV_FILE.tmp.$$"
    mv -f "$ENV_FILE.tmp.$$" "$ENV_FILE"
}

# die unless neither the unix socket nor the TCP endpoint of host K answers
assert_host_dead() {
    local k=$1
    if [ "$(qcurl --unix-socket "$(host_sock "$k")" http://fleet/_ping 2>/dev/null)" = OK ]; then
        die "h$k: the unix socket still answers /_ping"
    fi
    if [ "$(host_tcp_curl "$k" /_ping --connect-timeout 1 2>/dev/null)" = OK ]; then
        die "h$k: $(host_tcp_url "$k") still answers /_ping"
    fi
}

do_kill_host() {
    local k d pids p what="" t0 nproxy=0
    k=$(parse_host "${1:-}")
    d=$(host_run "$k")
    ctl_lock "h$k/ctl"
    t0=$(now_ms)
    pids=$(host_daemon_pids "$k")
    # FLEET_KILL_DOCKERD_ONLY=1: dockerd alone dies, as under systemd where containerd is a
    # service of its own (Debian's docker.service runs dockerd --containerd=…); by default the
    # whole engine (dockerd, its containerd, its docker-proxy children) dies at once.
    if [ "${FLEET_KILL_DOCKERD_ONLY:-0}" = 1 ] && [ -n "$pids" ]; then
        pids=$(for p in $pids; do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = dockerd ] && echo "$p"; done)
    fi
    if [ -z "$pids" ]; then
        log "h$k: dockerd is not running; nothing to kill"
    else
        for p in $pids; do
            case $(cat "/proc/$p/comm" 2>/dev/null || true) in
                docker-proxy) nproxy=$((nproxy + 1)) ;;
                *) what="$what $(cat "/proc/$p/comm" 2>/dev/null || echo '?')[$p]" ;;
            esac
        done
        [ "$nproxy" -eq 0 ] || what="$what + $nproxy docker-proxy"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        # shellcheck disable=SC2086
        wait_dead 10 $pids || die "h$k: still alive 10 s after SIGKILL:$what"
    fi
    echo killed >"$d/down"
    assert_host_dead "$k"
    [ -z "$pids" ] || log "h$k: SIGKILLed$what in $(secs_since "$t0"); $(host_shim_count "$k") container(s) keep running as orphans; unix socket and TCP are dead"
}

do_stop_host() {
    local k d dpid rest t0
    k=$(parse_host "${1:-}")
    d=$(host_run "$k")
    ctl_lock "h$k/ctl"
    t0=$(now_ms)
    dpid=$(host_dockerd_pid "$k")
    if [ -z "$dpid" ]; then
        log "h$k: dockerd is not running; nothing to stop"
        [ -e "$d/down" ] || echo stopped >"$d/down"
        return 0
    fi
    log "h$k: stopping dockerd (pid $dpid) with SIGTERM, waiting up to ${STOP_TIMEOUT}s"
    kill -TERM "$dpid"
    wait_dead "$STOP_TIMEOUT" "$dpid" ||
        die "h$k: dockerd (pid $dpid) did not exit within ${STOP_TIMEOUT}s of SIGTERM (FLEET_STOP_TIMEOUT; or: fleet.sh kill-host h$k)"
    # its containerd (and docker-proxies) go down with it
    rest=$(host_daemon_pids "$k")
    # shellcheck disable=SC2086
    if [ -n "$rest" ] && ! wait_dead 10 $rest; then
        warn "h$k: left running 10 s after dockerd exited (SIGKILLing them): ${rest//$'\n'/ }"
        kill -KILL $rest 2>/dev/null || true
        wait_dead 5 $rest || die "h$k: still alive after SIGKILL: ${rest//$'\n'/ }"
    fi
    echo stopped >"$d/down"
    assert_host_dead "$k"
    log "h$k: dockerd stopped in $(secs_since "$t0"); $(host_shim_count "$k") container(s) still running"
}

do_start_host() {
    local k d dpid p mode="" t0 i n
    k=$(parse_host "${1:-}")
    d=$(host_run "$k")
    ctl_lock "h$k/ctl"
    keeper_check
    t0=$(now_ms)
    if [ -e "$d/cut" ]; then
        mode=unix-only
        warn "h$k's network is cut: waiting for its unix socket only (fleet.sh restore h$k)"
    fi
    dpid=$(host_dockerd_pid "$k")
    if [ -n "$dpid" ]; then
        log "h$k: dockerd is already running (pid $dpid)"
    else
        # After a crash dockerd refuses to start while the pid in its pid file
        # exists, and re-uses a containerd whose pid file names a live process:
        # drop both unless they are really ours and alive (pid reuse).
        rm -f "$d/dockerd.pid"
        if [ -z "$(netns_procs "$(host_ns "$k")" containerd)" ]; then rm -f "$d/exec/containerd/containerd.pid"; fi
        rm -f "$d/spawn.pid"
        keeper_request "h$k"
        for i in $(seq 1 100); do
            [ -s "$d/spawn.pid" ] && break
            sleep 0.1
        done
        [ -s "$d/spawn.pid" ] || die "h$k: the keeper did not start dockerd within 10 s (see ${RUN_DIR}/keeper.log)"
        log "h$k: starting dockerd (pid $(cat "$d/spawn.pid")), waiting for /_ping"
    fi
    wait_host "$k" "$mode"
    for i in $(seq 1 50); do
        [ -s "$d/dockerd.pid" ] && break
        sleep 0.1
    done
    dpid=$(cat "$d/dockerd.pid" 2>/dev/null || true)
    [ -n "$dpid" ] || die "h$k: dockerd answers but wrote no pid file $d/dockerd.pid"
    env_set "FLEET_H${k}_PID" "$dpid"
    rm -f "$d/down"
    n=$(qcurl --unix-socket "$(host_sock "$k")" http://fleet/containers/json | grep -o '"Id"' | wc -l || true)
    log "h$k: dockerd ready (pid $dpid, FLEET_H${k}_PID updated) in $(secs_since "$t0"); $n running container(s)"
}

do_cut() {
    local k d veth
    k=$(parse_host "${1:-}")
    d=$(host_run "$k")
    veth=${VETH_PREFIX}h$k
    ctl_lock "h$k/ctl"
    [ -e "/sys/class/net/$veth" ] || die "h$k: link $veth is missing"
    ip link set "$veth" down
    touch "$d/cut"
    [ "$(cat "/sys/class/net/$veth/operstate")" = down ] || die "h$k: $veth is still $(cat "/sys/class/net/$veth/operstate")"
    log "h$k: network cut ($veth down): $(host_addr "$k") is unreachable (and reaches nothing); dockerd and its unix socket keep running"
}

do_restore() {
    local k d veth t0 i
    k=$(parse_host "${1:-}")
    d=$(host_run "$k")
    veth=${VETH_PREFIX}h$k
    ctl_lock "h$k/ctl"
    [ -e "/sys/class/net/$veth" ] || die "h$k: link $veth is missing"
    t0=$(now_ms)
    ip link set "$veth" up
    rm -f "$d/cut"
    if [ -z "$(host_dockerd_pid "$k")" ]; then
        log "h$k: network restored ($veth up); dockerd is not running (fleet.sh start-host h$k)"
        return 0
    fi
    for i in $(seq 1 100); do
        [ "$(host_tcp_curl "$k" /_ping --connect-timeout 1 2>/dev/null)" = OK ] && break
        sleep 0.2
    done
    [ "$(host_tcp_curl "$k" /_ping --connect-timeout 1 2>/dev/null)" = OK ] ||
        die "h$k: $veth is up but $(host_tcp_url "$k")/_ping does not answer"
    log "h$k: network restored ($veth up); $(host_tcp_url "$k") answers again after $(secs_since "$t0")"
}

# "" | auth -> reg | areg
reg_which() {
    case ${1:-} in
        '') echo reg ;;
        auth)
            [ -n "$AUTH_REG" ] || die "this fleet has no auth registry (up with FLEET_REGISTRY_AUTH=1)"
            echo areg
            ;;
        *) die "usage: fleet.sh $CMD [auth]" ;;
    esac
}
reg_pids() { netns_procs "$(reg_ns "$1")" 'docker-registr.*'; }

do_stop_registry() {
    local which d pids t0
    which=$(reg_which "${1:-}")
    d=$(reg_dir "$which")
    ctl_lock "${d##*/}/ctl"
    t0=$(now_ms)
    pids=$(reg_pids "$which")
    if [ -z "$pids" ]; then
        log "$(reg_label "$which") is not running; nothing to stop"
    else
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        # shellcheck disable=SC2086
        if ! wait_dead 10 $pids; then
            warn "$(reg_label "$which") did not exit 10 s after SIGTERM; SIGKILL"
            kill -KILL $pids 2>/dev/null || true
            wait_dead 5 $pids || die "$(reg_label "$which") still alive after SIGKILL (pids ${pids//$'\n'/ })"
        fi
    fi
    echo stopped >"$d/down"
    ! registry_ready "$which" || die "$(reg_label "$which") still answers on http://$(reg_hostport "$which")/v2/"
    [ -z "$pids" ] || log "$(reg_label "$which") stopped in $(secs_since "$t0") (storage kept)"
}

do_start_registry() {
    local which d i t0
    which=$(reg_which "${1:-}")
    d=$(reg_dir "$which")
    ctl_lock "${d##*/}/ctl"
    keeper_check
    t0=$(now_ms)
    if [ -n "$(reg_pids "$which")" ]; then
        log "$(reg_label "$which") is already running"
    else
        rm -f "$d/registry.pid"
        keeper_request "$which"
        for i in $(seq 1 100); do
            [ -s "$d/registry.pid" ] && break
            sleep 0.1
        done
        [ -s "$d/registry.pid" ] || die "the keeper did not start the $(reg_label "$which") within 10 s (see ${RUN_DIR}/keeper.log)"
    fi
    wait_registry "$which"
    rm -f "$d/down"
    log "$(reg_label "$which") ready on http://$(reg_hostport "$which")/v2/ in $(secs_since "$t0")"
}

# ---------------------------------------------------------------------- run --
do_run() {
    [ $# -gt 0 ] || die "usage: fleet.sh run CMD [ARGS...]"
    local rc=0 child sig=""
    # Always tear down, however we leave (error, CMD's exit, signal).
    trap 'trap "" INT TERM; log "run: tearing the fleet down"; do_down quiet || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # The test suite's fleet: h1-h3 plain, h4 behind TLS, and the authenticated registry too
    # (the security tests need them); each can still be overridden.
    export FLEET_HOSTS_COUNT=${FLEET_HOSTS_COUNT:-4}
    export FLEET_TLS_HOST=${FLEET_TLS_HOST-h4}
    export FLEET_REGISTRY_AUTH=${FLEET_REGISTRY_AUTH:-1}
    do_up "$FLEET_HOSTS_COUNT"
    log "run: $*"
    # CMD runs in the background so that a SIGTERM/SIGINT sent to this script
    # is handled at once (bash defers traps while a foreground child runs) and
    # forwarded. env --default-signal: bash makes background commands ignore
    # SIGINT/SIGQUIT, which CMD would inherit.
    (
        exec 9>&- # do not hand the fleet lock to the command
        while IFS='=' read -r k v; do
            [[ $k =~ ^[A-Z_][A-Z0-9_]*$ ]] && export "$k=$v"
        done <"$ENV_FILE"
        export FLEETPIN_FLEET_ENV="$ENV_FILE"
        if [ -n "${http_proxy:-}${https_proxy:-}${HTTP_PROXY:-}${HTTPS_PROXY:-}" ]; then
            export NO_PROXY="${NO_PROXY:+$NO_PROXY,}${NET_PREFIX}.0/24" no_proxy="${no_proxy:+$no_proxy,}${NET_PREFIX}.0/24"
        fi
        exec env --default-signal=INT,QUIT -- "$@"
    ) &
    child=$!
    local interrupted="" again="" r
    trap 'sig=INT; interrupted=1; kill -INT "$child" 2>/dev/null || true' INT
    trap 'sig=TERM; interrupted=1; kill -TERM "$child" 2>/dev/null || true' TERM
    while :; do
        interrupted=""
        r=0
        wait "$child" || r=$?
        # after a trap, wait again for the real status (127: it was already collected)
        [ -n "$again" ] && [ "$r" -eq 127 ] && break
        rc=$r
        again=1
        [ -n "$interrupted" ] || break
    done
    if [ -n "$sig" ] && [ "$rc" -eq 0 ]; then
        rc=$([ "$sig" = INT ] && echo 130 || echo 143)
    fi
    log "run: command exited with $rc${sig:+ (after SIG$sig)}"
    exit "$rc"
}

# ------------------------------------------------------------------- main --
usage() {
    cat >&2 <<EOF
usage: $0 COMMAND
  up [N]       start N docker hosts (default \$FLEET_HOSTS_COUNT or 3, max $MAX_HOSTS) + registry
  down         stop and remove everything (idempotent, works after kill -9)
  env          print fleet.env as export lines: eval "\$($0 env)"
  status       ping the registry and every host
  run CMD...   up, run CMD with the fleet env exported, down; exits with CMD's status
               (options: FLEET_TLS_HOST=hK, FLEET_REGISTRY_AUTH=1, FLEET_LIVE_RESTORE=1; see README)
faults, on a fleet that is up (hK = h1, h2, ...):
  kill-host hK       SIGKILL hK's dockerd + containerd (containers keep running)
  stop-host hK       graceful stop (SIGTERM, wait) of hK's dockerd
  start-host hK      (re)start hK's dockerd as up did; waits for /_ping, updates FLEET_HK_PID
  cut hK             take hK's network down (veth ${VETH_PREFIX}hK); dockerd keeps running
  restore hK         bring hK's network back
  stop-registry [auth]   stop the registry (auth: the authenticated one)
  start-registry [auth]  start it again (same config and storage)
EOF
}

take_lock() {
    exec 9>"$LOCK_FILE"
    if ! flock -n 9; then
        log "waiting for another fleet.sh to finish (lock $LOCK_FILE)"
        flock 9
    fi
}

main() {
    local cmd=${1:-help}
    CMD=$cmd
    [ $# -gt 0 ] && shift
    case $cmd in
        up)
            need_root
            take_lock
            if [ "${FLEET_KEEP_ON_FAILURE:-0}" = 1 ]; then
                do_up "$@"
            else
                # a half-started fleet is torn down again (logs were shown)
                trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed; tearing down (FLEET_KEEP_ON_FAILURE=1 keeps it)"; do_down quiet || true; fi' EXIT
                do_up "$@"
                trap - EXIT
            fi
            ;;
        down)
            need_root
            take_lock
            do_down
            ;;
        env) do_env ;;
        status) do_status ;;
        kill-host | stop-host | start-host | cut | restore | stop-registry | start-registry)
            need_root
            load_fleet
            if [ $# -gt 1 ]; then
                case $cmd in *-registry) die "usage: fleet.sh $cmd [auth]" ;; *) die "usage: fleet.sh $cmd hK" ;; esac
            fi
            "do_${cmd//-/_}" "$@"
            ;;
        run)
            need_root
            take_lock
            do_run "$@"
            ;;
        help | -h | --help) usage ;;
        *)
            usage
            exit 2
            ;;
    esac
}

main "$@"
