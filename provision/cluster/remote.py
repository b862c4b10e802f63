"""Run a command on every node of a cluster at once, and open a shell on one of them.

The one module that imports asyncssh (the ``cluster`` extra), lazily. ``run`` connects to every
node in parallel and returns one :class:`NodeResult` per node, in node order, whatever happened:
a node that is down, refuses our key, or whose host key changed is a result with its reason, never
an exception that hides the other nodes' output. Each command has a deadline; at the deadline its
whole process group on the node gets SIGTERM, then SIGKILL, and the output so far is kept; the
same happens when the caller is interrupted (Ctrl-C), so no command outlives ``provision exec``.

The kill goes through a second session on the same connection (``kill -- -PGID``), not the SSH
"signal" request: OpenSSH refuses that request for root logins (no post-auth privilege
separation), and closing the channel alone leaves the command running. The command reports its
process group first (the session's shell is its leader), on a stderr line that is removed from
the output.

Host keys are checked against our own known_hosts file with OpenSSH's ``accept-new`` policy, the
same one the ssh config entries use: a new node's key is recorded on first contact, a changed key
is refused.

``open_shell`` replaces the current process with the system ``ssh`` (a terminal session is ssh's
job); the arguments come from :func:`ssh_argv`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from envcheck.cluster import hostkeys
from provision.errors import MissingDependencyError, ProvisionError

#: seconds between SIGTERM and SIGKILL when a command overruns its deadline
KILL_GRACE = 2.0
#: output kept per node and stream (the tail: the end of a log says what went wrong)
MAX_OUTPUT = 1 << 20
#: the first stderr line of every command: its process group, for the kill at the deadline
_PGID = b"mlrig-pgid:"


@dataclass(frozen=True)
class Target:
    """How to reach one node: its index in the cluster, address, login and our key/known_hosts files."""

    index: int
    host: str
    user: str
    port: int = 22
    key_path: str | None = None
    #: our own known_hosts file (accept-new); None: the user's ~/.ssh/known_hosts, unknown hosts refused
    known_hosts: str | None = None
    #: the Host alias of the node in our ssh config (``provision ssh`` prefers it)
    alias: str | None = None

    @property
    def label(self) -> str:
        return f"node {self.index} ({self.host})"


class Outcome(str, enum.Enum):
    """What happened on one node."""

    OK = "ok"  # ran, exit status 0
    FAILED = "failed"  # ran, non-zero exit status or killed by a signal
    TIMEOUT = "timeout"  # still running at the deadline: terminated, output so far kept
    UNREACHABLE = "unreachable"  # no session: connection refused or timed out, key refused, host key changed
    LOST = "lost"  # the connection dropped while the command ran: its outcome is unknown


@dataclass(frozen=True)
class NodeResult:
    index: int
    host: str
    outcome: Outcome
    exit_status: int | None = None
    signal: str | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    seconds: float = 0.0
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "host": self.host,
            "outcome": self.outcome.value,
            "exit_status": self.exit_status,
            "signal": self.signal,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "truncated": self.truncated,
        }


#: called with (node index, "stdout" or "stderr", one line without its newline) as output arrives
OnLine = Callable[[int, str, str], None]


def exit_code(results: Sequence[NodeResult]) -> int:
    """The CLI's exit code: 0 all ok, 1 the command failed or timed out somewhere, 3 a node not reached."""
    if any(r.outcome in (Outcome.UNREACHABLE, Outcome.LOST) for r in results):
        return 3
    if any(r.outcome is not Outcome.OK for r in results):
        return 1
    return 0


# --------------------------------------------------------------------------- asyncssh, lazily
def _asyncssh() -> Any:
    try:
        with warnings.catch_warnings():
            # asyncssh imports cryptography's DSA support, deprecated there; not our concern at import
            warnings.simplefilter("ignore")
            import asyncssh
    except ImportError:
        raise MissingDependencyError(
            "running commands on cluster nodes needs asyncssh",
            hint="pip install 'mlrig[cluster]'",
        ) from None
    return asyncssh


class _Tail:
    """The last ``limit`` bytes of a stream, and whether anything was dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]
            self.truncated = True

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


#: how much stderr may come before our first line (a login shell's startup files print there)
_HEADER_WINDOW = 64 * 1024


def _split_header(buffer: bytes, pgid: list[int]) -> tuple[bytes, bytes, bool]:
    """(output, unread, found): the complete lines of ``buffer`` before our ``mlrig-pgid:N`` line are
    output (a login shell's startup files, e.g. a profile that prints or a pyenv rehash that fails,
    write before the command runs); the marker line itself is taken out and its number kept."""
    out = b""
    while b"\n" in buffer:
        line, _, buffer = buffer.partition(b"\n")
        if line.startswith(_PGID) and line[len(_PGID) :].isdigit():
            pgid.append(int(line[len(_PGID) :]))
            return out, buffer, True
        out += line + b"\n"
    return out, buffer, False


async def _pump(
    stream: Any, tail: _Tail, index: int, name: str, on_line: OnLine | None, *, pgid: list[int] | None = None
) -> None:
    """Copy ``stream`` into ``tail`` (and ``on_line``); with ``pgid``, our first line names the group
    and is not output (see _split_header). A stream that never shows it is all output."""
    pending = b""
    header = b""
    seen = 0
    looking = pgid is not None
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        if looking and pgid is not None:
            header += chunk
            seen += len(chunk)
            chunk, header, found = _split_header(header, pgid)
            if found or seen > _HEADER_WINDOW:
                chunk, header, looking = chunk + header, b"", False
            if not chunk:
                continue
        tail.add(chunk)
        if on_line is not None:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                on_line(index, name, line.decode("utf-8", errors="replace"))
            if len(pending) > 65536:  # a very long line without a newline: hand it over in pieces
                on_line(index, name, pending.decode("utf-8", errors="replace"))
                pending = b""
    if header:  # the stream ended inside a line before any marker: it was output, not our header
        tail.add(header)
        pending += header
    if on_line is not None and pending:
        on_line(index, name, pending.decode("utf-8", errors="replace"))


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    text = str(getattr(exc, "reason", "") or exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _accept_new(target: Target) -> hostkeys.AcceptNew | None:
    """Our own known_hosts file with OpenSSH's accept-new policy; None: the user's, strict."""
    if target.known_hosts is None:
        return None
    return hostkeys.AcceptNew(host=target.host, port=target.port, known_hosts=(Path(target.known_hosts),))


async def _connect(ssh: Any, target: Target, connect_timeout: float) -> Any:
    policy = _accept_new(target)
    record = policy is not None and not hostkeys.is_known(ssh, policy)
    # asyncssh's default (~/.ssh/known_hosts, strict), our file once it knows the host, or none yet
    known: Any = () if policy is None else (None if record else str(policy.known_hosts[0]))
    options: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "username": target.user,
        "known_hosts": known,
        "connect_timeout": connect_timeout,
        "login_timeout": connect_timeout,
        "keepalive_interval": 15,
        "keepalive_count_max": 4,
        "config": [],  # everything is explicit; a user's `Host *` block must not change it
    }
    if target.key_path:
        options["client_keys"] = [target.key_path]
        options["agent_path"] = None
    if known == ():
        del options["known_hosts"]
    conn = await asyncio.wait_for(ssh.connect(**options), connect_timeout + 5)
    if record and policy is not None:
        key = conn.get_server_host_key()
        if key is not None:
            hostkeys.record(policy, key)
    return conn


async def _one(
    ssh: Any,
    target: Target,
    command: str,
    *,
    timeout: float,
    connect_timeout: float,
    stdin: bytes | None,
    max_output: int,
    on_line: OnLine | None,
    semaphore: asyncio.Semaphore,
) -> NodeResult:
    start = time.monotonic()

    def result(outcome: Outcome, **kw: Any) -> NodeResult:
        return NodeResult(target.index, target.host, outcome, seconds=time.monotonic() - start, **kw)

    async with semaphore:
        try:
            conn = await _connect(ssh, target, connect_timeout)
        except (OSError, asyncio.TimeoutError, ssh.Error, ValueError) as exc:
            return result(Outcome.UNREACHABLE, error=_why(exc))
        out, err = _Tail(max_output), _Tail(max_output)

        def partial(outcome: Outcome, **kw: Any) -> NodeResult:
            return result(
                outcome, stdout=out.text(), stderr=err.text(), truncated=out.truncated or err.truncated, **kw
            )

        group: list[int] = []
        wrapped = f"printf '{_PGID.decode()}%s\\n' \"$$\" >&2\n{command}"
        try:
            async with conn:
                proc = await conn.create_process(wrapped, encoding=None, stdin=ssh.PIPE)
                if stdin:
                    proc.stdin.write(stdin)
                proc.stdin.write_eof()
                pumps = asyncio.gather(
                    _pump(proc.stdout, out, target.index, "stdout", on_line),
                    _pump(proc.stderr, err, target.index, "stderr", on_line, pgid=group),
                )
                try:
                    await asyncio.wait_for(asyncio.shield(pumps), timeout)
                    completed = await asyncio.wait_for(proc.wait(), max(1.0, timeout))
                except asyncio.CancelledError:
                    # Ctrl-C (asyncio.run cancels us): the command must not outlive the caller
                    await asyncio.shield(_kill_group(conn, group))
                    raise
                except asyncio.TimeoutError:
                    stopped = await _kill_group(conn, group)
                    pumps.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pumps
                    proc.close()
                    why = f"still running after {timeout:g}s: " + (
                        "terminated" if stopped is None else f"could not stop it ({stopped})"
                    )
                    return partial(Outcome.TIMEOUT, error=why)
        except (OSError, ssh.Error) as exc:
            return partial(Outcome.LOST, error=f"connection lost: {_why(exc)}")
        status, signal = completed.exit_status, completed.exit_signal
        if signal:
            return partial(Outcome.FAILED, signal=str(signal[0]), error=f"killed by signal {signal[0]}")
        if status == 0:
            return partial(Outcome.OK, exit_status=0)
        if status is None or status < 0:
            return partial(Outcome.LOST, error="the session ended without an exit status")
        return partial(Outcome.FAILED, exit_status=status)


async def _kill_group(conn: Any, group: list[int]) -> str | None:
    """SIGTERM to the command's process group, SIGKILL after the grace period; None when it is gone.

    ``group`` is filled by the stderr pump when the command's first line arrives; a command cut
    short right after it started may not have reported yet, so wait a moment for it.
    """
    for _ in range(int(KILL_GRACE / 0.05)):
        if group:
            break
        await asyncio.sleep(0.05)
    if not group or group[0] <= 1:
        return "its process group is unknown"
    pgid = group[0]
    steps = int(KILL_GRACE / 0.1)
    script = (
        f"kill -TERM -- -{pgid} 2>/dev/null || exit 0; i=0; while [ $i -lt {steps} ]; do "
        f"kill -0 -- -{pgid} 2>/dev/null || exit 0; sleep 0.1; i=$((i + 1)); done; "
        f"kill -KILL -- -{pgid} 2>/dev/null; exit 0"
    )
    try:
        await asyncio.wait_for(conn.run(script, check=False), KILL_GRACE + 15)
    except Exception as exc:  # the connection itself may be what failed
        return _why(exc)
    return None


async def run_async(
    targets: Sequence[Target],
    command: str,
    *,
    timeout: float = 600.0,
    connect_timeout: float = 15.0,
    stdin: bytes | None = None,
    max_output: int = MAX_OUTPUT,
    concurrency: int = 64,
    on_line: OnLine | None = None,
) -> list[NodeResult]:
    """``command`` on every target at once; one result per target, in the targets' order."""
    if not command.strip():
        raise ProvisionError("no command to run")
    if not timeout > 0 or not connect_timeout > 0:
        raise ProvisionError("timeouts must be positive")
    ssh = _asyncssh()
    semaphore = asyncio.Semaphore(max(1, concurrency))
    jobs = [
        _one(
            ssh,
            t,
            command,
            timeout=timeout,
            connect_timeout=connect_timeout,
            stdin=stdin,
            max_output=max_output,
            on_line=on_line,
            semaphore=semaphore,
        )
        for t in targets
    ]
    return list(await asyncio.gather(*jobs))


def run(targets: Sequence[Target], command: str, **kw: Any) -> list[NodeResult]:
    """Blocking :func:`run_async` (its own event loop), for the CLI."""
    return asyncio.run(run_async(targets, command, **kw))


# --------------------------------------------------------------------------- interactive ssh
def ssh_argv(target: Target, command: str | None = None, *, use_alias: bool = True) -> list[str]:
    """The system ``ssh`` command line for ``target``: its alias when it has one, else every option."""
    if use_alias and target.alias:
        argv = ["ssh", target.alias]
    else:
        argv = ["ssh", "-p", str(target.port), "-o", "ServerAliveInterval=30"]
        if target.key_path:
            argv += ["-i", target.key_path, "-o", "IdentitiesOnly=yes"]
        if target.known_hosts:
            argv += ["-o", "StrictHostKeyChecking=accept-new"]
            argv += ["-o", f"UserKnownHostsFile={target.known_hosts}"]
        argv += ["-l", target.user, "--", target.host]
    if command is not None:
        argv.append(command)
    return argv


def open_shell(target: Target, command: str | None = None) -> NoReturn:
    """Become ``ssh`` to ``target`` (a real terminal, ssh's own escape keys and exit status)."""
    argv = ssh_argv(target, command)
    try:
        if target.known_hosts:  # ssh does not create the directory of its UserKnownHostsFile
            Path(target.known_hosts).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise ProvisionError(f"cannot run ssh: {exc.strerror}", hint="install the OpenSSH client") from None
