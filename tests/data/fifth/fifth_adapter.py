"""A fifth framework, added through the extension point only (``tests/test_fifth_framework.py``).

The "framework" is numpy: its model is a relu, its exporter writes the ONNX Relu graph. The test
copies this file and ``fifth.yaml`` into a folder outside the repository and names the module in
the matrix's ``plugins:``; nothing in ``harness/`` knows it.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper

from harness.core import registry

REPLAY_REQUIRES = ()


@registry.register_framework
class FifthFramework(registry.FrameworkAdapter):
    """Framework output: numpy's relu."""

    name = "fifth"

    def build(self, spec, seed):
        return spec

    def reference(self, model, inputs):
        return [np.maximum(inputs[0], 0)]


@registry.register_exporter("fifth")
class FifthExporter:
    """Writes a one-node Relu model at the case's opset."""

    name = "plain"

    def export(self, model, case, workdir, cache):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "fifth", [x], [y])
        path = os.path.join(workdir, case.id + ".onnx")
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)]), path)
        return path


@registry.register_builder("fifth", "relu")
def relu(spec):
    """The model is the spec (the framework builds nothing)."""
    return spec
