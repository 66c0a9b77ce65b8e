"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec.matrix import Scope, load_all

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "data" / "fake.yaml"
TOLERANCES = ROOT / "cases" / "tolerances.yaml"


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def fake_matrix():
    """The expanded fake matrix (tests/data/fake.yaml): one variant per behaviour of the fake exporter."""
    return load_all([FAKE], TOLERANCES, Scope(opsets="declared"))


@pytest.fixture
def run_conformance(pytester):
    """Run the conformance tests in a fresh pytest process; returns pytester's ``RunResult``.

    ``run_conformance("--matrix", path, "-n", "0", ...)``: the harness plugin
    comes from the repository's conftest, as in a user's run. Bundles get no pictures
    (``--no-pictures``: a browser per run) unless ``pictures=True`` (tests/test_pictures.py).
    """

    def run(*args, timeout: float = 300, pictures: bool = False):
        extra = () if pictures else ("--no-pictures",)
        return pytester.runpytest_subprocess(str(ROOT / "conformance"), "-p", "no:randomly", *extra,
                                             *map(str, args), timeout=timeout)

    return run
