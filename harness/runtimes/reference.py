"""The ONNX reference evaluator (``onnx.reference.ReferenceEvaluator``): pure Python, the spec's semantics.

Slow and CPU only, but independent of every optimised runtime: it is the
second opinion the blame step asks for (see :mod:`harness.blame`). Imports only
onnx and numpy (and the registry), so a repro bundle can vendor it.
"""

from __future__ import annotations

import numpy as np
from onnx.reference import ReferenceEvaluator

from . import Unsupported, register_runtime

#: what the evaluator says when it has no implementation for an operator or opset
_UNSUPPORTED_MARKERS = ("Unable to find a node implementation", "No implementation",
                        "is not implemented", "not implemented for opset", "Unable to find class",
                        "Unable to load", "Unable to find")


class ReferenceSession:
    """A model loaded into the reference evaluator."""

    provider = "onnx.reference"
    fallback = None

    def __init__(self, model):
        try:
            self.evaluator = ReferenceEvaluator(model)
        except (NotImplementedError, KeyError) as exc:
            raise Unsupported(f"onnx.reference: {type(exc).__name__}: {exc}") from None
        except (TypeError, RuntimeError) as exc:
            if any(m in str(exc) for m in _UNSUPPORTED_MARKERS):
                raise Unsupported(f"onnx.reference: {exc}") from None
            raise
        self.names = list(self.evaluator.input_names)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Outputs in the model's order, as numpy arrays (the evaluator may return numpy scalars)."""
        try:
            outs = self.evaluator.run(None, dict(zip(self.names, inputs)))
        except NotImplementedError as exc:
            raise Unsupported(f"onnx.reference: {exc}") from None
        return [np.asarray(o) for o in outs]


@register_runtime
class Reference:
    """``onnx.reference.ReferenceEvaluator`` on CPU."""

    name = "reference"
    devices = ("cpu",)

    def prepare(self, model, path, setting):
        return ReferenceSession(model)

    def unsupported(self, exc):
        text = str(exc)
        return isinstance(exc, NotImplementedError) or any(m in text for m in _UNSUPPORTED_MARKERS)
