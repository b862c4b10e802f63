#!/usr/bin/env bash
# The system engines the cluster tests run for real: Slurm (slurmctld, slurmd, munge) and OpenSSH's
# server. Installs what is missing from Debian's packages; does nothing (in well under a second) when
# everything is there. The tests start and stop their own daemons (tests/fixtures/cluster/sim.py):
# nothing here starts a service. Ray and asyncssh are Python packages: the `cluster` extra.
#
#   scripts/cluster-engines.sh          install what is missing
#
# Exit codes: 0 ok, 3 could not install (the reason is on stderr; the suites then skip and say why).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

missing=()
have slurmctld || missing+=(slurmctld)
have slurmd || missing+=(slurmd)
have srun || missing+=(slurm-client)
have munged || missing+=(munge)
have sshd || missing+=(openssh-server)
have ssh-keygen || missing+=(openssh-client)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "cluster-engines: installing ${missing[*]}" >&2
if ! as_root timeout 300 apt-get update -qq >&2; then
    echo "cluster-engines: apt-get update failed (not root, or no Debian mirror)" >&2
    exit 3
fi
if ! as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
    echo "cluster-engines: apt-get install ${missing[*]} failed" >&2
    exit 3
fi
# Debian's packages start munge/ssh services where systemd runs; the tests use their own daemons
as_root mkdir -p /run/sshd
