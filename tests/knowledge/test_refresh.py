"""scripts/refresh_knowledge.py end to end against a loopback index built from recorded release
facts: what it derives, what it fetches (byte ranges, never whole wheels), how it treats an index it
cannot reach, hostile servers and zips, the diff, --write and the cache."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from envcheck.knowledge.refresh import Options, derive, refresh, tables
from envcheck.knowledge.refresh._http import Fetcher, FetchError
from envcheck.knowledge.refresh._zip import RemoteZip, ZipError

ROOT = Path(__file__).resolve().parents[2]
TODAY = "2026-12-07"

TORCH_COLUMNS = tables.SCHEMAS["torch_builds.csv"].columns
HAND = "PyTorch RELEASE.md (hand)"
HAND_TORCH = [
    # torch, cuda, cudnn, pypi_default, python_max, archs
    ("2.14", "12.6", "9.10.2.21", "0", "3.15", "sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90"),
    ("2.14", "13.2", "9.24.0.43", "1", "3.15", "sm_75 sm_80 compute_120"),
    ("2.14", "13.0", "9.24.0.43", "0", "3.15", ""),
    ("2.9", "12.8", "9.10.2.21", "1", "3.14", ""),
]
HAND_JAX = [
    {"extra": "cuda12", "cuda_major": "12", "min_driver": "525.60.13", "min_cc": "5.2"},
    {"extra": "cuda13", "cuda_major": "13", "min_driver": "580.65.06", "min_cc": "7.5", "first_jax": "0.7.2"},
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    torch = [
        dict(zip(("torch", "cuda", "cudnn", "pypi_default", "python_max", "archs"), row, strict=True))
        | {"status": "stable", "python_min": "3.10", "source": HAND, "as_of": "2026-11-22"}
        for row in HAND_TORCH
    ]
    (d / "torch_builds.csv").write_text(tables.render(tables.SCHEMAS["torch_builds.csv"], torch))
    jax = [r | {"source": "jax docs (hand)", "as_of": "2026-11-22"} for r in HAND_JAX]
    (d / "jax_cuda.csv").write_text(tables.render(tables.SCHEMAS["jax_cuda.csv"], jax))
    return d


def run(idx, data_dir: Path, variants: str | None, **kw: object):
    opts = Options(
        data_dir=data_dir, pypi=idx.base, pytorch_index=variants, cache_dir=kw.pop("cache", None), today=TODAY
    )
    for k, v in kw.items():
        setattr(opts, k, v)
    return refresh(opts)


def by_key(rows: list[dict[str, str]], *cols: str) -> dict[tuple[str, ...], dict[str, str]]:
    return {tuple(r[c] for c in cols): r for r in rows}


def test_torch_rows_come_from_the_wheels(kit, serve, closed_port, data_dir):
    idx = serve(kit.pypi_world())
    result = run(idx, data_dir, closed_port)
    rows = by_key(result.new["torch_builds.csv"], "torch", "cuda")
    t215 = rows[("2.15", "13.2")]
    assert (t215["cudnn"], t215["nccl"], t215["cuda_runtime"]) == ("9.26.0.51", "2.30.7", "13.2.2")
    assert t215["cublas"] == "13.4.1.3"  # followed through the cuda-toolkit==13.2.2 metapackage
    assert t215["archs"] == kit.FLAGS_2_14.decode()
    assert t215["pythons"] == "3.11 3.12 3.13 3.14 3.14t 3.15 3.15t"
    assert (t215["python_min"], t215["python_max"], t215["requires_python"]) == ("3.11", "3.15", ">=3.11")
    assert t215["pypi_default"] == "1" and t215["version"] == "2.15.0"
    served = idx.file(t215["artifact"])
    assert served is not None and t215["sha256"] == served.sha256
    assert t215["as_of"] == TODAY and "torch/lib/libtorch_python.so" in t215["source"]
    # the wheel plain `pip install torch==2.14.1` gets is +cu130 (cuda-toolkit 13.0.3), not 13.2
    t214 = rows[("2.14", "13.0")]
    assert (t214["pypi_default"], t214["cuda_runtime"], t214["python_max"]) == ("1", "13.0.3", "3.14")
    # release candidates, yanked files and macOS wheels are not read
    assert {r["torch"] for r in result.new["torch_builds.csv"]} == {"2.14", "2.15"}
    assert not any("rc1" in p or "macosx" in p or "2.14.0" in p for p, _ in idx.log)


def test_hand_rows_stay_marked_when_the_variant_index_cannot_be_reached(kit, serve, closed_port, data_dir):
    idx = serve(kit.pypi_world())
    result = run(idx, data_dir, closed_port)
    rows = by_key(result.new["torch_builds.csv"], "torch", "cuda")
    hand = rows[("2.14", "12.6")]
    assert hand["artifact"] == "" and hand["cudnn"] == "9.10.2.21"  # kept, never guessed
    assert (
        f"{derive.UNVERIFIED}: {closed_port}torch/ could not be reached (connection refused)"
        in hand["source"]
    )
    assert hand["source"].startswith("PyTorch RELEASE.md (hand)")
    # the artifact of the same release decides the Python range (no cp315 for 2.14)
    assert (hand["python_max"], hand["pythons"]) == ("3.14", "3.10 3.11 3.12 3.13 3.14 3.14t")
    # the committed PyPI-default claim (13.2) yields to the wheel (13.0); its label stays the hand one
    assert rows[("2.14", "13.2")]["pypi_default"] == "0"
    assert ("2.9", "12.8") not in rows  # a release no longer on the index is not kept
    assert result.log.indexes[closed_port] == "connection refused"
    cov = by_key(result.new["coverage.csv"], "table")[("torch_builds.csv",)]
    assert cov["releases"] == "2.14 2.15" and "connection refused" in cov["indexes_unreachable"]
    releases = by_key(result.new["torch_releases.csv"], "release")
    assert (
        releases[("2.15",)]["other_variants"] == "unknown" and releases[("2.14",)]["other_variants"] == "hand"
    )
    # running again on its own output changes nothing (the marker is replaced, not appended)
    for name, new in result.new.items():
        (data_dir / name).write_text(tables.render(tables.SCHEMAS[name], new))
    assert run(idx, data_dir, closed_port).changed() == []


def test_variant_rows_are_read_when_pytorch_index_answers(kit, serve, data_dir):
    pypi = serve(kit.pypi_world())
    variants = kit.Index(html=True)
    wheel = kit.torch_wheel("2.14.1", b"sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90")
    text = kit.recorded("torch-2.14.1.version_py").replace(b"'13.0'", b"'12.6'")
    cu126 = kit.make_wheel(
        {
            "torch-2.14.1+cu126.dist-info/METADATA": kit.recorded("torch-2.14.1.METADATA"),
            "torch/version.py": text,
            "torch/lib/libtorch_python.so": zipfile.ZipFile(io.BytesIO(wheel)).read(
                "torch/lib/libtorch_python.so"
            ),
        }
    )
    variants.add(
        "torch", kit.Served("torch-2.14.1+cu126-cp312-cp312-manylinux_2_28_x86_64.whl", cu126, ">=3.10")
    )
    serve(variants)
    base = variants.base.replace("/simple/", "/simple/")
    result = run(pypi, data_dir, base)
    row = by_key(result.new["torch_builds.csv"], "torch", "cuda")[("2.14", "12.6")]
    assert row["artifact"].startswith("torch-2.14.1+cu126") and row["pypi_default"] == "0"
    assert row["archs"] == "sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90"  # the hand row is replaced
    assert derive.UNVERIFIED not in row["source"]
    assert result.log.indexes[base] == ""


def test_only_byte_ranges_of_the_wheels_are_fetched(kit, serve, closed_port, data_dir):
    idx = serve(kit.pypi_world())
    result = run(idx, data_dir, closed_port)
    wheel = "torch-2.15.0-cp315-cp315-manylinux_2_28_x86_64.whl"
    requests = idx.wheel_requests(wheel)
    assert requests and all(r.startswith("bytes=") for r in requests)  # never the whole file
    # PEP 658: the index serves METADATA on its own, so the wheel is not opened for it
    assert ("/files/" + wheel + ".metadata", "") in idx.log
    total = sum(len(f.data) for fs in idx.projects.values() for f in fs)
    assert result.bytes_read < total / 3
    # the library is streamed and the download stopped at the flags string (2 MB of it unread)
    t214 = idx.file("torch-2.14.1-cp314-cp314-manylinux_2_28_x86_64.whl")
    assert t214 is not None
    assert result.bytes_read < 3 * len(t214.data)


def test_cache_makes_the_second_run_touch_no_wheel(kit, serve, closed_port, data_dir, tmp_path):
    idx = serve(kit.pypi_world())
    first = run(idx, data_dir, closed_port, cache=tmp_path / "cache")
    idx.log.clear()
    second = run(idx, data_dir, closed_port, cache=tmp_path / "cache")
    assert second.new == first.new
    assert second.cache_hits > 0
    assert [p for p, _ in idx.log if p.startswith("/files/")] == []


def test_tensorflow_and_jax_rows(kit, serve, closed_port, data_dir):
    idx = serve(kit.pypi_world())
    result = run(idx, data_dir, closed_port)
    [tf] = result.new["tensorflow_builds.csv"]
    assert (tf["tensorflow"], tf["cuda"], tf["cuda_build"]) == ("2.21.0", "12.5", "12.5.1")
    assert tf["archs"] == "sm_60 sm_70 sm_80 sm_89 compute_90"  # build_info.py
    assert (tf["cudnn"], tf["nccl"], tf["and_cuda"]) == ("9.3.0.75", "2.27.7", "1")  # >= bounds of and-cuda
    jax = by_key(result.new["jax_cuda.csv"], "extra")
    assert jax[("cuda12",)]["last_jax"] == "0.12.0.1" and jax[("cuda13",)]["last_jax"] == "0.12.1"
    assert jax[("cuda12",)]["min_driver"] == "525.60.13"  # the hand fact is kept
    assert jax[("cuda13",)]["cudnn"].startswith("<10") or ">=9" in jax[("cuda13",)]["cudnn"]
    releases = by_key(result.new["jax_releases.csv"], "jax")
    assert releases[("0.12.1",)]["cuda12"] == "0" and releases[("0.12.1",)]["cuda13"] == "1"
    assert releases[("0.11.2",)]["requires_python"] == ">=3.12"
    companions = by_key(result.new["torch_companions.csv"], "torch")
    assert companions[("2.14.0",)]["torchvision"] == "0.29.0"
    assert companions[("2.10.0",)]["torchaudio"] == "2.10.0"


def test_pypi_unreachable_is_an_error_not_empty_tables(kit, closed_port, data_dir):
    with pytest.raises(FetchError) as e:
        refresh(Options(data_dir=data_dir, pypi=closed_port, pytorch_index=None, today=TODAY))
    assert e.value.unreachable


def test_a_server_ignoring_ranges_is_refused(kit, serve, data_dir):
    world = kit.pypi_world()
    big = world.file("torch-2.15.0-cp315-cp315-manylinux_2_28_x86_64.whl")
    assert big is not None
    for f in world.projects["torch"]:
        f.ignore_range, f.metadata = True, None
    idx = serve(world)
    result = run(idx, data_dir, None, frameworks=("torch",))
    # no whole multi-MB wheel was read: the release is left out and the reason kit.recorded
    assert result.bytes_read < len(big.data)
    assert any("ignored the byte range" in p for p in result.log.problems)
    assert [r for r in result.new["torch_builds.csv"] if r["artifact"]] == []


@pytest.mark.parametrize(
    "data",
    [
        b"not a zip at all" * 10,
        b"PK\x05\x06" + b"\x00" * 18,  # an end record that points nowhere
        b"PK\x03\x04" + b"\x00" * 200 + b"PK\x05\x06\x00\x00",  # truncated inside the end record
    ],
)
def test_corrupt_wheels_become_notes(kit, serve, data_dir, data):
    world = kit.pypi_world()
    for f in world.projects["torch"]:
        f.data, f.metadata = data, None
    idx = serve(world)
    result = run(idx, data_dir, None, frameworks=("torch",))
    assert result.log.problems and all(r["artifact"] == "" for r in result.new["torch_builds.csv"])


def test_zip64_directories_are_read(kit, serve, monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # force the ZIP64 end records
    data = kit.make_wheel({"a/METADATA": b"Name: a\n", "b": kit.noise(5000, 9)})
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()
    idx = kit.Index()
    idx.add("x", kit.Served("x-1-py3-none-any.whl", data))
    serve(idx)
    url = idx.base.replace("/simple/", "/files/") + "x-1-py3-none-any.whl"
    z = RemoteZip(Fetcher(timeout=10), url)  # no size: a suffix range finds it
    assert z.read(z.members()["a/METADATA"]) == b"Name: a\n"


def test_unsupported_compression_is_refused(kit):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("m", b"x" * 100)

    class Local(Fetcher):
        def get_range(self, url, start, end):  # type: ignore[override]
            return buf.getvalue()[start : end + 1]

    z = RemoteZip(Local(), "mem://", len(buf.getvalue()))
    with pytest.raises(ZipError, match="compression method"):
        z.read(z.members()["m"])


def test_the_script_prints_a_diff_and_writes_only_when_asked(kit, serve, closed_port, data_dir, tmp_path):
    idx = serve(kit.pypi_world())
    before = (data_dir / "torch_builds.csv").read_text()
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "refresh_knowledge.py"),
        "--pypi",
        idx.base,
        "--pytorch-index",
        closed_port,
        "--data-dir",
        str(data_dir),
        "--no-cache",
    ]
    env = {"PATH": "/usr/bin:/bin", "PIP_CONSTRAINT": str(tmp_path / "c.txt")}
    (tmp_path / "c.txt").write_text("torch<=2.14.1\n")  # local pip caps do not apply to the index
    dry = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "+ torch=2.15 cuda=13.2:" in dry.stdout and "cudnn=9.26.0.51" in dry.stdout
    assert "~ torch=2.14 cuda=13.0: pypi_default 0 -> 1" in dry.stdout
    assert f"indexes not reachable: {closed_port}: connection refused" in dry.stdout
    assert "--write" in dry.stdout
    assert (data_dir / "torch_builds.csv").read_text() == before  # a dry run writes nothing
    wrote = subprocess.run(
        [*cmd, "--write"], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert wrote.returncode == 0, wrote.stderr
    rows = list(csv.DictReader(ln for ln in (data_dir / "torch_builds.csv").open() if not ln.startswith("#")))
    assert any(r["torch"] == "2.15" and r["cuda"] == "13.2" for r in rows)
    again = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert "torch_builds.csv: unchanged" in again.stdout
    down = subprocess.run(
        [*cmd[:2], "--pypi", closed_port, "--data-dir", str(data_dir), "--no-cache"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (
        down.returncode == 3 and "could not read the index" in down.stderr and "Traceback" not in down.stderr
    )
    bad = subprocess.run(
        [*cmd[:2], "--timeout", "nan"], check=False, capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
