"""The model support list: seed 001's section 六 ("模型转换支持列表") built from whole-model records.

One table per framework (a row per model and exporter) and one cross-framework
table keyed by ``shared_key``, in markdown, HTML and JSON (``models.md``,
``models.html``, ``models.json``). Only records with ``whole_model: true`` count
(the ``--suite models`` matrices and user models); nothing is written when a run
has none. Columns:

| column | from the records of (model, exporter) |
|---|---|
| ONNX opsets that pass | opsets at which every runtime and pass of the model passed |
| runtimes that pass | runtimes with at least one passing record |
| worst max_abs / max_rel | the largest figures over the records that have them |
| top-1 | the lowest top-1 agreement (classifiers) |
| export s / run ms | the largest export time, the largest run time (every batch of one input set list) |
| size MB | the exported model's size |
| failures | the statuses of the other records, with counts |

Below them, the suite's cost per framework: cases, summed and longest case wall time.
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from pathlib import Path

from harness.spec.matrix import format_opsets

OUTPUTS = ("models.md", "models.json", "models.html")

COLUMNS = ("model", "exporter", "ONNX opsets that pass", "runtimes that pass", "worst max_abs / max_rel",
           "top-1", "export s", "run ms", "size MB", "failures")


def model_records(records) -> list[dict]:
    """The whole-model records among ``records``."""
    return [r for r in records if r.get("whole_model")]


def _worst(values) -> float | None:
    found = [v for v in values if isinstance(v, (int, float)) and v == v]
    return max(found) if found else None


def rows(records) -> dict[str, list[dict]]:
    """framework -> one row per (model, exporter), sorted; values as numbers (None where no record has one)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in model_records(records):
        groups[(r["framework"], r["kernel"], r["exporter"])].append(r)
    out: dict[str, list[dict]] = defaultdict(list)
    for (fw, kernel, exporter), recs in sorted(groups.items()):
        by_opset: dict[int, list[str]] = defaultdict(list)
        for r in recs:
            by_opset[r["opset"]].append(r["status"])
        passing = [o for o, sts in by_opset.items() if all(s == "pass" for s in sts)]
        failures = Counter(r["status"] for r in recs if r["status"] != "pass")
        top1 = [r["top1_agree"] for r in recs if isinstance(r.get("top1_agree"), (int, float))]
        run_s = _worst(r.get("run_s") for r in recs if r["status"] == "pass")
        out[fw].append({
            "model": kernel, "shared_key": recs[0].get("shared_key") or kernel, "exporter": exporter,
            "opsets_tested": format_opsets(list(by_opset)), "opsets_pass": format_opsets(passing),
            "runtimes_pass": sorted({r.get("runtime", "ort") for r in recs if r["status"] == "pass"}),
            "max_abs": _worst(r.get("max_abs") for r in recs), "max_rel": _worst(r.get("max_rel") for r in recs),
            "top1": min(top1) if top1 else None,
            "export_s": _worst(r.get("export_s") for r in recs),
            "run_ms": None if run_s is None else run_s * 1000.0,
            "size_mb": _worst(r.get("model_mb") for r in recs),
            "failures": dict(sorted(failures.items())),
            "expected": sum(1 for r in recs if r["status"] != "pass" and r.get("expected")),
            "cases": len(recs),
        })
    return dict(out)


def cross_framework(table: dict[str, list[dict]]) -> tuple[list[str], list[dict]]:
    """(frameworks, rows): per ``shared_key``, per framework the cell ``passing/cases`` over every exporter."""
    frameworks = sorted(table)
    keyed: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    names: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for fw, fw_rows in table.items():
        for row in fw_rows:
            cell = keyed[row["shared_key"]][fw]
            cell[1] += row["cases"]
            cell[0] += row["cases"] - sum(row["failures"].values())
            names[row["shared_key"]][fw].add(row["model"])
    out = []
    for key in sorted(keyed):
        out.append({"shared_key": key, "cells": {
            fw: {"pass": keyed[key][fw][0], "cases": keyed[key][fw][1], "models": sorted(names[key][fw])}
            for fw in frameworks if fw in keyed[key]}})
    return frameworks, out


def cost(records) -> dict[str, dict]:
    """framework -> cases, the summed case wall time (``wall_s``: what the suite costs) and the largest one."""
    out: dict[str, dict] = {}
    for r in model_records(records):
        c = out.setdefault(r["framework"], {"cases": 0, "wall_s": 0.0, "max_wall_s": 0.0})
        c["cases"] += 1
        w = r.get("wall_s")
        if isinstance(w, (int, float)):
            c["wall_s"] += w
            c["max_wall_s"] = max(c["max_wall_s"], w)
    return dict(sorted(out.items()))


def _num(v, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _cells(row: dict) -> list[str]:
    fails = ", ".join(f"{s} {n}" for s, n in row["failures"].items())
    if fails and row["expected"]:
        fails += f" ({row['expected']} expected)"
    figs = "—" if row["max_abs"] is None else f"{row['max_abs']:.2g} / {_num(row['max_rel'], '.2g')}"
    return [row["model"], row["exporter"], row["opsets_pass"] or "none", ", ".join(row["runtimes_pass"]) or "none",
            figs, _num(row["top1"], ".2f"), _num(row["export_s"], ".1f"), _num(row["run_ms"], ".0f"),
            _num(row["size_mb"], ".1f"), fails or "—"]


def render_markdown(table: dict[str, list[dict]], costs: dict | None = None) -> str:
    """Section 六 as markdown: a table per framework, the cross-framework table, the cost per framework."""
    lines = ["# 模型转换支持列表 (model conversion support list)", "",
             "Measured from whole-model records (random weights with calibrated norms; batch 1 and 3 "
             "from one export). Opsets tested per row are in models.json.", ""]
    for fw in sorted(table):
        lines += [f"## {fw}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in table[fw]]
        lines.append("")
    frameworks, keyed = cross_framework(table)
    if keyed:
        lines += ["## across frameworks (by shared_key: passing cases / cases)", "",
                  "| shared_key | " + " | ".join(frameworks) + " |", "|---|" + "---|" * len(frameworks)]
        for row in keyed:
            cells = [f"{c['pass']}/{c['cases']}" if (c := row["cells"].get(fw)) else "" for fw in frameworks]
            lines.append(f"| {row['shared_key']} | " + " | ".join(cells) + " |")
    if costs:
        lines += ["", "## cost per framework (case wall time, summed over the cases)", "",
                  "| framework | cases | wall s | longest case s |", "|---|---|---|---|"]
        lines += [f"| {fw} | {c['cases']} | {c['wall_s']:.0f} | {c['max_wall_s']:.0f} |" for fw, c in costs.items()]
    return "\n".join(lines).rstrip() + "\n"


def render_json(table: dict[str, list[dict]], costs: dict | None = None) -> str:
    """The same tables as JSON (numbers unrounded, sorted keys)."""
    frameworks, keyed = cross_framework(table)
    return json.dumps({"schema": 1, "frameworks": table, "cross_framework": keyed, "cost": costs or {}},
                      indent=1, sort_keys=True) + "\n"


def render_html(table: dict[str, list[dict]], costs: dict | None = None) -> str:
    """The same tables as one self-contained HTML page (no network loads)."""
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>model conversion support list</title>",
             "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1.5em}"
             "td,th{border:1px solid #bbb;padding:2px 6px}td.none{color:#a00}</style></head><body>",
             "<h1>模型转换支持列表 (model conversion support list)</h1>"]
    for fw in sorted(table):
        parts.append(f"<h2>{esc(fw)}</h2><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in COLUMNS) + "</tr>")
        for r in table[fw]:
            cells = _cells(r)
            parts.append("<tr>" + "".join(f"<td class='{'none' if c == 'none' else ''}'>{esc(c)}</td>"
                                          for c in cells) + "</tr>")
        parts.append("</table>")
    frameworks, keyed = cross_framework(table)
    if keyed:
        parts.append("<h2>across frameworks (by shared_key: passing cases / cases)</h2><table><tr><th>shared_key</th>"
                     + "".join(f"<th>{esc(fw)}</th>" for fw in frameworks) + "</tr>")
        for row in keyed:
            cells = [f"{c['pass']}/{c['cases']}" if (c := row["cells"].get(fw)) else "" for fw in frameworks]
            parts.append(f"<tr><td>{esc(row['shared_key'])}</td>" + "".join(f"<td>{esc(c)}</td>" for c in cells)
                         + "</tr>")
        parts.append("</table>")
    if costs:
        parts.append("<h2>cost per framework</h2><table><tr><th>framework</th><th>cases</th><th>wall s</th>"
                     "<th>longest case s</th></tr>")
        parts += [f"<tr><td>{esc(fw)}</td><td>{c['cases']}</td><td>{c['wall_s']:.0f}</td>"
                  f"<td>{c['max_wall_s']:.0f}</td></tr>" for fw, c in costs.items()]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(records, out_dir: str | Path) -> list[Path]:
    """Write models.md/.json/.html into ``out_dir`` when ``records`` hold whole models; return the paths."""
    table = rows(records)
    if not table:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    costs = cost(records)
    for name, render in zip(OUTPUTS, (render_markdown, render_json, render_html)):
        (out / name).write_text(render(table, costs), encoding="utf-8")
        written.append(out / name)
    return written
