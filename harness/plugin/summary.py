"""The run summary: records written as cases end, counts, and the end-of-run report.

Only the controller (no ``workerinput``) registers :class:`RunSummary`: one
process writes the results file, whatever the number of workers.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import datetime, timezone

from .. import status
from ..results import ResultsWriter
from .collection import CaseCollection
from .options import HarnessConfig


def _fmt(counter: Counter) -> str:
    return "  ".join(f"{s}={counter[s]}" for s in status.ALL if counter.get(s))


class RunSummary:
    """Plugin object (controller only): appends each case's record as it ends and sums them up."""

    def __init__(self, config, cfg: HarnessConfig, collection: CaseCollection):
        self.config = config
        self.cfg = cfg
        self.collection = collection
        self.writer: ResultsWriter | None = None
        self.t0 = time.time()
        self.counts: Counter = Counter()
        self.by_kernel: defaultdict[str, Counter] = defaultdict(Counter)
        self.by_exporter: defaultdict[str, Counter] = defaultdict(Counter)

    def pytest_runtest_logreport(self, report):
        """Write the record a case attached to its call-phase report, and count it."""
        if report.when != "call":
            return
        rec = next((v for k, v in report.user_properties if k == "record"), None)
        if rec is None:
            return
        if self.writer is None:
            self.writer = ResultsWriter(self.cfg.results)
        rec = dict(rec)
        rec["outcome"] = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.writer.write(rec)
        self.counts[rec["status"]] += 1
        self.by_kernel[f"{rec['framework']}/{rec['kernel']}"][rec["status"]] += 1
        self.by_exporter[f"{rec['framework']}/{rec['exporter']}"][rec["status"]] += 1

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        """Print the count per status, per exporter and per kernel; regenerate reports."""
        if not self.counts:
            return
        tr = terminalreporter
        cfg = self.cfg
        total = sum(self.counts.values())
        tr.section("onnx conformance summary")
        tr.write_line(f"{total} cases in {time.time() - self.t0:.1f} s; records in {cfg.results}")
        tr.write_line("per status:   " + _fmt(self.counts))
        for key in sorted(self.by_exporter):
            tr.write_line(f"{key:<22}" + _fmt(self.by_exporter[key]))
        tr.write_line("per kernel:")
        for key in sorted(self.by_kernel):
            tr.write_line(f"  {key:<34}" + _fmt(self.by_kernel[key]))
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if cfg.report:
            from .. import reporting

            for line in reporting.end_of_run(cfg, self.collection.matrix):
                tr.write_line(line)

    def pytest_unconfigure(self, config):
        """Close the results file if the summary did not (e.g. an interrupted run)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
