"""Requires-Dist parsing that replaced packaging.requirements on the start-up path."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.probes._dist import canonicalize_name
from envcheck.probes.frameworks import _pinned


def _dist(tmp_path: Path, requires: list[str]) -> str:
    dist = tmp_path / "torch-2.6.0.dist-info"
    dist.mkdir()
    lines = [
        "Metadata-Version: 2.1",
        "Name: torch",
        "Version: 2.6.0",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    (dist / "METADATA").write_text("\n".join(lines) + "\n")
    return str(dist)


@pytest.mark.parametrize(
    ("requires", "pin"),
    [
        (
            ['nvidia-cudnn-cu12==9.1.0.70; platform_system == "Linux" and platform_machine == "x86_64"'],
            "9.1.0.70",
        ),
        (["nvidia-cudnn-cu11 (==8.5.0.96)"], "8.5.0.96"),  # old parenthesised spelling
        (['nvidia-cudnn-cu12==9.3.0.75; extra == "cuda"', "nvidia-cudnn-cu12==9.1.0.70"], "9.1.0.70"),
        (["nvidia-cudnn-cu12>=9.1,!=9.2.0"], None),  # a range is not a pin
        (["nvidia_cudnn.cu12 ===9.1"], None),  # arbitrary equality is not a build pin
        (["numpy==2.0"], None),
    ],
)
def test_cudnn_pin_from_requires_dist(tmp_path: Path, requires: list[str], pin: str | None) -> None:
    assert _pinned(_dist(tmp_path, requires), "nvidia-cudnn") == pin


def test_canonicalize_name_follows_pep_503() -> None:
    assert canonicalize_name("Nvidia_CUDNN.cu12") == "nvidia-cudnn-cu12"
    assert canonicalize_name("jax--cuda12__plugin") == "jax-cuda12-plugin"
