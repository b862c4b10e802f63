"""The human report: problems first with their commands, facts layer by layer, nothing invented."""

from __future__ import annotations

from rich.console import Console

from envcheck.models import (
    CudaInfo,
    CudaLibrary,
    Ecc,
    Finding,
    Framework,
    FrameworksInfo,
    Gpu,
    KernelModule,
    NvidiaInfo,
    NvmlStatus,
    Pcie,
    Report,
    Severity,
    Snapshot,
)
from envcheck.render import render_report
from envcheck.report import judge
from envcheck.view import fmt_bytes, fmt_cuda


def _report(findings: list[Finding] | None = None, **sections: object) -> Report:
    return Report(
        tool_version="9.9",
        created_at="2026-11-22T00:00:00+00:00",
        snapshot=Snapshot.model_validate({"source": "envcheck-json", **sections}),
        findings=findings or [],
    )


def _text(report: Report, verbose: bool = False) -> str:
    console = Console(width=160, record=True, force_terminal=False, color_system=None)
    render_report(report, console, verbose=verbose)
    return console.export_text()


def _two_gpus() -> NvidiaInfo:
    idle = Gpu(
        index=0,
        name="NVIDIA A100-SXM4-80GB",
        uuid="GPU-aaaa",
        compute_capability="8.0",
        memory_total_mib=81920,
        memory_used_mib=0,
        pcie=Pcie(gen_current=1, gen_max=4, width_current=16, width_max=16),
        throttle_reasons=["gpu_idle"],
        ecc=Ecc(mode_current=True, volatile_uncorrected=0, aggregate_uncorrected=0),
        mig_mode_current=False,
    )
    hot = idle.model_copy(
        update={
            "index": 1,
            "uuid": "GPU-bbbb",
            "throttle_reasons": ["sw_thermal_slowdown"],
            "ecc": Ecc(mode_current=True, aggregate_uncorrected=3),
            "unavailable": {"fan_pct": "NotSupported"},
        }
    )
    return NvidiaInfo(
        pci_devices=[],
        kernel_module=KernelModule(loaded=True, version="535.104.05", nouveau_loaded=False),
        device_nodes=["/dev/nvidia0", "/dev/nvidiactl"],
        nvml=NvmlStatus(ok=True),
        driver_version="535.104.05",
        cuda_driver_version=12020,
        gpus=[idle, hot],
    )


def test_findings_come_first_with_their_commands() -> None:
    finding = Finding(
        id="driver-too-old",
        severity=Severity.ERROR,
        summary="driver 470.57 is older than CUDA 12.4 needs",
        fix="Install a newer driver",
        commands=["pip install torch==2.6.0 --index-url https://download.pytorch.org/whl/cu118"],
    )
    text = _text(_report([finding], nvidia=_two_gpus()))
    assert text.index("driver 470.57 is older") < text.index("NVIDIA")
    assert "$ pip install torch==2.6.0" in text
    assert "1 error" in text


def test_gpu_rows_and_only_real_throttling_is_called_out() -> None:
    judged = judge(Snapshot(source="envcheck-json", nvidia=_two_gpus()))
    text = _text(judged)
    assert "NVIDIA A100-SXM4-80GB" in text and "gen1/4 x16/16" in text
    assert "GPU 1: throttled: sw_thermal_slowdown" in text
    assert "GPU 0: throttled" not in text  # an idle GPU clocks down by design
    assert "on (3 uncorr.)" in text
    assert "Driver's CUDA ceiling  12.2" in text


def test_the_renderer_calls_nothing_throttled_that_no_rule_found() -> None:
    # the verdict is the rules': without a gpu-throttled finding the clock events are plain facts
    text = _text(_report(nvidia=_two_gpus()), verbose=True)
    assert "throttled" not in text
    assert "clock events: sw_thermal_slowdown" in text


def test_verbose_shows_why_fields_are_missing_and_uuids() -> None:
    text = _text(_report(nvidia=_two_gpus()), verbose=True)
    assert "fan_pct: NotSupported" in text and "GPU-bbbb" in text


def test_no_driver_reads_as_no_driver_and_a_failed_section_says_why() -> None:
    cuda = CudaInfo(
        runtime_version=13000,
        driver_version=0,
        device_count_code=35,
        libraries=[
            CudaLibrary(name="cudart", version="13.0", origin="toolkit", path="/usr/local/cuda/lib/x.so")
        ],
    )
    fw = FrameworksInfo(error="TimeoutError: did not answer within 20s")
    text = _text(_report(cuda=cuda, frameworks=fw))
    assert "0 — no driver installed" in text and "error 35 (insufficient driver)" in text
    assert "unavailable: TimeoutError: did not answer within 20s" in text


def test_a_pasted_report_shows_unknown_facts_as_unknown() -> None:
    fw = FrameworksInfo(
        frameworks=[Framework(name="torch", installed=True, version="2.6.0+cu126", build="cuda")]
    )
    text = _text(_report(frameworks=fw))
    assert "facts from a saved report" in text
    assert "torch" in text and "2.6.0+cu126" in text
    assert "unavailable: not collected" in text  # NVIDIA and CUDA were not in the report


def test_units() -> None:
    assert fmt_bytes(None) == "—" and fmt_bytes(512) == "512 B" and fmt_bytes(3 << 30) == "3.0 GiB"
    assert fmt_cuda(12020) == "12.2" and fmt_cuda(0) == "none (0)" and fmt_cuda(None) == "—"


# ------------------------------------------------------------------ 80 columns, one view, sees


def _at_80(render: object) -> list[str]:
    console = Console(width=80, record=True, force_terminal=False, color_system=None)
    render(console)  # type: ignore[operator]
    return console.export_text().splitlines()


def _torch_sees(devices: list[str], ok: bool = True, error: str | None = None) -> FrameworksInfo:
    from envcheck.models import FrameworkDevices

    deep = FrameworkDevices(ok=ok, error=error, devices=devices)
    return FrameworksInfo(
        frameworks=[Framework(name="torch", installed=True, version="2.6.0+cu124", build="cuda", deep=deep)]
    )


def test_the_report_fits_80_columns_without_hiding_numbers() -> None:
    judged = judge(Snapshot(source="envcheck-json", nvidia=_two_gpus()))
    lines = _at_80(lambda c: render_report(judged, c, verbose=True))
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "…" not in text  # values fold onto the next line instead of being cut
    assert "A100-SXM4-80GB" in text.replace("\n", "").replace("│", "").replace(" ", "") or "A100" in text


def test_sees_names_the_accelerators_not_cpu_for_every_framework() -> None:
    from envcheck.view import sees

    two = _torch_sees(["cpu", "cuda:0 NVIDIA A100-SXM4-80GB", "cuda:1 NVIDIA A100-SXM4-80GB"])
    assert sees(two.frameworks[0]) == "2× NVIDIA A100-SXM4-80GB (cuda:0…cuda:1)"
    assert sees(_torch_sees(["CPU:0"]).frameworks[0]) == "CPU only"
    assert sees(_torch_sees(["cpu:0", "tpu:0 TPU v4"]).frameworks[0]) == "tpu:0 TPU v4"
    failed = _torch_sees([], ok=False, error="crashed: SIGSEGV during import")
    assert sees(failed.frameworks[0]) == "failed: crashed: SIGSEGV during import"
    without_deep = Framework(name="jax", installed=True, version="0.4.30")
    assert sees(without_deep) is None
    text = _text(_report(frameworks=two))
    assert "2× NVIDIA A100-SXM4-80GB" in text


def test_table_and_markdown_show_the_same_formatted_facts() -> None:
    from envcheck.markdown import to_markdown

    report = judge(Snapshot(source="envcheck-json", nvidia=_two_gpus(), frameworks=_torch_sees(["cpu"])))
    table, md = _text(report, verbose=True), to_markdown(report, verbose=True)
    for fact in (
        "0 B / 80.0 GiB",
        "gen1/4 x16/16",
        "12.2",
        "on (3 uncorr.)",
        "CPU only",
        "throttled: sw_thermal_slowdown",
    ):
        assert fact in table and fact in md, fact


def test_bench_and_smoke_tables_fit_80_columns() -> None:
    from envcheck.bench.models import BenchReport, Figure
    from envcheck.bench.render import print_report as print_bench
    from envcheck.smoke.models import SmokeReport, SmokeResult
    from envcheck.smoke.render import print_report as print_smoke

    figures = [
        Figure(device="gpu:0", metric="matmul", dtype="bfloat16", unit="TFLOPS", size="n=16384", median=712.3,
               spread_pct=1.2, peak=989.4, achieved_pct=72.0),
        Figure(device="cpu", metric="matmul", dtype="float16", unit="TFLOPS", size="n=256",
               skipped="no fast float16 matmul on this cpu: 0.4 GFLOP/s against 199 float32 at n=256"),
        Figure(device="gpu:0", metric="h2d", unit="GB/s", size="1024 MiB pinned", median=24.6, spread_pct=0.4,
               peak=31.5, achieved_pct=78.1),
    ]  # fmt: skip
    bench = BenchReport(
        tool_version="x", created_at="x", mode="full", backend="torch", seconds=60.0, figures=figures
    )
    smoke = SmokeReport(
        tool_version="x", created_at="x", timeout_s=1, seconds=1,
        results=[SmokeResult(framework="tensorflow", device="gpu:0", device_name="NVIDIA H100 80GB HBM3",
                             test="nccl-allreduce", status="fail", seconds=1.23,
                             error="RuntimeError: [rank0] NCCL error: unhandled system error")],
    )  # fmt: skip
    for lines in (_at_80(lambda c: print_bench(bench, c)), _at_80(lambda c: print_smoke(smoke, c))):
        text = "\n".join(lines)
        assert max(len(line) for line in lines) <= 80 and "…" not in text, text
    bench_text = "\n".join(_at_80(lambda c: print_bench(bench, c)))
    assert "712 TFLOPS" in bench_text and "72%" in bench_text and "no fast float16 matmul" in bench_text
    assert "[rank0]" in "\n".join(_at_80(lambda c: print_smoke(smoke, c)))  # not eaten as markup
