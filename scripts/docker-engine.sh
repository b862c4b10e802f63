#!/usr/bin/env bash
# A private Docker engine for tests and benchmarks: dockerd under its own temp dir, stopped by PID.
#
# Why: CI machines (and this one) have no running engine, no registry access and no systemd; the
# flags below are the ones that work there (see research/docker-anchors.md (d)). Nothing is left
# behind: the daemon's data, exec root and socket all live under one directory that `stop` removes.
#
#   scripts/docker-engine.sh start [DIR]      start dockerd; prints DOCKER_HOST=... and MLRIG_ENGINE_DIR=...
#   scripts/docker-engine.sh stop DIR         stop that dockerd (and its containerd) by PID, remove DIR
#   scripts/docker-engine.sh base-image TAG   import a debootstrap Debian rootfs as TAG (needs DOCKER_HOST);
#                                             the rootfs tarball is cached under ~/.cache/mlrig/
#
# Exit codes: 0 ok, 2 usage, 3 could not run (the reason is on stderr).
set -euo pipefail

CACHE_DIR="${MLRIG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlrig}"
SUITE="${MLRIG_BASE_SUITE:-bookworm}"
# python3-venv so image builds need no apt step; ca-certificates for pip over TLS at run time
INCLUDE="${MLRIG_BASE_INCLUDE:-python3,python3-venv,ca-certificates}"
MIRROR="${MLRIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "docker-engine: $*" >&2; exit 3; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

ensure_packages() {
    local missing=()
    command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
    command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || missing+=(iptables)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "docker-engine: installing ${missing[*]}" >&2
    as_root timeout 300 apt-get update -qq >&2 || die "apt-get update failed (not root, or no Debian mirror)"
    as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq --no-install-recommends docker.io debootstrap iptables >&2 \
        || die "apt-get install docker.io debootstrap iptables failed"
}

engine_up() { timeout 5 docker -H "unix://$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

cmd_start() {
    local dir="${1:-}"
    [ -n "$dir" ] || dir="$(mktemp -d /tmp/mlrig-engine.XXXXXX)"
    mkdir -p "$dir"
    ensure_packages
    command -v docker >/dev/null || die "no docker CLI on PATH (package docker.io provides one)"
    local dockerd_bin sock="$dir/docker.sock"
    dockerd_bin="$(command -v dockerd || echo /usr/sbin/dockerd)"
    PATH="$PATH:/usr/sbin:/sbin" setsid "$dockerd_bin" \
        --data-root "$dir/root" --exec-root "$dir/exec" \
        -H "unix://$sock" --pidfile "$dir/dockerd.pid" \
        --iptables=false --ip6tables=false --bridge=none \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    echo $! >"$dir/launch.pid"
    for _ in $(seq 1 60); do
        if engine_up "$sock"; then
            echo "DOCKER_HOST=unix://$sock"
            echo "MLRIG_ENGINE_DIR=$dir"
            return 0
        fi
        kill -0 "$(cat "$dir/launch.pid")" 2>/dev/null || break
        sleep 0.5
    done
    echo "docker-engine: dockerd did not come up; last log lines:" >&2
    tail -n 15 "$dir/dockerd.log" >&2 || true
    cmd_stop "$dir" >/dev/null 2>&1 || true
    exit 3
}

wait_gone() {  # wait_gone PID SECONDS
    local i
    for i in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

cmd_stop() {
    local dir="${1:?usage: stop DIR}"
    [ -d "$dir" ] || { echo "docker-engine: $dir does not exist" >&2; exit 2; }
    local pid="" cpid=""
    [ -f "$dir/dockerd.pid" ] && pid="$(cat "$dir/dockerd.pid")"
    [ -z "$pid" ] && [ -f "$dir/launch.pid" ] && pid="$(cat "$dir/launch.pid")"
    cpid="$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait_gone "$pid" 30 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
    fi
    # dockerd stops the containerd it started; after a KILL that one is orphaned: stop it by its PID
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
        kill -TERM "$cpid"; wait_gone "$cpid" 10 || kill -KILL "$cpid" 2>/dev/null || true
    fi
    # leftover mounts (overlay layers, netns, shm) under the dir, deepest first
    awk -v d="$dir" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$dir"
    echo "stopped dockerd ${pid:-?} and removed $dir"
}

cmd_base_image() {
    local tag="${1:?usage: base-image TAG}"
    [ -n "${DOCKER_HOST:-}" ] || die "set DOCKER_HOST (printed by 'start')"
    if timeout 10 docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
    ensure_packages
    local tarball="$CACHE_DIR/rootfs-$SUITE-minbase-${INCLUDE//,/-}.tar"
    if [ ! -s "$tarball" ]; then
        mkdir -p "$CACHE_DIR"
        local rootfs
        rootfs="$(mktemp -d /tmp/mlrig-rootfs.XXXXXX)"
        echo "docker-engine: debootstrap $SUITE (minbase + $INCLUDE) into $rootfs, ~2 min" >&2
        if ! as_root timeout 900 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" "$MIRROR" \
            >"$rootfs.log" 2>&1; then
            tail -n 15 "$rootfs.log" >&2
            as_root rm -rf "$rootfs" "$rootfs.log"
            die "debootstrap failed"
        fi
        as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        as_root tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
        as_root rm -rf "$rootfs" "$rootfs.log"
    fi
    timeout 300 docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null || die "docker import failed"
    echo "$tag"
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    base-image) shift; cmd_base_image "$@" ;;
    *) echo "usage: $0 start [DIR] | stop DIR | base-image TAG" >&2; exit 2 ;;
esac
