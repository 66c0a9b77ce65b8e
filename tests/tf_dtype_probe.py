"""``python -m tests.tf_dtype_probe``: the TensorFlow adapter's dtype handling, measured in its environment.

Run by :mod:`tests.test_tensorflow_dtypes` with the TensorFlow interpreter
(TensorFlow is not importable in the main environment). It builds real models
through the adapter and makes TensorFlow refuse real dtypes, then prints one
JSON line of facts for the test to check.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np

from harness.core import dtypes, registry

CONV = {"builder": "layer", "kwargs": {"layer": "Conv2D", "filters": 4, "kernel_size": 3},
        "inputs": [{"shape": [2, 8, 8, 3]}]}
BATCH_NORM = {"builder": "layer", "kwargs": {"layer": "BatchNormalization"}, "inputs": [{"shape": [2, 5, 5, 4]}]}
RELU = {"call": "tf.nn.relu", "inputs": [{"shape": [2, 3]}]}


def at(spec: dict, dtype: str) -> dict:
    """``spec`` at ``dtype``, as the matrix expands it (the dtype on the spec and its inputs)."""
    return {**spec, "dtype": dtype, "inputs": [{"dtype": dtype, **inp} for inp in spec["inputs"]]}


def weights(fw, spec: dict, dtype: str, seed: int = 7) -> dict:
    """The built model's weight dtypes, whether they are the float32 draw rounded once, and its output dtypes."""
    import tensorflow as tf

    model = fw.build(at(spec, dtype), seed)
    drawn = fw.build(at(spec, "float32"), seed).keras.get_weights()
    got = model.keras.get_weights()
    rounded = all(np.array_equal(g.astype(np.float64), w.astype(dtype).astype(np.float64))
                  for g, w in zip(got, drawn)) if dtype in ("float16", "float64") else None
    x = np.ones(spec["inputs"][0]["shape"], dtype=dtype)
    return {"weights": sorted({str(g.dtype) for g in got}), "rounded_float32_draw": rounded,
            "n_weights": len(got), "keras_out": str(model.keras(x).dtype.name),
            "ref_out": [str(a.dtype) for a in fw.reference(model, [x])],
            "floatx_after": tf.keras.backend.floatx()}


def refusals(fw) -> dict:
    """TensorFlow's messages for an op without a CPU kernel (eager and in a graph) and for an op
    whose definition refuses the dtype, and what :func:`harness.core.dtypes.unsupported_reason` makes of them."""
    import tensorflow as tf

    ints = tf.constant([1, 2], tf.int32)
    messages = {}
    for name, call in (("eager_no_kernel", lambda: tf.math.reciprocal(ints)),
                       ("graph_no_kernel", lambda: tf.function(tf.math.reciprocal)(ints)),
                       ("op_refuses_dtype", lambda: tf.math.sigmoid(ints))):
        try:
            call()
            messages[name] = None
        except Exception as exc:  # noqa: BLE001 - the message is what is measured
            messages[name] = f"{type(exc).__name__}: {exc}"
    out = {}
    for name, msg in messages.items():
        out[name] = {dtype: msg is not None and dtypes.unsupported_reason(
            fw, SimpleNamespace(dtype=dtype, framework="tensorflow", device="cpu"), msg)
            for dtype in ("int32", "float32")}
    return out


def main() -> int:
    """Print the facts as one JSON line."""
    fw = registry.load_framework("tensorflow")
    facts = {f"{name}@{dtype}": weights(fw, spec, dtype)
             for name, spec in (("conv", CONV), ("batch_norm", BATCH_NORM), ("relu", RELU))
             for dtype in ("float16", "float32", "float64")}
    facts["relu@int32"] = weights(fw, RELU, "int32")
    facts["refusals"] = refusals(fw)
    print(json.dumps(facts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
