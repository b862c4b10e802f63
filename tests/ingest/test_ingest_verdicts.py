"""End to end: real pastes, read by ingest and judged by today's rules, get the verdict their
issue thread arrived at, and pastes without a problem get no error (absent data never judges)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from envcheck import rules
from envcheck.ingest import load
from envcheck.models import Severity


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # "cuda is not available": a CPU-only torch on an RTX 4080 laptop
        ("pytorch-122924_windows11_cpu_wheel_rtx4080.txt", {"cpu-only-wheel"}),
        ("scale-mae-7_linux_cpu_build_2x_rtx3090.txt", {"cpu-only-wheel"}),
        # "sm_120 is not compatible": torch 2.6.0+cu126 has no Blackwell code
        ("pytorch-150733_rtx5090d_cu126_warning.txt", {"arch-unsupported"}),
        ("pytorch-110153_h100_cu117_arch_warning.txt", {"arch-unsupported"}),
    ],
)
def test_the_thread_s_diagnosis(name: str, expected: set[str], read_fixture: Callable[[str], str]) -> None:
    findings, _ = rules.evaluate(load(read_fixture(name), name).snapshot)
    errors = {f.id for f in findings if f.severity is Severity.ERROR}
    assert errors == expected


@pytest.mark.parametrize(
    "name",
    [
        "local_debian_cpu_torch213.txt",  # no GPU at all: a CPU torch is right
        "pytorch-49924_macos_arm64_torch18.txt",
        "pytorch-180500_rocm_mi300x.txt",  # AMD: no NVIDIA verdict may fire
        "pytorch-150852_8x_h100_centos9.txt",  # system cuDNN 8 next to a cu126 wheel is not a mismatch
        "vllm-9293_wsl2_rtx4070_laptop.txt",
    ],
)
def test_no_error_without_evidence(name: str, read_fixture: Callable[[str], str]) -> None:
    findings, skipped = rules.evaluate(load(read_fixture(name), name).snapshot)
    assert [f.id for f in findings if f.severity is Severity.ERROR] == []
    assert skipped, "rules that lack facts must say so"
