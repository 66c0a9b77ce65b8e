"""Write support.md, support.json, support.html and support.png from loaded results."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from harness.core.atomic import failed, replacing
from . import html, jsonout, markdown, png
from .aggregate import dtype_is, dtype_scope, summarize
from .environment import environment, shown_path
from .inputs import Loaded, newest_finished

OUTPUTS = ("support.md", "support.json", "support.html", "support.png")


def matrix_rows(cases_dir: Path):
    """Kernel rows (and exporters per framework) of the matrices in ``cases_dir``."""
    from harness.spec.matrix import Scope, load_all, matrix_files

    m = load_all(matrix_files(cases_dir), cases_dir / "tolerances.yaml", Scope(), max_opset=21)
    exporters: dict[str, set] = {}
    for c in m.cases:
        exporters.setdefault(c.framework, set()).add(c.exporter)
    return m.rows, {k: sorted(v) for k, v in exporters.items()}


def build_reports(loaded: Loaded, out_dir: str | Path, rows=(), exporters: dict | None = None,
                  only: tuple[str, ...] = OUTPUTS, timings: dict | None = None,
                  dtypes: tuple[str, ...] | None = None) -> list[Path]:
    """Write the reports of ``loaded`` into ``out_dir``; return the paths written.

    ``rows``/``exporters`` (see :func:`matrix_rows`) add kernels without records.
    ``dtypes``, when given, keeps only the records of those dtypes (the header says which).
    ``timings``, when given, receives (wall, CPU) seconds spent per output.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t, c = time.perf_counter(), time.process_time()
    summary = summarize(loaded.records, rows, exporters, where=None if dtypes is None else dtype_is(*dtypes))
    meta = {"environment": environment(newest_finished(loaded.records)), "files": [shown_path(f) for f in loaded.files],
            "n_records": len(summary.records), "n_loaded": len(loaded.records), "conflicts": loaded.conflicts,
            "bad": loaded.bad, "dtypes": dtype_scope(loaded.records, dtypes)}
    if timings is not None:
        timings["aggregate"] = (time.perf_counter() - t, time.process_time() - c)
    writers = {
        "support.md": lambda p: p.write_text(markdown.render(summary, meta) + "\n", encoding="utf-8"),
        "support.json": lambda p: p.write_text(jsonout.render(summary.records, summary, meta), encoding="utf-8"),
        "support.html": lambda p: p.write_text(html.render(summary, meta, p.parent), encoding="utf-8"),
        "support.png": lambda p: png.write(summary, p),
    }
    # Every output goes to a temporary file first and all are renamed at the end: a full disk
    # (or any failure) leaves the previous set whole, and the error is one line.
    with contextlib.ExitStack() as stack:
        for name in only:
            t, c = time.perf_counter(), time.process_time()
            try:
                writers[name](stack.enter_context(replacing(out / name)))
            except OSError as exc:
                raise failed(out / name, exc) from None
            if timings is not None:
                timings[name] = (time.perf_counter() - t, time.process_time() - c)
        try:
            stack.close()  # the renames
        except OSError as exc:
            raise failed(out, exc) from None
    written = [out / name for name in only]
    if only == OUTPUTS:  # whole-model records also get the model support list (harness.report.models)
        from . import models

        written += models.write(summary.records, out)
    return written
