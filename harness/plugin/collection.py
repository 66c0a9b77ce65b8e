"""Collection: the matrix expanded into test items, narrowed by case ids and shards.

:class:`CaseCollection` is registered in ``pytest_configure``; it loads and
expands the matrix once per process and owns every collection hook.
"""

from __future__ import annotations

import os
import pickle
import pkgutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from harness.core import devices
from harness.isolation import environments
from harness import passes, runtimes
from . import sharding
from harness.core.case import Case
from harness.spec.matrix import Matrix, load_all
from harness.spec.yamlsrc import MatrixError, load_yaml
from .options import ROOT, HarnessConfig


def case_of(item) -> Case | None:
    """The :class:`Case` a test item runs, or None."""
    # an empty selection (e.g. --smoke on a matrix without smoke entries) parametrizes with NOTSET
    case = item.callspec.params.get("case") if hasattr(item, "callspec") else None
    return case if isinstance(case, Case) else None


def xdist_group(case: Case) -> str:
    """The case's ``xdist_group``: its model, or its entry's ``serial_group`` (whose models then run
    one after another on one worker under ``--dist loadgroup``: two of them never overlap)."""
    serial = case.spec.get("serial_group")
    return f"serial-{serial}" if serial else case.model_key


def targets_conformance(config) -> bool:
    """Whether the run's arguments include the conformance tests (``conformance/``)."""
    cases_dir = (ROOT / "conformance").resolve()
    targets = [Path(str(a).split("::", 1)[0]).resolve() for a in config.args]
    return any(t == cases_dir or cases_dir in t.parents for t in targets)


def _unrunnable(cases: list[Case], present: tuple[str, ...]) -> list[Case]:
    """``cases``, each marked skipped when its device is absent or its framework's environment is missing."""
    missing = {fw: environments.unavailable(fw) for fw in {c.framework for c in cases}}  # once per framework
    out = []
    for case in cases:
        reason = None if case.skip else devices.skip_reason(case.device, present) or missing[case.framework]
        out.append(case if reason is None else replace(case, skip=reason))
    return out


class CaseCollection:
    """Plugin object: the expanded matrix of this process and the collection hooks."""

    def __init__(self, config, cfg: HarnessConfig):
        self.config = config
        self.cfg = cfg
        self._matrix: Matrix | None = None
        self._explore: list | None = None
        self._by_id: dict[str, Case] | None = None
        self._scanned: list[dict] | None = None
        self._shipped: str | None = None

    def check_axes(self) -> None:
        """--runtimes / --passes: an unknown name is a usage error naming the known ones.

        Known: the modules of ``harness/runtimes`` / ``harness/passes`` (not
        imported here) and, only when a name is none of those, whatever the
        matrix files' ``plugins:`` register.
        """
        import importlib

        axes = (("--runtimes", self.cfg.runtimes, runtimes.names), ("--passes", self.cfg.post_passes, passes.names))
        if all(set(wanted) <= known() for _, wanted, known in axes):
            return
        for mod in self.plugins():
            try:
                importlib.import_module(mod)
            except ImportError:
                continue  # the runners report it
        for option, wanted, known in axes:
            unknown = [n for n in wanted if n not in known()]
            if unknown:
                raise pytest.UsageError(f"{option}: unknown {', '.join(map(repr, unknown))} "
                                        f"(known: {', '.join(sorted(known()))})")

    # -- the matrix -----------------------------------------------------------
    @property
    def matrix(self) -> Matrix:
        """The expanded matrix, loaded once per process; bad input is a one-line usage error."""
        if self._matrix is None:
            shipped = getattr(self.config, "workerinput", {}).get("harness_matrix")
            if shipped:  # an xdist worker: the controller expanded this run's matrix already
                with open(shipped, "rb") as f:
                    self._matrix = pickle.load(f)
                return self._matrix
            cfg = self.cfg
            try:
                top = getattr(self.config, "workerinput", {}).get("harness_max_opset")
                matrix = load_all(list(cfg.matrices), cfg.tolerances, cfg.scope, max_opset=top,
                                  allow_any_call=cfg.allow_any_call)
            except MatrixError as exc:
                raise pytest.UsageError(str(exc)) from None
            matrix.cases = _unrunnable(matrix.cases, cfg.present)
            if cfg.runtimes != (runtimes.DEFAULT,) or cfg.post_passes != (passes.NONE,):
                # every (runtime, pass) of a case follows it, so they share its exported model
                matrix.cases = [replace(c, runtime=r, post_pass=p) for c in matrix.cases
                                for r in cfg.runtimes for p in cfg.post_passes]
            self._matrix = matrix
        return self._matrix

    def ship(self, folder: str) -> str:
        """Write the expanded matrix for the xdist workers (once); return the file's path.

        A worker then skips reading, validating and expanding the matrix files
        (about a second of CPU each, paid while the runners import on the same cores).
        """
        if self._shipped is None:
            path = os.path.join(folder, "matrix.pickle")
            with open(path, "wb") as f:
                pickle.dump(self.matrix, f, protocol=pickle.HIGHEST_PROTOCOL)
            self._shipped = path
        return self._shipped

    def case_by_id(self, case_id: str) -> Case | None:
        """The case of this run's matrix with id ``case_id``, or None."""
        if self._by_id is None:
            self._by_id = {c.id: c for c in self.matrix.cases}
        return self._by_id.get(case_id)

    def explore_targets(self) -> list:
        """Property-mode targets (every entry x exporter x device), collected once per process."""
        if self._explore is None:
            from harness.explore.property import collect_targets

            try:
                self._explore = collect_targets(self.cfg.matrices, self.matrix)
            except MatrixError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._explore

    def _scan(self) -> list[dict]:
        """The matrix files as plain mappings, read once (a quick read: no validation or expansion)."""
        if self._scanned is None:
            self._scanned = []
            for path in self.cfg.matrices:
                try:  # the one loader: a file it refuses is refused by the real load too
                    data = load_yaml(path).data
                except MatrixError:
                    continue  # the real load reports it
                if isinstance(data, dict):
                    self._scanned.append(data)
        return self._scanned

    def frameworks(self) -> tuple[str, ...]:
        """The frameworks the matrix files name, within ``--framework``."""
        wanted = self.cfg.scope.frameworks
        return tuple(sorted({d["framework"] for d in self._scan() if isinstance(d.get("framework"), str)
                             and (not wanted or d["framework"] in wanted)}))

    def plugins(self) -> tuple[str, ...]:
        """The extra modules (``plugins:`` of the matrix files) the runners must import."""
        out: list[str] = []
        for data in self._scan():
            out += [p for p in data.get("plugins") or () if isinstance(p, str) and p not in out]
        return tuple(out) + self.cfg.extra_plugins + self._backend_modules()

    def _backend_modules(self) -> tuple[str, ...]:
        """The modules of the run's non-default runtimes and passes: the runner masters import them once,
        so no forked server (not even one forked after a crash) pays their imports (onnxsim: ~4 s)."""
        found = []
        for package, wanted, default in ((runtimes, self.cfg.runtimes, runtimes.DEFAULT),
                                         (passes, self.cfg.post_passes, passes.NONE)):
            modules = {m.name for m in pkgutil.iter_modules(package.__path__)}
            found += [f"{package.__name__}.{n}" for n in wanted if n != default and n in modules]
        return tuple(found)

    # -- hooks ----------------------------------------------------------------
    def pytest_ignore_collect(self, collection_path, config):
        """Without ``--explore`` the property tests are not even collected."""
        if collection_path.name == "test_explore.py" and not self.cfg.explore:
            return True
        return None

    def pytest_generate_tests(self, metafunc):
        """Parametrize tests that take a ``case`` with every case of the matrix.

        Tests that take an ``explore_target`` get one per explore target, only with ``--explore``.
        """
        cfg = self.cfg
        if "explore_target" in metafunc.fixturenames:
            targets = self.explore_targets() if cfg.explore else []
            metafunc.parametrize("explore_target", targets, ids=[t.id for t in targets])
            return
        if "case" not in metafunc.fixturenames:
            return
        cases = self.matrix.cases
        if cfg.case_ids is not None:  # generate only those: cheaper than deselecting thousands
            missing = sorted(cfg.case_ids - {c.id for c in cases})
            if missing:
                raise pytest.UsageError(f"--case-ids: {len(missing)} id(s) match no case of this run, "
                                        f"e.g. {missing[0]}")
            cases = [c for c in cases if c.id in cfg.case_ids]
        if cfg.special_values:
            cases = [replace(c, spec={**c.spec, "special_values": True}) for c in cases]
        # The xdist_group mark keeps the variants of one model on one worker under
        # --dist loadgroup (its model, reference and Paddle save are cached there); the
        # entries of one `serial_group` share a group, so they run one after another.
        metafunc.parametrize("case", [pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(xdist_group(c)))
                                      for c in cases])

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        """Apply the mode, --case-ids and the shard (deselecting the rest); fix xdist group ids."""
        self._select_mode(items)
        self._narrow(items)
        self._fix_xdist_group(items)

    def _select_mode(self, items) -> None:
        """--explore runs only the property tests; otherwise they produce no items."""
        explore = self.cfg.explore
        keep, drop = [], []
        for it in items:
            params = getattr(getattr(it, "callspec", None), "params", {})
            is_explore = "explore_target" in getattr(it, "fixturenames", ())
            is_case = "case" in params
            (drop if (is_explore and not explore) or (is_case and explore) else keep).append(it)
        if drop:
            self.config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def _narrow(self, items) -> None:
        cfg = self.cfg
        if cfg.case_ids is None and cfg.shard is None:
            return
        ids = {c.id for c in map(case_of, items) if c is not None}
        if not ids:
            return
        if cfg.case_ids is not None:
            missing = sorted(cfg.case_ids - ids)
            if missing:
                raise pytest.UsageError(f"--case-ids: {len(missing)} id(s) match no case of this run, "
                                        f"e.g. {missing[0]}")
        part = None
        if cfg.shard is not None:  # balanced over every collected model: the same in every job
            part = sharding.Partition(cfg.shard[1], cfg.shard_costs).assign(
                c.model_key for c in map(case_of, items) if c is not None)
        keep, drop = [], []
        for it in items:
            c = case_of(it)
            ok = c is None or ((cfg.case_ids is None or c.id in cfg.case_ids)
                               and (part is None or part.shard_of(c.model_key) == cfg.shard[0]))
            (keep if ok else drop).append(it)
        if drop:
            self.config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def _fix_xdist_group(self, items) -> None:
        """Worker side of ``--dist loadgroup``: make the xdist_group suffix stick on pytest >= 9.2.

        xdist 3.8 appends ``@<group>`` by assigning ``item._nodeid``, which pytest 9.2
        no longer reads (node ids live in ``item._id``), so every case became its own
        group. Where that happened, set the suffix the way this pytest stores it.
        """
        config = self.config
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
            group = mark.args[0] if mark.args else mark.kwargs.get("name")
            it._id = coerce_node_id(f"{it.nodeid}@{group}")

    def pytest_report_header(self, config):
        """Show the scope, the results file and the opsets left out."""
        if getattr(config, "workerinput", None) is not None:
            return None
        cfg = self.cfg
        try:
            m = self.matrix
        except pytest.UsageError:
            return None
        from harness.spec.matrix import testable_max_opset

        lines = [f"onnx-conformance: {len(m.cases)} cases from {len(m.rows)} kernel rows; "
                 f"opsets={cfg.scope.opsets} (testable 7~{testable_max_opset()}); results -> {cfg.results}"]
        reasons = Counter(r for *_, r in m.skipped_opsets)
        for reason, n in reasons.items():
            lines.append(f"  opsets left out for {n} variant(s): {reason}")
        return lines
