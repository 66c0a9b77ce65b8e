"""A registry of named extensions whose modules are found by name (runtimes, post-export passes)."""

from __future__ import annotations

import importlib
from typing import Any


class NamedRegistry(dict):
    """``name -> instance``; :meth:`load` imports ``<package>.<name>`` on first use so it registers itself."""

    def __init__(self, package: str, what: str):
        super().__init__()
        self.package = package
        self.what = what

    def register(self, obj: Any) -> Any:
        """Class or instance decorator: register an instance under its ``name``."""
        inst = obj() if isinstance(obj, type) else obj
        self[inst.name] = inst
        return obj

    def load(self, name: str) -> Any:
        """The extension called ``name``, importing its module on first use.

        Raises ImportError when its module or the library behind it is missing,
        KeyError when no module registers that name.
        """
        if name not in self:
            module = f"{self.package}.{name}"
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                raise KeyError(f"no {self.what} called {name!r}") from None
        return self[name]
