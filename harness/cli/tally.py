"""Cases per framework in results files, as a Markdown table (for a CI job summary).

One row per framework: how many cases it has records for and how many ended
in each status. Every framework a matrix in --cases-dir declares gets a row,
so a framework that has no record at all, or whose cases were all skipped,
shows at a glance (and, with --fail-on-missing, fails the job: exit 1).
Exit code 2 for unusable arguments (a missing file, a file that is not results).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

from harness.core import status
from harness.spec.matrix import matrix_files
from harness.report.inputs import ROOT, InputError, load
from harness.spec.yamlsrc import MatrixError, load_yaml

HELP = "cases per framework and status in results files (a Markdown table for a job summary)"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness tally``."""
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results files or folders")
    p.add_argument("--cases-dir", default=str(ROOT / "cases"),
                   help="every framework its matrices declare gets a row, records or not (default: cases/)")
    p.add_argument("--fail-on-missing", action="store_true",
                   help="exit 1 when a declared framework has no record, or only skipped ones")


def declared_frameworks(cases_dir: Path) -> set[str]:
    """The ``framework:`` of each matrix file in ``cases_dir``."""
    out = set()
    for path in matrix_files(cases_dir):
        data = load_yaml(path).data
        if isinstance(data, dict) and isinstance(data.get("framework"), str):
            out.add(data["framework"])
    return out


def tally(records: list[dict], declared: set[str] = frozenset()) -> dict[str, Counter]:
    """framework -> Counter of statuses (an empty Counter for a declared framework without records)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for fw in declared:
        out[fw]  # noqa: B018 - a row even without records
    for rec in records:
        out[rec["framework"]][rec["status"]] += 1
    return dict(sorted(out.items()))


def missing(counts: dict[str, Counter]) -> list[str]:
    """Frameworks without a single case that ran (no record, or every record skipped)."""
    return [fw for fw, c in counts.items() if sum(c.values()) == c.get(status.SKIPPED, 0)]


def markdown(counts: dict[str, Counter], files: list[str]) -> str:
    """The table, with a warning line per framework from :func:`missing`."""
    used = [s for s in status.ALL if any(c.get(s) for c in counts.values())]
    lines = [f"### Cases per framework ({', '.join(Path(f).name for f in files)})", "",
             "| framework | cases | " + " | ".join(used) + " |", "|---|---:|" + "---:|" * len(used)]
    for fw, c in counts.items():
        lines.append(f"| {fw} | {sum(c.values())} | " + " | ".join(str(c.get(s, 0)) for s in used) + " |")
    for fw in missing(counts):
        why = "no record" if not counts[fw] else "every case skipped"
        lines += ["", f"**{fw}: {why}: none of its cases ran.**"]
    return "\n".join(lines) + "\n"


def run(args) -> int:
    """Print the table; exit 1 with --fail-on-missing when a framework ran no case, 2 on bad input."""
    try:
        loaded = load(args.results, include_explore=False)
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        declared = declared_frameworks(Path(args.cases_dir))
    except (MatrixError, OSError) as exc:
        print(f"error: --cases-dir {args.cases_dir}: {exc}", file=sys.stderr)
        return 2
    counts = tally(loaded.records, declared)
    print(markdown(counts, loaded.files), end="")
    gone = missing(counts)
    if args.fail_on_missing and gone:
        print(f"error: no case of {', '.join(gone)} ran", file=sys.stderr)
        return 1
    return 0
