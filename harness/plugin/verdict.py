"""The verdict: a case's record turned into pass, fail, skip or xfail, under strict expectations."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.core import status
from harness.core.case import DEFAULT_PASS, DEFAULT_RUNTIME, Case
from harness.spec.expectations import Expectations
from harness.spec.yamlsrc import MatrixError
from harness.core import faults
from harness.core.causes import cause_of
from .collection import CaseCollection, targets_conformance
from .options import HarnessConfig, narrowing


def xfail(reason: str):
    """``pytest.xfail`` without a Python traceback in the report.

    The verdict comes from the record, so a traceback into the harness says
    nothing, and pytest builds one by parsing this module's source with ``ast``
    for every expected failure (815 in the default run, 1793 with
    ``--opsets full``), in the pytest process, on the critical path.
    """
    raise pytest.xfail.Exception(reason, pytrace=False)


@dataclass(frozen=True)
class Verdict:
    """A record's test outcome: ``passed``, ``failed``, ``skipped`` or ``xfailed``, and why."""

    outcome: str
    message: str = ""


class Verdicts:
    """Plugin object: the expected failures of the run, and the judge of each record."""

    def __init__(self, config, cfg: HarnessConfig, collection: CaseCollection):
        self.config = config
        self.cfg = cfg
        self.collection = collection
        self._expectations: Expectations | None = None

    @property
    def expectations(self) -> Expectations:
        """The expected-failure entries, loaded once; a bad file is a one-line usage error."""
        if self._expectations is None:
            try:
                self._expectations = Expectations.load(self.cfg.expected, self.cfg.scope.forms)
            except MatrixError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._expectations

    def pytest_sessionstart(self, session):
        """Controller: warn about expected-failure entries that match no case of the whole matrix.

        Checked against the matrix the run's scope generates (also under xdist,
        where the controller collects nothing), and only when the run is not
        narrowed (--smoke, a filter, -k, --case-ids, a shard, node ids): a slice
        leaves most entries unmatched without them being stale. Below
        ``--opsets full`` an entry is stale only if it matches no case at any
        opset: the other opsets' entries are for full runs.
        """
        config = session.config
        if getattr(config, "workerinput", None) is not None:
            return
        if narrowing(config, self.cfg) or not targets_conformance(config):
            return
        try:
            exp, cases = self.expectations, self.collection.matrix.cases
        except pytest.UsageError:
            return  # collection reports it
        full = self.cfg.scope.opsets == "full"
        axes = {c.id: (c.runtime, c.post_pass) for c in cases
                if (c.runtime, c.post_pass) != (DEFAULT_RUNTIME, DEFAULT_PASS)}
        for e in exp.mark_collected([c.id for c in cases], axes, any_opset=not full):
            config.issue_config_time_warning(pytest.PytestWarning(
                f"{exp.path}:{e.line}: expected failure {e.match!r} matches no case of the matrix"
                + ("" if full else " at any opset")), 2)

    def decide(self, case: Case, rec: dict) -> Verdict:
        """The test outcome of ``rec`` under strict expectations (notes the expectation in ``rec``)."""
        st, msg = rec["status"], rec.get("message", "")
        if faults.is_fault(rec):  # not measured, and not to be taken for a skip: the run stops on it
            return Verdict("failed", f"{msg} (not a conformance verdict)")
        if st == status.SKIPPED:
            return Verdict("skipped", msg)
        detail = f"{st}: {msg}" + (f"\n--- exporter log ---\n{rec['log']}" if rec.get("log") else "")
        if rec.get("repro_bundle"):
            detail += f"\nrepro bundle: {rec['repro_bundle']}  (python {rec['repro_bundle']}/repro.py)"
        cause = cause_of(rec)
        exp = self.expectations.find(case.id, case.runtime, case.post_pass, cause.id if cause else "")
        if exp is not None:
            rec["expected"] = {"status": list(exp.status) or [st], "reason": exp.text()}
            if exp.cause:
                rec["expected"]["cause"] = exp.cause
            if st == status.PASS:
                rec["unexpected_pass"] = True
                return Verdict("failed", f"unexpected pass (strict): expected {'/'.join(exp.status)} because "
                                         f"{exp.text()} [{exp.where()}]")
            if exp.cause or st in exp.status:
                return Verdict("xfailed", f"{st}: {exp.text()}")
            return Verdict("failed", f"expected {'/'.join(exp.status)} ({exp.text()}) but got {detail}"
                                     + (f"\ncause: {cause.id} ({cause.title})" if cause else ""))
        if st == status.PASS:
            return Verdict("passed")
        if not case.declared.get("in_range", True):
            rec["expected"] = {"status": [st], "reason": "outside the declared opset range"}
            return Verdict("xfailed", f"{st} at opset {case.opset}, outside the range the table declares "
                                      f"({case.declared['range']}): {msg}")
        return Verdict("failed", detail + (f"\ncause: {cause.id} ({cause.title})" if cause else ""))

    def judge(self, case: Case, rec: dict) -> None:
        """Pass, fail, skip or xfail the current test from the record (see :meth:`decide`)."""
        v = self.decide(case, rec)
        if v.outcome == "skipped":
            pytest.skip(v.message)
        if v.outcome == "xfailed":
            xfail(v.message)
        if v.outcome == "failed":
            pytest.fail(v.message, pytrace=False)
