"""Prove an image: run ``envcheck`` and ``envcheck smoke`` inside it, and compare its stack with its labels.

``check_stack`` is pure (image config in, problems out); ``run_selftest`` drives the engine through
``_docker``. A missing ``envcheck smoke`` (older envcheck inside) is reported, not fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envcheck.knowledge._version import cuda_mm, cudnn_tuple
from provision.images._docker import ImageInfo


@dataclass(frozen=True)
class CheckResult:
    name: str
    #: True passed, False failed, None could not tell (not available, unparsable)
    ok: bool | None
    summary: str
    exit_code: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def check_stack(info: ImageInfo) -> list[str]:
    """Where the image's base contradicts the versions its labels promise (NVIDIA env conventions)."""
    problems: list[str] = []
    labels, env = info.labels, info.env
    want_cuda = labels.get("dev.mlrig.cuda")
    have_cuda = env.get("CUDA_VERSION")
    if want_cuda and have_cuda and cuda_mm(want_cuda) != cuda_mm(have_cuda):
        problems.append(
            f"the base carries CUDA {have_cuda} (CUDA_VERSION) but the image is planned for CUDA {want_cuda}"
        )
    if labels.get("dev.mlrig.device") == "cuda" and not env.get("NVIDIA_REQUIRE_CUDA"):
        problems.append("NVIDIA_REQUIRE_CUDA is not set: the container runtime cannot refuse too-old drivers")
    want_cudnn = cudnn_tuple(labels.get("dev.mlrig.cudnn"))
    have_cudnn = cudnn_tuple(env.get("NV_CUDNN_VERSION"))
    if want_cudnn and have_cudnn and want_cudnn[0] != have_cudnn[0]:
        problems.append(
            f"the base carries cuDNN {env.get('NV_CUDNN_VERSION')} (NV_CUDNN_VERSION) "
            "but the framework was built "
            f"with cuDNN {labels.get('dev.mlrig.cudnn')}"
        )
    if info.user.split(":")[0] in {"", "0", "root"}:
        problems.append("the image runs as root")
    return problems


def host_has_nvidia() -> bool:
    """Pass ``--gpus all`` only where an NVIDIA driver is loaded (the device node exists)."""
    return Path("/dev/nvidiactl").exists()


def parse_report(stdout: str, code: int | None) -> CheckResult:
    """`envcheck --json` output -> result; exit 0/1 are verdicts, anything else did not run."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return CheckResult("envcheck", None, f"no JSON report (exit {code})", code)
    findings = data.get("findings") or []
    errors = [f for f in findings if f.get("severity") == "error"]
    warnings = [f for f in findings if f.get("severity") == "warning"]
    fws = ((data.get("snapshot") or {}).get("frameworks") or {}).get("frameworks") or []
    installed = {f["name"]: f.get("version") for f in fws if f.get("installed")}
    stack = ", ".join(f"{k} {v}" for k, v in installed.items()) or "no framework found"
    summary = f"{len(errors)} errors, {len(warnings)} warnings; {stack}"
    if errors:
        summary += "; " + "; ".join(str(e.get("summary")) for e in errors[:3])
    return CheckResult("envcheck", not errors, summary, code, {"frameworks": installed, "findings": findings})


def parse_smoke(stdout: str, stderr: str, code: int | None) -> CheckResult:
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        if "No such command" in stderr or "no such command" in stderr.lower():
            return CheckResult(
                "envcheck smoke", None, "`envcheck smoke` is not available in this image's envcheck", code
            )
        last = (stderr.strip().splitlines() or [f"exit {code}"])[-1]
        return CheckResult("envcheck smoke", False if code else None, f"no JSON results: {last[:200]}", code)
    results = data.get("results") or []
    counts = {s: sum(1 for r in results if r.get("status") == s) for s in ("pass", "fail", "skip")}
    failed = [
        f"{r.get('framework')}/{r.get('device')}/{r.get('test')}: {r.get('error') or r.get('detail')}"
        for r in results
        if r.get("status") == "fail"
    ]
    summary = f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    if failed:
        summary += "; " + "; ".join(failed[:3])
    ok = counts["fail"] == 0 and counts["pass"] > 0 and not code
    return CheckResult("envcheck smoke", ok, summary, code, {"results": results})


def requirement_matches(requirement: str | None, installed: str | None) -> bool | None:
    """Does the version envcheck found satisfy the pin the image was built with?"""
    if not requirement or not installed:
        return None
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion

    try:
        return Requirement(requirement).specifier.contains(installed, prereleases=True)
    except (InvalidRequirement, InvalidVersion):
        return None


def run_selftest(
    image: str, *, gpus: bool | None = None, timeout: float = 600.0
) -> tuple[ImageInfo, list[CheckResult]]:
    """Inspect ``image`` and run envcheck and envcheck smoke inside it (each in a fresh container)."""
    from provision.images import _docker

    c = _docker.client()
    info = _docker.inspect(c, image)
    use_gpus = host_has_nvidia() if gpus is None else gpus
    results: list[CheckResult] = []
    problems = check_stack(info)
    results.append(
        CheckResult(
            "labels vs base", not problems, "; ".join(problems) or "consistent", None, {"problems": problems}
        )
    )
    report = _docker.run(c, image, ["envcheck", "--json"], gpus=use_gpus, timeout=timeout)
    rep = (
        parse_report(report.stdout, report.exit_code)
        if not report.timed_out
        else CheckResult("envcheck", False, f"timed out after {timeout:.0f} s")
    )
    results.append(rep)
    fw = info.labels.get("dev.mlrig.framework")
    if fw and rep.data.get("frameworks") is not None:
        got = rep.data["frameworks"].get(fw)
        match = requirement_matches(info.labels.get("dev.mlrig.requirement"), got)
        results.append(
            CheckResult(
                "pinned version",
                match,
                f"{fw} {got or 'missing'} vs {info.labels.get('dev.mlrig.requirement')}",
            )
        )
    smoke = _docker.run(c, image, ["envcheck", "smoke", "--json"], gpus=use_gpus, timeout=timeout)
    if smoke.timed_out:
        results.append(CheckResult("envcheck smoke", False, f"timed out after {timeout:.0f} s"))
    else:
        results.append(parse_smoke(smoke.stdout, smoke.stderr, smoke.exit_code))
    return info, results
