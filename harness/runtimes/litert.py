"""LiteRT (``ai-edge-litert``) on models converted by onnx2tf (``onnx2tf==2.6.9``, which needs Python >= 3.12).

Runs in the ``litert`` environment (Python 3.12, onnx2tf's own pins) behind a
runtime server (see :mod:`harness.runtimes._remote`). The prepare is
``onnx2tf.convert(...)`` with its ``flatbuffer_direct`` backend (no
TensorFlow needed) on a private copy of the file, without its onnxsim step
(it would start the ``onnxsim`` program; the model is converted as
exported), the ONNX names copied to the ``.tflite``; the run is
``ai_edge_litert.interpreter.Interpreter`` (one thread) on
``<model>_float32.tflite``.

What the adapter undoes, never the tolerance: onnx2tf moves inputs and the
outputs of rank 3-5 that it computes channels-last to NWC/NHWC/NDHWC. Inputs
are asked to stay in their ONNX layout (``keep_ncw_or_nchw_or_ncdhw_input_names``);
one onnx2tf moved anyway (it does not always honour the option) is fed
channels-last where the ``.tflite`` declares that form of its shape and not
its own; an output is moved back where its shape is the
channels-last form of the one ONNX shape inference gives for the case's
inputs, or, where that cannot tell (inference fails, or both forms have the
same shape), where onnx2tf's own correspondence report says so. Which ones it did is read
from its own ``*_tensor_correspondence_report.json`` (an output renamed from a
``*_nhwc``-style tensor), and those are transposed back.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile

import numpy as np

from . import Unsupported, register_runtime
from ._remote import RemoteRuntime

#: what onnx2tf says about an operator or attribute it cannot convert
UNSUPPORTED_MARKERS = ("not supported", "Unsupported", "unsupported", "NotImplementedError", "not implemented",
                       "is not yet implemented")

_LAST = ("_nwc", "_nhwc", "_ndhwc")


class LiteRtSession:
    """A ``.tflite`` written by onnx2tf, in LiteRT's interpreter."""

    provider = "litert:cpu-fp32"

    def __init__(self, path: str, shapes, dtypes, workdir: str):
        import onnx
        import onnx2tf
        from ai_edge_litert.interpreter import Interpreter

        model = onnx.load(path, load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        self.in_names = [i.name for i in model.graph.input if i.name not in inits]
        self.out_names = [o.name for o in model.graph.output]
        out = tempfile.mkdtemp(prefix="litert-", dir=workdir)
        ranked = [n for n, s in zip(self.in_names, shapes) if len(s) >= 3]
        own = os.path.join(out, "m.onnx")  # onnx2tf writes temporary files beside its input
        shutil.copyfile(path, own)
        try:
            onnx2tf.convert(input_onnx_file_path=own, output_folder_path=out, non_verbose=True, not_use_onnxsim=True,
                            verbosity="error", copy_onnx_input_output_names_to_tflite=True,
                            keep_ncw_or_nchw_or_ncdhw_input_names=ranked or None)
        except SystemExit as exc:  # onnx2tf logs the cause and exits on what it cannot convert
            raise Unsupported(f"litert: onnx2tf could not convert the model (exit {exc.code})") from None
        except Exception as exc:  # noqa: BLE001
            text = f"litert: onnx2tf: {type(exc).__name__}: {exc}"
            if any(m in text for m in UNSUPPORTED_MARKERS):
                raise Unsupported(text[:2000]) from None
            raise RuntimeError(text[:2000]) from None
        found = glob.glob(os.path.join(out, "*_float32.tflite"))
        if not found:
            raise RuntimeError("litert: onnx2tf wrote no *_float32.tflite")
        self.channels_last = _channels_last_outputs(out, self.out_names)
        self.expected = _output_shapes(model, shapes)
        self.it = Interpreter(model_path=found[0], num_threads=1)
        self.shapes: list | None = None

    def _feeds(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The inputs in the layout the ``.tflite`` declares: channels-last where onnx2tf moved an input
        (its declared shape is the NWC/NHWC/NDHWC form of the case's and not the case's own)."""
        details = {d["name"]: d for d in self.it.get_input_details()}
        out = []
        for name, x in zip(self.in_names, inputs):
            want = [int(d) for d in details[name]["shape_signature"]]
            moved = list(np.moveaxis(x, 1, -1).shape) if 3 <= x.ndim <= 5 else None
            if moved and not _fits(want, list(x.shape)) and _fits(want, moved):
                x = np.moveaxis(x, 1, -1)
            out.append(np.asarray(x, order="C"))
        return out

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        it = self.it
        feeds = self._feeds(inputs)
        details = {d["name"]: d for d in it.get_input_details()}
        shapes = [list(x.shape) for x in feeds]
        if shapes != self.shapes:
            for name, x in zip(self.in_names, feeds):
                if list(details[name]["shape"]) != list(x.shape):
                    it.resize_tensor_input(details[name]["index"], list(x.shape))
            it.allocate_tensors()
            self.shapes = shapes
            details = {d["name"]: d for d in it.get_input_details()}
        for name, x in zip(self.in_names, feeds):
            it.set_tensor(details[name]["index"], x)
        it.invoke()
        outs = {d["name"]: d for d in it.get_output_details()}
        found = []
        for name in self.out_names:
            y = np.array(it.get_tensor(outs[name]["index"]))
            if 3 <= y.ndim <= 5 and _moved(list(y.shape), self.expected.get(name), name in self.channels_last):
                y = np.asarray(np.moveaxis(y, -1, 1), order="C")
            found.append(y)
        return found


def _moved(shape: list[int], want: list[int] | None, reported: bool) -> bool:
    """Whether an output of ``shape`` is the channels-last form of ``want`` (None: unknown), else what
    onnx2tf's report says (``reported``) where the shapes cannot tell."""
    last = [shape[0], shape[-1], *shape[1:-1]]
    if want is None or (shape == want and last == want):
        return reported
    return shape != want and last == want


def _output_shapes(model, shapes) -> dict:
    """The graph outputs' shapes that ONNX shape inference gives for the case's input shapes (where it can)."""
    import onnx

    own = onnx.ModelProto()
    own.CopyFrom(model)
    inits = {i.name for i in own.graph.initializer}
    for value, shape in zip((i for i in own.graph.input if i.name not in inits), shapes):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == len(shape):
            for d, n in zip(dims, shape):
                d.Clear()
                d.dim_value = int(n)
    try:
        inferred = onnx.shape_inference.infer_shapes(own, strict_mode=False)
    except Exception:  # noqa: BLE001 - without it the correspondence report decides
        return {}
    found = {}
    for o in inferred.graph.output:
        dims = o.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            found[o.name] = [d.dim_value for d in dims]
    return found


def _fits(declared: list[int], shape: list[int]) -> bool:
    """Whether ``shape`` fits a declared shape signature (-1: any size)."""
    return len(declared) == len(shape) and all(d in (-1, s) for d, s in zip(declared, shape))


def _channels_last_outputs(folder: str, outputs: list[str]) -> set[str]:
    """The graph outputs onnx2tf left channels-last, from the renames in its correspondence report."""
    reports = glob.glob(os.path.join(folder, "*_tensor_correspondence_report.json"))
    if not reports:
        return set()
    with open(reports[0], encoding="utf-8") as f:
        events = json.load(f).get("lineage_events", [])
    found = set()
    for e in events:
        if e.get("kind") == "rename_tensor" and e.get("new_name") in outputs and \
                str(e.get("old_name", "")).endswith(_LAST):
            found.add(e["new_name"])
    return found


#: the packages whose versions the environment probe records
DISTRIBUTIONS = ("onnx2tf", "ai-edge-litert",)


def load() -> None:
    """Import the native library (in the runtime server, before the first prepare is timed)."""
    import onnx2tf  # noqa: F401
    from ai_edge_litert import interpreter  # noqa: F401


def native(path: str, shapes, dtypes, workdir: str) -> LiteRtSession:
    """Convert with onnx2tf and load into LiteRT (in the runtime server)."""
    return LiteRtSession(path, shapes, dtypes, workdir)


@register_runtime
class LiteRt(RemoteRuntime):
    """LiteRT's interpreter (XNNPACK, float32) on onnx2tf's conversion, in environment ``litert``."""

    name = "litert"
    environment = "litert"
    provider = "litert:cpu-fp32"
