"""The run summary: records written as cases end, counts, and the end-of-run report.

Only the controller (no ``workerinput``) registers :class:`RunSummary`: one
process writes the results file, whatever the number of workers. Every
finished case gets exactly one record: a case whose xdist worker died under it
is recorded as ``crash`` here, from xdist's crash report. A results file that
cannot be written (a full disk) stops the run with one line; the file keeps
every record written before, whole.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.core import faults, record, status
from harness.core.causes import cause_of
from harness.report.results import NotResults, ResultsWriter, WriteFailed
from .collection import CaseCollection
from .options import EXIT_NOT_MEASURED, HarnessConfig, narrowing, other_matrix, shard_field


def _fmt(counter: Counter) -> str:
    return "  ".join(f"{s}={counter[s]}" for s in status.ALL if counter.get(s))


def case_id_of(nodeid: str) -> str | None:
    """The case id in a conformance test's node id (``...::test_case[<id>]``, maybe ``@group`` after)."""
    head, sep, rest = nodeid.partition("[")
    if not sep or "]" not in rest:
        return None
    return rest[:rest.rindex("]")]


def _terminate_as_interrupt(signum, frame):
    """SIGTERM (what CI sends to cancel a job): stop like Ctrl-C, so the summary and reports are written.

    A second SIGTERM ends the process at once (the default action).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt("SIGTERM")


class RunSummary:
    """Plugin object (controller only): appends each case's record as it ends and sums them up."""

    def __init__(self, config, cfg: HarnessConfig, collection: CaseCollection, reserved: Path | None = None):
        self.config = config
        #: the default results file this run claimed (removed at the end if no record went in)
        self.reserved = reserved
        self.cfg = cfg
        self.collection = collection
        self.writer: ResultsWriter | None = None
        self.t0 = time.time()
        self.counts: Counter = Counter()
        self.by_kernel: defaultdict[str, Counter] = defaultdict(Counter)
        self.by_exporter: defaultdict[str, Counter] = defaultdict(Counter)
        #: why the run stopped early (a full disk, -x, Ctrl-C), if it did
        self.stopped: str | None = None
        #: the SIGTERM handler before this run's (restored at the end)
        self._sigterm = None
        self.write_failed = False
        #: the cause ids of the failing records written (for stale cause entries)
        self.causes: set[str] = set()

    def open(self) -> None:
        """Open the results file for appending (a torn last line left by a killed run is repaired first)."""
        self.writer = ResultsWriter(self.cfg.results)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.writer.repaired and tr is not None:
            tr.write_line(f"onnx-conformance: {self.writer.repaired}")

    def pytest_sessionstart(self, session):
        """SIGTERM ends the run like Ctrl-C; appending to an existing results file: check its tail now."""
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        if self.cfg.results.exists() and self.cfg.results.stat().st_size:
            try:
                self.open()
            except WriteFailed as exc:
                raise pytest.UsageError(f"--results {exc.strerror}") from None
            except NotResults as exc:
                raise pytest.UsageError(f"--results {exc}") from None

    def write(self, rec: dict, outcome: str) -> None:
        """Append ``rec`` to the results file and count it; a failed write stops the run (one line)."""
        if self.write_failed:
            return
        if faults.is_fault(rec):  # the machine kept this case from being measured: no verdict to record
            self.stopped, self.write_failed = "harness fault", True
            kept = self.writer.count if self.writer is not None else 0
            pytest.exit(f"onnx-conformance: {rec['message']} ({rec['id']}); run stopped, not a conformance "
                        f"verdict; {kept} record(s) kept in {self.cfg.results}", returncode=EXIT_NOT_MEASURED)
        rec = record.stamp(dict(rec), outcome=outcome,
                           finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        try:
            if self.writer is None:
                self.open()
            self.writer.write(rec)
        except WriteFailed as exc:
            self.stopped, self.write_failed = "results file not writable", True
            pytest.exit(f"{exc.strerror}; run stopped", returncode=pytest.ExitCode.INTERRUPTED)
        self.counts[rec["status"]] += 1
        cause = cause_of(rec)
        if cause is not None:
            self.causes.add(cause.id)
        self.by_kernel[f"{rec['framework']}/{rec['kernel']}"][rec["status"]] += 1
        self.by_exporter[f"{rec['framework']}/{rec['exporter']}"][rec["status"]] += 1

    def pytest_runtest_logreport(self, report):
        """Write the record a case attached to its call-phase report, and count it."""
        if report.when != "call":
            return
        rec = next((v for k, v in report.user_properties if k == "record"), None)
        if rec is None:
            return
        self.write(rec, "xfailed" if hasattr(report, "wasxfail") else report.outcome)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem, report, sched):
        """xdist: a worker died while running ``crashitem``; record its case as ``crash``.

        The case never reported back, so without this its record would be lost.
        Cases the dead worker had been handed but not started are run again by
        another worker (xdist reschedules them), so each still gets one record.
        """
        case = self.collection.case_by_id(case_id_of(crashitem) or "")
        if case is None:
            return
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "?")
        rec = record.new(case, status.CRASH, stage="process",
                         message=f"the pytest worker {worker} died while this case ran ({report.longrepr}); "
                                 f"the case has no verdict of its own")
        record.stamp(rec, worker=worker, **shard_field(self.cfg))
        self.write(rec, "failed")

    def pytest_sessionfinish(self, session, exitstatus):
        """Note a run that stopped early (Ctrl-C, -x, --maxfail): its reports are partial."""
        if self.stopped is None and (exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop
                                     or session.shouldfail):
            self.stopped = "interrupted"

    def reports_dir(self) -> tuple[Path, list[str]]:
        """Where this run's reports go, and why not to reports/ (a partial run never overwrites it)."""
        cfg = self.cfg
        why = narrowing(self.config, cfg) + other_matrix(cfg) + ([self.stopped] if self.stopped else [])
        if not why or cfg.reports_dir_given:
            return cfg.reports_dir, []
        return cfg.results.parent / f"{cfg.results.stem}-reports", why

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        """Print the count per status, per exporter and per kernel; regenerate reports."""
        if self.writer is not None:
            self.writer.close()
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
        if not narrowing(self.config, cfg) and self.stopped is None:
            verdicts = self.config.pluginmanager.get_plugin("onnx-conformance-verdicts")
            for e in verdicts.expectations.entries if verdicts is not None else ():
                if e.cause and e.cause not in self.causes:
                    tr.write_line(f"stale expected failure: {e.where()}: cause {e.cause} occurs in no record "
                                  f"of this run")
        if cfg.report:
            from harness.report import hook as reporting

            out, why = self.reports_dir()
            if why:
                tr.write_line(f"reports: a partial run ({', '.join(why)}): written beside the results, "
                              f"not over {cfg.reports_dir} (--reports-dir to choose)")
            for line in reporting.end_of_run(cfg, self.collection.matrix, out):
                tr.write_line(line)

    def pytest_unconfigure(self, config):
        """Close the results file if the summary did not (e.g. an interrupted run); restore SIGTERM."""
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.reserved is not None and self.reserved.exists() and not self.reserved.stat().st_size:
            self.reserved.unlink()
