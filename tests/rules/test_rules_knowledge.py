"""The knowledge base: provenance on every row, versions that parse, floors that only go up,
NVIDIA's SASS/PTX rules, the resolver, and a cross-check against the table torch 2.13 ships."""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
from pathlib import Path

import pytest

from envcheck.knowledge import _table, archs, builds, capabilities, drivers
from envcheck.knowledge._version import cuda_mm, cudnn_tuple, vtuple

FILES = _table.files()


def test_every_data_file_is_found():
    assert set(FILES) >= {
        "cuda_driver_families.csv",
        "cuda_toolkit_drivers.csv",
        "torch_builds.csv",
        "torch_releases.csv",
        "torch_companions.csv",
        "tensorflow_builds.csv",
        "jax_releases.csv",
        "coverage.csv",
        "jax_cuda.csv",
        "compute_capabilities.csv",
    }


@pytest.mark.parametrize("name", FILES)
def test_every_row_has_source_and_a_past_as_of(name):
    rows = _table.rows(name)
    assert rows, name
    for r in rows:
        assert len(r["source"]) > 10
        assert dt.date.fromisoformat(r["as_of"]) <= dt.date(2026, 12, 31)


def test_loader_rejects_rows_without_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(_table, "DATA_DIR", tmp_path)
    _table.rows.cache_clear()
    try:
        (tmp_path / "no_source.csv").write_text("a,as_of\n1,2026-01-01\n")
        (tmp_path / "empty_source.csv").write_text("a,source,as_of\n1,,2026-01-01\n")
        (tmp_path / "bad_date.csv").write_text("a,source,as_of\n1,somewhere,last week\n")
        (tmp_path / "short_row.csv").write_text("# a comment\na,source,as_of\n1,somewhere\n")
        for name, words in [
            ("no_source.csv", "no 'source'"),
            ("empty_source.csv", "no source"),
            ("bad_date.csv", "ISO date"),
            ("short_row.csv", "cells"),
        ]:
            with pytest.raises(_table.KnowledgeError, match=words):
                _table.rows(name)
    finally:
        _table.rows.cache_clear()


def test_versions_parse():
    for r in _table.rows("cuda_toolkit_drivers.csv"):
        assert len(vtuple(r["cuda"]) or ()) == 3 and len(vtuple(r["min_driver"]) or ()) >= 2
    for r in _table.rows("cuda_driver_families.csv"):
        assert vtuple(r["min_driver"]) is not None
    for b in builds.builds("torch") + builds.builds("tensorflow"):
        assert vtuple(b.release) is not None and cuda_mm(b.cuda) is not None
        assert vtuple(b.python_min or "") <= vtuple(b.python_max or "")
        assert b.cudnn is None or cudnn_tuple(b.cudnn) is not None
    for g in capabilities.generations():
        assert archs.parse_cc(g.compute_capability) is not None


def test_driver_floors_are_monotonic():
    families = sorted(
        (int(r["cuda_major"]), vtuple(r["min_driver"])) for r in _table.rows("cuda_driver_families.csv")
    )
    assert [f for _, f in families] == sorted(f for _, f in families)
    toolkits = sorted(
        (vtuple(r["cuda"]), vtuple(r["min_driver"])) for r in _table.rows("cuda_toolkit_drivers.csv")
    )
    drivers_in_order = [d for _, d in toolkits]
    assert drivers_in_order == sorted(drivers_in_order)
    # every toolkit from 11.1 on ships a driver that meets its own family's floor
    for cuda, drv in toolkits:
        if cuda >= (11, 1):
            assert drv >= vtuple(drivers.family_floor(cuda[0]) or ""), cuda


def test_torch_tables_are_consistent():
    for release in builds.releases("torch"):
        rows = builds.builds("torch", release)
        assert sum(b.pypi_default for b in rows) == 1, release
        assert len({b.cuda for b in rows}) == len(rows), release
        default = next(b for b in rows if b.pypi_default)
        assert default.verified, f"{release}: the PyPI build must be read from its wheel"
        assert {b.python_min for b in rows} == {default.python_min}, release
        for b in rows:
            # cuDNN 7 before torch 1.13 (linked in, named by caffe2's macros.h), 8 before 2.4, 9 since;
            # the cu129 rows from the audit and the pytorch.org hand rows carry none
            want = 7 if vtuple(release) < (1, 13) else (8 if vtuple(release) < (2, 4) else 9)
            assert b.cudnn is None or cudnn_tuple(b.cudnn)[0] == want, b
            if b.archs and b.cuda_mm[0] >= 13:  # CUDA 13 cannot build for CC < 7.5
                assert all(archs.parse_cc(a) >= (7, 5) for a in b.archs), b


def _torch_cuda_init() -> Path | None:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "cuda" / "__init__.py"
    return path if path.is_file() else None


def test_arch_lists_agree_with_the_table_torch_2_13_ships():
    """torch 2.13's torch/cuda/__init__.py embeds PYTORCH_RELEASES_CODE_CC (read as text, not imported)."""
    path = _torch_cuda_init()
    if path is None or "PYTORCH_RELEASES_CODE_CC" not in path.read_text():
        pytest.skip("installed torch has no PYTORCH_RELEASES_CODE_CC table")
    tree = ast.parse(path.read_text())
    table = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "PYTORCH_RELEASES_CODE_CC"
    )
    compared = 0
    for cuda, by_arch in table.items():
        ours = [b for b in builds.builds("torch", "2.13") if b.cuda == cuda and b.archs]
        if not ours:
            continue  # a variant whose arch list the tables do not know (12.9: from release notes)
        sass = {int(a[3:]) for a in ours[0].archs if a.startswith("sm_")}
        assert sass == by_arch["x86_64"], cuda
        compared += 1
    assert compared >= 3


def test_sass_rules_agree_with_torch_device_requirement():
    """torch 2.13's DEVICE_REQUIREMENT maps each SASS target to the device CCs it runs on."""
    path = _torch_cuda_init()
    if path is None or "DEVICE_REQUIREMENT" not in path.read_text():
        pytest.skip("installed torch has no DEVICE_REQUIREMENT table")
    tree = ast.parse(path.read_text())
    node = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "DEVICE_REQUIREMENT"
    )
    devices = [50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90, 100, 101, 103, 110, 120, 121]
    checked = 0
    for key, call in zip(node.value.keys, node.value.values, strict=True):
        code = ast.literal_eval(key)
        kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        if call.func.id == "_CompatSet":
            allowed = set(ast.literal_eval(call.args[0]))
        else:
            start, exclude = kw["start"], kw.get("exclude", set())
            allowed = {
                d for d in devices if d // 10 == start // 10 and d % 10 >= start % 10 and d not in exclude
            }
        for dev in devices:
            ours = archs.runs_on(archs.Code("sm", (code // 10, code % 10)), (dev // 10, dev % 10))
            assert ours == (dev in allowed), (code, dev)
            checked += 1
    assert checked > 200


@pytest.mark.parametrize(
    ("code", "cc", "runs"),
    [
        ("sm_80", (8, 6), True),
        ("sm_86", (8, 0), False),
        ("sm_80", (9, 0), False),
        ("sm_80", (8, 7), False),
        ("sm_87", (8, 7), True),
        ("sm_50", (5, 3), False),
        ("sm_90a", (9, 0), True),
        ("sm_90a", (10, 0), False),
        ("sm_100f", (10, 3), True),
        ("compute_90", (12, 0), True),
        ("compute_90", (8, 9), False),
        ("compute_90a", (10, 0), False),
        ("compute_80", (8, 7), True),
        ("sm_120", (12, 1), True),
    ],
)
def test_sass_and_ptx_rules(code, cc, runs):
    parsed = archs.parse_code(code)
    assert parsed is not None
    assert archs.runs_on(parsed, cc) is runs


def test_expand_torch_arch_list():
    assert archs.expand_torch_list("8.6 9.0+PTX") == ("sm_86", "sm_90", "compute_90")
    assert archs.needs_jit(("sm_86", "sm_90", "compute_90"), (12, 0))
    assert not archs.needs_jit(("sm_86", "sm_90", "compute_90"), (9, 0))


@pytest.mark.parametrize(
    ("cuda", "driver", "ceiling", "ok", "mode"),
    [
        ("12.6", "535.54.03", 12020, True, "minor-version"),
        ("12.8", None, 12020, True, "minor-version"),
        ("12.4", "550.54.14", 12040, True, "full"),
        ("13.0", "575.57.08", 12090, False, "too-old"),
        ("13.2", "580.65.06", 13000, True, "minor-version"),
        ("12.1", "470.82.01", 11040, False, "too-old"),
        ("11.8", "450.80.02", None, True, "minor-version"),
        ("11.8", "450.51.05", None, False, "too-old"),
        ("12.6", None, None, None, "unknown"),
    ],
)
def test_driver_check(cuda, driver, ceiling, ok, mode):
    chk = drivers.check(cuda, driver=driver, driver_cuda=ceiling)
    assert (chk.ok, chk.mode) == (ok, mode)


def test_driver_helpers_keep_zero_padding():
    assert drivers.recommended_driver(13) == "580.65.06"
    assert drivers.recommended_driver(12) == "525.60.13"
    assert drivers.recommended_driver(11) == "450.80.02"
    assert drivers.toolkit_driver("12.4.1") == "550.54.15"
    assert drivers.toolkit_driver("12.4") == "550.54.14"
    assert drivers.newest_family("535.104.05") == 12
    assert drivers.newest_family("440.33") is None
    assert drivers.toolkit_releases("12.6")[-1] == ("12.6.3", "560.35.05")
    assert [v for v, _ in drivers.toolkit_releases("13.0")] == ["13.0.0", "13.0.1", "13.0.2", "13.0.3"]


def test_version_parsers():
    assert cuda_mm(12020) == (12, 2) and cuda_mm("cu126") == (12, 6) and cuda_mm("12.5.1") == (12, 5)
    assert cuda_mm(0) is None and cuda_mm("cu118") == (11, 8)
    assert cudnn_tuple(90100) == (9, 1, 0) and cudnn_tuple(8902) == (8, 9, 2) and cudnn_tuple("9") == (9,)
    assert vtuple("2.6.0+cu124") == (2, 6, 0) and vtuple("n/a") is None


def test_resolve_explains_rejections():
    choice = builds.resolve(
        "torch", "2.13", driver="535.104.05", driver_cuda=12020, compute_capabilities=[(6, 1)], python="3.12"
    )
    assert choice.build is not None and choice.build.tag == "cu126"
    reasons = {b.tag: why for b, why in choice.rejected}
    assert "driver >= 580.65.06" in reasons["cu130"]
    nothing = builds.resolve("torch", "2.13", compute_capabilities=[(3, 7)])
    assert nothing.build is None and len(nothing.rejected) == len(builds.builds("torch", "2.13"))
    assert builds.resolve("torch", "2.13", python="3.9").build is None
    # the cp315 wheels of 2.13 do not exist: only 2.15 publishes them (PyPI file list)
    assert builds.resolve("torch", "2.13", python="3.15").build is None
    assert builds.resolve("torch", python="3.15").build.release == "2.15"
    assert builds.resolve("tensorflow", python="3.13").build.release == "2.21.0"


def test_build_install_commands():
    b = next(b for b in builds.builds("torch", "2.6") if b.cuda == "12.4")
    assert (
        b.install_command("2.6.0")
        == "pip install torch==2.6.0 --index-url https://download.pytorch.org/whl/cu124"
    )
    tf = builds.builds("tensorflow", "2.18.1")[0]
    assert tf.install_command() == 'pip install "tensorflow[and-cuda]==2.18.1"'
    assert builds.builds("jax")[-1].install_command() == 'pip install -U "jax[cuda13]"'
    assert builds.release_of("torch", "2.6.0+cu124") == "2.6"
    assert builds.release_of("tensorflow", "2.18.0") == "2.18.1"
    assert builds.release_of("torch", "1.13.1") == "1.13"
    assert builds.release_of("torch", "0.4.1") is None
    assert (
        b.install_command("2.6.0", with_=["torchvision==0.21.0"])
        == "pip install torch==2.6.0 torchvision==0.21.0 --index-url https://download.pytorch.org/whl/cu124"
    )


@pytest.mark.parametrize(
    ("name", "cc"),
    [
        ("NVIDIA GeForce RTX 4090", "8.9"),
        ("NVIDIA GeForce RTX 5090", "12.0"),
        ("NVIDIA A100-SXM4-80GB", "8.0"),
        ("NVIDIA H100 80GB HBM3", "9.0"),
        ("Tesla T4", "7.5"),
        ("NVIDIA RTX A6000", "8.6"),
        ("NVIDIA RTX 6000 Ada Generation", "8.9"),
        ("NVIDIA L40S", "8.9"),
        ("NVIDIA A10G", "8.6"),
        ("Tesla V100-SXM2-16GB", "7.0"),
        ("NVIDIA GeForce GTX 1080 Ti", "6.1"),
        ("Quadro RTX 6000", "7.5"),
    ],
)
def test_compute_capability_from_names(name, cc):
    assert capabilities.compute_capability(name) == cc


def test_generation_fallback_without_the_spec_table(monkeypatch):
    monkeypatch.setattr(capabilities, "_spec_cc", lambda _name: None)
    assert capabilities.compute_capability("NVIDIA GeForce RTX 3080 Ti") == "8.6"
    assert capabilities.compute_capability("NVIDIA B200") == "10.0"
    assert capabilities.compute_capability("Some Unknown Accelerator") is None
