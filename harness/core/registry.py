"""Registries of frameworks, exporters and builders, and the framework and exporter protocols.

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
from typing import Any, Protocol

import numpy as np

from .named import Registry


class Framework(Protocol):
    """What the pipeline needs from a framework adapter (subclass :class:`FrameworkAdapter`).

    Its module also defines ``REPLAY_REQUIRES``, the pip packages a repro bundle of its cases
    needs (read from the source by :mod:`harness.core.repro`, without importing the framework).
    """

    name: str
    #: ``call:`` prefixes the matrix may use for the framework's package, e.g. ``{"tf": "tensorflow"}``
    call_aliases: dict[str, str]
    #: regexes of the framework's own "no kernel for this dtype here" messages (a dtype skip, not a failure)
    dtype_unsupported: tuple[str, ...]

    def build(self, case_spec: dict, seed: int) -> Any:
        """Build the tiny model of a case (eval mode, seeded weights)."""

    def reference(self, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the model in the framework itself; outputs flattened to numpy."""

    def versions(self) -> dict[str, str]:
        """Package versions for the environment probe and the report (``{"paddlepaddle": "3.3.1"}``)."""

    def warm_up(self, workdir: str) -> None:
        """Pay first-call costs once in the runner master, before it forks servers (may do nothing)."""

    def set_device(self, device: str) -> None:
        """Bind models and the framework output to ``cpu`` or ``cuda:N``; raise when it cannot."""


class FrameworkAdapter:
    """Defaults of the optional parts of :class:`Framework`; an adapter overrides what it has."""

    name = ""
    call_aliases: dict[str, str] = {}
    dtype_unsupported: tuple[str, ...] = ()

    def versions(self) -> dict[str, str]:
        return {}

    def warm_up(self, workdir: str) -> None:
        return None

    def set_device(self, device: str) -> None:
        return None  # an adapter without device binding computes its framework output where it is


class Exporter(Protocol):
    """Turns a built model into an ONNX file at a requested opset."""

    name: str

    def export(self, model: Any, case: Any, workdir: str, cache: dict) -> str:
        """Write the ONNX model under ``workdir`` and return its path.

        ``cache`` lives as long as the model (one op variant) and may hold work
        shared by every opset, e.g. Paddle's saved static model.
        """


FRAMEWORKS = Registry("framework", Framework, "harness.frameworks")
EXPORTERS = Registry("exporter", Exporter)
BUILDERS = Registry("builder")
#: framework -> the top-level names a matrix's ``call:`` may start with (its own packages)
CALL_NAMESPACES: dict[str, tuple[str, ...]] = {}
#: where a ``call:`` may point whatever the framework: the harness's own builders
HARNESS_CALLS = ("harness.builders",)


def register_framework(obj):
    """Class or instance decorator: register a framework adapter under ``obj.name``."""
    return FRAMEWORKS.register(obj)


def register_exporter(framework: str):
    """Class decorator: register an exporter of ``framework`` under its ``name``."""
    return EXPORTERS.register_under(framework)


def register_builder(framework: str, name: str | None = None):
    """Function decorator: register a model builder for a YAML ``builder:`` name (default: its own)."""
    return BUILDERS.register_under(framework, name)


def framework_names() -> tuple[str, ...]:
    """Every framework the harness has: an adapter module in ``harness/frameworks/`` (found without
    importing a framework; plugins' frameworks, e.g. the tests' fakes, are not listed); the order of
    :data:`FRAMEWORK_ORDER` first."""
    root = Path(__file__).resolve().parents[2]
    found = {p.stem for p in (root / "harness" / "frameworks").glob("*.py") if p.stem != "__init__"}
    rank = {n: i for i, n in enumerate(FRAMEWORK_ORDER)}
    return tuple(sorted(found, key=lambda n: (rank.get(n, len(rank)), n)))


#: How reports order the frameworks (the seed's table first); others follow by name.
FRAMEWORK_ORDER = ("paddle", "torch", "tensorflow", "oneflow")
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
    folder = Path(__file__).resolve().parents[1] / "builders"
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
