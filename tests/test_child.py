"""The child-interpreter runner every framework probe and smoke test goes through."""

from __future__ import annotations

import os

from envcheck._child import emit_snippet, run_python

EMIT = emit_snippet()


def test_an_answer_comes_back_despite_chatter_on_stdout() -> None:
    res = run_python(
        EMIT + "print('noise from a library')\nemit({'n': 7})\nprint('more noise')\n", timeout=30
    )
    assert res.ok and res.value == {"n": 7} and res.error is None


def test_a_segfault_is_a_crash_with_its_signal() -> None:
    res = run_python("import ctypes\nctypes.string_at(0)\n", timeout=30)
    assert not res.ok and res.error == "crashed: SIGSEGV"


def test_a_kill_reads_as_out_of_memory() -> None:
    res = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", timeout=30)
    assert not res.ok and res.error is not None and res.error.startswith("killed by SIGKILL")


def test_a_hang_is_cut_off_and_keeps_what_was_said_before(tmp_path: object) -> None:
    code = EMIT + "import os, time\nemit({'stage': 'imported', 'pid': os.getpid()})\ntime.sleep(60)\n"
    res = run_python(code, timeout=1.5)
    assert not res.ok and res.error == "timed out after 1.5s"
    assert isinstance(res.value, dict) and res.value["stage"] == "imported"
    try:  # the whole process group was killed: the child is gone
        os.kill(res.value["pid"], 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


def test_an_error_after_answering_is_a_failure_that_keeps_the_answer() -> None:
    res = run_python(EMIT + "emit({'done': 1})\nimport numpy_that_does_not_exist\n", timeout=30)
    assert not res.ok and res.value == {"done": 1}
    assert res.error == "ModuleNotFoundError: No module named 'numpy_that_does_not_exist'"


def test_no_answer_gives_the_last_error_line() -> None:
    res = run_python("raise SystemExit('cannot go on: no libcuda')\n", timeout=30)
    assert not res.ok and res.value is None and res.error == "cannot go on: no libcuda"


def test_a_missing_interpreter_is_an_error_not_an_exception() -> None:
    res = run_python("pass", timeout=5, python="/nonexistent/python3")
    assert not res.ok and res.error is not None and "could not start" in res.error
