"""Apache TVM (``apache-tvm==0.27.0.post1``, LLVM linked in): Relax's ONNX frontend, compiled for ``llvm``.

Runs in the ``runtimes`` environment behind a runtime server (see
:mod:`harness.runtimes._remote`); :func:`native` is what that server calls.
``from_onnx`` → ``tvm.compile(mod, target="llvm")`` (the prepare, timed apart)
→ ``relax.VirtualMachine(ex, tvm.cpu())["main"](...)``. Its frontend has no
LSTM, GRU, RNN, Loop, If or Scan: those are ``runtime-unsupported``.
"""

from __future__ import annotations

import numpy as np

from . import Unsupported, register_runtime
from ._remote import RemoteRuntime

#: what the Relax ONNX frontend says about an operator or opset it lacks
UNSUPPORTED_MARKERS = ("not supported", "not implemented", "Unsupported", "NotImplementedError",
                       "has no attribute '_impl_v", "is not a supported", "No converter")


class TvmSession:
    """A model compiled by TVM for the host CPU, run in Relax's virtual machine."""

    provider = "tvm:llvm"

    def __init__(self, path: str, shapes, dtypes, workdir: str):
        import onnx
        import tvm
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx

        model = onnx.load(path)
        names = _input_names(model)
        try:
            mod = from_onnx(model, shape_dict=dict(zip(names, shapes)),
                            dtype_dict=dict(zip(names, (np.dtype(d).name for d in dtypes))),
                            keep_params_in_input=False)
        except (NotImplementedError, KeyError) as exc:
            raise Unsupported(f"tvm: {type(exc).__name__}: {exc}") from None
        self.ex = tvm.compile(mod, target="llvm")
        self.vm = relax.VirtualMachine(self.ex, tvm.cpu())
        self.tvm = tvm

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = self.vm["main"](*(self.tvm.runtime.tensor(np.asarray(x, order="C")) for x in inputs))
        return [np.asarray(o.numpy()) for o in _flatten(out)]


def _input_names(model) -> list[str]:
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def _flatten(out) -> list:
    if hasattr(out, "numpy"):
        return [out]
    found = []
    for item in out:
        found += _flatten(item)
    return found


#: the packages whose versions the environment probe records
DISTRIBUTIONS = ("apache-tvm",)


def load() -> None:
    """Import the native library (in the runtime server, before the first prepare is timed)."""
    import tvm  # noqa: F401
    from tvm.relax.frontend import onnx  # noqa: F401


def native(path: str, shapes, dtypes, workdir: str) -> TvmSession:
    """Compile the model at ``path`` for the given input shapes and dtypes (in the runtime server)."""
    return TvmSession(path, shapes, dtypes, workdir)


@register_runtime
class Tvm(RemoteRuntime):
    """TVM's Relax VM on the host CPU, in environment ``runtimes``."""

    name = "tvm"
    environment = "runtimes"
    provider = "tvm:llvm"
