"""The runner lifecycle: one runner master per framework, sessions per pytest process.

The pytest processes never import a framework. Each framework's master runs
in that framework's interpreter (see :mod:`harness.isolation.environments`), imports only
that framework (plus onnx and the default runtime) and warms it up once:

* under xdist the controller starts the masters in ``pytest_configure``, so
  their imports overlap the workers' start-up and collection, and every worker
  opens its sessions on them (their addresses travel in ``workerinput``);
* in a plain ``-n 0`` run (or a worker whose master is gone) the pytest process
  starts its own, also before collection.

:class:`CaseRunner` (the ``case_runner`` fixture) routes each case to its
framework's session and hands it the next case early (``ahead``).
"""

from __future__ import annotations

import os
import shutil

import pytest

from harness.core import devices, record, status
from harness.isolation import environments
from harness.core.case import Case
from harness.isolation.processes import SessionClient, Master, sweep_stale_temp_dirs, temp_dir
from harness.core.wire import EXPORTER_TARGET
from .collection import CaseCollection, case_of, targets_conformance
from .options import EXIT_NOT_MEASURED, HarnessConfig, required, shard_field
from .verdict import Verdicts


def where_cases_run(config) -> str | None:
    """"here" (a worker, or a plain -n 0 run of conformance/), "workers" (an xdist controller), or None."""
    if config.option.collectonly or not targets_conformance(config):
        return None  # e.g. the harness's own tests: no runner unless a case asks for one
    if getattr(config, "workerinput", None) is not None:
        return "here"
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "dist", "no") != "no":
        return "workers"
    return "here"


class RunnerLifecycle:
    """Plugin object: starts and stops the runner masters and this process's sessions."""

    def __init__(self, config, cfg: HarnessConfig, collection: CaseCollection, verdicts: Verdicts):
        self.config = config
        self.cfg = cfg
        self.collection = collection
        self.verdicts = verdicts
        #: framework -> the master this process started for the workers (xdist controller only)
        self.masters: dict[str, Master] = {}
        #: framework -> a session opened before collection, adopted by the first CaseRunner
        self.early: dict[str, SessionClient] = {}
        #: framework -> a session that only resolves the matrix's ``call:`` targets (xdist controller)
        self.checkers: dict[str, SessionClient] = {}
        #: the case pytest runs after the current one (see pytest_runtest_protocol)
        self.next_case: Case | None = None
        self.runner: CaseRunner | None = None
        #: where the controller leaves the expanded matrix for its workers (see CaseCollection.ship)
        self.ship_dir: str | None = None

    def start(self) -> None:
        """Start what this process needs before collection (imports overlap it)."""
        where = where_cases_run(self.config)
        if where is None:
            return
        if getattr(self.config, "workerinput", None) is None:
            sweep_stale_temp_dirs()  # left by runs that were killed
        frameworks = [fw for fw in self.collection.frameworks() if environments.unavailable(fw) is None]
        plugins = self.collection.plugins()
        calls = self.call_targets()
        if where == "workers":
            for fw in frameworks:
                self.masters[fw] = Master(plugins, (fw,), python=environments.interpreter(fw)).start()
                # one session per master says, before the first case, whether its framework imported
                # (and resolves the call: targets)
                self.checkers[fw] = self.executor(fw, self.masters[fw].describe(), calls.get(fw, ()))
                self.checkers[fw].start()
        else:
            for fw in frameworks:
                ex = self.executor(fw, check_calls=calls.get(fw, ()))
                ex.start()
                self.early[fw] = ex

    def call_targets(self) -> dict[str, tuple[str, ...]]:
        """framework -> the ``call:`` targets of the cases that will run (controller only; else empty)."""
        if getattr(self.config, "workerinput", None) is not None or self.cfg.explore:
            return {}
        out: dict[str, set[str]] = {}
        for c in self.collection.matrix.cases:
            if c.spec.get("call") and not c.skip:
                out.setdefault(c.framework, set()).add(c.spec["call"])
            if not c.skip:  # the exporters too: the adapter registers them, in the runner only
                out.setdefault(c.framework, set()).add(f"{EXPORTER_TARGET}{c.framework}/{c.exporter}")
        return {fw: tuple(sorted(t)) for fw, t in out.items()}

    def check_calls(self, executors: dict[str, SessionClient]) -> None:
        """Wait for ``executors`` to say hello; a ``call:`` target that did not resolve is a usage error.

        Runs once collection is done: the runners imported and warmed up meanwhile,
        and the first case would wait for them anyway.
        """
        for fw, ex in executors.items():
            try:
                bad = ex.wait_ready()
            except (TimeoutError, OSError) as exc:  # killed while importing (the OOM killer), stuck, ...
                self.close()
                pytest.exit(f"onnx-conformance: the {fw} runner did not start ({exc}): it died or hung while "
                            f"importing and warming up (limit: --startup-timeout {self.cfg.startup_timeout:g} s); "
                            f"run stopped before its first case", returncode=EXIT_NOT_MEASURED)
            self.check_imports(ex.import_failures)
            if bad:
                target, why = sorted(bad.items())[0]
                matrix = self.collection.matrix
                if target.startswith(EXPORTER_TARGET):
                    self.close()
                    where = matrix.exporter_sources.get(target[len(EXPORTER_TARGET):], "")
                    raise pytest.UsageError(f"{where}: exporters: {why}")
                case = next(c for c in matrix.cases if c.spec.get("call") == target)
                more = f" (and {len(bad) - 1} more call target(s))" if len(bad) > 1 else ""
                self.close()
                where = matrix.call_sources.get(target, case.source)  # the line of the call: field itself
                raise pytest.UsageError(f"{where}: entries[{case.kernel}].call: {target!r} does not "
                                        f"resolve in {fw} ({why}){more}")

    def check_imports(self, failures: dict[str, tuple[str, str]]) -> None:
        """A framework that did not import stops the run (exit 6) if broken, or if missing and required.

        A broken install (the package is there, its import fails) never passes
        for "not installed": every case of it would be skipped and the run green.
        """
        for fw, (kind, why) in sorted(failures.items()):
            if kind == "broken":
                self.close()
                pytest.exit(f"onnx-conformance: {why}; run stopped before its first case (reinstall it, or "
                            f"--framework to run the others)", returncode=EXIT_NOT_MEASURED)
            if required(self.cfg, fw):
                self.close()
                pytest.exit(f"onnx-conformance: --require-frameworks: every {fw} case would be skipped: {why}",
                            returncode=EXIT_NOT_MEASURED)

    def pytest_collection_finish(self, session):
        """A plain run: the early sessions resolved the ``call:`` targets while pytest collected."""
        if getattr(self.config, "workerinput", None) is None and self.early:
            self.check_calls(self.early)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        """xdist controller: check the ``call:`` targets before the first case is handed out."""
        checkers, self.checkers = self.checkers, {}
        try:
            self.check_calls(checkers)
        finally:
            for ex in checkers.values():
                ex.close()

    def executor(self, framework: str, shared: dict | None = None, check_calls: tuple[str, ...] = ()) -> SessionClient:
        """A new executor for ``framework``, on the controller's master for it where there is one."""
        cfg = self.cfg
        shared = shared or getattr(self.config, "workerinput", {}).get("harness_masters", {}).get(framework)
        return SessionClient(timeout=cfg.timeout, startup_timeout=cfg.startup_timeout,
                             plugins=self.collection.plugins(),
                             label=f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{framework}",
                             frameworks=(framework,), repro_dir=str(cfg.repro_dir) if cfg.repro_dir else None,
                             master=shared, python=environments.interpreter(framework), check_calls=check_calls)

    def case_runner(self) -> "CaseRunner":
        """This process's :class:`CaseRunner` (made on first use)."""
        if self.runner is None:
            self.runner = CaseRunner(self)
        return self.runner

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        """xdist hook: every worker learns the results path, the masters and the devices."""
        cfg = self.cfg
        node.workerinput["harness_results"] = str(cfg.results)
        node.workerinput["harness_dist"] = getattr(self.config.option, "dist", "no")  # see models_dist
        node.workerinput["harness_masters"] = {fw: m.describe() for fw, m in self.masters.items()}
        node.workerinput["harness_devices"] = {"present": list(cfg.present),
                                               "providers": list(cfg.ort_providers)}
        # probed once here: spares every worker importing onnx + onnxruntime to collect
        from harness.spec.matrix import testable_max_opset

        node.workerinput["harness_max_opset"] = testable_max_opset()
        if targets_conformance(self.config) and not self.config.option.collectonly:
            if self.ship_dir is None:
                self.ship_dir = temp_dir("matrix")
            try:
                node.workerinput["harness_matrix"] = self.collection.ship(self.ship_dir)
            except pytest.UsageError:
                pass  # a bad matrix: every worker reports it itself

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """Note the case that runs after this one, so the runner can be handed it early."""
        self.next_case = case_of(nextitem) if nextitem is not None else None
        return (yield)

    def pytest_unconfigure(self, config):
        """Stop this process's sessions and the masters it started."""
        self.close()

    def close(self) -> None:
        """Stop every session and master this object started (idempotent)."""
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        for ex in [*self.early.values(), *self.checkers.values()]:
            ex.close()
        self.early.clear()
        self.checkers.clear()
        for m in self.masters.values():
            m.close()
        self.masters.clear()
        if self.ship_dir is not None:
            shutil.rmtree(self.ship_dir, ignore_errors=True)
            self.ship_dir = None


class CaseRunner:
    """Runs cases in isolation, each in its framework's session, and judges their records."""

    def __init__(self, lifecycle: RunnerLifecycle):
        self.lifecycle = lifecycle
        self.cfg = lifecycle.cfg
        self.verdicts = lifecycle.verdicts
        self.expectations = lifecycle.verdicts.expectations
        self.worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.executors: dict[str, SessionClient] = {}

    def executor_for(self, framework: str) -> SessionClient:
        """The executor of ``framework`` (adopting the session opened before collection)."""
        ex = self.executors.get(framework)
        if ex is None:
            ex = self.lifecycle.early.pop(framework, None) or self.lifecycle.executor(framework)
            self.executors[framework] = ex
        return ex

    def run(self, case: Case) -> dict:
        """Run ``case`` and return its record (with the worker and shard that ran it)."""
        if case.skip:  # nothing to run: no need to start (or wake) a runner process
            rec = record.new(case, status.SKIPPED, message=case.skip, stage="matrix")
        else:
            nxt = self.lifecycle.next_case
            ahead = None
            if nxt is not None and not nxt.skip and nxt.framework == case.framework:
                ahead = (nxt, self._device(nxt))
            rec = self.executor_for(case.framework).run(case, device=self._device(case), ahead=ahead)
            if rec["status"] == status.CRASH and case.spec.get("crash_retry"):
                rec = self._retry(case, rec)
            if case.spec.get("whole_model") and (nxt is None or nxt.model_key != case.model_key):
                self.release(case.framework)
        return record.stamp(rec, worker=self.worker, **shard_field(self.cfg))

    def release(self, framework: str) -> None:
        """End ``framework``'s session (its server and what it holds); the next case forks a fresh one.

        Done after the last case of a whole model on this worker: an idle server
        would otherwise keep that model, its exports and its heap (GBs for a
        whole network) until the run ends. Forking anew from the warm master
        takes milliseconds.
        """
        ex = self.executors.pop(framework, None)
        if ex is not None:
            ex.close()

    def _retry(self, case: Case, first: dict) -> dict:
        """Run a crashed case once more in a fresh server (its matrix file's ``crash_retry``).

        The second attempt's record is the verdict: a crash that repeats is a
        crash. The first attempt stays in the record (``retried``), and its
        repro bundle is removed when the second one does not crash.
        """
        rec = self.executor_for(case.framework).run(case, device=self._device(case))
        record.stamp(rec, retried={"status": first["status"], "message": first.get("message", ""),
                                   "why": case.spec["crash_retry"]})
        if rec["status"] != status.CRASH and first.get("repro_bundle"):
            shutil.rmtree(first["repro_bundle"], ignore_errors=True)
        return rec

    def _device(self, case: Case) -> dict:
        return devices.setting_for(case.device, self.cfg.ort_providers).to_dict()

    def judge(self, case: Case, rec: dict) -> None:
        """Pass, fail, skip or xfail the current test from the record (see :class:`Verdicts`)."""
        self.verdicts.judge(case, rec)

    def close(self) -> None:
        """Stop the runner sessions."""
        for ex in self.executors.values():
            ex.close()
        self.executors.clear()

    def explore(self, target, config) -> dict:
        """Run one property-mode target (see :mod:`harness.explore.property`) and return its record."""
        from hypothesis import settings

        from harness.explore.property import Explorer
        from harness.spec.matrix import load_tolerances

        cfg = self.cfg
        rules, defaults = load_tolerances(cfg.tolerances)
        profile = settings.get_profile(cfg.hypothesis_profile)
        kw = {"parent": profile}
        if cfg.max_examples is not None:
            kw["max_examples"] = cfg.max_examples
        explorer = Explorer(target, self, rules, defaults, kw, special_values=cfg.special_values,
                            repro_dir=cfg.repro_dir, profile=cfg.hypothesis_profile,
                            shrink_budget_s=cfg.shrink_budget)
        return record.stamp(explorer.run(), worker=self.worker)
