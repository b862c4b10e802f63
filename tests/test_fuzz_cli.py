"""Every command and option of ``envcheck`` and ``provision``, fed hostile values: no traceback.

The command tree is walked, not listed, so a new command or option is fuzzed the day it lands.
Each option gets values chosen for its type (NaN, infinities, negative, huge and empty numbers;
empty, markup, ``/etc/passwd``'s contents, symlink loops, devices, UTF-16 and binary files for
strings and paths; unknown choices): the worst always, a random few of the others (``FUZZ_SEED``
repeats a run), one option at a time on top of a cheap, harmless base invocation. Every run
goes through ``envcheck.clirun.outcome``, the same code the console scripts run, in-process;
the machine is fenced off: no cloud credentials or metadata servers, no Docker engine, price
endpoints on a closed loopback port, fake frameworks that are not installed, state, home and
ssh config in a temp dir, and paths that write only point there.

Asserted for every run: the exit code is 0, 1, 2 or 3; no traceback and no "internal error"; a
value echoed back is printed as given (Rich markup not interpreted, ``:x:`` not an emoji).
Numeric options of the commands named in ``STRICT`` must refuse NaN, infinities and absurd
magnitudes with exit 2.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from envcheck.clirun import outcome
from envcheck.errors import EnvcheckError
from provision.errors import ProvisionError

FAKE_FRAMEWORKS = Path(__file__).parent / "fixtures" / "smoke" / "not_installed"
MARK = "[bold red]FUZZMARK[/bold red]"
PASSWD = "root:x:0:0:root:/root:/bin/bash"
NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e308", "1e-320", "", "0x10", "12abc"]
#: commands whose numeric options must reject non-finite and absurd values (exit 2)
STRICT = {
    "envcheck",
    "envcheck smoke",
    "envcheck bench",
    "provision image build",
    "provision image test",
}
#: a base invocation per command that is harmless and quick (options are fuzzed on top of it)
BASE: dict[str, list[str]] = {
    "envcheck": ["--timeout", "3", "--json"],
    "envcheck diagnose": ["{report}"],
    "envcheck diff": ["{report}", "{report}"],
    "envcheck smoke": ["--timeout", "20"],
    "envcheck bench": ["--quick", "--backend", "torch", "--timeout", "30"],
    "provision catalog refresh": ["--cloud", "aws", "--output", "{tmp}/catalog"],
    "provision image render": ["-o", "{tmp}/ctx", "-f", "torch==2.6", "--cuda", "cpu", "--no-lint"],
    "provision image build": ["{tmp}/ctx"],
    "provision image test": ["local/none:1"],
    "provision ssh": ["no-such-machine"],
    "provision up": ["--gpu", "A10G:1", "--dry-run"],
}
#: option names that write to the path they are given: only temp-dir paths (and devices) for them
WRITES = {"output", "plot", "setup"}


@dataclass(frozen=True)
class Case:
    command: str
    args: list[str]
    param: str
    value: str


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "loop").symlink_to(tmp / "loop")
    (tmp / "utf16.txt").write_bytes("PyTorch version: 2.1.0+cpu\r\n".encode("utf-16"))
    (tmp / "binary.bin").write_bytes(bytes(range(256)) * 16)
    (tmp / "passwd-copy").write_text(PASSWD + "\n")
    (tmp / "a-dir").mkdir()
    (tmp / "a-file").write_text("x")
    return {
        "loop": str(tmp / "loop"),
        "utf16": str(tmp / "utf16.txt"),
        "binary": str(tmp / "binary.bin"),
        "passwd": str(tmp / "passwd-copy"),
        "dir": str(tmp / "a-dir"),
        "in-a-file": str(tmp / "a-file" / "below"),
        "dangling": str(tmp / "missing" / "deeper" / "x"),
    }


def _values(param: Any, files: dict[str, str], rng: random.Random) -> list[str]:
    """Hostile values for one parameter, by its type and by whether it writes: the worst ones
    always, and a random few of the rest (the seed is in the failure message)."""
    kind = type(param.type).__name__
    if kind in ("FloatParamType", "FloatRange", "IntParamType", "IntRange"):
        always, pool = ["nan", "inf", "1e308"], NUMBERS
    elif kind == "TyperChoice":
        always, pool = ["bogus", "", MARK], []
    else:
        writes = param.name in WRITES or (kind == "TyperPath" and param.name == "output")
        paths = [
            files["loop"],
            files["in-a-file"],
            files["dangling"],
            files["dir"],
            "/dev/full",
            "/dev/null",
            "",
        ]
        readers = [files["utf16"], files["binary"], files["passwd"], "/etc/passwd", "/dev/zero", "/", "-"]
        if writes:
            always, pool = [files["loop"], "/dev/full", MARK], paths
        elif kind == "TyperPath":
            always, pool = [files["loop"], "/dev/zero", files["utf16"]], [*paths, *readers]
        else:
            always = [MARK, PASSWD, ""]
            pool = ["x" * 3000, "-1", "nan", "../../../../etc/passwd", *readers]
    rest = [v for v in pool if v not in always]
    return always + rng.sample(rest, min(3, len(rest)))


def _commands() -> Iterator[tuple[str, Any]]:
    from envcheck.cli import app as envcheck_app
    from provision.cli import app as provision_app

    def walk(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
        if any(p.param_type_name in ("option", "argument") and p.name != "help" for p in cmd.params):
            yield path, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, f"{path} {name}")

    yield from walk(typer.main.get_command(envcheck_app), "envcheck")
    yield from walk(typer.main.get_command(provision_app), "provision")


_SKIP = {"help", "version", "install_completion", "show_completion"}


def _cases(tmp: Path, files: dict[str, str], rng: random.Random) -> list[Case]:
    cases = []
    for path, cmd in _commands():
        base = [a.format(tmp=tmp, report=files["utf16"]) for a in BASE.get(path, [])]
        for param in cmd.params:
            if param.name in _SKIP:
                continue
            if getattr(param, "is_flag", False) or type(param.type).__name__ == "BoolParamType":
                cases.append(Case(path, [*base, param.opts[0]], param.name, "<flag>"))
                continue
            for value in _values(param, files, rng):
                if param.param_type_name == "argument":
                    # replace the base's positional arguments: the fuzzed one goes first
                    positional = [value] * max(1, param.nargs if param.nargs > 0 else 1)
                    rest = [a for a in base if a.startswith("-")]
                    others = [a for a in base if not a.startswith("-")][len(positional) :]
                    cases.append(Case(path, [*rest, "--", *positional, *others], param.name, value))
                else:
                    cases.append(Case(path, [*base, param.opts[0], value], param.name, value))
    return cases


@pytest.fixture
def fenced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No cloud, no engine, no network beyond a closed loopback port; home and state in tmp."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connections are refused at once
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_", "ENVCHECK_", "PROVISION_", "DOCKER_")):
            monkeypatch.delenv(name)
    env = {
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "GCE_METADATA_HOST": f"127.0.0.1:{port}",
        "GCE_METADATA_IP": f"127.0.0.1:{port}",
        "NO_GCE_CHECK": "True",
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        "PROVISION_STATE_DIR": str(tmp_path / "state"),
        "PROVISION_SSH_CONFIG": str(tmp_path / "ssh_config"),
        "PROVISION_AWS_PRICING_ENDPOINT": f"http://127.0.0.1:{port}",
        "PROVISION_GCP_BILLING_ENDPOINT": f"http://127.0.0.1:{port}",
        "PROVISION_GCP_COMPUTE_ENDPOINT": f"http://127.0.0.1:{port}",
        "PROVISION_GCP_TPU_ENDPOINT": f"http://127.0.0.1:{port}",
        "PYTHONPATH": os.pathsep.join([str(FAKE_FRAMEWORKS), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "80",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(case: Case) -> tuple[int, str, str]:
    from envcheck.cli import app as envcheck_app
    from provision.cli import app as provision_app

    app, errors, debug = (
        (envcheck_app, (EnvcheckError,), "ENVCHECK_DEBUG")
        if case.command.startswith("envcheck")
        else (provision_app, (ProvisionError,), "PROVISION_DEBUG")
    )
    words = case.command.split()[1:]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = outcome(
            app, [*words, *case.args], prog=case.command.split()[0], errors=errors, debug_var=debug
        )
    return code, out.getvalue(), err.getvalue()


def _check(case: Case, code: int, out: str, err: str) -> list[str]:
    problems = []
    both = out + err
    if code not in (0, 1, 2, 3):
        problems.append(f"exit {code}")
    if "Traceback" in both or "internal error" in err:
        problems.append("traceback: " + err.strip().splitlines()[-1] if err.strip() else "traceback")
    if "FUZZMARK" in both and "[bold red]FUZZMARK" not in both:
        problems.append("Rich markup in a user value was interpreted")
    if "root❌" in both or ("0:0:root" in both and "root:x:0:0" not in both):
        problems.append("':x:' in a user value became an emoji")
    number = case.value in ("nan", "inf", "-inf", "1e308")
    if case.command in STRICT and number and code != 2 and (case.command, case.param) in _numeric():
        problems.append(f"non-finite or absurd {case.value} accepted (exit {code})")
    return problems


@functools.cache
def _numeric() -> frozenset[tuple[str, str]]:
    """(command, parameter) of every numeric option."""
    kinds = ("FloatParamType", "FloatRange", "IntParamType", "IntRange")
    return frozenset(
        (path, p.name) for path, cmd in _commands() for p in cmd.params if type(p.type).__name__ in kinds
    )


def test_every_command_and_option_survives_hostile_values(fenced: Path) -> None:
    seed = int(os.environ.get("FUZZ_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    files = _files(fenced)
    cases = _cases(fenced, files, rng)
    assert len({c.command for c in cases}) >= 20 and len(cases) > 400  # the walk really found the tree
    rng.shuffle(cases)  # no order dependence between runs
    failures = []
    trace = os.environ.get("FUZZ_TRACE")
    for case in cases:
        started = time.perf_counter()
        code, out, err = _run(case)
        if trace:
            with open(trace, "a") as f:
                f.write(
                    f"{time.perf_counter() - started:.3f}\t{case.command}\t{case.param}\t{case.value[:30]}\n"
                )
        for problem in _check(case, code, out, err):
            failures.append(f"{case.command} {' '.join(case.args)!r}: {problem}")
    assert not failures, (
        f"{len(failures)} of {len(cases)} runs failed (FUZZ_SEED={seed} repeats this run):\n"
        + "\n".join(failures[:60])
    )
