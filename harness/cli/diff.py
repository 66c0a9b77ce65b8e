"""Compare two results (files or folders): regressions, fixes, status changes, new and vanished cases.

Prints a markdown summary fit for a CI job summary (also appended to
--markdown FILE). Exit code: 1 when any case went from pass to anything else
or vanished (has no record in NEW; --allow-vanished accepts that, e.g. when NEW
is a narrowed run), 0 otherwise, 2 when an input cannot be read or holds no
valid record.
"""

from __future__ import annotations

import sys

from harness.report import diff
from .report import print_problems
from harness.report.inputs import InputError, load

HELP = "compare two results: regressions and vanished cases (exit 1), fixes, changes"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness diff``."""
    p.add_argument("old", metavar="OLD", help="baseline results file or folder")
    p.add_argument("new", metavar="NEW", help="new results file or folder")
    p.add_argument("--markdown", metavar="FILE", help="also append the markdown summary to FILE "
                   "(e.g. the CI job-summary file, which other steps write to as well)")
    p.add_argument("--allow-vanished", action="store_true",
                   help="do not fail when a case of OLD has no record in NEW (a deliberately narrowed run)")


def run(args) -> int:
    """Load both sides, print the diff; 1 on a regression or a vanished case."""
    sides = []
    for path in (args.old, args.new):
        try:
            loaded = load([path])
        except (InputError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print_problems(loaded)
        if not loaded.records:
            print(f"error: no valid record in {path}", file=sys.stderr)
            return 2
        sides.append(loaded.records)
    d = diff.compare(*sides)
    text = diff.markdown(d, args.old, args.new, allow_vanished=args.allow_vanished)
    print(text)
    if args.markdown:
        try:
            with open(args.markdown, "a", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as exc:
            print(f"error: --markdown {args.markdown}: cannot append ({exc.strerror or exc})", file=sys.stderr)
            return 2
    return 1 if diff.failed(d, allow_vanished=args.allow_vanished) else 0
