"""Test-only pytest plugin: the fake framework is declared to run in an environment that does not exist.

Loaded with ``-p tests.missing_env``: it wraps ``harness.isolation.environments.declared`` so
that, beside the real declarations, ``fake`` runs in ``<tmp>/no-such-env`` (from
``HARNESS_MISSING_ENV_DIR``), as TensorFlow does on a machine where
``python -m harness envs create`` was never run.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.isolation import environments

_declared = environments.declared


def _with_missing(pyproject=None):
    out = dict(_declared(pyproject))
    where = Path(os.environ.get("HARNESS_MISSING_ENV_DIR", "/nonexistent")) / "no-such-env"
    out["fake-env"] = environments.Environment(name="fake-env", frameworks=("fake",), python="3.11", path=where,
                                               requirements=("numpy==2.4.6",))
    return out


environments.declared = _with_missing
