"""OneFlow builders of the model-level cases (NCHW, seeded random weights).

The same four models as :mod:`harness.builders.torch_models` (OneFlow's API
mirrors torch's): ``linear_net`` (seed 001), ``two_io_net`` (seed 003, the
``_abs`` branch written as ``oneflow.where`` on the sign of ``x.sum()``, since
an ``nn.Graph`` is traced and cannot keep Python control flow),
``resnet_basic_block`` and ``mbv3_block``.

OneFlow is imported inside the builders (see :mod:`harness.builders.oneflow_ops`).
"""

from __future__ import annotations

from harness.core.registry import register_builder
from .oneflow_ops import randomize_norms


@register_builder("oneflow")
def linear_net(spec):
    """Seed 001's LinearNet; kwargs: image_size, class_num."""
    import oneflow as flow

    kw = spec["kwargs"]

    class LinearNet(flow.nn.Module):
        def __init__(self):
            super().__init__()
            self._linear = flow.nn.Linear(kw["image_size"], kw["class_num"])

        def forward(self, x):
            return self._linear(x)

    return LinearNet()


@register_builder("oneflow")
def two_io_net(spec):
    """Seed 003's TestModel; ``_abs`` = ``where(x.sum() > 0, x, -x)`` (traced graphs keep no ``if``)."""
    import oneflow as flow

    class TestModel(flow.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = flow.nn.Linear(4, 2)
            self.relu = flow.nn.ReLU()

        def forward(self, x, h):
            x = flow.where(x.sum() > 0, x, -x)
            x1 = self.linear(x) + h
            return x1, self.relu(x1)

    return TestModel()


@register_builder("oneflow")
def resnet_basic_block(spec):
    """ResNet BasicBlock (stride 1, identity shortcut); kwargs: channels."""
    import oneflow as flow

    c = spec["kwargs"]["channels"]
    nn = flow.nn

    class BasicBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + x)

    block = BasicBlock()
    randomize_norms(block)
    return block


@register_builder("oneflow")
def mbv3_block(spec):
    """MobileNetV3-small inverted residual with SE; kwargs: channels, expand, squeeze."""
    import oneflow as flow

    kw = spec["kwargs"]
    c, e, s = kw["channels"], kw["expand"], kw["squeeze"]
    nn = flow.nn

    class SqueezeExcite(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(e, s, 1)
            self.relu = nn.ReLU()
            self.fc2 = nn.Conv2d(s, e, 1)
            self.gate = nn.Hardsigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))

    class MBV3Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.expand = nn.Sequential(nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), nn.Hardswish())
            self.dw = nn.Sequential(nn.Conv2d(e, e, 3, padding=1, groups=e, bias=False),
                                    nn.BatchNorm2d(e), nn.Hardswish())
            self.se = SqueezeExcite()
            self.project = nn.Sequential(nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))

        def forward(self, x):
            return x + self.project(self.se(self.dw(self.expand(x))))

    block = MBV3Block()
    randomize_norms(block)
    return block


# -- whole models of flowvision 0.2.1 (cases/models/oneflow.yaml) ---------------------------------

def calibrate_norms(module, spec: dict) -> None:
    """Set every BatchNorm's running statistics to those of one calibration batch (4 samples).

    Random weights with the default statistics make deep networks' outputs
    explode or vanish; one training-mode pass with momentum 1 stores the batch's
    own statistics, so outputs are O(1) (as the torch builders do). The batch has
    a seed of its own, never a case input.
    """
    import numpy as np
    import oneflow as flow

    from harness.core.inputs import make_inputs

    norms = [m for m in module.modules() if isinstance(m, flow.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.momentum = 1.0
    seed = int(np.random.randint(0, 2**31 - 1))
    xs = [flow.tensor(x) for x in make_inputs(spec["inputs"], seed, batch=4)]
    module.train()
    with flow.no_grad():
        module(*xs)
    module.eval()


@register_builder("oneflow")
def flowvision_model(spec):
    """``flowvision.models.<arch>(pretrained=False, **kwargs)``, BatchNorms calibrated; kwargs: arch, ..."""
    import flowvision.models as models

    kw = dict(spec["kwargs"])
    model = getattr(models, kw.pop("arch"))(pretrained=False, **kw)
    calibrate_norms(model, spec)
    return model


@register_builder("oneflow")
def user_model(spec):
    """A user's model (:mod:`harness.spec.usermodel`): the factory's module, with a ``oneflow.save`` folder."""
    import oneflow as flow

    from .factory import call_factory

    kw = spec["kwargs"]
    model = call_factory(kw)
    if kw.get("weights"):
        model.load_state_dict(flow.load(kw["weights"]))
    return model
