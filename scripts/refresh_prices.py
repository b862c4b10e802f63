#!/usr/bin/env python3
"""Rebuild the shipped price snapshot (provision/catalog/data/offerings_<cloud>.csv) from gpuhunt.

Runs the same code as ``provision catalog refresh`` into a temporary directory, prints what changed
against the shipped files (rows added and removed, prices that moved by more than 1 %), and with
``--write`` replaces the shipped files. Needs the ``prices`` extra and a network that reaches
gpuhunt's catalog (``PROVISION_GPUHUNT_CATALOG_URL`` for a mirror). Review the printed diff before
committing.

Usage: python scripts/refresh_prices.py [--cloud aws --cloud lambda ...] [--write] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.catalog import refresh  # noqa: E402
from provision.errors import ProvisionError  # noqa: E402

Key = tuple[str, str, str]


def _rows(path: Path) -> dict[Key, dict[str, str]]:
    if not path.is_file():
        return {}
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return {(r["instance_type"], r["accelerator_count"], r["region"]): r for r in csv.DictReader(lines)}


def _price(row: dict[str, str]) -> float | None:
    return float(row["price_on_demand"]) if row.get("price_on_demand") else None


def diff(old: Path, new: Path) -> list[str]:
    """Human lines: rows added, removed, and on-demand prices that moved by more than 1 %."""
    before, after = _rows(old), _rows(new)
    out = [f"{len(before)} -> {len(after)} rows"]
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    out += [f"  + {' '.join(k)} {after[k]['price_on_demand']}" for k in added[:20]]
    out += [f"  - {' '.join(k)} {before[k]['price_on_demand']}" for k in removed[:20]]
    if len(added) > 20 or len(removed) > 20:
        out.append(f"  ({len(added)} added, {len(removed)} removed in all)")
    for k in sorted(set(before) & set(after)):
        a, b = _price(before[k]), _price(after[k])
        if a and b and abs(b / a - 1) > 0.01:
            out.append(f"  ~ {' '.join(k)} {a:g} -> {b:g} ({(b / a - 1) * 100:+.0f}%)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloud", action="append", help="clouds to rebuild (default: all gpuhunt covers)")
    parser.add_argument("--write", action="store_true", help="replace the shipped files")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "provision" / "catalog" / "data")
    args = parser.parse_args()
    clouds = args.cloud or list(refresh.GPUHUNT_PROVIDERS)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            results = refresh.refresh_gpuhunt(clouds, output_dir=Path(tmp))
        except ProvisionError as exc:
            print(f"error: {exc}" + (f"\n  {exc.hint}" if exc.hint else ""), file=sys.stderr)
            return 3
        for r in results:
            if not r.rows:
                print(f"{r.cloud}: {'; '.join(r.skipped)}")
                continue
            shipped = args.data_dir / f"offerings_{r.cloud}.csv"
            print(f"{r.cloud}: prices as of {r.as_of}; " + "\n".join(diff(shipped, r.path)))
            if r.skipped:
                print(f"  not mapped: {', '.join(r.skipped[:8])}" + (" ..." if len(r.skipped) > 8 else ""))
            if args.write:
                shutil.copyfile(r.path, shipped)
                print(f"  wrote {shipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
