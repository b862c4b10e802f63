"""End-to-end behaviour of the envcheck CLI: outputs, exit codes, one-line errors, probe failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from envcheck import probes, report
from envcheck.cli import app
from envcheck.models import SCHEMA_VERSION, ContainerInfo, MemoryInfo, Report, Snapshot, SystemInfo

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
CPU_WHEEL_ON_GPU = FIXTURES / "scale-mae-7_linux_cpu_build_2x_rtx3090.txt"


def envcheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        check=False,
    )


def test_json_report_of_this_machine_is_valid_and_right() -> None:
    proc = envcheck("--json")
    assert proc.returncode in (0, 1), proc.stderr
    rep = msgspec.json.decode(proc.stdout, type=Report)  # strict: the output matches the schema
    assert rep.schema_version.startswith("1.")
    snap = rep.snapshot
    # every section was collected, none failed on this healthy (GPU-less) machine
    for name in ("system", "cpu", "memory", "disk", "nvidia", "cuda", "tpu", "frameworks"):
        section = getattr(snap, name)
        assert section is not None and section.error is None, (name, section)
    assert snap.nvidia is not None and snap.nvidia.gpus in (None, [])
    assert snap.nvidia.nvml is not None and not snap.nvidia.nvml.ok
    # no driver is "no driver", never "driver too old"
    assert "driver-too-old" not in {f.id for f in rep.findings}
    assert proc.returncode == (1 if rep.has_errors else 0)


def test_json_and_markdown_together_is_a_usage_error_in_one_line() -> None:
    proc = envcheck("--json", "--markdown")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "exclusive" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["diagnose", "/nonexistent/report.json"], "no such file"),
        (["diagnose", "/"], "directory"),
        (["diff", "/nonexistent/a.json", "/nonexistent/b.json"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    proc = envcheck(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_garbage_on_stdin_is_a_clear_error() -> None:
    proc = envcheck("diagnose", "-", stdin="this is not a report\n")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_diagnose_a_collect_env_paste_finds_the_cpu_wheel_and_exits_1() -> None:
    proc = envcheck("diagnose", str(CPU_WHEEL_ON_GPU), "--json")
    assert proc.returncode == 1, proc.stderr
    rep = msgspec.json.decode(proc.stdout, type=Report)
    assert rep.snapshot.source == "collect_env"
    hit = next(f for f in rep.findings if f.id == "cpu-only-wheel")
    assert any("pip install" in c and "torch" in c for c in hit.commands)
    # facts the paste does not give were not invented: rules that need them are skipped
    assert rep.snapshot.memory is None
    assert "small-shm" in {s.id for s in rep.skipped}


def test_a_paste_too_thin_to_judge_never_reads_as_all_clear(tmp_path: Path) -> None:
    """A TensorFlow issue template names a version and little else: nothing wrong can be seen, and
    the report says what is missing (and how to get it) instead of a green "no problems found".
    The real template (tensorflow-69042) types CUDA 11.8 for TF 2.15, which is itself a finding, so
    here it states what TF 2.15 was built with (CUDA 12.2, cuDNN 8.9)."""
    real = FIXTURES / "tensorflow-69042_wsl_tf215_cuda118_cudnn86_template_only.txt"
    thin = tmp_path / "template.txt"
    thin.write_text(real.read_text(encoding="utf-8").replace("11.8/8.6", "12.2/8.9"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "envcheck", "diagnose", str(thin)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "no problems found" not in proc.stdout
    assert "nothing wrong in what the paste shows, but it lacks:" in proc.stdout
    assert "the NVIDIA driver version: nvidia-smi" in proc.stdout
    assert "it lacks 2 of the facts" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    # an envcheck report of a machine holds what it could look at: no such list
    saved = report.judge(Snapshot(system=SystemInfo(os="Linux")))
    local = envcheck("diagnose", "-", stdin=msgspec.json.encode(saved).decode())
    assert local.returncode in (0, 1) and "lacks" not in local.stdout, local.stderr


def test_diagnose_reads_stdin_and_markdown_carries_the_fix() -> None:
    proc = envcheck("diagnose", "-", "--markdown", stdin=CPU_WHEEL_ON_GPU.read_text())
    assert proc.returncode == 1
    assert "cpu-only-wheel" in proc.stdout and "```" in proc.stdout


def test_saved_report_diagnoses_and_diffs_against_itself(tmp_path: Path) -> None:
    saved = tmp_path / "me.json"
    first = envcheck("--json", "-o", str(saved))
    assert first.returncode in (0, 1) and saved.exists()
    again = envcheck("diagnose", str(saved), "--json")
    assert again.returncode == first.returncode
    assert (
        msgspec.json.decode(again.stdout, type=Report).snapshot
        == Report.model_validate_json(saved.read_text()).snapshot
    )
    diff = envcheck("diff", str(saved), str(saved), "--json")
    assert diff.returncode == 0
    assert json.loads(diff.stdout)["changed"] == []


def test_rules_lists_the_library_catalog() -> None:
    from envcheck.rules import catalog

    proc = envcheck("rules", "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert [(r["id"], r["severity"], r["summary"]) for r in doc["rules"]] == catalog()


def test_schema_describes_the_report() -> None:
    proc = envcheck("schema")
    schema = json.loads(proc.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "Report" in json.dumps(schema) and "snapshot" in json.dumps(schema)
    for kind in ("smoke", "bench"):
        other = json.loads(envcheck("schema", "--for", kind).stdout)
        assert other["$schema"].endswith("2020-12/schema") and "schema_version" in other["properties"]


# ------------------------------------------------------------------ in-process, with fakes


def _container_with_tiny_shm() -> Snapshot:
    return Snapshot(
        system=SystemInfo(container=ContainerInfo(runtime="docker", kubernetes=False, wsl=False)),
        memory=MemoryInfo(total_bytes=64 << 30, available_bytes=60 << 30, shm_total_bytes=64 << 20),
    )


def test_an_error_finding_makes_exit_1_and_is_printed_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "collect", lambda ctx: (_container_with_tiny_shm(), []))
    result = CliRunner().invoke(app, ["--json"])
    rep = Report.model_validate_json(result.stdout)
    shm = next(f for f in rep.findings if f.id == "small-shm")
    assert result.exit_code == (1 if rep.has_errors else 0)
    human = CliRunner().invoke(app, [], env={"COLUMNS": "200"})
    assert shm.summary.split()[0] in human.stdout
    assert human.exit_code == result.exit_code


def test_a_probe_that_raises_or_hangs_becomes_a_line_and_the_rest_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = probes._probes()
    release = threading.Event()

    def broken(ctx: probes.ProbeContext) -> object:
        raise PermissionError(13, "Permission denied", "/proc/cpuinfo")

    def hangs(ctx: probes.ProbeContext) -> object:
        release.wait(60)
        raise AssertionError("abandoned")

    fake = dict(real)
    fake["cpu"] = (real["cpu"][0], broken)
    fake["nvidia"] = (real["nvidia"][0], hangs)
    monkeypatch.setattr(probes, "_probes", lambda: fake)
    try:
        snap, timings = probes.collect(probes.ProbeContext(), overall_timeout=3)
    finally:
        release.set()
    assert snap.cpu is not None and snap.cpu.error and "Permission denied" in snap.cpu.error
    assert snap.nvidia is not None and snap.nvidia.error and "did not answer" in snap.nvidia.error
    assert snap.memory is not None and snap.memory.error is None and snap.memory.total_bytes
    status = {t.name: t.status for t in timings}
    assert status["cpu"] == "failed" and status["nvidia"] == "timeout" and status["memory"] == "ok"


def test_a_framework_that_segfaults_under_deep_is_an_error_not_green() -> None:
    smoke = Path(__file__).parent / "fixtures" / "smoke"
    # a tensorflow that segfaults; torch and jax that vanish (quick: no real import)
    fakes = f"{smoke / 'segfault'}{os.pathsep}{smoke / 'not_installed'}"
    proc = subprocess.run(
        [sys.executable, "-m", "envcheck", "--deep", "--deep-timeout", "60"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": fakes, "COLUMNS": "120"},
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "framework-import-failed" in proc.stdout and "SIGSEGV" in proc.stdout
    assert "no problems" not in proc.stdout
