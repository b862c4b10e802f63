"""envcheck must start fast: --help and the default report import no framework or cloud SDK."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "torch",
    "tensorflow",
    "jax",
    "jaxlib",
    "boto3",
    "botocore",
    "google",
    "docker",
    "numpy",
    "matplotlib",
    "ray",
    "asyncssh",
)

_CHILD = """
import json, sys
sys.argv = {argv!r}
from {module} import app
try:
    app()
except SystemExit:
    pass
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
sys.stderr.write('@@heavy@@' + json.dumps(heavy) + '\\n')
"""


def _heavy_modules_after(module: str, argv: list[str]) -> list[str]:
    code = _CHILD.format(module=module, argv=argv, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("@@heavy@@"))
    return json.loads(line[len("@@heavy@@") :])


def test_envcheck_help_imports_nothing_heavy() -> None:
    assert _heavy_modules_after("envcheck.cli", ["envcheck", "--help"]) == []


def test_default_report_imports_nothing_heavy() -> None:
    # the frameworks are installed in the test venv: the report must still not import them
    assert _heavy_modules_after("envcheck.cli", ["envcheck", "--json"]) == []


def test_cluster_help_imports_no_engine_library() -> None:
    # ray and asyncssh load inside their adapter, when that adapter runs
    assert _heavy_modules_after("envcheck.cli", ["envcheck", "cluster", "--help"]) == []


def test_provision_help_imports_no_cloud_sdk() -> None:
    assert _heavy_modules_after("provision.cli", ["provision", "--help"]) == []
