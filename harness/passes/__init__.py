"""The post-export pass extension point: model in, model out, between export and runtime.

A pass is one module ``harness/passes/<name>.py`` that defines a class with the
:class:`Pass` interface and registers it with :func:`register_pass`. The case's
``post_pass`` field names it (``none``, the default, applies nothing and is
left out of case ids). The pipeline checks the pass's output with
``onnx.checker`` again before the runtime sees it, and when the passed model
fails where the exported one passes, the case is ``pass-changed-result``.
"""

from __future__ import annotations

import pkgutil
from typing import Any, Protocol

from harness.core.named import Registry

from harness.core.case import DEFAULT_PASS as NONE  # noqa: F401 - the pass of a case that names none


class Pass(Protocol):
    """What the pipeline needs from a post-export pass."""

    name: str

    def apply(self, model: Any, inputs: dict | None = None) -> Any:
        """Return the transformed ``onnx.ModelProto``.

        ``model`` is the pass's own copy. ``inputs`` maps the graph's input
        names to the case's first input set, for a pass that checks itself by
        running the model (e.g. onnxsim). Raise :class:`PassFailed` when the
        pass itself reports a failure.
        """


class PassFailed(Exception):
    """The pass reported its own failure (e.g. onnxsim's check); status ``pass-error``."""


PASSES = Registry("post-export pass", Pass, __name__)

#: class or instance decorator: register under ``obj.name``
register_pass = PASSES.register

#: ``get(name)``: the post-export pass called ``name``, importing ``harness.passes.<name>`` on first use
#: (ImportError when the library behind it is missing, KeyError when no module registers that name)
get = PASSES.load


def names() -> set[str]:
    """Passes a case may name (``none`` too), found without importing any: this package's modules and those
    registered so far."""
    return {NONE} | {m.name for m in pkgutil.iter_modules(__path__)} | set(PASSES)
