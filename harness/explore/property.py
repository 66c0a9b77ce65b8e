"""Property mode (``pytest --explore``): hypothesis draws configurations of every matrix entry.

One test per entry x exporter x device, e.g. ``explore-paddle-dygraph-conv2d-cpu``.
The strategy is derived from the entry itself (:mod:`harness.explore.derive`): a
variant, an opset and a dtype of its cases, every attribute drawn in
combination from the values its variants use, shapes around the declared
ones; an ``explore:`` block refines it. Each example is one drawn model
configuration plus several drawn input seeds: the model is exported once and
every input set is compared (the pipeline's ``input_seeds``). Every example
runs as an ordinary :class:`~harness.core.case.Case` through the same isolated
runner and verdict pipeline as the matrix cases; the drawn configuration gets
its own variant name (``x<hash>``), hence its own model-cache key and seed.

On a failure hypothesis shrinks; the record keeps the minimal example, the
exact spec, a replay command line and hypothesis's reproduce blob, and the
minimal example is run once more to leave a repro bundle.
``python -m harness pin-example`` turns it into a fixed variant of its entry.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.core import record, status
from harness.core.case import DEFAULT_PASS, DEFAULT_RUNTIME, Case
from .derive import Domain
from harness.spec.matrix import Matrix, validate
from harness.spec.schema import MATRIX
from .strategies import ExploreError, draw_key
from harness.spec.yamlsrc import MatrixError, load_yaml

#: Hypothesis profiles registered by the plugin (``--explore-profile``).
PROFILES = {
    # few examples, same examples every run: verdicts do not flake
    "ci": {"max_examples": 10, "derandomize": True, "database": None},
    # many examples, random each night (failures are saved in .hypothesis/)
    "nightly": {"max_examples": 200},
}

#: failures about values: a new one is a finding even where the fixed cases fail the same way
VALUE_STATUSES = frozenset({status.MISMATCH, status.SHAPE_MISMATCH, status.DTYPE_MISMATCH})

#: Seconds of shrinking per failing target before the smallest failure so far is kept.
SHRINK_BUDGET_S = {"ci": 60.0, "nightly": 600.0}


@dataclass(frozen=True)
class ExploreTarget:
    """One property test: an entry at one exporter and device, opsets drawn among its cases'."""

    framework: str
    kernel: str
    exporter: str
    device: str
    #: the entry's matrix cases on this exporter and device (what the strategy is derived from)
    cases: tuple = field(hash=False, compare=False)
    explore: dict | None = field(default=None, hash=False, compare=False)
    tolerance: str | None = None
    source: str = ""
    matrix: str = ""
    #: why the entry cannot be explored here (no Paddle 3 API, absent device, ...), else None
    skip: str | None = None

    @property
    def id(self) -> str:
        """E.g. ``explore-paddle-dygraph-conv2d-cpu``."""
        return f"explore-{self.framework}-{self.exporter}-{self.kernel}-{self.device}"

    @property
    def declared(self) -> dict:
        """The entry's declared range (of its first case)."""
        return self.cases[0].declared if self.cases else {}

    def domain(self) -> Domain:
        """The derived (and block-refined) domain of this target's draws."""
        return Domain(list(self.cases), self.explore)


def register_profiles() -> None:
    """Register the harness's ``ci`` and ``nightly`` hypothesis profiles.

    They replace hypothesis's own built-in ``ci`` profile (100 examples), which is
    too many exports for a CI run.
    """
    from hypothesis import HealthCheck, settings

    common = {"deadline": None, "print_blob": True, "report_multiple_bugs": False,
              "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                                        HealthCheck.function_scoped_fixture,
                                        HealthCheck.differing_executors]}
    for name, kw in PROFILES.items():
        settings.register_profile(name, **common, **kw)


def collect_targets(matrix_paths: tuple[Path, ...], matrix: Matrix) -> list[ExploreTarget]:
    """One target per entry x exporter x device of ``matrix`` (its scope: --framework, --opsets, ...).

    Every entry is explored, with or without an ``explore:`` block; an entry
    whose cases all skip gets a target that skips with the same reason. A block
    that cannot refine the entry is a MatrixError naming its line.
    """
    out = []
    by_entry: dict[tuple[str, str], list[Case]] = {}
    for c in matrix.cases:
        if c.runtime == DEFAULT_RUNTIME and c.post_pass == DEFAULT_PASS:
            by_entry.setdefault((c.framework, c.kernel), []).append(c)
    for path in matrix_paths:
        doc = load_yaml(path)
        validate(doc, MATRIX)
        fw = doc.data["framework"]
        for i, entry in enumerate(doc.data["entries"]):
            kernel = entry["kernel"]
            groups: dict[tuple[str, str], list[Case]] = {}
            for c in by_entry.get((fw, kernel), []):
                groups.setdefault((c.exporter, c.device), []).append(c)
            for (exporter, device), cases in groups.items():
                runnable = tuple(c for c in cases if not c.skip)
                target = ExploreTarget(fw, kernel, exporter, device, runnable or (cases[0],),
                                       entry.get("explore"), entry.get("tolerance"), cases[0].source,
                                       str(path), skip=None if runnable else cases[0].skip)
                if runnable and entry.get("explore"):
                    try:
                        target.domain()
                    except ExploreError as exc:
                        raise MatrixError(doc.path, doc.line_of(("entries", i, "explore")),
                                          f"entries[{kernel}].explore", str(exc)) from None
                out.append(target)
    return out


def skipped_record(target: ExploreTarget) -> dict:
    """The record of a target that cannot run (every case of the entry skips here)."""
    rec = record.new(replace(target.cases[0], variant="explore"), status.SKIPPED, message=target.skip,
                     stage="matrix")
    rec.update(id=target.id, mode="explore")
    return rec


def _reproduce_blob(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", []) or []:
        m = re.search(r"(@reproduce_failure\(.*\))", note)
        if m:
            return m.group(1)
    return None


class Explorer:
    """Runs one :class:`ExploreTarget` under hypothesis through a ``CaseRunner``."""

    def __init__(self, target: ExploreTarget, runner, rules: dict, default_rules: dict,
                 settings_kw: dict, special_values: bool = False, repro_dir: Path | None = None,
                 profile: str = "ci", shrink_budget_s: float | None = None):
        self.target = target
        self.runner = runner
        self.rules, self.default_rules = rules, default_rules
        self.settings_kw = settings_kw
        self.special_values = special_values
        self.repro_dir = repro_dir
        self.profile = profile
        self.shrink_budget_s = shrink_budget_s if shrink_budget_s is not None else \
            SHRINK_BUDGET_S.get(profile, 120.0)
        self.first_failure_at: float | None = None
        self.budget_hit = False
        self.failed: dict[str, dict] = {}  # draw key -> record of every failing draw
        self.examples = 0
        self.examples_before_failure = 0
        self.example_s: list[float] = []  # wall time of every example run
        self.export_s: list[float] = []
        self.statuses: dict[str, int] = {}
        self.rejected = 0
        self.last_failure: tuple[dict, Case, dict] | None = None
        self.domain = target.domain()
        self._known_by_opset: dict[int, dict[str, str]] | None = None
        self.opsets: set[int] = set()

    def case_of(self, draw: dict) -> Case:
        """The Case of one drawn configuration."""
        spec, base = self.domain.apply(draw)
        if self.special_values:
            spec["special_values"] = True
        rule = base.tolerance if draw["dtype"] == base.dtype else \
            self.rules[self.target.tolerance or self.default_rules[draw["dtype"]]]
        return replace(base, variant="x" + draw_key(draw), dtype=draw["dtype"], spec=spec, tolerance=rule,
                       skip=None, smoke=False)

    def _known(self) -> dict[int, dict[str, str]]:
        """Opset -> {status: reason} of the expected failures of this target's fixed cases."""
        if self._known_by_opset is None:
            self._known_by_opset = {}
            for c in self.target.cases:
                exp = self.runner.expectations.find(c.id)
                for st in (exp.status if exp is not None else ()):
                    self._known_by_opset.setdefault(c.opset, {}).setdefault(st, f"{exp.text()} (as {c.id})")
        return self._known_by_opset

    def _is_failure(self, case: Case, rec: dict, base: Case) -> bool:
        """A failure the fixed matrix does not already show.

        Not a finding: a draw an expected-failure entry covers; a draw failing like
        the matrix case it started from is expected to; and a structural failure
        (anything but a value, shape or dtype mismatch) with a status that a fixed
        case of the entry is expected to fail with at the same exporter and opset
        (the same limitation, e.g. an opset the exporter does not honour).
        """
        st = rec["status"]
        if st not in status.FAILURES:
            return False
        for cid, how in ((case.id, ""), (base.id, f" (as its starting case {base.id})")):
            exp = self.runner.expectations.find(cid)
            if exp is not None and st in exp.status:
                rec["expected"] = {"status": list(exp.status), "reason": exp.text() + how}
                return False
        reason = self._known().get(case.opset, {}).get(st)
        if reason is not None and st not in VALUE_STATUSES:
            rec["expected"] = {"status": [st], "reason": reason}
            return False
        return True

    def _check(self, draw: dict) -> None:
        import pytest
        from hypothesis import reject

        case = self.case_of(draw)
        key = draw_key(draw)
        if self.first_failure_at is not None and \
                time.perf_counter() - self.first_failure_at > self.shrink_budget_s:
            # shrink budget spent: only known failures fail, so hypothesis settles on the
            # smallest failure found so far (and its final replay costs nothing)
            self.budget_hit = True
            if key in self.failed:
                self.last_failure = (draw, case, self.failed[key])
                raise AssertionError(f"{self.failed[key]['status']}: {self.failed[key]['message']}")
            return
        t0 = time.perf_counter()
        self.opsets.add(case.opset)
        rec = self.runner.executor_for(case.framework).run(case, bundle_dir=None)
        self.example_s.append(time.perf_counter() - t0)
        self.statuses[rec["status"]] = self.statuses.get(rec["status"], 0) + 1
        if rec.get("export_s") is not None:
            self.export_s.append(rec["export_s"])
        self.examples += 1
        if rec["status"] == status.SKIPPED:
            pytest.skip(rec["message"])
        if rec["status"] == status.EXPORT_ERROR and rec.get("stage") == "reference":
            self.rejected += 1  # the framework rejects this configuration itself: not a finding
            reject()
        if self._is_failure(case, rec, self.domain.variants[draw["variant"]].case(draw["opset"], draw["dtype"])):
            if self.first_failure_at is None:
                self.first_failure_at = time.perf_counter()
                self.examples_before_failure = self.examples
            self.failed[key] = rec
            self.last_failure = (draw, case, rec)
            raise AssertionError(f"{rec['status']}: {rec['message']}")

    def run(self) -> dict:
        """Search, shrink, bundle; return the target's record."""
        from hypothesis import given, settings

        strategy = self.domain.strategy()

        def explore_property(draw):
            self._check(draw)

        # one hypothesis identity per target: derandomized seeds and the example database
        # (nightly) are keyed by it, as hypothesis's own pytest plugin does for parametrized tests
        explore_property._hypothesis_internal_add_digest = self.target.id.encode()

        test = settings(**self.settings_kw)(given(strategy)(explore_property))
        t0 = time.perf_counter()
        blob, error = None, None
        try:
            test()
        except AssertionError as exc:
            blob = _reproduce_blob(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. Flaky, Unsatisfiable: reported, not raised
            error = f"{type(exc).__name__}: {str(exc)[:1500]}"
        elapsed = time.perf_counter() - t0
        search_s = (self.first_failure_at or time.perf_counter()) - t0
        searched = self.examples_before_failure if self.first_failure_at else self.examples
        stats = {"examples": self.examples, "rejected": self.rejected, "elapsed_s": round(elapsed, 3),
                 # the search phase (until the first failure): examples run per second
                 "search_examples": searched, "search_s": round(search_s, 3),
                 "examples_per_s": round(searched / search_s, 3) if search_s > 0 else None,
                 # without the first example (which pays the runner's start-up and imports)
                 "first_example_s": round(self.example_s[0], 3) if self.example_s else None,
                 "median_example_s": round(sorted(self.example_s)[len(self.example_s) // 2], 4)
                 if self.example_s else None,
                 "median_export_s": round(sorted(self.export_s)[len(self.export_s) // 2], 4)
                 if self.export_s else None,
                 "statuses": dict(self.statuses),
                 "steady_examples_per_s": round((len(self.example_s) - 1) / sum(self.example_s[1:]), 3)
                 if len(self.example_s) > 1 and sum(self.example_s[1:]) > 0 else None,
                 "profile": self.profile, "max_examples": settings(**self.settings_kw).max_examples,
                 "special_values": self.special_values, "shrink_budget_s": self.shrink_budget_s,
                 "opsets": sorted(self.opsets), "block": bool(self.target.explore),
                 "shrink_budget_hit": self.budget_hit}
        if self.last_failure is None:
            return self._summary(status.PASS if error is None else status.EXPORT_ERROR, stats,
                                 "" if error is None else f"property search error: {error}")
        rec = self._failure_record(stats, blob)
        if error:
            rec["search_error"] = error
        return rec

    def _pseudo_case(self) -> Case:
        """The target as one case: its highest explored opset, variant ``explore``."""
        first = self.target.cases[0]
        opset = max(self.opsets or {c.opset for c in self.target.cases})
        return replace(first, variant="explore", opset=opset, skip=None)

    def _summary(self, st: str, stats: dict, message: str) -> dict:
        rec = record.new(self._pseudo_case(), st, message=message, stage="explore" if message else "")
        rec.update(id=self.target.id, mode="explore", explore=stats)
        return rec

    def _failure_record(self, stats: dict, blob: str | None) -> dict:
        draw, case, rec = self.last_failure
        bundle_dir = str(self.repro_dir / self.target.id) if self.repro_dir else None
        if bundle_dir:  # run the minimal example once more, this time leaving a bundle
            again = self.runner.executor_for(case.framework).run(case, bundle_dir=bundle_dir)
            if again["status"] == rec["status"]:
                rec = again
            else:
                rec["repro_bundle_error"] = (f"the minimal example gave {again['status']} on its replay "
                                             f"(was {rec['status']})")
        failing = rec.get("failing_input")
        minimal = {"variant": draw["variant"], "opset": draw["opset"], "kwargs": draw["kwargs"],
                   "dims": draw["dims"], "shapes": draw["shapes"],
                   "dtype": draw["dtype"], "input_seeds": draw["input_seeds"],
                   "failing_input_seed": draw["input_seeds"][failing] if failing is not None else None,
                   "case_id": case.id, "case_variant": case.variant, "spec": case.spec}
        if "args" in draw:
            minimal["args"] = draw["args"]
        cmd = (f"python -m pytest conformance/test_explore.py --explore --matrix {self.target.matrix} "
               f"--explore-profile {self.profile} -k '{self.target.id}'")
        replay = {"pytest": cmd, "reproduce_failure": blob}
        if rec.get("repro_bundle"):
            replay["repro"] = f"python {rec['repro_bundle']}/repro.py"
        out = dict(rec)
        out.update(id=self.target.id, variant="explore", mode="explore", case_id=case.id,
                   matrix=self.target.matrix,
                   explore=stats, minimal_example=minimal, replay=replay)
        return out


def failure_message(rec: dict) -> str:
    """The pytest failure text of a failing property test."""
    m = rec.get("minimal_example") or {}
    lines = [f"{rec['status']}: {rec.get('message', '')}"]
    if m:
        lines.append(f"minimal example ({rec['explore']['examples']} examples tried): from variant "
                     f"{m.get('variant')} at opset {m.get('opset')}: kwargs={m['kwargs']}"
                     + (f" args={m['args']}" if "args" in m else "")
                     + f" shapes={m['shapes']} dtype={m['dtype']} input_seed={m['failing_input_seed']}")
        lines.append(f"pin it as a fixed variant: python -m harness pin-example RESULTS {rec['id']}")
    if rec.get("repro_bundle"):
        lines.append(f"repro bundle: {rec['repro_bundle']}  (python {rec['repro_bundle']}/repro.py)")
    replay = rec.get("replay") or {}
    if replay.get("pytest"):
        lines.append(f"replay: {replay['pytest']}")
    if replay.get("reproduce_failure"):
        lines.append(f"hypothesis: {replay['reproduce_failure']}")
    return "\n".join(lines)
