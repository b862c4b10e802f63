#!/usr/bin/env bash
# Run the whole mlrig test suite on a fresh machine: creates a virtualenv, installs mlrig with
# its dev extras and the CPU builds of the frameworks the tests exercise, then runs ruff, mypy
# and pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k nvml).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MLRIG_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

echo "== installing mlrig[dev] and the frameworks under test"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[dev]"
# CPU builds only: an unpinned torch would pull a multi-GB CUDA build.
python -m pip install --quiet -r scripts/test-frameworks.txt
# the real aws CLI: the cloud tests check moto's state with it as an independent client. It lives in
# a venv of its own because awscli pins a botocore release other than the one boto3 wants.
if ! command -v aws >/dev/null 2>&1; then
    if [ ! -x .venv-awscli/bin/aws ]; then
        echo "== installing the aws CLI into .venv-awscli"
        "$PY" -m venv .venv-awscli
        .venv-awscli/bin/python -m pip install --quiet awscli
    fi
    export PATH="$PWD/.venv-awscli/bin:$PATH"
fi

echo "== cluster engines for tests/cluster (Slurm, munge, sshd from Debian; ray/asyncssh come with .[dev])"
scripts/cluster-engines.sh || echo "== cluster engines missing: those suites skip and say why" >&2

echo "== system tools for tests/cluster_provision (sshd, ssh, curl, ip, unshare from Debian)"
scripts/cluster-provision-tools.sh || echo "== cluster bring-up tools missing: those tests skip and say why" >&2

echo "== ruff"
ruff check .
echo "== mypy"
mypy
echo "== pytest"
python -m pytest "$@"
