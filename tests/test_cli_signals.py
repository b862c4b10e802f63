"""No child outlives envcheck: Ctrl-C, SIGTERM, SIGHUP and SIGKILL at random moments of bench,
smoke and --deep, whose children hang (fake frameworks that also start a grandchild).

Each run carries a unique tag in its environment; after envcheck is gone no process on the
machine may still carry it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HANGING = Path(__file__).parent / "fixtures" / "signals"
COMMANDS = {
    "bench": ["bench", "--quick", "--backend", "torch", "--device", "cpu"],
    "smoke": ["smoke", "-f", "torch,tensorflow"],
    "deep": ["--deep", "--json"],
}
EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGKILL: -signal.SIGKILL}


def _tagged(tag: str) -> list[int]:
    """PIDs of live processes whose environment carries ``tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":  # a zombie is dead, only not yet reaped by its parent
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", list(EXPECTED), ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_child_survives_a_signal_at_a_random_moment(command: str, sig: int) -> None:
    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(0.0, 0.8)
    tag = f"ENVCHECK_SIGNAL_TEST={uuid.uuid4().hex}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HANGING), os.environ.get("PYTHONPATH", "")]))
    env["ENVCHECK_SIGNAL_TEST"] = tag.split("=", 1)[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "envcheck", *COMMANDS[command]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # a child (or grandchild) of envcheck is running: then wait a random moment and strike
        started = _wait_for(lambda: [p for p in _tagged(tag) if p != proc.pid], 60)
        assert started, f"no child appeared (seed {seed})"
        time.sleep(delay)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == EXPECTED[sig], (seed, err)
        if sig != signal.SIGKILL:
            assert "Traceback" not in err and "interrupted" in err, err
        assert _wait_for(lambda: not _tagged(tag), 5), (
            f"still running after {signal.Signals(sig).name} at +{delay:.2f}s (seed {seed}): {_tagged(tag)}"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _tagged(tag):  # never leave our own strays behind, even when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


HANDLER_PROBE = """
import sys
from envcheck import clirun
if {with_child}:
    from envcheck import _child
imports = []
sys.addaudithook(lambda event, args: imports.append(args[0]) if event == "import" else None)
try:
    clirun._on_signal(2, None)
except clirun.Interrupted as exc:
    print(exc.signum, imports)
"""


@pytest.mark.parametrize("with_child", [False, True])
def test_the_signal_handler_imports_nothing(with_child: bool) -> None:
    """A handler that imports while the interrupted code is inside an import breaks importlib's
    per-thread bookkeeping on Python < 3.12: the launch died with "internal error: KeyError(<thread
    id>)" instead of cleaning up (the randomized attack found it at a Ctrl-C during start-up)."""
    proc = subprocess.run(
        [sys.executable, "-c", HANDLER_PROBE.format(with_child=with_child)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[1],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2 []"
