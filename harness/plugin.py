"""The pytest plugin: options, case generation, the per-case verdict, records and summary.

Configuration flows one way: command-line options -> one frozen
:class:`HarnessConfig` made in ``pytest_configure`` (kept in ``config.stash``)
-> fixtures. Only the controller process (no ``workerinput``) writes files.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from . import status
from .case import Case
from .expectations import Expectations
from .isolation import Executor
from .matrix import Matrix, Scope, load_all, matrix_files
from .results import ResultsWriter
from .yamlsrc import MatrixError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class HarnessConfig:
    """Everything the run needs, decided once from the command line."""

    cases_dir: Path
    matrices: tuple[Path, ...]
    tolerances: Path
    expected: Path
    scope: Scope
    timeout: float
    results: Path
    report: bool
    reports_dir: Path
    extra_plugins: tuple[str, ...] = field(default=())
    #: failing cases leave a repro bundle under this folder (None: no bundles)
    repro_dir: Path | None = None
    #: property mode (``--explore``) and its settings
    explore: bool = False
    max_examples: int | None = None
    shrink_budget: float | None = None
    hypothesis_profile: str = "ci"
    #: mix NaN, +-Inf, -0.0, huge and tiny values into float inputs
    special_values: bool = False


CONFIG_KEY = pytest.StashKey[HarnessConfig]()
EXPLORE_KEY = pytest.StashKey[list]()
MATRIX_KEY = pytest.StashKey[Matrix]()
STATE_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser):
    """Declare the harness's command-line options."""
    g = parser.getgroup("onnx-conformance", "ONNX export conformance harness")
    g.addoption("--cases-dir", default=str(ROOT / "cases"),
                help="folder with the YAML matrices, tolerances.yaml and expected_failures.yaml")
    g.addoption("--matrix", action="append", default=[],
                help="run only this matrix file (repeatable); default: every matrix in --cases-dir")
    g.addoption("--framework", action="append", default=[],
                help="run only this framework (repeatable), e.g. paddle or torch")
    g.addoption("--exporter", action="append", default=[],
                help="run only this exporter path (repeatable), e.g. dygraph, static")
    g.addoption("--opsets", choices=("declared", "full"), default="declared",
                help="declared: the opsets the support table claims (default); "
                     "full: every opset from 7 to the highest onnx/onnxruntime support "
                     "(failures outside the claimed range are reported as xfail)")
    g.addoption("--smoke", action="store_true",
                help="run only the smoke slice: entries marked smoke, lowest and highest opset")
    g.addoption("--case-timeout", type=float, default=120.0,
                help="seconds one case may take before it is recorded as 'timeout' (default 120)")
    g.addoption("--results", default=None,
                help="results file (JSON lines) to append to; default results/run-<UTC time>.jsonl")
    g.addoption("--no-report", action="store_true",
                help="do not regenerate reports/ at the end of the run")
    g.addoption("--reports-dir", default=str(ROOT / "reports"),
                help="where the end-of-run report is written (default: reports/)")
    g.addoption("--repro-dir", default=str(ROOT / "artifacts" / "repro"),
                help="every failing case leaves a repro bundle in DIR/<case id>/ "
                     "(default artifacts/repro; '' for none)")
    g.addoption("--explore", action="store_true",
                help="property mode: hypothesis draws configurations of every entry with an "
                     "'explore:' block (one test per entry x exporter x opset); the matrix cases do not run")
    g.addoption("--max-examples", type=int, default=None,
                help="property mode: examples per test (overrides the hypothesis profile)")
    g.addoption("--shrink-budget", type=float, default=None,
                help="property mode: seconds of shrinking per failing test before the smallest "
                     "failure found so far is kept (default: 60 with profile ci, 600 with nightly)")
    g.addoption("--special-values", action="store_true",
                help="mix NaN, +-Inf, -0.0, huge and tiny magnitudes into float inputs")
    # --hypothesis-profile (ci|nightly) is hypothesis's own option; the profiles are registered below.


@pytest.hookimpl(tryfirst=True)  # before hypothesis's plugin loads --hypothesis-profile
def pytest_configure(config):
    """Freeze the options into a HarnessConfig; register the ci/nightly hypothesis profiles."""
    opt = config.option
    if not hasattr(opt, "cases_dir"):
        return
    profile = getattr(opt, "hypothesis_profile", None)
    if opt.explore or profile in ("ci", "nightly"):
        from .explore import register_profiles

        register_profiles()
    cases_dir = Path(opt.cases_dir)
    matrices = tuple(Path(p) for p in opt.matrix) or tuple(matrix_files(cases_dir))
    results = Path(opt.results) if opt.results else ROOT / "results" / (
        "run-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + ".jsonl")
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "harness_results" in workerinput:
        results = Path(workerinput["harness_results"])
    config.stash[CONFIG_KEY] = HarnessConfig(
        cases_dir=cases_dir, matrices=matrices, tolerances=cases_dir / "tolerances.yaml",
        expected=cases_dir / "expected_failures.yaml",
        scope=Scope(opsets=opt.opsets, frameworks=tuple(opt.framework),
                    exporters=tuple(opt.exporter), smoke=opt.smoke),
        timeout=opt.case_timeout, results=results, report=not opt.no_report,
        reports_dir=Path(opt.reports_dir), repro_dir=Path(opt.repro_dir) if opt.repro_dir else None,
        explore=opt.explore, max_examples=opt.max_examples, shrink_budget=opt.shrink_budget, hypothesis_profile=profile or "ci",
        special_values=opt.special_values)
    config.stash[STATE_KEY] = {"counts": Counter(), "by_kernel": defaultdict(Counter),
                               "by_exporter": defaultdict(Counter), "writer": None,
                               "t0": time.time(), "unexpected_pass": []}


def pytest_configure_node(node):
    """xdist hook: every worker learns the controller's results path (for its records)."""
    cfg = node.config.stash.get(CONFIG_KEY, None)
    if cfg is not None:
        node.workerinput["harness_results"] = str(cfg.results)


def get_matrix(config) -> Matrix:
    """The expanded matrix, loaded once per process; bad input is a one-line usage error."""
    if MATRIX_KEY not in config.stash:
        cfg = config.stash[CONFIG_KEY]
        try:
            config.stash[MATRIX_KEY] = load_all(list(cfg.matrices), cfg.tolerances, cfg.scope)
        except MatrixError as exc:
            raise pytest.UsageError(str(exc)) from None
    return config.stash[MATRIX_KEY]


def get_explore_targets(config) -> list:
    """Property-mode targets (entries with an ``explore:`` block), collected once per process."""
    if EXPLORE_KEY not in config.stash:
        from .explore import collect_targets

        try:
            config.stash[EXPLORE_KEY] = collect_targets(config.stash[CONFIG_KEY].matrices, get_matrix(config))
        except MatrixError as exc:
            raise pytest.UsageError(str(exc)) from None
    return config.stash[EXPLORE_KEY]


def pytest_generate_tests(metafunc):
    """Parametrize tests that take a ``case`` with every case of the matrix.

    Tests that take an ``explore_target`` get one per explore target, only with ``--explore``.
    """
    if CONFIG_KEY not in metafunc.config.stash:
        return
    cfg = metafunc.config.stash[CONFIG_KEY]
    if "explore_target" in metafunc.fixturenames:
        targets = get_explore_targets(metafunc.config) if cfg.explore else []
        metafunc.parametrize("explore_target", targets, ids=[t.id for t in targets])
        return
    if "case" not in metafunc.fixturenames:
        return
    cases = get_matrix(metafunc.config).cases
    if cfg.special_values:
        from dataclasses import replace

        cases = [replace(c, spec={**c.spec, "special_values": True}) for c in cases]
    metafunc.parametrize("case", cases, ids=[c.id for c in cases])


def pytest_ignore_collect(collection_path, config):
    """Without ``--explore`` the property tests are not even collected."""
    if collection_path.name == "test_explore.py" and CONFIG_KEY in config.stash \
            and not config.stash[CONFIG_KEY].explore:
        return True
    return None


def _select_mode(config, items) -> None:
    """--explore runs only the property tests; otherwise they produce no items."""
    explore = config.stash[CONFIG_KEY].explore
    keep, drop = [], []
    for it in items:
        params = getattr(getattr(it, "callspec", None), "params", {})
        fixtures = getattr(it, "fixturenames", ())
        is_explore = "explore_target" in fixtures
        is_case = "case" in params
        if (is_explore and not explore) or (is_case and explore):
            drop.append(it)
        else:
            keep.append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_modifyitems(session, config, items):
    """Warn about expected-failure entries that match no collected case."""
    if CONFIG_KEY not in config.stash:
        return
    _select_mode(config, items)
    ids = [it.callspec.params["case"].id for it in items
           if hasattr(it, "callspec") and "case" in it.callspec.params]
    if not ids:
        return
    exp = _expectations(config)
    if getattr(config, "workerinput", None) is None:
        for e in exp.mark_collected(ids):
            config.issue_config_time_warning(pytest.PytestWarning(
                f"{exp.path}:{e.line}: expected failure {e.match!r} matches no collected case"), 2)


def _expectations(config) -> Expectations:
    key = "expectations"
    state = config.stash[STATE_KEY]
    if key not in state:
        try:
            state[key] = Expectations.load(config.stash[CONFIG_KEY].expected)
        except MatrixError as exc:
            raise pytest.UsageError(str(exc)) from None
    return state[key]


class CaseRunner:
    """Session fixture object: runs a case in isolation and turns its record into an outcome."""

    def __init__(self, config):
        cfg = config.stash[CONFIG_KEY]
        self.cfg = cfg
        self.expectations = _expectations(config)
        plugins = get_matrix(config).plugins + cfg.extra_plugins
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.worker = worker
        frameworks = tuple(sorted({c.framework for c in get_matrix(config).cases}))
        self.executor = Executor(timeout=cfg.timeout, plugins=plugins, label=worker,
                                 frameworks=frameworks,
                                 repro_dir=str(cfg.repro_dir) if cfg.repro_dir else None)

    def run(self, case: Case) -> dict:
        """Run ``case`` and return its record (with the worker that ran it)."""
        rec = self.executor.run(case)
        rec["worker"] = self.worker
        return rec

    def judge(self, case: Case, rec: dict) -> None:
        """Pass, fail, skip or xfail the current test from the record (strict expectations)."""
        st, msg = rec["status"], rec.get("message", "")
        detail = f"{st}: {msg}" + (f"\n--- exporter log ---\n{rec['log']}" if rec.get("log") else "")
        if rec.get("repro_bundle"):
            detail += f"\nrepro bundle: {rec['repro_bundle']}  (python {rec['repro_bundle']}/repro.py)"
        if st == status.SKIPPED:
            pytest.skip(msg)
        exp = self.expectations.find(case.id)
        if exp is not None:
            rec["expected"] = {"status": list(exp.status), "reason": exp.text()}
            if st == status.PASS:
                rec["unexpected_pass"] = True
                pytest.fail(f"unexpected pass (strict): expected {'/'.join(exp.status)} because "
                            f"{exp.text()} [{self.expectations.path}:{exp.line}]", pytrace=False)
            if st in exp.status:
                pytest.xfail(f"{st}: {exp.text()}")
            pytest.fail(f"expected {'/'.join(exp.status)} ({exp.text()}) but got {detail}", pytrace=False)
        if st == status.PASS:
            return
        if not case.declared.get("in_range", True):
            rec["expected"] = {"status": [st], "reason": "outside the declared opset range"}
            pytest.xfail(f"{st} at opset {case.opset}, outside the range the table declares "
                         f"({case.declared['range']}): {msg}")
        pytest.fail(detail, pytrace=False)

    def close(self) -> None:
        """Stop the runner process."""
        self.executor.close()


    def explore(self, target, config) -> dict:
        """Run one property-mode target (see :mod:`harness.explore`) and return its record."""
        from hypothesis import settings

        from .explore import Explorer
        from .matrix import load_tolerances

        cfg = self.cfg
        rules, defaults = load_tolerances(cfg.tolerances)
        profile = settings.get_profile(cfg.hypothesis_profile)
        kw = {"parent": profile}
        if cfg.max_examples is not None:
            kw["max_examples"] = cfg.max_examples
        explorer = Explorer(target, self, rules, defaults, kw, special_values=cfg.special_values,
                            repro_dir=cfg.repro_dir, profile=cfg.hypothesis_profile,
                            shrink_budget_s=cfg.shrink_budget)
        rec = explorer.run()
        rec["worker"] = self.worker
        return rec


@pytest.fixture(scope="session")
def case_runner(request):
    """The per-process :class:`CaseRunner` (its runner process starts on first use)."""
    runner = CaseRunner(request.config)
    yield runner
    runner.close()


def pytest_runtest_logreport(report):
    """Controller only: append each case's record to the results file as it ends."""
    if report.when != "call":
        return
    rec = next((v for k, v in report.user_properties if k == "record"), None)
    if rec is None:
        return
    config = _CONFIG["config"]
    if config is None or getattr(config, "workerinput", None) is not None:
        return
    state = config.stash[STATE_KEY]
    if state["writer"] is None:
        state["writer"] = ResultsWriter(config.stash[CONFIG_KEY].results)
    rec = dict(rec)
    rec["outcome"] = "xfailed" if hasattr(report, "wasxfail") else report.outcome
    rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    state["writer"].write(rec)
    state["counts"][rec["status"]] += 1
    state["by_kernel"][f"{rec['framework']}/{rec['kernel']}"][rec["status"]] += 1
    state["by_exporter"][f"{rec['framework']}/{rec['exporter']}"][rec["status"]] += 1


_CONFIG: dict = {"config": None}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """Remember the config for the logreport hook (which gets no config argument)."""
    _CONFIG["config"] = session.config


def pytest_report_header(config):
    """Show the scope, the results file and the opsets left out."""
    if CONFIG_KEY not in config.stash or getattr(config, "workerinput", None) is not None:
        return None
    cfg = config.stash[CONFIG_KEY]
    try:
        m = get_matrix(config)
    except pytest.UsageError:
        return None
    from .matrix import testable_max_opset

    lines = [f"onnx-conformance: {len(m.cases)} cases from {len(m.rows)} kernel rows; "
             f"opsets={cfg.scope.opsets} (testable 7~{testable_max_opset()}); results -> {cfg.results}"]
    reasons = Counter(r for *_, r in m.skipped_opsets)
    for reason, n in reasons.items():
        lines.append(f"  opsets left out for {n} variant(s): {reason}")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the count per status, per exporter and per kernel; regenerate reports."""
    if STATE_KEY not in config.stash or getattr(config, "workerinput", None) is not None:
        return
    state = config.stash[STATE_KEY]
    if not state["counts"]:
        return
    tr = terminalreporter
    cfg = config.stash[CONFIG_KEY]
    total = sum(state["counts"].values())
    tr.section("onnx conformance summary")
    tr.write_line(f"{total} cases in {time.time() - state['t0']:.1f} s; records in {cfg.results}")
    tr.write_line("per status:   " + _fmt(state["counts"]))
    for key in sorted(state["by_exporter"]):
        tr.write_line(f"{key:<22}" + _fmt(state["by_exporter"][key]))
    tr.write_line("per kernel:")
    for key in sorted(state["by_kernel"]):
        tr.write_line(f"  {key:<34}" + _fmt(state["by_kernel"][key]))
    if state["writer"] is not None:
        state["writer"].close()
    if cfg.report:
        from . import reporting

        for line in reporting.end_of_run(cfg, get_matrix(config)):
            tr.write_line(line)


def _fmt(counter: Counter) -> str:
    return "  ".join(f"{s}={counter[s]}" for s in status.ALL if counter.get(s))
