"""The triage report: one row per cause, and one upstream-ready draft per cause.

Built from result records only (:func:`harness.core.causes.group`), so it
works on any results file, old ones included. :func:`write` puts
``causes.md``, ``causes.json``, ``causes.html`` and ``causes/<id>.md`` in a
folder; the pytest run writes them beside its support reports.

Every failing record is in exactly one cause, and the totals say so: the
header's failing count is the sum of the rows' reaches.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from harness.core import status as st
from harness.core.causes import Group, group
from .markdown import cell, text

OUTPUTS = ("causes.md", "causes.json", "causes.html")
#: the folder of the per-cause drafts, beside causes.md
DRAFTS = "causes"
#: lines of the exporter's log quoted in a draft (its end, where the error is)
LOG_LINES = 25


def ranges(values) -> str:
    """Sorted integers folded into runs: ``7~12, 17``."""
    from harness.spec.matrix import format_opsets

    return format_opsets(sorted(set(values))) if values else ""


def _first_seen(g: Group) -> str:
    return min((r.get("finished") or "" for r in g.records), default="") or ""


def _expected(g: Group) -> str:
    """How the run's expected failures cover the cause: by cause entry, by pattern, or not."""
    kinds = Counter("cause" if (r.get("expected") or {}).get("cause") else "pattern" if r.get("expected")
                    else "no" for r in g.records)
    if set(kinds) == {"cause"}:
        return "cause entry"
    if "no" not in kinds:
        return "patterns" if "cause" not in kinds else "cause entry + patterns"
    return "no" if len(kinds) == 1 else f"{kinds['no']} of {g.reach} not expected"


def row(g: Group) -> dict:
    """The cause's row: its id, title, blame, reach and scope."""
    c = g.cause
    blames = Counter(r.get("blame") or ("framework" if c.party == "framework" else "none") for r in g.records)
    return {**c.as_dict(), "reach": g.reach, "blame": dict(sorted(blames.items())),
            "statuses": g.scope("status"), "kernels": g.scope("kernel"), "opsets": ranges(g.scope("opset")),
            "dtypes": g.scope("dtype"), "exporters": sorted({f"{r['framework']}/{r['exporter']}" for r in g.records}),
            "runtimes": g.scope("runtime") or ["ort"], "passes": g.scope("post_pass") or ["none"],
            "first_seen": _first_seen(g), "expected": _expected(g), "smallest": g.smallest()["id"],
            "records": [r["id"] for r in g.records]}


def summary(records) -> tuple[list[Group], dict]:
    """The groups and the totals (failing records, causes, causes per project)."""
    groups = group(records)
    n_fail = sum(1 for r in records if r.get("status") in st.FAILURES)
    per_project = Counter(g.cause.project for g in groups)
    totals = {"records": len(records), "failing": n_fail, "causes": len(groups),
              "grouped": sum(g.reach for g in groups), "per_project": dict(sorted(per_project.items()))}
    return groups, totals


def markdown(groups: list[Group], totals: dict, limit: int | None = None, drafts: str | None = DRAFTS) -> str:
    """``causes.md``: the totals and one row per cause, widest first (``limit`` rows, e.g. for a job summary)."""
    per = ", ".join(f"{text(k)} {v}" for k, v in totals["per_project"].items())
    out = ["## ONNX conformance: failures by cause", "",
           f"{totals['failing']} failing record(s) of {totals['records']} in **{totals['causes']} cause(s)** "
           f"({totals['grouped']} grouped; every failing record is in exactly one cause).", "",
           f"Causes per project: {per or 'none'}.", "",
           "| # | cause | title | blame | reach | statuses | kernels | opsets | dtypes | exporters | runtimes "
           "| expected | first seen |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    shown = groups if limit is None else groups[:limit]
    for i, g in enumerate(shown, 1):
        r = row(g)
        link = f"[`{r['id']}`]({drafts}/{r['id']}.md)" if drafts else f"`{r['id']}`"
        kernels = ", ".join(r["kernels"][:6]) + (f" (+{len(r['kernels']) - 6})" if len(r["kernels"]) > 6 else "")
        out.append(" | ".join([
            f"| {i}", link, cell(r["title"]), cell(", ".join(f"{k} {v}" for k, v in r["blame"].items())),
            str(r["reach"]), cell(", ".join(r["statuses"])), cell(kernels), cell(r["opsets"]),
            cell(", ".join(r["dtypes"])), cell(", ".join(r["exporters"])), cell(", ".join(r["runtimes"])),
            cell(r["expected"]), cell(r["first_seen"])]) + " |")
    if limit is not None and len(groups) > limit:
        out.append(f"| … | {len(groups) - limit} more cause(s) | | | "
                   f"{sum(g.reach for g in groups[limit:])} | | | | | | | | |")
    return "\n".join(out)


def as_json(groups: list[Group], totals: dict, meta: dict) -> str:
    """``causes.json``: the totals, the environment and every cause's row."""
    return json.dumps({"totals": totals, "meta": meta, "causes": [row(g) for g in groups]},
                      indent=1, sort_keys=True, ensure_ascii=False, default=str)


def html(groups: list[Group], totals: dict) -> str:
    """``causes.html``: the same table as a self-contained, autoescaped page."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("causes.html.j2").render(rows=[row(g) for g in groups], totals=totals)


def _shown_path(path: str, portable: bool) -> str:
    """A bundle path as a draft names it: as recorded, or (``portable``) under ``<repro-dir>``."""
    if not path:
        return ""
    return f"<repro-dir>/{Path(path).name}" if portable and Path(path).is_absolute() else path


_SITE = re.compile(r"(?<![\w/<])/[^\s'\"]*?/site-packages/")
_TMP = re.compile(r"(?<![\w/<])/tmp/[^\s/'\"]+/")


def portable_text(text: str) -> str:
    """``text`` without this machine's paths: site-packages, the checkout and temporary folders named."""
    from .environment import ROOT

    text = _SITE.sub("<site-packages>/", text)
    text = text.replace(str(ROOT) + "/", "<repo>/")
    return _TMP.sub("<tmp>/", text)


def _versions(env: dict, rec: dict) -> list[str]:
    pk = {k: v for k, v in (env.get("packages") or {}).items() if v}
    lines = [f"- {k} {v}" for k, v in sorted(pk.items())]
    for name, vers in sorted((env.get("extra_environments") or {}).items()):
        if rec["framework"] in name or name in rec["framework"]:
            lines.extend(f"- {k} {v} (environment `{name}`)" for k, v in vers.items())
    lines.append(f"- Python {env.get('python', '?')}, {env.get('platform', '?')}")
    if env.get("git_sha"):
        lines.append(f"- harness commit {env['git_sha'][:12]}")
    return lines


def _expected_vs_actual(rec: dict, addressee: str) -> tuple[str, str]:
    what = f"{rec['framework']} `{rec['kernel']}` ({rec.get('variant', 'default')}) at {rec.get('dtype')}"
    expected = (f"the {rec['exporter']} exporter writes a valid ONNX model of {what} at opset {rec['opset']}, "
                f"and {rec.get('runtime', 'ort')} computes what {rec['framework']} computes "
                f"(tolerance `{rec.get('tolerance')}`)")
    actual = f"`{rec['status']}` at stage `{rec.get('stage') or '?'}`"
    if rec.get("blame_why"):
        actual += f"; blame `{rec.get('blame')}`: {rec['blame_why']}"
    if isinstance(rec.get("max_abs"), (int, float)) and rec["status"] in (st.MISMATCH, st.OPSET_NOT_HONORED):
        actual += f"; max_abs {rec['max_abs']:.3g}, max_rel {rec.get('max_rel') or 0:.3g}"
    return expected, actual


def draft(g: Group, env: dict, portable: bool = False) -> str:
    """``causes/<id>.md``: a bug report for the cause's project, from its smallest case."""
    c, r = g.cause, g.smallest()
    if portable:
        r = {**r, "message": portable_text(r.get("message") or ""), "log": portable_text(r.get("log") or "")}
    expected, actual = _expected_vs_actual(r, c.project)
    bundle = _shown_path(r.get("repro_bundle") or "", portable)
    lines = [f"# {c.title}", "",
             f"To: **{c.project}** ({'the exporter' if c.party == st.BLAME_EXPORTER else c.party}). "
             f"Found by an ONNX export conformance harness: {g.reach} case(s) fail this way "
             f"(cause `{c.id}`).", "",
             "## Environment", "", *_versions(env, r), "",
             "## Smallest case", "",
             f"`{r['id']}`: {r['framework']} `{r['kernel']}`, variant `{r.get('variant', 'default')}`, "
             f"exporter `{r['exporter']}`, opset {r['opset']}, {r.get('dtype')}, {r.get('device', 'cpu')}, "
             f"runtime `{r.get('runtime', 'ort')}`, post-export pass `{r.get('post_pass', 'none')}`.", ""]
    if r.get("op_types"):
        lines += [f"ONNX op types in the exported model: {', '.join(r['op_types'])}.", ""]
    if bundle:
        lines += [f"Repro bundle (model, inputs, reference outputs, the harness code that ran): `{bundle}`. "
                  "It needs only the framework, onnx, onnxruntime and numpy "
                  "(`pip install -r requirements.txt`). Reproduce with:", "", "```sh",
                  f"python {bundle}/repro.py", "```", "",
                  "Exit code 1 and a last line `REPRODUCED: <status>: ...` mean the failure happens here.", ""]
    else:
        lines += ["No repro bundle was written for this case (run with `--repro-dir DIR` to get one); "
                  "rerun it with:", "", "```sh", f"pytest conformance -k '{r['id']}' -n 0", "```", ""]
    lines += ["## Expected", "", expected + ".", "", "## Actual", "", actual + ".", "",
              "## Error", "", "```", (r.get("message") or "").strip(), "```", ""]
    log = [ln for ln in (r.get("log") or "").strip().splitlines() if ln.strip()]
    if log:
        lines += [f"Exporter log (last {min(len(log), LOG_LINES)} lines):", "", "```",
                  *log[-LOG_LINES:], "```", ""]
    node = c.op or "(not named by the error)"
    names = c.facts.get("nodes") or []
    lines += ["## ONNX node", "", f"Op type: `{node}`" + (f"; node name(s): {', '.join(f'`{n}`' for n in names)}"
                                                        if names else "") + ".", "",
              "## Scope", "", "| exporter | kernel | opsets | dtypes | runtimes | statuses | cases |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    cells: dict[tuple, list] = {}
    for rec in g.records:
        cells.setdefault((rec["exporter"], rec["kernel"]), []).append(rec)
    for (exp, kernel), recs in sorted(cells.items()):
        lines.append(f"| {cell(exp)} | {cell(kernel)} | {ranges(x['opset'] for x in recs)} | "
                     f"{cell(', '.join(sorted({x.get('dtype', '') for x in recs})))} | "
                     f"{cell(', '.join(sorted({x.get('runtime', 'ort') for x in recs})))} | "
                     f"{cell(', '.join(sorted({x['status'] for x in recs})))} | {len(recs)} |")
    lines += ["", f"Derived from: kind `{c.kind}`, template `{c.template}`"
              + "".join(f", {k} `{v}`" for k, v in sorted(c.facts.items()) if k != "nodes") + "."]
    return "\n".join(lines) + "\n"


def write(records, out_dir: str | Path, env: dict | None = None, meta: dict | None = None,
          portable: bool = False) -> list[Path]:
    """Write causes.md, causes.json, causes.html and one draft per cause into ``out_dir``."""
    from .environment import environment
    from .inputs import newest_finished

    out = Path(out_dir)
    drafts = out / DRAFTS
    drafts.mkdir(parents=True, exist_ok=True)
    groups, totals = summary(records)
    env = env if env is not None else environment(newest_finished(records))
    (out / "causes.md").write_text(markdown(groups, totals) + "\n", encoding="utf-8")
    (out / "causes.json").write_text(as_json(groups, totals, {**(meta or {}), "environment": env}) + "\n",
                                     encoding="utf-8")
    (out / "causes.html").write_text(html(groups, totals), encoding="utf-8")
    keep = {f"{g.cause.id}.md" for g in groups}
    for old in drafts.glob("*.md"):  # a cause gone since the last run leaves no draft behind
        if old.name not in keep:
            old.unlink()
    for g in groups:
        (drafts / f"{g.cause.id}.md").write_text(draft(g, env, portable), encoding="utf-8")
    return [out / n for n in OUTPUTS] + [drafts]
