"""Records -> per-kernel support rows and per-(kernel, opset) heatmap cells.

An opset counts as *passing* for a kernel when every case run at that opset
(every variant and dtype, skipped cases aside) passed. :func:`summarize` takes
a record filter (``where``: the report's ``--dtypes`` selection), and its
by-dtype table is the same per-kernel rows over each dtype's records alone.
Nothing here is hard-coded: statuses, ranges and figures all come from the records.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.core import dtypes, registry
from harness.core import status as st
from harness.spec.matrix import format_opsets
from . import backends

_RANGE = re.compile(r"^\s*(\d+)\s*~\s*(\d+)\s*$")
#: Longest error text kept for a failing detail (HTML and JSON).
DETAIL_CHARS = 400
#: Most failing details embedded per heatmap cell.
DETAILS_PER_CELL = 25


def group_key(rec: dict) -> tuple[str, str, str]:
    """(framework, exporter, device) of a record; the device names a non-default runtime and pass too."""
    return (str(rec["framework"]), str(rec["exporter"]), backends.where(rec))


def declared_opsets(text: str) -> set[int]:
    """``'1~12'`` -> {1..12}; an unreadable range gives the empty set."""
    m = _RANGE.match(str(text or ""))
    return set(range(int(m.group(1)), int(m.group(2)) + 1)) if m else set()


def cell_status(counts: Counter) -> str:
    """One status for a heatmap cell: pass, skipped, or the most frequent failure."""
    fails = {s: n for s, n in counts.items() if s not in (st.PASS, st.SKIPPED)}
    if fails:
        order = {s: i for i, s in enumerate(st.ALL)}
        return min(fails, key=lambda s: (-fails[s], order.get(s, 99), s))
    return st.PASS if counts.get(st.PASS) else st.SKIPPED


@dataclass
class KernelRow:
    """What the records say about one kernel under one framework/exporter/device."""

    framework: str
    exporter: str
    device: str
    kernel: str
    declared: str = ""
    note: str = ""
    shared_key: str = ""
    by_opset: dict[int, Counter] = field(default_factory=dict)
    skip_reasons: set[str] = field(default_factory=set)
    worst: dict | None = None  # the mismatch record with the largest max_abs
    reason: str = ""  # why nothing ran (rows with no runnable case)
    expected: int = 0  # failures the records mark as expected

    @property
    def tested(self) -> list[int]:
        """Opsets with at least one non-skipped case."""
        return sorted(o for o, c in self.by_opset.items() if sum(c.values()) > c.get(st.SKIPPED, 0))

    @property
    def passing(self) -> list[int]:
        """Opsets at which every non-skipped case passed."""
        return [o for o in self.tested if all(s in (st.PASS, st.SKIPPED) for s in self.by_opset[o])]

    @property
    def failing(self) -> list[int]:
        """Tested opsets with at least one failure."""
        ok = set(self.passing)
        return [o for o in self.tested if o not in ok]

    def measured(self) -> str:
        """The measured passing range, e.g. ``7~9, 11~21`` (empty when none passes)."""
        return format_opsets(self.passing)

    def status_text(self) -> str:
        """The support_status text, derived from the measured failures only."""
        if not self.tested:
            why = "; ".join(sorted(self.skip_reasons)) or self.reason or "no case ran"
            return f"not runnable: {why}"
        counts: Counter = Counter()
        where: dict[str, list[int]] = {}
        for o in self.failing:
            for s, n in self.by_opset[o].items():
                if s not in (st.PASS, st.SKIPPED):
                    counts[s] += n
                    where.setdefault(s, []).append(o)
        total = sum(sum(self.by_opset[o].values()) - self.by_opset[o].get(st.SKIPPED, 0) for o in self.tested)
        if not counts:
            text = f"all {total} cases pass"
        else:
            order = {s: i for i, s in enumerate(st.ALL)}
            how = "; ".join(f"{s} ×{counts[s]} at {format_opsets(where[s])}"
                            for s in sorted(counts, key=lambda s: (order.get(s, 99), s)))
            text = f"fails at opset {format_opsets(self.failing)}: {how}"
            if self.worst is not None:
                w = self.worst
                text += (f"; worst max_abs {w['max_abs']:.3g} (opset {w['opset']}, "
                         f"{w['variant']}, {w['dtype']})")
            if self.expected:
                text += f"; {self.expected} expected"
        if self.skip_reasons:
            text += "; some skipped: " + "; ".join(sorted(self.skip_reasons))
        return text

    def marker(self) -> str:
        """Where the declared range and the measurement disagree ('' when nothing was tested)."""
        tested = set(self.tested)
        if not tested:
            return ""
        dec = declared_opsets(self.declared)
        passing = set(self.passing)
        parts = []
        broken = sorted((dec & tested) - passing)
        beyond = sorted(passing - dec) if dec else []
        if broken:
            parts.append(f"✗ declared but failing: {format_opsets(broken)}")
        if beyond:
            parts.append(f"+ passes beyond declared: {format_opsets(beyond)}")
        return "; ".join(parts) or "✓ agrees"


Group = tuple[str, str, str]
#: A record filter: which records an aggregation takes.
Where = Callable[[dict], bool]
#: A by-dtype cell where every case of the kernel at that dtype was skipped.
DTYPE_SKIPPED = "skipped"


@dataclass
class Summary:
    """Everything the writers need, computed once."""

    rows: dict[Group, list[KernelRow]]  # sorted by group, then kernel
    cells: dict[Group, dict[tuple[str, int], dict]]
    opsets: list[int]
    counts: Counter
    #: runtimes disagreeing, passes breaking models, blame counts (see :mod:`.backends`)
    backends: backends.BackendSummary = field(default_factory=backends.BackendSummary)
    #: group -> dtype (in :data:`harness.core.dtypes.NAMES` order) -> kernel -> its row at that dtype alone
    by_dtype: dict[Group, dict[str, dict[str, KernelRow]]] = field(default_factory=dict)
    #: the records aggregated (those the ``where`` of :func:`summarize` accepted)
    records: list[dict] = field(default_factory=list)

    @property
    def dtypes(self) -> list[str]:
        """Every dtype the aggregated records hold, in :data:`harness.core.dtypes.NAMES` order."""
        return dtypes.ordered(d for per in self.by_dtype.values() for d in per)


def dtype_is(*names: str) -> Where:
    """A record filter taking the records whose dtype is one of ``names``."""
    wanted = frozenset(names)
    return lambda rec: str(rec.get("dtype") or "") in wanted


def dtype_scope(records: list[dict], selected=None) -> dict:
    """What a report covers on the dtype axis: ``selected`` (None: every dtype in the records),
    ``covered`` (the dtypes with records in the report) and ``missing`` (selected, without records)."""
    present = {str(r.get("dtype") or "") for r in records}
    if selected is None:
        return {"selected": None, "covered": dtypes.ordered(present), "missing": []}
    chosen = dtypes.ordered(selected)
    return {"selected": chosen, "covered": [d for d in chosen if d in present],
            "missing": [d for d in chosen if d not in present]}


def dtype_scope_text(scope: dict, n_records: int, n_loaded: int) -> str:
    """The report header's line on the dtypes it covers (see :func:`dtype_scope`)."""
    if scope["selected"] is None:
        return f"Dtypes: every dtype in the records ({', '.join(scope['covered']) or 'none'})."
    text = (f"Dtypes: only {', '.join(scope['selected'])} (--dtypes {','.join(scope['selected'])}): "
            f"{n_records} of {n_loaded} records")
    if scope["missing"]:
        text += f"; no record of {', '.join(scope['missing'])} in these results"
    return text + "."


#: how much of a skip reason a table cell keeps (the records and support.json keep all of it)
REASON_CHARS = 160


def short_reason(message: str, limit: int = REASON_CHARS) -> str:
    """A skip reason on one line, cut to ``limit`` characters (a framework's own message can run to
    several hundred: Paddle's "kernel not registered" one lists every dtype and a C++ hint)."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def kernel_rows(records: list[dict]) -> dict[Group, dict[str, KernelRow]]:
    """Group -> kernel -> :class:`KernelRow` of ``records``."""
    rows: dict[Group, dict[str, KernelRow]] = {}
    for rec in records:
        g = group_key(rec)
        kernel, opset, status = str(rec["kernel"]), int(rec["opset"]), str(rec["status"])
        row = rows.setdefault(g, {}).get(kernel)
        if row is None:
            decl = rec.get("declared") or {}
            row = rows[g][kernel] = KernelRow(*g, kernel, declared=str(decl.get("range", "")),
                                              note=str(decl.get("note", "")),
                                              shared_key=str(rec.get("shared_key") or kernel))
        row.by_opset.setdefault(opset, Counter())[status] += 1
        if status == st.SKIPPED:
            row.skip_reasons.add(short_reason(rec.get("message") or "skipped"))
        elif status != st.PASS:
            if rec.get("expected"):
                row.expected += 1
            if isinstance(rec.get("max_abs"), (int, float)) and status == st.MISMATCH and (
                    row.worst is None or rec["max_abs"] > row.worst["max_abs"]):
                row.worst = rec
    return rows


def heatmap_cells(records: list[dict]) -> tuple[dict[Group, dict[tuple[str, int], dict]], Counter, set[int]]:
    """Per-(kernel, opset) cells by group, the status counts and the opsets seen."""
    cells: dict[Group, dict[tuple[str, int], dict]] = {}
    counts: Counter = Counter()
    opsets: set[int] = set()
    for rec in records:
        kernel, opset, status = str(rec["kernel"]), int(rec["opset"]), str(rec["status"])
        counts[status] += 1
        opsets.add(opset)
        cell = cells.setdefault(group_key(rec), {}).setdefault(
            (kernel, opset), {"counts": Counter(), "fails": [], "unexpected": 0})
        cell["counts"][status] += 1
        if status not in (st.PASS, st.SKIPPED) and not rec.get("expected"):
            cell["unexpected"] += 1
        if status not in (st.PASS,) and len(cell["fails"]) < DETAILS_PER_CELL:
            cell["fails"].append(detail(rec))
    return cells, counts, opsets


def summarize(records: list[dict], matrix_rows=(), matrix_exporters: dict | None = None,
              where: Where | None = None) -> Summary:
    """Aggregate the records ``where`` accepts (every record when None).

    ``matrix_rows`` (``harness.spec.matrix.Row``) add kernels with no record;
    ``Summary.by_dtype`` holds the same per-kernel rows at each dtype alone.
    """
    if where is not None:
        records = [r for r in records if where(r)]
    rows = kernel_rows(records)
    cells, counts, opsets = heatmap_cells(records)
    of_dtype: dict[str, list[dict]] = {}
    for r in records:
        of_dtype.setdefault(str(r.get("dtype") or ""), []).append(r)
    by_dtype: dict[Group, dict[str, dict[str, KernelRow]]] = {}
    for d in dtypes.ordered(of_dtype):
        for g, kernels in kernel_rows(of_dtype[d]).items():
            by_dtype.setdefault(g, {})[d] = kernels
    _add_matrix_rows(rows, matrix_rows, matrix_exporters or {})
    order = sorted(rows, key=framework_rank)
    return Summary(rows={g: [rows[g][k] for k in sorted(rows[g])] for g in order},
                   cells={g: cells.get(g, {}) for g in order},
                   opsets=sorted(opsets), counts=counts, backends=backends.summarize(records),
                   by_dtype={g: by_dtype.get(g, {}) for g in order}, records=records)


def dtype_cell(row: KernelRow | None) -> str:
    """One by-dtype cell: the measured passing range at that dtype; ``—`` cases ran and none
    passes; :data:`DTYPE_SKIPPED` every case was skipped; ``''`` no case of that dtype."""
    if row is None:
        return ""
    if row.tested:
        return row.measured() or "—"
    return DTYPE_SKIPPED


def dtype_table(summary: Summary, group: Group) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The by-dtype table of ``group``: its dtype columns and, for each kernel with records, one cell per dtype."""
    per = summary.by_dtype.get(group, {})
    cols = list(per)
    table = []
    for r in summary.rows.get(group, []):
        found = [per[d].get(r.kernel) for d in cols]
        if any(f is not None for f in found):
            table.append((r.kernel, [dtype_cell(f) for f in found]))
    return cols, table


def _add_matrix_rows(rows: dict, matrix_rows, matrix_exporters: dict) -> None:
    for mrow in matrix_rows:
        groups = [g for g in rows if g[0] == mrow.framework]
        if not groups:
            groups = [(mrow.framework, e, "cpu") for e in matrix_exporters.get(mrow.framework, ())]
        for g in groups:
            if mrow.kernel in rows.setdefault(g, {}):
                continue
            reason = "not run in these results"
            if mrow.unavailable:
                reason += f" (unavailable: {mrow.unavailable})"
            rows[g][mrow.kernel] = KernelRow(*g, mrow.kernel, declared=str(mrow.declared), note=mrow.note,
                                             shared_key=mrow.shared_key, reason=reason)


def detail(rec: dict) -> dict:
    """The compact description of a non-passing case shown when a heatmap cell is opened."""
    msg = " ".join(str(rec.get("message") or "").split())
    if len(msg) > DETAIL_CHARS:
        msg = msg[:DETAIL_CHARS] + "…"
    out = {"id": str(rec["id"]), "variant": str(rec.get("variant", "")), "dtype": str(rec.get("dtype", "")),
           "status": str(rec["status"]), "stage": str(rec.get("stage") or ""), "message": msg}
    if isinstance(rec.get("max_abs"), (int, float)):
        out["max_abs"] = rec["max_abs"]
    if rec.get("expected"):
        out["expected"] = True
    if rec.get("repro_bundle"):
        out["bundle"] = str(rec["repro_bundle"])
    return out


#: Column order of the cross-framework table (frameworks not listed follow, by name).
FRAMEWORK_ORDER = registry.FRAMEWORK_ORDER


def framework_rank(group: tuple[str, ...]) -> tuple:
    """Sort key of a (framework, exporter, device) group: :data:`FRAMEWORK_ORDER` first."""
    fw = group[0]
    return (FRAMEWORK_ORDER.index(fw) if fw in FRAMEWORK_ORDER else len(FRAMEWORK_ORDER), *group)


def cross_framework(summary: Summary) -> tuple[list[tuple[str, str, str]], list[tuple[str, dict]]]:
    """Side-by-side rows for shared_keys present under two or more frameworks.

    Returns (column groups in :data:`FRAMEWORK_ORDER`, [(shared_key, {group: [KernelRow, ...]})]).
    """
    by_key: dict[str, dict[tuple, list[KernelRow]]] = {}
    for g, rows in summary.rows.items():
        for row in rows:
            by_key.setdefault(row.shared_key, {}).setdefault(g, []).append(row)
    shared = {k: v for k, v in by_key.items() if len({g[0] for g in v}) > 1}
    cols = sorted({g for v in shared.values() for g in v}, key=framework_rank)
    return cols, sorted(shared.items())


def cross_cell(rows: list[KernelRow]) -> str:
    """One cross-framework cell: each kernel with its measured passing range.

    ``—`` when cases ran and none passed at any opset; ``not runnable`` when its
    cases were skipped (no counterpart, environment missing: the group's own table
    says why); ``not run`` when these results hold no case of it (no entry, or the
    entry leaves this exporter out).
    """
    parts = []
    for r in rows:
        if r.tested:
            parts.append(f"{r.kernel}: {r.measured() or '—'}")
        else:
            parts.append(f"{r.kernel}: {'not runnable' if r.skip_reasons else 'not run'}")
    return "; ".join(parts) or "not run"
