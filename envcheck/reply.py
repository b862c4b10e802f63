"""A reply a maintainer (or a bot) can post under a bug report: ``envcheck diagnose - --markdown``.

It answers the questions a maintainer asks of a paste: is the environment the problem, on which
facts does that rest (the lines quoted back, the versions read), what fixes it, and what the
paste lacks to be sure, with the command that prints it. Verdicts come from the rules; this module
only lays them out.
"""

from __future__ import annotations

from typing import Any

from envcheck.knowledge._version import cuda_text
from envcheck.markdown import cell
from envcheck.models import Finding, Report, Severity, Snapshot
from envcheck.rules import _facts as F

__all__ = ["missing_facts", "to_reply"]

_MARK = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}
#: facts a finding lists that a maintainer reads as "what this rests on"
_SHOWN = (
    "gpu",
    "compute_capability",
    "driver_version",
    "driver_cuda",
    "image_needs_cuda",
    "kernel_module_version",
    "kernel",
    "nvcc_version",
    "framework",
    "version",
    "framework_cuda",
    "cudnn_built",
    "cudnn_loaded",
    "arch_list",
    "missing",
    "docker_runtimes",
    "CUDA_VISIBLE_DEVICES",
    "last_cuda",
    "last_driver_branch",
    "newest_torch",
)
_HOW = {
    "framework": "`python -m torch.utils.collect_env` (or `transformers env`, "
    '`python -c "import tensorflow as tf; print(tf.sysconfig.get_build_info())"`)',
    "driver": "`nvidia-smi`",
    "gpu": "`nvidia-smi -L`",
    # nvidia-smi answers nothing while NVML fails (no module, a mismatch): the PCI bus still names the GPU
    "gpu-pci": "`lspci -nn | grep -i nvidia`",
    # a Jetson's GPU and driver come with its L4T release, which also decides the framework build
    "l4t": "`cat /etc/nv_tegra_release`",
    "cut": "paste the whole output",
    "docker": "the whole output of the `docker run --gpus all <image> ...` that failed",
}


#: lines that say no driver answers: nvidia-smi cannot name the GPU then, the PCI bus can
_NO_DRIVER_LINES = (
    "torch-no-driver", "smi-no-driver", "smi-no-nvml", "nvml-mismatch", "container-cli-no-nvml",
)  # fmt: skip


def missing_facts(s: Snapshot) -> list[tuple[str, str]]:
    """(what is missing, how to get it) for the facts a verdict on this paste would need."""
    out: list[tuple[str, str]] = []
    fws = [f for f in (s.frameworks.frameworks if s.frameworks else []) if f.installed]
    nvidia = s.nvidia
    # a Mac, or an AMD/Intel build of the framework: no NVIDIA driver, CUDA GPU or CUDA build to ask about
    accelerated = [f for f in fws if f.name in ("torch", "tensorflow", "jax") and f.build]
    not_nvidia = bool(s.system and s.system.os == "Darwin") or (
        bool(accelerated) and all(f.build in ("rocm", "xpu") for f in accelerated)
    )
    bundled = bool(s.paste and "ollama-log" in s.paste.kinds)  # an app that brings its own CUDA runtime
    # a paste about starting a container: the image's CUDA and Docker's answer matter, not a framework
    container = bool(
        s.paste and ("nvidia-container-cli-info" in s.paste.kinds or "docker-info" in s.paste.kinds)
    )
    if container and not (s.paste and s.paste.lines):
        out.append(("the image and the error Docker printed", _HOW["docker"]))
    elif not fws and not bundled:
        out.append(("which framework and version, and the CUDA it was built with", _HOW["framework"]))
    elif not not_nvidia and any(
        f.build is None and not f.cuda_build for f in fws if f.name in ("torch", "tensorflow", "jax")
    ):
        out.append(("whether the framework is a CUDA or a CPU build", _HOW["framework"]))
    no_driver = nvidia is None or (nvidia.driver_version is None and nvidia.cuda_driver_version is None)
    if F.is_jetson(s):
        out.append(("the L4T (JetPack) release", _HOW["l4t"]))
        not_nvidia = True  # nvidia-smi says little or nothing on a Jetson
    if not not_nvidia and no_driver:
        out.append(("the NVIDIA driver version", _HOW["driver"]))
    if not not_nvidia and (nvidia is None or not nvidia.gpus):
        nvml_fails = bool(nvidia and nvidia.nvml and not nvidia.nvml.ok) or bool(
            s.paste and any(ln.kind in _NO_DRIVER_LINES for ln in s.paste.lines)
        )
        out.append(("the GPU model", _HOW["gpu-pci" if nvml_fails else "gpu"]))
    if s.paste and s.paste.truncated:
        out.append(("the end of the output (the paste stops part-way)", _HOW["cut"]))
    return out


#: which missing fact an assumption stands in for, by the words it uses
_TOPICS = {
    _HOW["framework"]: ("torch", "tensorflow", "jax", "framework", "build", "wheel"),
    _HOW["driver"]: ("driver",),
    _HOW["gpu"]: ("gpu", "nvswitch"),
    _HOW["gpu-pci"]: ("gpu", "nvswitch"),
    _HOW["l4t"]: ("gpu", "driver", "jetson"),
    _HOW["cut"]: (),
    _HOW["docker"]: ("container", "image", "docker"),
}


#: facts a verdict's fix depends on even when the verdict itself stands: a driver upgrade is only possible
#: on a GPU whose generation newer drivers still support
_FIX_NEEDS = {"driver-too-old": ("gpu",), "no-driver": ("gpu",), "cpu-only-wheel": ("gpu", "driver")}


def _asked_by(lacking: list[tuple[str, str]], assumed: list[str]) -> list[tuple[str, str]]:
    """The missing facts the findings' assumptions name (a cut paste always counts)."""
    text = " ".join(str(a) for a in assumed).lower()
    return [
        (what, how)
        for what, how in lacking
        if how == _HOW["cut"] or any(word in text for word in _TOPICS.get(how, ()))
    ]


def _value(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) if v else "none"
    return str(v)


def _finding(f: Finding) -> list[str]:
    named = f.subject and (f.subject in f.summary or f.subject.split(" (")[-1].rstrip(")") in f.summary)
    subject = f" ({cell(f.subject)})" if f.subject and not named else ""
    out = [f"#### {_MARK[f.severity]} {cell(f.summary)}{subject}", ""]
    lines = [x for x in f.facts.get("error_lines") or [] if isinstance(x, str)]
    if lines:
        out += ["From the report:", "", "```text", *(x[:300] for x in lines), "```", ""]
    shown = [(k, f.facts[k]) for k in _SHOWN if f.facts.get(k) not in (None, [], "", {})]
    if shown:
        out += ["Based on: " + " · ".join(f"{k.replace('_', ' ')} {cell(_value(v))}" for k, v in shown), ""]
    assumed = f.facts.get("assumed")
    if assumed:
        out += ["Assumed: " + "; ".join(cell(a) for a in assumed), ""]
    if f.fix:
        out += [f"**Fix:** {cell(f.fix)}", ""]
    if f.commands:
        out += ["```bash", *f.commands, "```", ""]
    out += [f"<sub>`{f.id}`</sub>", ""]
    return out


def _read(s: Snapshot) -> list[str]:
    """What envcheck read, so the reader can check it read the right thing."""
    rows: list[tuple[str, str]] = []
    if s.paste:
        kinds = [k for k in s.paste.kinds if k not in ("log", "shell")]
        if kinds:
            rows.append(("Dumps", ", ".join(kinds)))
        if s.paste.lines:
            rows.append(("Error lines", ", ".join(sorted({ln.kind for ln in s.paste.lines}))))
    for fw in s.frameworks.frameworks if s.frameworks else []:
        if fw.installed:
            build = fw.build or "build unknown"
            if fw.cuda_build:
                build = f"{build} {fw.cuda_build}"
            rows.append((fw.name, f"{fw.version or 'version unknown'} ({build})"))
    if s.nvidia:
        if s.nvidia.driver_version or s.nvidia.cuda_driver_version:
            ceiling = cuda_text(s.nvidia.cuda_driver_version)
            rows.append(
                ("Driver", f"{s.nvidia.driver_version or '?'}" + (f" (CUDA {ceiling})" if ceiling else ""))
            )
        for g in s.nvidia.gpus or []:
            cc = f" (compute capability {g.compute_capability})" if g.compute_capability else ""
            rows.append((f"GPU {g.index}", f"{g.name or '?'}{cc}"))
    if s.system and (s.system.distro or s.system.os):
        rows.append(("OS", s.system.distro or s.system.os or ""))
    if s.paste and s.paste.conflicts:
        rows.append(("Disagreeing facts", "; ".join(s.paste.conflicts[:4])))
    if not rows:
        return []
    body = ["| | |", "|---|---|", *(f"| {cell(k)} | {cell(v)} |" for k, v in rows)]
    return ["<details><summary>What envcheck read in this report</summary>", "", *body, "", "</details>", ""]


def to_reply(report: Report) -> str:
    """The reply as GitHub Markdown."""
    s = report.snapshot
    findings = sorted(report.findings, key=lambda f: f.severity.rank)
    problems = [f for f in findings if f.severity is not Severity.INFO]
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        plural = "s" if len(errors) != 1 else ""
        head = f"**envcheck found {len(errors)} environment problem{plural} in this report.**"
    elif problems:
        head = "**envcheck found no environment error in this report, but a few things to check.**"
    elif s.paste and any(ln.kind.startswith("hip-") for ln in s.paste.lines):
        head = (
            "**envcheck found no NVIDIA or CUDA problem in this report: its errors come from a ROCm (AMD) "
            "build, which envcheck's rules do not judge** (`rocminfo` and AMD's list of supported GPUs do)."
        )
    else:
        head = "**envcheck found no known environment problem in this report.**"
    out = [head, ""]
    for f in problems:
        out += _finding(f)
    lacking = missing_facts(s)
    if errors:  # a verdict was reached: ask only for what its assumptions and its fix hang on
        wanted = [a for f in errors for a in f.facts.get("assumed") or []]
        wanted += [topic for f in errors for topic in _FIX_NEEDS.get(f.id, ())]
        lacking = _asked_by(lacking, wanted)
    if lacking:
        out += ["**To be sure, the report lacks:**", ""]
        out += [f"- {what}: {how}" for what, how in lacking]
        out += [""]
    out += _read(s)
    info = [f for f in findings if f.severity is Severity.INFO]
    if info:
        out += [f"<sub>Also noted: {', '.join(cell(f.summary) for f in info)}</sub>", ""]
    out += [
        f"<sub>Checked by envcheck {cell(report.tool_version)} (`envcheck diagnose`) against its rules of "
        "drivers, CUDA builds and GPU generations.</sub>",
        "",
    ]
    return "\n".join(out)
