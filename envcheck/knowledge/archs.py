"""NVIDIA's rules for which compiled GPU code runs on which compute capability (CC).

From the CUDA C++ Programming Guide (binary and PTX compatibility), as torch 2.13 encodes them in
``DEVICE_REQUIREMENT`` (torch/cuda/__init__.py):

- SASS ``sm_XY`` runs on a GPU of the same major X with minor >= Y. Binaries for the integrated
  (Tegra) parts 5.3, 6.2, 7.2, 8.7 and 10.1 run only there, and desktop SASS does not run on them;
  sm_101 also runs on 11.0 (CUDA 13 renamed Thor from 10.1 to 11.0).
- Arch-specific ``sm_XYa`` runs only on CC X.Y; family-specific ``sm_XYf`` on major X, minor >= Y.
- PTX ``compute_XY`` (``X.Y+PTX`` in TORCH_CUDA_ARCH_LIST) is JIT-compiled by the driver for any
  GPU with CC >= X.Y (``compute_XYa`` only for X.Y).
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass

#: integrated GPUs whose SASS is not binary compatible with the rest of their major
TEGRA = frozenset({(5, 3), (6, 2), (7, 2), (8, 7), (10, 1)})

_CODE = re.compile(r"^(sm|compute)_(\d+)(\d)([af]?)$")


@dataclass(frozen=True)
class Code:
    """One entry of an arch list: SASS (``sm``) or PTX (``compute``) for CC major.minor."""

    kind: str
    cc: tuple[int, int]
    suffix: str = ""

    def __str__(self) -> str:
        return f"{self.kind}_{self.cc[0]}{self.cc[1]}{self.suffix}"


def parse_cc(text: str) -> tuple[int, int] | None:
    """ "8.0", "8.6", "12.0" or "sm_86" -> (major, minor)."""
    t = text.strip().lower()
    m = re.fullmatch(r"(\d+)\.(\d+)", t)
    if m:
        return int(m.group(1)), int(m.group(2))
    code = parse_code(t)
    return code.cc if code else None


def parse_code(text: str) -> Code | None:
    """ "sm_90", "compute_90", "sm_90a", "sm_100f" -> Code; None when it is none of these."""
    m = _CODE.match(text.strip().lower())
    if not m:
        return None
    return Code(m.group(1), (int(m.group(2)), int(m.group(3))), m.group(4))


def expand_torch_list(spec: str) -> tuple[str, ...]:
    """TORCH_CUDA_ARCH_LIST ("7.5 8.0 9.0+PTX") -> arch codes ("sm_75", "sm_80", "sm_90", "compute_90")."""
    out: list[str] = []
    for item in spec.replace(";", " ").split():
        ptx = item.endswith("+PTX")
        major, minor = item.removesuffix("+PTX").split(".")
        out.append(f"sm_{major}{minor}")
        if ptx:
            out.append(f"compute_{major}{minor}")
    return tuple(out)


#: the NUL-terminated arch-flags string torch compiles into libtorch_python.so (what
#: ``torch.cuda.get_arch_list()`` returns): two or more space-separated codes, "sm_75 sm_80 compute_90".
#: Its start is not always NUL-delimited (the linker packs it after unterminated char arrays).
ARCH_FLAGS = re.compile(rb"((?:sm|compute)_\d{2,3}[af]?(?: (?:sm|compute)_\d{2,3}[af]?)+)\x00")
_FLAG_STARTS = (b"sm_", b"compute_")


def find_arch_flags(
    data: bytes | bytearray | mmap.mmap, start: int = 0
) -> tuple[tuple[str, ...], int] | None:
    """The first arch-flags string in a binary (bytes or an mmap) and where it ends; None if none.

    Tries only where ``sm_`` or ``compute_`` occurs (a few dozen places in a 35 MB library), so the
    search takes well under 0.1 s and never imports the framework.
    """
    pos = start
    while True:
        hits = [i for i in (data.find(p, pos) for p in _FLAG_STARTS) if i >= 0]
        if not hits:
            return None
        i = min(hits)
        m = ARCH_FLAGS.match(data, i)
        if m:
            return tuple(m.group(1).decode("ascii").split()), m.end()
        pos = i + 1


#: nvcc's architecture flags as torch 1.2-1.5 compile them into ``torch.__config__.show()``
#: ("-gencode;arch=compute_37,code=sm_37;...;-gencode;arch=compute_37,code=compute_37"), NUL-terminated
GENCODE_FLAGS = re.compile(rb"(?:-gencode;)?arch=compute_\d{2,3},code=[^\x00]{1,2000}?\x00")
_GENCODE_CODE = re.compile(r"\b((?:sm|compute)_\d{2,3}[af]?)\b")


def find_gencode_flags(data: bytes | bytearray | mmap.mmap) -> tuple[str, ...] | None:
    """The compiled codes named by the first nvcc ``-gencode`` flags string in a binary, as an arch
    list ("sm_37 ... compute_37"): every ``code=`` target, SASS first, each once; None if none."""
    m = GENCODE_FLAGS.search(data)
    if not m:
        return None
    return parse_gencode(m.group(0).decode("ascii", "replace"))


def parse_gencode(flags: str) -> tuple[str, ...] | None:
    """ "-gencode;arch=compute_50,code=sm_50;...,code=[sm_70,compute_70]" -> ("sm_50", "sm_70",
    "compute_70"): the ``code=`` targets only (``arch=`` names the virtual arch they were built from)."""
    targets: list[str] = []
    for part in re.split(r"[;\s]+", flags):
        _, found, value = part.partition("code=")
        if found:
            targets += _GENCODE_CODE.findall(value)
    return sort_codes(targets) or None


def sort_codes(codes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """An arch list in torch's order: SASS by compute capability, then PTX; duplicates dropped."""
    parsed = {c: p for c in codes if (p := parse_code(c)) is not None}
    return tuple(sorted(parsed, key=lambda c: (parsed[c].kind != "sm", parsed[c].cc, parsed[c].suffix)))


def runs_on(code: Code, cc: tuple[int, int]) -> bool:
    """Does this compiled code run on a GPU of compute capability ``cc``?"""
    if code.suffix == "a":
        return cc == code.cc
    if code.kind == "compute":
        return cc >= code.cc
    if code.cc == (10, 1) and cc == (11, 0):
        return True
    if code.cc in TEGRA or cc in TEGRA:
        return cc == code.cc
    return cc[0] == code.cc[0] and cc[1] >= code.cc[1]


def covering(arch_list: list[str] | tuple[str, ...], cc: tuple[int, int]) -> list[str]:
    """The entries of ``arch_list`` that run on ``cc`` (empty: the GPU is not supported)."""
    out = []
    for item in arch_list:
        code = parse_code(item)
        if code is not None and runs_on(code, cc):
            out.append(str(code))
    return out


def needs_jit(arch_list: list[str] | tuple[str, ...], cc: tuple[int, int]) -> bool:
    """True when only PTX covers ``cc``: it runs, after a JIT compile at first use."""
    hits = [parse_code(c) for c in covering(arch_list, cc)]
    return bool(hits) and all(h is not None and h.kind == "compute" for h in hits)
