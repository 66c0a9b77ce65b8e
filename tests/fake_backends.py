"""A fake runtime and fake post-export passes, added through the extension points alone.

Each is what a new runtime or pass module looks like: a class registered with
``register_runtime`` / ``register_pass``. They misbehave on purpose so the
harness's own tests can check how the pipeline classifies them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

from harness.passes import register_pass
from harness.runtimes import Unsupported, register_runtime


class _RefSession:
    """The reference evaluator's outputs, + 1 when the model has a node of the op it is wrong on."""

    provider = "fake-reference"
    fallback = None

    def __init__(self, model: onnx.ModelProto, wrong_on: str | None):
        self.evaluator = ReferenceEvaluator(model)
        self.names = [i.name for i in model.graph.input]
        self.wrong = wrong_on is not None and any(n.op_type == wrong_on for n in model.graph.node)

    def run(self, inputs):
        outs = self.evaluator.run(None, dict(zip(self.names, inputs)))
        return [np.asarray(o) + 1 if self.wrong else np.asarray(o) for o in outs]


@register_runtime
class WrongOnRelu:
    """onnx's reference evaluator, except that every model with a Relu node gets outputs + 1."""

    name = "fake-wrong-relu"
    devices = ("cpu",)

    def prepare(self, model, path, setting):
        if any(o.domain not in ("", "ai.onnx") for o in model.opset_import):
            raise Unsupported("fake runtime knows only the default domain")
        return _RefSession(model, "Relu")

    def unsupported(self, exc):
        return False


@register_pass
class DropLastNode:
    """Drops the graph's last node and wires its input to the output: a pass that changes the result."""

    name = "fake-drop-node"

    def apply(self, model, inputs=None):
        out = onnx.ModelProto()
        out.CopyFrom(model)
        last = out.graph.node[-1]
        del out.graph.node[-1]
        if out.graph.node:
            out.graph.node[-1].output[0] = last.output[0]
        else:
            out.graph.node.append(helper.make_node("Identity", [last.input[0]], [last.output[0]]))
        return out


@register_pass
class RaisingPass:
    """Always raises."""

    name = "fake-raises"

    def apply(self, model, inputs=None):
        raise RuntimeError("fake pass refuses")


@register_pass
class BreakingPass:
    """Writes a model the checker rejects (a node reading an input nobody makes)."""

    name = "fake-breaks"

    def apply(self, model, inputs=None):
        out = onnx.ModelProto()
        out.CopyFrom(model)
        out.graph.node[0].input[0] = "nobody_makes_this"
        return out
