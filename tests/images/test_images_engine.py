"""Against a real Docker engine (dockerd started by scripts/docker-engine.sh; see conftest.py).

A realistic torch-CPU image is rendered, built, and proven with envcheck inside it; the CUDA path
runs on tiny "fake CUDA" bases that carry NVIDIA's environment conventions, with a fake torch
CUDA wheel, so resolved versions, labels, env inheritance and the failure paths are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.errors import ProvisionError, UsageError
from provision.images import _docker, backends
from provision.images.backends import BuildEvent, BuildFailed
from provision.images.build import build_image
from provision.images.render import RenderOptions, write_context
from provision.images.resolve import PlanRequest, resolve
from provision.images.selftest import run_selftest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]


def provision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision", "image", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def fake_cuda_context(
    tmp_path: Path,
    base: str,
    wheels: list[Path],
    *,
    flavor: str = "runtime",
    gpus: tuple[str, ...] = (),
    **opts: object,
) -> Path:
    plan = resolve(
        PlanRequest(
            framework="torch",
            version="2.6.0",
            cuda="12.6",
            python="3.11",
            flavor=flavor,  # type: ignore[arg-type]
            gpus=gpus,
            base=base,
            framework_index="none",
            index_url="none",
        )
    )
    ctx = tmp_path / "ctx"
    write_context(plan, ctx, RenderOptions(wheels=tuple(wheels), **opts))  # type: ignore[arg-type]
    (ctx / "src" / "train.py").write_text("print('training')\n")
    return ctx


def test_torch_cpu_image_end_to_end(
    engine: object, base_image: str, wheelhouse: Path, torch_cpu_wheels: list[Path], tmp_path: Path
) -> None:
    ctx = tmp_path / "project"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "app.py").write_text("print('v1')\n")
    wheels = [*torch_cpu_wheels, *sorted(wheelhouse.glob("*.whl"))]
    render = provision(
        "render", "-o", str(ctx), "-f", "torch==2.13.0", "--cuda", "cpu", "--python", "3.11",
        "--base", base_image, "--framework-index", "none", "--index-url", "none",
        *[a for w in wheels for a in ("--wheel", str(w))],
    )  # fmt: skip
    assert render.returncode == 0, render.stderr
    assert "hadolint and structural checks: clean" in render.stderr

    tag = "mlrig-test/torch-cpu:e2e"
    built = provision("build", str(ctx), "-t", tag, "--json")
    assert built.returncode == 0, built.stderr[-3000:]
    data = json.loads(built.stdout)
    assert data["backend"] == "sdk"
    assert data["labels"]["dev.mlrig.requirement"] == "torch==2.13.0+cpu"
    assert data["labels"]["dev.mlrig.device"] == "cpu"
    assert data["labels"]["org.opencontainers.image.created"]
    assert data["size_bytes"] == sum(layer["size_bytes"] for layer in data["layers"])
    assert max(layer["size_bytes"] for layer in data["layers"]) > 300_000_000  # the venv with torch
    assert data["problems"] == []

    tested = provision("test", tag, "--json")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    checks = {c["name"]: c for c in json.loads(tested.stdout)["checks"]}
    assert checks["envcheck"]["ok"] is True
    assert "torch 2.13.0+cpu" in checks["envcheck"]["summary"]
    assert checks["pinned version"]["ok"] is True
    assert checks["envcheck smoke"]["ok"] is True

    c = _docker.client()
    inside = _docker.run(
        c, tag, ["sh", "-c", "id -u; ls -A /workspace; test -e /tmp/mlrig && echo LEAK || echo no-build-area"]
    )
    assert inside.exit_code == 0, inside.stderr
    assert inside.stdout.split() == ["1000", "app.py", "no-build-area"]

    # editing only the project's source rebuilds only the last layer
    before = c.api.inspect_image(tag)["RootFS"]["Layers"]
    (ctx / "src" / "app.py").write_text("print('v2')\n")
    steps: list[BuildEvent] = []
    build_image(ctx, tag=tag, on_event=steps.append)
    after = c.api.inspect_image(tag)["RootFS"]["Layers"]
    assert len(after) == len(before)
    assert after[:-1] == before[:-1]
    assert after[-1] != before[-1]
    cached = [e for e in steps if e.kind == "log" and "Using cache" in e.text]
    assert len(cached) >= 10


def test_fake_cuda_image_carries_the_resolved_stack(
    engine: object, fake_cuda: dict[str, str], wheelhouse: Path, fake_torch_wheel: Path, tmp_path: Path
) -> None:
    ctx = fake_cuda_context(tmp_path, fake_cuda["12.6"], [fake_torch_wheel, *wheelhouse.glob("*.whl")])
    outcome = build_image(ctx, tag="mlrig-test/fake-cuda:runtime")
    assert outcome.backend == "sdk"
    assert outcome.problems == []
    labels, env = outcome.info.labels, outcome.info.env
    assert labels["dev.mlrig.cuda"] == "12.6"
    assert labels["dev.mlrig.cudnn"] == "9.5.1.17"
    assert labels["dev.mlrig.requirement"] == "torch==2.6.0+cu126"
    assert env["CUDA_VERSION"] == "12.6.3"  # inherited from the base
    assert env["NVIDIA_REQUIRE_CUDA"] == "cuda>=12.6"  # ours: the wheel's CUDA, not the base's brand list
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert outcome.info.user == "1000:1000"

    _info, results = run_selftest("mlrig-test/fake-cuda:runtime", timeout=300)
    by_name = {r.name: r for r in results}
    assert by_name["labels vs base"].ok is True
    assert by_name["envcheck"].data["frameworks"]["torch"] == "2.6.0+cu126"
    assert by_name["pinned version"].ok is True
    assert by_name["envcheck smoke"].ok is False  # a fake torch cannot multiply: failures surface

    with pytest.raises(ProvisionError, match=r"push to 127\.0\.0\.1:9/mlrig/fake:1 failed"):
        build_image(ctx, tag="mlrig-test/fake-cuda:runtime", push="127.0.0.1:9/mlrig/fake:1")


def test_base_with_the_wrong_cuda_is_refused(
    engine: object, fake_cuda: dict[str, str], wheelhouse: Path, fake_torch_wheel: Path, tmp_path: Path
) -> None:
    ctx = fake_cuda_context(tmp_path, fake_cuda["12.6"], [fake_torch_wheel, *wheelhouse.glob("*.whl")])
    r = provision(
        "build",
        str(ctx),
        "-t",
        "mlrig-test/fake-cuda:wrong",
        "--build-arg",
        f"BASE_IMAGE={fake_cuda['12.4']}",
    )
    assert r.returncode == 1, r.stderr
    assert "the base carries CUDA 12.4.1 (CUDA_VERSION) but the image is planned for CUDA 12.6" in " ".join(
        r.stderr.split()
    )


def test_failed_pip_step_names_its_line(
    engine: object, fake_cuda: dict[str, str], wheelhouse: Path, tmp_path: Path
) -> None:
    ctx = fake_cuda_context(tmp_path, fake_cuda["12.6"], list(wheelhouse.glob("*.whl")))  # no torch wheel
    with pytest.raises(BuildFailed) as e:
        build_image(ctx, tag="mlrig-test/fake-cuda:broken")
    lines = (ctx / "Dockerfile").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if '"torch==2.6.0+cu126"' in line)
    assert f"Dockerfile line {number}" in e.value.message
    assert "No matching distribution found for torch==2.6.0+cu126" in (e.value.hint or "")


def test_buildkit_backend_with_cache_mounts(
    engine: object, fake_cuda: dict[str, str], wheelhouse: Path, fake_torch_wheel: Path, tmp_path: Path
) -> None:
    if backends.find_buildkit_cli() is None:
        pytest.skip("no docker CLI here builds with BuildKit (needs buildx or a CLI < 23)")
    ctx = fake_cuda_context(
        tmp_path,
        fake_cuda["12.6-devel"],
        [fake_torch_wheel, *wheelhouse.glob("*.whl")],
        flavor="devel",
        gpus=("H100",),
        cache_mounts=True,
    )
    events: list[BuildEvent] = []
    outcome = build_image(ctx, tag="mlrig-test/fake-cuda:devel", on_event=events.append)
    assert outcome.backend == "cli"
    assert {e.text.split("]")[0] for e in events if e.kind == "step"} >= {"[builder", "[runtime"}
    assert outcome.problems == []
    env = outcome.info.env
    assert env["TORCH_CUDA_ARCH_LIST"] == "9.0"
    assert env["CUDA_HOME"] == "/usr/local/cuda"
    assert env["NV_CUDNN_VERSION"] == outcome.info.labels["dev.mlrig.cudnn"] == "9.5.1.17"
    assert outcome.info.labels["dev.mlrig.flavor"] == "devel"


def test_missing_base_image_is_a_clear_error(
    engine: object, fake_cuda: dict[str, str], wheelhouse: Path, fake_torch_wheel: Path, tmp_path: Path
) -> None:
    ctx = fake_cuda_context(tmp_path, fake_cuda["12.6"], [fake_torch_wheel])
    with pytest.raises(UsageError) as e:
        build_image(ctx, tag="mlrig-test/absent:1", build_args={"BASE_IMAGE": "local/absent:1"})
    assert "base image local/absent:1 is not available locally and could not be pulled" in e.value.message
