"""Real collect_env pastes from public bug reports (tests/fixtures/ingest, provenance in its README),
read by ingest and judged again by today's rules, as ``envcheck diagnose`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.ingest import load
from envcheck.models import Report, Severity
from envcheck.report import rejudge

PASTES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def diagnose(name: str) -> Report:
    return rejudge(load((PASTES / name).read_text(encoding="utf-8"), name))


def test_rtx_5090d_with_cu126_gets_a_build_whose_cuda_knows_blackwell():
    # pytorch/pytorch#150733: torch 2.6.0+cu126, RTX 5090 D (CC 12.0), driver 570.124.04
    report = diagnose("pytorch-150733_rtx5090d_cu126_warning.txt")
    [f] = [f for f in report.findings if f.id == "arch-unsupported"]
    assert "built with CUDA 12.6, compute capability 12.0 needs CUDA >= 12.8" in f.summary
    # driver 570 runs cu128/cu129 (>= 525.60.13 by minor-version compatibility) but no cu13x (>= 580):
    # the newest release with such a build is 2.13 (+cu129, a row from release notes: said so)
    assert f.commands == [
        "pip uninstall -y torch",
        "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu129",
    ]
    assert "not verified against the wheel" in f.fix
    assert "CUDA 12.4" not in f.fix  # the old wrong advice: cu124 "has code for 12.0" through PTX
    assert [x.id for x in report.findings if x.id == "arch-ptx-jit"] == []


def test_a100_with_torch_built_for_cuda_10_2():
    # pytorch/pytorch#57922: torch 1.8.1+cu102 on an A100 (MIG), arch list not in any table
    report = diagnose("pytorch-57922_a100_mig_cu102.txt")
    [f] = [f for f in report.findings if f.id == "arch-unsupported"]
    assert f.facts["compute_capability"] == "8.0" and f.facts["arch_list"] is None
    assert "built with CUDA 10.2, compute capability 8.0 needs CUDA >= 11.0" in f.summary
    # torch 1.8 is older than the tables: never a jump to a release picked from tables that do not
    # know 1.8 (a 1.8.1+cu111 wheel exists); say what the driver runs instead
    assert f.commands == []
    assert "1.8.1+cu102 is older than envcheck's tables (2.1..2.15)" in f.fix
    assert "driver 450.80.02 runs CUDA <= 11.0" in f.fix
    [note] = [x for x in report.findings if x.id == "knowledge-partial"]
    assert note.severity == Severity.INFO and note.facts["facts_from"] == "report"


def test_driver_410_with_torch_built_for_cuda_10_1():
    # pytorch/pytorch#28321: torch 1.3.0 (CUDA 10.1.243) on a T4 with driver 410.104: CUDA unavailable
    report = diagnose("pytorch-28321_debian9_t4_torch13_old_format.txt")
    [f] = [f for f in report.findings if f.id == "driver-too-old"]
    assert f.facts["framework_cuda"] == "10.1" and f.facts["driver_version"] == "410.104"
    assert f.facts["family_floor"] == "418.39"
    assert f.commands == ["install NVIDIA driver >= 418.39"]  # Debian 9: no package name we know


#: every paste and the error verdicts its thread arrived at (none: no error may be invented)
EXPECTED: dict[str, set[str]] = {
    "local_debian_cpu_torch213.txt": set(),
    "pytorch-110153_h100_cu117_arch_warning.txt": {"arch-unsupported"},
    "pytorch-122924_windows11_cpu_wheel_rtx4080.txt": {"cpu-only-wheel"},
    "pytorch-137846_windows11_cpu_xpu_format.txt": set(),
    "pytorch-150733_rtx5090d_cu126_warning.txt": {"arch-unsupported"},
    "pytorch-150852_8x_h100_centos9.txt": set(),
    "pytorch-16318_no_torch_2x_p100_2019.txt": set(),
    "pytorch-16999_macos_gtx1060_torch11.txt": set(),  # macOS CUDA drivers are not Linux's numbers
    "pytorch-180500_rocm_mi300x.txt": set(),
    "pytorch-28321_debian9_t4_torch13_old_format.txt": {"driver-too-old"},
    "pytorch-49924_macos_arm64_torch18.txt": set(),
    "pytorch-51858_windows11_gtx1050ti_cu117.txt": set(),
    "pytorch-57922_a100_mig_cu102.txt": {"arch-unsupported"},
    "scale-mae-7_linux_cpu_build_2x_rtx3090.txt": {"cpu-only-wheel"},
    "vllm-9293_wsl2_rtx4070_laptop.txt": set(),
}


@pytest.mark.parametrize(("name", "errors"), sorted(EXPECTED.items()))
def test_every_paste_gets_the_errors_its_thread_found(name: str, errors: set[str]):
    report = diagnose(name)
    assert {f.id for f in report.findings if f.severity is Severity.ERROR} == errors


def test_the_table_covers_every_paste():
    assert set(EXPECTED) == {p.name for p in PASTES.glob("*.txt")}
