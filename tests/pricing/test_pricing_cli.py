"""The four commands end to end: human output, --json, one-line errors with exit 2, no cloud SDK imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provision import pricing_render as render
from provision.cli import app

runner = CliRunner()


def _json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout, parse_constant=_no_constants)
    assert doc["schema_version"] == render.SCHEMA_VERSION == "2.0"
    return doc


def _no_constants(name: str) -> None:
    raise AssertionError(f"JSON carries {name}")


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
        r["accelerator"] in {"H100", "H100 PCIe", "H100 NVL"} and r["accelerator_count"] == 8 for r in rows
    )
    prices = [r["price_on_demand"] for r in rows]
    assert prices == sorted(prices)
    lam = next(r for r in rows if r["cloud"] == "lambda" and r["accelerator"] == "H100")
    assert lam["price_per_accelerator_hour"] == pytest.approx(31.92 / 8)
    assert lam["usd_per_pflop_hour"] == pytest.approx(31.92 / (8 * 0.9894))
    assert lam["as_of"] == "2026-09" and lam["source"] and lam["vcpus"] and lam["ram_gb"]
    assert len(lam["other_regions"]) == 16 and lam["interconnect"] == "NVLink"
    assert doc["catalog"]["stale_after_days"] == 30 and doc["summary"]


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


def test_gpus_table_shows_the_date_of_every_price() -> None:
    result = runner.invoke(app, ["gpus", "RTX 4090"])
    assert result.exit_code == 0
    out = result.stdout
    assert "prices as of 2026-09" in out and "runpod" in out and "$0.74" in out
    rows = [ln for ln in out.splitlines() if "$" in ln and "RTX 4090" in ln]
    assert rows and all("2026-09" in ln for ln in rows)


def test_gpus_all_regions_lists_each_region_and_region_filters() -> None:
    grouped = _json("gpus", "H100", "--cloud", "lambda", "--count", "8")["offerings"]
    every = _json("gpus", "H100", "--cloud", "lambda", "--count", "8", "--all-regions")["offerings"]
    assert len(grouped) == 1 and len(every) == 17 and len({r["region"] for r in every}) == 17
    one = _json("gpus", "H100", "--region", "us-east4", "--count", "8")["offerings"]
    assert one and {r["region"] for r in one} == {"us-east4"} and {r["cloud"] for r in one} == {"gcp"}


def test_gpus_summary_counts_memory_interconnect_and_both_markets() -> None:
    doc = _json("gpus")
    by = {s["accelerator"]: s for s in doc["summary"]}
    h100 = by["H100"]
    assert h100["counts"] == [1, 2, 4, 8] and h100["memory_gb"] == [80] and h100["interconnect"] == ["NVLink"]
    assert h100["cheapest_on_demand_per_accelerator_hour"] and h100["cheapest_spot_per_accelerator_hour"]
    assert by["TPU v5p"]["counts"][0] == 4 and by["RTX 4090"]["interconnect"] == ["PCIe Gen4"]
    result = runner.invoke(app, ["gpus"])
    assert result.exit_code == 0 and "H100" in result.stdout and "1, 2, 4, 8" in result.stdout


def test_gpus_price_and_memory_filters() -> None:
    rows = _json("gpus", "--all", "--max-gpu-price", "1", "--min-total-memory", "96")["offerings"]
    assert rows
    for r in rows:
        assert r["price_per_accelerator_hour"] <= 1
        assert r["accelerator_memory_gb"] * r["accelerator_count"] >= 96


def test_cost_json_for_gpu_hours() -> None:
    doc = _json("cost", "--gpu", "A100:8", "--hours", "72", "--disk", "0", "--region", "us-east-1")
    ests = doc["estimates"]
    assert ests and all(e["accelerators"] == 8 and e["hours"] == 72 for e in ests)
    p4d = next(e for e in ests if e["instance_type"] == "p4d.24xlarge")
    assert p4d["on_demand_cost_usd"] == pytest.approx(72 * 21.957642)
    assert doc["cheapest"]["instance_type"] == ests[0]["instance_type"]
    assert doc["catalog"]["oldest_as_of"] and doc["catalog"]["stale_after_days"] == 30


def test_cost_human_output_lists_assumptions() -> None:
    result = runner.invoke(app, ["cost", "--params", "7e9", "--tokens", "2e12", "--gpu", "H100:8"])
    assert result.exit_code == 0
    out = result.stdout
    assert "cheapest" in out and "assumptions" in out and "6 x N x D" in out and "prices as of" in out
    assert "never interrupted" in out and "Llama 2 7B" in out


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
    assert doc["cloud_comparison"]["same_gpu"] is True and doc["electricity"]["kwh_price"] == 0.16
    assert doc["power"]["wall_w"] > doc["power"]["sustained_w"] and doc["pcie"]["gpu_generation"] == "4"
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
        (["gpus", "--max-price", "nan"], "--max-price"),
        (["gpus", "--min-memory", "inf"], "--min-memory"),
        (["cost", "--gpu", "A100:8", "--hours", "inf"], "--hours"),
        (["cost", "--gpu", "A100:8", "--hours", "nan"], "--hours"),
        (["cost", "--gpu", "A100:8", "--hours", "-1"], "--hours"),
        (["cost", "--gpu", "A100:8", "--hours", "1e300"], "--hours"),
        (["cost", "--flops", "inf"], "--flops"),
        (["cost", "--params", "7e9", "--tokens", "nan"], "--tokens"),
        (["cost", "--flops", "1e21", "--mfu", "0"], "--mfu"),
        (["cost", "--flops", "1e21", "--deadline", "soon"], "--deadline"),
        (["cost", "--flops", "1e21", "--deadline", "-3d"], "--deadline"),
        (["cost", "--gpu", "A100:8", "--hours", "1", "--disk", "inf"], "--disk"),
        (["rig", "--gpu", "RTX 4090:1", "--kwh-price", "nan"], "--kwh-price"),
        (["rig", "--gpu", "RTX 4090:1", "--utilization", "2"], "--utilization"),
        (["rig", "--budget", "inf"], "--budget"),
        (["catalog", "refresh", "--source", "gpuhunt", "--region", "us-east-1"], "--region"),
        (["catalog", "refresh", "--cloud", "oracle"], "no catalog for 'oracle'"),
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
        [sys.executable, "-m", "provision", "catalog", "refresh", "--source", "aws-api"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[0] == "error: no AWS credentials found"
    assert "aws configure" in proc.stderr and not list((tmp_path / "catalog").iterdir())


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
        "sdks = ('boto3', 'botocore', 'google.cloud', 'matplotlib', 'torch', 'docker', 'gpuhunt')\n"
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


def test_nonexistent_catalog_dir_is_a_usage_error(tmp_path: Path) -> None:
    proc = _run("gpus", env={"PROVISION_CATALOG_DIR": str(tmp_path / "typo")})
    assert proc.returncode == 2 and proc.stdout == ""
    first = proc.stderr.splitlines()[0]
    assert first == f"error: PROVISION_CATALOG_DIR={tmp_path / 'typo'} is not a directory"


def test_unreachable_public_catalog_is_one_line_exit_3(tmp_path: Path) -> None:
    """This machine cannot reach gpuhunt's S3 bucket; a closed loopback port stands in for it."""
    pytest.importorskip("gpuhunt")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    proc = _run(
        "catalog", "refresh",
        env={"PROVISION_GPUHUNT_CATALOG_URL": f"http://127.0.0.1:{port}/v3",
             "PROVISION_CATALOG_DIR": str(tmp_path / "catalog")},
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"error: cannot reach the gpuhunt price catalog at http://127.0.0.1:{port}/v3")
    assert "shipped prices stay in use" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "catalog").iterdir())


def _fresh_lambda(folder: Path, as_of: str) -> None:
    (folder / "offerings_lambda.csv").write_text(
        "# fetched today\n"
        "cloud,instance_type,accelerator,accelerator_count,accelerator_memory_gb,vcpus,ram_gb,region,"
        "price_on_demand,price_spot,kind,source,as_of\n"
        f"lambda,gpu_8x_h100_sxm5,H100,8,80,208,1800,us-east-1,31.92,,vm,test,{as_of}\n"
    )


def test_stale_prices_warn_on_stderr_with_the_refresh_command(tmp_path: Path) -> None:
    import datetime as dt

    folder = tmp_path / "catalog"  # made by the user_catalog fixture
    _fresh_lambda(folder, dt.date.today().isoformat())
    env = {"PROVISION_CATALOG_DIR": str(folder)}
    fresh = _run("gpus", "H100", "--cloud", "lambda", env=env)
    assert fresh.returncode == 0 and "warning" not in fresh.stderr
    stale = _run("gpus", "H100", "--cloud", "aws", env=env)
    assert stale.returncode == 0
    assert "days old" in stale.stderr and "provision catalog refresh" in stale.stderr
    cost_run = _run("cost", "--gpu", "A100:8", "--hours", "1", "--cloud", "aws", env=env)
    assert cost_run.returncode == 0 and "provision catalog refresh" in cost_run.stderr
    fresh_cost = _run("cost", "--gpu", "H100:8", "--hours", "1", "--cloud", "lambda", env=env)
    assert fresh_cost.returncode == 0 and "warning" not in fresh_cost.stderr


_MONEY = re.compile(r"\$[\d,]+(?:\.\d+)?")


def _narrow(*args: str) -> str:
    proc = _run(*args, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and max(len(ln) for ln in lines) <= 80, max(lines, key=len)
    return proc.stdout


def test_gpus_summary_at_80_columns_keeps_every_price_whole() -> None:
    out = _narrow("gpus")
    doc = _json("gpus")
    for s in doc["summary"]:
        price = s["cheapest_on_demand_per_accelerator_hour"]
        if price is not None:
            assert render.money(price) in _MONEY.findall(out), s["accelerator"]


def test_gpus_offerings_at_80_columns_keep_every_price_whole() -> None:
    out = _narrow("gpus", "H100")
    found = set(_MONEY.findall(out))
    for r in _json("gpus", "H100")["offerings"]:
        assert render.money(r["price_on_demand"]) in found, r["instance_type"]
        if r["price_spot"] is not None:
            assert render.money(r["price_spot"]) in found
    assert "vCPU" in out and "RAM" in out


def test_cost_at_80_columns_keeps_every_total_whole() -> None:
    out = _narrow("cost", "--params", "7e9", "--tokens", "2e12")
    found = set(_MONEY.findall(out))
    doc = _json("cost", "--params", "7e9", "--tokens", "2e12", "--top", "15")
    shown = {render.total(e["on_demand_cost_usd"]) for e in doc["estimates"] if e["on_demand_cost_usd"]}
    assert shown & found and render.total(doc["cheapest"]["on_demand_cost_usd"]) in found


def test_rig_at_80_columns_keeps_every_price_whole() -> None:
    out = _narrow("rig", "--gpu", "RTX 4090:2")
    found = set(_MONEY.findall(out))
    doc = _json("rig", "--gpu", "RTX 4090:2")
    for line in doc["bom"]:
        assert render.money(line["total_usd"], 0) in found, line["item"]
    assert render.money(doc["total_usd"], 0) in found


def test_catalog_text_is_printed_literally_not_as_markup(tmp_path: Path) -> None:
    """A refreshed catalog is outside data: rich markup in it must print as written."""
    import datetime as dt

    (tmp_path / "catalog" / "offerings_lambda.csv").write_text(
        "cloud,instance_type,accelerator,accelerator_count,accelerator_memory_gb,vcpus,ram_gb,region,"
        "price_on_demand,price_spot,kind,source,as_of\n"
        f"lambda,gpu_[bold]8x[/bold],H100,8,80,208,1800,us-[red]east,31.92,,vm,test,{dt.date.today()}\n"
    )
    proc = _run("cost", "--gpu", "H100:8", "--hours", "1", "--cloud", "lambda")
    assert proc.returncode == 0, proc.stderr
    assert "gpu_[bold]8x[/bold]" in proc.stdout and "us-[red]east" in proc.stdout
