"""ONNX files as a user model's "framework": an exported model checked on the runtimes only.

A user-model file with ``saved: model.onnx`` (see :mod:`harness.spec.usermodel`)
runs here: the "export" (``file``) writes the model unchanged, and the reference
outputs come from ``onnx.reference.ReferenceEvaluator``, the specification's
semantics in pure Python, so ONNX Runtime (and any ``--runtimes``, ``--passes``)
are compared with what the standard says the graph computes. The case's opset is
the file's own (its default-domain import).
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from harness.core import registry

#: nothing beyond numpy, onnx and onnxruntime: the model is the file (read by :mod:`harness.core.repro`)
REPLAY_REQUIRES = ()


def graph_inputs(model) -> list[str]:
    """The graph's input names, initializers left out."""
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


@registry.register_framework
class OnnxFramework(registry.FrameworkAdapter):
    """Loads the user's ONNX file; the reference evaluator computes the expected outputs."""

    name = "onnx"

    def build(self, spec: dict, seed: int):
        return registry.BUILDERS[("onnx", spec["builder"])](spec)

    def reference(self, model, inputs):
        outs = ReferenceEvaluator(model).run(None, dict(zip(graph_inputs(model), inputs)))
        return [np.asarray(o) for o in outs]


@registry.register_exporter("onnx")
class FileExporter:
    """The file itself, written under the case's name (the opset is the file's own)."""

    name = "file"

    def export(self, model, case, workdir, cache):
        path = os.path.join(workdir, case.id + ".onnx")
        onnx.save(model, path)
        return path
