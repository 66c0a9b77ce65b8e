"""Paddle builders for kernels that a plain ``call:`` cannot express.

Each builder takes the case spec (``inputs``, ``args``, ``kwargs`` from YAML)
and returns a ``paddle.nn.Layer`` whose ``forward`` takes the spec's inputs in
order. Layers are plain classes with explicit ``forward(self, x, ...)``
signatures: ``paddle.jit.save`` translates the forward's source code.

Builders are needed for kernels with weights (seeded by the framework adapter
before the builder runs), with constants created inside the graph, or reached
only through ``paddle._C_ops``.

Paddle is imported inside the builders: the pytest controller imports this
module only to learn the builder names.
"""

from __future__ import annotations

from harness.core.registry import register_builder, register_call_namespaces

#: a matrix's `call:` targets of paddle start with these names (see registry.call_allowed)
register_call_namespaces("paddle", "paddle")


def _kwargs(spec: dict) -> dict:
    return dict(spec.get("kwargs", {}))


def _channels(spec: dict) -> int:
    return spec["inputs"][0]["shape"][1]


def _randomize(param, low: float = -1.0, high: float = 1.0) -> None:
    """Overwrite a parameter or buffer with seeded uniform values (paddle's seed is set)."""
    import paddle

    param.set_value(paddle.uniform(param.shape, dtype=param.dtype, min=low, max=high))


@register_builder("paddle")
def conv2d(spec):
    """``nn.Conv2D`` with seeded weights; kwargs: out_channels, kernel_size, stride, padding,
    dilation, groups (groups == in_channels gives ``depthwise_conv2d``)."""
    import paddle

    class Conv(paddle.nn.Layer):
        def __init__(self, in_ch, out_ch, k, kw):
            super().__init__()
            self.conv = paddle.nn.Conv2D(in_ch, out_ch, k, **kw)

        def forward(self, x):
            return self.conv(x)

    kw = _kwargs(spec)
    return Conv(_channels(spec), kw.pop("out_channels"), kw.pop("kernel_size"), kw)


@register_builder("paddle")
def conv2d_transpose(spec):
    """``nn.Conv2DTranspose`` with seeded weights; kwargs: out_channels, kernel_size, stride,
    padding, output_padding, dilation, groups."""
    import paddle

    class ConvT(paddle.nn.Layer):
        def __init__(self, in_ch, out_ch, k, kw):
            super().__init__()
            self.conv = paddle.nn.Conv2DTranspose(in_ch, out_ch, k, **kw)

        def forward(self, x):
            return self.conv(x)

    kw = _kwargs(spec)
    return ConvT(_channels(spec), kw.pop("out_channels"), kw.pop("kernel_size"), kw)


@register_builder("paddle")
def batch_norm(spec):
    """``nn.BatchNorm2D`` in eval mode with random scale, bias, running mean and variance;
    kwargs: epsilon, momentum."""
    import paddle

    class BN(paddle.nn.Layer):
        def __init__(self, ch, kw):
            super().__init__()
            self.bn = paddle.nn.BatchNorm2D(ch, **kw)
            _randomize(self.bn.weight, 0.5, 1.5)
            _randomize(self.bn.bias)
            _randomize(self.bn._mean, -0.5, 0.5)
            _randomize(self.bn._variance, 0.5, 2.0)

        def forward(self, x):
            return self.bn(x)

    return BN(_channels(spec), _kwargs(spec))


@register_builder("paddle")
def instance_norm(spec):
    """``nn.InstanceNorm2D`` with random scale and bias; kwargs: epsilon."""
    import paddle

    class IN(paddle.nn.Layer):
        def __init__(self, ch, kw):
            super().__init__()
            self.norm = paddle.nn.InstanceNorm2D(ch, **kw)
            _randomize(self.norm.scale, 0.5, 1.5)
            _randomize(self.norm.bias)

        def forward(self, x):
            return self.norm(x)

    return IN(_channels(spec), _kwargs(spec))


@register_builder("paddle")
def prelu(spec):
    """``nn.PReLU`` with random slopes; kwargs: mode ``channel`` (one slope per channel) or
    ``all`` (one slope)."""
    import paddle

    class PReLU(paddle.nn.Layer):
        def __init__(self, n):
            super().__init__()
            self.act = paddle.nn.PReLU(num_parameters=n)
            _randomize(self.act._weight, 0.05, 0.5)

        def forward(self, x):
            return self.act(x)

    mode = _kwargs(spec).get("mode", "channel")
    return PReLU(_channels(spec) if mode == "channel" else 1)


@register_builder("paddle")
def linear(spec):
    """``nn.Linear`` (matmul + add), the Paddle 3 successor of the legacy ``mul`` kernel;
    kwargs: out_features, bias (bool)."""
    import paddle

    class Linear(paddle.nn.Layer):
        def __init__(self, n_in, n_out, bias):
            super().__init__()
            self.fc = paddle.nn.Linear(n_in, n_out, bias_attr=None if bias else False)

        def forward(self, x):
            return self.fc(x)

    kw = _kwargs(spec)
    return Linear(spec["inputs"][0]["shape"][-1], kw["out_features"], kw.get("bias", True))


@register_builder("paddle")
def assign_value(spec):
    """``x + paddle.assign(const)``: a constant array built in the graph (``assign_value_``);
    kwargs: value (nested list, broadcastable to x), dtype."""
    import numpy as np
    import paddle

    kw = _kwargs(spec)
    value = np.asarray(kw["value"], dtype=kw.get("dtype", "float32"))

    class Assign(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.value = value

        def forward(self, x):
            c = paddle.assign(self.value)
            return x + c

    return Assign()


@register_builder("paddle")
def fill_constant(spec):
    """``paddle.full`` (``fill_constant``) combined with the input so the graph keeps it;
    kwargs: value, dtype, and either shape (a fixed list: ``x + full``) or
    shape_from_input: true (``full(paddle.shape(x))``, a shape tensor)."""
    import paddle

    kw = _kwargs(spec)

    class FullFixed(paddle.nn.Layer):
        def forward(self, x):
            return x + paddle.full(kw["shape"], kw["value"], dtype=kw.get("dtype", "float32"))

    class FullLike(paddle.nn.Layer):
        def forward(self, x):
            return paddle.full(paddle.shape(x), kw["value"], dtype=kw.get("dtype", "float32"))

    return FullLike() if kw.get("shape_from_input") else FullFixed()


@register_builder("paddle")
def pool2d(spec):
    """2-D pooling through its public functions; kwargs: pool (max, avg, adaptive_avg,
    adaptive_max) plus that function's keyword arguments."""
    import paddle.nn.functional as F
    import paddle

    kw = _kwargs(spec)
    fn = {"max": F.max_pool2d, "avg": F.avg_pool2d, "adaptive_avg": F.adaptive_avg_pool2d,
          "adaptive_max": F.adaptive_max_pool2d}[kw.pop("pool")]

    class Pool(paddle.nn.Layer):
        def forward(self, x):
            return fn(x, **kw)

    return Pool()


@register_builder("paddle")
def box_coder(spec):
    """``paddle.vision.ops.box_coder``; inputs (prior, var, target), or (prior, target) when
    kwargs give ``variance`` as a list of 4 floats; other kwargs: code_type, box_normalized, axis."""
    import paddle
    from paddle.vision.ops import box_coder as fn

    kw = _kwargs(spec)
    variance = kw.pop("variance", None)

    class WithVar(paddle.nn.Layer):
        def forward(self, prior, var, target):
            return fn(prior, var, target, **kw)

    class ListVar(paddle.nn.Layer):
        def forward(self, prior, target):
            return fn(prior, variance, target, **kw)

    return ListVar() if variance is not None else WithVar()


@register_builder("paddle")
def multiclass_nms(spec):
    """``paddle._C_ops.multiclass_nms3(bboxes, scores, rois_num=None, ...)``, the Paddle 3 form of
    ``multiclass_nms``/``multiclass_nms2``; kwargs: score_threshold, nms_top_k, keep_top_k,
    nms_threshold, normalized, nms_eta, background_label, outputs (``out``: the boxes only,
    as multiclass_nms; ``out_index``: boxes and index, as multiclass_nms2)."""
    import paddle

    kw = _kwargs(spec)
    outputs = kw.pop("outputs", "out")
    attrs = (kw.get("score_threshold", 0.05), kw.get("nms_top_k", 100), kw.get("keep_top_k", 20),
             kw.get("nms_threshold", 0.3), kw.get("normalized", True), kw.get("nms_eta", 1.0),
             kw.get("background_label", -1))

    class NMS(paddle.nn.Layer):
        def forward(self, bboxes, scores):
            out, index, _ = paddle._C_ops.multiclass_nms3(bboxes, scores, None, *attrs)
            if outputs == "out_index":
                return out, index
            return out

    return NMS()


@register_builder("paddle")
def norm(spec):
    """``paddle._C_ops.norm(x, axis, epsilon, is_test)`` (the legacy L2 ``norm`` kernel);
    returns the normalised tensor; kwargs: axis, epsilon."""
    import paddle

    kw = _kwargs(spec)

    class Norm(paddle.nn.Layer):
        def forward(self, x):
            out, _ = paddle._C_ops.norm(x, kw.get("axis", 1), kw.get("epsilon", 1e-10), True)
            return out

    return Norm()


@register_builder("paddle")
def im2sequence(spec):
    """``paddle._C_ops.im2sequence(x, None, kernels, strides, paddings, out_stride)`` (no public
    API); kwargs: kernels, strides, paddings, out_stride."""
    import paddle

    kw = _kwargs(spec)

    class Im2Seq(paddle.nn.Layer):
        def forward(self, x):
            return paddle._C_ops.im2sequence(x, None, kw["kernels"], kw.get("strides", [1, 1]),
                                             kw.get("paddings", [0, 0, 0, 0]),
                                             kw.get("out_stride", [1, 1]))

    return Im2Seq()


@register_builder("paddle")
def slice(spec):  # noqa: A001 - the kernel's name
    """``paddle.slice(x, axes, starts, ends)``, or ``paddle.strided_slice`` when kwargs give
    ``strides`` (the slice kernel with steps); ``bounds_from_inputs: true`` takes starts and
    ends from the 2nd and 3rd inputs (the tensor form of the attributes)."""
    import paddle

    kw = _kwargs(spec)
    fn = paddle.strided_slice if "strides" in kw else paddle.slice

    class Slice(paddle.nn.Layer):
        def forward(self, x):
            return fn(x, **kw)

    class SliceTensorBounds(paddle.nn.Layer):
        """starts and ends arrive as the model's 2nd and 3rd inputs (int tensors), not as lists."""

        def forward(self, x, starts, ends):
            return fn(x, starts=starts, ends=ends, **kw)

    if kw.pop("bounds_from_inputs", False):
        return SliceTensorBounds()
    return Slice()
