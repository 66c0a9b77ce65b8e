"""MNN (``mnn==3.6.1``): its converter and its Module API, called from Python only.

Runs in the ``runtimes`` environment behind a runtime server (see
:mod:`harness.runtimes._remote`). The prepare converts with the converter's
Python binding ``_tools.mnnconvert([...,"-f","ONNX",...])`` (never the
``mnnconvert`` console script: its wrapper tries to pip-install a telemetry
package and to post a log to a remote endpoint) and loads the ``.mnn`` file
with ``MNN.nn.load_module_from_file`` at ``PrecisionMode.High`` (float32; the
default may pick lower precision) with one thread. Inputs go in as NCHW
constants and outputs are converted back to NCHW (MNN keeps NC4HW4 inside), so
layout never reaches the comparison.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from . import Unsupported, register_runtime
from ._remote import RemoteRuntime

#: what the converter and the runtime say about an operator they lack
UNSUPPORTED_MARKERS = ("not support", "Not Support", "unsupported", "Unsupported", "Don't support",
                       "can't convert", "not implemented")


class MnnSession:
    """A model converted to ``.mnn`` and loaded as an ``MNN.nn`` module at high precision."""

    provider = "mnn:cpu-high"

    def __init__(self, path: str, shapes, dtypes, workdir: str):
        import _tools
        import MNN.expr as F
        import MNN.nn as nn
        import onnx

        self.F = F
        model = onnx.load(path, load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        self.inputs = [i.name for i in model.graph.input if i.name not in inits]
        self.outputs = [o.name for o in model.graph.output]
        out = os.path.join(tempfile.mkdtemp(prefix="mnn-", dir=workdir), "m.mnn")
        ok = _tools.mnnconvert(["mnnconvert", "-f", "ONNX", "--modelFile", path, "--MNNModel", out,
                                "--bizCode", "harness"])
        if not ok or not os.path.exists(out):
            raise RuntimeError("mnn: the converter did not write a model (see its log)")
        self.module = nn.load_module_from_file(out, self.inputs, self.outputs, precision_mode=F.PrecisionMode.High,
                                               thread_num=1)
        if self.module is None:
            raise Unsupported("mnn: load_module_from_file returned nothing for the converted model")

    def _const(self, x: np.ndarray):
        """An NCHW constant of MNN's type for ``x``; int64 goes in as int32 (MNN has no int64: its converter
        turns the model's int64 tensors into int32), float64 as float32 likewise."""
        F = self.F
        kind = {"f": (np.float32, F.float), "i": (np.int32, F.int), "u": (np.uint8, F.uint8),
                "b": (np.int32, F.int)}.get(x.dtype.kind)
        if kind is None:
            raise Unsupported(f"mnn: no input type for {x.dtype}")
        data = np.asarray(x, dtype=kind[0], order="C")
        return F.const(data, list(x.shape), F.NCHW, kind[1])

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        F = self.F
        feeds = [self._const(x) for x in inputs]
        outs = self.module.forward(feeds)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        found = []
        for o in outs:
            if o.data_format == F.NC4HW4:
                o = F.convert(o, F.NCHW)
            found.append(np.array(o.read()).reshape(o.shape))
        return found


#: the packages whose versions the environment probe records
DISTRIBUTIONS = ("mnn",)


def load() -> None:
    """Import the native library (in the runtime server, before the first prepare is timed)."""
    import _tools  # noqa: F401
    import MNN.nn  # noqa: F401


def native(path: str, shapes, dtypes, workdir: str) -> MnnSession:
    """Convert and load the model at ``path`` (in the runtime server)."""
    return MnnSession(path, shapes, dtypes, workdir)


@register_runtime
class Mnn(RemoteRuntime):
    """MNN's CPU backend at high precision, in environment ``runtimes``."""

    name = "mnn"
    environment = "runtimes"
    provider = "mnn:cpu-high"
