"""PyTorch adapter and its two export paths (imported only by case runners).

* ``torchscript``: ``torch.onnx.export(..., dynamo=False, opset_version=N,
  dynamic_axes=...)``, the TorchScript (tracing) exporter;
* ``dynamo``: ``torch.onnx.export(..., dynamo=True, opset_version=N,
  dynamic_shapes=...)``, the ``torch.export`` based exporter. It translates at
  its own opset (18 for torch 2.13) and, for a lower request, tries a version
  conversion that may leave the model at 18; the pipeline measures the opset
  the saved model declares and records ``opset-not-honored`` when it differs.

Dynamic axes come from each input spec's ``dynamic`` list (default ``[0]``,
the batch). The example inputs of an export are the spec's own shapes (the
YAML ``shape``), never a batch of 1: ``torch.export`` specialises size-1 dims.

Speed-ups, not changes of behaviour (``tests/test_dynamo_reuse.py`` checks, node
for node, that the graphs equal those of a fresh ``torch.onnx.export`` of the module):

* the capture: ``torch.export`` does not depend on the opset, so a variant is
  captured once and each opset exports that ``ExportedProgram`` through the
  public ``torch.onnx.export`` (:class:`DynamoExporter`);
* the operator registry (``ONNXRegistry.from_torchlib``) re-parses ~500 torchlib
  functions on every export (~1 s). It is read-only during an export unless a
  ``custom_translation_table`` is given (never here), so it is built once per
  opset per process and reused;
* the decomposition's list of CompositeImplicitAutograd ops, recomputed by
  torch on every export, is kept while the op registrations it reads are
  unchanged (:func:`_memoize_cia_ops`);
* the decomposition of a captured program depends on the ops the opset's
  registry implements, not on the opset number: it runs once per such set
  (:func:`_memoize_preparation`).

The translation to ONNX, its optimisation and any version conversion run
afresh at every opset.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import warnings

import numpy as np
import torch

from harness.core import calls, registry
from harness.core.inputs import make_inputs

#: pip distributions a standalone repro of a torch case needs besides numpy, onnx and
#: onnxruntime (read from this file's source by :mod:`harness.core.repro`): the dynamo exporter
#: translates with onnxscript.
REPLAY_REQUIRES = ("torch", "onnxscript")

torch.set_num_threads(1)
for _name in ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "torch.fx",
              "onnxscript", "onnx_ir", "torch.onnx._internal.exporter"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def _memoize_registry() -> None:
    """Build the dynamo exporter's registries once per process (see the module docstring)."""
    try:
        from torch.onnx._internal.exporter import _constants, _registration
    except ImportError:  # another torch layout: export without the memo
        return
    reg = _registration.ONNXRegistry
    if getattr(reg, "_harness_memo", False):
        return
    apis = _registration.onnxscript_apis
    apis.get_torchlib_ops = functools.lru_cache(maxsize=None)(apis.get_torchlib_ops)
    build = reg.from_torchlib.__func__

    @functools.lru_cache(maxsize=None)
    def _cached(cls, opset_version=_constants.TORCHLIB_OPSET):
        return build(cls, opset_version)

    def from_torchlib(cls, opset_version=_constants.TORCHLIB_OPSET):
        return _cached(cls, int(opset_version))

    reg.from_torchlib = classmethod(from_torchlib)
    reg._harness_memo = True
    # Built here, in the runner's zygote, so that every forked server inherits them.
    import onnx

    for opset in range(_constants.TORCHLIB_OPSET, onnx.defs.onnx_opset_version() + 1):
        reg.from_torchlib(opset_version=opset)


_memoize_registry()


def _memoize_cia_ops() -> None:
    """Collect torch's preservable CompositeImplicitAutograd ops once per set of registrations.

    Every ``run_decompositions`` (one per dynamo export) calls
    ``torch._export.utils._collect_all_valid_cia_ops``, which materialises every
    CIA op of every op namespace (~0.2 s a call on this machine) and which torch
    does not cache because a custom op registered later adds entries. The memo
    is keyed on what that function reads: the op namespaces and the C++
    dispatcher's CIA registrations; a new namespace or registration (a user's
    ``torch.library`` op) makes a new key, so the answer is the uncached one.
    """
    try:
        from torch._export import utils
        from torch.export import decomp_utils, exported_program
    except ImportError:
        return
    collect = getattr(utils, "_collect_all_valid_cia_ops", None)
    if collect is None or getattr(collect, "_harness_memo", False):
        return
    memo: dict = {}

    def registrations() -> tuple:
        cia = torch._C._dispatch_get_registrations_for_dispatch_key("CompositeImplicitAutograd")
        return tuple(torch.ops._dir), tuple(sorted(cia))

    def collect_all_valid_cia_ops():
        key = registrations()
        if key not in memo:
            memo.clear()
            memo[key] = frozenset(collect())
        return set(memo[key])

    collect_all_valid_cia_ops._harness_memo = True
    collect_all_valid_cia_ops.uncached = collect
    for module in (utils, decomp_utils, exported_program):
        if getattr(module, "_collect_all_valid_cia_ops", None) is collect:
            module._collect_all_valid_cia_ops = collect_all_valid_cia_ops


_memoize_cia_ops()

#: the attribute of a captured ``ExportedProgram`` (:func:`_captured`) that keeps its decomposed forms
_PREPARED = "_harness_prepared"


def _memoize_preparation() -> None:
    """Decompose a captured program once for every opset whose registry implements the same ops.

    ``torch.onnx.export(program)`` first decomposes ``program`` into the ops the
    opset's registry implements (``_prepare_exported_program_for_export``: the
    decomposition, type promotion, assertion removal; ~0.3 s, most of an export).
    That depends on the program and the set of implemented ops, not on the opset
    number, so for a program this adapter captured (:func:`_captured` marks it)
    the result is kept on the program, keyed by that set; any other program
    (a user's, a fresh capture) is prepared as torch does.
    """
    try:
        from torch.onnx._internal.exporter import _core, _decomp
    except ImportError:
        return
    prepare = getattr(_core, "_prepare_exported_program_for_export", None)
    if prepare is None or getattr(prepare, "_harness_memo", False):
        return

    def prepare_once(exported_program, *, registry):
        kept = getattr(exported_program, _PREPARED, None)
        if kept is None:
            return prepare(exported_program, registry=registry)
        key = frozenset(_decomp.get_onnx_implemented_overloads(registry))
        if key not in kept:
            kept[key] = prepare(exported_program, registry=registry)
        return kept[key]

    prepare_once._harness_memo = True
    _core._prepare_exported_program_for_export = prepare_once


_memoize_preparation()


#: the schemas this adapter defines for torchvision when its C++ library did not load them
TORCHVISION_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_TORCHVISION_LIBRARY: list = []


def import_torchvision():
    """``import torchvision`` on this CPU-only torch, defining its missing op schemas first.

    ``torchvision==0.28.0`` installs beside ``torch==2.13.0+cpu``, but its
    ``_C.so`` needs ``libtorch_cuda.so``, so ``torchvision::nms`` is never
    defined and ``torchvision._meta_registrations`` raises at import. Defining
    the two schemas (no kernels) first lets the pure-Python models import,
    build and export; the C++ ops themselves (nms, roi_align) stay unavailable.
    When the library did load (a CUDA torch), nothing is defined.
    """
    try:
        torch.ops.torchvision.nms  # noqa: B018 - defined by torchvision's _C.so when it loads
    except (AttributeError, RuntimeError):
        if not _TORCHVISION_LIBRARY:
            lib = torch.library.Library("torchvision", "DEF")  # kept alive: dropping it undefines the ops
            for schema in TORCHVISION_SCHEMAS:
                lib.define(schema)
            _TORCHVISION_LIBRARY.append(lib)
    import torchvision

    return torchvision


class _Call(torch.nn.Module):
    """A ``call:`` (:class:`harness.core.calls.Call`) as a Module; subclasses fix the arity."""

    def __init__(self, call: calls.Call):
        super().__init__()
        self.call = call

    def _apply_fn(self, *xs):
        return self.call(*xs)


class _Call1(_Call):
    def forward(self, x):
        return self._apply_fn(x)


class _Call2(_Call):
    def forward(self, x, y):
        return self._apply_fn(x, y)


class _Call3(_Call):
    def forward(self, x, y, z):
        return self._apply_fn(x, y, z)


class _Call4(_Call):
    def forward(self, x, y, z, w):
        return self._apply_fn(x, y, z, w)


_ARITY = {1: _Call1, 2: _Call2, 3: _Call3, 4: _Call4}


def flatten(out) -> list[np.ndarray]:
    """Framework outputs (tensor, tuple, list, nested) -> list of numpy arrays."""
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in flatten(o)]
    if isinstance(out, torch.Tensor):
        return [out.detach().cpu().numpy()]
    return [np.asarray(out)]


@registry.register_framework
class TorchFramework(registry.FrameworkAdapter):
    """Builds torch modules from case specs (eval mode, seeded weights) and runs them on CPU."""

    name = "torch"

    #: torch's own words for "no kernel for this dtype on this device" (see harness.core.dtypes)
    dtype_unsupported = (
        r"not implemented for '(Half|Float|Double|Int|Long|Bool|Char|Byte)'",
        r"\bdoes not support (Half|Float16|float16|bool|Bool|integer)",
    )

    def build(self, spec: dict, seed: int):
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        if spec.get("call"):
            module = _ARITY[len(spec["inputs"])](calls.Call.of(spec, self.call_aliases))
        else:
            module = registry.BUILDERS[("torch", spec["builder"])](spec)
        module.eval()
        return _at_dtype(module, spec.get("dtype"))

    def reference(self, model, inputs):
        with torch.no_grad():
            return flatten(model(*[_tensor(x) for x in inputs]))


def _tensor(x: np.ndarray) -> torch.Tensor:
    """A contiguous tensor of ``x`` with its shape (``np.ascontiguousarray`` makes a 0-d array 1-d)."""
    return torch.from_numpy(np.ascontiguousarray(x) if x.ndim else np.asarray(x))


def _at_dtype(module, dtype: str | None):
    """Cast a module's floating weights and buffers to the case's floating dtype.

    Weights are drawn in float32 (the same seeded values at every dtype) and
    rounded once; at an integer or bool dtype the weights stay as drawn (an op
    with weights takes floating inputs only).
    """
    if dtype in ("float16", "float64"):
        module.to(getattr(torch, dtype))
    return module


def _example(model, case, cache) -> tuple[tuple, int]:
    """Example inputs (the spec's shapes) and the number of outputs, once per op variant."""
    if "example" not in cache:
        xs = tuple(_tensor(x) for x in make_inputs(case.spec["inputs"], case.seed))
        with torch.no_grad():
            n_out = len(flatten(model(*xs)))
        cache["example"] = (xs, n_out)
    return cache["example"]


def _dynamic(case) -> list[list[int]]:
    return [list(inp.get("dynamic", [0])) if inp["shape"] else [] for inp in case.spec["inputs"]]


def _target(workdir: str, case) -> str:
    path = os.path.join(workdir, case.id + ".onnx")
    for p in (path, path + ".data"):
        if os.path.exists(p):
            os.remove(p)
    return path


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' warnings and progress prints (native logs still go to the runner log)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


@registry.register_exporter("torch")
class TorchScriptExporter:
    """``torch.onnx.export(dynamo=False)``: trace, then the TorchScript symbolic exporter."""

    name = "torchscript"

    def export(self, model, case, workdir, cache):
        xs, n_out = _example(model, case, cache)
        names = [f"x{i}" for i in range(len(xs))]
        axes = {n: {ax: f"{n}_d{ax}" for ax in dyn} for n, dyn in zip(names, _dynamic(case)) if dyn}
        path = _target(workdir, case)
        with _quiet():
            torch.onnx.export(model, xs, path, dynamo=False, opset_version=case.opset,
                              input_names=names, output_names=[f"y{i}" for i in range(n_out)],
                              dynamic_axes=axes or None)
        return path


@registry.register_exporter("torch")
class DynamoExporter:
    """``torch.onnx.export(dynamo=True)``: ``torch.export`` then the ONNX translator (opset as saved).

    The capture (``torch.export``) does not depend on the opset, so it runs once per op variant and
    dtype (:func:`_captured`) and every opset exports that ``ExportedProgram`` through the public
    ``torch.onnx.export(program, ..., dynamo=True, opset_version=N)``. When the capture the exporter
    tries first fails, the module itself goes to ``torch.onnx.export`` at every opset, so its other
    capture strategies and its error message are the exporter's own.
    """

    name = "dynamo"

    def export(self, model, case, workdir, cache):
        xs, n_out = _example(model, case, cache)
        shapes = tuple({ax: torch.export.Dim.DYNAMIC for ax in dyn} or None for dyn in _dynamic(case))
        shapes = shapes if any(s is not None for s in shapes) else None
        program = _captured(model, xs, shapes, cache)
        path = _target(workdir, case)
        names = {"input_names": [f"x{i}" for i in range(len(xs))],
                 "output_names": [f"y{i}" for i in range(n_out)]}
        with _quiet():
            if program is None:
                torch.onnx.export(model, xs, path, dynamo=True, opset_version=case.opset, dynamic_shapes=shapes,
                                  external_data=False, verbose=False, **names)
            else:
                torch.onnx.export(program, (), path, dynamo=True, opset_version=case.opset,
                                  external_data=False, verbose=False, **names)
        return path


def _captured(model, xs: tuple, shapes, cache: dict):
    """The ``ExportedProgram`` of ``model``, captured once per op variant and dtype, or None.

    The capture is the one ``torch.onnx.export(dynamo=True)`` tries first
    (``torch.export.export(..., strict=False)`` under the exporter's own settings,
    its ``TorchExportNonStrictStrategy``); None when it fails or this torch has no
    such strategy, and then the caller exports the module as a user would.
    """
    key = ("dynamo-capture", repr(shapes))
    if key not in cache:
        try:
            from torch.onnx._internal.exporter import _capture_strategies

            strategy = _capture_strategies.TorchExportNonStrictStrategy(
                verbose=False, dump=False, artifacts_dir=".", timestamp="")
        except (ImportError, AttributeError, TypeError):
            cache[key] = None
        else:
            with _quiet():
                result = strategy(model, xs, None, dynamic_shapes=shapes)
            program = result.exported_program if result.success else None
            if program is not None:
                setattr(program, _PREPARED, {})  # see _memoize_preparation
            cache[key] = program
    return cache[key]
