"""PyTorch builders for kernels that a plain ``call:`` cannot express.

Each builder takes the case spec (``inputs``, ``args``, ``kwargs`` from YAML)
and returns a ``torch.nn.Module`` whose ``forward`` takes the spec's inputs in
order. Weights are drawn after the adapter's ``torch.manual_seed(seed)``.

torch is imported inside the builders: the pytest controller imports this
module only to learn the builder names.
"""

from __future__ import annotations

from harness.core.registry import register_builder, register_call_namespaces

#: a matrix's `call:` targets of torch start with these names (see registry.call_allowed)
register_call_namespaces("torch", "torch")


def _in_channels(spec) -> int:
    return spec["inputs"][0]["shape"][1]


def _one(module_factory):
    """A Module that applies one sub-module to its single input."""
    import torch

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.op = module_factory()

        def forward(self, x):
            return self.op(x)

    return One()


@register_builder("torch")
def conv2d(spec):
    """``nn.Conv2d``; kwargs: out_channels, kernel_size, stride, padding, dilation, groups, bias."""
    import torch

    kw = dict(spec.get("kwargs", {}))
    return _one(lambda: torch.nn.Conv2d(_in_channels(spec), kw.pop("out_channels"), kw.pop("kernel_size"), **kw))


@register_builder("torch")
def conv_transpose2d(spec):
    """``nn.ConvTranspose2d``; kwargs as ``conv2d`` plus output_padding."""
    import torch

    kw = dict(spec.get("kwargs", {}))
    return _one(lambda: torch.nn.ConvTranspose2d(_in_channels(spec), kw.pop("out_channels"),
                                                 kw.pop("kernel_size"), **kw))


def _randomize_norm(norm) -> None:
    import torch

    with torch.no_grad():
        if getattr(norm, "weight", None) is not None:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
        if getattr(norm, "running_mean", None) is not None:
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)


@register_builder("torch")
def batch_norm(spec):
    """``nn.BatchNorm2d`` in eval mode with random running statistics and affine weights."""
    import torch

    kw = spec.get("kwargs", {})

    def make():
        bn = torch.nn.BatchNorm2d(_in_channels(spec), **kw)
        _randomize_norm(bn)
        return bn

    return _one(make)


@register_builder("torch")
def instance_norm(spec):
    """``nn.InstanceNorm2d`` (affine by default) with random affine weights."""
    import torch

    kw = {"affine": True, **spec.get("kwargs", {})}

    def make():
        norm = torch.nn.InstanceNorm2d(_in_channels(spec), **kw)
        _randomize_norm(norm)
        return norm

    return _one(make)


@register_builder("torch")
def prelu(spec):
    """``nn.PReLU``; kwargs: num_parameters (1 or the channel count)."""
    import torch

    kw = spec.get("kwargs", {})

    def make():
        m = torch.nn.PReLU(**kw)
        with torch.no_grad():
            m.weight.uniform_(0.05, 0.5)
        return m

    return _one(make)


@register_builder("torch")
def index_select(spec):
    """``torch.index_select(x, dim, index)`` with the index as the second input; kwargs: dim."""
    import torch

    dim = spec["kwargs"]["dim"]

    class IndexSelect(torch.nn.Module):
        def forward(self, x, index):
            return torch.index_select(x, dim, index)

    return IndexSelect()


@register_builder("torch")
def gather(spec):
    """``torch.gather(x, dim, index)`` with the (same-rank) index as the second input; kwargs: dim."""
    import torch

    dim = spec["kwargs"]["dim"]

    class Gather(torch.nn.Module):
        def forward(self, x, index):
            return torch.gather(x, dim, index)

    return Gather()


@register_builder("torch")
def strided_slice(spec):
    """``x[s0, s1, ...]`` with one ``[start, stop, step]`` per leading axis (kwargs: slices)."""
    import torch

    slices = tuple(slice(*s) for s in spec["kwargs"]["slices"])

    class Slice(torch.nn.Module):
        def forward(self, x):
            return x[slices]

    return Slice()


@register_builder("torch")
def add_n(spec):
    """The sum of all inputs (Paddle's ``add_n`` / ``sum`` kernel): ``torch.stack(xs).sum(0)``."""
    import torch

    class AddN(torch.nn.Module):
        def forward(self, x, y, z):
            return torch.stack([x, y, z]).sum(0)

    return AddN()


@register_builder("torch")
def matmul(spec):
    """``torch.matmul`` with optional transposes of the last two axes; kwargs: transpose_x, transpose_y."""
    import torch

    tx = bool(spec.get("kwargs", {}).get("transpose_x"))
    ty = bool(spec.get("kwargs", {}).get("transpose_y"))

    class MatMul(torch.nn.Module):
        def forward(self, x, y):
            if tx:
                x = x.transpose(-1, -2)
            if ty:
                y = y.transpose(-1, -2)
            return torch.matmul(x, y)

    return MatMul()


def _dtype(name: str):
    import torch

    return getattr(torch, name)


@register_builder("torch")
def cast(spec):
    """``x.to(dtype)``; kwargs: dtype (a torch dtype name, e.g. int32)."""
    import torch

    dtype = _dtype(spec["kwargs"]["dtype"])

    class Cast(torch.nn.Module):
        def forward(self, x):
            return x.to(dtype)

    return Cast()


@register_builder("torch")
def full_batch(spec):
    """``torch.full((x.shape[0], *shape), value)``: a filled tensor sized by the dynamic batch."""
    import torch

    shape = list(spec["kwargs"]["shape"])
    value = spec["kwargs"]["value"]

    class Full(torch.nn.Module):
        def forward(self, x):
            return torch.full([x.shape[0]] + shape, value, dtype=x.dtype)

    return Full()
