"""`provision catalog refresh` from gpuhunt's public catalogs: the real gpuhunt library downloads
catalog zips from a loopback server (fixtures in tests/fixtures/pricing/gpuhunt, see its README)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provision import catalog
from provision.catalog import refresh
from provision.errors import MissingDependencyError, ProvisionError, UsageError

GPUHUNT = Path(__file__).resolve().parents[1] / "fixtures" / "pricing" / "gpuhunt"
VERSION = "20261201-0400"
FETCHED = dt.date(2026, 12, 7)


def _rows(provider: str) -> list[dict[str, str]]:
    with (GPUHUNT / f"{provider}.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _parse(cloud: str, provider: str) -> tuple[dict[tuple[str, str], Any], list[str]]:
    offers, skipped = refresh.parse_gpuhunt(
        cloud, VERSION, _rows(provider), url="http://test/v3", fetched=FETCHED
    )
    assert catalog.problems(offers) == []
    return {(o.instance_type, o.region): o for o in offers}, skipped


def test_aws_rows_merge_markets_and_skip_unknown_gpus() -> None:
    by, skipped = _parse("aws", "aws")
    p5 = by[("p5.48xlarge", "us-east-1")]
    assert (p5.accelerator, p5.accelerator_count, p5.vcpus, p5.ram_gb) == ("H100", 8, 192, 2048)
    assert (p5.price_on_demand, p5.price_spot) == (55.04, 17.6289)
    assert p5.as_of == "2026-12-01" and "gpuhunt catalog aws version 20261201-0400" in p5.source
    assert by[("p5.48xlarge", "us-west-2")].price_spot is None
    assert by[("p4de.24xlarge", "us-east-1")].accelerator == "A100 80GB"  # A100 + 80 GB
    assert by[("g5.xlarge", "us-east-1")].price_spot is None  # "spot" above on-demand is no discount
    assert any("B300" in s for s in skipped) and any("RadeonProV520" in s for s in skipped)
    assert not any(k[0].startswith("c5") for k in by)  # CPU-only


def test_gcp_zones_fold_into_regions_and_misscraped_rows_are_dropped() -> None:
    by, skipped = _parse("gcp", "gcp")
    a3 = by[("a3-highgpu-8g", "us-east4")]
    assert (a3.price_on_demand, a3.price_spot) == (87.83247, 20.04446)
    assert ("a3-highgpu-8g", "us-central1") not in by
    assert any("us-central1" in s and "mis-scraped" in s for s in skipped)
    assert by[("g2-standard-4", "us-central1")].price_spot == 0.28229
    v5p = by[("tpu-v5p-8", "us-central1")]
    assert (v5p.accelerator, v5p.accelerator_count, v5p.kind) == ("TPU v5p", 4, "tpu-vm")
    assert (v5p.price_on_demand, v5p.price_spot) == (16.8, 3.3428)
    v5e = by[("tpu-v5litepod-4", "us-west4")]
    assert (v5e.accelerator, v5e.accelerator_count) == ("TPU v5e", 4)
    assert by[("tpu-v6e-8", "us-east1")].accelerator_count == 8
    assert any("v9z-8" in s for s in skipped)


def test_runpod_secure_and_community_are_kept_apart() -> None:
    by, _ = _parse("runpod", "runpod")
    secure = by[("1x NVIDIA GeForce RTX 4090 SECURE", "US")]  # US-KS-2 and US-TX-3 fold into US
    community = by[("1x NVIDIA GeForce RTX 4090 COMMUNITY", "US")]
    assert (secure.price_on_demand, secure.price_spot) == (0.74, None)
    assert (community.price_on_demand, community.price_spot) == (0.34, 0.29)
    assert by[("4x NVIDIA GeForce RTX 4090 SECURE", "US")].price_on_demand == 2.96
    assert by[("1x NVIDIA A100-SXM4-80GB SECURE", "US")].accelerator == "A100 80GB"
    assert by[("1x NVIDIA H100 NVL SECURE", "SE")].accelerator == "H100 NVL"
    assert by[("1x AMD Instinct MI300X OAM SECURE", "RO")].accelerator == "MI300X"


def _zip(provider: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{provider}.csv", (GPUHUNT / f"{provider}.csv").read_text())
    return buf.getvalue()


@pytest.fixture
def gpuhunt_server(
    loopback: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[set[str]], Any]]:
    """Serve the fixture catalogs of ``providers`` (others answer 404) and point mlrig at them."""
    pytest.importorskip("gpuhunt")

    def start(providers: set[str]) -> Any:
        def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
            parts = path.strip("/").split("/")  # v3/<provider>/version | v3/<provider>/<v>/catalog.zip
            provider = parts[1] if len(parts) > 1 else ""
            if provider not in providers:
                return 404, b"not found"
            if parts[2:] == ["version"]:
                return 200, f"{VERSION}\n".encode()
            if parts[2:] == [VERSION, "catalog.zip"]:
                return 200, _zip(provider)
            return 404, b"not found"

        url, seen = loopback(handler)
        monkeypatch.setenv("PROVISION_GPUHUNT_CATALOG_URL", f"{url}/v3")
        return seen

    yield start


ALL = {"aws", "gcp", "azure", "lambdalabs", "runpod"}


def test_refresh_writes_every_cloud_to_the_user_cache_and_the_catalog_uses_it(
    gpuhunt_server: Callable[[set[str]], Any], user_catalog: Path
) -> None:
    seen = gpuhunt_server(ALL)
    results = {r.cloud: r for r in refresh.refresh_gpuhunt(["aws", "gcp", "azure", "lambda", "runpod"])}
    assert set(results) == {"aws", "gcp", "azure", "lambda", "runpod"}
    assert all(r.rows and r.path == user_catalog / f"offerings_{c}.csv" for c, r in results.items())
    assert results["lambda"].as_of == "2026-12-01"
    assert any(r["path"].endswith("/lambdalabs/version") for r in seen.requests)
    header = (user_catalog / "offerings_azure.csv").read_text().splitlines()[0]
    assert "gpuhunt" in header and "fetched 20" in header and VERSION in header
    offers = catalog.load_offerings()
    assert {"aws", "gcp", "azure", "lambda", "runpod"} <= {o.cloud for o in offers}
    lam = [o for o in offers if o.cloud == "lambda"]
    assert len(lam) == 5 and {o.as_of for o in lam} == {"2026-12-01"}  # replaced the shipped rows
    azure = next(f for f in catalog.summary() if f.kind == "azure")
    assert azure.origin == str(user_catalog / "offerings_azure.csv") and azure.fetched


def test_a_provider_that_fails_leaves_its_shipped_rows(
    gpuhunt_server: Callable[[set[str]], Any], user_catalog: Path
) -> None:
    gpuhunt_server({"aws"})
    results = {r.cloud: r for r in refresh.refresh_gpuhunt(["aws", "gcp"])}
    assert results["aws"].rows > 0
    assert results["gcp"].rows == 0 and "not refreshed" in results["gcp"].skipped[0]
    assert not (user_catalog / "offerings_gcp.csv").exists()
    gcp = [o for o in catalog.load_offerings() if o.cloud == "gcp"]
    assert len(gcp) > 50  # shipped rows


def test_nothing_reachable_is_one_error_and_nothing_written(
    gpuhunt_server: Callable[[set[str]], Any], user_catalog: Path
) -> None:
    gpuhunt_server(set())
    with pytest.raises(ProvisionError) as info:
        refresh.refresh_gpuhunt(["aws"])
    assert "gpuhunt price catalog" in str(info.value) and info.value.hint
    assert not list(user_catalog.iterdir())


def test_unknown_cloud_and_missing_library(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="no catalog for 'oracle'"):
        refresh.refresh_gpuhunt(["oracle"])
    monkeypatch.setitem(sys.modules, "gpuhunt", None)
    with pytest.raises(MissingDependencyError) as info:
        refresh.refresh_gpuhunt(["aws"])
    assert info.value.hint and "mlrig[prices]" in info.value.hint


def test_cli_refresh_json_and_output_dir(
    gpuhunt_server: Callable[[set[str]], Any], user_catalog: Path, tmp_path: Path
) -> None:
    gpuhunt_server(ALL)
    out = tmp_path / "elsewhere"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "catalog", "refresh", "--cloud", "azure,lambda",
         "--output-dir", str(out), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == "2.0" and doc["source"] == "gpuhunt"
    assert {r["cloud"] for r in doc["results"]} == {"azure", "lambda"}
    assert (out / "offerings_azure.csv").exists() and not list(user_catalog.iterdir())
    human = subprocess.run(
        [sys.executable, "-m", "provision", "catalog", "refresh", "--cloud", "lambda"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert human.returncode == 0 and "lambda: wrote 5 offerings" in human.stderr
    gpus = subprocess.run(
        [sys.executable, "-m", "provision", "gpus", "GH200", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    rows = json.loads(gpus.stdout)["offerings"]
    assert rows and rows[0]["as_of"] == "2026-12-01" and "gpuhunt" in rows[0]["source"]


def test_snapshot_rebuild_script_prints_the_diff_and_writes(
    gpuhunt_server: Callable[[set[str]], Any], tmp_path: Path
) -> None:
    gpuhunt_server({"lambdalabs"})
    data = tmp_path / "data"
    data.mkdir()
    shipped = Path(refresh.__file__).parent / "data" / "offerings_lambda.csv"
    (data / "offerings_lambda.csv").write_text(shipped.read_text())
    script = Path(__file__).resolve().parents[2] / "scripts" / "refresh_prices.py"
    args = [sys.executable, str(script), "--cloud", "lambda", "--data-dir", str(data)]
    dry = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert dry.returncode == 0, dry.stderr
    assert "lambda: prices as of 2026-12-01" in dry.stdout and "357 -> 5 rows" in dry.stdout
    assert (data / "offerings_lambda.csv").read_text() == shipped.read_text()
    wrote = subprocess.run([*args, "--write"], capture_output=True, text=True, timeout=120, check=False)
    assert wrote.returncode == 0 and "gpuhunt" in (data / "offerings_lambda.csv").read_text()


def test_refresh_writes_through_a_symlink_and_refuses_a_directory(
    gpuhunt_server: Callable[[set[str]], Any], user_catalog: Path, tmp_path: Path
) -> None:
    gpuhunt_server({"lambdalabs", "runpod"})
    real = tmp_path / "kept-elsewhere.csv"
    real.write_text("old")
    (user_catalog / "offerings_lambda.csv").symlink_to(real)
    (user_catalog / "offerings_runpod.csv").mkdir()
    with pytest.raises(UsageError, match="not a regular file"):
        refresh.refresh_gpuhunt(["runpod"])
    refresh.refresh_gpuhunt(["lambda"])
    assert (user_catalog / "offerings_lambda.csv").is_symlink() and "gpuhunt" in real.read_text()
    assert [p.name for p in user_catalog.iterdir() if p.name.startswith(".")] == []  # no temp files left
