"""A Slurm allocation: one ``srun`` step, one task per allocated node, output labelled by task.

Run inside ``salloc``/``sbatch``: the nodes are the allocation's (``SLURM_JOB_NODELIST``). Tasks
inherit the caller's environment (srun's default) and the node's own (TaskProlog); a task that
dies does not take the others down (``--kill-on-bad-exit=0``). srun names each task's end on
stderr ("n5: task 4: Segmentation fault"), which is how a crash gets its node and its signal.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from envcheck.cluster import protocol
from envcheck.cluster.engine import Progress
from envcheck.cluster.models import NodeRef, NodeRun
from envcheck.errors import EnvcheckError, UsageError

#: srun's words for how a task ended -> signal name
_SRUN_SIGNALS = {
    "segmentation fault": "SEGV",
    "killed": "KILL",
    "aborted": "ABRT",
    "terminated": "TERM",
    "bus error": "BUS",
    "illegal instruction": "ILL",
    "floating point exception": "FPE",
    "hangup": "HUP",
}
_TASK_END = re.compile(r"srun: error: (\S+): tasks? ([\d,\-\[\]]+): (.+)$")
_LABEL = re.compile(r"^\s*(\d+): ?(.*)$")
_DOWN_STATES = ("DOWN", "NOT_RESPONDING", "FAIL", "DRAIN")


def _scontrol(*args: str, timeout: float = 15.0) -> str:
    exe = shutil.which("scontrol")
    if exe is None:
        raise EnvcheckError(
            "scontrol is not on PATH", hint="run inside a Slurm allocation on a Slurm login node"
        )
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EnvcheckError(f"scontrol {' '.join(args)} did not answer in {timeout:g}s") from exc
    if proc.returncode != 0:
        raise EnvcheckError(f"scontrol {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _task_ids(spec: str) -> list[int]:
    """srun's "4" / "0-2,5" -> [4] / [0, 1, 2, 5]."""
    ids: list[int] = []
    for part in spec.strip("[]").split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            ids += list(range(int(lo), int(hi) + 1)) if hi.isdigit() else [int(lo)]
    return ids


def task_ends(stderr: str) -> dict[int, tuple[str, str | None, int | None]]:
    """task id -> (node, signal name, exit code) from srun's 'srun: error: NODE: task N: ...' lines."""
    ends: dict[int, tuple[str, str | None, int | None]] = {}
    for raw in stderr.splitlines():
        m = _TASK_END.search(raw)
        if not m:
            continue
        node, what = m.group(1), m.group(3).strip().lower()
        code = re.search(r"exit code (\d+)", what)
        sig = next((s for words, s in _SRUN_SIGNALS.items() if what.startswith(words)), None)
        for task in _task_ids(m.group(2)):
            ends[task] = (node, sig, int(code.group(1)) if code else None)
    return ends


class SlurmEngine:
    name = "slurm"

    def __init__(self, command: str | None = None) -> None:
        self.job = os.environ.get("SLURM_JOB_ID")
        self.nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
        if not self.job or not self.nodelist:
            raise UsageError(
                "--slurm runs inside a Slurm allocation, and this shell is not in one",
                hint="salloc -N4 envcheck cluster --slurm   (or put it in an sbatch script)",
            )
        srun = shutil.which("srun")
        if srun is None:
            raise EnvcheckError("srun is not on PATH", hint="load your site's Slurm module")
        self.srun = srun
        # Slurm nodes usually share the software tree: the same interpreter path works on every node
        self.command = shlex.split(command) if command else [sys.executable, "-m", "envcheck"]

    def discover(self) -> list[NodeRef]:
        assert self.nodelist is not None
        names = _scontrol("show", "hostnames", self.nodelist).split()
        info: dict[str, dict[str, str]] = {}
        for line in _scontrol("-o", "show", "node", self.nodelist).splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if "NodeName" in fields:
                info[fields["NodeName"]] = fields
        refs = []
        for name in names:
            fields = info.get(name, {})
            state = fields.get("State", "")
            down = next((s for s in _DOWN_STATES if s in state.upper()), None)
            why = None
            if down and not fields.get("Reason", "").startswith("envcheck"):
                reason = fields.get("Reason")
                why = f"Slurm says {state}{': ' + reason if reason else ''}"
            refs.append(
                NodeRef(name=name, address=fields.get("NodeAddr") or name, handle=name, unreachable=why)
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
        if not nodes:
            return []
        n = len(nodes)
        argv = [
            self.srun,
            f"--nodes={n}",
            f"--ntasks={n}",
            "--ntasks-per-node=1",
            f"--nodelist={','.join(str(x.handle) for x in nodes)}",
            "--label",
            "--kill-on-bad-exit=0",
            "--job-name=envcheck-cluster",
            *self.command,
            *args,
        ]
        start = time.perf_counter()
        child_env = {**os.environ, **(env or {})}
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                env=child_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise EnvcheckError(f"cannot start srun: {exc.strerror or exc}") from exc
        out: dict[int, list[str]] = {}
        err_lines: list[str] = []

        def read_out() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                m = _LABEL.match(raw)
                task, text = (int(m.group(1)), m.group(2)) if m else (-1, raw.rstrip("\n"))
                out.setdefault(task, []).append(text)
                if progress and protocol.MARKER in text and '"part":"done"' in text:
                    progress(f"task {task}", "answered")

        def read_err() -> None:
            assert proc.stderr is not None
            err_lines.extend(proc.stderr)

        readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
        for r in readers:
            r.start()
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._stop(proc)
        for r in readers:
            r.join(5)
        seconds = time.perf_counter() - start
        return self._runs(nodes, out, "".join(err_lines), timed_out, seconds)

    @staticmethod
    def _stop(proc: subprocess.Popen[str]) -> None:
        """srun cancels its step on SIGTERM (tasks get SIGTERM, then SIGKILL after KillWait)."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except OSError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    @staticmethod
    def _runs(
        nodes: Sequence[NodeRef], out: dict[int, list[str]], stderr: str, timed_out: bool, seconds: float
    ) -> list[NodeRun]:
        ends = task_ends(stderr)
        task_node: dict[int, str] = {}
        for task, lines in out.items():
            hello = protocol.parse("\n".join(lines)).get("hello") or {}
            names = hello.get("names") or {}
            name = names.get("SLURMD_NODENAME") or names.get("ENVCHECK_NODE_NAME")
            if task >= 0 and name:
                task_node[task] = name
        for task, (end_node, _, _) in ends.items():
            task_node.setdefault(task, end_node)
        # tasks that said nothing at all: block distribution puts task i on the i-th node
        free = [x.name for x in nodes if x.name not in task_node.values()]
        for task in range(len(nodes)):
            if task not in task_node and free:
                task_node[task] = free.pop(0)
        runs = []
        for node in nodes:
            where = next((t for t, name in task_node.items() if name == node.name), None)
            lines = out.get(where, []) if where is not None else []
            node_stderr = "\n".join(
                ln for ln in stderr.splitlines() if f"{node.name}:" in ln or f"{where}: " in ln
            )
            run = NodeRun(name=node.name, address=node.address, stdout="\n".join(lines), stderr=node_stderr)
            run.seconds = seconds
            end = ends.get(where) if where is not None else None
            if end is not None:
                run.signal, run.exit_code = end[1], end[2]
            elif not timed_out:
                run.exit_code = 0
            parts = protocol.parse(run.stdout)
            run.timed_out = timed_out and end is None and "done" not in parts
            runs.append(run)
        return runs

    def close(self) -> None:
        """Nothing is held: the allocation stays the user's."""
