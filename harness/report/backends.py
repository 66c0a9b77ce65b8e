"""What the runtime and post-export pass axes add to a report: disagreements, broken models, blame.

* :func:`where` labels a record's heatmap group: its device, plus its runtime
  and pass when not the defaults (so each runtime and pass gets its own heatmap);
* :func:`summarize` finds the cases where runtimes disagree about one exported
  model, the cases a pass breaks, and counts blame per exporter and per runtime;
* :func:`deployment_lines` gives the seeds' deployment lines (framework/exporter
  -> ONNX -> runtime): the kernels and models that make it through each, and
  the stage where each line breaks for the rest.

Everything comes from the records' own fields.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from harness.core import status as st
from harness.core.case import DEFAULT_PASS, DEFAULT_RUNTIME


def axes(rec: dict) -> tuple[str, str]:
    """(runtime, post-export pass) of a record; records older than these axes ran ORT without a pass."""
    return str(rec.get("runtime") or DEFAULT_RUNTIME), str(rec.get("post_pass") or DEFAULT_PASS)


def where(rec: dict) -> str:
    """The record's device, with ``runtime R`` / ``pass P`` appended when not the defaults."""
    runtime, post_pass = axes(rec)
    out = str(rec.get("device", "cpu"))
    if runtime != DEFAULT_RUNTIME:
        out += f" · runtime {runtime}"
    if post_pass != DEFAULT_PASS:
        out += f" · pass {post_pass}"
    return out


@dataclass
class Disagreement:
    """One exported model (after one pass) on which two or more runtimes reached different statuses."""

    case: str  # the case id without its runtime suffix
    kernel: str
    opset: int
    post_pass: str
    #: runtime -> the record it produced
    by_runtime: dict[str, dict]


@dataclass
class BackendSummary:
    """The runtime/pass tables of a report."""

    runtimes: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    #: records whose status names the post-export pass (pass-error, pass-invalid-model, pass-changed-result)
    pass_breaks: list[dict] = field(default_factory=list)
    #: (framework/exporter) -> blame -> count, and runtime -> blame -> count
    blame_by_exporter: dict[str, Counter] = field(default_factory=dict)
    blame_by_runtime: dict[str, Counter] = field(default_factory=dict)
    #: one per (framework/exporter, runtime) with a measured case, see :func:`deployment_lines`
    lines: list["Line"] = field(default_factory=list)


#: where a deployment line breaks, by status: the exporter's side, the runtime's side, the values
STAGE_OF = {st.EXPORT_ERROR: "export", st.INVALID_MODEL: "export", st.OPSET_NOT_HONORED: "export",
            st.RUNTIME_UNSUPPORTED: "runtime", st.RUNTIME_ERROR: "runtime", st.CRASH: "runtime",
            st.TIMEOUT: "runtime", st.MISMATCH: "values", st.SHAPE_MISMATCH: "values",
            st.DTYPE_MISMATCH: "values", st.PASS_ERROR: "pass", st.PASS_INVALID_MODEL: "pass",
            st.PASS_CHANGED_RESULT: "pass"}
STAGES = ("export", "runtime", "values", "pass")
#: kernels named per stage in a line's "where it breaks" cell
NAMED_PER_STAGE = 4


@dataclass
class Line:
    """One deployment line: a framework's exporter, ONNX, one runtime (after one pass)."""

    line: str  # e.g. "torch/torchscript → ONNX → tvm"
    kernels: int = 0
    through: int = 0
    models: int = 0
    models_through: int = 0
    #: stage -> kernel -> the first failing record of that kernel (by id)
    breaks: dict[str, dict[str, dict]] = field(default_factory=dict)


def _is_model(rec: dict) -> bool:
    """A model-level case (the matrices mark them in the table note) rather than one kernel."""
    declared = rec.get("declared")
    return isinstance(declared, dict) and "model-level" in str(declared.get("note", ""))


def deployment_lines(records: list[dict]) -> list[Line]:
    """Per framework/exporter and runtime: kernels (and models) whose every measured case passes there,
    and for each other kernel the stage of its first failing case (export, runtime, values, pass)."""
    by_line: dict[tuple, dict[str, list[dict]]] = {}
    for rec in records:
        if rec.get("status") == st.SKIPPED:
            continue
        runtime, post_pass = axes(rec)
        key = (f"{rec['framework']}/{rec['exporter']}", runtime, post_pass)
        by_line.setdefault(key, {}).setdefault(str(rec["kernel"]), []).append(rec)
    out = []
    for (exporter, runtime, post_pass) in sorted(by_line):
        name = f"{exporter} → ONNX" + (f" → {post_pass}" if post_pass != DEFAULT_PASS else "") + f" → {runtime}"
        line = Line(name)
        for kernel, recs in sorted(by_line[(exporter, runtime, post_pass)].items()):
            model = any(_is_model(r) for r in recs)
            line.kernels += not model
            line.models += model
            failing = sorted((r for r in recs if r.get("status") != st.PASS), key=lambda r: str(r["id"]))
            if not failing:
                line.through += not model
                line.models_through += model
                continue
            first = min(failing, key=lambda r: (STAGES.index(STAGE_OF.get(r["status"], "runtime")), str(r["id"])))
            line.breaks.setdefault(STAGE_OF.get(first["status"], "runtime"), {})[kernel] = first
        out.append(line)
    return out


def _base_key(rec: dict) -> tuple:
    return (rec.get("framework"), rec.get("exporter"), rec.get("kernel"), rec.get("variant"),
            rec.get("opset"), rec.get("dtype"), rec.get("device"), axes(rec)[1])


def _base_id(rec: dict) -> str:
    """The id without its runtime suffix (ids end ``-<device>[-<runtime>][-<pass>]``)."""
    runtime, post_pass = axes(rec)
    rid = str(rec["id"])
    tail = f"-{post_pass}" if post_pass != DEFAULT_PASS and rid.endswith(f"-{post_pass}") else ""
    rid = rid[:len(rid) - len(tail)]
    if runtime != DEFAULT_RUNTIME and rid.endswith(f"-{runtime}"):
        rid = rid[:-len(runtime) - 1]
    return rid + tail


def summarize(records: list[dict]) -> BackendSummary:
    """Disagreements, broken models and blame counts of ``records`` (deterministic order)."""
    out = BackendSummary()
    runtimes, passes = set(), set()
    models: dict[tuple, dict[str, dict]] = {}
    for rec in records:
        runtime, post_pass = axes(rec)
        runtimes.add(runtime)
        passes.add(post_pass)
        status = rec.get("status")
        if status != st.SKIPPED:
            models.setdefault(_base_key(rec), {})[runtime] = rec
        if status in st.PASS_FAILURES:
            out.pass_breaks.append(rec)
        blame = rec.get("blame")
        if blame:
            out.blame_by_exporter.setdefault(f"{rec['framework']}/{rec['exporter']}", Counter())[blame] += 1
            out.blame_by_runtime.setdefault(runtime, Counter())[blame] += 1
    for key in sorted(models, key=lambda k: tuple(str(x) for x in k)):
        by_runtime = models[key]
        if len(by_runtime) > 1 and len({r["status"] for r in by_runtime.values()}) > 1:
            first = next(iter(by_runtime.values()))
            out.disagreements.append(Disagreement(_base_id(first), str(first["kernel"]), int(first["opset"]),
                                                  key[-1], dict(sorted(by_runtime.items()))))
    out.runtimes, out.passes = sorted(runtimes), sorted(passes)
    if len(out.runtimes) > 1:
        out.lines = deployment_lines(records)
    out.pass_breaks.sort(key=lambda r: str(r["id"]))
    return out


def figures(rec: dict) -> str:
    """``status`` plus ``max_abs``/``max_rel`` when the record has them, e.g. ``mismatch (max_abs 0.5, max_rel 1)``."""
    figs = [f"{k} {rec[k]:.3g}" for k in ("max_abs", "max_rel") if isinstance(rec.get(k), (int, float))]
    return str(rec["status"]) + (f" ({', '.join(figs)})" if figs and rec["status"] != st.PASS else "")


@dataclass
class Table:
    """One report table, as plain text cells (each writer escapes them its own way)."""

    title: str
    intro: str
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def tables(summary: BackendSummary) -> list[Table]:
    """The runtime/pass tables of a report: disagreements, broken models, blame (only where they apply)."""
    out: list[Table] = []
    if summary.lines:
        t = Table("Deployment lines",
                  "Each framework's exporter through ONNX to each runtime: the kernels (and model-level cases) "
                  "whose every measured case passes on that line, and where the line breaks for the others "
                  "(the stage of a kernel's first failing case: export = the exporter's model is refused or "
                  "invalid, runtime = the runtime cannot load or run it or crashes, values = it runs and "
                  "computes something else; a few kernels named per stage with their status and blame).",
                  ["line", "kernels through", "models through",
                   *(f"breaks at {s}" for s in STAGES), "where it breaks"])
        for ln in summary.lines:
            where = []
            for stage in STAGES:
                kernels = ln.breaks.get(stage, {})
                named = [f"{k} ({r['status']}" + (f", {r['blame']}" if r.get("blame") else "") + ")"
                         for k, r in list(kernels.items())[:NAMED_PER_STAGE]]
                if named:
                    more = len(kernels) - len(named)
                    where.append(f"{stage}: " + ", ".join(named) + (f" and {more} more" if more > 0 else ""))
            t.rows.append([ln.line, f"{ln.through}/{ln.kernels}",
                           f"{ln.models_through}/{ln.models}" if ln.models else "—",
                           *(str(len(ln.breaks.get(s, {}))) for s in STAGES), "; ".join(where)])
        out.append(t)
    if len(summary.runtimes) > 1:
        t = Table("Runtimes disagree",
                  f"Exported models on which the runtimes ({', '.join(summary.runtimes)}) reached different "
                  "statuses; figures are each runtime's output against the framework's.")
        if not summary.disagreements:
            t.intro += " None here: every runtime reached the same status on every exported model."
        else:
            t.header = ["case", "kernel", "opset", "pass", *summary.runtimes, "blame"]
            for d in summary.disagreements:
                vals = [figures(d.by_runtime[r]) if r in d.by_runtime else "—" for r in summary.runtimes]
                blames = "; ".join(f"{r}: {rec['blame']}" for r, rec in d.by_runtime.items() if rec.get("blame"))
                t.rows.append([d.case, d.kernel, str(d.opset), d.post_pass, *vals, blames])
        out.append(t)
    if len(summary.passes) > 1 or summary.pass_breaks:
        t = Table("Post-export passes break models",
                  "Cases whose status names the pass: it raised, wrote an invalid model, or its model fails "
                  "where the exported one passes on the same runtime (*after the pass*: that model's own verdict).")
        if not summary.pass_breaks:
            t.intro += (f" None here: no pass ({', '.join(p for p in summary.passes if p != DEFAULT_PASS)}) "
                        "broke a model.")
        else:
            t.header = ["case", "pass", "runtime", "kernel", "opset", "status", "after the pass", "message"]
            for rec in summary.pass_breaks:
                runtime, post_pass = axes(rec)
                after = figures({**rec, "status": rec.get("pass_status") or rec["status"]})
                t.rows.append([str(rec["id"]), post_pass, runtime, str(rec["kernel"]), str(rec["opset"]),
                               str(rec["status"]), after, str(rec.get("message", ""))[:300]])
        out.append(t)
    if summary.blame_by_exporter:
        intro = ("Whose bug each failure is, from the ONNX reference evaluator's second opinion on the exported "
                 "model (`blame` in the records; `blame_why` says why).")
        for title, table in (("framework/exporter", summary.blame_by_exporter),
                             ("runtime under test", summary.blame_by_runtime)):
            t = Table(f"Blame per {title}", intro, [title, *(f"blame: {b}" for b in st.BLAMES)])
            t.rows = [[name, *(str(table[name].get(b, 0)) for b in st.BLAMES)] for name in sorted(table)]
            out.append(t)
            intro = ""
    return out


def markdown_sections(summary: BackendSummary, cell) -> list[str]:
    """support.md lines for :func:`tables` (``cell`` escapes one table cell)."""
    out: list[str] = []
    for t in tables(summary):
        out += [f"## {t.title}", ""] + ([t.intro, ""] if t.intro else [])
        if t.header:
            out += ["| " + " | ".join(cell(h) for h in t.header) + " |", "|" + " --- |" * len(t.header)]
            out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in t.rows]
            out.append("")
    return out
