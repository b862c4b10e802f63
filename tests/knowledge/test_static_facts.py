"""Tables never lie by omission: a torch release newer than the tables, installed as a (fake)
wheel in a site directory, is judged from the wheel's own files (version.py, the nvidia-* pins in
METADATA, the arch-flags string in libtorch_python.so) without importing it, with a note that the
verdict rests on partial knowledge; a pasted report of such a release gets the note too, and no fix
jumps to a release chosen from tables that do not know it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from envcheck.ingest import load
from envcheck.models import (
    FrameworksInfo,
    Gpu,
    NvidiaInfo,
    NvmlStatus,
    PythonEnv,
    Severity,
    Snapshot,
    SystemInfo,
)
from envcheck.probes import ProbeContext, frameworks
from envcheck.report import rejudge
from envcheck.rules import evaluate

ROOT = Path(__file__).resolve().parents[2]
FLAGS = "sm_80 sm_90 sm_100 sm_120 compute_120"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    return env | extra


@pytest.fixture
def future_torch(tmp_path: Path) -> Path:
    """site-packages with torch 2.16.0+cu134 as a wheel would install it (and torchvision beside it)."""
    site = tmp_path / "site-packages"
    pkg = site / "torch"
    (pkg / "lib").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise SystemExit('envcheck must never import torch')\n")
    (pkg / "version.py").write_text(
        "from typing import Optional\n__version__ = '2.16.0+cu134'\ndebug = False\n"
        "cuda: Optional[str] = '13.4'\ngit_version = 'f' * 40\nhip: Optional[str] = None\n"
    )
    junk = random.Random(5).randbytes(3_000_000)
    (pkg / "lib" / "libtorch_python.so").write_bytes(
        junk + b"\x00sm_90\x00" + b"std::string ipc_h" + FLAGS.encode() + b"\x00" + junk
    )
    dist = site / "torch-2.16.0+cu134.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: torch\nVersion: 2.16.0+cu134\nRequires-Python: >=3.11\n"
        'Requires-Dist: cuda-toolkit[cublas,cudart]==13.4.1; platform_system == "Linux"\n'
        'Requires-Dist: nvidia-cudnn-cu13==9.30.0.12; platform_system == "Linux"\n'
        'Requires-Dist: optree>=0.13.0; extra == "optree"\n\n'
    )
    tv = site / "torchvision-0.31.0.dist-info"
    tv.mkdir()
    (tv / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\nVersion: 0.31.0\n\n")
    return site


def _snapshot(fw_info: FrameworksInfo, gpu: str, cc: str) -> Snapshot:
    return Snapshot(
        system=SystemInfo(python=PythonEnv(version="3.12.3")),
        nvidia=NvidiaInfo(
            nvml=NvmlStatus(ok=True),
            driver_version="615.71.09",
            cuda_driver_version=13040,
            gpus=[Gpu(index=0, name=gpu, compute_capability=cc, memory_total_mib=32768)],
        ),
        frameworks=fw_info,
    )


def test_the_installed_wheel_speaks_for_a_release_newer_than_the_tables(future_torch: Path):
    info = frameworks.probe(ProbeContext(env=_env(PYTHONPATH=str(future_torch)), timeout=30))
    torch = next(f for f in info.frameworks if f.name == "torch")
    info.frameworks = [torch]  # this venv's own tensorflow-cpu / jax are another story
    assert (torch.version, torch.build, torch.cuda_build) == ("2.16.0+cu134", "cuda", "13.4")
    assert torch.cudnn_build == "9.30.0.12"  # the wheel's own nvidia-cudnn pin
    assert torch.arch_list == FLAGS.split()  # read from the binary, not the tables
    assert torch.plugins == {"torchvision": "0.31.0"}

    # a V100 (7.0): the wheel carries no sm_70 and no PTX below 12.0 -> a verdict from the wheel
    volta = evaluate(_snapshot(info, "Tesla V100-SXM2-32GB", "7.0"))[0]
    [arch] = [f for f in volta if f.id == "arch-unsupported"]
    assert (
        arch.facts["arch_list"] == FLAGS.split() and arch.facts["arch_list_from"] == "framework build facts"
    )
    assert arch.commands == []  # no downgrade picked from tables that do not know 2.16
    assert "newer than envcheck's tables (1.0..2.15)" in (arch.fix or "")
    [note] = [f for f in volta if f.id == "knowledge-partial"]
    assert note.severity == Severity.INFO and note.facts["facts_from"] == "installed wheel"
    assert note.facts["arch_list"] == FLAGS and note.facts["cudnn"] == "9.30.0.12"
    assert "2.16.0+cu134 is newer than envcheck's tables" in note.summary

    # an H100 is covered by the wheel's sm_90: nothing wrong, only the note
    hopper = evaluate(_snapshot(info, "NVIDIA H100 80GB HBM3", "9.0"))[0]
    assert [f.id for f in hopper if f.severity != Severity.INFO] == []
    assert [f.id for f in hopper if f.id == "knowledge-partial"] == ["knowledge-partial"]


def test_envcheck_report_of_a_venv_with_the_future_wheel(future_torch: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "envcheck", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env=_env(PYTHONPATH=os.pathsep.join([str(ROOT), str(future_torch)])),
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    torch = next(f for f in report["snapshot"]["frameworks"]["frameworks"] if f["name"] == "torch")
    assert torch["arch_list"] == FLAGS.split() and torch["version"] == "2.16.0+cu134"
    notes = [f for f in report["findings"] if f["id"] == "knowledge-partial"]
    assert notes and notes[0]["severity"] == "info"


def test_a_pasted_report_of_an_unknown_release_says_it_rests_on_partial_knowledge():
    paste = (ROOT / "tests/fixtures/ingest/scale-mae-7_linux_cpu_build_2x_rtx3090.txt").read_text()
    paste = paste.replace("PyTorch version: 2.1.1", "PyTorch version: 2.17.0+cu135").replace(
        "CUDA used to build PyTorch: Could not collect", "CUDA used to build PyTorch: 13.5"
    )
    report = rejudge(load(paste, "paste.txt"))
    [note] = [f for f in report.findings if f.id == "knowledge-partial"]
    assert note.severity == Severity.INFO and note.facts["facts_from"] == "report"
    assert "Not known, so not checked: arch list" in (note.fix or "")
    # driver 525 cannot run a CUDA 13.5 build: said, with the driver as the fix, never a downgrade
    [old] = [f for f in report.findings if f.id == "driver-too-old"]
    assert not any("pip install torch" in c for c in old.commands)
