#!/usr/bin/env python3
"""Benchmarks for ``provision image`` on a real Docker engine; prints figures, asserts nothing.

1. Rebuild after changing only the project's source vs a cold build (target <= 10%), for the
   torch 2.13.0+cpu image on the debootstrap base, with the SDK (legacy) and the BuildKit CLI
   backends.
2. Image size: the runtime torch 2.13.0 CUDA 13.0 image mlrig renders vs the same stack in the
   cog/deepo style (one stage on a cuDNN ``devel`` base). NVIDIA's base images cannot be pulled
   here, so both bases are stand-ins built FROM the debootstrap image:
     - "base" stand-in: debootstrap + NVIDIA's env (what nvidia/cuda:13.0.3-base adds is ~0.1 GB
       of cudart/compat, left out);
     - "cudnn-devel" stand-in: debootstrap + this machine's CUDA 13.0 toolkit (/usr/local/cuda-13.0)
       + the shared libraries and headers of the nvidia-* wheels torch needs (cuBLAS, cuDNN, ...),
       installed system-wide as the devel image has them (its static libraries are left out, so the
       stand-in is smaller than the real image and the ratio is conservative).
   Both images install the same wheels (torch 2.13.0 + nvidia-*-cu13 from PyPI, cached under
   ~/.cache/mlrig/bench-wheels) from a loopback index on 127.0.0.1.

Usage: python scripts/bench_images.py [--skip-rebuild] [--skip-size]
Uses DOCKER_HOST when an engine answers; otherwise starts one with scripts/docker-engine.sh and
stops it (by PID) at the end. Needs a few GB of disk for the size benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provision.errors import ProvisionError  # noqa: E402
from provision.images import _data, _docker, backends  # noqa: E402
from provision.images.build import build_image  # noqa: E402
from provision.images.render import RenderOptions, write_context  # noqa: E402
from provision.images.resolve import PlanRequest, resolve  # noqa: E402

SCRIPT = REPO / "scripts" / "docker-engine.sh"
CACHE = Path(os.environ.get("MLRIG_CACHE_DIR", Path.home() / ".cache" / "mlrig"))
BASE_TAG = "local/debian-bookworm:minbase"
GB = 1e9


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def engine() -> Iterator[None]:
    """The engine at DOCKER_HOST, or a private one started (and stopped by PID) for this run."""
    try:
        _docker.client(timeout=10)
        running = True
    except ProvisionError:
        running = False
    if running:
        yield
        return
    directory = tempfile.mkdtemp(prefix="mlrig-bench.", dir="/tmp")
    out = subprocess.run(
        [str(SCRIPT), "start", directory], capture_output=True, text=True, check=False, timeout=900
    )
    if out.returncode != 0:
        sys.exit(f"cannot start an engine: {out.stderr.strip()}")
    values = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    os.environ["DOCKER_HOST"] = values["DOCKER_HOST"]
    log(f"started dockerd (pid {Path(directory, 'dockerd.pid').read_text().strip()}) under {directory}")
    try:
        yield
    finally:
        subprocess.run([str(SCRIPT), "stop", directory], check=False, timeout=120)


def pip_wheel(dest: Path, *specs: str, clean_config: bool = False) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if clean_config:  # this machine's pip config prefers its local CPU torch: ask PyPI itself
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="")
    verb, flag = ("download", "-d") if clean_config else ("wheel", "-w")
    subprocess.run(
        [sys.executable, "-m", "pip", verb, "-q", flag, str(dest), "--find-links", str(dest), *specs],
        check=True, env=env, timeout=3600,
    )  # fmt: skip
    return sorted(dest.glob("*.whl"))


def base_image() -> str:
    subprocess.run([str(SCRIPT), "base-image", BASE_TAG], check=True, capture_output=True, timeout=1800)
    return BASE_TAG


def wheelhouse() -> list[Path]:
    numpy = f"numpy=={_data.pin('numpy')[0]}"
    return pip_wheel(CACHE / "bench" / "wheelhouse", str(REPO), numpy)


# --------------------------------------------------------------------------- 1. rebuild vs cold


def bench_rebuild(backend: str, base: str, wheels: list[Path], work: Path) -> None:
    plan = resolve(
        PlanRequest(
            framework="torch", version="2.13.0", cuda="cpu", python="3.11", base=base,
            framework_index="none", index_url="none",
        )
    )  # fmt: skip
    ctx = work / f"rebuild-{backend}"
    write_context(plan, ctx, RenderOptions(wheels=tuple(wheels), cache_mounts=backend == "cli"))
    app = ctx / "src" / "app.py"
    app.write_text("print('v1')\n")
    tag = f"mlrig-bench/torch-cpu:{backend}"
    cold = build_image(ctx, tag=tag, backend=backend, no_cache=True)
    app.write_text("print('v2')\n")
    warm = build_image(ctx, tag=tag, backend=backend)
    ratio = warm.seconds / cold.seconds
    print(
        f"rebuild/{backend:3s}  cold {cold.seconds:6.1f} s   source-only rebuild {warm.seconds:5.1f} s   "
        f"ratio {ratio:5.1%} (target <= 10%)   image {cold.info.size / GB:.2f} GB"
    )


# --------------------------------------------------------------------------- 2. size vs devel style


@contextlib.contextmanager
def loopback_index(wheels: list[Path], root: Path) -> Iterator[str]:
    """A PEP 503 index of ``wheels`` on 127.0.0.1 (directory listings are enough for pip)."""
    import re

    simple = root / "simple"
    for w in wheels:
        name = re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower()
        d = simple / name
        d.mkdir(parents=True, exist_ok=True)
        if not (d / w.name).exists():
            (d / w.name).symlink_to(w)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


EXTRACT = """\
import io, sys, urllib.request, zipfile, re
index, dest = sys.argv[1], sys.argv[2]
page = urllib.request.urlopen(index + "/", timeout=60).read().decode()
for project in re.findall(r'href="(nvidia-[^"/]+)/"', page):
    listing = urllib.request.urlopen(f"{index}/{project}/", timeout=60).read().decode()
    for wheel in re.findall(r'href="([^"]+\\.whl)"', listing):
        data = urllib.request.urlopen(f"{index}/{project}/{wheel}", timeout=600).read()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                parts = info.filename.split("/")
                wanted = len(parts) > 3 and parts[0] == "nvidia" and parts[2] in ("lib", "include")
                if wanted and not info.is_dir():
                    target = f"{dest}/{'lib64' if parts[2] == 'lib' else 'include'}/" + "/".join(parts[3:])
                    import os
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as fh:
                        fh.write(z.read(info))
"""

STANDIN_ENV = (
    'ENV CUDA_VERSION=13.0.3 NVIDIA_REQUIRE_CUDA="cuda>=13.0" NVIDIA_VISIBLE_DEVICES=all '
    "NVIDIA_DRIVER_CAPABILITIES=compute,utility"
)


def docker_build(ctx: Path, tag: str, dockerfile: str) -> float:
    (ctx / "Dockerfile").write_text(dockerfile)
    start = time.monotonic()
    build_image(ctx, tag=tag, backend="sdk")
    return time.monotonic() - start


def standins(base: str, index: str, work: Path) -> tuple[str, str]:
    slim = work / "standin-base"
    slim.mkdir(parents=True, exist_ok=True)
    docker_build(slim, "mlrig-bench/standin:13.0.3-base", f"FROM {base}\n{STANDIN_ENV}\n")
    devel = work / "standin-devel"
    devel.mkdir(parents=True, exist_ok=True)
    cuda = Path("/usr/local/cuda-13.0")
    if not (devel / "cuda").exists():
        shutil.copytree(cuda, devel / "cuda", symlinks=True)
    (devel / "extract.py").write_text(EXTRACT)
    cudnn = next(
        (w.name.split("-")[1] for w in (CACHE / "bench-wheels").glob("nvidia_cudnn_cu13-*.whl")), "9"
    )
    docker_build(
        devel,
        "mlrig-bench/standin:13.0.3-cudnn-devel",
        f"FROM {base}\nCOPY cuda/ /usr/local/cuda-13.0/\nCOPY extract.py /tmp/extract.py\n"
        f"RUN python3 /tmp/extract.py {index} /usr/local/cuda-13.0 && rm /tmp/extract.py "
        "&& ln -s /usr/local/cuda-13.0 /usr/local/cuda\n"
        f"{STANDIN_ENV} NV_CUDNN_VERSION={cudnn} "
        "PATH=/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
    )
    return "mlrig-bench/standin:13.0.3-base", "mlrig-bench/standin:13.0.3-cudnn-devel"


def bench_size(base: str, house: list[Path], work: Path) -> None:
    cuda_wheels = pip_wheel(
        CACHE / "bench-wheels", "torch==2.13.0", f"numpy=={_data.pin('numpy')[0]}", clean_config=True
    )
    log(f"{len(cuda_wheels)} CUDA wheels, {sum(w.stat().st_size for w in cuda_wheels) / GB:.2f} GB")
    with loopback_index([*cuda_wheels, *house], work / "index") as index:
        slim, devel = standins(base, index, work)
        c = _docker.client()
        plan = resolve(
            PlanRequest(
                # "2.13" pins torch==2.13.*: PyPI's CUDA 13.0 wheel carries no +cu130 suffix
                framework="torch", version="2.13", cuda="13.0", python="3.11", base=slim,
                framework_index=index, index_url=index,
            )
        )  # fmt: skip
        ours = work / "ours"
        write_context(plan, ours, RenderOptions())
        (ours / "src" / "train.py").write_text("print('train')\n")
        a = build_image(ours, tag="mlrig-bench/torch-cuda:mlrig-runtime", backend="sdk")
        theirs = work / "devel-style"
        (theirs / "src").mkdir(parents=True, exist_ok=True)
        (theirs / "src" / "train.py").write_text("print('train')\n")
        envcheck_req = plan.envcheck_requirement
        b_seconds = docker_build(
            theirs,
            "mlrig-bench/torch-cuda:devel-style",
            f"FROM {devel}\n"
            "RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir "
            f'--index-url {index} "torch==2.13.0" "numpy=={_data.pin("numpy")[0]}" "{envcheck_req}"\n'
            "ENV PATH=/opt/venv/bin:$PATH\nWORKDIR /src\nCOPY src/ /src/\n",
        )
        sizes = {
            name: _docker.inspect(c, tag).size
            for name, tag in (
                ("base stand-in", slim),
                ("cudnn-devel stand-in", devel),
                ("mlrig runtime", "mlrig-bench/torch-cuda:mlrig-runtime"),
                ("devel style", "mlrig-bench/torch-cuda:devel-style"),
            )
        }
    for name, size in sizes.items():
        print(f"size/{name:22s} {size / GB:6.2f} GB")
    ratio = sizes["mlrig runtime"] / sizes["devel style"]
    print(
        f"size/ratio mlrig runtime / devel style: {ratio:.2f}x (target <= 0.6x)   "
        f"builds {a.seconds:.0f} s / {b_seconds:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--skip-size", action="store_true")
    args = parser.parse_args()
    with engine(), tempfile.TemporaryDirectory(prefix="mlrig-bench-") as tmp:
        work = Path(tmp)
        base = base_image()
        house = wheelhouse()
        if not args.skip_rebuild:
            torch_cpu = pip_wheel(CACHE / "bench" / "torch-cpu", "torch==2.13.0+cpu")
            wheels = sorted({*torch_cpu, *house})
            bench_rebuild("sdk", base, wheels, work)
            if backends.find_buildkit_cli() is not None:
                bench_rebuild("cli", base, wheels, work)
            else:
                print("rebuild/cli  skipped: no docker CLI here builds with BuildKit")
        if not args.skip_size:
            bench_size(base, house, work)


if __name__ == "__main__":
    main()
