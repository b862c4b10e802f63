"""What round 5's misses showed envcheck did not read: a form's typed CUDA/cuDNN (a claim, judged as
one), install commands that pick PyTorch's CPU index, an inline conda record of a CPU build, and a
run that asked for the GPU (``docker run --runtime=nvidia`` of an L4T image, ``.to("cuda")``, a
title). Each on its real paste (tests/fixtures/ingest, sources in corpus.toml) and on real lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.errors import UsageError
from envcheck.ingest import load
from envcheck.models import Report, Severity
from envcheck.report import rejudge

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def judged(name: str) -> Report:
    return rejudge(load((ROOT / name).read_bytes(), name))


def judged_text(text: str) -> Report:
    return rejudge(load(text, "paste"))


def finding(report: Report, fid: str):
    return next((f for f in report.findings if f.id == fid), None)


@pytest.mark.parametrize(
    ("name", "cuda", "cudnn", "built"),
    [
        ("tensorflow-38090_tf21_windows_cuda102_needs_101.txt", "10.2.89", None, "10.1"),
        ("tensorflow-69042_wsl_tf215_cuda118_cudnn86_template_only.txt", "11.8", "8.6", "12.2"),
    ],
)
def test_a_typed_cuda_that_cannot_stand_in_is_a_warning_that_says_it_is_a_claim(name, cuda, cudnn, built):
    r = judged(name)
    paste = r.snapshot.paste
    assert paste is not None and (paste.stated_cuda, paste.stated_cudnn) == (cuda, cudnn)
    f = finding(r, "cuda-libs-missing")
    assert f is not None and f.severity is Severity.WARNING
    assert f.facts["tensorflow_cuda"] == built and f.facts["stated_cuda"] == cuda
    assert any("typed by the user" in a for a in f.facts["assumed"])


@pytest.mark.parametrize(
    ("field", "cuda", "cudnn"),
    [
        ("- CUDA/cuDNN version: 11.2/8.1", "11.2", "8.1"),
        ("- CUDA/cuDNN version: cuDNN 8.1.0, CUDA 11.2", "11.2", "8.1.0"),
        ("### CUDA/cuDNN version\n\nCUDA 12.2, cuDNN 8.9", "12.2", "8.9"),
        ("- CUDA/cuDNN version: N/A", None, None),
        ("- CUDA/cuDNN version: driver 535.54", None, None),
    ],
)
def test_the_templates_cuda_field_in_its_spellings(field, cuda, cudnn):
    r = judged_text(f"- TensorFlow version (use command below): 2.10.0\n{field}\n")
    assert r.snapshot.paste is not None
    assert (r.snapshot.paste.stated_cuda, r.snapshot.paste.stated_cudnn) == (cuda, cudnn)


def test_a_typed_cuda_that_fits_or_a_tf_seen_using_the_gpu_gives_nothing():
    fits = judged_text("- TensorFlow version: 2.10.0\n- CUDA/cuDNN version: 11.2/8.1\n")
    assert finding(fits, "cuda-libs-missing") is None
    seen = judged_text(
        "- TensorFlow version: 2.10.0\n- CUDA/cuDNN version: 10.1/7.6\n"
        "2022-10-01 10:00:00.000000: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1616] Created device "
        "/job:localhost/replica:0/task:0/device:GPU:0 with 9621 MB memory:  -> device: 0, "
        "name: NVIDIA GeForce "
        "RTX 3080, pci bus id: 0000:01:00.0, compute capability: 8.6\n"
    )
    assert finding(seen, "cuda-libs-missing") is None


def test_an_installer_that_picked_pytorchs_cpu_index_is_read_as_a_cpu_torch():
    r = judged("pinokio-978_wsl_uv_install_cpu_index_torch.txt")
    torch = r.snapshot.framework("torch")
    assert torch is not None and (torch.version, torch.build) == ("2.6.0", "cpu")
    f = finding(r, "cpu-only-wheel")
    assert f is not None and f.facts["assumed"]  # the paste shows no GPU: the title says one was wanted


@pytest.mark.parametrize(
    "line",
    [
        "pip3 install torch torchvision torchaudio --index-url https://download.pytorch.org/whl/cu121",
        "try: pip install torch --index-url https://download.pytorch.org/whl/cpu",
        "pip install torch==2.1.0",
    ],
)
def test_cuda_indexes_advice_and_bare_pins_are_not_read_as_a_cpu_build(line):
    with pytest.raises(UsageError):
        load(line + "\n", "paste")


def test_a_conda_record_of_a_cpu_build_quoted_inline_is_read():
    r = judged("pytorch-69202_conda_export_spec_cpu_build_win64.txt")
    torch = r.snapshot.framework("torch")
    assert torch is not None and (torch.version, torch.build) == ("1.9.0", "cpu")
    assert finding(r, "cpu-only-wheel") is not None


def test_a_cpu_torch_in_an_l4t_container_run_with_the_nvidia_runtime_is_an_error_on_a_jetson():
    r = judged("jetson-containers-1468_orin_image_test_torch290_cpu.txt")
    paste = r.snapshot.paste
    assert paste is not None and paste.gpu_wanted and "--runtime=nvidia" in paste.gpu_wanted
    assert paste.container_hint and "tegra-aarch64" in paste.container_hint  # the continued line's image
    f = finding(r, "cpu-only-wheel")
    assert f is not None and f.severity is Severity.ERROR and "Jetson" in f.summary


def test_code_that_moves_work_to_cuda_says_the_gpu_was_wanted():
    text = (
        "PyTorch version: 2.3.0+cpu\nIs CUDA available: False\n\n"
        "model = AutoModel.from_pretrained(name).to('cuda')\n"
    )
    r = judged_text(text)
    assert r.snapshot.paste is not None and r.snapshot.paste.gpu_wanted
    f = finding(r, "cpu-only-wheel")
    assert f is not None and f.severity is Severity.WARNING
    bare = judged_text("PyTorch version: 2.3.0+cpu\nIs CUDA available: False\n")
    assert finding(bare, "cpu-only-wheel") is None  # a bare dump of a CPU machine stays clean


@pytest.mark.parametrize(
    ("line", "fid"),
    [
        # cuda_memtest#31, inter-operator-scheduler#4, candle#2498: error 222 in its three spellings
        (
            "ERROR: CUDA error: the provided PTX was compiled with an unsupported toolchain., line 148",
            "driver-too-old",
        ),
        ("Cuda failure: 222 the provided PTX was compiled with an unsupported toolchain.", "driver-too-old"),
        (
            'DriverError(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "the provided PTX was compiled with an '
            'unsupported toolchain.") when loading is_u32_f32',
            "driver-too-old",
        ),
        # nvidia-docker#1256, easydiffusion#134: error 803
        (
            "CUDA: Check failed: e == cudaSuccess (803 vs. 0) : system has unsupported display driver / "
            "cuda driver combination",
            "driver-library-mismatch",
        ),
        (
            "Error 803: system has unsupported display driver / cuda driver combination",
            "driver-library-mismatch",
        ),
    ],
)
def test_cuda_errors_222_and_803_on_real_lines(line, fid):
    f = finding(judged_text(line + "\n"), fid)
    assert f is not None and f.severity is Severity.ERROR and f.facts["error_lines"]
