"""Group the failures of results files by cause and draft one upstream report per cause.

Every failing record gets a cause (harness/core/causes.py: whose bug, the
failure's kind with its statuses folded, the ONNX node, the message template,
the failure's shape); one row per cause, widest first, goes to stdout and to
OUT/causes.md, OUT/causes.json and OUT/causes.html, and OUT/causes/<id>.md is
a draft bug report for the cause's project (exporter, runtime or pass) built
from its smallest case. --markdown FILE also writes the table (the --top
widest causes) for a CI job summary. Stale cause entries of the expected
failures (--expected) are listed. Exit code: 0, or 2 when an input cannot be
read or holds no valid record.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.report import triage
from harness.report.environment import shown_path
from .report import print_problems
from harness.report.inputs import ROOT, InputError, load

HELP = "group failures by cause; write causes.md/.json/.html and a draft bug report per cause"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness triage``."""
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results files (JSON lines) or folders of them")
    p.add_argument("--out", metavar="DIR", help="write causes.md/.json/.html and causes/<id>.md here "
                   "(default: <results>-causes/ beside the first results file)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table to FILE (e.g. the CI job summary)")
    p.add_argument("--top", type=int, default=30, metavar="N",
                   help="causes shown on stdout and in --markdown (default 30; every cause is in the files)")
    p.add_argument("--expected", default=str(ROOT / "cases" / "expected_failures"), metavar="PATH",
                   help="expected failures whose cause entries are checked for staleness "
                        "(default: cases/expected_failures/)")


def run(args) -> int:
    """Load, group, print, write."""
    if args.top < 1:
        print("error: --top must be at least 1", file=sys.stderr)
        return 2
    try:
        loaded = load(args.results, include_explore=False)
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_problems(loaded)
    if not loaded.records:
        print(f"error: no valid record in {', '.join(loaded.files)}; nothing grouped", file=sys.stderr)
        return 2
    first = Path(loaded.files[0])
    out = Path(args.out) if args.out else first.parent / f"{first.stem}-causes"
    groups, totals = triage.summary(loaded.records)
    text = triage.markdown(groups, totals, limit=args.top, drafts=None)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    for path in triage.write(loaded.records, out, meta={"files": [shown_path(f) for f in loaded.files]}):
        print(f"wrote {path}", file=sys.stderr)
    _stale(loaded.records, args.expected)
    return 0


def _stale(records, path: str) -> None:
    from harness.spec.expectations import Expectations
    from harness.spec.yamlsrc import MatrixError

    try:
        exps = Expectations.load(path)
    except MatrixError as exc:
        print(f"warning: expected failures not checked: {exc}", file=sys.stderr)
        return
    frameworks = {r["framework"] for r in records}
    for e in exps.stale_causes(records):
        if e.match.split("-", 1)[0] in frameworks:
            print(f"stale: {e.where()}: cause {e.cause} occurs in no record of these results", file=sys.stderr)
