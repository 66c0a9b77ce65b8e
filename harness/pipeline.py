"""The verdict pipeline of one case: build, reference, export, check, run, compare.

Runs inside a case-runner process (see :mod:`harness.isolation`). Returns a
plain result record; it never raises for a problem of the case under test.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import devices, dtypes, passes, record, registry, runtimes, status
from .case import Case
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


class ModelCache:
    """A small LRU of :class:`Prepared` models keyed by ``Case.model_key``."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[str, Prepared | Exception] = OrderedDict()

    def get(self, case: Case, fw) -> Prepared:
        """Build (or reuse) the model, inputs and reference outputs of ``case`` (per device)."""
        key = f"{case.model_key}@{case.device}"
        if key in self._items:
            self._items.move_to_end(key)
        else:
            self._items[key] = _prepare(case, fw)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        item = self._items[key]
        if isinstance(item, Exception):
            raise item
        return item


class ReferenceError_(Exception):
    """The framework could not build or run its own model."""


def _prepare(case: Case, fw) -> Prepared | Exception:
    try:
        t0 = time.perf_counter()
        model = fw.build(case.spec, case.seed)
        input_sets = make_input_sets(case)
        refs = [list(fw.reference(model, xs)) for xs in input_sets]
        return Prepared(model, input_sets, refs, time.perf_counter() - t0)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported as the case's status
        return ReferenceError_(f"{type(exc).__name__}: {exc}")


def run_case(case: Case, workdir: str, cache: ModelCache, providers: list[str] | None = None,
             bundle_dir: str | None = None, device: dict | None = None) -> dict:
    """Run ``case`` end to end and return its result record.

    With ``bundle_dir``, a failing case leaves a repro bundle there (see :mod:`harness.repro`).
    ``device`` is a :class:`~harness.devices.DeviceSetting` as a dict (CPU when
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


def _run_case(case: Case, workdir: str, cache: ModelCache, providers: list[str] | None, ctx: dict,
              device: dict | None = None) -> dict:
    if case.skip:
        return record.new(case, status.SKIPPED, message=case.skip, stage="matrix")
    setting = devices.DeviceSetting.from_dict(device)
    if providers and not device:
        setting = devices.DeviceSetting(case.device, tuple(providers), tuple({} for _ in providers))
    try:
        fw = registry.load_framework(case.framework)
        exporter = registry.EXPORTERS[(case.framework, case.exporter)]
    except (ImportError, KeyError) as exc:
        return record.new(case, status.SKIPPED, stage="setup",
                       message=f"{case.framework}/{case.exporter} not available here: {exc}")
    set_device = getattr(fw, "set_device", None)
    if set_device is not None:
        try:
            set_device(case.device)
        except Exception as exc:  # noqa: BLE001 - e.g. a CPU-only framework build
            return record.new(case, status.SKIPPED, stage="setup",
                           message=f"{case.framework} cannot run on {case.device} here: {_short(exc)}")
    try:
        prep = cache.get(case, fw)
        ctx["prep"] = prep
    except ReferenceError_ as exc:
        reason = dtypes.unsupported_reason(fw, case, str(exc))
        if reason:
            return record.new(case, status.SKIPPED, stage="reference", message=reason)
        return record.new(case, status.EXPORT_ERROR, stage="reference",
                       message=f"the framework could not run its own model: {exc}")
    os.makedirs(workdir, exist_ok=True)
    t0 = time.perf_counter()
    try:
        path = exporter.export(prep.model, case, workdir, prep.cache)
    except SystemExit as exc:
        # paddle2onnx's logging.error() calls sys.exit(-1) after logging the real error;
        # the isolation layer appends those logged lines to the message.
        return record.new(case, status.EXPORT_ERROR, stage="export", ref_s=prep.ref_s,
                       export_s=time.perf_counter() - t0,
                       message=f"the exporter called sys.exit({exc.code})")
    except Exception as exc:  # noqa: BLE001
        return record.new(case, status.EXPORT_ERROR, stage="export", ref_s=prep.ref_s,
                       export_s=time.perf_counter() - t0, message=_short(exc))
    export_s = time.perf_counter() - t0
    common = {"ref_s": prep.ref_s, "export_s": export_s}
    if not path or not os.path.exists(path):
        return record.new(case, status.EXPORT_ERROR, stage="export", **common,
                       message="the exporter returned without writing a model")
    ctx["model_path"] = path
    return _verdict(case, path, prep, setting, common, ctx)


def _verdict(case: Case, path: str, prep: Prepared, setting: devices.DeviceSetting,
             common: dict, ctx: dict | None = None) -> dict:
    import onnx

    try:
        model = onnx.load(path)
    except Exception as exc:  # noqa: BLE001
        return record.new(case, status.INVALID_MODEL, stage="load", message=_short(exc), **common)
    op_types = sorted({n.op_type for n in model.graph.node})
    model_opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    common.update(op_types=op_types, model_opset=model_opset)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001
        return record.new(case, status.INVALID_MODEL, stage="checker", message=_short(exc), **common)
    if case.post_pass != passes.NONE:
        done = _apply_pass(case, model, path, common)
        if isinstance(done, dict):
            return done
        model, path = done
        if ctx is not None:
            ctx["model_path"] = path
    try:
        runtime = runtimes.get(case.runtime)
    except (ImportError, KeyError) as exc:
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"runtime {case.runtime} not available here: {_short(exc)}", **common)
    t0 = time.perf_counter()
    try:
        sess = runtime.prepare(model, path, setting)
    except Exception as exc:  # noqa: BLE001
        return record.new(case, _runtime_status(runtime, exc), stage="session", message=_short(exc), **common)
    common["provider"] = sess.provider
    if sess.fallback:
        return record.new(case, status.RUNTIME_UNSUPPORTED, stage="session", provider_fallback=True,
                          message=sess.fallback, **common)
    worst = (0.0, 0.0)
    actual = (ctx if ctx is not None else {}).setdefault("actual", [])
    try:
        for n, (xs, refs) in enumerate(zip(prep.input_sets, prep.references)):
            outs = sess.run(list(xs))
            actual.append(outs)
            problem = _compare_outputs(case, refs, outs)
            if problem is not None:
                st, msg, figs = problem
                common["failing_input"] = n
                common["run_s"] = time.perf_counter() - t0
                if figs:
                    common.update(max_abs=figs[0], max_rel=figs[1])
                return _final(case, st, msg, model_opset, common)
            worst = max(worst, _figs(case, refs, outs))
    except Exception as exc:  # noqa: BLE001
        common["run_s"] = time.perf_counter() - t0
        return record.new(case, _runtime_status(runtime, exc), stage="run", message=_short(exc), **common)
    common.update(run_s=time.perf_counter() - t0, max_abs=worst[0], max_rel=worst[1])
    return _final(case, status.PASS, "", model_opset, common)


def _apply_pass(case: Case, model, path: str, common: dict):
    """(model, path) after the case's post-export pass, or the record of the pass's failure."""
    import onnx

    try:
        transform = passes.get(case.post_pass)
    except (ImportError, KeyError) as exc:
        return record.new(case, status.SKIPPED, stage="setup",
                          message=f"post-export pass {case.post_pass} not available here: {_short(exc)}", **common)
    t0 = time.perf_counter()
    try:
        model = transform.apply(model)
    except Exception as exc:  # noqa: BLE001
        return record.new(case, status.PASS_ERROR, stage="pass", pass_s=time.perf_counter() - t0,
                          message=f"{case.post_pass} raised: {_short(exc)}", **common)
    common["pass_s"] = time.perf_counter() - t0
    common["op_types"] = sorted({n.op_type for n in model.graph.node})
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001
        return record.new(case, status.PASS_INVALID_MODEL, stage="pass",
                          message=f"{case.post_pass} wrote an invalid model: {_short(exc)}", **common)
    out = path[:-len(".onnx")] if path.endswith(".onnx") else path
    out += f".{case.post_pass}.onnx"
    onnx.save(model, out)
    return model, out


def _final(case: Case, st: str, msg: str, model_opset: int | None, common: dict) -> dict:
    # An exporter that silently changed the opset has not conformed, whatever the values say.
    if model_opset != case.opset:
        note = f"; values: {st}" + (f" ({msg})" if msg else "")
        return record.new(case, status.OPSET_NOT_HONORED, stage="opset",
                       message=f"requested opset {case.opset}, model declares {model_opset}{note}", **common)
    return record.new(case, st, stage="compare" if st != status.PASS else "", message=msg, **common)


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
                from .strategies import describe_special_disagreement

                special = describe_special_disagreement(r, a)
                msg = f"output {k}: {special}; {msg}" if special else msg
            return status.MISMATCH, msg, (v.max_abs, v.max_rel)
    return None


def _runtime_status(runtime, exc: Exception) -> str:
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
