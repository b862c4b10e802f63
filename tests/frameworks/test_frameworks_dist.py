"""dist-info reading that replaced importlib.metadata on the start-up path."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from envcheck.probes import _dist, tpu


def test_version_and_requires_agree_with_importlib_metadata() -> None:
    for name in ("pip", "msgspec", "rich", "typer"):
        found = _dist._this_interpreter().find(name)
        assert found is not None, name
        dist_dir, version = found
        meta = importlib.metadata.PathDistribution(Path(dist_dir))
        assert version == meta.version
        assert _dist.requires(dist_dir) == (meta.requires or [])


def test_egg_info_pkg_info_and_a_broken_dist(tmp_path: Path) -> None:
    egg = tmp_path / "old_pkg-1.0.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: old-pkg\nVersion: 1.0.3\n\nlong text: not a header\n"
    )
    broken = tmp_path / "broken-2.0.dist-info"
    broken.mkdir()  # no METADATA at all: the directory name still gives the version
    index = _dist.DistIndex([str(tmp_path), str(tmp_path / "missing")])
    assert index.find("Old_Pkg") == (str(egg), "1.0.3")
    assert index.find("broken") == (str(broken), "2.0")
    assert index.find("absent") is None


def test_libtpu_version_comes_from_its_dist_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "libtpu-0.0.17.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: libtpu\nVersion: 0.0.17\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    _dist._this_interpreter.cache_clear()
    try:
        assert tpu.libtpu_version() == "0.0.17"
    finally:
        _dist._this_interpreter.cache_clear()
