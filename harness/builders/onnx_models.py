"""The builder of a user's ONNX file (``saved: model.onnx``, see :mod:`harness.spec.usermodel`)."""

from __future__ import annotations

from harness.core.registry import register_builder


@register_builder("onnx")
def user_model(spec):
    """The saved ONNX model, loaded with its external data."""
    import onnx

    return onnx.load(spec["kwargs"]["saved"])
