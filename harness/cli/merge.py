"""Merge results of several shards or machines into one JSONL file.

Identical duplicate records collapse. Records with the same id and different
contents: the newest 'finished' wins (ties: the larger canonical JSON, so the
result does not depend on argument order). Where their statuses differ, the
kept record carries a 'conflict' field (listed in the reports' Conflicts
section) and the conflict is printed. Output records are sorted by id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .report import print_problems
from harness.report.inputs import InputError, load

HELP = "merge shards' results into one JSONL (conflicts flagged)"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness merge``."""
    p.add_argument("out", metavar="OUT", help="merged results file to write (replaced)")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results files or folders to merge")


def run(args) -> int:
    """Merge and write; 2 on unusable input."""
    out = Path(args.out)
    try:
        loaded = load([p for p in args.results])
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if any(out.resolve() == Path(f).resolve() for f in loaded.files):
        print(f"error: {out} is also an input; write the merge elsewhere", file=sys.stderr)
        return 2
    print_problems(loaded)
    if not loaded.records:
        print("error: no valid record to merge", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in loaded.records:
            f.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
    tmp.replace(out)
    print(f"wrote {out}: {len(loaded.records)} records from {len(loaded.files)} file(s); "
          f"{loaded.duplicates} duplicate(s) resolved, {len(loaded.conflicts)} conflict(s)")
    return 0
