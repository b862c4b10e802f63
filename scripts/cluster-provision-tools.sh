#!/usr/bin/env bash
# System tools the cluster bring-up tests (tests/cluster_provision) run for real: OpenSSH's server
# and client (the asyncssh runner's nodes), curl (the first-boot script asks metadata servers),
# iproute2 and util-linux (simulated machines in network, UTS and PID namespaces). Installs what
# is missing from Debian's packages; nothing is started here, the tests start and stop their own.
# Exit codes: 0 ok, 3 could not install (the suites then skip and say why).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
have sshd || missing+=(openssh-server)
have ssh-keygen || missing+=(openssh-client)
have curl || missing+=(curl)
have ip || missing+=(iproute2)
{ have unshare && have nsenter; } || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "cluster-provision-tools: need root to install ${missing[*]}" >&2
    exit 3
fi
echo "cluster-provision-tools: installing ${missing[*]}" >&2
timeout 300 apt-get update -qq >&2 || { echo "cluster-provision-tools: apt-get update failed" >&2; exit 3; }
DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { echo "cluster-provision-tools: apt-get install ${missing[*]} failed" >&2; exit 3; }
