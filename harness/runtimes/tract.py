"""tract (``tract==0.23.9``, Python bindings of Sonos' Rust inference engine).

Runs in the ``runtimes`` environment behind a runtime server (see
:mod:`harness.runtimes._remote`): ``tract.onnx().load(path).into_model()`` (typed
and optimized; with the case's input shapes fixed by ``set_input_fact`` only
when the declared ones do not type) ``.into_runnable()`` (the prepare, timed apart) and
``run(inputs)``. ``RUST_BACKTRACE=0`` keeps its errors one paragraph long. It is
the strictest about the spec: what it refuses at load is ``runtime-unsupported``.
"""

from __future__ import annotations

import numpy as np

from . import Unsupported, register_runtime
from ._remote import RemoteRuntime

#: what tract says about an operator, attribute or opset it does not implement
UNSUPPORTED_MARKERS = ("Unimplemented", "not implemented", "unsupported", "Unsupported", "NotImplemented",
                       "No such op", "Operator not supported")

_TYPES = {"float32": "f32", "float64": "f64", "float16": "f16", "int32": "i32", "int64": "i64", "int8": "i8",
          "uint8": "u8", "bool": "bool", "int16": "i16"}


class TractSession:
    """An optimized, runnable tract model for fixed input shapes."""

    provider = "tract:cpu"

    def __init__(self, path: str, shapes, dtypes, workdir: str):
        import tract

        try:
            # as declared first (tract handles a symbolic batch); the case's shapes only when that fails:
            # fixing them up front clashes with symbolic dims the exporter wrote into value_info
            try:
                self.model = tract.onnx().load(path).into_model().into_runnable()
            except Exception:  # noqa: BLE001 - retried with the shapes, whose error is the one reported
                model = tract.onnx().load(path)
                for i, (shape, dt) in enumerate(zip(shapes, dtypes)):
                    dims = ",".join(str(d) for d in shape)
                    model.set_input_fact(i, f"{dims},{_TYPES[np.dtype(dt).name]}" if shape else
                                         _TYPES[np.dtype(dt).name])
                self.model = model.into_model().into_runnable()
        except Exception as exc:  # noqa: BLE001 - tract raises a plain error with its cause chain
            text = " ".join(f"tract: {exc}".split("Stack backtrace:")[0].split())[:2000]
            if any(m in text for m in UNSUPPORTED_MARKERS):
                raise Unsupported(text) from None
            raise RuntimeError(text) from None

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outs = self.model.run([np.asarray(x, order="C") for x in inputs])
        return [np.asarray(o.to_numpy()) for o in outs]


#: the packages whose versions the environment probe records
DISTRIBUTIONS = ("tract",)


def load() -> None:
    """Import the native library (in the runtime server, before the first prepare is timed)."""
    import tract  # noqa: F401


def native(path: str, shapes, dtypes, workdir: str) -> TractSession:
    """Load, type and optimize the model at ``path`` (in the runtime server)."""
    return TractSession(path, shapes, dtypes, workdir)


@register_runtime
class Tract(RemoteRuntime):
    """tract on CPU, in environment ``runtimes``."""

    name = "tract"
    environment = "runtimes"
    provider = "tract:cpu"
