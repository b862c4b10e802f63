"""Hostile input never ends in a traceback: random bytes, random cuts and splices of the real corpus,
shuffled lines, huge lines. In process, every outcome is a Report or a one-line UsageError; through the
CLI, the exit code is 0, 1 or 2 and stderr holds no traceback."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from envcheck.diff import diff_reports
from envcheck.errors import UsageError
from envcheck.ingest import load
from envcheck.markdown import to_markdown
from envcheck.reply import to_reply
from envcheck.report import rejudge

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
CORPUS = [p.read_bytes() for p in sorted(ROOT.glob("*.txt"))]
SEED = int(os.environ.get("ENVCHECK_FUZZ_SEED", "20261123"))


def _inputs(rng: random.Random, n: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(n):
        pick = rng.choice(CORPUS)
        kind = i % 8
        if kind == 0:  # random bytes
            out.append(rng.randbytes(rng.randint(0, 3000)))
        elif kind == 1:  # a cut of a real paste, anywhere (mid-line, mid-UTF-8 sequence)
            out.append(pick[: rng.randint(0, len(pick))])
        elif kind == 2:  # a splice of two pastes at random points
            other = rng.choice(CORPUS)
            out.append(pick[: rng.randint(0, len(pick))] + other[rng.randint(0, len(other)) :])
        elif kind == 3:  # lines shuffled
            lines = pick.split(b"\n")
            rng.shuffle(lines)
            out.append(b"\n".join(lines))
        elif kind == 4:  # random bytes flipped inside a real paste
            data = bytearray(pick)
            for _ in range(rng.randint(1, 40)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            out.append(bytes(data))
        elif kind == 5:  # several pastes at once, in UTF-16
            text = b"\n".join(rng.sample(CORPUS, 3)).decode("utf-8", "replace")
            out.append(b"\xff\xfe" + text.encode("utf-16-le"))
        elif kind == 6:  # one enormous line, and many tiny ones
            out.append(rng.choice([b"PyTorch version: ", b"| NVIDIA-SMI ", b"Found GPU0 "]) + b"9" * 200_000)
        else:  # a JSON-looking start with junk
            out.append(rng.choice([b"{", b'{"schema_version": "1.0"', b"[", b"[1, {"]) + rng.randbytes(200))
    return out


def test_random_and_mangled_input_is_a_report_or_one_clear_error() -> None:
    rng = random.Random(SEED)
    previous = None
    for data in _inputs(rng, 480):
        try:
            report = rejudge(load(data, "fuzz"))
        except UsageError as exc:
            assert exc.exit_code == 2 and exc.message.startswith("fuzz: ") and "\n" not in exc.message
            continue
        # every renderer of a diagnosis takes whatever came out
        assert to_reply(report) and to_markdown(report)
        if previous is not None:
            diff_reports(previous, report)
        previous = report


def _envcheck(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", *args], input=data, capture_output=True, timeout=120, check=False
    )


@pytest.mark.parametrize("case", range(6))
def test_the_cli_never_shows_a_traceback(case: int) -> None:
    rng = random.Random(SEED + case)
    data = _inputs(rng, 8)[case]
    args = [["diagnose", "-"], ["diagnose", "-", "--markdown"], ["diagnose", "-", "--json"]][case % 3]
    proc = _envcheck(args, data)
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert b"Traceback" not in proc.stderr
    if proc.returncode == 2:
        assert proc.stderr.strip() and proc.stdout == b""


def _nested_report(depth: int) -> bytes:
    return b'{"schema_version": "1.1", "snapshot": ' + b'{"a": ' * depth + b"1" + b"}" * (depth + 1)


def _hostile() -> dict[str, tuple[bytes, bool]]:
    """Inputs no fuzzer finds by chance: name -> (bytes, whether a verdict must come out of it)."""
    big = b"\n".join(CORPUS)
    smi = b"| NVIDIA-SMI 535.54.03    Driver Version: 535.54.03    CUDA Version: 12.2     |\n"
    traceback = (
        b'Traceback (most recent call last):\n  File "train.py", line 10, in <module>\n    model.cuda()\n'
        b"KeyError: 'model'\n"
    )
    return {
        "10 MB of real pastes": ((big * (10_000_000 // len(big) + 1))[:10_000_000], True),
        "one 10 MB line": (b"PyTorch version: " + b"1.2." * 2_500_000, True),
        "binary with NULs around a paste": (b"\x00" * 5000 + CORPUS[3] + b"\x00\x01\x02" * 3000, True),
        "an ELF binary": (b"\x7fELF\x02\x01\x01" + random.Random(1).randbytes(200_000), False),
        "quotes 3000 deep": (b"> " * 3000 + b"Is CUDA available: True\nPyTorch version: 2.1.0+cu121\n", True),
        "details 20000 deep": (b"<details>" * 20_000 + b"\nNvidia driver version: 535.54.03\n", False),
        "only a traceback": (traceback, False),
        "JSON that is not a report": (b'{"name": "x", "dependencies": {"torch": "2.1.0"}}', False),
        "a JSON array": (b'[{"a": 1}, {"b": [1, 2]}]', False),
        "a future envcheck report": (b'{"schema_version": "7.0", "tool": "envcheck", "snapshot": {}}', False),
        "JSON nested 100000 deep": (b"[" * 100_000 + b"]" * 100_000, False),
        "a report nested 50000 deep": (_nested_report(50_000), False),
        "two million carriage returns": (b"\r" * 2_000_000 + smi, True),
        "the same key 200000 times": (b"PyTorch version: 2.1.0\n" * 200_000, True),
        "300000 nvidia-smi rows": (smi + b"|   0  NVIDIA A100   Off  |\n" * 300_000, True),
        "a million backticks": (b"`" * 1_000_000, False),
        "ANSI escapes without end": (b"\x1b[" * 200_000 + b"\n" + smi, True),
        "an ollama log line 100000 times": (
            b'msg="inference compute" id=GPU-1 library=cuda compute=8.6 driver=12.2 name="Tesla T4"\n'
            * 100_000,
            True,
        ),
        "one ollama line of a million pairs": (b'msg="inference compute" ' + b"a=b " * 1_000_000, False),
        "50000 Python sessions": (
            b'Type "help", "copyright", "credits" or "license" for more information.\n>>> torch.__version__\n'
            b"'2.1.0+cpu'\n" * 50_000,
            True,
        ),
        "HIP errors in CUDA's words 100000 times": (
            b"cuda runtime error (100) : hipErrorNoDevice\n" * 100_000,
            True,
        ),
    }


@pytest.mark.parametrize("name", list(_hostile()))
def test_hostile_input_gets_a_verdict_or_one_clear_error(name: str) -> None:
    data, readable = _hostile()[name]
    try:
        report = rejudge(load(data, "hostile"))
    except UsageError as exc:
        assert not readable, f"{name}: refused: {exc.message}"
        assert exc.exit_code == 2 and exc.message.startswith("hostile: ") and "\n" not in exc.message
        return
    assert readable, f"{name}: read as a report"
    assert to_reply(report)


@pytest.mark.parametrize("name", ["only a traceback", "a future envcheck report", "JSON nested 100000 deep"])
def test_the_cli_says_one_line_for_unusable_input(name: str) -> None:
    proc = _envcheck(["diagnose", "-", "--markdown"], _hostile()[name][0])
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"Traceback" not in proc.stderr and proc.stderr.decode().startswith("error: ")
