#!/usr/bin/env python3
"""Rebuild envcheck's torch / TensorFlow / JAX tables from the released wheels and print the diff.

    python scripts/refresh_knowledge.py                # read the indexes, print what would change
    python scripts/refresh_knowledge.py --write        # ... and write the changed tables
    python scripts/refresh_knowledge.py --only torch --pypi http://127.0.0.1:8080/simple/

It reads PyPI's simple API (JSON) and, with HTTP byte ranges, only the members of each wheel it
needs (METADATA, torch/version.py, TensorFlow's build_info.py, the arch-flags string of
libtorch_python.so); facts read once are cached by the wheel's sha256. PyTorch's other CUDA
variants are tried on download.pytorch.org; where that cannot be reached the committed rows stay,
marked as not verified. pip's local constraints (/etc/xdg/pip caps torch) do not apply: the
index is read directly, as it is. Exit codes: 0 done, 2 usage, 3 an index could not be read.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from envcheck.knowledge.refresh import FRAMEWORKS, FetchError, Options, Result, refresh


def _cache_default() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mlrig")) / "refresh-knowledge"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--write", action="store_true", help="write the changed tables (default: only print the diff)"
    )
    p.add_argument(
        "--only", action="append", choices=FRAMEWORKS, help="refresh only this framework (repeatable)"
    )
    p.add_argument(
        "--pypi", default=os.environ.get("MLRIG_REFRESH_PYPI", Options.pypi), help="simple API base URL"
    )
    p.add_argument(
        "--pytorch-index",
        default=os.environ.get("MLRIG_REFRESH_PYTORCH_INDEX", "https://download.pytorch.org/whl/"),
        help="PyTorch's variant index ('' to skip)",
    )
    p.add_argument("--data-dir", type=Path, default=Options.data_dir, help="where the tables live")
    p.add_argument("--cache-dir", type=Path, default=None, help="facts cache (default: the user cache dir)")
    p.add_argument("--no-cache", action="store_true", help="read every artifact again")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    args = p.parse_args(argv)
    if not (0 < args.timeout < 3600):
        p.error("--timeout must be between 0 and 3600 seconds")
    if not args.data_dir.is_dir():
        p.error(f"--data-dir {args.data_dir} is not a directory")
    return args


def report(result: Result, out: list[str]) -> None:
    for name, lines in result.diff().items():
        out.append(f"{name}: " + (f"{len(lines)} change(s)" if lines else "unchanged"))
        out += [f"  {line}" for line in lines]
    read = sorted(b for b, why in result.log.indexes.items() if not why)
    unreachable = sorted(f"{b}: {why}" for b, why in result.log.indexes.items() if why)
    out.append("indexes read: " + (", ".join(read) or "none"))
    out.append("indexes not reachable: " + ("; ".join(unreachable) or "none"))
    for problem in result.log.problems:
        out.append(f"note: {problem}")
    out.append(
        f"{len(result.log.read)} wheels read, {result.requests} requests, "
        f"{result.bytes_read / 1e6:.1f} MB fetched, {result.cache_hits} cached facts, {result.seconds:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    cache = None if args.no_cache else (args.cache_dir or _cache_default())
    options = Options(
        data_dir=args.data_dir,
        pypi=args.pypi,
        pytorch_index=args.pytorch_index or None,
        cache_dir=cache,
        frameworks=tuple(args.only or FRAMEWORKS),
        timeout=args.timeout,
    )
    try:
        result = refresh(options)
    except FetchError as exc:
        print(f"error: could not read the index: {exc}", file=sys.stderr)
        return 3
    lines: list[str] = []
    report(result, lines)
    print("\n".join(lines))
    if args.write:
        written = result.write()
        print("wrote: " + (", ".join(p.name for p in written) or "nothing (no change)"))
    elif result.changed():
        print("(dry run: --write to write these tables)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
