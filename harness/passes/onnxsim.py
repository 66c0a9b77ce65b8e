"""onnx-simplifier (``onnxsim.simplify``): constant folding, shape inference and onnxoptimizer's fusions.

Its own check is on: onnxsim runs the model before and after on the case's
first input set (with ONNX Runtime) and reports whether they agree; a failed
check is an error of the pass. Imports only onnxsim, onnx and numpy (and the
registry), so a repro bundle can vendor it.
"""

from __future__ import annotations

import onnxsim

from . import PassFailed, register_pass

#: what a repro bundle of a case on this pass needs besides numpy, onnx and onnxruntime
REPLAY_REQUIRES = ("onnxsim",)


@register_pass
class OnnxSim:
    """``onnxsim.simplify(model, check_n=1, input_data=inputs)``."""

    name = "onnxsim"

    def apply(self, model, inputs=None):
        kwargs = {"input_data": dict(inputs)} if inputs else {}
        out, ok = onnxsim.simplify(model, check_n=1, **kwargs)
        if not ok:
            raise PassFailed("onnxsim's own check failed: the simplified model's outputs differ "
                             "from the original's on the case's inputs")
        return out
