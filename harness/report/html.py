"""support.html: one self-contained page (inline CSS/JS) from a jinja2 template, autoescaped.

The heatmap is aggregated per (kernel, opset) cell, so the page stays small
for 100,000 records; only non-passing details are embedded, as JSON inside a
``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

from markupsafe import Markup

from harness.core import status as st
from .aggregate import DTYPE_SKIPPED, Summary, cell_status, declared_opsets, dtype_scope_text, dtype_table
from .backends import tables
from .colors import COLORS, NOT_RUN, color

TEMPLATES = Path(__file__).resolve().parent / "templates"


def script_json(data) -> Markup:
    """JSON safe to place inside a script element: no ``<``, ``>`` or ``&`` characters remain."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def href(target: Path, out_dir: Path | None) -> str:
    """A link from the page in ``out_dir`` to ``target``: relative when they share a root, else file://."""
    if out_dir is not None:
        try:
            return urllib.parse.quote(Path(os.path.relpath(target, out_dir)).as_posix())
        except ValueError:  # another drive
            pass
    return target.resolve().as_uri()


def bundle_links(case: dict, out_dir: Path | None) -> dict:
    """A failing case's detail with ``links`` (label, href) to its repro bundle and the pictures in it.

    The pictures are those drawn so far (``graph.svg`` of the exported model, ``graph.<pass>.svg``
    of the model after a pass; see :mod:`harness.report.netron`); the bundle's path itself is
    not kept in the page.
    """
    case = dict(case)
    bundle = case.pop("bundle", None)
    if bundle:
        folder = Path(bundle)
        links = [["bundle", href(folder, out_dir) + "/"]]
        if (folder / "graph.svg").is_file():
            links.append(["graph", href(folder / "graph.svg", out_dir)])
        for pic in sorted(folder.glob("graph.*.svg")):
            links.append([f"graph after {pic.name[len('graph.'):-len('.svg')]}", href(pic, out_dir)])
        case["links"] = links
    return case


def view(summary: Summary, out_dir: Path | None = None) -> tuple[list[dict], dict]:
    """Template sections and the details map (cell key -> failing cases, linked to their bundles)."""
    sections, details = [], {}
    for gi, (g, rows) in enumerate(summary.rows.items()):
        cells = summary.cells.get(g, {})
        grows = []
        for r in rows:
            rcells = []
            declared = declared_opsets(r.declared)
            for o in summary.opsets:
                c = cells.get((r.kernel, o))
                if c is None:
                    rcells.append({"status": NOT_RUN, "color": color(NOT_RUN), "text": "", "key": "", "exp": False,
                                   "title": f"{r.kernel} opset {o}: not run"})
                    continue
                s = cell_status(c["counts"])
                n_bad = sum(n for k, n in c["counts"].items() if k not in (st.PASS, st.SKIPPED))
                key = f"{gi}/{r.kernel}/{o}" if c["fails"] else ""
                if key:
                    details[key] = {"group": "/".join(g), "kernel": r.kernel, "opset": o,
                                    "counts": dict(sorted(c["counts"].items())),
                                    "shown": len(c["fails"]),
                                    "total": sum(n for k, n in c["counts"].items() if k != st.PASS),
                                    "cases": [bundle_links(f, out_dir) for f in c["fails"]]}
                title = f"{r.kernel} opset {o}: " + ", ".join(f"{k} {n}" for k, n in sorted(c["counts"].items()))
                expected_only = bool(n_bad) and not c["unexpected"]
                if expected_only:
                    title += " (all expected failures)"
                rcells.append({"status": s, "color": color(s), "text": str(n_bad) if n_bad else "",
                               "exp": expected_only,
                               "key": key, "title": title})
            for o, c in zip(summary.opsets, rcells):
                c["in"] = o in declared
            grows.append({"kernel": r.kernel, "measured": r.measured(), "declared": r.declared,
                          "marker": r.marker(), "reason": "" if r.tested else (r.reason or r.status_text()),
                          "status_text": r.status_text() if r.tested else "", "cells": rcells})
        dtype_cols, dtype_rows = dtype_table(summary, g)
        sections.append({"framework": g[0], "exporter": g[1], "device": g[2], "rows": grows,
                         "dtype_cols": dtype_cols, "dtype_rows": dtype_rows})
    return sections, details


def render(summary: Summary, meta: dict, out_dir: Path | None = None) -> str:
    """The page's HTML text; links to repro bundles are relative to ``out_dir`` (the page's folder)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    sections, details = view(summary, out_dir)
    legend = [(s, COLORS[s]) for s in (*st.ALL, NOT_RUN) if s in COLORS]
    return env.get_template("support.html.j2").render(
        sections=sections, details_json=script_json(details), opsets=summary.opsets, legend=legend,
        colors=COLORS, meta=meta, dtype_skipped=DTYPE_SKIPPED,
        dtype_scope=dtype_scope_text(meta["dtypes"], meta["n_records"], meta["n_loaded"]),
        counts=sorted(summary.counts.items()), backend_tables=tables(summary.backends),
        frameworks=sorted({s["framework"] for s in sections}),
        exporters=sorted({s["exporter"] for s in sections}),
        devices=sorted({s["device"] for s in sections}))
