"""A user's Keras model for tests/test_usermodel.py (copied to a temporary folder outside the repository).

``build()`` converts everywhere; ``broken()`` adds ``tf.math.igamma`` (TensorFlow's Igamma), which
tf2onnx has no handler for.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402


def _net(broken):
    x = tf_keras.Input(shape=(8, 8, 3))
    y = tf_keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    if broken:
        y = tf_keras.layers.Lambda(lambda t: tf.math.igamma(t + 1.0, t + 2.0))(y)
    y = tf_keras.layers.GlobalAveragePooling2D()(y)
    return tf_keras.Model(x, tf_keras.layers.Dense(5)(y))


def build():
    return _net(False)


def broken():
    return _net(True)
