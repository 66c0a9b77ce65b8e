"""Paddle builders for kernels that a plain ``call:`` cannot express.

Each builder takes the case spec (``inputs``, ``args``, ``kwargs`` from YAML)
and returns a ``paddle.nn.Layer`` whose ``forward`` takes the spec's inputs in
order. Layers are plain classes with explicit ``forward(self, x, ...)``
signatures: ``paddle.jit.save`` translates the forward's source code.

Paddle is imported inside the builders: the pytest controller imports this
module only to learn the builder names.
"""

from __future__ import annotations

from ..registry import register_builder


@register_builder("paddle")
def conv2d(spec):
    """``nn.Conv2D`` with seeded weights; kwargs: out_channels, kernel_size, stride, padding, dilation, groups."""
    import paddle

    class Conv(paddle.nn.Layer):
        def __init__(self, in_ch, out_ch, k, kw):
            super().__init__()
            self.conv = paddle.nn.Conv2D(in_ch, out_ch, k, **kw)

        def forward(self, x):
            return self.conv(x)

    kw = dict(spec.get("kwargs", {}))
    return Conv(spec["inputs"][0]["shape"][1], kw.pop("out_channels"), kw.pop("kernel_size"), kw)
