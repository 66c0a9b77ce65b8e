"""The pytest plugin: options, case generation, the per-case verdict, records and summary.

Configuration flows one way: command-line options -> one frozen
:class:`HarnessConfig` made in ``pytest_configure`` (kept in ``config.stash``)
-> fixtures. Only the controller process (no ``workerinput``) writes files.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from . import devices, record, sharding, status
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
    #: devices present on this machine (cpu, cuda:N) and the ORT providers offered
    present: tuple[str, ...] = ("cpu",)
    ort_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    #: (K, N) with --shard-id K --num-shards N, else None
    shard: tuple[int, int] | None = None
    #: the case ids of --case-ids FILE, else None
    case_ids: frozenset[str] | None = None


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
    g.addoption("--devices", default=None,
                help="comma-separated devices to expand the matrix over, e.g. cpu,cuda:0 "
                     "(default: cpu plus cuda:N for each GPU ONNX Runtime's CUDA provider can use); "
                     "cases on an absent device are skipped")
    g.addoption("--shard-id", type=int, default=None,
                help="run only shard K (1..N) of the cases, partitioned by model key (with --num-shards)")
    g.addoption("--num-shards", type=int, default=None,
                help="number of shards for --shard-id")
    g.addoption("--case-ids", default=None,
                help="file with case ids, one per line: run only those (others are deselected)")
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
    g.addoption("--explore-profile", choices=("ci", "nightly"), default="ci",
                help="property mode: hypothesis profile; ci = few examples, derandomized so verdicts "
                     "don't flake (default); nightly = many examples")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Freeze the options into a HarnessConfig; register the ci/nightly hypothesis profiles."""
    opt = config.option
    if not hasattr(opt, "cases_dir"):
        return
    profile = opt.explore_profile
    if opt.explore:
        from .explore import register_profiles

        register_profiles()
    cases_dir = Path(opt.cases_dir)
    matrices = tuple(Path(p) for p in opt.matrix) or tuple(matrix_files(cases_dir))
    try:
        shard = sharding.check(opt.shard_id, opt.num_shards)
    except sharding.ShardError as exc:
        raise pytest.UsageError(str(exc)) from None
    results = Path(opt.results) if opt.results else ROOT / "results" / (
        "run-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        + (sharding.suffix(*shard) if shard else "") + ".jsonl")
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "harness_results" in workerinput:
        results = Path(workerinput["harness_results"])
    if workerinput and "harness_devices" in workerinput:  # the controller detected once
        present = tuple(workerinput["harness_devices"]["present"])
        providers = tuple(workerinput["harness_devices"]["providers"])
    else:
        providers = devices.ort_providers()
        present = devices.detect(providers)
    try:
        wanted = devices.parse_devices(opt.devices) if opt.devices else present
    except devices.DeviceError as exc:
        raise pytest.UsageError(str(exc)) from None
    case_ids = None
    if opt.case_ids:
        try:
            lines = Path(opt.case_ids).read_text().splitlines()
        except OSError as exc:
            raise pytest.UsageError(f"--case-ids: {exc}") from None
        case_ids = frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))
    config.stash[CONFIG_KEY] = HarnessConfig(
        cases_dir=cases_dir, matrices=matrices, tolerances=cases_dir / "tolerances.yaml",
        expected=cases_dir / "expected_failures.yaml",
        scope=Scope(opsets=opt.opsets, frameworks=tuple(opt.framework),
                    exporters=tuple(opt.exporter), devices=wanted, smoke=opt.smoke),
        timeout=opt.case_timeout, results=results, report=not opt.no_report,
        reports_dir=Path(opt.reports_dir), repro_dir=Path(opt.repro_dir) if opt.repro_dir else None,
        explore=opt.explore, max_examples=opt.max_examples, shrink_budget=opt.shrink_budget,
        hypothesis_profile=profile or "ci", special_values=opt.special_values,
        present=present, ort_providers=providers, shard=shard, case_ids=case_ids)
    config.stash[STATE_KEY] = {"counts": Counter(), "by_kernel": defaultdict(Counter),
                               "by_exporter": defaultdict(Counter), "writer": None,
                               "t0": time.time(), "executor": None}
    if getattr(config, "workerinput", None) is None:  # only the controller writes files
        config.pluginmanager.register(RecordWriter(config), "harness-record-writer")
    where = _where_cases_run(config)
    if where == "here":
        _start_runner_early(config)
    elif where == "workers":
        _start_shared_master(config)


def _targets_conformance(config) -> bool:
    cases_dir = (ROOT / "conformance").resolve()
    targets = [Path(str(a).split("::", 1)[0]).resolve() for a in config.args]
    return any(t == cases_dir or cases_dir in t.parents for t in targets)


def _where_cases_run(config) -> str | None:
    """"here" (a worker, or a plain -n 0 run of conformance/), "workers" (an xdist controller), or None."""
    if config.option.collectonly or not _targets_conformance(config):
        return None  # e.g. the harness's own tests: no runner unless a case asks for one
    if getattr(config, "workerinput", None) is not None:
        return "here"
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "dist", "no") != "no":
        return "workers"
    return "here"


def _scan_frameworks(cfg: HarnessConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(frameworks, plugins) named by the matrix files: a quick read, no validation or expansion."""
    import yaml

    frameworks, plugins = set(), []
    for path in cfg.matrices:
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (OSError, yaml.YAMLError):
            continue  # the real load reports it
        if not isinstance(data, dict) or not isinstance(data.get("framework"), str):
            continue
        if cfg.scope.frameworks and data["framework"] not in cfg.scope.frameworks:
            continue
        frameworks.add(data["framework"])
        plugins += [p for p in data.get("plugins") or () if isinstance(p, str)]
    return tuple(sorted(frameworks)), tuple(plugins) + cfg.extra_plugins


def _start_runner_early(config) -> None:
    """Open this process's runner session before collection, so imports and warm-up overlap it."""
    cfg = config.stash[CONFIG_KEY]
    frameworks, plugins = _scan_frameworks(cfg)
    if not frameworks:
        return
    ex = _executor(config, plugins, frameworks)
    ex.start()
    config.stash[STATE_KEY]["executor"] = ex


def _executor(config, plugins: tuple[str, ...], frameworks: tuple[str, ...]) -> Executor:
    """An executor for this process, on the controller's shared master where that one fits."""
    cfg = config.stash[CONFIG_KEY]
    return Executor(timeout=cfg.timeout, plugins=plugins, label=os.environ.get("PYTEST_XDIST_WORKER", "main"),
                    frameworks=frameworks, repro_dir=str(cfg.repro_dir) if cfg.repro_dir else None,
                    master=getattr(config, "workerinput", {}).get("harness_master"))


def _start_shared_master(config) -> None:
    """xdist controller: start the one runner master every worker forks its sessions from.

    It imports and warms up while xdist starts the workers and they collect, and
    N workers then cost one import instead of N (memory too: the pages of the
    import are shared by every session's server).
    """
    frameworks, plugins = _scan_frameworks(config.stash[CONFIG_KEY])
    if frameworks:
        from .isolation import Master

        config.stash[STATE_KEY]["master"] = Master(plugins, frameworks).start()


def pytest_unconfigure(config):
    """Stop a runner session started early that no test used, and the shared master."""
    if STATE_KEY not in config.stash:
        return
    state = config.stash[STATE_KEY]
    if state.get("executor") is not None:
        state["executor"].close()
    if state.get("master") is not None:
        state["master"].close()


def pytest_configure_node(node):
    """xdist hook: every worker learns the controller's results path (for its records)."""
    cfg = node.config.stash.get(CONFIG_KEY, None)
    if cfg is not None:
        node.workerinput["harness_results"] = str(cfg.results)
        master = node.config.stash[STATE_KEY].get("master")
        if master is not None:
            node.workerinput["harness_master"] = master.describe()
        node.workerinput["harness_devices"] = {"present": list(cfg.present),
                                               "providers": list(cfg.ort_providers)}
        # probed once here: spares every worker importing onnx + onnxruntime to collect
        from .matrix import testable_max_opset

        node.workerinput["harness_max_opset"] = testable_max_opset()


def get_matrix(config) -> Matrix:
    """The expanded matrix, loaded once per process; bad input is a one-line usage error."""
    if MATRIX_KEY not in config.stash:
        cfg = config.stash[CONFIG_KEY]
        try:
            top = getattr(config, "workerinput", {}).get("harness_max_opset")
            matrix = load_all(list(cfg.matrices), cfg.tolerances, cfg.scope, max_opset=top)
        except MatrixError as exc:
            raise pytest.UsageError(str(exc)) from None
        matrix.cases = [_absent_device_skip(c, cfg.present) for c in matrix.cases]
        config.stash[MATRIX_KEY] = matrix
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
    if cfg.case_ids is not None:  # generate only those: cheaper than deselecting thousands
        missing = sorted(cfg.case_ids - {c.id for c in cases})
        if missing:
            raise pytest.UsageError(f"--case-ids: {len(missing)} id(s) match no case of this run, "
                                    f"e.g. {missing[0]}")
        cases = [c for c in cases if c.id in cfg.case_ids]
    if cfg.special_values:
        cases = [replace(c, spec={**c.spec, "special_values": True}) for c in cases]
    # The xdist_group mark keeps the variants of one model on one worker under
    # --dist loadgroup (its model, reference and Paddle save are cached there).
    metafunc.parametrize("case", [pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.model_key))
                                  for c in cases])


@pytest.hookimpl(specname="pytest_collection_modifyitems", trylast=True)
def pytest_collection_modifyitems_xdist_group(config, items):
    """Worker side of ``--dist loadgroup``: make the xdist_group suffix stick on pytest >= 9.2.

    xdist 3.8 appends ``@<group>`` by assigning ``item._nodeid``, which pytest 9.2
    no longer reads (node ids live in ``item._id``), so every case became its own
    group. Where that happened, set the suffix the way this pytest stores it.
    """
    if not getattr(config.option, "loadgroup", False) or getattr(config, "workerinput", None) is None:
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # an older pytest, where xdist's own renaming works
        return
    for it in items:
        mark = it.get_closest_marker("xdist_group")
        if mark is None or "@" in it.nodeid.rsplit("]", 1)[-1] or not hasattr(it, "_id"):
            continue
        it._id = coerce_node_id(f"{it.nodeid}@{mark.args[0] if mark.args else mark.kwargs.get('name')}")


def xfail(reason: str):
    """``pytest.xfail`` without a Python traceback in the report.

    The verdict comes from the record, so a traceback into the harness says
    nothing, and pytest builds one by parsing this module's source with ``ast``
    for every expected failure (815 in the default run, 1793 with
    ``--opsets full``), in the pytest process, on the critical path.
    """
    raise pytest.xfail.Exception(reason, pytrace=False)


def _absent_device_skip(case: Case, present: tuple[str, ...]) -> Case:
    reason = devices.skip_reason(case.device, present)
    return case if case.skip or reason is None else replace(case, skip=reason)


def _case_of(item) -> Case | None:
    # an empty selection (e.g. --smoke on a matrix without smoke entries) parametrizes with NOTSET
    case = item.callspec.params.get("case") if hasattr(item, "callspec") else None
    return case if isinstance(case, Case) else None


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
    """Apply --case-ids and the shard (deselecting the rest); warn about unmatched expectations."""
    if CONFIG_KEY not in config.stash:
        return
    cfg = config.stash[CONFIG_KEY]
    _select_mode(config, items)
    ids = [c.id for c in map(_case_of, items) if c is not None]
    if not ids:
        return
    if cfg.case_ids is not None:
        missing = sorted(cfg.case_ids - set(ids))
        if missing:
            raise pytest.UsageError(f"--case-ids: {len(missing)} id(s) match no case of this run, "
                                    f"e.g. {missing[0]}")
    if cfg.case_ids is not None or cfg.shard is not None:
        keep, drop = [], []
        for it in items:
            c = _case_of(it)
            ok = c is None or ((cfg.case_ids is None or c.id in cfg.case_ids)
                               and (cfg.shard is None
                                    or sharding.shard_of(c.model_key, cfg.shard[1]) == cfg.shard[0]))
            (keep if ok else drop).append(it)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


def pytest_sessionstart(session):
    """Controller: warn about expected-failure entries that match no case of the whole matrix.

    Checked against the matrix the run's scope generates (also under xdist,
    where the controller collects nothing), and only when the run is not
    narrowed (--smoke, a filter, -k, --case-ids, a shard, node ids): a slice
    leaves most entries unmatched without them being stale.
    """
    config = session.config
    if CONFIG_KEY not in config.stash or getattr(config, "workerinput", None) is not None:
        return
    cfg = config.stash[CONFIG_KEY]
    opt = config.option
    narrowed = (cfg.scope.smoke or cfg.scope.frameworks or cfg.scope.exporters or opt.matrix
                or cfg.case_ids is not None or cfg.shard is not None or cfg.explore
                or getattr(opt, "keyword", "") or getattr(opt, "markexpr", "")
                or any("::" in str(a) for a in config.args) or not _targets_conformance(config))
    if narrowed:
        return
    try:
        exp, ids = _expectations(config), [c.id for c in get_matrix(config).cases]
    except pytest.UsageError:
        return  # collection reports it
    for e in exp.mark_collected(ids):
        config.issue_config_time_warning(pytest.PytestWarning(
            f"{exp.path}:{e.line}: expected failure {e.match!r} matches no case of the matrix"), 2)


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
        self.state = config.stash[STATE_KEY]
        plugins = get_matrix(config).plugins + cfg.extra_plugins
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.worker = worker
        frameworks = tuple(sorted({c.framework for c in get_matrix(config).cases}))
        early = config.stash[STATE_KEY].pop("executor", None)
        if early is not None and early.frameworks == frameworks and early.plugins == plugins:
            self.executor = early  # started in pytest_configure, already warm
        else:
            if early is not None:
                early.close()
            self.executor = _executor(config, plugins, frameworks)

    def run(self, case: Case) -> dict:
        """Run ``case`` and return its record (with the worker and shard that ran it)."""
        if case.skip:  # nothing to run: no need to start (or wake) a runner process
            rec = record.new(case, status.SKIPPED, message=case.skip, stage="matrix")
        else:
            nxt = self.state.get("next_case")
            ahead = None if nxt is None or nxt.skip else (nxt, self._device(nxt))
            rec = self.executor.run(case, device=self._device(case), ahead=ahead)
        rec["worker"] = self.worker
        if self.cfg.shard is not None:
            rec["shard"] = list(self.cfg.shard)
        return rec

    def _device(self, case: Case) -> dict:
        return devices.setting_for(case.device, self.cfg.ort_providers).to_dict()

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
                xfail(f"{st}: {exp.text()}")
            pytest.fail(f"expected {'/'.join(exp.status)} ({exp.text()}) but got {detail}", pytrace=False)
        if st == status.PASS:
            return
        if not case.declared.get("in_range", True):
            rec["expected"] = {"status": [st], "reason": "outside the declared opset range"}
            xfail(f"{st} at opset {case.opset}, outside the range the table declares "
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Note the case that runs after this one, so the runner can be handed it early."""
    state = item.config.stash.get(STATE_KEY, None)
    if state is not None:
        state["next_case"] = _case_of(nextitem) if nextitem is not None else None
    return (yield)


@pytest.fixture(scope="session")
def case_runner(request):
    """The per-process :class:`CaseRunner` (its runner process starts on first use)."""
    runner = CaseRunner(request.config)
    yield runner
    runner.close()


class RecordWriter:
    """Controller-only plugin: appends each case's record to the results file as it ends."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        """Write the record a case attached to its call-phase report, and count it."""
        if report.when != "call":
            return
        rec = next((v for k, v in report.user_properties if k == "record"), None)
        if rec is None:
            return
        state = self.config.stash[STATE_KEY]
        if state["writer"] is None:
            state["writer"] = ResultsWriter(self.config.stash[CONFIG_KEY].results)
        rec = dict(rec)
        rec["outcome"] = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        state["writer"].write(rec)
        state["counts"][rec["status"]] += 1
        state["by_kernel"][f"{rec['framework']}/{rec['kernel']}"][rec["status"]] += 1
        state["by_exporter"][f"{rec['framework']}/{rec['exporter']}"][rec["status"]] += 1


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
