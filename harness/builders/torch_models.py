"""PyTorch builders of the model-level cases (small networks, seeded random weights).

The same four models exist for Paddle in :mod:`harness.builders.paddle_models`:

* ``linear_net``: seed 001's LinearNet, one Linear (IMAGE_SIZE -> CLASS_NUM);
* ``two_io_net``: seed 003's TestModel, inputs (x, h), outputs (x1, x2), with a
  ``@torch.jit.script`` branch ``_abs`` (x if x.sum() > 0 else -x), as the seed wrote it;
* ``resnet_basic_block``: conv-bn-relu-conv-bn + identity, relu;
* ``mbv3_block``: a MobileNetV3-small block: 1x1 expand, depthwise conv,
  hardswish, squeeze-excite with hardsigmoid, 1x1 project, residual.

torch is imported inside the builders (see :mod:`harness.core.registry`).
"""

from __future__ import annotations

from harness.core.registry import register_builder


def _randomize_bn(module) -> None:
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)


@register_builder("torch")
def linear_net(spec):
    """Seed 001's LinearNet; kwargs: image_size, class_num."""
    import torch

    kw = spec["kwargs"]

    class LinearNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self._linear = torch.nn.Linear(kw["image_size"], kw["class_num"])

        def forward(self, x):
            return self._linear(x)

    return LinearNet()


@register_builder("torch")
def two_io_net(spec):
    """Seed 003's TestModel: ``_abs`` is a ``@torch.jit.script`` function with data-dependent control flow."""
    import torch

    @torch.jit.script
    def _abs(x):
        if x.sum() > 0:
            return x
        else:
            return -x

    class TestModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)
            self.relu = torch.nn.ReLU()

        def forward(self, x, h):
            x = _abs(x)
            x = self.linear(x)
            x1 = x + h
            x2 = self.relu(x1)
            return x1, x2

    return TestModel()


@register_builder("torch")
def resnet_basic_block(spec):
    """ResNet BasicBlock (stride 1, identity shortcut); kwargs: channels."""
    import torch

    c = spec["kwargs"]["channels"]

    class BasicBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = torch.nn.BatchNorm2d(c)
            self.relu = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = torch.nn.BatchNorm2d(c)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + x)

    block = BasicBlock()
    _randomize_bn(block)
    return block


@register_builder("torch")
def mbv3_block(spec):
    """MobileNetV3-small inverted residual with SE; kwargs: channels, expand, squeeze."""
    import torch

    kw = spec["kwargs"]
    c, e, s = kw["channels"], kw["expand"], kw["squeeze"]

    class SqueezeExcite(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc1 = torch.nn.Conv2d(e, s, 1)
            self.relu = torch.nn.ReLU()
            self.fc2 = torch.nn.Conv2d(s, e, 1)
            self.gate = torch.nn.Hardsigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))

    class MBV3Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.expand = torch.nn.Sequential(torch.nn.Conv2d(c, e, 1, bias=False),
                                              torch.nn.BatchNorm2d(e), torch.nn.Hardswish())
            self.dw = torch.nn.Sequential(torch.nn.Conv2d(e, e, 3, padding=1, groups=e, bias=False),
                                          torch.nn.BatchNorm2d(e), torch.nn.Hardswish())
            self.se = SqueezeExcite()
            self.project = torch.nn.Sequential(torch.nn.Conv2d(e, c, 1, bias=False), torch.nn.BatchNorm2d(c))

        def forward(self, x):
            return x + self.project(self.se(self.dw(self.expand(x))))

    block = MBV3Block()
    _randomize_bn(block)
    return block
