"""Measure the clock a core really runs at: a chain of dependent adds, one per cycle.

Why: a peak must be an upper bound, and the clock a VM reports (``cpu MHz`` 2596 on an EPYC
whose cores boost to 3.7 GHz) or the base clock in a model name are not: a matmul at turbo
clock then shows more than 100% of "peak". Where the kernel exposes the CPU's own maximum
(cpufreq ``cpuinfo_max_freq``) that is used; elsewhere (most VMs) this measurement is.

How: x86-64 machine code for ``for (i = n; i; --i) { x += y; ... 64 times }``. Each ``add`` needs
the previous one's result and an integer add has a latency of exactly one cycle on every x86
core of the last 20 years (Agner Fog, "Instruction tables": ADD r,r latency 1), so the loop
runs 64 cycles per iteration whatever the core's width; register adds (not immediates) so no
core can fold them at rename. cycles / seconds = the clock. The fastest of several runs is kept
(a VM's stolen time only makes a run slower). It runs in a child interpreter (``measure``), so a
system that forbids executable memory costs only this figure.
"""

from __future__ import annotations

import platform
import sys

from envcheck import _child

#: dependent adds per loop iteration
CHAIN = 64

#: the child program: builds the loop in an executable page and prints the best clock in MHz
_CODE = r"""
import ctypes, mmap, struct, time
CHAIN = %(chain)d
body = b"\x48\x01\xf0" * CHAIN                      # add rax, rsi
loop_len = len(body) + 3 + 6                         # + dec rcx; jne rel32
code = (b"\x48\x89\xf9"                              # mov rcx, rdi   (iterations)
        + b"\x31\xc0"                                # xor eax, eax
        + body
        + b"\x48\xff\xc9"                            # dec rcx
        + b"\x0f\x85" + struct.pack("<i", -loop_len) # jne loop
        + b"\xc3")                                   # ret
mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
mem.write(code)
addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
func = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)(addr)
def run(n):
    start = time.perf_counter()
    func(n, 1)
    return time.perf_counter() - start
n = 1000
while run(n) < 0.01:                                 # warm up (and let the clock ramp) to ~10 ms
    n *= 2
best = 0.0
for _ in range(7):
    best = max(best, n * CHAIN / run(n) / 1e6)
emit({"mhz": best})
"""


def supported() -> str | None:
    """None when the measurement can run here, else why not."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the dependent-add loop is x86-64 code ({platform.machine()} here)"
    if sys.platform == "win32":
        return "the dependent-add loop uses the System V calling convention (not Windows)"
    return None


def measure(timeout: float = 10.0) -> tuple[float | None, str | None]:
    """(MHz of the fastest run, None), or (None, why it could not be measured)."""
    why = supported()
    if why:
        return None, why
    res = _child.run_python(
        _child.emit_snippet() + _CODE % {"chain": CHAIN}, timeout=timeout, stdlib_only=True
    )
    value = res.value if isinstance(res.value, dict) else {}
    mhz = value.get("mhz")
    if not res.ok or not isinstance(mhz, (int, float)) or not 100 < mhz < 10_000:
        return None, f"clock measurement failed: {res.error or f'implausible {mhz!r} MHz'}"
    return round(float(mhz), 1), None
