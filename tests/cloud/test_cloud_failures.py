"""Signals, a store that fails, hostile answers, exit codes: the real CLI against moto and the fake.

Each test reproduces a defect of issue 9 (or an item of issue 14) named in its docstring: it failed
on the release that had the defect and passes now. No answer may end in a traceback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _kit import cli_env, finish, spawn_cli, wait_until

UP = ["up", "--wait", "running", "--yes"]


def _run_script(script: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -c script args...``: the CLI started by a wrapper that tampers with the imports."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _clean(err: str) -> None:
    """No traceback and no bare exception line (``KeyError: ...``) on stderr."""
    assert "Traceback" not in err, err
    assert not re.search(r"^[\w.]+(Error|Exception|Interrupt): ", err, re.MULTILINE), err


# --------------------------------------------------------------------------- 6: every signal cleans up
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_every_signal_mid_launch_cleans_up(
    sig: signal.Signals, code: int, cloud_env: dict[str, str], moto_server: Any, leaks: Any
) -> None:
    """Defect 6: SIGTERM and SIGHUP killed `up` with no cleanup and no message."""
    # the instance is made and its answer held until the signal has landed (a fixed delay lost the
    # race on a loaded machine: the launch finished first and the signal met a process on its way out)
    moto_server.faults.inject(action="RunInstances", delay_after=45.0)
    proc = spawn_cli([*UP, "--gpu", "A10G:1", "--name", "sig"], cloud_env)
    wait_until(lambda: "RunInstances" in moto_server.faults.log, what="RunInstances")
    time.sleep(0.3)
    assert leaks()  # the instance exists, its answer is on the way
    proc.send_signal(sig)
    rc, _, err = finish(proc)
    assert rc == code, err
    assert "removing what was created" in err
    _clean(err)
    assert leaks() == []


def test_a_second_signal_leaves_a_resumable_record_and_says_so(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], moto_server: Any, leaks: Any
) -> None:
    """Scope: a second signal during cleanup stops it, records what is left and names `down`."""
    moto_server.faults.inject(action="RunInstances", delay_after=45.0)
    moto_server.faults.inject(action="TerminateInstances", delay_before=30.0)
    proc = spawn_cli([*UP, "--gpu", "A10G:1", "--name", "twice"], cloud_env)
    wait_until(lambda: "RunInstances" in moto_server.faults.log, what="RunInstances")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "TerminateInstances" in moto_server.faults.log, what="cleanup")
    proc.send_signal(signal.SIGTERM)
    rc, _, err = finish(proc)
    moto_server.faults.clear()
    assert rc == 143, err
    assert "provision down twice" in err and "second" in err
    _clean(err)
    assert leaks()  # left on purpose: the record says what
    ls = json.loads(cli(["ls", "--json"]).stdout)
    (m,) = ls["machines"]
    assert m["status"] == "cleanup-incomplete" and "provision down twice" in (m["note"] or "")
    down = cli_here(["down", "twice", "--yes"])
    assert down.returncode == 0, down.stderr
    assert leaks() == []


_IMPORT_INTERRUPT = textwrap.dedent(
    """
    import os, signal, sys, importlib.abc, importlib.machinery, runpy

    MODULE = sys.argv[1]

    class Interrupt(importlib.abc.MetaPathFinder):
        # Ctrl-C as the last line of MODULE runs: its protos are registered in the global pool, yet
        # the import fails, so importing it again raises "duplicate symbol" (what broke cleanup)
        fired = False
        def find_spec(self, name, path, target=None):
            if name != MODULE or Interrupt.fired:
                return None
            Interrupt.fired = True
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            run = spec.loader.exec_module
            def run_then_interrupt(module):
                run(module)
                os.kill(os.getpid(), signal.SIGINT)
            spec.loader.exec_module = run_then_interrupt
            return spec

    sys.meta_path.insert(0, Interrupt())
    sys.argv = ["provision", *sys.argv[2:]]
    runpy.run_module("provision", run_name="__main__")
    """
)


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("google.cloud.compute_v1.types.compute", ["--cloud", "gcp", "--gpu", "T4:1"]),
        ("google.cloud.tpu_v2.types.cloud_tpu", ["--cloud", "gcp", "--tpu", "v5e-8"]),
    ],
)
def test_ctrl_c_inside_the_google_cloud_import_exits_130_and_leaves_the_name_free(
    cli_here: Any, module: str, args: list[str], cli: Any, cloud_env: dict[str, str], leaks: Any
) -> None:
    """Defect 9: Ctrl-C inside the google-cloud import broke cleanup: exit 3, the name blocked."""
    proc = _run_script(_IMPORT_INTERRUPT, [module, *UP, *args, "--name", "early"], cloud_env)
    assert proc.returncode == 130, proc.stderr
    _clean(proc.stderr)
    again = cli_here([*UP, *args, "--name", "early"])
    assert again.returncode == 0, again.stderr
    assert cli_here(["down", "early", "--yes"]).returncode == 0
    assert leaks() == []


# ----------------------------------------------------------------- 4: the store never blocks cleanup
def test_a_locked_store_mid_launch_does_not_stop_cleanup(
    cloud_env: dict[str, str], moto_server: Any, leaks: Any
) -> None:
    """Defect 4: a failed store write mid-launch skipped cleanup (traceback, exit 1, all left)."""
    env = {**cloud_env, "PROVISION_STORE_TIMEOUT": "1"}
    moto_server.faults.inject(action="RunInstances", delay_after=3.0)
    proc = spawn_cli([*UP, "--gpu", "A10G:1", "--name", "locked"], env)
    wait_until(lambda: "RunInstances" in moto_server.faults.log, what="RunInstances")
    db = sqlite3.connect(Path(cloud_env["PROVISION_STATE_DIR"]) / "state.db", isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")  # someone holds the store: every write of `up` times out
    try:
        rc, _, err = finish(proc, timeout=90)
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert rc == 3, err
    _clean(err)
    assert "could not record" in err
    assert leaks() == []


def test_a_corrupt_store_is_one_line_and_exit_3(cli_here: Any, cli: Any, cloud_env: dict[str, str]) -> None:
    """Defect 10: corrupt store pages gave a raw traceback."""
    assert cli_here([*UP, "--gpu", "A10G:1", "--name", "pages"]).returncode == 0
    assert cli_here(["down", "pages", "--yes"]).returncode == 0
    db = Path(cloud_env["PROVISION_STATE_DIR"]) / "state.db"
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for n in range(1, len(data) // page):
        data[n * page : n * page + 64] = b"\xff" * 64  # every page after the header is damaged
    db.write_bytes(bytes(data))
    for args in (["ls"], ["down", "pages", "--yes"], ["gc"], [*UP, "--gpu", "A10G:1"]):
        proc = cli(args)
        assert proc.returncode == 3, (args, proc.stderr)
        _clean(proc.stderr)
        assert "state" in proc.stderr
    db.write_bytes(b"this is not a database at all" * 100)
    proc = cli(["ls"])
    assert proc.returncode == 3 and "state" in proc.stderr
    _clean(proc.stderr)


# --------------------------------------------------------------------------- 10: every answer is mapped
def test_malformed_xml_from_ec2_is_one_line(cli_here: Any, cli: Any, moto_server: Any) -> None:
    """Defect 10: a malformed XML answer gave a raw traceback."""
    assert cli_here([*UP, "--gpu", "A10G:1", "--name", "xml"]).returncode == 0
    moto_server.faults.inject(action="DescribeInstances", malformed=True, times=50)
    for args in (["ls"], ["gc", "--cloud", "aws"]):
        proc = cli(args)
        assert proc.returncode == 3, (args, proc.stderr)
        _clean(proc.stderr)
    moto_server.faults.clear()
    assert cli_here(["down", "xml", "--yes"]).returncode == 0


def test_500s_that_outlast_retries_while_waiting_fail_cleanly_and_clean_up(
    cli_here: Any, cli: Any, moto_server: Any, leaks: Any
) -> None:
    """Defect 10: 500s that outlasted botocore's retries during the wait gave a traceback."""
    # the wait polls by instance id; 4 answers outlast botocore's 4 attempts, then AWS recovers
    moto_server.faults.inject(
        action="DescribeInstances", code="InternalError", status=500, times=4, match="InstanceId"
    )
    proc = cli([*UP, "--gpu", "A10G:1", "--name", "flaky"])
    assert proc.returncode == 3, proc.stderr
    _clean(proc.stderr)
    assert "InternalError" in proc.stderr
    leftover = cli_here(["down", "flaky", "--yes"])  # whatever cleanup could not do while AWS failed
    assert leftover.returncode == 0, leftover.stderr
    assert leaks() == []


def test_describe_key_pairs_500_in_ls_and_gc(cli_here: Any, cli: Any, moto_server: Any) -> None:
    """Defect 10/11: a DescribeKeyPairs 500 in ls/gc gave a traceback; gc said "done", exit 0."""
    assert cli_here([*UP, "--gpu", "A10G:1", "--name", "kp"]).returncode == 0
    moto_server.faults.inject(action="DescribeKeyPairs", code="InternalError", status=500, times=100)
    ls = cli(["ls"])
    assert ls.returncode == 3 and "kp" in ls.stdout
    _clean(ls.stderr)
    gc = cli(["gc", "--yes"])
    assert gc.returncode == 3, gc.stderr
    _clean(gc.stderr)
    assert "done" not in gc.stderr
    moto_server.faults.clear()
    assert cli_here(["down", "kp", "--yes"]).returncode == 0


@pytest.mark.parametrize("fault", ["zones_list", "instance_get"])
def test_google_answers_that_fail_are_one_line(
    cli_here: Any, fault: str, cli: Any, gcp_server: Any, leaks: Any
) -> None:
    """Defect 10: a 404 from the zone list and malformed JSON answers gave a traceback."""
    if fault == "zones_list":
        gcp_server.inject(op=fault, kind="http", status=404, message="zones not found", times=100)
    else:
        gcp_server.inject(op=fault, kind="malformed", times=100)
    proc = cli([*UP, "--cloud", "gcp", "--gpu", "T4:1", "--name", "gbad"])
    assert proc.returncode == 3, proc.stderr
    _clean(proc.stderr)
    with gcp_server.lock:
        gcp_server.state.faults.clear()
    cli_here(["down", "gbad", "--yes"])
    assert leaks() == []


def test_malformed_google_listings_in_ls_and_gc_are_one_line(
    cli_here: Any, cli: Any, gcp_server: Any
) -> None:
    """Defect 10: malformed JSON from the instance list gave a traceback in ls and gc."""
    assert cli_here([*UP, "--cloud", "gcp", "--gpu", "T4:1", "--name", "glist"]).returncode == 0
    gcp_server.inject(op="instances_list", kind="malformed", times=100)
    for args in (["ls"], ["gc", "--cloud", "gcp"]):
        proc = cli(args)
        assert proc.returncode == 3, (args, proc.stderr)
        _clean(proc.stderr)
    with gcp_server.lock:
        gcp_server.state.faults.clear()
    assert cli_here(["down", "glist", "--yes"]).returncode == 0


# --------------------------------------------------------------------------- 11: honest exit codes
def test_gc_that_could_not_list_a_cloud_exits_3(cli: Any, moto_server: Any) -> None:
    """Defect 11: gc exited 0 and said "done" when it could not list a cloud."""
    moto_server.faults.inject(action="DescribeInstances", code="InternalError", status=500, times=1000)
    proc = cli(["gc", "--yes"])
    moto_server.faults.clear()
    assert proc.returncode == 3, proc.stderr
    assert "done" not in proc.stderr and "aws" in proc.stderr
    _clean(proc.stderr)


def test_gc_of_a_cloud_without_credentials_exits_3(
    cli: Any, cloud_env: dict[str, str], tmp_path: Path
) -> None:
    """Defect 11: gc exited 0 when it had no credentials for the cloud it was asked to sweep."""
    env = {k: v for k, v in cloud_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    proc = cli(["gc", "--cloud", "aws", "--yes"], env=env)
    assert proc.returncode == 3, proc.stderr
    assert "aws configure" in proc.stderr and "done" not in proc.stderr
    _clean(proc.stderr)


def test_down_without_credentials_keeps_the_hint(cli_here: Any, cli: Any, cloud_env: dict[str, str]) -> None:
    """Defect 11: `down` without credentials dropped the hint."""
    assert cli_here([*UP, "--gpu", "A10G:1", "--name", "nocred"]).returncode == 0
    env = {k: v for k, v in cloud_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    proc = cli(["down", "nocred", "--yes"], env=env)
    assert proc.returncode == 3 and "aws configure" in proc.stderr
    _clean(proc.stderr)
    assert cli_here(["down", "nocred", "--yes"]).returncode == 0


def test_failed_public_ip_lookup_is_could_not_run(cli: Any, cloud_env: dict[str, str], leaks: Any) -> None:
    """Defect 11: a failed public-IP lookup exited 2 (usage) where "could not run" is 3."""
    proc = cli([*UP, "--gpu", "A10G:1"], env={**cloud_env, "PROVISION_IP_URL": "http://127.0.0.1:9/"})
    assert proc.returncode == 3 and "--ssh-cidr" in proc.stderr
    _clean(proc.stderr)
    assert leaks() == []


# --------------------------------------------------------------------------- 8: --ssh-cidr validated
@pytest.mark.parametrize("cidr", ["1.2.3.4/0", "0.0.0.0/1", "5.6.7.8/0", "0.0.0.0/0", "10.0.0.0/7", "::/0"])
def test_ssh_open_to_a_huge_range_is_refused_without_the_explicit_flag(cidr: str) -> None:
    """Defect 8: --ssh-cidr 1.2.3.4/0, 0.0.0.0/1, 5.6.7.8/0 opened SSH to the world silently."""
    from provision.errors import UsageError
    from provision.planning import ssh_cidr

    with pytest.raises(UsageError) as info:
        ssh_cidr(cidr)
    assert "--allow-ssh-from-anywhere" in (info.value.hint or "")
    assert ssh_cidr(cidr, allow_anywhere=True).endswith(("/0", "/1", "/7"))


@pytest.mark.parametrize(
    ("cidr", "want"),
    [("203.0.113.7", "203.0.113.7/32"), ("203.0.113.7/24", "203.0.113.0/24"), ("10.0.0.0/8", "10.0.0.0/8")],
)
def test_ssh_cidr_is_normalised(cidr: str, want: str) -> None:
    from provision.planning import ssh_cidr

    assert ssh_cidr(cidr) == want


@pytest.mark.parametrize("cidr", ["everyone", "1.2.3.4/33", "300.1.1.1", ""])
def test_malformed_ssh_cidr_is_a_usage_error(cidr: str) -> None:
    from provision.errors import UsageError
    from provision.planning import ssh_cidr

    with pytest.raises(UsageError, match="--ssh-cidr"):
        ssh_cidr(cidr)


def test_ssh_cidr_on_the_command_line(cli: Any) -> None:
    """Defect 8 through the CLI: refused (exit 2, the flag named), allowed with a warning, malformed."""
    base = ["up", "--gpu", "A10G:1", "--dry-run", "--json", "--ssh-cidr"]
    proc = cli([*base, "1.2.3.4/0"])
    assert proc.returncode == 2 and "--allow-ssh-from-anywhere" in proc.stderr, proc.stderr
    _clean(proc.stderr)
    ok = cli([*base, "1.2.3.4/0", "--allow-ssh-from-anywhere"])
    assert ok.returncode == 0 and "warning" in ok.stderr.lower(), ok.stderr
    assert json.loads(ok.stdout)["plan"]["ssh_cidr"] == "0.0.0.0/0"
    bad = cli([*base, "everyone"])
    assert bad.returncode == 2 and "--ssh-cidr" in bad.stderr
    _clean(bad.stderr)


# --------------------------------------------------------------------------- 12/13: files, first boot, help
def test_state_db_and_keys_are_private(cli_here: Any, cli: Any, cloud_env: dict[str, str]) -> None:
    """Defect 12: state.db was created 0644."""
    before = os.umask(0o022)  # the common default: files would come out 0644 unless made private
    try:
        assert cli_here([*UP, "--gpu", "A10G:1", "--name", "modes"]).returncode == 0
    finally:
        os.umask(before)
    state = Path(cloud_env["PROVISION_STATE_DIR"])
    for path in state.glob("state.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "keys").stat().st_mode) == 0o700
    assert cli_here(["down", "modes", "--yes"]).returncode == 0


def test_up_writes_through_a_symlinked_ssh_config(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], tmp_path: Path
) -> None:
    """Defect 12 / issue 14: a symlinked ~/.ssh/config (dotfiles) was replaced by a regular file."""
    config = Path(cloud_env["PROVISION_SSH_CONFIG"])
    config.parent.mkdir(parents=True)
    dotfiles = tmp_path / "dotfiles" / "ssh_config"
    dotfiles.parent.mkdir()
    dotfiles.write_text("Host *\n    ServerAliveInterval 5\n")
    config.symlink_to(dotfiles)
    assert cli_here([*UP, "--gpu", "A10G:1", "--name", "linked"]).returncode == 0
    assert config.is_symlink() and config.resolve() == dotfiles.resolve()
    text = dotfiles.read_text()
    assert text.splitlines()[1].startswith("Include ") and "ServerAliveInterval 5" in text
    assert cli_here(["down", "linked", "--yes"]).returncode == 0
    assert config.is_symlink()


def test_first_boot_installs_a_pinned_envcheck_and_not_as_root(cli: Any, cloud_env: dict[str, str]) -> None:
    """Defect 13: first boot ran an unpinned `pip install mlrig` as root."""
    from provision import planning
    from provision import settings as settings_mod
    from provision.clouds import firstboot

    s = settings_mod.load()
    plan = planning.make_plan(
        planning.Request(cloud="aws", gpu="A10G:1", ssh_cidr="203.0.113.7/32"), planning.load_offers(s), s
    )
    script = firstboot.render(plan, s.envcheck_spec, "ubuntu")
    installs = [ln for ln in script.splitlines() if "pip install" in ln]
    assert installs, script
    assert "MLRIG_USER=ubuntu;" in script and 'AS_USER="runuser -u $MLRIG_USER --"' in script
    for line in installs:
        assert re.search(r"mlrig==\d", line), line  # pinned to the release that launched it
        assert re.search(r"\$AS_USER \S+ -m pip install", line), line  # never as root
        assert "--only-binary=:all:" in line, line


def test_setup_help_says_who_can_read_it(cli: Any) -> None:
    """Defect 13: --setup content goes verbatim into user-data / metadata: the help must say so."""
    proc = cli(["up", "--help"], env={"COLUMNS": "200"})
    assert proc.returncode == 0
    assert "describe" in proc.stdout and "readable" in proc.stdout


# --------------------------------------------------------------------------- issue 14: the cloud commands
_BLOCK_EXTRAS = textwrap.dedent(
    """
    import sys, importlib.abc, runpy

    class NoExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            sdk = ("boto3", "botocore", "google.cloud", "google.auth", "google.api_core")
            if name.startswith(sdk):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoExtras())
    sys.argv = ["provision", *sys.argv[1:]]
    runpy.run_module("provision", run_name="__main__")
    """
)


@pytest.mark.parametrize(
    "args",
    [
        ["gc"],
        ["gc", "--cloud", "gcp"],
        ["ls", "--all-regions"],
        ["up", "--gpu", "A10G:1", "--yes"],
        ["up", "--cloud", "gcp", "--tpu", "v5e-8", "--yes"],
        ["down", "nothing-here", "--yes"],
    ],
)
def test_cloud_commands_without_the_extras_say_how_to_install(
    args: list[str], cloud_env: dict[str, str]
) -> None:
    """Issue 14: `provision gc` without the aws/gcp extras ended in ModuleNotFoundError."""
    proc = _run_script(_BLOCK_EXTRAS, args, cloud_env)
    if args[0] == "down":
        assert proc.returncode == 2, proc.stderr  # nothing of that name: a usage error, no SDK needed
        return
    assert proc.returncode == 3, proc.stderr
    _clean(proc.stderr)
    assert "ModuleNotFoundError" not in proc.stderr and "pip install 'mlrig[" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr


def test_ls_is_readable_at_80_columns(cli_here: Any, cli: Any, cloud_env: dict[str, str]) -> None:
    """Issue 14: at 80 columns `provision ls` truncated the very numbers it exists for."""
    for name, gpu in (("narrow-a10g-machine", "A10G:1"), ("second", "L4:1")):
        assert cli_here([*UP, "--gpu", gpu, "--name", name]).returncode == 0
    proc = cli(["ls"], env={**cloud_env, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and max(len(ln) for ln in lines) <= 80, proc.stdout
    assert "…" not in proc.stdout
    for needle in ("narrow-a10g-machine", "g5.xlarge", "g6.xlarge", "$1.01", "running"):
        assert needle in proc.stdout, (needle, proc.stdout)
    assert cli_here(["down", "--all", "--yes"]).returncode == 0


def test_json_outputs_carry_a_string_schema_version(cli_here: Any, cli: Any) -> None:
    """Issue 14: `ls --json` had no schema_version (team convention: "<major>.<minor>" string)."""
    up = cli_here([*UP, "--gpu", "A10G:1", "--name", "schema", "--json"])
    outputs = [up.stdout]
    for args in (
        ["ls", "--json"],
        ["gc", "--json"],
        ["ssh", "schema", "--json"],
        ["down", "schema", "--yes", "--json"],
    ):
        proc = cli_here(args)
        assert proc.returncode == 0, (args, proc.stderr)
        outputs.append(proc.stdout)
    for text in outputs:
        data = json.loads(text)
        assert isinstance(data, dict) and re.fullmatch(r"\d+\.\d+", data["schema_version"]), text


def test_wait_ssh_shows_elapsed_and_limit_on_a_terminal_only(cloud_env: dict[str, str], cli: Any) -> None:
    """Issue 14: `up --wait ssh` waited on a static line: show elapsed/limit; the limit is an option."""
    import pty

    args = ["up", "--gpu", "A10G:1", "--yes", "--wait", "ssh", "--ssh-timeout", "3"]
    piped = cli([*args, "--name", "piped"])
    assert piped.returncode == 3 and "did not answer within 3s" in piped.stderr
    assert not re.search(r"\d+s ?/ ?3s", piped.stderr), piped.stderr
    leader, follower = pty.openpty()
    env = {**cli_env(cloud_env), "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", *args, "--name", "tty"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert proc.wait(timeout=60) == 3
    reader.join(timeout=5)
    os.close(leader)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert re.search(r"\b[0-3]s ?/ ?3s\b", screen), screen
