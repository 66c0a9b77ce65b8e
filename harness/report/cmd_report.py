"""Build reports/support.{md,json,html,png} from results files.

RESULTS are JSONL files written by the pytest run, or folders (every *.jsonl in
them); several are merged (duplicate ids: the newest 'finished' wins, and
conflicting statuses are listed). Without RESULTS the newest
results/run-*.jsonl is used. Kernels of the matrices in --cases-dir that have
no record are listed as "not run in these results". Invalid lines are reported
as file:line errors and left out (and counted); a file that is not a results
file at all (binary data, a report's support.json) is refused with one line.
--dtypes LIST keeps only the records of those dtypes (the header says which;
a dtype without records is named there too). Each framework/exporter/device
section also gets a by-dtype table: the measured range at each dtype alone.
The exit code is 0 unless no valid record (or an unusable argument, such as an
unknown dtype name) remains: 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..dtypes import NAMES
from .build import build_reports, matrix_rows
from .inputs import ROOT, InputError, load, newest_results

HELP = "build support.md/.json/.html/.png from results files"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness report``."""
    p.add_argument("results", nargs="*", metavar="RESULTS",
                   help="results files or folders (default: the newest results/run-*.jsonl)")
    p.add_argument("--out", default=str(ROOT / "reports"), help="output folder (default: reports/)")
    p.add_argument("--cases-dir", default=str(ROOT / "cases"),
                   help="matrices whose kernels are listed even without records (default: cases/)")
    p.add_argument("--no-matrix", action="store_true", help="list only kernels that have records")
    p.add_argument("--dtypes", metavar="LIST",
                   help=f"comma-separated dtypes to report, of {', '.join(NAMES)} "
                        "(default: every dtype in the records)")


def parse_dtypes(text: str) -> tuple[str, ...]:
    """``'float32,float16'`` -> ``('float32', 'float16')``; ValueError names an unknown or missing name."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown dtype {', '.join(map(repr, unknown))} (known: {', '.join(NAMES)})")
    if not names:
        raise ValueError(f"no dtype given (known: {', '.join(NAMES)})")
    return names


def print_problems(loaded, stream=None) -> None:
    """One line per bad input line and per conflict (to ``stream``, default stderr)."""
    stream = stream or sys.stderr
    for b in loaded.bad:
        print(f"error: {b}", file=stream)
    if loaded.bad:
        print(f"error: {len(loaded.bad)} invalid line(s) left out; {len(loaded.records)} valid record(s) kept",
              file=stream)
    for c in loaded.conflicts:
        dropped = ", ".join(f"{d['status']} from {d['source']}" for d in c["dropped"])
        print(f"conflict: {c['id']}: kept {c['kept']['status']} from {c['kept']['source']} "
              f"(finished {c['kept']['finished']}); dropped {dropped} [{c['rule']}]", file=stream)


def run(args) -> int:
    """Load, report problems, write the four files."""
    try:
        dtypes = None if args.dtypes is None else parse_dtypes(args.dtypes)
    except ValueError as exc:
        print(f"error: --dtypes: {exc}", file=sys.stderr)
        return 2
    try:
        paths = args.results or [newest_results()]
        loaded = load(paths, include_explore=False)
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_problems(loaded)
    if not loaded.records:
        print(f"error: no valid record in {', '.join(loaded.files)}; no report written", file=sys.stderr)
        return 2
    rows, exporters = (), {}
    if not args.no_matrix:
        try:
            rows, exporters = matrix_rows(Path(args.cases_dir))
        except Exception as exc:  # noqa: BLE001 - the report still stands without the matrix
            print(f"warning: matrix in {args.cases_dir} not loaded ({exc}); "
                  f"listing only kernels with records", file=sys.stderr)
    try:
        paths = build_reports(loaded, args.out, rows, exporters, dtypes=dtypes)
    except OSError as exc:  # a full disk: every report already in --out is kept whole
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0
