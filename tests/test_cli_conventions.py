"""What both commands promise alike: one-line usage errors, exit codes, debug tracebacks, --version,
-h, completion, environment variables for options, schema_version, escaped user values,
"cancelled", and live progress only on a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import typer
import typer.main

from envcheck.clirun import outcome
from provision.errors import ProvisionError

COMPLETION = ("install_completion", "show_completion")
SMOKE_FAKES = Path(__file__).parent / "fixtures" / "smoke"


def run(prog: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", prog, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("prog", "args"),
    [
        ("envcheck", ["--bogus"]),
        ("envcheck", ["--timeout", "nan"]),
        ("envcheck", ["--timeout", "inf"]),
        ("envcheck", ["--timeout", "1e10"]),
        ("envcheck", ["--deep-timeout", "1e12"]),
        ("envcheck", ["smoke", "--timeout", "-inf"]),
        ("envcheck", ["bench", "--timeout", "nan"]),
        ("envcheck", ["schema", "--for", "nope"]),
        ("provision", ["bogus"]),
        ("provision", ["image", "build", "-t", "BAD TAG!!"]),
        ("provision", ["image", "build", "--timeout", "nan"]),
        ("provision", ["image", "test", "x", "--timeout", "inf"]),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(prog: str, args: list[str]) -> None:
    proc = run(prog, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and len(lines) <= 2, proc.stderr  # error (+ hint), no box
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr and "╭" not in proc.stderr


def test_environment_values_are_checked_like_options() -> None:
    proc = run("envcheck", env={"ENVCHECK_TIMEOUT": "1e308"})
    assert proc.returncode == 2 and "above the limit" in proc.stderr and "Traceback" not in proc.stderr


def test_provision_debug_shows_the_traceback_and_envcheck_debug_too() -> None:
    plain = run("provision", "image", "plan", "-f", "torch==2.6", "--cuda", "12.8")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = run(
        "provision", "image", "plan", "-f", "torch==2.6", "--cuda", "12.8", env={"PROVISION_DEBUG": "1"}
    )
    assert "Traceback" in debug.stderr and "UsageError" in debug.stderr
    debug = run("envcheck", "diagnose", "/nonexistent", env={"ENVCHECK_DEBUG": "1"})
    assert "Traceback" in debug.stderr


def test_version_help_and_completion_for_both() -> None:
    from envcheck import __version__

    assert run("provision", "--version").stdout.strip().startswith(f"provision {__version__}")
    assert run("envcheck", "--version").stdout.strip() == f"envcheck {__version__}"
    for prog in ("envcheck", "provision"):
        assert "Usage" in run(prog, "-h").stdout
        # typer detects the shell from the parent processes (none when the suite runs detached);
        # with detection off, the shell is the option's value, as a user's shell would pass it
        completion = run(
            prog, "--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
        )
        assert completion.returncode == 0 and f"_{prog.upper()}_COMPLETE" in completion.stdout


def _options(app: typer.Typer, under: tuple[str, ...] = ()) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []

    def walk(cmd: object, path: str) -> None:
        for p in getattr(cmd, "params", []):
            if p.param_type_name == "option" and p.name not in ("help", "version", *COMPLETION):
                found.append((f"{path} {p.opts[0]}", p))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "")
    return [(path, p) for path, p in found if not under or path.split()[0] in under]


def test_the_readme_claim_about_environment_variables_holds() -> None:
    from envcheck.cli import app as envcheck_app
    from provision.cli import app as provision_app

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "Every envcheck option (but" in readme and "`ls`, `ssh`, `down` and `gc` (`PROVISION_*`)" in readme
    from envcheck.cluster.command import sub_app

    missing = [path for path, p in _options(envcheck_app) if not p.envvar]  # type: ignore[attr-defined]
    missing += [f"cluster{path}" for path, p in _options(sub_app("cluster")) if not p.envvar]  # type: ignore[attr-defined]
    missing += [
        f"provision{path}"
        for path, p in _options(provision_app, ("image", "up", "ls", "ssh", "down", "gc"))
        if not p.envvar  # type: ignore[attr-defined]
    ]
    assert missing == []
    # and they really are read: a flag from its variable
    proc = run("envcheck", "rules", env={"ENVCHECK_JSON": "1"})
    assert re.fullmatch(r"\d+\.\d+", json.loads(proc.stdout)["schema_version"])


def test_every_json_output_has_a_schema_version_string(tmp_path: Path) -> None:
    saved = tmp_path / "r.json"
    report = run("envcheck", "--json", "-o", str(saved))
    docs = {
        "report": json.loads(report.stdout),
        "rules": json.loads(run("envcheck", "rules", "--json").stdout),
        "diff": json.loads(run("envcheck", "diff", str(saved), str(saved), "--json").stdout),
        "smoke": json.loads(
            run(
                "envcheck",
                "smoke",
                "-f",
                "jax",
                "--json",
                env={"PYTHONPATH": str(SMOKE_FAKES / "not_installed")},
            ).stdout
        ),
        "plan": json.loads(run("provision", "image", "plan", "-f", "jax", "--cuda", "cpu", "--json").stdout),
    }
    for name, doc in docs.items():
        assert isinstance(doc, dict) and re.fullmatch(r"\d+\.\d+", doc.get("schema_version", "")), name


def test_user_values_are_printed_as_given_never_as_markup_or_emoji() -> None:
    proc = run("envcheck", "diagnose", "[red]root:x:0:0[/red]")
    assert proc.returncode == 2
    assert "[red]root:x:0:0[/red]: no such file" in proc.stderr
    proc = run("envcheck", "smoke", "-f", "[bold]root:x:0[/bold]")
    assert "'[bold]root:x:0[/bold]'" in proc.stderr and "❌" not in proc.stderr


def test_declining_a_prompt_says_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    from provision.commands import cloud

    app = typer.Typer()

    @app.command()
    def down() -> None:
        cloud._confirm("Terminate and remove gpu-box?", yes=False)

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: False)
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = outcome(app, [], prog="provision", errors=(ProvisionError,), debug_var="X")
    assert code == 1 and err.getvalue().strip() == "cancelled"


def _on_a_terminal(args: list[str], env: dict[str, str], seconds: float) -> str:
    """stderr of ``envcheck ARGS`` when stderr is a terminal (a pty), everything it drew."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "envcheck", *args],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100", **env},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
        elif proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    os.close(master)
    return seen.decode(errors="replace")


def test_live_progress_on_a_terminal_and_nothing_extra_when_piped() -> None:
    hanging = {"PYTHONPATH": str(SMOKE_FAKES / "hang_mid")}  # a torch that hangs in its 4th test
    drawn = _on_a_terminal(["smoke", "-f", "torch", "--timeout", "3"], hanging, 30)
    assert "envcheck smoke" in drawn and "torch:" in drawn  # what runs ...
    assert re.search(r"\d+\.\d s", drawn)  # ... and for how long
    piped = run("envcheck", "smoke", "-f", "torch", "--timeout", "3", env=hanging)
    assert "envcheck smoke ·" not in piped.stderr and "torch:" not in piped.stderr
    assert piped.stderr.strip().splitlines()[-1].startswith("")  # only the summary line


def test_deep_shows_each_framework_while_it_imports() -> None:
    hanging = {"PYTHONPATH": str(Path(__file__).parent / "fixtures" / "signals")}
    drawn = _on_a_terminal(["--deep", "--deep-timeout", "2"], hanging, 30)
    assert "envcheck --deep" in drawn and "torch: import" in drawn


@pytest.mark.parametrize(
    ("prog", "args"), [("provision", ["gpus", "--all"]), ("envcheck", ["rules"]), ("provision", ["catalog"])]
)
def test_a_reader_that_goes_away_is_not_a_failure(prog: str, args: list[str]) -> None:
    """`provision gpus --all | head -1`: rich exits 1 on a closed pipe; the command did its job."""
    child = subprocess.Popen(
        [sys.executable, "-m", prog, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.readline()
    child.stdout.close()  # what `head -1` does after its line
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, err
    assert "Traceback" not in err
