"""The four commands end to end: human output, --json, one-line errors with exit 2, no cloud SDK imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provision.cli import app

runner = CliRunner()


def _json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1
    return doc


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_gpus_json_filters_and_sorts() -> None:
    doc = _json("gpus", "H100", "--count", "8")
    rows = doc["offerings"]
    assert rows and all(
        r["accelerator"] in {"H100", "H100 PCIe"} and r["accelerator_count"] == 8 for r in rows
    )
    prices = [r["price_on_demand"] for r in rows]
    assert prices == sorted(prices)
    lam = next(r for r in rows if r["cloud"] == "lambda")
    assert lam["price_per_accelerator_hour"] == pytest.approx(23.92 / 8)
    assert lam["usd_per_pflop_hour"] == pytest.approx(23.92 / (8 * 0.9894))
    assert lam["as_of"] and lam["source"]


def test_gpus_spot_memory_price_and_per_tflop_sort() -> None:
    rows = _json("gpus", "--spot", "--min-memory", "40", "--max-price", "2", "--sort", "per-tflop")[
        "offerings"
    ]
    assert rows
    assert all(
        r["price_spot"] is not None and r["price_spot"] <= 2 and r["accelerator_memory_gb"] >= 40
        for r in rows
    )
    per = [r["usd_per_pflop_hour"] for r in rows if r["usd_per_pflop_hour"] is not None]
    assert per == sorted(per)
    mem = _json("gpus", "--sort", "memory", "--cloud", "runpod")["offerings"]
    totals = [r["accelerator_memory_gb"] * r["accelerator_count"] for r in mem]
    assert totals == sorted(totals, reverse=True) and {r["cloud"] for r in mem} == {"runpod"}


def test_gpus_table_shows_catalog_date() -> None:
    result = runner.invoke(app, ["gpus", "RTX 4090"])
    assert result.exit_code == 0
    assert "catalog as of 2025-H1" in result.stdout and "runpod" in result.stdout and "$0.69" in result.stdout


def test_cost_json_for_gpu_hours() -> None:
    doc = _json("cost", "--gpu", "A100:8", "--hours", "72", "--disk", "0")
    ests = doc["estimates"]
    assert ests and all(e["accelerators"] == 8 and e["hours"] == 72 for e in ests)
    p4d = next(e for e in ests if e["instance_type"] == "p4d.24xlarge")
    assert p4d["on_demand_cost_usd"] == pytest.approx(72 * 32.7726)
    assert doc["cheapest"]["instance_type"] == ests[0]["instance_type"]
    assert doc["catalog_as_of"] == ["2025-H1"]


def test_cost_human_output_lists_assumptions() -> None:
    result = runner.invoke(app, ["cost", "--params", "7e9", "--tokens", "2e12", "--gpu", "H100:8"])
    assert result.exit_code == 0
    out = result.stdout
    assert "cheapest" in out and "assumptions" in out and "6 x N x D" in out and "catalog as of" in out


def test_rig_json_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "rig.png"
    doc = _json(
        "rig", "--gpu", "RTX 4090:2", "--kwh-price", "0.16", "--utilization", "0.3", "--plot", str(png)
    )
    assert doc["gpu"] == "RTX 4090" and doc["count"] == 2
    assert doc["total_usd"] == pytest.approx(sum(line["total_usd"] for line in doc["bom"]))
    assert doc["ram_gb"] >= 96 and doc["power"]["rule_of_thumb_w"] == 800
    assert doc["break_even_days"] > 0 and doc["cloud_comparison"]["accelerator"] == "RTX 4090"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_rig_budget_human_output() -> None:
    result = runner.invoke(app, ["rig", "--budget", "6000", "--optimize", "memory"])
    assert result.exit_code == 0
    out = result.stdout
    assert "workstation" in out and "Total" in out and "break-even" in out and "electricity" in out


def test_catalog_show_json_and_table() -> None:
    doc = _json("catalog")
    names = {f["name"] for f in doc["files"]}
    assert "offerings_aws.csv" in names and "parts_psus.csv" in names and doc["offerings"] >= 90
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 0 and "offerings_gcp.csv" in result.stdout and "Age" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["rig", "--gpu", "Voodoo5:2"], "unknown GPU 'Voodoo5'"),
        (["rig", "--budget", "300"], "budget $300 is too small"),
        (["rig", "--gpu", "RTX 4090:9"], "no board in the catalog takes more than"),
        (["cost", "--hours", "3"], "--hours needs --gpu"),
        (["cost", "--gpu", "A100", "--hours", "3"], "--hours needs a count"),
        (["gpus", "--cloud", "azure"], "unknown cloud 'azure'"),
        (["gpus", "H100", "--max-price", "0.01"], "no offering matches"),
    ],
)
def test_impossible_requests_exit_2_with_one_line(args: list[str], needle: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error:") and needle in first
    assert "Traceback" not in proc.stderr


def test_refresh_without_credentials_is_one_line_exit_3(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        PROVISION_CATALOG_DIR=str(tmp_path / "catalog"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "catalog", "refresh", "--cloud", "aws"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[0] == "error: no AWS credentials found"
    assert "aws configure" in proc.stderr and not (tmp_path / "catalog").exists()


def test_pricing_commands_import_no_cloud_sdk() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from provision.cli import app\n"
        "runs = (['gpus'], ['cost', '--gpu', 'A100:8', '--hours', '1'],\n"
        "        ['rig', '--gpu', 'RTX 4090:1'], ['catalog'])\n"
        "for args in runs:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            app(args)\n"
        "        except SystemExit as e:\n"
        "            assert not e.code, (args, e.code)\n"
        "sdks = ('boto3', 'botocore', 'google.cloud', 'matplotlib', 'torch', 'docker')\n"
        "heavy = [m for m in sdks if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_pricing_tables_get_160_columns_in_a_pipe_unless_columns_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from provision.commands._common import err_console, out_console

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a pipe, whether or not pytest captures
    assert out_console(wide_when_piped=True).width == 160
    assert out_console().width == 80  # rich's default for the other commands
    monkeypatch.setenv("COLUMNS", "100")
    assert out_console(wide_when_piped=True).width == 100
    assert err_console().stderr
