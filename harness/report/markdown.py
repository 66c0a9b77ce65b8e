"""support.md: the seed table's own format, one table per framework/exporter/device."""

from __future__ import annotations

import re

from .aggregate import DTYPE_SKIPPED, Summary, cross_cell, cross_framework, dtype_scope_text, dtype_table
from .backends import markdown_sections

# GitHub (job summaries, rendered files) turns markdown into HTML: raw HTML, links and
# images in untrusted text (exporter messages, ids, file names) must stay text.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SPECIAL = re.compile(r"[&<>\\`\[\]|*]")


def text(value: object) -> str:
    """Untrusted text made inert in markdown: one line; no HTML, link, image, code span or emphasis by `*`."""
    line = " ".join(str(value).split())
    return _SPECIAL.sub(lambda m: _ENTITIES.get(m.group(), "\\" + m.group()), line)


def cell(value: object) -> str:
    """Untrusted text made safe for one markdown table cell (see :func:`text`; pipes escaped too)."""
    return text(value)


def by_dtype(summary: Summary, group: tuple[str, str, str]) -> list[str]:
    """The section's by-dtype table (a one-line note when all its cases share one dtype)."""
    cols, table = dtype_table(summary, group)
    if len(cols) < 2:
        return [f"By dtype: every case here is {text(cols[0])}.", ""] if cols else []
    out = ["By dtype:", "",
           f"| {cell(group[0].capitalize())} kernel | " + " | ".join(cell(d) for d in cols) + " |",
           "| --- |" + " --- |" * len(cols)]
    out += [f"| {cell(kernel)} | " + " | ".join(cell(v) for v in vals) + " |" for kernel, vals in table]
    return out + [""]


def render(summary: Summary, meta: dict) -> str:
    """The whole markdown document (deterministic for the same records)."""
    env = meta["environment"]
    pk = ", ".join(f"{k} {v}" for k, v in sorted(env["packages"].items()) if v)
    out = ["# ONNX export support, measured", "",
           f"Built from {meta['n_records']} records in {', '.join(text(f) for f in meta['files'])} "
           f"(newest result {env['date']}).", "",
           f"Environment: {pk}; Python {env['python']} (platform and git commit: support.json).",
           ""]
    for name, versions in env.get("extra_environments", {}).items():
        out += [f"Environment `{name}` (`python -m harness envs create {name}`): "
                + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "cuda_libraries_preloaded") + ".", ""]
    out += [text(dtype_scope_text(meta["dtypes"], meta["n_records"], meta["n_loaded"])), "",
            "Statuses: " + (", ".join(f"{s} {n}" for s, n in sorted(summary.counts.items())) or "none"), "",
            "*ONNX Opset Versions* is the measured range: an opset counts when every variant and dtype "
            "case at that opset passed. *declared* is the range the support table claims. "
            "*By dtype* (under each table) gives the same range at each dtype alone: an opset counts when "
            "every variant case at that opset and dtype passed; `—` cases ran and none passes, "
            f"`{DTYPE_SKIPPED}` every case at that dtype was skipped, blank no case of that dtype; a range lists "
            "only the opsets that dtype ran at (by default dtypes other than float32 run at each exporter's "
            "lowest and highest opset only).", ""]
    for (fw, exporter, device), rows in summary.rows.items():
        out += [f"## {fw} / {exporter} / {device}", "",
                f"| {fw.capitalize()} kernel | ONNX Opset Versions | support_status | declared | "
                f"declared vs measured |",
                "| ------------- | ------------------------------- | -----------------| ------ | ------ |"]
        for r in rows:
            declared = r.declared + (f" ({r.note})" if r.note else "")
            status = r.status_text() if r.tested or not r.reason else r.reason
            out.append(f"| {cell(r.kernel)} | {cell(r.measured() or '—')} | {cell(status)} | "
                       f"{cell(declared)} | {cell(r.marker())} |")
        out.append("")
        out += by_dtype(summary, (fw, exporter, device))
    cols, shared = cross_framework(summary)
    out += ["## Cross-framework (by shared_key)", ""]
    if shared:
        out += ["Each Paddle table kernel (and model) by `shared_key`, with every framework's kernel of "
                "the same semantics and its measured passing range per exporter: `—` none passes, "
                "`not runnable` its cases were skipped (the framework's own table says why), `not run` no case "
                "in these results (no entry, or the entry leaves that exporter out).",
                ""]
    if not shared:
        out += ["No shared_key appears under more than one framework in these results.", ""]
    else:
        out.append("| shared_key | " + " | ".join("/".join(c) for c in cols) + " |")
        out.append("| --- |" + " --- |" * len(cols))
        for key, groups in shared:
            vals = [cross_cell(groups.get(c, [])) for c in cols]
            out.append(f"| {cell(key)} | " + " | ".join(cell(v) for v in vals) + " |")
        out.append("")
    out += markdown_sections(summary.backends, cell)  # runtimes disagree, passes break models, blame
    out += ["## Conflicts", ""]
    if not meta["conflicts"]:
        out += ["None: no record id had results with different statuses.", ""]
    else:
        out += ["Records with the same id but different statuses; rule: " + cell(meta["conflicts"][0]["rule"]), "",
                "| id | kept | dropped |", "| --- | --- | --- |"]
        for c in meta["conflicts"]:
            k = c["kept"]
            dropped = "; ".join(f"{d['status']} ({d['finished']}, {d['source']})" for d in c["dropped"])
            out.append(f"| {cell(c['id'])} | {cell(k['status'])} ({cell(k['finished'])}, {cell(k['source'])}) "
                       f"| {cell(dropped)} |")
        out.append("")
    if meta["bad"]:
        out += ["## Input problems", "", "Lines that are not valid records (left out):", ""]
        out += [f"- {text(b)}" for b in meta["bad"]]
        out.append("")
    return "\n".join(out)
