"""--redact hides every home directory, whatever it is called; --markdown redacts by default."""

from __future__ import annotations

import os
import subprocess
import sys

from envcheck.models import (
    DiskInfo,
    DiskUsage,
    PythonEnv,
    Report,
    Snapshot,
    SystemInfo,
)
from envcheck.redact import redact


def _report(executable: str, home: str, cwd: str = "/srv/job") -> Report:
    return Report(
        tool_version="9.9",
        created_at="2026-11-22T00:00:00+00:00",
        snapshot=Snapshot(
            system=SystemInfo(
                hostname="gpu-box-17",
                python=PythonEnv(version="3.11.9", executable=executable),
                env={"VIRTUAL_ENV": os.path.dirname(os.path.dirname(executable))},
            ),
            disk=DiskInfo(disks=[DiskUsage(label="cwd", path=cwd), DiskUsage(label="home", path=home)]),
        ),
    )


def test_every_kind_of_home_is_hidden() -> None:
    cases = {
        "/root/.venv/bin/python": "/root",
        "/Users/alice/miniconda3/bin/python": "/Users/alice",
        "C:\\Users\\Bob\\venv\\Scripts\\python.exe": "C:\\Users\\Bob",
        "/data/scratch/carol/env/bin/python": "/data/scratch/carol",  # $HOME somewhere else
        "/home/dave/.venv/bin/python": "/home/dave",
    }
    for executable, home in cases.items():
        out = redact(_report(executable, home)).model_dump_json()
        stem = home.rstrip("/").replace("\\", "\\\\")
        assert stem not in out, (executable, out)
        assert "<home>" in out
    # "$HOME" known only from the caller (the report did not record a home disk)
    plain = _report("/opt/people/erin/env/bin/python", "/tmp")
    assert "/opt/people/erin" in redact(plain).model_dump_json()
    assert "/opt/people/erin" not in redact(plain, home="/opt/people/erin").model_dump_json()


def test_look_alikes_are_not_homes() -> None:
    out = redact(_report("/rootfs/usr/bin/python", "/root", cwd="/srv/root")).model_dump_json()
    assert "/rootfs/usr/bin/python" in out and "/srv/root" in out


def _envcheck(*args: str, home: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": home}
    return subprocess.run(
        [sys.executable, "-m", "envcheck", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=home,  # the disk rows then name the home directory
        check=False,
    )


def test_markdown_redacts_by_default_and_no_redact_keeps(tmp_path: object) -> None:
    import socket

    host = socket.gethostname()
    home = str(tmp_path)
    md = _envcheck("--markdown", home=home)
    assert md.returncode in (0, 1), md.stderr
    assert home not in md.stdout and (len(host) < 3 or host not in md.stdout)
    kept = _envcheck("--markdown", "--no-redact", "-v", home=home)
    assert home in kept.stdout  # the home disk row
    table = _envcheck("-v", home=home)  # the table is for this user: nothing hidden unless --redact
    assert host in table.stdout
