"""The ``call:`` form of a matrix entry: one framework function applied to the case's inputs.

Shared by every framework adapter, so that ``call:``, ``args``, ``kwargs``, ``pack`` and
``tensor_kwargs``, ``tuple_kwargs`` mean the same everywhere. An adapter names only its aliases (its
``call_aliases``, e.g. ``{"tf": "tensorflow"}``) and wraps a :class:`Call` in its own module
type (a ``paddle.nn.Layer``, a ``torch.nn.Module``, a Keras function, a OneFlow ``nn.Module``).
The same aliases resolve the targets in the pre-check (:func:`unresolved`), which runs in the
framework's own runner before the first case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import registry

#: The spec fields of the ``call:`` form (the schema's names).
FIELDS = ("call", "args", "kwargs", "pack", "tensor_kwargs", "tuple_kwargs")


def resolve(dotted: str, aliases: dict[str, str] | None = None) -> Callable:
    """``'tf.nn.relu'`` -> that function, through ``aliases``; raises ImportError or AttributeError."""
    return registry.resolve_dotted(dotted, aliases)


@dataclass
class Call:
    """``fn(*inputs, *args, **kwargs)``, with two forms of the inputs.

    ``tensor_kwargs``: the last inputs are these keyword arguments instead (an attribute given as
    a tensor, e.g. ``axis``); ``pack='list'``: the other inputs go in as one list. A matrix holds
    JSON values only: ``tuple_kwargs`` names the kwargs whose list value is passed as a tuple.
    """

    fn: Callable
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    pack: str | None = None
    tensor_kwargs: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: dict, aliases: dict[str, str] | None = None) -> "Call":
        """The call of a case spec (``spec['call']`` resolved through ``aliases``)."""
        kwargs = dict(spec.get("kwargs", {}))
        for name in spec.get("tuple_kwargs", ()):
            kwargs[name] = tuple(kwargs[name])
        return cls(resolve(spec["call"], aliases), list(spec.get("args", [])), kwargs,
                   spec.get("pack"), tuple(spec.get("tensor_kwargs", ())))

    def __call__(self, *xs: Any) -> Any:
        split = len(xs) - len(self.tensor_kwargs)
        xs, named = list(xs[:split]), dict(zip(self.tensor_kwargs, xs[split:]))
        xs = [xs] if self.pack == "list" else xs
        return self.fn(*xs, *self.args, **self.kwargs, **named)


def unresolved(targets, aliases: dict[str, str] | None = None) -> dict[str, str]:
    """The ``call:`` targets that do not resolve here, through ``aliases`` (target -> why).

    Runs in the framework's own runner, where the framework is installed: a target whose
    first segment does not import is a typo like any other.
    """
    bad = {}
    for target in targets:
        try:
            resolve(target, aliases)
        except (ImportError, AttributeError) as exc:
            bad[target] = f"{type(exc).__name__}: {exc}"
    return bad
