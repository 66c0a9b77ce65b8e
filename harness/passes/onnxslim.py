"""OnnxSlim (``onnxslim.slim(model)``): constant folding, dead-node elimination and pattern fusions.

Imports only onnxslim and onnx (and the registry), so a repro bundle can vendor it.
"""

from __future__ import annotations

import onnxslim

from . import register_pass

#: what a repro bundle of a case on this pass needs besides numpy, onnx and onnxruntime
REPLAY_REQUIRES = ("onnxslim",)


@register_pass
class OnnxSlim:
    """``onnxslim.slim(model)`` with its defaults."""

    name = "onnxslim"

    def apply(self, model, inputs=None):
        return onnxslim.slim(model)
