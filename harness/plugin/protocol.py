"""The test protocol of a conformance case: one report per case instead of pytest's three.

A case does no work in the pytest process: its runner session runs it, and
the verdict comes from the record (:meth:`.verdict.Verdicts.decide`). pytest's
own protocol would still set up and tear down fixtures per test and make,
hook and (under xdist) send and replay three reports: on a 10 ms case that
is a large share of the pytest process's CPU, and the xdist controller pays
its part again. :class:`CaseProtocol` runs a case item itself, through the
hooks every reporter listens to (terminal, junitxml, xdist, the results
file): ``logstart``, one ``call`` report carrying the record (and, for
``--junitxml``, which writes a test's properties from it, a ``teardown``
report), ``logfinish``.

pytest's protocol runs instead with ``--case-protocol pytest``, and always
with ``--pdb``, ``--trace``, ``--runxfail`` or ``--setup-show/-only/-plan``
(see :attr:`~.options.HarnessConfig.light_protocol`); both give each case the
same outcome and the same record.
"""

from __future__ import annotations

import time

import pytest

from harness.core import record, status
from harness.core.case import Case
from harness.core import faults
from .collection import case_of
from .lifecycle import RunnerLifecycle
from .verdict import Verdict

#: a verdict's outcome -> the report's ``outcome`` (an expected failure is "skipped" with ``wasxfail``)
REPORT_OUTCOME = {"passed": "passed", "failed": "failed", "skipped": "skipped", "xfailed": "skipped"}


class CaseProtocol:
    """Plugin object: runs conformance case items with one report each (see the module docstring)."""

    def __init__(self, lifecycle: RunnerLifecycle):
        self.lifecycle = lifecycle

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """Run a case item: logstart, the case, one call report, logfinish. Other items: pytest's protocol."""
        case = case_of(item) if self.lifecycle.cfg.light_protocol else None
        if case is None:
            return None
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        report = self.report(item, case)
        ihook.pytest_runtest_logreport(report=report)
        if item.config.option.xmlpath:  # junitxml writes a test's properties from its teardown report
            ihook.pytest_runtest_logreport(report=pytest.TestReport(
                item.nodeid, item.location, {}, "passed", None, "teardown", user_properties=report.user_properties))
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def report(self, item, case: Case) -> pytest.TestReport:
        """Run ``case`` and make its call report (the record in ``user_properties``)."""
        start, t0 = time.time(), time.perf_counter()
        runner = self.lifecycle.case_runner()
        try:
            rec = runner.run(case)
            verdict = runner.verdicts.decide(case, rec)
        except Exception as exc:  # noqa: BLE001 - a harness bug fails this case, with a record, not the run
            import traceback

            trace = traceback.format_exc()
            if faults.disk_full(exc) or isinstance(exc, MemoryError):  # the machine's fault: the run stops on it
                rec = faults.record_of(case, f"{faults.describe(exc)} while handing {case.id} to its runner")
                verdict = runner.verdicts.decide(case, rec)
            else:
                rec = record.new(case, status.EXPORT_ERROR, stage="harness", message=f"harness error: {exc}",
                                 log=trace)
                verdict = Verdict("failed", f"harness error running {case.id}:\n{trace}")
        longrepr = None
        if verdict.outcome == "failed":
            longrepr = verdict.message
        elif verdict.outcome == "skipped":  # the (path, line, message) form pytest's skip summary folds
            longrepr = (item.location[0], (item.location[1] or 0) + 1, f"Skipped: {verdict.message}")
        rep = pytest.TestReport(item.nodeid, item.location, {}, REPORT_OUTCOME[verdict.outcome], longrepr, "call",
                                duration=time.perf_counter() - t0, start=start, stop=time.time(),
                                user_properties=[("record", rec)])
        if verdict.outcome == "xfailed":
            rep.wasxfail = verdict.message
        return rep
