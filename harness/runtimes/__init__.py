"""The runtime extension point: what runs an exported ONNX model.

A runtime is one module ``harness/runtimes/<name>.py`` that defines a class
with the :class:`Runtime` interface and registers it with
:func:`register_runtime`. The case's ``runtime`` field names it (``ort`` by
default); the module is imported on first use, only in case-running
processes. The interface follows ONNX's backend API: ``prepare`` a model for a
device, then ``run`` inputs through the prepared session.
"""

from __future__ import annotations

import pkgutil
from typing import Any, Protocol

import numpy as np

from harness.core.named import Registry

from harness.core.case import DEFAULT_RUNTIME as DEFAULT  # noqa: F401 - the runtime of a case that names none


class Unsupported(Exception):
    """The runtime cannot load the model's opset or one of its operators (status ``runtime-unsupported``)."""


class Crashed(Exception):
    """The process that runs the model for this runtime died (a native abort): status ``crash``.

    Raised by runtimes that run in a server process of their own (see
    :mod:`harness.runtimes._remote`); a runtime loaded in the case server
    itself crashes that server, which the runner records the same way.
    """


class Session(Protocol):
    """A model prepared by a runtime for one device."""

    #: what actually runs the model, e.g. ``CPUExecutionProvider`` (for the record)
    provider: str | None
    #: None when the session runs where the case asked; else why not (e.g. fell back to CPU)
    fallback: str | None

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the model on positional inputs and return its outputs in order."""


class Runtime(Protocol):
    """What the pipeline needs from a runtime.

    Its module may also define ``REPLAY_REQUIRES``, the pip packages a repro bundle of its cases
    needs besides numpy, onnx and onnxruntime (read from the source, without importing it).
    """

    name: str
    #: the devices it runs cases on (a case on another is skipped); None: wherever ORT's providers run
    devices: tuple[str, ...] | None

    def prepare(self, model: Any, path: str, setting: Any) -> Session:
        """Load ``model`` (an ``onnx.ModelProto``, also saved at ``path``) for ``setting``'s device.

        ``setting`` is a :class:`harness.core.devices.DeviceSetting`. Raise
        :class:`Unsupported` when the runtime cannot load an opset or operator.
        """

    def unsupported(self, exc: BaseException) -> bool:
        """Whether an error of ``prepare`` or ``run`` means an unsupported opset or operator."""

    # Optional: ``unavailable() -> str | None``, why the runtime cannot run here at all (its
    # environment or device is missing); its cases are then ``skipped`` with that reason.


RUNTIMES = Registry("runtime", Runtime, __name__)

#: class or instance decorator: register under ``obj.name``
register_runtime = RUNTIMES.register

#: ``get(name)``: the runtime called ``name``, importing ``harness.runtimes.<name>`` on first use
#: (ImportError when the library behind it is missing, KeyError when no module registers that name)
get = RUNTIMES.load


def names() -> set[str]:
    """Runtimes a case may name, found without importing any: this package's modules and those registered so far."""
    # modules starting with "_" are the runtime servers' machinery, not runtimes
    return {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")} | set(RUNTIMES)


def every() -> tuple[str, ...]:
    """``--runtimes all``: the default runtime first, the reference evaluator last, the others by name."""
    rest = sorted(names() - {DEFAULT, "reference"})
    return (DEFAULT, *rest, *(("reference",) if "reference" in names() else ()))
