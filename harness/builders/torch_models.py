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


# -- whole models: torchvision, timm, transformers (cases/models/torch.yaml) ----------------------

def calibrate_norms(module, spec: dict) -> None:
    """Draw weights a library initialises to zero, then set BatchNorm statistics from one batch.

    Some libraries zero-initialise a layer for training (torchvision's ViT
    head): with random weights elsewhere its output is exactly 0, a reference
    that proves nothing, so such a Linear or Conv is drawn again with its own
    ``reset_parameters``. Random weights with the default statistics make deep
    networks' outputs explode or vanish; one training-mode pass with momentum 1
    stores the batch's own statistics, so outputs are O(1) (see the Paddle
    builders' twin). The calibration batch (4 samples) is drawn with a seed of
    its own, never a case input.
    """
    import numpy as np
    import torch

    from harness.core.inputs import make_inputs

    for m in module.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)) and not m.weight.any():
            m.reset_parameters()

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.momentum = 1.0
    seed = int(np.random.randint(0, 2**31 - 1))  # seeded by the adapter from the case's seed
    xs = [torch.from_numpy(x) for x in make_inputs(spec["inputs"], seed, batch=4)]
    module.train()
    with torch.no_grad():
        module(*xs)
    module.eval()


@register_builder("torch")
def torchvision_model(spec):
    """``torchvision.models.<arch>(weights=None, **kwargs)``, BatchNorms calibrated; kwargs: arch, ..."""
    from harness.frameworks.torch import import_torchvision

    kw = dict(spec["kwargs"])
    model = getattr(import_torchvision().models, kw.pop("arch"))(weights=None, **kw)
    calibrate_norms(model, spec)
    return model


@register_builder("torch")
def timm_model(spec):
    """``timm.create_model(arch, pretrained=False, **kwargs)``, BatchNorms calibrated."""
    from harness.frameworks.torch import import_torchvision

    import_torchvision()  # timm imports torchvision
    import timm

    kw = dict(spec["kwargs"])
    model = timm.create_model(kw.pop("arch"), pretrained=False, **kw)
    calibrate_norms(model, spec)
    return model


@register_builder("torch")
def transformers_model(spec):
    """A ``transformers`` model from a tiny config (no download), returning one tensor.

    kwargs: ``config`` (a config class name), ``model`` (a model class name),
    ``output`` (the output field: ``logits`` or ``last_hidden_state``),
    ``config_kwargs``. With two inputs the second is ``decoder_input_ids``
    (encoder-decoder models). ``use_cache=False`` and ``return_dict`` outputs are
    unpacked inside, so both exporters see plain positional tensors (TorchScript
    fails on BERT's keyword call otherwise; dynamo on GPT-2's DynamicCache).
    """
    import inspect

    import torch

    from harness.frameworks.torch import import_torchvision

    import_torchvision()
    import transformers

    kw = spec["kwargs"]
    config = getattr(transformers, kw["config"])(**kw.get("config_kwargs", {}))
    inner = getattr(transformers, kw["model"])(config)
    field = kw.get("output", "logits")
    two = len(spec["inputs"]) == 2
    takes_cache = "use_cache" in inspect.signature(inner.forward).parameters

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def _call(self, x, named):
            if takes_cache:
                named["use_cache"] = False
            key = "pixel_values" if x.dtype.is_floating_point else "input_ids"
            return getattr(self.inner(**{key: x}, **named, return_dict=True), field)

    class One(Wrapped):
        def forward(self, x):
            return self._call(x, {})

    class Two(Wrapped):  # explicit arity: torch.export matches dynamic_shapes to the signature
        def forward(self, x, decoder_input_ids):
            return self._call(x, {"decoder_input_ids": decoder_input_ids})

    return Two() if two else One()


@register_builder("torch")
def user_model(spec):
    """A user's model (:mod:`harness.spec.usermodel`): the factory's module, with a ``.pth`` state dict."""
    import torch

    from .factory import call_factory

    kw = spec["kwargs"]
    model = call_factory(kw)
    if kw.get("weights"):
        model.load_state_dict(torch.load(kw["weights"], map_location="cpu", weights_only=True))
    return model
