"""Test helpers: tiny "fake CUDA" base images and a fake CUDA torch wheel.

CUDA base images (GBs) cannot be pulled here, so the CUDA path is exercised on local images built
FROM the debootstrap base that carry NVIDIA's environment conventions (CUDA_VERSION,
NV_CUDNN_VERSION, NVIDIA_REQUIRE_CUDA, ...), and a pure-Python wheel named like PyTorch's CUDA
build ("torch 2.6.0+cu126") whose version.py says which CUDA it was built for.
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

FAKE_BASE_DOCKERFILE = """\
ARG ROOT
FROM ${{ROOT}}
ENV NVARCH=x86_64 \\
    CUDA_VERSION={cuda} \\
    NVIDIA_REQUIRE_CUDA="cuda>={mm} brand=tesla,driver>=470,driver<471" \\
    NVIDIA_VISIBLE_DEVICES=all \\
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \\
    LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \\
    PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
{cudnn}
"""


def fake_cuda_base(
    docker: str, root_image: str, tag: str, cuda: str, cudnn: str | None, workdir: Path
) -> str:
    """Build a tiny local image FROM ``root_image`` with NVIDIA's env for ``cuda`` (e.g. "12.6.3")."""
    ctx = workdir / tag.replace("/", "_").replace(":", "_")
    ctx.mkdir(parents=True, exist_ok=True)
    mm = ".".join(cuda.split(".")[:2])
    (ctx / "Dockerfile").write_text(
        FAKE_BASE_DOCKERFILE.format(cuda=cuda, mm=mm, cudnn=f"ENV NV_CUDNN_VERSION={cudnn}" if cudnn else "")
    )
    subprocess.run(
        [docker, "build", "-q", "--build-arg", f"ROOT={root_image}", "-t", tag, str(ctx)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DOCKER_BUILDKIT": "0", **_env()},
    )
    return tag


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "DOCKER_BUILDKIT"}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def fake_torch_wheel(out: Path, version: str = "2.6.0+cu126", cuda: str = "12.6") -> Path:
    """A valid pure-Python wheel called torch ``version`` (tiny; it cannot compute anything)."""
    files = {
        "torch/__init__.py": (
            f'"""Fake torch for image tests."""\n__version__ = "{version}"\nfrom torch import version\n'
        ),
        "torch/version.py": f'__version__ = "{version}"\ncuda = "{cuda}"\nhip = None\ngit_version = "fake"\n',
    }
    dist = f"torch-{version}.dist-info"
    files[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\nSummary: fake for tests\n"
    )
    files[f"{dist}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: mlrig-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(n, t.encode()) for n, t in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"torch-{version.replace('-', '_')}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    path.write_bytes(buf.getvalue())
    return path
