"""Test-only matrix plugin: the framework ``brokenfw`` (tests/fake_frameworks/brokenfw.py).

Like a real framework, its adapter is not imported here (the controller imports
matrix plugins) but by the runner, through ``registry.load_framework``: this
module only puts tests/fake_frameworks on the path of ``harness.frameworks``
and registers the builder.
"""

from __future__ import annotations

from pathlib import Path

import harness.frameworks
from harness.core import registry
from tests import fakes

_HERE = str(Path(__file__).resolve().parent / "fake_frameworks")
if _HERE not in harness.frameworks.__path__:
    harness.frameworks.__path__.append(_HERE)

registry.register_builder("brokenfw", "relu")(fakes.relu)
