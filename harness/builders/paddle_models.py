"""Paddle builders of the model-level cases (small networks, seeded random weights).

The same four models exist for torch in :mod:`harness.builders.torch_models`:

* ``linear_net``: seed 001's LinearNet, one Linear (IMAGE_SIZE -> CLASS_NUM);
* ``two_io_net``: seed 003's TestModel, inputs (x, h), outputs (x1, x2); the
  seed's scripted branch ``_abs`` (x if x.sum() > 0 else -x) is plain Python
  control flow here, which dy2static turns into a conditional when exporting;
* ``resnet_basic_block``: conv-bn-relu-conv-bn + identity, relu;
* ``mbv3_block``: a MobileNetV3-small block: 1x1 expand, depthwise conv,
  hardswish, squeeze-excite with hardsigmoid, 1x1 project, residual.

Layers are plain classes with explicit ``forward`` signatures (``paddle.jit``
translates the forward's source). Paddle is imported inside the builders.
"""

from __future__ import annotations

from harness.core.registry import register_builder


def _randomize_bn(layer) -> None:
    import numpy as np
    import paddle

    for m in layer.sublayers(include_self=True):
        if isinstance(m, paddle.nn.BatchNorm2D):
            c = m.weight.shape[0]
            for param, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.5, 0.5), (m._mean, -0.5, 0.5),
                                  (m._variance, 0.5, 2.0)):
                param.set_value(np.random.uniform(lo, hi, size=[c]).astype("float32"))


@register_builder("paddle")
def linear_net(spec):
    """Seed 001's LinearNet; kwargs: image_size, class_num."""
    import paddle

    kw = spec["kwargs"]

    class LinearNet(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self._linear = paddle.nn.Linear(kw["image_size"], kw["class_num"])

        def forward(self, x):
            return self._linear(x)

    return LinearNet()


@register_builder("paddle")
def two_io_net(spec):
    """Seed 003's TestModel with the branch ``_abs`` as data-dependent Python control flow."""
    import paddle

    class TestModel(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(4, 2)
            self.relu = paddle.nn.ReLU()

        def _abs(self, x):
            if x.sum() > 0:
                out = x
            else:
                out = -x
            return out

        def forward(self, x, h):
            x = self._abs(x)
            x = self.linear(x)
            x1 = x + h
            x2 = self.relu(x1)
            return x1, x2

    return TestModel()


@register_builder("paddle")
def resnet_basic_block(spec):
    """ResNet BasicBlock (stride 1, identity shortcut); kwargs: channels."""
    import paddle

    c = spec["kwargs"]["channels"]

    class BasicBlock(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv1 = paddle.nn.Conv2D(c, c, 3, padding=1, bias_attr=False)
            self.bn1 = paddle.nn.BatchNorm2D(c)
            self.relu = paddle.nn.ReLU()
            self.conv2 = paddle.nn.Conv2D(c, c, 3, padding=1, bias_attr=False)
            self.bn2 = paddle.nn.BatchNorm2D(c)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + x)

    block = BasicBlock()
    _randomize_bn(block)
    return block


@register_builder("paddle")
def mbv3_block(spec):
    """MobileNetV3-small inverted residual with SE; kwargs: channels, expand, squeeze."""
    import paddle

    kw = spec["kwargs"]
    c, e, s = kw["channels"], kw["expand"], kw["squeeze"]

    class SqueezeExcite(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.pool = paddle.nn.AdaptiveAvgPool2D(1)
            self.fc1 = paddle.nn.Conv2D(e, s, 1)
            self.relu = paddle.nn.ReLU()
            self.fc2 = paddle.nn.Conv2D(s, e, 1)
            self.gate = paddle.nn.Hardsigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))

    class MBV3Block(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.expand = paddle.nn.Sequential(paddle.nn.Conv2D(c, e, 1, bias_attr=False),
                                               paddle.nn.BatchNorm2D(e), paddle.nn.Hardswish())
            self.dw = paddle.nn.Sequential(paddle.nn.Conv2D(e, e, 3, padding=1, groups=e, bias_attr=False),
                                           paddle.nn.BatchNorm2D(e), paddle.nn.Hardswish())
            self.se = SqueezeExcite()
            self.project = paddle.nn.Sequential(paddle.nn.Conv2D(e, c, 1, bias_attr=False),
                                                paddle.nn.BatchNorm2D(c))

        def forward(self, x):
            return x + self.project(self.se(self.dw(self.expand(x))))

    block = MBV3Block()
    _randomize_bn(block)
    return block
