"""The diagnose corpus (tests/fixtures/ingest/corpus.toml): real pastes from public threads, judged
as ``envcheck diagnose`` judges them, scored against the cause each thread established.

Run ``pytest tests/ingest/test_ingest_corpus.py -q`` to see the accuracy line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from envcheck.errors import UsageError
from envcheck.ingest import load
from envcheck.models import Report, Severity
from envcheck.report import rejudge

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
CASES = tomllib.loads((ROOT / "corpus.toml").read_text(encoding="utf-8"))["case"]

#: every input kind issue 11 names, as the recognisers report them
REQUIRED_KINDS = {
    "collect_env", "vllm-collect-env", "transformers-env", "accelerate-env", "diffusers-env",
    "huggingface-cli-env", "tf-env-collect", "tf-build-info", "tf-issue-template", "tf-log", "jax-env",
    "nvidia-smi", "nvidia-smi-q", "nvidia-smi-L", "nvcc", "pip-list", "pip-freeze", "conda-list", "lscpu",
    "os-release", "uname", "lsmod", "docker-info", "torch-config", "mmcv-env", "detectron2-env",
    "lightning-env", "python-repl", "app-banner", "versions", "bitsandbytes", "ollama-log", "dmesg",
    "nvidia-container-cli-info",
}  # fmt: skip
#: every error line issue 11 names, as message families
REQUIRED_LINES = {
    "torch-driver-too-old", "torch-no-driver", "torch-arch-incompatible", "torch-gpu-too-old",
    "no-kernel-image", "cuda-insufficient-driver", "cuda-no-device", "cuda-system-not-ready",
    "cuda-compat-unsupported", "cuda-unknown-error", "nvml-mismatch", "smi-no-driver", "smi-no-nvml",
    "container-cli-no-nvml", "docker-no-gpu-runtime", "tf-dlopen", "tf-skip-gpu", "cudnn-runtime-mismatch",
    "jax-found-older", "jax-outdated", "jax-lib-missing", "jax-plugin-mismatch", "jax-backend-failed",
    "torch-not-compiled-cuda", "nvml-unknown", "jax-cpu-jaxlib", "torch-gpu-needs-newer-cuda",
    "container-cuda-requirement", "container-wsl-no-adapters", "torch-no-gpu", "cuda-ext-mismatch",
    "gpu-fell-off-bus", "cudnn-no-libcuda", "tf-no-cudart", "hip-no-device", "hip-no-binary",
    "conda-cpu-build", "ptx-unsupported-toolchain", "cuda-driver-mismatch",
}  # fmt: skip


@dataclass
class Outcome:
    file: str
    right: bool
    why: str
    errors: set[str]
    ids: set[str]


def judge(case: dict[str, object]) -> tuple[Report | None, Outcome]:
    name = str(case["file"])
    try:
        report = rejudge(load((ROOT / name).read_bytes(), name))
    except UsageError as exc:  # a paste envcheck cannot read gets no verdict: wrong unless it is noise
        return None, Outcome(name, False, f"refused: {exc}", set(), set())
    ids = {f.id for f in report.findings}
    errors = {f.id for f in report.findings if f.severity is Severity.ERROR}
    expect, forbid = set(case["expect"]), set(case.get("forbid", []))  # type: ignore[arg-type]
    allow = set(case.get("allow", []))  # type: ignore[arg-type]
    #: any one of these is the thread's verdict (a paste whose facts fit several ids equally)
    anyof = set(case.get("expect_any", []))  # type: ignore[arg-type]
    allow |= anyof
    why = []
    if missing := expect - ids:
        why.append(f"missing {sorted(missing)}")
    if anyof and not anyof & ids:
        why.append(f"none of {sorted(anyof)}")
    if bad := forbid & ids:
        why.append(f"forbidden {sorted(bad)}")
    if case["healthy"] and errors:
        why.append(f"healthy but errors {sorted(errors)}")
    elif extra := errors - expect - allow:
        why.append(f"unexpected errors {sorted(extra)}")
    return report, Outcome(name, not why, "; ".join(why), errors, ids)


def test_the_manifest_covers_every_paste_and_is_big_enough() -> None:
    files = {p.name for p in ROOT.glob("*.txt")}
    listed = [str(c["file"]) for c in CASES]
    assert len(listed) == len(set(listed)), "a paste is listed twice"
    assert set(listed) == files
    public = [c for c in CASES if str(c["url"]).startswith("https://")]
    assert len(public) >= 80
    healthy = [c for c in public if c["healthy"]]
    assert 3 * len(healthy) >= len(public), "at least a third of the real pastes are healthy machines"
    for c in CASES:
        assert str(c["cause"]).strip() and isinstance(c["expect"], list)


def test_every_input_kind_and_error_line_has_a_real_case() -> None:
    covered = {k for c in CASES if str(c["url"]).startswith("https://") for k in c["covers"]}  # type: ignore[union-attr]
    assert REQUIRED_KINDS - covered == set()
    assert REQUIRED_LINES - covered == set()


@pytest.mark.parametrize("case", CASES, ids=[str(c["file"])[:48] for c in CASES])
def test_each_paste_is_recognised_as_what_it_holds(case: dict[str, object]) -> None:
    name = str(case["file"])
    if not case["covers"]:
        return  # nothing this paste must be read as (the corpus test scores whether it is read at all)
    report = load((ROOT / name).read_bytes(), name)
    paste = report.snapshot.paste
    assert paste is not None
    seen = set(paste.kinds) | {ln.kind for ln in paste.lines}
    assert set(case["covers"]) - seen == set()  # type: ignore[arg-type]


def test_corpus_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    """>= 95% of the cases get their thread's verdict, and no healthy machine gets an error."""
    outcomes = [judge(c)[1] for c in CASES]
    right = sum(o.right for o in outcomes)
    healthy_errors = [o for o, c in zip(outcomes, CASES, strict=True) if c["healthy"] and o.errors]
    with capsys.disabled():
        healthy = sum(bool(c["healthy"]) for c in CASES)
        print(
            f"\ndiagnose corpus: {right}/{len(outcomes)} right ({100 * right / len(outcomes):.1f}%), "
            f"{healthy} healthy, {len(healthy_errors)} healthy with an error"
        )
        for o in outcomes:
            if not o.right:
                print(f"  wrong: {o.file}: {o.why}")
    assert healthy_errors == []
    assert right >= 0.95 * len(outcomes)


def test_every_finding_on_a_paste_quotes_or_names_its_evidence() -> None:
    """A verdict from error lines shows the lines; one built on partial facts says what it assumed."""
    for case in CASES:
        report, _ = judge(case)
        for f in report.findings if report else []:
            assert f.summary and f.fix, (case["file"], f.id)
            if "assumed" in f.facts:
                assert isinstance(f.facts["assumed"], list) and f.facts["assumed"]
