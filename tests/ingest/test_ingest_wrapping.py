"""Wrapping must not matter: the same real paste reads to the same facts however it arrives
(encodings, fences, quotes, indentation, <details>, prompts, log prefixes, cut lines, an issue body),
and each miss issue 11 reported is fixed on its real paste."""

from __future__ import annotations

import codecs
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from envcheck.ingest import load
from envcheck.models import Severity, Snapshot
from envcheck.report import rejudge

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
CE = "pytorch-28321_debian9_t4_torch13_old_format.txt"  # driver 410 + torch 1.3 (CUDA 10.1)
SMI = "dcgm-232_nvidia_smi_535_a10g_prompt_healthy.txt"


def raw(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def facts(s: Snapshot) -> dict[str, object]:
    """The machine facts, without the reader's account of the paste itself."""
    data = s.model_dump(mode="json", exclude_none=True)
    data.pop("paste", None)
    return data


def errors(text: str | bytes) -> set[str]:
    report = rejudge(load(text, "paste"))
    return {f.id for f in report.findings if f.severity is Severity.ERROR}


WRAPS: dict[str, Callable[[str], str | bytes]] = {
    "utf16-le-bom (PowerShell >)": lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"),
    "utf16-be-bom": lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
    "utf16-le-no-bom": lambda t: t.encode("utf-16-le"),
    "utf8-bom": lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "lone-cr": lambda t: t.replace("\n", "\r"),
    "quoted": lambda t: "\n".join("> " + ln for ln in t.split("\n")),
    "quoted-twice": lambda t: "\n".join(">> " + ln for ln in t.split("\n")),
    "indented": lambda t: textwrap.indent(t, "    "),
    "tab-indented": lambda t: textwrap.indent(t, "\t"),
    "details": lambda t: f"<details>\n<summary>Environment</summary>\n\n```text\n{t}\n```\n</details>\n",
    "pre-entities": lambda t: (
        "<pre>" + t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</pre>"
    ),
    "prompt": lambda t: "user@host:~/proj$ python -m torch.utils.collect_env\n" + t,
    "ansi": lambda t: "\n".join(f"\x1b[32m{ln}\x1b[0m" for ln in t.split("\n")),
    "docker-logs": lambda t: "\n".join(f"2024-03-14T06:35:42.275070377Z {ln}" for ln in t.split("\n")),
    "compose": lambda t: "\n".join(f"trainer-1  | {ln}" for ln in t.split("\n")),
    "issue-body": lambda t: (
        "### 🐛 Describe the bug\n\nCUDA is not available.\n\n### Versions\n\n```\n"
        + t
        + "\n```\n\ncc @someone\n"
    ),
    "nbsp-and-fullwidth": lambda t: t.replace(": ", ":\u00a0").replace("GPU 0:", "GPU 0："),
}


@pytest.mark.parametrize("name", [CE, SMI, "vllm-19542_gtx1080ti_vllm_needs_cc70_new_format_cut.txt"])
@pytest.mark.parametrize("wrap", list(WRAPS), ids=list(WRAPS))
def test_wrapping_does_not_change_the_facts(name: str, wrap: str) -> None:
    text = raw(name)
    assert facts(load(WRAPS[wrap](text), "wrapped").snapshot) == facts(load(text, "plain").snapshot)


def test_two_machines_in_one_paste_keep_the_first_and_say_they_disagree() -> None:
    a, b = raw(CE), raw("vllm-12378_rhel84_a100_cu121_prompt_healthy.txt")
    s = load(a + "\n\nand on the other box:\n\n" + b, "two").snapshot
    assert s.nvidia is not None and s.nvidia.driver_version == "410.104"
    assert s.paste is not None and any("driver_version" in c for c in s.paste.conflicts)


def test_lines_cut_by_the_terminal_keep_what_fits() -> None:
    cut = "\n".join(seg for ln in raw(CE).split("\n") for seg in textwrap.wrap(ln, 60) or [""])
    s = load(cut, "cut").snapshot
    torch = s.framework("torch")
    assert torch is not None and (torch.version, torch.cuda_build) == ("1.3.0", "10.1")
    assert s.nvidia is not None and s.nvidia.driver_version == "410.104"
    assert "driver-too-old" in errors(cut)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.75])
def test_a_paste_cut_short_gives_what_it_holds(keep: float) -> None:
    text = raw("vllm-15592_prompt_8x_a100_cu124_driver525_minor_compat.txt")
    part = text[: int(len(text) * keep)]
    s = load(part, "cut").snapshot
    assert s.paste is not None and s.paste.truncated


# --------------------------------------------------------------------------- the misses issue 11 listed


def test_torch_s_own_driver_warning_is_a_fact() -> None:
    # lllyasviel/Fooocus#1313: "found version 11040" is the driver's CUDA 11.4
    s = load(raw("fooocus-1313_driver_too_old_11040_smi_header.txt"), "p").snapshot
    assert s.nvidia is not None and s.nvidia.cuda_driver_version == 11040
    assert "driver-too-old" in errors(raw("fooocus-1313_driver_too_old_11040_smi_header.txt"))


def test_found_no_driver_is_a_finding_but_no_error_without_a_gpu() -> None:
    # HIT-SCIR/ltp#468: a machine without a GPU; the warning is harmless there
    report = rejudge(load(raw("ltp-468_found_no_driver_cpu_machine.txt"), "p"))
    [f] = [f for f in report.findings if f.id == "no-driver"]
    assert f.severity is Severity.WARNING and f.facts["assumed"]


def test_the_sm120_warning_alone_cut_after_three_lines_still_decides() -> None:
    # pytorch/pytorch#150733: only the warning survives the cut
    lines = raw("pytorch-150733_rtx5090d_cu126_warning.txt").split("\n")
    head = "\n".join(lines[3:6])  # the three warning lines
    assert "is not compatible" in head
    assert "arch-unsupported" in errors(head)


def test_an_indented_collect_env_is_read() -> None:
    text = textwrap.indent(raw("pytorch-150733_rtx5090d_cu126_warning.txt"), "    ")
    assert "arch-unsupported" in errors(text)


def test_vllm_collect_env_is_read() -> None:
    s = load(raw("vllm-19542_gtx1080ti_vllm_needs_cc70_new_format_cut.txt"), "p").snapshot
    torch = s.framework("torch")
    assert torch is not None and (torch.version, torch.cuda_build) == ("2.7.0+cu126", "12.6")
    assert s.paste is not None and s.paste.kinds == ["vllm-collect-env"]
    topo = load(raw("vllm-19607_vllm_section_topology_fragment.txt"), "p").snapshot
    assert topo.nvidia is not None and topo.nvidia.topology == [["X", "NV12"], ["NV12", "X"]]


def test_odd_spacing_still_yields_the_framework_and_the_old_driver_verdict() -> None:
    # pytorch/pytorch#37320: "PyTorch version 1.5.0" without a colon, full-width colons,
    # driver 410 + CUDA 10.2
    text = raw("pytorch-37320_no_colon_fullwidth_driver410_cu102.txt")
    torch = load(text, "p").snapshot.framework("torch")
    assert torch is not None and (torch.version, torch.cuda_build) == ("1.5.0", "10.2")
    assert "driver-too-old" in errors(text)
    spaced = (
        raw(CE)
        .replace("PyTorch version: ", "PyTorch version :\t")
        .replace("Is CUDA available: ", "Is CUDA available  :  ")
    )
    assert "driver-too-old" in errors(spaced)


def test_geforce_210_is_too_old_not_told_to_get_driver_410() -> None:
    # pytorch/pytorch#31876: GeForce 210 (CC 1.2), driver 342.01, torch 1.2.0 for CUDA 10.0
    report = rejudge(load(raw("pytorch-31876_geforce210_cc12_driver342_torch12.txt"), "p"))
    ids = {f.id for f in report.findings}
    assert "gpu-too-old" in ids and "driver-too-old" not in ids
    text = " ".join(f"{f.summary} {f.fix} {' '.join(f.commands)}" for f in report.findings)
    assert "410" not in text and "R340" in text
