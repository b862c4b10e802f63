"""Static framework facts: read from version files and dist-info, never by importing the framework."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envcheck.models import Framework
from envcheck.probes import ProbeContext, frameworks


def _by_name(info: object) -> dict[str, Framework]:
    return {f.name: f for f in info.frameworks}  # type: ignore[attr-defined]


def test_cuda_site_tree_gives_build_facts(fixtures: Path, make_env) -> None:
    site = fixtures / "cuda_site" / "site-packages"
    ctx = ProbeContext(env=make_env(PYTHONPATH=str(site)), timeout=30)
    info = frameworks.probe(ctx)
    fw = _by_name(info)

    torch = fw["torch"]
    assert torch.installed and torch.location == str(site / "torch")
    assert torch.distribution == "torch"
    assert torch.version == "2.6.0+cu124"
    assert torch.build == "cuda"
    assert torch.cuda_build == "12.4"
    assert torch.cudnn_build == "9.1.0.70"  # the nvidia-cudnn pin in the wheel's metadata
    assert torch.git_version == "1eba9b3aa3c43f86f4a2c807ac8e12c4a7767340"
    assert torch.error is None and torch.deep is None
    assert torch.arch_list is None  # a CUDA build's archs are not in its static files

    tf = fw["tensorflow"]
    assert (tf.distribution, tf.version, tf.build) == ("tensorflow", "2.18.0", "cuda")
    assert (tf.cuda_build, tf.cudnn_build) == ("12.5.1", "9")
    assert tf.arch_list == ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]

    jax = fw["jax"]
    assert (jax.version, jax.build, jax.cuda_build) == ("0.7.2", "cuda", "12")
    assert jax.plugins == {"jaxlib": "0.7.2", "jax-cuda12-plugin": "0.7.2", "jax-cuda12-pjrt": "0.7.2"}

    # CUDA library wheels only: nvidia-ml-py is a Python binding, not a CUDA library
    assert info.nvidia_wheels == {"nvidia-cudnn-cu12": "9.1.0.70", "nvidia-cuda-runtime-cu12": "12.4.127"}


@pytest.mark.frameworks
def test_real_installs_are_cpu_builds() -> None:
    """The venv's torch 2.13.0+cpu, tensorflow-cpu 2.21.0 and jax 0.10.2, read in-process."""
    pytest.importorskip("torch.version")  # cheap: torch/version.py only, but proves torch is there
    fw = _by_name(frameworks.probe(ProbeContext(timeout=30)))
    torch, tf, jax = fw["torch"], fw["tensorflow"], fw["jax"]
    assert torch.installed and torch.version == "2.13.0+cpu"
    assert torch.build == "cpu" and torch.cuda_build is None and torch.cudnn_build is None
    assert torch.arch_list == []
    assert tf.installed and tf.distribution == "tensorflow-cpu" and tf.version == "2.21.0"
    assert tf.build == "cpu" and tf.cuda_build is None and tf.arch_list == []
    assert jax.installed and jax.version == "0.10.2" and jax.build == "cpu"
    assert jax.plugins.get("jaxlib") == "0.10.2"


def test_static_probe_imports_no_framework(make_env) -> None:
    """Run the static probe in a fresh interpreter and list what it imported."""
    code = (
        "import sys, json\n"
        "from envcheck.probes import ProbeContext, frameworks\n"
        "info = frameworks.probe(ProbeContext())\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'jax', 'jaxlib'}\n"
        "print(json.dumps([sorted(heavy), [f.name for f in info.frameworks if f.installed]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=make_env(), check=True
    )
    imported, installed = json.loads(out.stdout.strip().splitlines()[-1])
    assert imported == []
    assert installed  # it did find the installed frameworks (all three in the dev venv)


def test_another_venv_on_the_same_base_interpreter(tmp_path: Path, make_env) -> None:
    """``ctx.python`` is honoured even when it resolves to the same binary as this venv's python."""
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    assert python.resolve() == Path(sys.executable).resolve()  # same real binary, different sys.path
    info = frameworks.probe(ProbeContext(env=make_env(PYTHONNOUSERSITE="1"), python=str(python), timeout=30))
    for fw in info.frameworks:
        assert (fw.installed, fw.version, fw.error) == (False, None, None), fw
    assert info.nvidia_wheels == {} and info.error is None


def test_tf_nightly_distribution_and_old_build_info(tmp_path: Path, make_env) -> None:
    site = tmp_path / "site-packages"
    (site / "tensorflow" / "python" / "platform").mkdir(parents=True)
    (site / "tensorflow" / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    # TF 2.4-era build_info: module-level names instead of the build_info dict
    (site / "tensorflow" / "python" / "platform" / "build_info.py").write_text(
        "is_cuda_build = True\ncuda_version = '11.0'\ncudnn_version = '8'\n"
        "cuda_compute_capabilities = ['sm_35', 'sm_50', 'sm_60', 'sm_70', 'sm_75', 'compute_80']\n"
    )
    dist = site / "tf_nightly-2.22.0.dev20260101.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tf-nightly\nVersion: 2.22.0.dev20260101\n")
    tf = _by_name(frameworks.probe(ProbeContext(env=make_env(PYTHONPATH=str(site)), timeout=30)))[
        "tensorflow"
    ]
    assert (tf.distribution, tf.version) == ("tf-nightly", "2.22.0.dev20260101")
    assert (tf.build, tf.cuda_build, tf.cudnn_build) == ("cuda", "11.0", "8")
    assert tf.arch_list is not None and tf.arch_list[-1] == "compute_80"


def test_rocm_torch_and_unparseable_version_file(tmp_path: Path) -> None:
    rocm = tmp_path / "rocm" / "torch"
    rocm.mkdir(parents=True)
    (rocm / "version.py").write_text("__version__ = '2.5.1+rocm6.2'\ncuda = None\nhip = '6.2.41133'\n")
    facts = frameworks.torch_facts(rocm)
    assert (facts["build"], facts["cuda_build"], facts["rocm_build"]) == ("rocm", None, "6.2.41133")

    broken = tmp_path / "broken" / "torch"
    broken.mkdir(parents=True)
    (broken / "version.py").write_text("__version__ = '2.6.0\n")
    facts = frameworks.torch_facts(broken)
    assert facts["build"] is None and facts["version"] is None
    assert "cannot parse" in facts["error"]


def test_literal_assignments_never_executes(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    source = f"import os\nos.mknod({str(marker)!r})\n__version__ = '1.0'\ncuda = None\nx = compute()\n"
    values = frameworks.literal_assignments(source)
    assert values == {"__version__": "1.0", "cuda": None}
    assert not marker.exists()


def test_legacy_jaxlib_cuda_wheel(tmp_path: Path, make_env) -> None:
    """jaxlib < 0.4.14 carried CUDA itself, visible only in its local version tag."""
    site = tmp_path / "site-packages"
    (site / "jax").mkdir(parents=True)
    (site / "jax" / "__init__.py").write_text("")
    for name, version in (("jax", "0.4.13"), ("jaxlib", "0.4.13+cuda12.cudnn89")):
        d = site / f"{name}-{version}.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    jax = _by_name(frameworks.probe(ProbeContext(env=make_env(PYTHONPATH=str(site)), timeout=30)))["jax"]
    assert (jax.build, jax.cuda_build, jax.cudnn_build) == ("cuda", "12", "8.9")
