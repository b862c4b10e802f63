"""A Ray cluster: one task per node, pinned to it by node id (``NodeAffinitySchedulingStrategy``, hard).

The task asks for no CPU and no GPU, so it runs beside a training job instead of queueing behind
it, and starts ``envcheck`` in a child process with the node's own interpreter and environment
(what the node's ``ray start`` had). Nodes Ray already marks dead are unreachable with Ray's
reason. ray loads only when this adapter runs, and the adapter only connects: it never starts
or stops a cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from envcheck.cluster.engine import Progress, node_env
from envcheck.cluster.models import NodeRef, NodeRun
from envcheck.errors import EnvcheckError

#: seconds a node's task may wait to be scheduled and started, beyond the run's own timeout
_SCHEDULE_S = 5.0


def _import_ray() -> Any:
    # Ray's C++ core logs every failed GCS retry to stderr; its errors reach the user through ours
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        import ray
    except ImportError as exc:
        raise EnvcheckError(
            "envcheck cluster --ray needs ray, which is not installed", hint="pip install 'mlrig[cluster]'"
        ) from exc
    return ray


def run_on_node(args: Sequence[str], env: Mapping[str, str], timeout: float) -> dict[str, Any]:
    """Inside the Ray task: ``python -m envcheck ARGS`` on this node, its output even if it hangs."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys

    child_env = dict(os.environ)
    if child_env.get("CUDA_VISIBLE_DEVICES") == "":
        del child_env[
            "CUDA_VISIBLE_DEVICES"
        ]  # older Ray empties it for GPU-less tasks: envcheck must see the GPUs
    child_env.update(env)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "envcheck", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=child_env,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    code = proc.returncode
    return {
        "stdout": out,
        "stderr": err[-20000:],
        "exit_code": code if code is not None and code >= 0 else None,
        "signal": signal.Signals(-code).name if code is not None and code < 0 else None,
        "timed_out": timed_out,
        "seconds": time.perf_counter() - start,
    }


_HINT = "ray status shows whether this machine belongs to a running cluster; --ray HOST:6379 names one"


def _check_reachable(address: str, timeout: float) -> None:
    """Fail fast on a HOST:PORT nobody listens on (auto and ray:// are left to Ray)."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "auto")
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except OSError as exc:
        raise EnvcheckError(
            f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}", hint=_HINT
        ) from exc


def _names(nodes: list[dict[str, Any]]) -> list[str]:
    """Host names when they are unique, else addresses, else address#node-id (several raylets per host)."""
    for key in ("NodeManagerHostname", "NodeManagerAddress"):
        values = [str(n.get(key) or "") for n in nodes]
        if all(values) and len(set(values)) == len(values):
            return values
    return [f"{n.get('NodeManagerAddress') or '?'}#{str(n.get('NodeID'))[:6]}" for n in nodes]


class RayEngine:
    name = "ray"

    def __init__(self, address: str, connect_timeout: float = 30.0) -> None:
        self._ray = _import_ray()
        self.address = address
        _check_reachable(address, min(connect_timeout, 5.0))
        outcome: dict[str, BaseException | None] = {}

        def connect() -> None:  # ray.init retries an absent GCS for minutes: give it a deadline
            try:
                if not self._ray.is_initialized():
                    self._ray.init(
                        address=address,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                        namespace="envcheck-cluster",
                    )
                outcome["error"] = None
            except BaseException as exc:  # reported below, in the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=connect, name="ray-connect", daemon=True)
        worker.start()
        worker.join(connect_timeout)
        if "error" not in outcome:
            raise EnvcheckError(
                f"no answer from the Ray cluster at {address} within {connect_timeout:g}s", hint=_HINT
            )
        exc = outcome["error"]
        if exc is not None:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EnvcheckError(
                f"cannot connect to the Ray cluster at {address}: {first}", hint=_HINT
            ) from exc

    def discover(self) -> list[NodeRef]:
        nodes = sorted(
            self._ray.nodes(), key=lambda n: (not n.get("Alive"), str(n.get("NodeManagerAddress")))
        )
        refs = []
        for node, name in zip(nodes, _names(nodes), strict=True):
            why = None
            if not node.get("Alive"):
                msg = str(node.get("DeathReasonMessage") or "").strip()
                why = f"Ray marks the node dead{': ' + msg if msg else ''}"
            refs.append(
                NodeRef(
                    name=name, address=node.get("NodeManagerAddress"), handle=node["NodeID"], unreachable=why
                )
            )
        return refs

    def run(
        self,
        nodes: Sequence[NodeRef],
        args: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> list[NodeRun]:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(run_on_node)
        start = time.perf_counter()
        pending: dict[Any, int] = {}
        for i, node in enumerate(nodes):
            ref = task.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node.handle, soft=False),
                num_cpus=0,
                num_gpus=0,
                max_retries=0,
                name=f"envcheck-cluster:{node.name}",
            ).remote(list(args), node_env(i, node, env), timeout)
            pending[ref] = i
        runs = [NodeRun(name=n.name, address=n.address) for n in nodes]
        limit = timeout + _SCHEDULE_S
        while pending:
            left = limit - (time.perf_counter() - start)
            if left <= 0:
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=left)
            for ref in ready:
                i = pending.pop(ref)
                self._fill(runs[i], ref, start)
                if progress:
                    progress(runs[i].name, "answered")
        for ref, i in pending.items():  # the task never came back: cancel it, the node is hung
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            runs[i].timed_out = True
            runs[i].seconds = time.perf_counter() - start
        return runs

    def _fill(self, run: NodeRun, ref: Any, start: float) -> None:
        ray = self._ray
        run.seconds = time.perf_counter() - start
        try:
            got = ray.get(ref, timeout=10)
        except ray.exceptions.GetTimeoutError:
            run.timed_out = True
            return
        except ray.exceptions.RayError as exc:  # worker or node died, task failed: Ray's words
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            run.engine_error = f"Ray task failed: {type(exc).__name__}{': ' + first[:200] if first else ''}"
            return
        run.stdout, run.stderr = got["stdout"], got["stderr"]
        run.exit_code, run.signal, run.timed_out = got["exit_code"], got["signal"], got["timed_out"]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.shutdown()  # disconnects this driver; the cluster keeps running
