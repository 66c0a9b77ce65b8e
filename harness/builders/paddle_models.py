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


# -- whole models of paddle.vision.models (cases/models/paddle.yaml) ------------------------------

def calibrate_norms(layer, spec: dict) -> None:
    """Set every BatchNorm's running statistics to those of one calibration batch.

    Random weights with the default statistics (mean 0, variance 1) make a deep
    network's outputs explode (ResNet50: |y| ~ 4782) or vanish (MobileNetV3-small:
    ~4e-7): a comparison on them proves nothing. One forward pass in training mode
    with momentum 0 stores the batch's own mean and variance, so every BatchNorm
    normalises its input and the outputs are O(1). The calibration batch (4
    samples, a seed of its own) is not one of the case's input sets.
    """
    import numpy as np
    import paddle

    from harness.core.inputs import make_inputs

    norms = [m for m in layer.sublayers(include_self=True) if isinstance(m, paddle.nn.layer.norm._BatchNormBase)]
    if not norms:
        return
    for m in norms:
        m._momentum = 0.0
    seed = int(np.random.randint(0, 2**31 - 1))  # seeded by the adapter from the case's seed
    xs = [paddle.to_tensor(x) for x in make_inputs(spec["inputs"], seed, batch=4)]
    layer.train()
    with paddle.no_grad():
        layer(*xs)
    layer.eval()


@register_builder("paddle")
def vision_model(spec):
    """``paddle.vision.models.<arch>(**kwargs)`` with random weights and calibrated BatchNorms.

    kwargs: ``arch`` and the constructor's own keyword arguments (e.g. ``num_classes``).
    """
    import paddle.vision.models as models

    kw = dict(spec["kwargs"])
    layer = getattr(models, kw.pop("arch"))(pretrained=False, **kw)
    calibrate_norms(layer, spec)
    return layer


@register_builder("paddle")
def inference_folder(spec):
    """Seed 000's path: a ``vision_model`` saved as an inference model folder and run by Paddle Inference.

    The folder (``paddle.jit.save``: ``inference.json`` + ``inference.pdiparams``)
    is what the ``cli`` exporter converts with the ``paddle2onnx`` command line;
    the reference is the ``paddle.inference`` predictor on that folder, not the
    dygraph layer. kwargs as for ``vision_model``.
    """
    from harness.frameworks.paddle import InferenceModel

    return InferenceModel.save(vision_model(spec), spec)


@register_builder("paddle")
def user_model(spec):
    """A user's model (:mod:`harness.spec.usermodel`): the factory's layer with its weights, or a saved
    inference folder (run by Paddle Inference)."""
    import paddle

    from harness.frameworks.paddle import InferenceModel
    from .factory import call_factory

    kw = spec["kwargs"]
    if kw.get("saved"):
        return InferenceModel(kw["saved"])
    layer = call_factory(kw)
    if kw.get("weights"):
        layer.set_state_dict(paddle.load(kw["weights"]))
    return layer
