"""onnxoptimizer with its default passes (``onnxoptimizer.optimize(model)``).

Imports only onnxoptimizer and onnx (and the registry), so a repro bundle can vendor it.
"""

from __future__ import annotations

import onnxoptimizer

from . import register_pass

#: what a repro bundle of a case on this pass needs besides numpy, onnx and onnxruntime
REPLAY_REQUIRES = ("onnxoptimizer",)


@register_pass
class OnnxOptimizer:
    """``onnxoptimizer.optimize(model)``: its default fuse-and-eliminate passes."""

    name = "onnxoptimizer"

    def apply(self, model, inputs=None):
        return onnxoptimizer.optimize(model)
