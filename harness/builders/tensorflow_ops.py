"""TensorFlow/Keras builders for kernels that a plain ``call:`` cannot express.

A builder takes the case spec and returns a ``tf_keras`` layer whose call takes
the spec's inputs (one tensor, or a list for several); the adapter wraps it in
a functional model. Weights are drawn after ``tf_keras.utils.set_random_seed``.
Images are NHWC (TensorFlow's CPU kernels do not run NCHW convolutions).

TensorFlow is imported inside the builders: the pytest controller imports this
module only to learn the builder names.
"""

from __future__ import annotations

import inspect

from harness.core.registry import register_builder, register_call_namespaces

#: a matrix's `call:` targets of tensorflow start with these names (see registry.call_allowed)
register_call_namespaces("tensorflow", "tf", "tensorflow", "tf_keras")


def _uniform(lo: float, hi: float):
    import tf_keras

    return tf_keras.initializers.RandomUniform(lo, hi)


#: initializer defaults for layer arguments the YAML does not set: random biases and
#: statistics, so that a dropped bias or a swapped mean/variance cannot pass unseen
_RANDOM_INIT = {
    "bias_initializer": (-0.5, 0.5),
    "beta_initializer": (-0.5, 0.5),
    "gamma_initializer": (0.5, 1.5),
    "moving_mean_initializer": (-0.5, 0.5),
    "moving_variance_initializer": (0.5, 2.0),
    "alpha_initializer": (0.05, 0.5),
}


@register_builder("tensorflow")
def layer(spec):
    """A ``tf_keras.layers.<kwargs.layer>`` built with the other kwargs (random biases and statistics)."""
    import tf_keras

    kw = dict(spec.get("kwargs", {}))
    cls = getattr(tf_keras.layers, kw.pop("layer"))
    accepted = inspect.signature(cls.__init__).parameters
    for name, (lo, hi) in _RANDOM_INIT.items():
        if name in accepted and name not in kw:
            kw[name] = _uniform(lo, hi)
    return cls(**kw)


def _lambda(fn):
    import tf_keras

    return tf_keras.layers.Lambda(fn)


@register_builder("tensorflow")
def hard_swish(spec):
    """``x * relu6(x + 3) / 6`` (Keras 2 has no hard-swish activation)."""
    import tensorflow as tf

    return _lambda(lambda x: x * tf.nn.relu6(x + 3.0) / 6.0)


@register_builder("tensorflow")
def scale(spec):
    """Paddle's ``scale``: ``x * scale + bias``; kwargs: scale, bias."""
    s, b = spec["kwargs"]["scale"], spec["kwargs"]["bias"]
    return _lambda(lambda x: x * s + b)


@register_builder("tensorflow")
def uniform_like_batch(spec):
    """``tf.random.uniform([batch of x, *shape], minval, maxval)`` at x's dtype; kwargs: shape, minval, maxval."""
    import tensorflow as tf

    kw = spec["kwargs"]
    return _lambda(lambda x: tf.random.uniform(tf.concat([tf.shape(x)[:1], kw["shape"]], 0),
                                               kw["minval"], kw["maxval"], dtype=x.dtype))


@register_builder("tensorflow")
def combined_nms(spec):
    """``tf.image.combined_non_max_suppression(boxes, scores, ...)``: multi-class NMS, 4 outputs."""
    import tensorflow as tf

    kw = spec["kwargs"]
    return _lambda(lambda xs: tuple(tf.image.combined_non_max_suppression(xs[0], xs[1], **kw))[:4])
