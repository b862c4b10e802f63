"""Plan resolution: versions from envcheck's knowledge base, base tags, drivers, GPUs, conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.knowledge import builds as kb
from envcheck.knowledge import drivers
from provision.errors import UsageError
from provision.images import _data
from provision.images.resolve import PlanRequest, parse_framework, request_from_report, resolve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"


def test_torch_cuda_plan_matches_the_knowledge_base() -> None:
    p = resolve(PlanRequest(framework="torch", version="2.6.0", cuda="12.4", python="3.11"))
    row = next(b for b in kb.builds("torch", "2.6") if b.cuda == "12.4")
    assert p.requirement == "torch==2.6.0+cu124"
    assert p.framework_index == "https://download.pytorch.org/whl/cu124"
    assert p.cudnn == row.cudnn
    assert p.min_driver == drivers.family_floor(12)
    assert p.base_image == "nvidia/cuda:12.4.1-base-ubuntu22.04"
    assert p.require_cuda == "cuda>=12.4"
    assert p.archs == list(row.archs or ())
    labels = p.labels()
    assert labels["dev.mlrig.cuda"] == "12.4"
    assert labels["dev.mlrig.cudnn"] == row.cudnn
    assert labels["dev.mlrig.requirement"] == "torch==2.6.0+cu124"
    assert labels["org.opencontainers.image.base.name"] == p.base_image


def test_release_only_pins_every_patch_of_that_release() -> None:
    p = resolve(PlanRequest(framework="torch", version="2.6", cuda="12.4", python="3.11"))
    assert p.requirement == "torch==2.6.*"
    assert p.framework_version == "2.6.*"


def test_default_is_the_knowledge_bases_pick() -> None:
    p = resolve(PlanRequest(framework="torch", version="2.9"))
    best = kb.resolve("torch", "2.9").build
    assert best is not None
    assert p.cuda == best.cuda
    assert p.cuda_status == "stable"


def test_driver_picks_the_newest_cuda_it_runs() -> None:
    # 535 runs CUDA 12.x (minor-version) but not 13.x: torch 2.13 falls back to its stable 12.x (cu126;
    # cu129 carries no stable/experimental label in the tables)
    p = resolve(PlanRequest(framework="torch", version="2.13", driver="535.104.05"))
    assert p.cuda == "12.6"
    assert p.driver_mode == "minor-version"
    assert p.require_cuda == "cuda>=12.0"
    assert any("minor-version" in n for n in p.notes)
    newer = resolve(PlanRequest(framework="torch", version="2.13", driver="580.95.05"))
    assert newer.cuda == "13.0"
    assert newer.driver_mode == "full"
    assert newer.require_cuda == "cuda>=13.0"


def test_too_old_driver_is_refused_with_the_nearest_choices() -> None:
    with pytest.raises(UsageError) as e:
        resolve(PlanRequest(framework="torch", version="2.13", driver="470.82.01"))
    assert "needs driver" in e.value.message
    assert e.value.hint is not None
    assert "--framework torch==" in e.value.hint
    assert drivers.family_floor(12) in e.value.hint


def test_gpu_without_code_in_the_build_is_refused() -> None:
    # torch 2.11's CUDA 12.8 and 13.0 builds dropped Volta (sm_70); only cu126 still has it
    with pytest.raises(UsageError) as e:
        resolve(PlanRequest(framework="torch", version="2.11", cuda="12.8", gpus=("V100",)))
    assert "compute capability 7.0" in e.value.message
    p = resolve(PlanRequest(framework="torch", version="2.11", gpus=("V100",)))
    assert p.cuda == "12.6"
    assert p.gpus[0].compute_capability == "7.0"
    assert "sm_70" in p.gpus[0].covered_by


def test_unknown_cuda_variant_names_what_exists() -> None:
    with pytest.raises(UsageError) as e:
        resolve(PlanRequest(framework="torch", version="2.6", cuda="12.8"))
    assert "no build for CUDA 12.8" in e.value.message
    assert "11.8, 12.4, 12.6" in e.value.message
    assert e.value.hint == "nearest valid: --cuda 12.6, --cuda 12.4"


def test_python_decides_the_os_and_can_move_the_cuda_choice() -> None:
    # CUDA 12.4 images exist for ubuntu22.04 only; Python 3.12 lives on ubuntu24.04 -> cu126
    p = resolve(PlanRequest(framework="torch", version="2.6", python="3.12"))
    assert (p.cuda, p.os) == ("12.6", "ubuntu24.04")
    assert p.base_image == "nvidia/cuda:12.6.3-base-ubuntu24.04"
    with pytest.raises(UsageError) as e:
        resolve(PlanRequest(framework="torch", version="2.6", cuda="12.4", python="3.12"))
    assert "Python 3.12" in e.value.message
    assert "ubuntu22.04" in e.value.message
    assert "--python 3.11" in (e.value.hint or "")


def test_python_outside_the_wheels_range() -> None:
    with pytest.raises(UsageError) as e:
        resolve(PlanRequest(framework="torch", version="2.6", python="3.14"))
    assert "no wheel for Python 3.14" in e.value.message


def test_unknown_release_and_gpu_and_framework() -> None:
    with pytest.raises(UsageError) as e:
        resolve(PlanRequest(framework="torch", version="0.4"))
    assert "nearest known releases: 1.0" in (e.value.hint or "")
    # the tables know torch 1.13 (+cu117, +cu116), but no nvidia/cuda base of those CUDAs is listed
    with pytest.raises(UsageError, match=r"no nvidia/cuda base image is known for CUDA 11\.7") as e:
        resolve(PlanRequest(framework="torch", version="1.13"))
    assert "--cuda 11.8" in (e.value.hint or "")
    with pytest.raises(UsageError, match="unknown GPU"):
        resolve(PlanRequest(framework="torch", gpus=("Frobnicator 9000",)))
    with pytest.raises(UsageError, match="unknown framework"):
        parse_framework("mxnet==1.9")
    with pytest.raises(UsageError, match="not a version"):
        parse_framework("torch==latest")


def test_cpu_conflicts() -> None:
    with pytest.raises(UsageError, match="conflicts with --gpu"):
        resolve(PlanRequest(framework="torch", cuda="cpu", gpus=("H100",)))
    with pytest.raises(UsageError, match="devel flavour"):
        resolve(PlanRequest(framework="torch", cuda="cpu", flavor="devel"))


def test_unpinned_base_is_refused() -> None:
    with pytest.raises(UsageError, match="not pinned"):
        resolve(PlanRequest(framework="torch", cuda="cpu", base="ubuntu"))
    with pytest.raises(UsageError, match="not pinned"):
        resolve(PlanRequest(framework="torch", cuda="cpu", base="ubuntu:latest"))
    ok = resolve(
        PlanRequest(framework="torch", cuda="cpu", base="registry.local:5000/ubuntu@sha256:" + "a" * 64)
    )
    assert ok.base_kind == "custom"


def test_cpu_plans_per_framework() -> None:
    t = resolve(PlanRequest(framework="torch", version="2.13.0", cuda="cpu", python="3.11"))
    assert t.requirement == "torch==2.13.0+cpu"
    assert t.framework_index == "https://download.pytorch.org/whl/cpu"
    assert t.base_image == "ubuntu:22.04"
    assert t.device == "cpu" and t.require_cuda is None
    assert "numpy==" in " ".join(t.extra_requirements)
    tf = resolve(PlanRequest(framework="tensorflow", version="2.21.0", cuda="cpu"))
    assert tf.requirement == "tensorflow-cpu==2.21.0"
    jx = resolve(PlanRequest(framework="jax", version="0.10.2", cuda="cpu"))
    assert jx.requirement == "jax==0.10.2"


def test_tensorflow_uses_and_cuda_wheels_on_a_slim_base() -> None:
    p = resolve(PlanRequest(framework="tensorflow", version="2.18"))
    row = kb.builds("tensorflow", "2.18.1")[0]
    assert p.requirement == "tensorflow[and-cuda]==2.18.*"
    assert (p.cuda, p.cudnn) == (row.cuda, row.cudnn)
    assert p.base_image.endswith("-base-ubuntu22.04")
    devel = resolve(PlanRequest(framework="tensorflow", version="2.18", flavor="devel"))
    assert "-cudnn-devel-" in devel.base_image


def test_jax_follows_the_driver_family() -> None:
    p = resolve(PlanRequest(framework="jax", driver="550.54.15"))
    assert p.requirement.startswith("jax[cuda12]==")
    # the newest 12.x base whose toolkit driver 550.54.15 runs in full is 12.4
    assert p.cuda == "12.4"
    assert p.driver_mode == "full"
    new = resolve(PlanRequest(framework="jax"))
    assert new.requirement.startswith("jax[cuda13]==")


def test_every_knowledge_base_cuda_has_a_base_image_row() -> None:
    """A torch/TF CUDA variant without a base tag would be unplannable: keep the tables in step.
    The version tables reach back to torch 1.0 and TensorFlow 1.5 (for pasted reports); the base
    table starts at CUDA 11.8, so the CUDAs before its oldest row are the only ones left out."""
    known = {b.cuda for b in _data.cuda_bases()}
    wanted = {b.cuda_mm for fw in ("torch", "tensorflow") for b in kb.builds(fw)}
    missing = {w for w in wanted if w not in known and w >= min(known)}
    assert not missing


def test_plan_from_an_envcheck_report_of_a_gpu_machine() -> None:
    text = (FIXTURES / "report_a10_driver535.json").read_text()
    req = request_from_report(text, "a10.json", PlanRequest(framework="torch"))
    assert req.driver == "535.129.03"
    assert req.known_gpus == (("NVIDIA A10", "8.6"),)
    assert req.python == "3.10"
    assert req.version == "2.6.0"
    p = resolve(req)
    assert p.requirement == "torch==2.6.0+cu124"
    assert p.python == "3.10"
    assert p.gpus[0].name == "NVIDIA A10"
    assert "sm_86" in p.gpus[0].covered_by
    # explicit options win over the report
    forced = resolve(request_from_report(text, "a10.json", PlanRequest(framework="torch", version="2.9")))
    assert forced.release == "2.9"


def test_plan_from_a_report_without_gpus_is_a_cpu_image() -> None:
    text = (FIXTURES / "report_cpu_host.json").read_text()
    p = resolve(request_from_report(text, "host.json", PlanRequest(framework="torch")))
    assert p.device == "cpu"
    assert any("no NVIDIA driver" in n for n in p.notes)


def test_bad_report_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        request_from_report("this is not a report", "x.txt", PlanRequest())
