"""OneFlow builders for kernels that a plain ``call:`` cannot express.

Each builder takes the case spec and returns a ``oneflow.nn.Module`` whose
``forward`` takes the spec's inputs in order. Weights are drawn after the
adapter's ``oneflow.manual_seed(seed)``.

OneFlow is imported inside the builders (never at module level): the pytest
controller imports this module only to learn the builder names, and the
adapter must load the CUDA libraries before OneFlow's first import.
"""

from __future__ import annotations

from harness.core.registry import register_builder, register_call_namespaces

#: a matrix's `call:` targets of oneflow start with these names (see registry.call_allowed)
register_call_namespaces("oneflow", "flow", "oneflow")


def randomize_norms(module) -> None:
    """Random affine weights and running statistics for every norm layer (eval mode)."""
    import oneflow as flow

    with flow.no_grad():
        for m in module.modules():
            if getattr(m, "weight", None) is not None and "Norm" in type(m).__name__:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if getattr(m, "running_mean", None) is not None:
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if type(m).__name__ == "PReLU":
                m.weight.uniform_(0.05, 0.5)


def _module(forward, **children):
    import oneflow as flow

    class Wrapped(flow.nn.Module):
        def __init__(self):
            super().__init__()
            for name, child in children.items():
                setattr(self, name, child)

        def forward(self, *xs):
            return forward(self, *xs)

    return Wrapped()


@register_builder("oneflow")
def module(spec):
    """``oneflow.nn.<kwargs.module>(**other kwargs)`` (random norm statistics, PReLU slopes)."""
    import oneflow as flow

    kw = dict(spec.get("kwargs", {}))
    m = getattr(flow.nn, kw.pop("module"))(**kw)
    randomize_norms(m)
    return _module(lambda self, x: self.op(x), op=m)


@register_builder("oneflow")
def index_select(spec):
    """``oneflow.index_select(x, dim, index)`` with the index as the second input; kwargs: dim."""
    import oneflow as flow

    dim = spec["kwargs"]["dim"]
    return _module(lambda self, x, index: flow.index_select(x, dim, index))


@register_builder("oneflow")
def strided_slice(spec):
    """``x[s0, s1, ...]`` with one ``[start, stop, step]`` per leading axis (kwargs: slices)."""
    slices = tuple(slice(*s) for s in spec["kwargs"]["slices"])
    return _module(lambda self, x: x[slices])


@register_builder("oneflow")
def add_n(spec):
    """The sum of all inputs (Paddle's ``sum``) written ``x + y + z``: oneflow 0.9.0 has no public
    ``add_n``, and ``stack(xs).sum(0)`` is no alternative (oneflow-onnx 0.6.2 cannot convert ``stack``)."""

    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    return _module(forward)


@register_builder("oneflow")
def matmul(spec):
    """``oneflow.matmul`` with optional transposes of the last two axes; kwargs: transpose_x, transpose_y."""
    import oneflow as flow

    tx = bool(spec.get("kwargs", {}).get("transpose_x"))
    ty = bool(spec.get("kwargs", {}).get("transpose_y"))

    def forward(self, x, y):
        return flow.matmul(x.transpose(-1, -2) if tx else x, y.transpose(-1, -2) if ty else y)

    return _module(forward)


@register_builder("oneflow")
def cast(spec):
    """``x.to(dtype)``; kwargs: dtype (a oneflow dtype name, e.g. int32)."""
    import oneflow as flow

    dtype = getattr(flow, spec["kwargs"]["dtype"])
    return _module(lambda self, x: x.to(dtype))


@register_builder("oneflow")
def scale(spec):
    """Paddle's ``scale``: ``x * scale + bias``; kwargs: scale, bias."""
    s, b = spec["kwargs"]["scale"], spec["kwargs"]["bias"]
    return _module(lambda self, x: x * s + b)


@register_builder("oneflow")
def assign_value(spec):
    """``x + constant`` with the constant array written into the graph; kwargs: value."""
    import oneflow as flow

    value = spec["kwargs"]["value"]

    def forward(self, x):
        return x + flow.tensor(value, dtype=x.dtype)

    return _module(forward)


@register_builder("oneflow")
def full_batch(spec):
    """``oneflow.full((x.shape[0], *shape), value)``: a filled tensor sized by the batch."""
    import oneflow as flow

    shape, value = list(spec["kwargs"]["shape"]), spec["kwargs"]["value"]
    return _module(lambda self, x: flow.full([x.shape[0]] + shape, value, dtype=x.dtype))


@register_builder("oneflow")
def hard_sigmoid_paddle(spec):
    """Paddle's hard_sigmoid (slope 0.2, offset 0.5): ``clamp(0.2 * x + 0.5, 0, 1)``."""
    import oneflow as flow

    return _module(lambda self, x: flow.clamp(x * 0.2 + 0.5, 0.0, 1.0))


@register_builder("oneflow")
def uniform_like_batch(spec):
    """``oneflow.rand(batch of x, *shape)``: uniform [0, 1) sized by the input's batch, at its dtype;
    kwargs: shape."""
    import oneflow as flow

    shape = list(spec["kwargs"]["shape"])
    return _module(lambda self, x: flow.rand(x.shape[0], *shape, dtype=x.dtype))
