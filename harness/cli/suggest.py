"""Draft expected-failure entries from a results file, for a person to review.

``python -m harness suggest-expectations RESULTS`` groups the failing records
by framework, exporter, kernel, status and cause, folds their opsets into
ranges, and prints YAML entries whose reasons quote what the exporter or the
runtime said. Nothing is written: review the draft, then paste what you accept
into ``cases/expected_failures.yaml``. An input that is missing, not a
results file or without any valid record is refused with one line (exit 2).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict

import yaml

from harness.spec.matrix import format_opsets
from harness.core.status import FAILURES

_PATH = re.compile(r"(/[\w.\-]+)+")
_NOISE = re.compile(r"\x1b\[[0-9;]*m|\\e\[[0-9;]*m|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s*")
# numbers (1, 0.00971, 7.41e+10, inf, nan) vary from run to run: a cause is grouped without them
_NUM = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|\b(inf|nan)\b")


def cause_of(rec: dict) -> str:
    """A short, human-readable cause from a failing record's message."""
    msg = rec.get("message") or ""
    if rec["status"] == "crash" and ": " in msg:
        msg = msg.split(": ", 1)[1]
    msg = _PATH.sub("<path>", _NOISE.sub("", msg))
    msg = msg.replace("\n", " ").strip()
    return msg[:240]


def _group_key(rec: dict) -> tuple:
    cause = _NUM.sub("N", cause_of(rec))
    # opset-not-honored messages name the opsets; group on the declared one only
    if rec["status"] == "opset-not-honored":
        cause = f"declares {rec.get('model_opset')}"
    return (rec["framework"], rec["exporter"], rec["kernel"], rec["status"], cause)


def suggest(records: list[dict], declared_only: bool = True) -> list[dict]:
    """Expected-failure entries (dicts) covering every failing record."""
    variants_at: dict[tuple, set] = defaultdict(set)
    for r in records:
        variants_at[(r["framework"], r["exporter"], r["kernel"], r["opset"])].add(r.get("variant", "default"))
    groups: dict[tuple, dict] = {}
    for r in records:
        if r["status"] not in FAILURES:
            continue
        if declared_only and not (r.get("declared") or {}).get("in_range", True):
            continue
        g = groups.setdefault(_group_key(r), {"cells": set(), "example": r, "records": []})
        g["cells"].add((r.get("variant", "default"), r["opset"]))
        g["records"].append(r)
    out = []
    for (fw, exp, kernel, st, _), g in sorted(groups.items()):
        ex = g["example"]
        reason = _reason(ex, g["records"])
        opsets = sorted({o for _, o in g["cells"]})
        whole = all({v for v, o in g["cells"] if o == op} == variants_at[(fw, exp, kernel, op)]
                    for op in opsets)
        targets = [f"{fw}-{exp}-{kernel}-*"] if whole else sorted(
            {f"{fw}-{exp}-{kernel}-{v}-*" for v, _ in g["cells"]})
        for target in targets:
            ops = opsets if whole else sorted({o for v, o in g["cells"]
                                               if target == f"{fw}-{exp}-{kernel}-{v}-*"})
            for run in format_opsets(ops).split(", "):
                lo, _, hi = run.partition("~")
                out.append({"match": target, "opsets": f"{lo}~{hi or lo}", "status": [st],
                            "reason": reason})
    return out


def _reason(rec: dict, others: list[dict] = ()) -> str:
    st = rec["status"]
    if st == "opset-not-honored":
        return (f"the {rec['exporter']} exporter writes an opset-{rec.get('model_opset')} model when "
                f"these opsets are requested")
    reason = f"measured {st}: {cause_of(rec)}"
    seen = {r.get("max_abs") for r in others if isinstance(r.get("max_abs"), (int, float))}
    if len(seen) > 1:  # e.g. an exporter writing an uninitialised attribute: say the size is not stable
        lo, hi = min(seen), max(seen)
        reason += f" (max_abs differs between these cases: {lo:.3g} to {hi:.3g})"
    return reason


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m harness suggest-expectations", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="results files (JSON lines) or folders of them")
    ap.add_argument("--all-opsets", action="store_true",
                    help="include failures outside the declared range too")
    args = ap.parse_args(argv)
    from .report import print_problems
    from harness.report.inputs import InputError, load

    try:
        loaded = load(args.results)
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_problems(loaded)
    records = loaded.records
    if not records:
        print(f"error: no valid record in {', '.join(loaded.files)}; nothing drafted", file=sys.stderr)
        return 2
    entries = suggest(records, declared_only=not args.all_opsets)
    yaml.safe_dump({"expected_failures": entries}, sys.stdout, sort_keys=False, width=110,
                   allow_unicode=True)
    print(f"# {len(entries)} entries drafted from {len(records)} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
