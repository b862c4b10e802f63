"""SSH hosts through asyncssh: one connection per node, all at once, each under its own deadline.

The user's ssh config applies (HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile)
and host keys are checked against known_hosts: a host whose key is unknown is unreachable with
that reason, never silently trusted, unless the config says ``StrictHostKeyChecking accept-new``
for it (as ``provision``'s entries do): then, as with ssh, its key is recorded on first use and
checked from then on (hostkeys.py). asyncssh loads only when this adapter runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envcheck.cluster import hostkeys
from envcheck.cluster.engine import Progress, node_env
from envcheck.cluster.models import NodeRef, NodeRun
from envcheck.cluster.sshhosts import split_target
from envcheck.errors import EnvcheckError

#: the command that starts envcheck on a node, as the node's login shell would run it
DEFAULT_COMMAND = "envcheck"


def _import_asyncssh() -> Any:
    try:
        with warnings.catch_warnings():  # asyncssh's import warns that DSA is deprecated: not ours to say
            warnings.simplefilter("ignore")
            import asyncssh
    except ImportError as exc:
        raise EnvcheckError(
            "envcheck cluster --ssh needs asyncssh, which is not installed",
            hint="pip install 'mlrig[cluster]'",
        ) from exc
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    return asyncssh


def _unreachable(exc: BaseException, asyncssh: Any, connect_timeout: float) -> str:
    """One line saying why the connection failed, in the words a user would search for."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"no SSH answer within {connect_timeout:g}s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (no SSH server listening)"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return f"host key not trusted ({exc.reason}): add it to known_hosts (ssh-keyscan HOST >> known_hosts)"
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"SSH login refused: {exc.reason}"
    if isinstance(exc, asyncssh.Error):
        return f"SSH error: {exc.reason}"
    if isinstance(exc, OSError):
        return f"cannot connect: {exc.strerror or exc}"
    return f"cannot connect: {type(exc).__name__}: {exc}"


class SshEngine:
    name = "ssh"

    def __init__(
        self,
        hosts: Sequence[str],
        *,
        config: Path | None = None,
        command: str = DEFAULT_COMMAND,
        connect_timeout: float = 10.0,
        max_parallel: int = 64,
    ) -> None:
        self.hosts = list(hosts)
        self.config = config
        self.command = command
        self.connect_timeout = connect_timeout
        self.max_parallel = max(1, max_parallel)
        self._asyncssh = _import_asyncssh()

    def discover(self) -> list[NodeRef]:
        return [NodeRef(name=h, handle=h) for h in self.hosts]

    def remote_command(self, args: Sequence[str], env: Mapping[str, str]) -> str:
        """``exec env K=V ... envcheck ARGS`` for the node's login shell (exec: signals reach envcheck)."""
        assigns = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        return f"exec env {assigns} {self.command} {' '.join(shlex.quote(a) for a in args)}"

    def run(
        self,
        nodes: Sequence[NodeRef],
        args: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> list[NodeRun]:
        return asyncio.run(self._run_all(nodes, args, timeout, env, progress))

    async def _run_all(
        self,
        nodes: Sequence[NodeRef],
        args: Sequence[str],
        timeout: float,
        env: Mapping[str, str] | None,
        progress: Progress | None,
    ) -> list[NodeRun]:
        gate = asyncio.Semaphore(self.max_parallel)

        async def one(index: int, node: NodeRef) -> NodeRun:
            async with gate:
                run = await self._one(node, self.remote_command(args, node_env(index, node, env)), timeout)
            if progress:
                progress(node.name, "answered" if not (run.unreachable or run.timed_out) else "failed")
            return run

        return list(await asyncio.gather(*(one(i, n) for i, n in enumerate(nodes))))

    async def _connect(self, target: str) -> Any:
        asyncssh = self._asyncssh
        user, host, port = split_target(target)
        kwargs: dict[str, Any] = {"connect_timeout": self.connect_timeout}
        if self.config is not None:
            kwargs["config"] = [str(self.config)]
        if user:
            kwargs["username"] = user
        if port:
            kwargs["port"] = port
        # the config's accept-new (provision's entries): an unknown host is trusted on first use and
        # recorded; a known host, or any other policy, is checked strictly by asyncssh
        policy = await asyncio.to_thread(
            hostkeys.accept_new_for, host, user=user, port=port, config=self.config
        )
        first_use = policy is not None and not hostkeys.is_known(asyncssh, policy)
        if first_use:
            kwargs["known_hosts"] = None
        conn = await asyncio.wait_for(asyncssh.connect(host, **kwargs), self.connect_timeout + 1)
        if first_use and policy is not None:
            key = conn.get_server_host_key()
            if key is not None:
                hostkeys.record(policy, key)  # unrecorded: the next run trusts on first use again
        return conn

    async def _one(self, node: NodeRef, command: str, timeout: float) -> NodeRun:
        asyncssh = self._asyncssh
        start = time.perf_counter()
        run = NodeRun(name=node.name)
        try:
            conn = await self._connect(str(node.handle))
        except Exception as exc:  # every way a connection fails is one unreachable reason
            run.unreachable = _unreachable(exc, asyncssh, self.connect_timeout)
            run.seconds = time.perf_counter() - start
            return run
        out: list[str] = []
        err: list[str] = []
        try:
            peer = conn.get_extra_info("peername")
            run.address = peer[0] if peer else None
            proc = await conn.create_process(
                command, stdin=asyncssh.DEVNULL, encoding="utf-8", errors="replace"
            )

            async def pump(stream: Any, sink: list[str]) -> None:
                while chunk := await stream.read(65536):
                    sink.append(chunk)

            left = max(0.1, timeout - (time.perf_counter() - start))
            try:
                await asyncio.wait_for(
                    asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err), proc.wait_closed()), left
                )
            except (asyncio.TimeoutError, TimeoutError):
                run.timed_out = True
                with contextlib.suppress(
                    Exception
                ):  # OpenSSH >= 8.1 honours it; the node's deadline backs it
                    proc.send_signal("TERM")
            if not run.timed_out:
                run.exit_code = (
                    proc.exit_status if proc.exit_status is not None and proc.exit_status >= 0 else None
                )
                if proc.exit_signal:
                    run.signal = str(proc.exit_signal[0])
        except Exception as exc:  # the connection dropped mid-run: a crash as far as we can tell
            run.engine_error = f"SSH session lost: {_unreachable(exc, asyncssh, self.connect_timeout)}"
        finally:
            conn.abort() if run.timed_out else conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 2)
        run.stdout, run.stderr = "".join(out), "".join(err)
        run.seconds = time.perf_counter() - start
        return run

    def close(self) -> None:
        """Connections close as each node finishes: nothing is kept open."""
