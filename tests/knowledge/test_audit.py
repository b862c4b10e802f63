"""Issue 10, "What the audit found": one test per item. Each asserts what the released artifact
(or, for hand tables, the cited source) says and fails on the table as it was before the refresh."""

from __future__ import annotations

import pytest

from envcheck.knowledge import _table, builds, drivers, gpus
from provision.errors import UsageError
from provision.images import _data
from provision.images.resolve import PlanRequest, resolve


def _row(release: str, cuda: str) -> builds.Build:
    return next(b for b in builds.builds("torch", release) if b.cuda == cuda)


def _pypi(release: str) -> builds.Build:
    return next(b for b in builds.builds("torch", release) if b.pypi_default)


def test_audit_torch_2_14_pypi_wheel_is_cu130():
    b = _pypi("2.14")
    assert (b.cuda, b.tag, b.cuda_runtime) == ("13.0", "cu130", "13.0.3")  # cuda-toolkit[...]==13.0.3
    assert b.verified and b.artifact.startswith("torch-2.14.1-") and len(b.sha256) == 64
    assert not _row("2.14", "13.2").pypi_default


def test_audit_torch_2_11_cu130_pins_cudnn_9_19_0_56():
    b = _row("2.11", "13.0")
    assert (
        b.verified and b.cudnn == "9.19.0.56"
    )  # the wheel's nvidia-cudnn-cu13 pin, not RELEASE.md's 9.17.1.4


def test_audit_only_torch_2_15_publishes_cp315():
    for release in ("2.13", "2.14"):
        for b in builds.builds("torch", release):
            assert b.supports_python("3.15") is False, (release, b.cuda)
            assert b.python_max == "3.14"
    assert _pypi("2.15").supports_python("3.15") is True
    assert "3.15t" in (_pypi("2.15").pythons or ())


def test_audit_cuda13_and_cu124_wheels_carry_no_ptx():
    for release in ("2.11", "2.12", "2.13", "2.14"):
        b = _row(release, "13.0")
        assert b.verified and b.archs == ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), release
    for release in ("2.4", "2.5", "2.6"):
        b = _row(release, "12.4")
        assert "compute_90" not in (b.archs or ()), release
    header = (_table.DATA_DIR / "cuda_arch_support.csv").read_text()
    assert "torch 2.6+cu124 has 9.0+PTX" not in header


def test_audit_torch_2_15_is_known_and_planned_with_cu132():
    b = _pypi("2.15")
    assert (b.cuda, b.cudnn, b.status) == ("13.2", "9.26.0.51", "stable")
    assert b.python_min == "3.11" and b.python_max == "3.15"
    plan = resolve(PlanRequest(framework="torch", version="2.15", gpus=("H100",)))
    assert plan.framework_index == "https://download.pytorch.org/whl/cu132"
    assert (plan.cuda, plan.cudnn) == ("13.2", "9.26.0.51")
    assert plan.gpus[0].covered_by == ["sm_90"]
    exact = resolve(PlanRequest(framework="torch", version="2.15.0", gpus=("H100",)))
    assert exact.requirement == "torch==2.15.0+cu132"
    assert resolve(PlanRequest(framework="torch")).release == "2.15"  # the default plan


def test_audit_cu129_builds_serve_an_rtx_5090_on_driver_575():
    assert {b.release for b in builds.builds("torch") if b.cuda == "12.9"} >= {"2.12", "2.13"}
    plan = resolve(PlanRequest(framework="torch", gpus=("RTX 5090",), driver="575.57.08"))
    assert (plan.release, plan.cuda, plan.driver_mode) == ("2.13", "12.9", "full")
    assert any("2.15 does not fit" in n and "580.65.06" in n for n in plan.notes)
    with pytest.raises(UsageError):  # nothing older: 2.6 has no CUDA that knows Blackwell
        resolve(PlanRequest(framework="torch", version="2.6", gpus=("RTX 5090",), driver="575.57.08"))


@pytest.mark.parametrize(
    ("release", "driver"),
    [
        ("12.8.2", "570.211.01"),
        ("12.9.2", "575.57.08"),
        ("13.1.2", "590.48.01"),
        ("13.2.2", "595.71.05"),
        ("13.4.1", "615.71.09"),
        ("13.5.0", "620.70.06"),
    ],
)
def test_audit_new_toolkit_releases_have_driver_rows(release, driver):
    assert drivers.toolkit_driver(release) == driver
    major, minor, _ = (int(p) for p in release.split("."))
    assert drivers.highest_cuda(driver) == (major, minor)


def test_audit_cuda_13_4_is_ga_as_13_4_1_without_a_runfile_driver():
    assert [v for v, _ in drivers.toolkit_releases("13.4")] == ["13.4.1"]  # no 13.4.0 GA row
    source = next(r["source"] for r in _table.rows("cuda_toolkit_drivers.csv") if r["cuda"] == "13.4.1")
    assert "ship no driver" in source
    assert drivers.highest_cuda("620.70.06") == (13, 5)  # not shown as an older CUDA than it runs


@pytest.mark.parametrize(
    ("version", "cuda", "tag"),
    [
        ("2.4", "11.8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"),
        ("2.4", "12.1", "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"),
        ("2.6", "12.4", "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"),
    ],
)
def test_audit_cudnn_devel_tags_carry_the_cudnn_prefix_of_their_release(version, cuda, tag):
    p = resolve(PlanRequest(framework="torch", version=version, cuda=cuda, flavor="devel"))
    assert p.base_image == tag
    assert _data.cuda_base((12, 2)).image("cudnn-devel", "ubuntu22.04") == (
        "nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04"
    )
    assert _data.cuda_base((12, 3)).image("cudnn-runtime", "ubuntu22.04") == (
        "nvidia/cuda:12.3.2-cudnn9-runtime-ubuntu22.04"
    )


def test_audit_cuda_13_3_13_4_and_new_oses():
    assert _data.cuda_base((13, 3)).tag_version == "13.3.1"
    assert _data.cuda_base((13, 4)).tag_version == "13.4.2"
    assert "ubuntu26.04" in _data.cuda_base((13, 4)).oses
    oses = {(p.os, p.python) for p in _data.os_pythons()}
    assert {("ubuntu26.04", "3.14"), ("debian13", "3.13")} <= oses
    jax = resolve(PlanRequest(framework="jax", python="3.14"))
    assert (
        jax.base_image == "nvidia/cuda:13.4.2-base-ubuntu26.04" and jax.requirement == "jax[cuda13]==0.12.1"
    )
    cpu = resolve(PlanRequest(framework="torch", version="2.15", cuda="cpu", python="3.13"))
    assert cpu.base_image in ("ubuntu:24.04", "debian:13-slim")


def test_audit_l40_and_l40s_specs():
    l40, l40s = gpus.lookup("NVIDIA L40"), gpus.lookup("NVIDIA L40S")
    assert l40 is not None and l40s is not None
    assert (l40.bf16_tflops_dense, l40.memory_bw_gbs) == (181.05, 864.0)  # 362.1 is the sparse figure
    assert (l40s.bf16_tflops_dense, l40s.memory_bw_gbs) == (362.05, 864.0)


def test_audit_jax_pin_follows_the_python_and_the_plugin():
    assert builds.jax_release(python="3.11", extra="cuda13")[0] == "0.10.2"  # jax >= 0.11 needs 3.12
    assert builds.jax_release(python="3.12", extra="cuda13")[0] == "0.12.1"
    assert builds.jax_release(python="3.12", extra="cuda12")[0] == "0.12.0.1"  # the plugin stops there
    default = resolve(PlanRequest(framework="jax"))
    assert (default.python, default.requirement) == ("3.12", "jax[cuda13]==0.12.1")
    old_driver = resolve(PlanRequest(framework="jax", driver="550.54.15"))
    assert old_driver.requirement == "jax[cuda12]==0.10.2" and old_driver.python == "3.11"
    with pytest.raises(
        UsageError, match=r"jax 0\.12\.1 has no build for CUDA 12\.4"
    ):  # no cuda12 plugin 0.12.1
        resolve(PlanRequest(framework="jax", version="0.12.1", cuda="12.4"))
    with pytest.raises(UsageError, match=r"no wheel for Python 3\.11"):
        resolve(PlanRequest(framework="jax", version="0.12.1", python="3.11"))


def test_audit_tensorflow_arch_list_is_stored_and_planned():
    tf = builds.builds("tensorflow", "2.21.0")[0]
    assert tf.archs == ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90") and tf.verified
    plan = resolve(PlanRequest(framework="tensorflow", gpus=("P100",)))
    assert plan.gpus[0].covered_by == ["sm_60"]
    assert not any("not checked" in n for n in plan.notes)
    ptx = resolve(PlanRequest(framework="tensorflow", gpus=("H100",)))
    assert ptx.gpus[0].covered_by == ["compute_90"] and any("JIT" in n for n in ptx.notes)
    with pytest.raises(UsageError, match=r"compute capability 5\.2"):  # GTX 980: no sm_5x, no older PTX
        resolve(PlanRequest(framework="tensorflow", version="2.21.0", gpus=("GTX 980",)))
