"""Registries of frameworks, exporters and builders.

A framework adapter, an exporter or a builder registers itself with a
decorator when its module is imported. Modules are found by convention:

* ``harness/builders/<framework>_*.py`` hold the builders of a framework (e.g.
  ``paddle_ops.py`` for operators, ``paddle_models.py`` for model-level
  cases); they must not import the framework at module level (the pytest
  controller imports them to check that every YAML entry has a builder);
* ``harness.frameworks.<framework>`` holds the framework adapter and its
  exporters; only case-running processes import it.

Extra modules (e.g. the fakes of the harness's own tests) are named in a
matrix file's ``plugins:`` list and imported the same way.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np


class Framework(Protocol):
    """What the pipeline needs from a framework."""

    name: str

    def build(self, case_spec: dict, seed: int) -> Any:
        """Build the tiny model of a case (eval mode, seeded weights)."""

    def reference(self, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the model in the framework itself; outputs flattened to numpy."""


class Exporter(Protocol):
    """Turns a built model into an ONNX file at a requested opset."""

    name: str

    def export(self, model: Any, case: Any, workdir: str, cache: dict) -> str:
        """Write the ONNX model under ``workdir`` and return its path.

        ``cache`` lives as long as the model (one op variant) and may hold work
        shared by every opset, e.g. Paddle's saved static model.
        """


FRAMEWORKS: dict[str, Framework] = {}
EXPORTERS: dict[tuple[str, str], Exporter] = {}
BUILDERS: dict[tuple[str, str], Callable] = {}
#: framework -> the top-level names a matrix's ``call:`` may start with (its own packages)
CALL_NAMESPACES: dict[str, tuple[str, ...]] = {}
#: where a ``call:`` may point whatever the framework: the harness's own builders
HARNESS_CALLS = ("harness.builders",)


def register_framework(obj):
    """Class or instance decorator: register a framework adapter under ``obj.name``."""
    inst = obj() if isinstance(obj, type) else obj
    FRAMEWORKS[inst.name] = inst
    return obj


def register_exporter(framework: str):
    """Class decorator: register an exporter of ``framework`` under its ``name``."""

    def deco(cls):
        inst = cls() if isinstance(cls, type) else cls
        EXPORTERS[(framework, inst.name)] = inst
        return cls

    return deco


def register_builder(framework: str, name: str | None = None):
    """Function decorator: register a model builder for a YAML ``builder:`` name."""

    def deco(fn):
        BUILDERS[(framework, name or fn.__name__)] = fn
        return fn

    return deco


def register_call_namespaces(framework: str, *names: str) -> None:
    """Let ``call:`` targets of ``framework`` start with ``names`` (e.g. ``"tf"``, ``"tensorflow"``).

    A matrix is trusted code, but a typo or a pasted entry must not call
    ``os.system``: without ``--allow-any-call`` a target must start with one of
    these names or with :data:`HARNESS_CALLS`. Called by the builder modules.
    """
    CALL_NAMESPACES[framework] = tuple(dict.fromkeys((*CALL_NAMESPACES.get(framework, ()), *names)))


def call_allowed(framework: str, target: str) -> bool:
    """Whether ``target`` lies in ``framework``'s namespaces or the harness builders."""
    return any(target == ns or target.startswith(ns + ".")
               for ns in (*CALL_NAMESPACES.get(framework, ()), *HARNESS_CALLS))


def load_builders(framework: str, plugins: tuple[str, ...] = ()) -> None:
    """Import the builder module of ``framework`` (cheap: no framework import)."""
    folder = Path(__file__).resolve().parent / "builders"
    for path in sorted(folder.glob(f"{framework}_*.py")):
        importlib.import_module(f"harness.builders.{path.stem}")
    for mod in plugins:
        importlib.import_module(mod)


def load_framework(framework: str, plugins: tuple[str, ...] = ()) -> Framework:
    """Import everything needed to run cases of ``framework`` and return its adapter."""
    load_builders(framework, plugins)
    if framework not in FRAMEWORKS:
        _import_optional(f"harness.frameworks.{framework}", must_exist=True)
    return FRAMEWORKS[framework]


def _import_optional(mod: str, must_exist: bool) -> None:
    try:
        importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        if must_exist or exc.name not in (mod, mod.rsplit(".", 1)[0]):
            raise


def resolve_dotted(dotted: str, aliases: dict[str, str] | None = None):
    """``'torch.nn.functional.relu6'`` -> that object: the longest importable module prefix, then attributes.

    ``aliases`` renames the first part (e.g. ``{"tf": "tensorflow"}``). Raises ImportError when no prefix
    imports, AttributeError when an attribute is missing.
    """
    parts = dotted.split(".")
    if aliases and parts[0] in aliases:
        parts[0] = aliases[parts[0]]
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module of {dotted!r} can be imported")
