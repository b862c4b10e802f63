"""``envcheck rules --knowledge``: each table's age and the newest release it covers, at 80 columns
and as JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from envcheck.cli import app


def test_rules_knowledge_table_at_80_columns():
    result = CliRunner().invoke(app, ["rules", "--knowledge"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), [ln for ln in lines if len(ln) > 80]
    torch = next(ln for ln in lines if ln.startswith("torch_builds.csv "))
    assert "2.15" in torch
    assert any(ln.startswith("cuda_toolkit_drivers.csv") and "13.5.0" in ln for ln in lines)
    assert "download.pytorch.org" in result.output  # the index the refresh could not read
    assert "refresh_knowledge.py" in result.output


def test_rules_knowledge_json():
    result = CliRunner().invoke(app, ["rules", "--knowledge", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema_version"].startswith("1.")
    tables = {t["name"]: t for t in doc["tables"]}
    assert tables["tensorflow_builds.csv"]["newest"] == "2.21.0"
    assert tables["jax_releases.csv"]["newest"] == "0.12.1"
    assert tables["torch_builds.csv"]["from_artifacts"] >= 15
    assert all({"age_days", "stale", "newest_as_of"} <= set(t) for t in doc["tables"])


def test_tables_age_and_turn_stale():
    import datetime as dt

    from envcheck.knowledge import coverage

    fresh = {t.name: t for t in coverage.tables(dt.date(2026, 12, 7))}
    assert fresh["torch_builds.csv"].age_days == 0 and not fresh["torch_builds.csv"].stale
    later = {t.name: t for t in coverage.tables(dt.date(2027, 6, 1))}
    assert later["torch_builds.csv"].stale and later["torch_builds.csv"].age_days == 176
