"""The ONNX reference evaluator (``onnx.reference.ReferenceEvaluator``): pure Python, the spec's semantics.

Slow and CPU only, but independent of every optimised runtime: it is the
second opinion the blame step asks for (see :mod:`harness.core.blame`). Imports only
onnx and numpy (and the registry), so a repro bundle can vendor it.
"""

from __future__ import annotations

import numpy as np
from onnx import defs, shape_inference
from onnx.reference import ReferenceEvaluator

from . import Unsupported, register_runtime

#: what the evaluator says when it has no implementation for an operator or opset
_UNSUPPORTED_MARKERS = ("Unable to find a node implementation", "No implementation",
                        "is not implemented", "not implemented for opset", "Unable to find class",
                        "Unable to load", "Unable to find")


#: operators that onnx.reference implements once, with the semantics and attribute defaults of this
#: version; an older version means something else (RoiAlign before 16 samples at output_half_pixel,
#: Resize-10 is asymmetric, Softmax-family before 13 flattens to 2-D from ``axis`` = 1), so a model
#: with such a node is one the evaluator cannot run faithfully
NEWEST_SEMANTICS_ONLY = {"RoiAlign": 16, "Resize": 11, "Softmax": 13, "LogSoftmax": 13, "Hardmax": 13}


#: the Softmax family means the same in every version along the last axis
_LAST_AXIS_SAME = ("Softmax", "LogSoftmax", "Hardmax")


def _axis(node) -> int | None:
    return next((a.i for a in node.attribute if a.name == "axis"), None)


def _ranks(model) -> dict[str, int]:
    """The rank of every value shape inference can tell."""
    try:
        graph = shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - without ranks the check stays conservative
        return {}
    return {v.name: len(v.type.tensor_type.shape.dim) for v in (*graph.input, *graph.value_info, *graph.output)
            if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")}


def older_semantics(model) -> str | None:
    """Why the evaluator would compute newer semantics than ``model``'s nodes declare, or None."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        return None
    ranks: dict[str, int] | None = None
    for node in model.graph.node:
        newest = NEWEST_SEMANTICS_ONLY.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if newest is None:
            continue
        if node.op_type in _LAST_AXIS_SAME and _axis(node) is not None:
            ranks = _ranks(model) if ranks is None else ranks
            rank = ranks.get(node.input[0])
            if _axis(node) == -1 or (rank is not None and _axis(node) == rank - 1):
                continue
        since = defs.get_schema(node.op_type, opset).since_version
        if since < newest:
            return (f"it implements {node.op_type}-{newest}'s semantics, not those of {node.op_type}-{since} "
                    f"that the model uses (opset {opset})")
    return None


class ReferenceSession:
    """A model loaded into the reference evaluator."""

    provider = "onnx.reference"
    fallback = None

    def __init__(self, model):
        why = older_semantics(model)
        if why:
            raise Unsupported(why)
        try:
            self.evaluator = ReferenceEvaluator(model)
        except (NotImplementedError, KeyError) as exc:
            raise Unsupported(f"{type(exc).__name__}: {exc}") from None
        except (TypeError, RuntimeError) as exc:
            if any(m in str(exc) for m in _UNSUPPORTED_MARKERS):
                raise Unsupported(str(exc)) from None
            raise
        self.names = list(self.evaluator.input_names)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Outputs in the model's order, as numpy arrays (the evaluator may return numpy scalars)."""
        try:
            outs = self.evaluator.run(None, dict(zip(self.names, inputs)))
        except NotImplementedError as exc:
            raise Unsupported(str(exc)) from None
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
