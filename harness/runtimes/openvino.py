"""OpenVINO on CPU: reads the ONNX model from bytes with its ONNX frontend and compiles it.

Imports only OpenVINO, onnx and numpy (and the registry), so a repro bundle can
vendor it. One inference thread and f32 precision, like ORT's single intra-op
thread: the verdict must not depend on the machine's core count or on a bf16
default of a CPU with AMX.
"""

from __future__ import annotations

import numpy as np
import openvino as ov

from . import Unsupported, register_runtime

#: what a repro bundle of a case on this runtime needs besides numpy, onnx and onnxruntime
REPLAY_REQUIRES = ("openvino",)

#: what OpenVINO's ONNX frontend and CPU plugin say when they lack an operator or opset
_UNSUPPORTED_MARKERS = ("No conversion rule found", "OpConversionFailure", "Model wasn't fully converted",
                        "is not supported", "Unsupported operation", "unsupported opset",
                        "Cannot create", "doesn't support")

_CORE: ov.Core | None = None


def _core() -> ov.Core:
    global _CORE
    if _CORE is None:  # one Core per process: creating it loads the plugins (~10 ms)
        _CORE = ov.Core()
    return _CORE


class OpenVinoSession:
    """A model compiled for OpenVINO's CPU plugin."""

    provider = "openvino:CPU"
    fallback = None

    def __init__(self, model):
        core = _core()
        try:
            read = core.read_model(model.SerializeToString(), b"")
        except RuntimeError as exc:
            if any(m in str(exc) for m in _UNSUPPORTED_MARKERS):
                raise Unsupported(_first_lines(exc)) from None
            raise
        self.compiled = core.compile_model(read, "CPU", {"INFERENCE_NUM_THREADS": 1,
                                                         "INFERENCE_PRECISION_HINT": "f32"})
        self.request = self.compiled.create_infer_request()
        self.names = [i.get_any_name() for i in self.compiled.inputs]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Outputs in the model's order, copied out of OpenVINO's buffers."""
        res = self.request.infer(dict(zip(self.names, inputs)))
        return [np.array(res[o]) for o in self.compiled.outputs]


def _first_lines(exc: BaseException, n: int = 12) -> str:
    """OpenVINO's messages start with C++ source locations; keep the lines that say what failed."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Exception from src/")]
    return " | ".join(lines[:n])


@register_runtime
class OpenVino:
    """OpenVINO's CPU plugin (``openvino.Core().compile_model(model, "CPU")``)."""

    name = "openvino"
    #: the devices this runtime runs cases on; a case on another device is skipped
    devices = ("cpu",)

    def prepare(self, model, path, setting):
        return OpenVinoSession(model)

    def unsupported(self, exc):
        text = str(exc)
        return any(m in text for m in _UNSUPPORTED_MARKERS)
