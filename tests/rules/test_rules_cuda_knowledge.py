"""The CUDA-release-per-GPU table and the pre-CUDA-11 driver floors: data integrity, the facts the
verdicts rest on, and how ``builds.resolve`` (shared with ``provision image plan``) applies them."""

from __future__ import annotations

import pytest

from envcheck.knowledge import _table, archs, builds, cuda_archs, drivers
from envcheck.knowledge._version import vtuple

# --------------------------------------------------------------------------- data integrity


def test_cuda_arch_table_is_well_formed():
    rows = cuda_archs.table()
    assert len(rows) == len(_table.rows("cuda_arch_support.csv")) >= 20
    assert len({r.cc for r in rows}) == len(rows), "one row per compute capability"
    for r in rows:
        assert r.source and r.as_of
        assert r.min_cuda is not None or r.max_cuda is not None, r
        if r.min_cuda and r.max_cuda:
            assert r.min_cuda <= r.max_cuda, r
    # every bound from CUDA 9 on names a real toolkit release of the driver table
    releases = {vtuple(v)[:2] for v, _ in drivers.toolkit_releases()}
    for r in rows:
        for bound in (r.min_cuda, r.max_cuda):
            if bound and bound >= (9, 0):
                assert bound in releases, (r.cc, bound)


def test_every_torch_arch_list_agrees_with_the_table():
    # a wheel cannot carry SASS for a CC its own CUDA does not know, nor for one it dropped
    for b in builds.builds("torch"):
        for code in b.archs or ():
            parsed = archs.parse_code(code)
            assert parsed is not None
            fit = cuda_archs.fits(b.cuda_mm, parsed.cc)
            assert fit.ok is not False, (b.release, b.tag, code, fit.reason)


def test_old_toolkit_rows_are_there_and_ordered():
    assert drivers.toolkit_driver("10.0.130") == "410.48"
    assert drivers.toolkit_driver("10.1") == "418.39"  # the GA release is the 10.1 floor
    assert drivers.toolkit_driver("10.1.243") == "418.87.00"  # zero padding kept
    assert drivers.toolkit_driver("10.2") == "440.33"
    assert drivers.toolkit_driver("9.0") == "384.81"
    assert [v for v, _ in drivers.toolkit_releases("9.2")] == ["9.2.88", "9.2.148"]


# --------------------------------------------------------------------------- the facts


@pytest.mark.parametrize(
    ("cc", "first"),
    [
        ((12, 0), (12, 8)),
        ((10, 0), (12, 8)),
        ((10, 3), (12, 9)),
        ((12, 1), (12, 9)),
        ((9, 0), (11, 8)),
        ((8, 9), (11, 8)),
        ((8, 6), (11, 1)),
        ((8, 0), (11, 0)),
        ((7, 5), (10, 0)),
        ((7, 0), (9, 0)),
        ((6, 1), (8, 0)),
        ((11, 0), (13, 0)),
    ],
)
def test_first_cuda_per_compute_capability(cc, first):
    row = cuda_archs.support(cc)
    assert row is not None and row.min_cuda == first


@pytest.mark.parametrize(
    ("cuda", "cc", "ok"),
    [
        ((12, 4), (12, 0), False),  # RTX 5090 under cu124 (even with 9.0+PTX in the wheel)
        ((12, 6), (12, 0), False),
        ((12, 8), (12, 0), True),
        ((13, 0), (12, 0), True),
        ((12, 8), (10, 0), True),
        ((12, 6), (10, 0), False),
        ((11, 7), (9, 0), False),  # H100 under cu117
        ((11, 8), (9, 0), True),
        ((10, 2), (8, 0), False),  # A100 under cu102
        ((11, 0), (8, 0), True),
        ((9, 2), (7, 5), True),  # Turing runs sm_70 SASS of a CUDA 9 build
        ((13, 0), (7, 0), False),  # CUDA 13 dropped Volta
        ((12, 9), (7, 0), True),
        ((13, 0), (7, 5), True),
        ((12, 0), (3, 7), False),  # CUDA 12 dropped Kepler
        ((11, 8), (3, 7), True),
        ((11, 0), (3, 0), False),
        ((12, 6), (13, 0), None),  # a GPU the table does not know: no verdict
    ],
)
def test_fits(cuda, cc, ok):
    assert cuda_archs.fits(cuda, cc).ok is ok


def test_binary_compatibility_lowers_the_floor_within_a_major():
    # sm_80 SASS runs on 8.6 and 8.9, sm_120 on 12.1: their libraries came with the older release
    assert cuda_archs.window((8, 9)).min_cuda == (11, 0)
    assert cuda_archs.window((8, 9)).min_from == (8, 0)
    assert cuda_archs.fits((11, 7), (8, 9)).ok is True  # torch cu117 ran on RTX 4090s
    assert cuda_archs.window((12, 1)).min_cuda == (12, 8)
    assert cuda_archs.window((10, 3)).min_cuda == (12, 8)
    # integrated parts take no desktop SASS: Orin needs the release that knows 8.7
    assert cuda_archs.window((8, 7)).min_cuda == (11, 4)
    assert cuda_archs.fits((11, 3), (8, 7)).ok is False


def test_fit_reasons_name_the_release():
    assert cuda_archs.fits((12, 4), (12, 0)).reason == "compute capability 12.0 needs CUDA >= 12.8"
    assert "12.9 was the last release for compute capability 7.0" in cuda_archs.fits((13, 0), (7, 0)).reason


def test_major_only_cuda_is_judged_only_when_no_minor_could_fit():
    assert cuda_archs.fits((12, 0), (12, 0), major_only=True).ok is None  # jax[cuda12]: 12.x may be >= 12.8
    assert cuda_archs.fits((11, 0), (12, 0), major_only=True).ok is False  # no 11.x knows Blackwell
    assert cuda_archs.fits((13, 0), (7, 0), major_only=True).ok is False
    assert cuda_archs.fits((12, 0), (8, 0), major_only=True).ok is True


# --------------------------------------------------------------------------- pre-CUDA-11 drivers


@pytest.mark.parametrize(
    ("cuda", "driver", "ceiling", "ok", "mode"),
    [
        ("10.1", "410.104", None, False, "too-old"),  # pytorch/pytorch#28321
        ("10.1", "418.39", None, True, "full"),
        ("10.0", "410.104", None, True, "full"),
        ("10.2", "440.33", None, True, "full"),
        ("10.2", "418.87.00", None, False, "too-old"),  # no minor-version compatibility before 11
        ("9.2", "396.26", None, True, "full"),
        ("9.0", "375.26", None, False, "too-old"),
        ("10.1", None, 10000, False, "too-old"),
        ("10.1", None, 10010, True, "full"),
        ("10.1", "418.39", 10000, False, "too-old"),
    ],
)
def test_driver_check_before_cuda_11(cuda, driver, ceiling, ok, mode):
    chk = drivers.check(cuda, driver=driver, driver_cuda=ceiling)
    assert (chk.ok, chk.mode) == (ok, mode)


def test_floor_per_release_before_11_and_per_family_after():
    assert drivers.floor((10, 1)) == "418.39"
    assert drivers.floor((9, 1)) == "390.46"
    assert drivers.floor((12, 8)) == drivers.family_floor(12) == "525.60.13"
    assert drivers.check("10.1", driver="410.104").recommend == "418.39"


def test_highest_cuda_a_driver_runs_in_full():
    assert drivers.highest_cuda("410.104") == (10, 0)
    assert drivers.highest_cuda("570.124.04") == (12, 8)  # 12.8 U1 needs 570.124.06
    assert drivers.highest_cuda("580.95.05") == (13, 0)
    assert drivers.highest_cuda("375.26") == (8, 0)  # CUDA 8.0 GA2's driver
    assert drivers.highest_cuda("340.107") is None  # older than CUDA 7.0's 346.46


# --------------------------------------------------------------------------- resolve


def test_ptx_does_not_make_an_old_cuda_build_fit():
    # TensorFlow 2.21.0's build_info.py lists compute_90 PTX; its CUDA 12.5 libraries know no Blackwell
    tf = builds.builds("tensorflow", "2.21.0")[0]
    assert tf.verified and "compute_90" in (tf.archs or ())
    assert tf.supports_cc((12, 0)) is False
    assert tf.supports_cc((9, 0)) is True
    choice = builds.resolve("tensorflow", "2.21.0", compute_capabilities=[(12, 0)])
    assert choice.build is None
    assert [why for _, why in choice.rejected] == [
        "is too old for compute capability 12.0 (needs CUDA >= 12.8)"
    ]
    # torch 2.6 +cu124 (the PyPI wheel) carries no PTX at all (its arch-flags string)
    cu124 = next(b for b in builds.builds("torch", "2.6") if b.tag == "cu124")
    assert cu124.verified and not any(a.startswith("compute_") for a in cu124.archs or ())
    reasons = {
        b.tag: why for b, why in builds.resolve("torch", "2.6", compute_capabilities=[(12, 0)]).rejected
    }
    assert reasons["cu124"] == "is too old for compute capability 12.0 (needs CUDA >= 12.8)"


def test_rtx_5090_on_driver_570_gets_the_newest_build_it_runs():
    choice = builds.resolve("torch", driver="570.124.04", compute_capabilities=[(12, 0)], python="3.12")
    b = choice.build
    # 2.13 +cu129 runs on R570 by minor-version compatibility; 2.14/2.15 need R580 or know no 12.0
    assert b is not None and (b.release, b.tag) == ("2.13", "cu129")
    assert (
        b.install_command() == "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu129"
    )
    reasons = {(r.release, r.tag): why for r, why in choice.rejected}
    assert reasons[("2.15", "cu132")] == "needs driver >= 580.65.06"
    assert reasons[("2.14", "cu126")].startswith("is too old for compute capability 12.0")


def test_tensorflow_and_jax_builds_respect_the_cuda_window():
    tf = builds.resolve("tensorflow", compute_capabilities=[(12, 0)])
    assert tf.build is None
    assert all(why.endswith("(needs CUDA >= 12.8)") for _, why in tf.rejected)
    assert builds.resolve("tensorflow", compute_capabilities=[(9, 0)]).build is not None
    # jax[cuda12] names a major only: not rejected for an RTX 5090; jax[cuda13] never for a V100
    jax = builds.resolve("jax", driver="570.124.04", compute_capabilities=[(12, 0)])
    assert jax.build is not None and jax.build.extra == "cuda12"
    volta = builds.resolve("jax", compute_capabilities=[(7, 0)])
    assert volta.build is not None and volta.build.extra == "cuda12"
    assert {b.extra: why for b, why in volta.rejected}["cuda13"] == (
        "is too new for compute capability 7.0 (last CUDA for it: 12.9)"
    )


def test_newest_patch_pins_exactly():
    assert builds.newest_patch("2.7") == "2.7.1"
    assert builds.newest_patch("1.13") == "1.13.1"
    assert builds.newest_patch("0.4") is None
    b = next(b for b in builds.builds("torch", "2.7") if b.tag == "cu126")
    assert (
        b.install_command() == "pip install torch==2.7.1 --index-url https://download.pytorch.org/whl/cu126"
    )
    assert (
        b.install_command("2.7.0")
        == "pip install torch==2.7.0 --index-url https://download.pytorch.org/whl/cu126"
    )
    for r in _table.rows("torch_releases.csv"):
        assert (vtuple(r["newest"]) or ())[:2] == vtuple(r["release"])
        assert builds.builds("torch", r["release"]), r
