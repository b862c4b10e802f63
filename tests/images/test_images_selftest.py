"""Self-test verdicts: envcheck/smoke output parsing and the labels-vs-base stack check (pure)."""

from __future__ import annotations

import json
from pathlib import Path

from provision.images._docker import ImageInfo
from provision.images.selftest import check_stack, parse_report, parse_smoke, requirement_matches

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"

LABELS = {
    "dev.mlrig.framework": "torch",
    "dev.mlrig.device": "cuda",
    "dev.mlrig.cuda": "12.6",
    "dev.mlrig.cudnn": "9.5.1.17",
    "dev.mlrig.requirement": "torch==2.6.0+cu126",
}
NV_ENV = {"CUDA_VERSION": "12.6.3", "NVIDIA_REQUIRE_CUDA": "cuda>=12.6", "NV_CUDNN_VERSION": "9.5.1.17"}


def info(env: dict[str, str], labels: dict[str, str] = LABELS, user: str = "1000:1000") -> ImageInfo:
    return ImageInfo("sha256:x", ["t:1"], 1, [], dict(labels), dict(env), user)


def test_matching_base_is_consistent() -> None:
    assert check_stack(info(NV_ENV)) == []


def test_wrong_cuda_cudnn_root_and_missing_require_are_reported() -> None:
    problems = check_stack(info({"CUDA_VERSION": "12.4.1", "NV_CUDNN_VERSION": "8.9.7.29"}, user=""))
    text = " | ".join(problems)
    assert "CUDA 12.4.1" in text and "planned for CUDA 12.6" in text
    assert "cuDNN 8.9.7.29" in text
    assert "NVIDIA_REQUIRE_CUDA is not set" in text
    assert "runs as root" in text
    assert len(problems) == 4


def test_cpu_image_needs_no_nvidia_env() -> None:
    labels = {"dev.mlrig.framework": "torch", "dev.mlrig.device": "cpu"}
    assert check_stack(info({}, labels)) == []


def test_envcheck_report_parsing() -> None:
    data = json.loads((FIXTURES / "report_a10_driver535.json").read_text())
    data["findings"] = [
        {"id": "x", "severity": "error", "summary": "driver too old"},
        {"id": "y", "severity": "warning", "summary": "w"},
    ]
    r = parse_report(json.dumps(data), 1)
    assert r.ok is False
    assert r.summary.startswith("1 errors, 1 warnings; torch 2.6.0+cu124")
    assert "driver too old" in r.summary
    assert r.data["frameworks"] == {"torch": "2.6.0+cu124"}
    assert parse_report("Traceback ...", 3).ok is None


def test_smoke_parsing() -> None:
    ok = {"results": [{"framework": "torch", "device": "cpu", "test": "arithmetic", "status": "pass"}]}
    assert parse_smoke(json.dumps(ok), "", 0).ok is True
    bad = {
        "results": [
            {"framework": "torch", "device": "cpu", "test": "import", "status": "pass"},
            {
                "framework": "torch",
                "device": "gpu:0",
                "test": "matmul",
                "status": "fail",
                "error": "CUDA error",
            },
        ]
    }
    r = parse_smoke(json.dumps(bad), "", 1)
    assert r.ok is False and "torch/gpu:0/matmul: CUDA error" in r.summary
    missing = parse_smoke("", "Error: No such command 'smoke'.", 2)
    assert missing.ok is None and "not available" in missing.summary
    assert parse_smoke(json.dumps({"results": []}), "", 0).ok is False


def test_requirement_matching() -> None:
    assert requirement_matches("torch==2.13.0+cpu", "2.13.0+cpu") is True
    assert requirement_matches("torch==2.6.*", "2.6.0+cu124") is True
    assert requirement_matches("torch==2.6.0+cu126", "2.6.0+cu124") is False
    assert requirement_matches("jax[cuda12]==0.10.2", "0.10.2") is True
    assert requirement_matches(None, "1") is None
