"""Issue 14, "Wrong answers" about torch fixes: a fix stays on the installed release when a build of
it fits, never jumps from a release the tables do not know, keeps torchvision/torchaudio pinned to the
torch it installs (or names them), and a release whose other CUDA variants the tables could not read
is not answered with a downgrade."""

from __future__ import annotations

import pytest

from envcheck.ingest import load
from envcheck.report import rejudge

PASTE = """PyTorch version: {torch}
Is debug build: False
CUDA used to build PyTorch: {cuda}
ROCM used to build PyTorch: N/A

OS: Ubuntu 22.04.3 LTS (x86_64)
Python version: 3.10.12 (main, Nov 20 2023, 15:14:05) [GCC 11.4.0] (64-bit runtime)
Python platform: Linux-5.15.0-91-generic-x86_64-with-glibc2.35
Is CUDA available: False
GPU models and configuration: GPU 0: NVIDIA A100-SXM4-80GB
Nvidia driver version: {driver}
cuDNN version: Could not collect

Versions of relevant libraries:
[pip3] numpy==1.26.2
[pip3] torch=={torch}
[pip3] torchaudio==2.1.0{local}
[pip3] torchvision==0.16.0{local}
"""


def _diagnose(torch: str, cuda: str, driver: str, local: str):
    text = PASTE.format(torch=torch, cuda=cuda, driver=driver, local=local)
    return rejudge(load(text, "collect_env.txt"))


@pytest.mark.parametrize(
    ("torch", "cuda", "driver", "finding", "index"),
    [
        # a CPU build on driver 550: the 2.1 CUDA build, not "no torch 2.1 build fits" and 2.14.1
        ("2.1.0+cpu", "None", "550.54.15", "cpu-only-wheel", "cu121"),
        # cu121 on driver 470 (CUDA 11.x by minor-version compatibility): 2.1's cu118, not 2.7.1
        ("2.1.0+cu121", "12.1", "470.82.01", "driver-too-old", "cu118"),
    ],
)
def test_torch_2_1_stays_on_2_1_with_its_companions(torch, cuda, driver, finding, index):
    local = "+" + torch.split("+")[1]
    report = _diagnose(torch, cuda, driver, local)
    [f] = [f for f in report.findings if f.id == finding]
    assert f.commands == [
        "pip uninstall -y torch torchaudio torchvision",
        "pip install torch==2.1.0 torchvision==0.16.0 torchaudio==2.1.0 "
        f"--index-url https://download.pytorch.org/whl/{index}",
    ]
    assert "no torch 2.1 build" not in (f.fix or "")


def test_a_release_older_than_the_tables_is_not_answered_with_a_jump():
    report = _diagnose("0.4.1+cpu", "None", "550.54.15", "+cpu")
    [f] = [f for f in report.findings if f.id == "cpu-only-wheel"]
    assert f.commands == []
    assert "0.4.1+cpu is older than envcheck's tables (1.0..2.15)" in (f.fix or "")
    assert "driver 550.54.15 runs CUDA <= 12.4" in (f.fix or "")
    assert [x.id for x in report.findings if x.id == "knowledge-partial"] == ["knowledge-partial"]


def test_torch_2_0_stays_on_2_0_from_its_pypi_wheel_row():
    # 2.0.1 is in the tables now (its PyPI wheel: +cu117, sm_37-sm_86): the fix stays on 2.0.1;
    # no torchvision release in the tables pins torch 2.0.1, so it is named, not guessed
    report = _diagnose("2.0.1+cpu", "None", "550.54.15", "+cpu")
    [f] = [f for f in report.findings if f.id == "cpu-only-wheel"]
    assert f.commands == [
        "pip uninstall -y torch torchaudio torchvision",
        "pip install torch==2.0.1 --index-url https://download.pytorch.org/whl/cu117",
    ]
    assert "the tables know no torchvision or torchaudio release for torch 2.0.1" in (f.fix or "")
    assert [x.id for x in report.findings if x.id == "knowledge-partial"] == []


def test_companions_without_a_known_release_are_named(healthy, judge):
    s = healthy
    torch = s.frameworks.frameworks[0]
    torch.version, torch.build, torch.cuda_build, torch.deep = "2.13.0+cpu", "cpu", None, None
    torch.plugins = {"torchvision": "0.28.0+cpu", "torchaudio": "2.10.0+cpu"}
    f = judge(s).one("cpu-only-wheel")
    # torchvision 0.28.0 pins torch==2.13.0; no torchaudio release does (its last one is 2.11.x)
    assert "torchvision==0.28.0" in f.commands[-1] and "torchaudio" not in f.commands[-1]
    assert "the tables know no torchaudio release for torch 2.13.0" in (f.fix or "")
    assert f.commands[0] == "pip uninstall -y torch torchaudio torchvision"


def test_torch_2_15_on_an_old_driver_is_not_told_to_downgrade(healthy, judge):
    s = healthy
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "550.54.15", 12040
    s.cuda.driver_version = 12040
    torch = s.frameworks.frameworks[0]
    torch.version, torch.cuda_build, torch.deep = "2.15.0+cu132", "13.2", None
    f = judge(s).one("driver-too-old")
    assert not any("pip install torch" in c for c in f.commands)  # the driver is the fix
    assert "580.65.06" in (f.fix or "")
