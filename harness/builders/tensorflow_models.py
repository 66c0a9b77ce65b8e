"""TensorFlow/Keras builders of the model-level cases (NHWC, seeded random weights).

The same four models as :mod:`harness.builders.torch_models`:

* ``linear_net``: seed 001's LinearNet, one Dense (IMAGE_SIZE -> CLASS_NUM);
* ``two_io_net``: seed 003's TestModel, inputs (x, h), outputs (x1, x2), with
  ``_abs`` = ``tf.cond(reduce_sum(x) > 0, x, -x)`` (data-dependent control flow);
* ``resnet_basic_block``: conv-bn-relu-conv-bn + identity, relu;
* ``mbv3_block``: MobileNetV3-small block: 1x1 expand, depthwise conv, hard-swish,
  squeeze-excite with hard-sigmoid, 1x1 project, residual.

TensorFlow is imported inside the builders (see :mod:`harness.core.registry`).
"""

from __future__ import annotations

from harness.core.registry import register_builder


def _bn():
    import tf_keras

    u = tf_keras.initializers.RandomUniform
    return tf_keras.layers.BatchNormalization(
        epsilon=1e-5, gamma_initializer=u(0.5, 1.5), beta_initializer=u(-0.5, 0.5),
        moving_mean_initializer=u(-0.5, 0.5), moving_variance_initializer=u(0.5, 2.0))


def _bias():
    import tf_keras

    return tf_keras.initializers.RandomUniform(-0.5, 0.5)


@register_builder("tensorflow")
def linear_net(spec):
    """Seed 001's LinearNet; kwargs: image_size (from the input), class_num."""
    import tf_keras

    return tf_keras.layers.Dense(spec["kwargs"]["class_num"], bias_initializer=_bias())


@register_builder("tensorflow")
def two_io_net(spec):
    """Seed 003's TestModel with ``_abs`` as a ``tf.cond`` on the sign of ``x.sum()``."""
    import tensorflow as tf
    import tf_keras

    class TestModel(tf_keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.linear = tf_keras.layers.Dense(2, bias_initializer=_bias())

        def call(self, inputs):
            x, h = inputs
            x = tf.cond(tf.reduce_sum(x) > 0, lambda: x, lambda: -x)
            x1 = self.linear(x) + h
            return x1, tf.nn.relu(x1)

    return TestModel()


@register_builder("tensorflow")
def resnet_basic_block(spec):
    """ResNet BasicBlock (stride 1, identity shortcut); kwargs: channels."""
    import tensorflow as tf
    import tf_keras

    c = spec["kwargs"]["channels"]

    class BasicBlock(tf_keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.conv1 = tf_keras.layers.Conv2D(c, 3, padding="same", use_bias=False)
            self.bn1 = _bn()
            self.conv2 = tf_keras.layers.Conv2D(c, 3, padding="same", use_bias=False)
            self.bn2 = _bn()

        def call(self, x):
            out = tf.nn.relu(self.bn1(self.conv1(x), training=False))
            out = self.bn2(self.conv2(out), training=False)
            return tf.nn.relu(out + x)

    return BasicBlock()


@register_builder("tensorflow")
def mbv3_block(spec):
    """MobileNetV3-small inverted residual with SE; kwargs: channels, expand, squeeze."""
    import tensorflow as tf
    import tf_keras

    kw = spec["kwargs"]
    c, e, s = kw["channels"], kw["expand"], kw["squeeze"]
    L = tf_keras.layers

    def hard_sigmoid(x):
        return tf.nn.relu6(x + 3.0) / 6.0

    class MBV3Block(tf_keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.expand = L.Conv2D(e, 1, use_bias=False)
            self.bn1 = _bn()
            self.dw = L.DepthwiseConv2D(3, padding="same", use_bias=False)
            self.bn2 = _bn()
            self.fc1 = L.Conv2D(s, 1, bias_initializer=_bias())
            self.fc2 = L.Conv2D(e, 1, bias_initializer=_bias())
            self.project = L.Conv2D(c, 1, use_bias=False)
            self.bn3 = _bn()

        def call(self, x):
            y = self.bn1(self.expand(x), training=False)
            y = y * hard_sigmoid(y)
            y = self.bn2(self.dw(y), training=False)
            y = y * hard_sigmoid(y)
            gate = tf.reduce_mean(y, axis=[1, 2], keepdims=True)
            gate = hard_sigmoid(self.fc2(tf.nn.relu(self.fc1(gate))))
            y = self.bn3(self.project(y * gate), training=False)
            return x + y

    return MBV3Block()


# -- whole models of tf_keras.applications (cases/models/tensorflow.yaml) -------------------------

def calibrate_norms(model, spec: dict) -> None:
    """Set every BatchNormalization's moving statistics to those of one calibration batch (4 samples).

    Random weights with the default statistics make deep networks' outputs
    explode or vanish; one ``training=True`` call with momentum 0 stores the
    batch's own mean and variance, so outputs are O(1). The batch has a seed
    of its own, never a case input.
    """
    import numpy as np
    import tf_keras

    from harness.core.inputs import make_inputs

    norms = [la for la in _layers(model) if isinstance(la, tf_keras.layers.BatchNormalization)]
    if not norms:
        return
    for la in norms:
        la.momentum = 0.0
    seed = int(np.random.randint(0, 2**31 - 1))
    xs = make_inputs(spec["inputs"], seed, batch=4)
    model(xs if len(xs) > 1 else xs[0], training=True)


def _layers(model):
    for la in model.layers:
        yield la
        if hasattr(la, "layers"):
            yield from _layers(la)


def _application(spec):
    import tf_keras

    kw = dict(spec["kwargs"])
    arch = kw.pop("arch")
    model = getattr(tf_keras.applications, arch)(
        weights=None, input_shape=tuple(spec["inputs"][0]["shape"][1:]), classifier_activation=None, **kw)
    calibrate_norms(model, spec)
    return model


@register_builder("tensorflow")
def keras_application(spec):
    """``tf_keras.applications.<arch>(weights=None, classifier_activation=None)``: logits, not softmax.

    The default softmax head of random weights gives ~1/classes everywhere (a
    degenerate reference); BatchNorms are calibrated. kwargs: arch, and the
    constructor's own (e.g. ``classes``).
    """
    return _application(spec)


@register_builder("tensorflow")
def keras_h5(spec):
    """Seed 004's path: a ``keras_application`` saved as ``.h5``, reloaded with ``load_model``.

    The reloaded model (its weights read back from the file) is the one
    compared and exported.
    """
    import os
    import shutil
    import tempfile

    import tf_keras

    folder = tempfile.mkdtemp(prefix="harness-h5-")
    try:
        path = os.path.join(folder, "model.h5")
        _application(spec).save(path)
        return tf_keras.models.load_model(path, compile=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@register_builder("tensorflow")
def user_model(spec):
    """A user's model (:mod:`harness.spec.usermodel`): a saved ``.h5``/``.keras`` file reloaded with
    ``load_model``, or the factory's Keras model with its weights file."""
    import tf_keras

    from .factory import call_factory

    kw = spec["kwargs"]
    if kw.get("saved"):
        return tf_keras.models.load_model(kw["saved"], compile=False)
    model = call_factory(kw)
    if kw.get("weights"):
        model.load_weights(kw["weights"])
    return model
