"""TensorFlow/Keras adapter and its two tf2onnx export paths (imported only by its own runner).

* ``function``: ``tf2onnx.convert.from_function`` on a ``tf.function`` whose
  ``input_signature`` has None on the dynamic axes (the batch by default);
* ``keras``: ``tf2onnx.convert.from_keras`` on a Keras 2 model (``tf_keras``;
  Keras 3's ``from_keras`` path fails), with the same input signature.

A case builds one functional ``tf_keras.Model`` from its spec: a ``call:``
entry wraps the TensorFlow function in a ``Lambda`` layer, a builder returns a
layer. The ``function`` exporter traces the plain function of a ``call:``
entry (the op itself, no Keras in between) and the model's call otherwise.

Dtypes: the case's inputs carry its dtype into the ``tf.TensorSpec`` signature and
the Keras ``Input`` layers. At float16 and float64 the Keras layers are built at
that dtype too (``floatx``: a float32 layer would cast a float16 input up and
run at float32), with the weights drawn in float32 under the same seed and
rounded once; at integer and bool dtypes the layers keep float32 weights (an
op with weights takes floating inputs only). The reference runs in TensorFlow
at the case's dtype on CPU.

TensorFlow runs in an environment of its own (see :mod:`harness.isolation.environments`):
``import tensorflow`` followed by ``import paddle`` kills the process with
SIGSEGV, so this module must never share a process with Paddle.
"""

from __future__ import annotations

import contextlib
import logging
import os

# Before tensorflow is imported: Keras 2 (tf_keras) behind tf.keras, quiet native logs.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
import tf_keras  # noqa: E402

from harness.core import calls, registry  # noqa: E402

#: pip distributions a standalone repro of a TensorFlow case needs besides numpy, onnx and
#: onnxruntime (read from this file's source by :mod:`harness.core.repro`, never imported there).
REPLAY_REQUIRES = ("tensorflow-cpu", "tf-keras", "tf2onnx")

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("tf2onnx").setLevel(logging.ERROR)


def flatten(out) -> list[np.ndarray]:
    """Framework outputs (tensor, tuple, list, nested) -> list of numpy arrays."""
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in flatten(o)]
    if isinstance(out, dict):
        return [a for k in sorted(out) for a in flatten(out[k])]
    if hasattr(out, "numpy"):
        return [np.asarray(out.numpy())]
    return [np.asarray(out)]


def signature(spec: dict) -> list:
    """``tf.TensorSpec`` per input, None on its dynamic axes, named x0, x1, ..."""
    out = []
    for i, inp in enumerate(spec["inputs"]):
        dyn = inp.get("dynamic", [0])
        shape = [None if ax in dyn else d for ax, d in enumerate(inp["shape"])]
        out.append(tf.TensorSpec(shape, tf.as_dtype(inp.get("dtype", "float32")), name=f"x{i}"))
    return out


class Built:
    """A case's model: the function the ``function`` exporter traces and the Keras model.

    ``fn(*tensors)`` computes the outputs; ``keras`` is a functional
    ``tf_keras.Model`` over the same computation.
    """

    def __init__(self, fn, keras_model):
        self.fn = fn
        self.keras = keras_model


def _keras_inputs(spec: dict) -> list:
    inputs = []
    for i, inp in enumerate(spec["inputs"]):
        dyn = inp.get("dynamic", [0])
        shape = [None if ax in dyn else d for ax, d in enumerate(inp["shape"])]
        if 0 not in dyn:
            inputs.append(tf_keras.Input(batch_shape=shape, dtype=inp.get("dtype", "float32"), name=f"x{i}"))
        else:
            inputs.append(tf_keras.Input(shape=shape[1:], dtype=inp.get("dtype", "float32"), name=f"x{i}"))
    return inputs


#: Keras layer dtypes besides float32: a case at one of them builds its layers at it.
_LAYER_DTYPES = ("float16", "float64")


@contextlib.contextmanager
def _floatx(dtype: str):
    """Layers created inside are at ``dtype`` (Keras's default layer dtype is ``floatx``)."""
    before = tf_keras.backend.floatx()
    tf_keras.backend.set_floatx(dtype)
    try:
        yield
    finally:
        tf_keras.backend.set_floatx(before)


def _assign_rounded(model, drawn: list, dtype: str) -> None:
    """Give ``model`` the float32 weights ``drawn``, rounded once to ``dtype``.

    A variable Keras keeps at float32 in a float16 layer (BatchNormalization's
    statistics) gets the rounded values, stored at its own dtype.
    """
    variables = model.weights
    if [tuple(v.shape) for v in variables] != [w.shape for w in drawn]:
        raise RuntimeError(f"the model at {dtype} has other weights than at float32")
    for v, w in zip(variables, drawn):
        v.assign(w.astype(dtype).astype(v.dtype.as_numpy_dtype))


def _functional(layer_or_fn, spec: dict, lambda_wrap: bool):
    inputs = _keras_inputs(spec)
    if lambda_wrap:
        # autocast off: the op gets each input at its own dtype (float32 crop boxes beside a float16 image)
        out = tf_keras.layers.Lambda(lambda xs: layer_or_fn(*xs), autocast=False)(inputs)
    else:
        out = layer_or_fn(inputs if len(inputs) > 1 else inputs[0])
    return tf_keras.Model(inputs, out)


@registry.register_framework
class TensorFlowFramework(registry.FrameworkAdapter):
    """Builds Keras 2 models from case specs (seeded weights) and runs them eagerly on CPU."""

    name = "tensorflow"
    call_aliases = {"tf": "tensorflow"}

    #: TensorFlow's own words for "no CPU kernel for this dtype" (eager: NotFoundError,
    #: graph: InvalidArgumentError), see harness.core.dtypes. An op whose definition refuses a
    #: dtype ("Value for attr 'T' of int32 is not in the list of allowed values") is not
    #: here: its entry must not declare that dtype.
    dtype_unsupported = (
        r"Could not find device for node: [^\n]*\bT=DT_(HALF|DOUBLE|INT32|INT64|BOOL)\b",
        r"No OpKernel was registered to support Op '\w+' [^\n]*\bT=DT_(HALF|DOUBLE|INT32|INT64|BOOL)\b",
    )

    def versions(self) -> dict:
        """Package versions the environment probe reports."""
        return {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__, "tf_keras": tf_keras.__version__}

    def warm_up(self, workdir: str) -> None:
        """One tiny export per exporter: tf2onnx's first conversion initialises grappler (~1 s)."""
        spec = {"inputs": [{"shape": [2, 3], "dtype": "float32"}], "call": "tf.abs"}
        model = self.build(spec, 0)
        sig = signature(spec)
        tf2onnx.convert.from_function(tf.function(model.fn, input_signature=sig), input_signature=sig,
                                      opset=13, output_path=os.path.join(workdir, "warm.onnx"))
        tf2onnx.convert.from_keras(model.keras, input_signature=sig, opset=13,
                                   output_path=os.path.join(workdir, "warm2.onnx"))

    def build(self, spec: dict, seed: int) -> Built:
        """The case's model at ``spec['dtype']`` (seeded weights drawn in float32, then rounded)."""
        dtype = spec.get("dtype")
        if dtype not in _LAYER_DTYPES:
            return self._build(spec, seed)
        drawn = self._build(spec, seed).keras.get_weights()
        with _floatx(dtype):
            built = self._build(spec, seed)
        _assign_rounded(built.keras, drawn, dtype)
        return built

    def _build(self, spec: dict, seed: int) -> Built:
        tf_keras.utils.set_random_seed(seed % (2**31))
        if spec.get("call"):
            call = calls.Call.of(spec, self.call_aliases)

            def fn(*xs):  # a plain function: what Keras' Lambda and tf.function inspect
                return call(*xs)

            return Built(fn, _functional(fn, spec, lambda_wrap=True))
        layer = registry.BUILDERS[("tensorflow", spec["builder"])](spec)
        model = _functional(layer, spec, lambda_wrap=False)

        def call(*xs):
            return model(list(xs) if len(xs) > 1 else xs[0], training=False)

        return Built(call, model)

    def reference(self, model: Built, inputs):
        return flatten(model.fn(*[tf.convert_to_tensor(x) for x in inputs]))


def _target(workdir: str, case) -> str:
    path = os.path.join(workdir, case.id + ".onnx")
    if os.path.exists(path):
        os.remove(path)
    return path


@registry.register_exporter("tensorflow")
class FunctionExporter:
    """``tf2onnx.convert.from_function`` on a ``tf.function`` with a None batch dimension."""

    name = "function"

    def export(self, model, case, workdir, cache):
        sig = signature(case.spec)
        path = _target(workdir, case)
        tf2onnx.convert.from_function(tf.function(model.fn, input_signature=sig), input_signature=sig,
                                      opset=case.opset, output_path=path)
        return path


@registry.register_exporter("tensorflow")
class KerasExporter:
    """``tf2onnx.convert.from_keras`` on the ``tf_keras`` functional model."""

    name = "keras"

    def export(self, model, case, workdir, cache):
        path = _target(workdir, case)
        tf2onnx.convert.from_keras(model.keras, input_signature=signature(case.spec), opset=case.opset,
                                   output_path=path)
        return path
