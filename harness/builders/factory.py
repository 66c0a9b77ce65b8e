"""How a user model's factory is found and called (shared by the ``user_model`` builders).

A factory is ``module:function`` (see :mod:`harness.spec.usermodel`); the
module is looked up in the folder of the user's YAML file first. No framework
is imported here.
"""

from __future__ import annotations

import importlib
import sys


def call_factory(kwargs: dict):
    """Import ``kwargs['factory']`` (``kwargs['root']`` first on ``sys.path``) and call it with
    ``kwargs['factory_kwargs']``; return what it returns."""
    root = kwargs["root"]
    if root not in sys.path:
        sys.path.insert(0, root)
    module, _, name = kwargs["factory"].partition(":")
    fn = getattr(importlib.import_module(module), name)
    return fn(**kwargs.get("factory_kwargs", {}))
