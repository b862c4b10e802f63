"""``remote.run`` against Debian's sshd on loopback addresses: one node per daemon, some down or failing."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from provision.cluster import remote
from provision.cluster import render as cluster_render
from provision.cluster.remote import Outcome, Target


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "state" / "known_hosts"


def _targets(ssh_nodes: Any, known_hosts: Path, **kw: Any) -> list[Target]:
    return [
        Target(
            k,
            n.address,
            ssh_nodes.user,
            port=n.port,
            key_path=str(ssh_nodes.key),
            known_hosts=str(known_hosts),
            **kw,
        )
        for k, n in enumerate(ssh_nodes.nodes)
    ]


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """A TCP port on 127.0.0.6 that accepts connections and never says a word (a hung machine)."""
    sock = socket.socket()
    sock.bind(("127.0.0.6", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield "127.0.0.6", sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()


def _closed_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_every_node_answers_in_order_and_down_nodes_say_why(
    ssh_nodes: Any, known_hosts: Path, blackhole: tuple[str, int]
) -> None:
    targets = _targets(ssh_nodes, known_hosts)
    down = Target(3, "127.0.0.5", ssh_nodes.user, port=_closed_port("127.0.0.5"), key_path=str(ssh_nodes.key))
    hung = Target(4, blackhole[0], ssh_nodes.user, port=blackhole[1], key_path=str(ssh_nodes.key))
    lines: list[tuple[int, str, str]] = []
    start = time.monotonic()
    results = remote.run(
        [*targets, down, hung],
        'echo "$MLRIG_NODE"; echo "to stderr" >&2',
        timeout=30,
        connect_timeout=3,
        on_line=lambda i, s, line: lines.append((i, s, line)),
    )
    assert time.monotonic() - start < 20  # in parallel: the hung node costs its timeout once
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    for k in range(3):
        assert results[k].outcome is Outcome.OK, results[k]
        assert results[k].stdout == f"node{k}\n"
        # a login shell's profile may write first (pyenv's rehash, run by three logins at once)
        assert results[k].stderr.endswith("to stderr\n") and "mlrig-pgid" not in results[k].stderr
        assert (k, "stdout", f"node{k}") in lines and (k, "stderr", "to stderr") in lines
    assert results[3].outcome is Outcome.UNREACHABLE and results[3].error == "connection refused"
    assert results[4].outcome is Outcome.UNREACHABLE and "timed out" in (results[4].error or "")
    assert remote.exit_code(results) == 3
    text = cluster_render.text(results)
    assert "nodes 0-2" not in text  # each node printed its own name: no two outputs are the same
    assert text.splitlines()[-1] == "5 nodes: 3 ok, 2 unreachable (nodes 3-4)"


def test_a_failing_command_on_one_node(ssh_nodes: Any, known_hosts: Path) -> None:
    results = remote.run(
        _targets(ssh_nodes, known_hosts),
        'if [ "$MLRIG_NODE" = node1 ]; then echo broken >&2; exit 3; fi; echo fine',
    )
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.FAILED, Outcome.OK]
    assert results[1].exit_status == 3 and results[1].stderr == "broken\n"
    assert remote.exit_code(results) == 1
    text = cluster_render.text(results)
    assert "── nodes 0,2 (2) · ok" in text and "── node 1 · 127.0.0.3 · exit 3" in text


def _alive(marker: str, name: str | None = None) -> list[int]:
    """PIDs whose command line contains ``marker`` (only processes called ``name`` when given)."""
    out = []
    for p in psutil.process_iter(["cmdline", "name"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []) and name in (None, p.info["name"]):
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


def test_a_command_past_its_deadline_is_killed_with_its_children(ssh_nodes: Any, known_hosts: Path) -> None:
    marker = f"{time.time() % 1000 + 100:.4f}"  # an unusual sleep length names our processes
    command = f"echo started; sleep {marker} & sleep {marker}; echo never"
    start = time.monotonic()
    results = remote.run(_targets(ssh_nodes, known_hosts)[:2], command, timeout=1.5)
    assert time.monotonic() - start < 15
    for r in results:
        assert r.outcome is Outcome.TIMEOUT
        assert r.stdout == "started\n"  # the output before the deadline is kept
        assert "still running after 1.5s" in (r.error or "")
    deadline = time.monotonic() + 10
    while _alive(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(f"sleep {marker}") == []  # OpenSSH signals the session's whole process group


def test_stdin_binary_and_huge_output(ssh_nodes: Any, known_hosts: Path, tmp_path: Path) -> None:
    targets = _targets(ssh_nodes, known_hosts)[:1]
    target_file = tmp_path / f"pushed-{uuid.uuid4().hex}"
    node_list = "0 head 10.0.0.1 -\n1 worker 10.0.0.2 -\n"
    pushed = remote.run(
        targets, f"cat > {target_file}.tmp && mv {target_file}.tmp {target_file}", stdin=node_list.encode()
    )
    assert pushed[0].outcome is Outcome.OK and target_file.read_text() == node_list
    big = remote.run(
        targets, "head -c 3000000 /dev/zero | tr '\\0' a; printf '\\377\\376end'", max_output=4096
    )
    r = big[0]
    assert r.outcome is Outcome.OK and r.truncated
    assert r.stdout.endswith("\ufffd\ufffdend") and len(r.stdout) == 4096
    assert "only the last part of the output" in cluster_render.text(big)


def test_host_keys_are_learned_then_enforced(ssh_nodes: Any, known_hosts: Path, tmp_path: Path) -> None:
    targets = _targets(ssh_nodes, known_hosts)
    assert all(r.outcome is Outcome.OK for r in remote.run(targets, "true"))
    entries = sorted(known_hosts.read_text().splitlines())  # in the order the connections completed
    assert [e.split()[:2] for e in entries] == [
        [f"[{n.address}]:{n.port}", "ssh-ed25519"] for n in ssh_nodes.nodes
    ]
    assert known_hosts.stat().st_mode & 0o777 == 0o600
    assert all(r.outcome is Outcome.OK for r in remote.run(targets, "true"))
    assert len(known_hosts.read_text().splitlines()) == 3  # known now: nothing appended

    # node 1 is replaced by a machine with another host key on the same address
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = (tmp_path / "other_key.pub").read_text().split()[:2]
    lines = known_hosts.read_text().splitlines()
    node1 = next(i for i, line in enumerate(lines) if line.startswith("[127.0.0.3]"))
    lines[node1] = f"{lines[node1].split()[0]} {kind} {blob}"
    known_hosts.write_text("\n".join(lines) + "\n")
    marker = tmp_path / "ran"
    results = remote.run(targets, f"touch {marker}-$MLRIG_NODE")
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.UNREACHABLE, Outcome.OK]
    assert "host key" in (results[1].error or "").lower()
    assert not Path(f"{marker}-node1").exists()  # nothing ran on the machine we could not verify


def test_a_key_the_node_does_not_accept(ssh_nodes: Any, known_hosts: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    n = ssh_nodes.nodes[0]
    t = Target(
        0, n.address, ssh_nodes.user, port=n.port, key_path=str(stranger), known_hosts=str(known_hosts)
    )
    (r,) = remote.run([t], "true", connect_timeout=5)
    assert r.outcome is Outcome.UNREACHABLE
    assert "permission denied" in (r.error or "").lower() or "auth" in (r.error or "").lower()


def test_a_node_that_dies_while_the_command_runs(ssh_nodes: Any, known_hosts: Path, sim: Any) -> None:
    node = ssh_nodes.nodes[2]
    t = _targets(ssh_nodes, known_hosts)[2]
    killer = threading.Timer(1.0, ssh_nodes.stop_node, args=(node,))
    killer.start()
    try:
        (r,) = remote.run([t], "echo working; sleep 20", timeout=30)
    finally:
        killer.join()
        ssh_nodes.start_node(node)  # later tests use it again (on a new port)
    assert r.outcome is Outcome.LOST, r
    assert r.stdout == "working\n"
    assert remote.exit_code([r]) == 3


def test_the_system_ssh_command_line_reaches_the_node(ssh_nodes: Any, known_hosts: Path) -> None:
    t = _targets(ssh_nodes, known_hosts)[1]
    known_hosts.parent.mkdir()  # the state directory exists when a cluster does
    argv = remote.ssh_argv(t, 'echo "$MLRIG_NODE"', use_alias=False)
    proc = subprocess.run(
        [argv[0], "-o", "BatchMode=yes", "-F", "/dev/null", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "HOME": str(known_hosts.parent)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "node1\n"
    assert "127.0.0.3" in known_hosts.read_text()  # accept-new recorded it in our file


def test_bad_arguments(ssh_nodes: Any, known_hosts: Path) -> None:
    from provision.errors import ProvisionError

    with pytest.raises(ProvisionError):
        remote.run(_targets(ssh_nodes, known_hosts), "   ")
    with pytest.raises(ProvisionError):
        remote.run(_targets(ssh_nodes, known_hosts), "true", timeout=0)
    assert remote.run([], "true") == []


def _interrupted_exec(
    targets: list[Target], marker: str, tmp_path: Path, when: float | None
) -> tuple[int | None, str]:
    """Run remote.run in a child process, SIGINT it (after ``when`` s, or once every node runs the
    command), and return its exit code and stderr once it exited."""
    program = tmp_path / "exec.py"
    program.write_text(
        # a process started from a terminal takes Ctrl-C; one started under a background shell job
        # (`cmd &`, as a detached test run is) inherits SIGINT ignored, and Python keeps it so
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from provision.cluster import remote\n"
        "from provision.cluster.remote import Target\n"
        f"remote.run({targets!r}, 'sleep {marker} & sleep {marker}', timeout=60)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(remote.__file__).resolve().parents[2]),
        "PYTHONFAULTHANDLER": "1",  # SIGABRT prints every thread: a hang says where it was
    }
    child = subprocess.Popen(
        [sys.executable, "-W", "ignore", str(program)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        if when is None:
            deadline = time.monotonic() + 20
            while len(_alive(f"sleep {marker}", "sleep")) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(_alive(f"sleep {marker}", "sleep")) == 6  # two sleeps on each of three nodes
        else:
            time.sleep(when)
        child.send_signal(signal.SIGINT)
        try:
            _out, err = child.communicate(timeout=90)  # a loaded 2-core machine: generous, not tight
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGABRT)
            _out, err = child.communicate(timeout=15)
            raise AssertionError(f"exec hung after Ctrl-C at {when}; where it was:\n{err[-8000:]}") from None
    except BaseException:
        _kill_left(marker)  # never leave a failed round's commands behind
        raise
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err


def _kill_left(marker: str) -> list[int]:
    """Kill what a round left running (so a failure does not leak into later runs); their PIDs."""
    left = _alive(f"sleep {marker}")
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


def test_ctrl_c_stops_the_commands_on_every_node(ssh_nodes: Any, known_hosts: Path, tmp_path: Path) -> None:
    targets = _targets(ssh_nodes, known_hosts)
    rng = random.Random(5)
    # once with every command running, then at random moments (connecting, starting, running)
    for when in [None, *(rng.uniform(0.3, 1.5) for _ in range(4))]:
        marker = f"{rng.uniform(1100, 1900):.4f}"
        code, err = _interrupted_exec(targets, marker, tmp_path, when)
        # Python unwinds with KeyboardInterrupt; on a loaded machine the signal can also land before
        # the interpreter installed its handler, which kills it outright (nothing started remotely)
        assert "KeyboardInterrupt" in err or (code == -signal.SIGINT and not err), (code, err)
        deadline = time.monotonic() + 10
        while _alive(f"sleep {marker}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _kill_left(marker) == [], f"left running after Ctrl-C at {when}"
