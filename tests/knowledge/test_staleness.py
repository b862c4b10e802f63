"""The shipped tables keep their promises: every release a generated table claims to cover has
rows, every row says where and when it was read, artifact rows carry their sha256. Each check is
also shown failing on a tampered copy, so a passing run means something."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from envcheck.knowledge import _table, coverage

DATA = Path(_table.__file__).with_name("data")


def _clear() -> None:
    _table.rows.cache_clear()
    coverage.known_releases.cache_clear()


def test_the_shipped_tables_have_no_staleness_problem():
    assert coverage.problems() == []


def test_generated_tables_claim_what_the_refresh_read():
    claims = {r["table"]: r for r in _table.rows("coverage.csv")}
    torch = claims["torch_builds.csv"]["releases"].split()
    # every torch release from 1.0 to 2.15, every TensorFlow GPU release from 1.5 (tensorflow-gpu) to 2.21
    assert torch[0] == "1.0" and "2.15" in torch and len(torch) == 15 + 15
    tf = claims["tensorflow_builds.csv"]["releases"].split()
    assert tf[0] == "1.5" and "1.15" in tf and "2.0" in tf and "2.21" in tf
    # what the rows cannot say is said: no arch list in the 1.0/1.1 wheels, old jaxlib CUDA builds
    assert "1.0 1.1" in claims["torch_builds.csv"]["note"]
    assert "storage.googleapis.com/jax-releases" in claims["jax_releases.csv"]["note"]
    assert "0.12.1" in claims["jax_releases.csv"]["releases"].split()
    # the refresh says which index it could not read, and the rows that depend on it say so too
    assert "download.pytorch.org" in claims["torch_builds.csv"]["indexes_unreachable"]
    assert "pypi.org" in claims["torch_builds.csv"]["indexes_read"]
    hand = [r for r in _table.rows("torch_builds.csv") if not r["artifact"]]
    assert hand and all("not verified against the artifact" in r["source"] for r in hand)


@pytest.fixture
def tampered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    monkeypatch.setattr(_table, "DATA_DIR", copy)
    _clear()
    yield copy
    _clear()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    _clear()


def test_a_claimed_release_without_rows_fails(tampered: Path):
    lines = (tampered / "torch_builds.csv").read_text().splitlines(keepends=True)
    (tampered / "torch_builds.csv").write_text("".join(ln for ln in lines if not ln.startswith("2.15,")))
    found = coverage.problems()
    assert any("claims torch 2.15 but has no rows" in p for p in found), found


def _set(path: Path, key: str, column: str, value: str) -> None:
    """Set one cell of the row whose first cell is ``key`` (comment lines kept)."""
    lines = path.read_text().splitlines(keepends=True)
    comments = [ln for ln in lines if ln.startswith("#")]
    table = list(csv.DictReader(ln for ln in lines if not ln.startswith("#")))
    [row] = [r for r in table if next(iter(r.values())) == key]
    row[column] = value
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    path.write_text("".join(comments) + buf.getvalue())
    _clear()


def test_a_row_without_source_or_date_fails(tampered: Path):
    path = tampered / "jax_releases.csv"
    _set(path, "0.12.1", "as_of", "2099-01-01")
    assert any("after today" in p for p in coverage.problems())
    _set(path, "0.12.1", "as_of", "")
    assert any("is not an ISO date" in p for p in coverage.problems(dt.date(2026, 12, 7)))
    _set(path, "0.12.1", "as_of", "2026-12-07")
    _set(path, "0.12.1", "source", "")
    assert any("has no source" in p for p in coverage.problems())


def test_an_artifact_row_without_its_sha256_fails(tampered: Path):
    path = tampered / "tensorflow_builds.csv"
    row = next(ln for ln in path.read_text().splitlines() if ln.startswith("2.21.0,"))
    sha = next(cell for cell in row.split(",") if len(cell) == 64)
    _edit(path, sha, "")
    assert any("without its sha256" in p for p in coverage.problems())


def test_a_release_whose_pypi_build_was_not_read_fails(tampered: Path):
    path = tampered / "torch_builds.csv"
    row = next(ln for ln in path.read_text().splitlines() if ln.startswith("2.15,13.2,"))
    _edit(path, row, row.replace(",1,", ",0,", 1))
    assert any("torch 2.15 has no PyPI build" in p for p in coverage.problems())
