"""TensorRT through ONNX Runtime's ``TensorrtExecutionProvider`` (onnxruntime-gpu built with TensorRT).

The seeds' ``PyTorch -> ONNX -> TensorRT`` line. It needs a CUDA GPU and an
onnxruntime that offers the TensorRT provider: where either is missing (as on
the CPU-only machines the default run uses) every case of this runtime is
``skipped`` with that reason, and the nightly's ``gpu`` job runs them
(``--runtimes ort,tensorrt --devices cuda:0``). The session asks for TensorRT
alone, at float32 (``trt_fp16_enable`` off), on the case's GPU (``cuda:N``;
GPU 0 for a CPU case, whose reference runs on the CPU). A node TensorRT cannot
take falls back to ORT's CUDA/CPU kernels inside the session, which is what
deploying through ORT does; a session in which TensorRT took nothing at all is
``runtime-unsupported`` with that message.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from harness.core import devices
from . import register_runtime

PROVIDER = "TensorrtExecutionProvider"

#: what ORT's TensorRT provider says when its parser or builder refuses a node or opset
_UNSUPPORTED_MARKERS = ("TensorRT input", "ONNX parser", "Unsupported ONNX", "not supported", "NOT_IMPLEMENTED",
                        "Could not find an implementation")


class TensorRtSession:
    """An ``InferenceSession`` with TensorRT first, at float32, on one GPU."""

    fallback = None

    def __init__(self, path: str, device: str):
        index = devices.device_index(device) if device.startswith("cuda:") else 0
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(
            path, sess_options=opts, providers=[PROVIDER, "CUDAExecutionProvider"],
            provider_options=[{"device_id": index, "trt_fp16_enable": False, "trt_int8_enable": False},
                              {"device_id": index}])
        got = self.sess.get_providers()
        self.provider = got[0] if got else None
        if self.provider != PROVIDER:
            self.fallback = f"TensorRT took no part of the model (session has {', '.join(got)})"
        self.names = [i.name for i in self.sess.get_inputs()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.sess.run(None, dict(zip(self.names, inputs)))


@register_runtime
class TensorRt:
    """ORT's TensorRT provider on a CUDA GPU."""

    name = "tensorrt"
    #: CUDA devices; on a machine without them its cases are skipped by unavailable()
    devices = None

    def __init__(self):
        self._why: list = []

    def unavailable(self) -> str | None:
        """Why TensorRT cannot run here (no provider, no GPU), or None (asked once per process)."""
        if not self._why:
            self._why.append(self._find())
        return self._why[0]

    def _find(self) -> str | None:
        offered = ort.get_available_providers()
        if PROVIDER not in offered:
            return (f"TensorRT needs a CUDA GPU and onnxruntime-gpu with its TensorRT provider; this onnxruntime "
                    f"{ort.__version__} offers {', '.join(offered)} (the nightly's gpu job runs these cases)")
        if devices.gpu_count() == 0:
            return "TensorRT needs a CUDA GPU and nvidia-smi lists none here (the nightly's gpu job runs these cases)"
        return None

    def prepare(self, model, path, setting):
        return TensorRtSession(path, setting.device)

    def unsupported(self, exc):
        text = str(exc)
        return any(m in text for m in _UNSUPPORTED_MARKERS)
