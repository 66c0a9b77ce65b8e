"""The verdict pipeline of one case: build, reference, export, check, run, compare.

Runs inside a case-runner process (see :mod:`harness.isolation.processes`). Returns a
plain result record; it never raises for a problem of the case under test.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import blame, devices, dtypes, record, registry, status
from harness import passes, runtimes
from .case import Case
from . import faults
from .inputs import make_input_sets
from .tolerance import compare


@dataclass
class Prepared:
    """What every opset and exporter of one op variant shares."""

    model: Any
    input_sets: list[list[np.ndarray]]
    references: list[list[np.ndarray]]
    ref_s: float
    cache: dict = field(default_factory=dict)


#: models (with their inputs, references and exports) a server keeps, least recently used dropped first
CACHED_MODELS = 8
#: whole models (``whole_model: true``) a server keeps: one, since a whole network with its loaded
#: exports holds hundreds of MB to GB (a Paddle server reached 3.9 GB RSS keeping eight) and the cases
#: of one model arrive together
CACHED_WHOLE_MODELS = 1


class ModelCache:
    """A small LRU of :class:`Prepared` models keyed by ``Case.model_key``."""

    def __init__(self, size: int = CACHED_MODELS):
        self.size = size
        self._items: OrderedDict[str, Prepared | Exception] = OrderedDict()

    def get(self, case: Case, fw) -> Prepared:
        """Build (or reuse) the model, inputs and reference outputs of ``case`` (per device)."""
        key = f"{case.model_key}@{case.device}"
        if key in self._items:
            self._items.move_to_end(key)
        else:
            size = min(self.size, CACHED_WHOLE_MODELS) if case.spec.get("whole_model") else self.size
            while self._items and len(self._items) >= size:  # dropped before the new model is built
                self._items.popitem(last=False)
            self._items[key] = _prepare(case, fw)
        item = self._items[key]
        if isinstance(item, Exception):
            raise item
        return item


class FrameworkOutputError(Exception):
    """The framework could not build or run its own model (``stage``: build, inputs or reference)."""

    def __init__(self, message: str, stage: str = "reference"):
        super().__init__(message)
        self.stage = stage


class DegenerateReference(Exception):
    """The framework's outputs cannot tell a right export from a wrong one (see :func:`degenerate`)."""


#: below this largest magnitude a reference counts as "near zero" (whole models: random weights that
#: shrink every activation away compare equal to almost anything under an absolute tolerance)
NEAR_ZERO = 1e-3


def degenerate(refs: list[list[np.ndarray]]) -> str | None:
    """Why reference outputs prove nothing, or None: NaN/Inf, near zero, constant, or the same
    output for different inputs (the samples of one batch, or the first sample of each input set).

    Only floating outputs are judged; an entry asks for the check with ``check_reference: true``.
    """
    floats = [[np.asarray(y) for y in ys if np.asarray(y).dtype.kind in "fc"] for ys in refs]
    if not any(floats):
        return None
    for n, ys in enumerate(floats):
        for k, y in enumerate(ys):
            if y.size and not np.isfinite(y).all():
                return f"input set {n}, output {k}: NaN or Inf in the reference"
    peak = max((float(np.abs(y).max()) for ys in floats for y in ys if y.size), default=0.0)
    if peak < NEAR_ZERO:
        return f"every output is near zero (max |y| = {peak:.3g} < {NEAR_ZERO:g})"
    for k, y in enumerate(floats[0]):
        if y.size > 1 and float(y.max() - y.min()) <= 1e-6 * max(1.0, float(np.abs(y).max())):
            return f"output {k} is constant ({float(y.flat[0]):.6g} everywhere)"
    samples = [y[i] for ys in floats for y in ys[:1] if y.ndim >= 1 for i in range(y.shape[0])]
    if len(samples) > 1 and all(s.shape == samples[0].shape for s in samples) and all(
            np.allclose(s, samples[0], rtol=1e-6, atol=0) for s in samples[1:]):
        return f"output 0 is the same for {len(samples)} different input samples"
    return None


def top1_agreement(ref, out) -> float | None:
    """Share of samples whose arg-max over the last axis is the same in ``ref`` and ``out`` (classifiers)."""
    ref, out = np.asarray(ref), np.asarray(out)
    if ref.shape != out.shape or ref.ndim < 1 or ref.dtype.kind not in "fc" or ref.size == 0:
        return None
    return float(np.mean(np.argmax(ref, axis=-1) == np.argmax(out, axis=-1)))


def _prepare(case: Case, fw) -> Prepared | Exception:
    stage = "build"
    try:
        t0 = time.perf_counter()
        model = fw.build(case.spec, case.seed)
        stage = "inputs"
        input_sets = make_input_sets(case)
        stage = "reference"
        refs = [list(fw.reference(model, xs)) for xs in input_sets]
        if case.spec.get("derived") and input_sets and not _same(refs[0], fw.reference(model, input_sets[0])):
            # a mechanically made form can switch on randomness (dropout's training=True): nothing to judge
            return FrameworkOutputError("its own output is not deterministic: two runs on the same inputs "
                                        "differ", stage)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported as the case's status
        return FrameworkOutputError(f"{type(exc).__name__}: {exc}", stage)
    if case.spec.get("check_reference"):
        why = degenerate(refs)
        if why:
            return DegenerateReference(f"model {case.framework}/{case.kernel}-{case.variant}: {why}")
    return Prepared(model, input_sets, refs, time.perf_counter() - t0)


def _same(first: list, second) -> bool:
    """Whether two runs of the framework's own model gave the same outputs (NaN equal to NaN)."""
    second = list(second)
    return len(first) == len(second) and all(
        np.shape(a) == np.shape(b) and np.array_equal(np.asarray(a), np.asarray(b),
                                                      equal_nan=np.asarray(a).dtype.kind in "fc")
        for a, b in zip(first, second))


def refused_form(case: Case, message: str, stage: str = "reference") -> str | None:
    """The skip reason when the framework refuses its own model of a derived form, else None.

    A derived variant (``--forms derived``, see :mod:`harness.spec.derived`) is made mechanically
    from the entry and the framework's API; when the framework itself cannot build or run it, the
    form is one the framework does not take (a 0-d input to a pool, an axis as a tensor where the
    kernel wants an int): no exporter is judged. Only at the framework's own steps (``build``,
    ``reference``): the harness failing to make the inputs (``inputs``) is never a skip.
    """
    form = case.spec.get("derived")
    if not form or stage not in ("build", "reference"):
        return None
    return f"{case.framework} refuses the derived form {case.variant} ({form}): {message}"


def run_case(case: Case, workdir: str, cache: ModelCache, providers: list[str] | None = None,
             bundle_dir: str | None = None, device: dict | None = None) -> dict:
    """Run ``case`` end to end and return its result record.

    With ``bundle_dir``, a failing case leaves a repro bundle there (see :mod:`harness.core.repro`).
    ``device`` is a :class:`~harness.core.devices.DeviceSetting` as a dict (CPU when
    None): the ORT providers to ask for and the device the framework's
    reference runs on (via the adapter's optional ``set_device(device)``).
    """
    ctx: dict = {}
    rec = _run_case(case, workdir, cache, providers, ctx, device)
    if bundle_dir and rec["status"] in status.FAILURES:
        from .repro import write_bundle

        try:
            rec["repro_bundle"] = write_bundle(bundle_dir, case, rec, ctx)
        except Exception as exc:  # noqa: BLE001 - a bundle problem must not hide the verdict
            rec["repro_bundle_error"] = _short(exc)
    return rec


@dataclass
class Exported:
    """The outcome of exporting one (model, exporter, opset, device), shared by its runtimes and passes.

    Either ``failure`` (status, stage, message) or the loaded, checked ``model``
    saved at ``path``. Cached in :attr:`Prepared.cache` under
    ``Case.export_key``, so an added runtime or pass costs its own session and
    run, never another export.
    """

    export_s: float
    path: str | None = None
    model: Any = None
    op_types: list = field(default_factory=list)
    model_opset: int | None = None
    failure: tuple[str, str, str] | None = None
    uses: int = 0
    #: size of the saved model (with external data beside it), MB
    model_mb: float | None = None


@dataclass
class RuntimeOutcome:
    """One runtime's verdict on one model: status, message, figures and the outputs it produced."""

    status: str
    stage: str = ""
    message: str = ""
    fields: dict = field(default_factory=dict)
    outputs: list = field(default_factory=list)


def _run_case(case: Case, workdir: str, cache: ModelCache, providers: list[str] | None, ctx: dict,
              device: dict | None = None) -> dict:
    if case.skip:
        return record.new(case, status.SKIPPED, message=case.skip, stage="matrix")
    setting = devices.DeviceSetting.from_dict(device)
    if providers and not device:
        setting = devices.DeviceSetting(case.device, tuple(providers), tuple({} for _ in providers))
    try:
        fw = registry.load_framework(case.framework)
    except Exception as exc:  # noqa: BLE001 - not installed: a skip; anything else: a broken install
        kind, why = faults.import_failure(case.framework, exc)
        if kind == "broken":
            return faults.record_of(case, why)
        return record.new(case, status.SKIPPED, stage="setup", message=f"{case.framework}/{case.exporter} "
                          f"not available here: {why}")
    try:
        exporter = registry.EXPORTERS[(case.framework, case.exporter)]
    except KeyError as exc:
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"{case.framework}/{case.exporter} not available here: {exc}")
    backend = _backend(case)
    if isinstance(backend, dict):
        return backend
    runtime, transform = backend
    try:
        fw.set_device(case.device)
    except Exception as exc:  # noqa: BLE001 - e.g. a CPU-only framework build
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"{case.framework} cannot run on {case.device} here: {_short(exc)}")
    try:
        prep = cache.get(case, fw)
        ctx["prep"] = prep
    except DegenerateReference as exc:
        return record.new(case, status.HARNESS_ERROR, stage="reference",
                          message=f"refused, not judged: the reference is degenerate: {exc}")
    except FrameworkOutputError as exc:
        reason = dtypes.unsupported_reason(fw, case, str(exc)) or refused_form(case, str(exc), exc.stage)
        if reason:
            return record.new(case, status.SKIPPED, stage="reference", message=reason)
        return record.new(case, status.EXPORT_ERROR, stage="reference",
                       message=f"the framework could not run its own model: {exc}")
    exported = _export_once(case, exporter, prep, workdir)
    common = {"ref_s": prep.ref_s, "export_s": exported.export_s}
    if exported.uses > 1:  # export_s is the shared export's, paid once
        common["export_reused"] = True
    if exported.path:
        ctx["model_path"] = exported.path
    if exported.model_opset is not None or exported.op_types:
        common.update(op_types=list(exported.op_types), model_opset=exported.model_opset)
    if exported.model_mb is not None:
        common["model_mb"] = exported.model_mb
    if exported.failure:
        st, stage, msg = exported.failure
        rec = record.new(case, st, stage=stage, message=msg, **common)
    else:
        rec = _verdict(case, exported, prep, setting, runtime, transform, common, ctx)
    _blame(case, rec, exported, prep, ctx)
    if case.spec.get("whole_model") and exported.path:
        exported.model = None  # hundreds of MB for a whole network: loaded again if another runtime asks
    return rec


def _backend(case: Case):
    """(runtime, pass or None) of ``case``, or the record of a case that cannot run them here."""
    try:
        runtime = runtimes.get(case.runtime)
    except (ImportError, KeyError) as exc:
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"runtime {case.runtime} not available here: {_short(exc)}")
    why = getattr(runtime, "unavailable", None)
    why = why() if why is not None else None
    if why:
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"runtime {case.runtime} not available here: {why}")
    where = runtime.devices
    if where is not None and case.device not in where:
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"runtime {case.runtime} runs on {', '.join(where)} only, not {case.device}")
    if case.post_pass == passes.NONE:
        return runtime, None
    try:
        return runtime, passes.get(case.post_pass)
    except (ImportError, KeyError) as exc:
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"post-export pass {case.post_pass} not available here: {_short(exc)}")


def _export_once(case: Case, exporter, prep: Prepared, workdir: str) -> Exported:
    """Export, load and check the model of ``case``, or reuse what an earlier runtime or pass of it did."""
    key = ("exported", case.export_key)
    done = prep.cache.get(key)
    if done is None:
        done = prep.cache[key] = _export(case, exporter, prep, workdir)
    elif done.model is None and done.path and done.failure is None:  # a whole model, let go after its case
        import onnx

        done.model = onnx.load(done.path)
    done.uses += 1
    return done


def _export(case: Case, exporter, prep: Prepared, workdir: str) -> Exported:
    import onnx

    os.makedirs(workdir, exist_ok=True)
    t0 = time.perf_counter()
    try:
        path = exporter.export(prep.model, case, workdir, prep.cache)
    except SystemExit as exc:
        # paddle2onnx's logging.error() calls sys.exit(-1) after logging the real error;
        # the isolation layer appends those logged lines to the message.
        return Exported(time.perf_counter() - t0,
                        failure=(status.EXPORT_ERROR, "export", f"the exporter called sys.exit({exc.code})"))
    except Exception as exc:  # noqa: BLE001
        if faults.disk_full(exc) or faults.no_room(workdir):  # a full temp folder: the machine's fault
            return Exported(time.perf_counter() - t0, failure=(status.SKIPPED, faults.STAGE, faults.PREFIX
                                                               + f"{faults.describe(exc)} while exporting to "
                                                               f"{workdir}"))
        return Exported(time.perf_counter() - t0, failure=(status.EXPORT_ERROR, "export", _short(exc)))
    export_s = time.perf_counter() - t0
    if not path or not os.path.exists(path):
        return Exported(export_s, failure=(status.EXPORT_ERROR, "export",
                                           "the exporter returned without writing a model"))
    try:
        model = onnx.load(path)
    except Exception as exc:  # noqa: BLE001
        return Exported(export_s, path=path, failure=(status.INVALID_MODEL, "load", _short(exc)))
    size = sum(os.path.getsize(p) for p in (path, path + ".data") if os.path.exists(p))
    done = Exported(export_s, path=path, model=model,
                    op_types=sorted({n.op_type for n in model.graph.node}),
                    model_opset=next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
                    model_mb=round(size / 1e6, 3))
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001
        done.failure = (status.INVALID_MODEL, "checker", _short(exc))
    return done


def _verdict(case: Case, exported: Exported, prep: Prepared, setting: devices.DeviceSetting,
             runtime, transform, common: dict, ctx: dict) -> dict:
    """The record of a loaded, checked model: the pass (if any), the runtime, the comparison."""
    model, path = exported.model, exported.path
    if transform is not None:
        done = _apply_pass(case, transform, model, path, prep, common)
        if isinstance(done, dict):
            return done
        model, path = done
        ctx["passed_path"] = path
        common["op_types"] = sorted({n.op_type for n in model.graph.node})
    run = _execute(case, runtime, model, path, setting, prep)
    ctx["actual"] = run.outputs
    if transform is not None and run.status != status.PASS:
        # Whose failure is it: run the exported model itself on the same runtime.
        base = _execute(case, runtime, exported.model, exported.path, setting, prep)
        ctx["base_run"] = base
        if base.status == status.PASS:
            msg = (f"{case.post_pass} changed the result: the exported model passes on {runtime.name}; "
                   f"after the pass: {run.status}" + (f" ({run.message})" if run.message else ""))
            return _final(case, status.PASS_CHANGED_RESULT, msg, exported.model_opset,
                          {**common, **run.fields, "pass_status": run.status}, stage="pass")
    else:
        ctx["base_run"] = run
    if run.stage in ("session", "run"):
        return record.new(case, run.status, stage=run.stage, message=run.message, **common, **run.fields)
    return _final(case, run.status, run.message, exported.model_opset, {**common, **run.fields})


def _execute(case: Case, runtime, model, path: str, setting: devices.DeviceSetting, prep: Prepared) -> RuntimeOutcome:
    """Run ``model`` on ``runtime`` over the case's input sets and compare with the framework.

    Stops at the first input set that fails; ``outputs`` holds what ran.
    """
    named = "" if runtime.name == runtimes.DEFAULT else f"{runtime.name}: "
    t0 = time.perf_counter()
    try:
        sess = runtime.prepare(model, path, setting)
    except Exception as exc:  # noqa: BLE001
        return RuntimeOutcome(_runtime_status(runtime, exc), "session", named + _short(exc))
    fields: dict = {"provider": sess.provider}
    if sess.fallback:
        return RuntimeOutcome(status.RUNTIME_UNSUPPORTED, "session", sess.fallback,
                              {**fields, "provider_fallback": True})
    worst = (0.0, 0.0)
    run = RuntimeOutcome(status.PASS, fields=fields)
    try:
        for n, (xs, refs) in enumerate(zip(prep.input_sets, prep.references)):
            outs = sess.run(list(xs))
            run.outputs.append(outs)
            if case.spec.get("classifier") and refs and outs:
                agree = top1_agreement(refs[0], outs[0])
                if agree is not None:
                    fields["top1_agree"] = min(agree, fields.get("top1_agree", 1.0))
            problem = _compare_outputs(case, refs, outs)
            if problem is not None:
                run.status, run.message, figs = problem
                run.stage = "compare"
                fields["failing_input"] = n
                fields["run_s"] = time.perf_counter() - t0
                fields.update(getattr(sess, "timings", None) or {})
                if figs:
                    fields.update(max_abs=figs[0], max_rel=figs[1])
                return run
            worst = max(worst, _figs(case, refs, outs))
    except Exception as exc:  # noqa: BLE001
        fields["run_s"] = time.perf_counter() - t0
        fields.update(getattr(sess, "timings", None) or {})
        return RuntimeOutcome(_runtime_status(runtime, exc), "run", named + _short(exc), fields, run.outputs)
    fields.update(run_s=time.perf_counter() - t0, max_abs=worst[0], max_rel=worst[1])
    # a runtime that converts or compiles says how long that took apart from the run (prepare_s, ...)
    fields.update(getattr(sess, "timings", None) or {})
    return run


def _apply_pass(case: Case, transform, model, path: str, prep: Prepared, common: dict):
    """(model, path) after the case's post-export pass, or the record of the pass's failure."""
    import onnx

    own = onnx.ModelProto()
    own.CopyFrom(model)  # the exported model is shared by every runtime and pass of the case
    t0 = time.perf_counter()
    try:
        model = transform.apply(own, _feeds(model, prep.input_sets[0]) if prep.input_sets else None)
    except Exception as exc:  # noqa: BLE001
        return record.new(case, status.PASS_ERROR, stage="pass", pass_s=time.perf_counter() - t0,
                          message=f"{case.post_pass} raised: {_short(exc)}", **common)
    common["pass_s"] = time.perf_counter() - t0
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001
        return record.new(case, status.PASS_INVALID_MODEL, stage="pass",
                          message=f"{case.post_pass} wrote an invalid model: {_short(exc)}", **common)
    out = path[:-len(".onnx")] if path.endswith(".onnx") else path
    out += f".{case.post_pass}.onnx"
    onnx.save(model, out)
    return model, out


def _feeds(model, xs: list) -> dict:
    """The graph's input names (initializers left out) mapped to one input set."""
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    return dict(zip(names, xs))


#: seconds the reference evaluator may spend on one case's blame before it gives up
BLAME_BUDGET_S = 20.0


def _blame(case: Case, rec: dict, exported: Exported, prep: Prepared, ctx: dict) -> None:
    """Add ``blame`` and ``blame_why`` to a failing record (see :mod:`harness.core.blame`)."""
    st = rec["status"]
    if st == status.PASS or st == status.SKIPPED:
        return
    t0 = time.perf_counter()
    try:
        _decide_blame(case, rec, exported, prep, ctx)
    finally:
        if st in blame.NEEDS_REFERENCE and exported.model is not None:
            rec["blame_s"] = round(time.perf_counter() - t0, 3)


def _decide_blame(case: Case, rec: dict, exported: Exported, prep: Prepared, ctx: dict) -> None:
    st = rec["status"]
    opinion = None
    if st in blame.NEEDS_REFERENCE and case.runtime == blame.REFERENCE and exported.model is not None:
        # the reference evaluator is under test: every other runtime installed here is a witness
        opinions = {}
        for name in blame.SECOND_OPINIONS:
            o = _second_opinion(case, exported, prep, ctx.get("base_run"), name)
            if o is not None:
                opinions[name] = o
        found = blame.decide_many(st, rec.get("stage", ""), case.runtime, opinions)
        if found:
            rec["blame"], rec["blame_why"] = found
        return
    if st in blame.NEEDS_REFERENCE and exported.model is not None:
        opinion = _second_opinion(case, exported, prep, ctx.get("base_run"))
    found = blame.decide(st, rec.get("stage", ""), case.runtime, opinion)
    if found:
        rec["blame"], rec["blame_why"] = found


def _second_opinion(case: Case, exported: Exported, prep: Prepared, base: RuntimeOutcome | None,
                    name: str = blame.REFERENCE) -> blame.Opinion | None:
    """Run runtime ``name`` (the reference evaluator by default) on the exported model (time-boxed) and
    compare it both ways; None when ``name`` is another runtime that is not installed here."""
    try:
        witness = runtimes.get(name)
    except (ImportError, KeyError) as exc:
        if name != blame.REFERENCE:
            return None
        return blame.Opinion(problem=f"not available here: {_short(exc)}")
    budget = float(case.spec.get("blame_budget_s", BLAME_BUDGET_S))
    try:
        with _time_box(budget):
            ref = _execute(case, witness, exported.model, exported.path, devices.DeviceSetting(), prep)
    except _OutOfTime:
        return blame.Opinion(problem=f"it took longer than {budget:g} s")
    if ref.status in (status.RUNTIME_ERROR, status.RUNTIME_UNSUPPORTED):
        return blame.Opinion(problem=f"{ref.status}: {ref.message}")
    if ref.status == status.PASS:
        return blame.Opinion()
    opinion = blame.Opinion(vs_framework=f"{ref.status}: {ref.message}")
    n = ref.fields.get("failing_input", 0)
    if base is not None and n < len(base.outputs) and n < len(ref.outputs):
        opinion.agrees_with_runtime, opinion.vs_runtime = _agree(case, ref.outputs[n], base.outputs[n])
    return opinion


def _agree(case: Case, ours: list, theirs: list) -> tuple[bool, str]:
    """Whether two runtimes' outputs agree under the case's tolerance, and how far apart they are.

    Elements equal in both (the same infinity, NaN in both) agree as they are;
    the tolerance rule judges the rest.
    """
    if len(ours) != len(theirs):
        return False, f"{len(theirs)} outputs vs {len(ours)}"
    worst, differ = 0.0, False
    for k, (a, b) in enumerate(zip(ours, theirs)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False, f"output {k}: {b.dtype}{list(b.shape)} vs {a.dtype}{list(a.shape)}"
        same = a == b
        if a.dtype.kind in "fc":
            same |= np.isnan(a) & np.isnan(b)
        if same.all():
            continue
        v = compare(case.tolerance, a[~same], b[~same])
        if not v.ok:
            return False, f"output {k}: {v.detail}"
        worst, differ = max(worst, v.max_abs), True
    return True, f"max_abs {worst:.3g} where they differ" if differ else "identical outputs"


class _OutOfTime(BaseException):
    """The time box ran out (a BaseException, so the runtime's own ``except Exception`` cannot swallow it)."""


@contextmanager
def _time_box(seconds: float):
    """Raise :class:`_OutOfTime` in the body after ``seconds`` (SIGALRM; no limit off the main thread)."""
    def expire(signum, frame):
        raise _OutOfTime()

    try:
        previous = signal.signal(signal.SIGALRM, expire)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _final(case: Case, st: str, msg: str, model_opset: int | None, common: dict, stage: str = "compare") -> dict:
    # An exporter that silently changed the opset has not conformed, whatever the values say.
    if model_opset != case.opset:
        note = f"; values: {st}" + (f" ({msg})" if msg else "")
        return record.new(case, status.OPSET_NOT_HONORED, stage="opset",
                       message=f"requested opset {case.opset}, model declares {model_opset}{note}", **common)
    return record.new(case, st, stage=stage if st != status.PASS else "", message=msg, **common)


def _figs(case: Case, refs, outs) -> tuple[float, float]:
    best = (0.0, 0.0)
    for r, a in zip(refs, outs):
        v = compare(case.tolerance, r, a)
        if v.max_abs == v.max_abs:  # not NaN
            best = max(best, (v.max_abs, v.max_rel))
    return best


def _compare_outputs(case: Case, refs: list, outs: list):
    """None when every output conforms, else (status, message, figures)."""
    if len(refs) != len(outs):
        return status.SHAPE_MISMATCH, f"{len(outs)} outputs, reference has {len(refs)}", None
    for k, (r, a) in enumerate(zip(refs, outs)):
        r, a = np.asarray(r), np.asarray(a)
        if r.shape != a.shape:
            return status.SHAPE_MISMATCH, f"output {k}: shape {a.shape}, reference {r.shape}", None
        if r.dtype != a.dtype:
            return status.DTYPE_MISMATCH, f"output {k}: dtype {a.dtype}, reference {r.dtype}", None
        v = compare(case.tolerance, r, a)
        if not v.ok:
            msg = f"output {k}: {v.detail} under rule {case.tolerance['name']}"
            if case.spec.get("special_values"):
                from .special import describe_special_disagreement

                special = describe_special_disagreement(r, a)
                msg = f"output {k}: {special}; {msg}" if special else msg
            return status.MISMATCH, msg, (v.max_abs, v.max_rel)
    return None


def _runtime_status(runtime, exc: Exception) -> str:
    if isinstance(exc, runtimes.Crashed):  # the runtime's own server process died: a native abort
        return status.CRASH
    if isinstance(exc, runtimes.Unsupported) or runtime.unsupported(exc):
        return status.RUNTIME_UNSUPPORTED
    return status.RUNTIME_ERROR


def _short(exc: BaseException, limit: int = 2000) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    if len(text) > limit:
        text = text[:limit] + " ..."
    return text


def format_exception() -> str:
    """The current exception's traceback, trimmed for a record."""
    return traceback.format_exc()[-4000:]
