"""What the cases of a run cost, read from its records (or from a floor's done file).

Both tables are computed from the per-case lines alone, so they read the same
whether the run was made by the bench or is an older results file
(``python -m harness bench --from-results FILE``).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


def _lines(path: Path):
    """The JSON objects of a JSON-lines file (other lines skipped); nothing if it is missing."""
    if not Path(path).exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec


def _timed(rec: dict, key: str) -> float | None:
    v = rec.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def export_shares(path: Path) -> dict:
    """Per ``framework/exporter`` in a results (or floor done) file: (cases, mean export s, share).

    The share is the summed export time over the summed case wall time
    (``wall_s``: for the harness, the pytest side's time for the whole case:
    hand-over, build or cache, export, check, runtime, compare, record).
    Cases without an export time (skipped, failed before export) are left out.
    """
    sums: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    for rec in _lines(path):
        if rec.get("export_s") is None or not rec.get("wall_s"):
            continue
        key = rec.get("exporter", "")
        if "/" not in key:
            key = f"{rec.get('framework')}/{key}"
        acc = sums[key]
        acc[0] += 1
        acc[1] += rec["export_s"]
        acc[2] += rec["wall_s"]
    return {k: (n, e / n, e / w) for k, (n, e, w) in sorted(sums.items())}


@dataclass
class FrameworkCost:
    """One framework's cases in one run."""

    cases: int  # records with a case wall time (skipped ones are not counted)
    wall_s: float  # their summed case wall time
    mean_s: float  # mean case wall time
    median_s: float  # median case wall time
    export_s: float | None  # mean export time over the cases that exported
    export_share: float | None  # summed export time over the summed wall time of those cases
    run_s: float | None  # mean runtime time (session + run) over the cases that ran
    peak_pss_mib: float | None = None  # the framework's runner processes, summed, at their largest


def framework_costs(path: Path, skip_statuses: tuple[str, ...] = ("skipped",)) -> dict[str, FrameworkCost]:
    """Per framework of a results (or done) file: what its cases cost (see :class:`FrameworkCost`).

    A line counts when it has a ``wall_s``; ``export_s`` and ``run_s`` are
    averaged over the lines that have one (a case that failed before its
    export has none). The framework is the record's ``framework`` field, or
    the part before ``/`` of an ``exporter`` written as ``framework/exporter``.
    """
    walls: dict[str, list[float]] = defaultdict(list)
    exports: dict[str, list[tuple[float, float]]] = defaultdict(list)
    runs: dict[str, list[float]] = defaultdict(list)
    for rec in _lines(path):
        wall = _timed(rec, "wall_s")
        if wall is None or rec.get("status") in skip_statuses:
            continue
        fw = rec.get("framework") or str(rec.get("exporter", "")).partition("/")[0]
        walls[fw].append(wall)
        export = _timed(rec, "export_s")
        if export is not None and not rec.get("export_reused"):
            exports[fw].append((export, wall))
        run = _timed(rec, "run_s")
        if run is not None:
            runs[fw].append(run)
    out = {}
    for fw, w in walls.items():
        ex = exports.get(fw, [])
        out[fw] = FrameworkCost(
            cases=len(w), wall_s=sum(w), mean_s=statistics.mean(w), median_s=statistics.median(w),
            export_s=statistics.mean(e for e, _ in ex) if ex else None,
            export_share=sum(e for e, _ in ex) / sum(x for _, x in ex) if ex and sum(x for _, x in ex) else None,
            run_s=statistics.mean(runs[fw]) if runs.get(fw) else None)
    return out


def order_frameworks(names) -> list[str]:
    """``names`` in the reports' framework order (paddle, torch, tensorflow, oneflow), others after by name."""
    from harness.core.registry import FRAMEWORK_ORDER

    rank = {n: i for i, n in enumerate(FRAMEWORK_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def median_costs(per_round: list[dict[str, FrameworkCost]]) -> dict[str, FrameworkCost]:
    """Per framework, the median over rounds of each figure (None where no round has it)."""
    out = {}
    for fw in order_frameworks({fw for r in per_round for fw in r}):
        got = [r[fw] for r in per_round if fw in r]

        def med(field, got=got):
            vals = [getattr(c, field) for c in got if getattr(c, field) is not None]
            return statistics.median(vals) if vals else None

        out[fw] = FrameworkCost(cases=int(med("cases")), wall_s=med("wall_s"), mean_s=med("mean_s"),
                                median_s=med("median_s"), export_s=med("export_s"),
                                export_share=med("export_share"), run_s=med("run_s"),
                                peak_pss_mib=med("peak_pss_mib"))
    return out


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def print_framework_costs(rows: list[tuple[str, dict[str, FrameworkCost]]], with_pss: bool = True) -> None:
    """One line per (run, framework): cases, mean and median case wall, mean export, export share,
    mean run (ms), and the framework's peak PSS where sampled."""
    if not any(costs for _, costs in rows):
        return
    print(f"  {'run':<6}{'framework':<12}{'cases':>6}{'mean ms':>10}{'median ms':>11}{'export ms':>11}"
          f"{'export share':>14}{'run ms':>9}" + (f"{'peak PSS MiB':>14}" if with_pss else ""))
    for key, costs in rows:
        for fw in order_frameworks(costs):
            c = costs[fw]
            pss = "-" if c.peak_pss_mib is None else f"{c.peak_pss_mib:.0f}"
            print(f"  {key:<6}{fw:<12}{c.cases:>6}{_ms(c.mean_s):>10}{_ms(c.median_s):>11}{_ms(c.export_s):>11}"
                  f"{_pct(c.export_share):>14}{_ms(c.run_s):>9}" + (f"{pss:>14}" if with_pss else ""))


def print_suite_costs(costs: dict[str, FrameworkCost], total_wall: float | None = None) -> None:
    """The model suite's table: per framework cases, summed case wall, s per case, export s, run s, peak PSS."""
    print(f"  {'framework':<12}{'cases':>6}{'wall s':>9}{'s/case':>8}{'median s':>10}{'export s':>10}"
          f"{'run s':>8}{'peak PSS MiB':>14}")

    def s(x: float | None, d: int = 2) -> str:
        return "-" if x is None else f"{x:.{d}f}"

    for fw in order_frameworks(costs):
        c = costs[fw]
        print(f"  {fw:<12}{c.cases:>6}{c.wall_s:>9.1f}{s(c.mean_s):>8}{s(c.median_s):>10}{s(c.export_s):>10}"
              f"{s(c.run_s, 3):>8}{s(c.peak_pss_mib, 0):>14}")
    n = sum(c.cases for c in costs.values())
    summed = sum(c.wall_s for c in costs.values())
    whole = f"   (the run itself: {total_wall:.1f} s wall)" if total_wall else ""
    print(f"  {'all':<12}{n:>6}{summed:>9.1f}{whole}")
