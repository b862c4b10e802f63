"""``envcheck diagnose`` and ``envcheck diff`` on pastes, end to end: PowerShell's UTF-16 files, the
maintainer reply on stdin, and a diff that does not invent a time for a paste."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from envcheck.models import Report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
CPU_WHEEL = FIXTURES / "scale-mae-7_linux_cpu_build_2x_rtx3090.txt"
DRIVER_OLD = FIXTURES / "yuan2-65_driver_too_old_11000_userwarning.txt"
HEALTHY = FIXTURES / "vllm-12378_rhel84_a100_cu121_prompt_healthy.txt"


def envcheck(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "envcheck", *args], input=stdin, capture_output=True, timeout=300, check=False
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    )


def test_a_utf16_file_from_powershell_is_read(tmp_path: Path) -> None:
    text = CPU_WHEEL.read_text(encoding="utf-8").replace("\n", "\r\n")
    utf16 = tmp_path / "collect_env.txt"  # what `python -m torch.utils.collect_env > collect_env.txt` writes
    utf16.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    proc = envcheck("diagnose", str(utf16), "--json")
    assert proc.returncode == 1, proc.stderr
    assert "cpu-only-wheel" in {f["id"] for f in json.loads(proc.stdout)["findings"]}

    no_bom = tmp_path / "no_bom.txt"
    no_bom.write_bytes(text.encode("utf-16-le"))
    assert envcheck("diagnose", str(no_bom), "--json").returncode == 1


def test_diagnose_stdin_markdown_is_a_reply_a_maintainer_can_post() -> None:
    proc = envcheck("diagnose", "-", "--markdown", stdin=DRIVER_OLD.read_bytes())
    assert proc.returncode == 1, proc.stderr
    reply = proc.stdout
    assert "driver-too-old" in reply
    assert "NVIDIA driver on your system is too old (found version 11000)" in reply  # the line it rests on
    assert "525.60.13" in reply  # the fix
    assert "the GPU model" in reply and "nvidia-smi -L" in reply  # what the paste lacks
    assert not proc.stderr

    healthy = envcheck("diagnose", "-", "--markdown", stdin=HEALTHY.read_bytes())
    assert healthy.returncode == 0, healthy.stdout
    assert "❌" not in healthy.stdout


def test_diff_of_a_report_and_a_paste_labels_the_paste_without_a_time(tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    saved = envcheck("diagnose", str(CPU_WHEEL), "--json")
    assert saved.returncode == 1
    report = Report.model_validate_json(saved.stdout)
    report.created_at = "2026-01-02T03:04:05+00:00"
    report.snapshot.paste = None  # as `envcheck --json` saves it on the machine
    before.write_text(report.model_dump_json())

    proc = envcheck("diff", str(before), str(HEALTHY), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["a_created_at"] == "2026-01-02T03:04:05+00:00"
    assert data["b_created_at"] is None  # a paste holds no time: none is made up

    text = envcheck("diff", str(before), str(HEALTHY)).stdout
    assert "2026-01-02T03:04:05" in text and "no time in it" in text
    assert "to pasted collect_env (no time in it)" in text
