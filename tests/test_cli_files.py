"""Files named on the command line behave as a shell redirect would (envcheck.userfiles, -o)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from envcheck.userfiles import ReadFailed, WriteFailed, check_writable, read_bytes, write_text


def envcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_output_through_a_symlink_changes_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    link.symlink_to(real)
    proc = envcheck("--json", "-o", str(link))
    assert proc.returncode in (0, 1), proc.stderr
    assert link.is_symlink() and json.loads(real.read_text())["schema_version"].startswith("1.")
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "created-by-the-write.json")
    assert envcheck("--json", "-o", str(dangling)).returncode in (0, 1)
    assert dangling.is_symlink() and (tmp_path / "created-by-the-write.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_output_to_devices_is_written_not_replaced() -> None:
    full = envcheck("--json", "-o", "/dev/full")
    assert full.returncode == 3 and "Traceback" not in full.stderr
    assert full.stderr.strip() == "error: cannot write /dev/full: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device, not a regular file
    out = envcheck("--json", "-o", "/dev/stdout")
    assert out.returncode in (0, 1) and out.stdout.count('"schema_version"') == 2  # the file and the report


def test_output_to_a_directory_or_nowhere_is_one_line_before_any_probing(tmp_path: Path) -> None:
    for target in ("/", str(tmp_path / "missing-dir" / "r.json"), str(tmp_path / "file" / "below")):
        (tmp_path / "file").write_text("")
        proc = envcheck("-o", target)
        assert proc.returncode == 2, (target, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


def test_a_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    write_text(target, "new\n")
    assert target.read_text() == "new\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_fifo_is_written_like_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_text(fifo, "through the pipe\n")
    reader.join(10)
    assert got == [b"through the pipe\n"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_unwritable_places_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(WriteFailed, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(WriteFailed, match="no such directory"):
        check_writable(tmp_path / "nope" / "x.png")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(WriteFailed, match=r"cannot write .*loop"):
        write_text(loop, "x")
    check_writable(tmp_path / "fine.png")
    assert not (tmp_path / "fine.png").exists()  # checking creates nothing


def test_reading_is_bounded_so_endless_devices_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReadFailed, match="larger than"):
        read_bytes("/dev/zero", limit=1 << 20)
    small = tmp_path / "r.json"
    small.write_text("{}")
    assert read_bytes(small) == b"{}"
    proc = envcheck("diagnose", "/dev/zero")  # read up to a bound, then judged: not a report
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_bench_plot_path_is_checked_before_measuring(tmp_path: Path) -> None:
    proc = envcheck(
        "bench", "--quick", "--backend", "numpy", "--plot", str(tmp_path / "no" / "such" / "x.png")
    )
    assert proc.returncode == 2 and "no such directory" in proc.stderr
    assert proc.stdout == ""  # nothing was measured
