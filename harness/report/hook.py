"""End-of-run report hook (the report builders live in :mod:`harness.report`)."""

from __future__ import annotations


def end_of_run(cfg, matrix, out_dir=None) -> list[str]:
    """Regenerate reports from ``cfg.results`` into ``out_dir`` (default ``cfg.reports_dir``); return lines.

    Never raises: a failure becomes one line, so reporting cannot break the run.
    """
    try:
        from .build import build_reports
        from .inputs import load

        if not cfg.results.exists():
            return [f"reports: no results file {cfg.results}; nothing to report"]
        loaded = load([cfg.results], include_explore=False)
        lines = [f"reports: {b}" for b in loaded.bad]
        if not loaded.records:
            return lines + [f"reports: no valid record in {cfg.results}; no report written"]
        exporters: dict[str, set] = {}
        for c in matrix.cases:
            exporters.setdefault(c.framework, set()).add(c.exporter)
        paths = build_reports(loaded, out_dir or cfg.reports_dir, matrix.rows,
                              {k: sorted(v) for k, v in exporters.items()})
        lines += [f"reports: wrote {p}" for p in paths]
        from . import triage

        # beside the support reports (often committed): bundle paths named under <repro-dir>
        paths = triage.write(loaded.records, out_dir or cfg.reports_dir, portable=True)
        return lines + [f"reports: wrote {p}" for p in paths]
    except OSError as exc:  # a full disk, an unwritable folder: the reports already there are kept whole
        return [f"reports: failed: {exc}; results are intact in {cfg.results}"]
    except Exception as exc:  # noqa: BLE001 - reporting must not crash the run
        return [f"reports: failed ({type(exc).__name__}: {exc}); results are intact in {cfg.results}"]
