"""One registry type for every extension point: frameworks, exporters, builders, runtimes, passes.

A registry maps a key (a name; ``(framework, name)`` for exporters and builders) to the registered
object. It checks at registration that the object has every member of its protocol, so an
incomplete extension fails when its module is imported, with one line naming what it lacks,
instead of at the first case that reads the missing member. Where a registry knows its package
(``harness.runtimes``), :meth:`Registry.load` imports ``<package>.<name>`` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .errors import HarnessError


class IncompleteExtension(HarnessError, TypeError):
    """A registered extension lacks a member of its protocol."""


def protocol_members(protocol: type) -> tuple[str, ...]:
    """The names a ``typing.Protocol`` class declares (annotated attributes and methods)."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    return tuple(sorted(names))


class Registry(dict):
    """``key -> instance`` of one kind of extension; see the module docstring."""

    def __init__(self, what: str, protocol: type | None = None, package: str | None = None):
        super().__init__()
        self.what = what
        self.protocol = protocol
        self.package = package

    def check(self, inst: Any) -> None:
        """Raise :class:`IncompleteExtension` when ``inst`` lacks a member of the protocol."""
        if self.protocol is None:
            return
        missing = [m for m in protocol_members(self.protocol) if not hasattr(inst, m)]
        if missing:
            raise IncompleteExtension(f"{self.what} {getattr(inst, 'name', inst)!r} "
                                      f"({type(inst).__module__}.{type(inst).__qualname__}) lacks "
                                      f"{', '.join(missing)} of the {self.protocol.__name__} protocol")

    def add(self, key: Any, obj: Any) -> Any:
        """Register ``obj`` (a class is instantiated) under ``key``; return ``obj``."""
        inst = obj() if isinstance(obj, type) else obj
        self.check(inst)
        self[key] = inst
        return obj

    def register(self, obj: Any) -> Any:
        """Class or instance decorator: register an instance under its ``name``."""
        inst = obj() if isinstance(obj, type) else obj
        self.add(inst.name, inst)
        return obj

    def register_under(self, prefix: str, name: str | None = None) -> Callable:
        """Decorator registering under ``(prefix, name or obj.name or fn.__name__)`` (exporters, builders)."""

        def deco(obj):
            inst = obj() if isinstance(obj, type) else obj
            key = name or getattr(inst, "name", None) or obj.__name__
            self.add((prefix, key), inst)
            return obj

        return deco

    def load(self, name: str) -> Any:
        """The extension called ``name``, importing its module on first use.

        Raises ImportError when its module or the library behind it is missing,
        KeyError when no module registers that name.
        """
        if name not in self:
            if self.package is None:
                raise KeyError(f"no {self.what} called {name!r}")
            module = f"{self.package}.{name}"
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                raise KeyError(f"no {self.what} called {name!r}") from None
        return self[name]

