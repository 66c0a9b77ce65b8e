"""ONNX Runtime: the default runtime (CPU, or CUDA/TensorRT providers on a ``cuda:N`` device)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from harness.core import devices
from . import register_runtime

_UNSUPPORTED_MARKERS = ("NOT_IMPLEMENTED", "Could not find an implementation",
                        "is not a registered function/op", "not supported")


class OrtSession:
    """An ``InferenceSession`` with one intra-op thread and quiet logs."""

    def __init__(self, path: str, setting: devices.DeviceSetting):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(path, sess_options=opts, providers=list(setting.providers),
                                         provider_options=[dict(o) for o in setting.provider_options])
        self.names = [i.name for i in self.sess.get_inputs()]
        got = self.sess.get_providers()
        self.provider = got[0] if got else None
        self.fallback = None
        if devices.is_fallback(setting, got):
            # A GPU conformance claim that ran on CPU has not been measured.
            self.fallback = (devices.FALLBACK_MESSAGE + f" (asked for {', '.join(setting.providers)}; "
                             f"session has {', '.join(got)})")

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.sess.run(None, dict(zip(self.names, inputs)))


@register_runtime
class OnnxRuntime:
    """``onnxruntime.InferenceSession`` with the providers of the case's device."""

    name = "ort"
    #: wherever its execution providers run (a CUDA device falls back to CPU, and says so)
    devices = None

    def prepare(self, model, path, setting):
        return OrtSession(path, setting)

    def unsupported(self, exc):
        text = str(exc)
        return any(m in text for m in _UNSUPPORTED_MARKERS)
