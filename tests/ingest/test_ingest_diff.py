"""``diff_reports``: what someone changed on a machine, without the readings that move every second."""

from __future__ import annotations

import json

from rich.console import Console

from envcheck.diff import diff_reports, render_diff
from envcheck.models import SCHEMA_VERSION, Finding, Gpu, Report, Severity


def _after(report: Report) -> Report:
    """The same machine after a driver upgrade, a torch reinstall and a GPU swap."""
    b = report.model_copy(deep=True)
    snap = b.snapshot
    assert snap.nvidia is not None and snap.nvidia.gpus is not None and snap.frameworks is not None
    snap.nvidia.driver_version = "550.54.14"
    snap.nvidia.cuda_driver_version = 12040
    snap.frameworks.frameworks[0].version = "2.3.1+cu121"
    snap.frameworks.frameworks[0].build = "cuda"
    snap.frameworks.frameworks[0].cuda_build = "12.1"
    gpu0 = snap.nvidia.gpus[0]
    gpu0.temperature_c = 77  # noise
    gpu0.power_draw_w = 390.0  # noise
    gpu0.memory_used_mib = 70000  # noise
    gpu0.pcie = gpu0.pcie.model_copy(update={"gen_current": 3}) if gpu0.pcie else None
    snap.nvidia.gpus[1] = Gpu(
        index=1,
        name="NVIDIA H100 80GB HBM3",
        uuid="GPU-00000000-1111-2222-3333-444444444444",
        bus_id="00000000:0F:00.0",
        compute_capability="9.0",
    )
    assert snap.memory is not None
    snap.memory.available_bytes = 10  # noise
    snap.system.uptime_s = 99.0 if snap.system else None  # noise
    b.created_at = "2026-11-23T00:00:00+00:00"
    b.findings = [
        b.findings[1],
        Finding(id="driver-too-old", severity=Severity.ERROR, summary="x", subject="torch"),
    ]
    return b


def test_changed_facts_gpus_and_findings(report: Report) -> None:
    d = diff_reports(report, _after(report))
    changes = {c.path: (c.before, c.after) for c in d.changed}
    assert changes == {
        "nvidia.driver_version": ("535.104.05", "550.54.14"),
        "nvidia.cuda_driver_version": (12020, 12040),
        "frameworks.torch.version": ("2.3.1+cpu", "2.3.1+cu121"),
        "frameworks.torch.build": ("cpu", "cuda"),
        "frameworks.torch.cuda_build": (None, "12.1"),
        "nvidia.gpus[GPU-5c3b6f0e-1d2a-4c8b-9e7f-0a1b2c3d4e5f].pcie.gen_current": (4, 3),
    }
    assert [(g.index, g.name) for g in d.gpus_added] == [(1, "NVIDIA H100 80GB HBM3")]
    assert [g.key for g in d.gpus_removed] == ["GPU-9f8e7d6c-5b4a-4321-8fed-cba987654321"]
    assert [f.id for f in d.findings_appeared] == ["driver-too-old"]
    assert [f.id for f in d.findings_resolved] == ["cpu-only-wheel"]
    assert not d.empty


def test_noise_only_on_request(report: Report) -> None:
    paths = {c.path for c in diff_reports(report, _after(report), include_noise=True).changed}
    gpu0 = "nvidia.gpus[GPU-5c3b6f0e-1d2a-4c8b-9e7f-0a1b2c3d4e5f]"
    assert {f"{gpu0}.temperature_c", f"{gpu0}.power_draw_w", f"{gpu0}.memory_used_mib"} <= paths
    assert {"memory.available_bytes", "system.uptime_s"} <= paths


def test_same_report_and_reordered_lists_are_no_change(report: Report) -> None:
    assert diff_reports(report, report).empty
    shuffled = report.model_copy(deep=True)
    assert shuffled.snapshot.nvidia is not None and shuffled.snapshot.nvidia.gpus is not None
    shuffled.snapshot.nvidia.gpus.reverse()
    shuffled.created_at = "later"
    shuffled.timings = []
    assert diff_reports(report, shuffled).empty


def test_gpus_without_uuid_match_by_bus_id(report: Report) -> None:
    a = report.model_copy(deep=True)
    assert a.snapshot.nvidia is not None and a.snapshot.nvidia.gpus is not None
    for g in a.snapshot.nvidia.gpus:
        g.uuid = None
    b = a.model_copy(deep=True)
    assert b.snapshot.nvidia is not None and b.snapshot.nvidia.gpus is not None
    b.snapshot.nvidia.gpus.reverse()
    for i, g in enumerate(b.snapshot.nvidia.gpus):
        g.index = i  # CUDA order changed, the cards did not
    d = diff_reports(a, b)
    assert not d.gpus_added and not d.gpus_removed
    assert {c.path for c in d.changed} == {
        "nvidia.gpus[bus:00000000:07:00.0].index",
        "nvidia.gpus[bus:00000000:0f:00.0].index",
    }


def test_json_and_rich_output(report: Report) -> None:
    d = diff_reports(report, _after(report))
    data = json.loads(json.dumps(d.model_dump(mode="json")))
    assert data["schema_version"] == SCHEMA_VERSION
    assert {"path": "nvidia.driver_version", "before": "535.104.05", "after": "550.54.14"} in data["changed"]
    console = Console(record=True, width=200, color_system=None)
    render_diff(d, console)
    text = console.export_text()
    assert "nvidia.driver_version" in text and "535.104.05" in text and "550.54.14" in text
    assert "new problem driver-too-old" in text and "resolved cpu-only-wheel" in text
    assert "NVIDIA H100 80GB HBM3" in text

    console = Console(record=True, width=120, color_system=None)
    render_diff(diff_reports(report, report), console)
    assert "No differences." in console.export_text()
