"""Every Paddle YAML entry reaches a model, and every Paddle builder is used.

Generic over the matrix files of ``cases/`` and ``cases/models/``: any file whose
``framework`` is paddle (e.g. ``paddle.yaml`` for kernels, ``paddle_models.yaml``
for small networks, ``models/paddle.yaml`` for whole models) takes part; the
user-model builder is used by the matrix ``python -m harness model`` writes.
Resolving a ``call:`` imports paddle; without it those checks skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.core import registry
from harness.spec.matrix import matrix_files
from harness.spec import usermodel

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK = "paddle"


def _paddle_matrices() -> list[tuple[Path, dict]]:
    out = []
    for path in matrix_files(ROOT / "cases") + matrix_files(ROOT / "cases" / "models"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("framework") == FRAMEWORK:
            out.append((path, data))
    return out


def _entries() -> list[tuple[str, dict]]:
    return [(f"{path.name}:{e['kernel']}", e) for path, data in _paddle_matrices()
            for e in data.get("entries", [])]


def _load_builders() -> None:
    plugins = tuple(p for _, data in _paddle_matrices() for p in data.get("plugins", ()))
    registry.load_builders(FRAMEWORK, plugins)


ENTRIES = _entries()


def test_there_are_paddle_entries():
    assert ENTRIES, "no cases/*.yaml file has framework: paddle"


@pytest.mark.parametrize("entry", [e for _, e in ENTRIES], ids=[i for i, _ in ENTRIES])
def test_entry_reaches_a_model(entry):
    """An entry names a registered builder, a callable ``call``, or why it is unavailable."""
    if entry.get("unavailable"):
        assert len(entry["unavailable"]) >= 3
        return
    assert ("builder" in entry) != ("call" in entry), "give exactly one of builder / call"
    if "builder" in entry:
        _load_builders()
        assert (FRAMEWORK, entry["builder"]) in registry.BUILDERS, \
            f"builder {entry['builder']!r} is not registered"
    else:
        pytest.importorskip(FRAMEWORK)
        fn = registry.resolve_dotted(entry["call"])
        assert callable(fn), f"{entry['call']} is not callable"


def test_every_builder_is_used():
    """A registered Paddle builder that no entry names is dead code (or a forgotten entry)."""
    _load_builders()
    used = {e["builder"] for _, e in ENTRIES if "builder" in e} | {usermodel.BUILDER}
    registered = {name for fw, name in registry.BUILDERS if fw == FRAMEWORK}
    assert not registered - used, f"builders used by no entry: {sorted(registered - used)}"
