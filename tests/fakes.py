"""A fake framework and fake exporters that misbehave on purpose.

They exist only to prove that the harness classifies every status; the
conformance path never uses them. The model of every case is ``relu(x)``; the
``behavior`` kwarg of a case picks what the exporter does.
"""

from __future__ import annotations

import os
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

from harness.core import registry

registry.register_call_namespaces("fake", "numpy")


@registry.register_framework
class FakeFramework(registry.FrameworkAdapter):
    """Reference: numpy relu."""

    name = "fake"

    def build(self, spec, seed):
        if spec.get("kwargs", {}).get("behavior") == "reference-raises":
            raise RuntimeError("the framework cannot run this op")
        return spec.get("kwargs", {}).get("behavior", "good")

    def reference(self, model, inputs):
        if model == "constant":  # a model whose output does not depend on its input
            return [np.full(inputs[0].shape, 0.5, dtype=inputs[0].dtype)]
        return [np.maximum(inputs[0], 0)]

    def warm_up(self, workdir):
        """Sleep ``HARNESS_FAKE_WARM_UP_S`` seconds (slow imports, for the tests of start-up limits);
        touch ``HARNESS_FAKE_WARM_UP_MARK`` (tests that a usage error starts no runner)."""
        mark = os.environ.get("HARNESS_FAKE_WARM_UP_MARK")
        if mark:
            open(mark, "a").close()
        time.sleep(float(os.environ.get("HARNESS_FAKE_WARM_UP_S", "0")))


def _model(nodes, out_type=TensorProto.FLOAT, out_shape=("N", 3), opset=13, inits=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", out_type, list(out_shape) if out_shape else None)
    graph = helper.make_graph(nodes, "fake", [x], [y], initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def build_onnx(behavior: str, opset: int) -> onnx.ModelProto:
    """The ONNX model a fake exporter writes for ``behavior``."""
    relu = helper.make_node("Relu", ["x"], ["y"])
    if behavior in ("good", "good-or-wrong", "slow", "constant"):
        return _model([relu], opset=opset)
    if behavior == "wrong-values":
        return _model([helper.make_node("Abs", ["x"], ["y"])], opset=opset)
    if behavior == "wrong-attribute":  # relu is LeakyRelu with alpha 0; this exporter writes 0.3
        return _model([helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.3)], opset=opset)
    if behavior == "raises-opset":
        return _model([relu], opset=opset + 1)
    if behavior == "stray-attribute":  # Relu has no attributes: the checker rejects the node
        return _model([helper.make_node("Relu", ["x"], ["y"], alpha=0.5)], opset=opset)
    if behavior == "checker-rejects":
        return _model([helper.make_node("Relu", ["x", "x"], ["y"])], opset=opset)
    if behavior == "shape":
        shape = helper.make_tensor("s", TensorProto.INT64, [1], [-1])
        return _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["y"])],
                      out_shape=("M",), opset=opset, inits=[shape])
    if behavior == "dtype":
        return _model([helper.make_node("Relu", ["x"], ["r"]),
                       helper.make_node("Cast", ["r"], ["y"], to=TensorProto.DOUBLE)],
                      out_type=TensorProto.DOUBLE, opset=opset)
    if behavior == "ort-unsupported":
        m = _model([helper.make_node("Relu", ["x"], ["y"], domain="com.example.fake")], opset=opset)
        m.opset_import.append(helper.make_opsetid("com.example.fake", 1))
        return m
    if behavior == "nan-to-zero":  # right on finite inputs, maps NaN to 0 (for --special-values)
        zero = helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])
        return _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("IsNaN", ["x"], ["n"]),
                       helper.make_node("Where", ["n", "z", "r"], ["y"])], opset=opset, inits=[zero])
    if behavior == "runtime-error":
        shape = helper.make_tensor("s", TensorProto.INT64, [2], [7, 5])
        return _model([helper.make_node("Reshape", ["x", "s"], ["y"])], out_shape=(7, 5),
                      opset=opset, inits=[shape])
    raise ValueError(behavior)


@registry.register_exporter("fake")
class FakeExporter:
    """Writes :func:`build_onnx`'s model, or raises / aborts / hangs on request."""

    name = "fake"

    def export(self, model, case, workdir, cache):
        if model == "raises":
            raise RuntimeError("fake exporter refuses")
        if model == "aborts":
            os.abort()
        if model == "aborts-once":  # the first attempt of each case dies (a marker file per case remembers it)
            mark = os.path.join(os.environ["HARNESS_FAKE_ONCE_DIR"], case.id)
            if not os.path.exists(mark):
                open(mark, "w").close()
                os.abort()
            model = "good"
        if model == "hangs":
            time.sleep(3600)
        if model == "slow":  # a case still running when a fault test kills something
            time.sleep(float(os.environ.get("HARNESS_FAKE_SLOW_S", "1")))
        if model == "no-file":
            return os.path.join(workdir, "never-written.onnx")
        path = os.path.join(workdir, case.id + ".onnx")
        onnx.save(build_onnx(model, case.opset), path)
        return path


@registry.register_builder("fake", "relu")
def relu(spec):
    """The fake builder (the fake framework builds from the spec itself)."""
    return spec


# -- a second fake framework for property mode: y = relu(x) + k ----------------------------
# Its exporter is right unless the drawn kwarg ``k`` exceeds THRESHOLD: then it adds k + 1.
# Property mode must find that and shrink it to k = THRESHOLD + 1.

EXPLORE_THRESHOLD = 5


def build_explore_onnx(spec: dict, opset: int) -> onnx.ModelProto:
    """ONNX model of ``relu(x) + k`` (wrong, ``+ k + 1``, when ``k`` > the threshold or ``p == q == 1``)."""
    k = spec["kwargs"]["k"]
    wrong = k > spec["kwargs"].get("threshold", 5) or spec["kwargs"].get("p") == spec["kwargs"].get("q") == 1
    rank = len(spec["inputs"][0]["shape"])
    dims = [f"d{i}" for i in range(rank)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)
    const = helper.make_tensor("k", TensorProto.FLOAT, [], [float(k + 1 if wrong else k)])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "k"], ["y"])],
                              "fakex", [x], [y], initializer=[const])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@registry.register_framework
class FakeExploreFramework(registry.FrameworkAdapter):
    """Reference: numpy ``relu(x) + k``; the 'model' is the spec."""

    name = "fakex"

    def build(self, spec, seed):
        return {**spec, "kwargs": {"threshold": EXPLORE_THRESHOLD, **spec.get("kwargs", {})}}

    def reference(self, model, inputs):
        return [(np.maximum(inputs[0], 0) + np.float32(model["kwargs"]["k"])).astype(inputs[0].dtype)]


@registry.register_exporter("fakex")
class FakeExploreExporter:
    """Writes :func:`build_explore_onnx`'s model."""

    name = "fakex"

    def export(self, model, case, workdir, cache):
        path = os.path.join(workdir, case.id + ".onnx")
        onnx.save(build_explore_onnx(model, case.opset), path)
        return path


@registry.register_builder("fakex", "relu_add")
def relu_add(spec):
    """The fake builder (the fake framework builds from the spec itself)."""
    return spec
