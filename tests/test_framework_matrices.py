"""Every framework's matrix beside Paddle's: coverage of the Paddle table, builders, models.

These load in the main environment (no TensorFlow or OneFlow needed): the
builder modules import their framework only when a builder runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.spec import matrix
from harness.core import registry

ROOT = Path(__file__).resolve().parent.parent



def _declared(fw: str) -> dict:
    return yaml.safe_load((ROOT / "cases" / f"{fw}.yaml").read_text(encoding="utf-8"))


#: Every framework the registry knows with a matrix keyed to the Paddle table (Paddle's is the table),
#: and the exporters its matrix declares.
TRACKS = {fw: tuple(_declared(fw)["exporters"]) for fw in registry.framework_names()
          if fw != "paddle" and (ROOT / "cases" / f"{fw}.yaml").is_file()}
MODELS = {"linear_net", "two_io_net", "resnet_basic_block", "mbv3_block"}


def _data(name: str) -> dict:
    return yaml.safe_load((ROOT / "cases" / f"{name}.yaml").read_text(encoding="utf-8"))

#: The matrices written as mirrors of the Paddle table, entry for entry (an uncovered kernel says why).
#: torch's matrix keeps its own kernel list, keyed to the table where one matches (tests/test_torch_track.py).
MIRRORS = sorted(set(TRACKS) - {"torch"})


def _paddle_kernels() -> set[str]:
    return {e["kernel"] for e in _data("paddle")["entries"]}


def _load(name: str, **scope) -> matrix.Matrix:
    return matrix.load_all([ROOT / "cases" / f"{name}.yaml"], ROOT / "cases" / "tolerances.yaml",
                           matrix.Scope(**scope), max_opset=22)


@pytest.mark.parametrize("fw", sorted(TRACKS))
def test_matrix_loads_with_its_exporters(fw):
    m = _load(fw)
    assert {c.exporter for c in m.cases} == set(TRACKS[fw])
    assert all(c.framework == fw for c in m.cases)


@pytest.mark.parametrize("fw", sorted(TRACKS))
def test_at_least_40_paddle_kernels_have_a_runnable_counterpart(fw):
    entries = _data(fw)["entries"]
    table = _paddle_kernels()
    runnable = {e.get("shared_key", e["kernel"]) for e in entries if not e.get("unavailable")} & table
    assert len(runnable) >= 40, sorted(table - runnable)


@pytest.mark.parametrize("fw", MIRRORS)
def test_every_shared_key_names_a_paddle_kernel_or_a_model(fw):
    table = _paddle_kernels() | MODELS
    keys = {e.get("shared_key", e["kernel"]) for e in _data(fw)["entries"]}
    assert keys <= table, sorted(keys - table)


@pytest.mark.parametrize("fw", MIRRORS)
def test_every_paddle_kernel_is_covered_or_says_why_not(fw):
    keys = {e.get("shared_key", e["kernel"]) for e in _data(fw)["entries"]}
    assert not _paddle_kernels() - keys, sorted(_paddle_kernels() - keys)


@pytest.mark.parametrize("fw", sorted(TRACKS))
def test_four_model_level_cases(fw):
    kernels = {e["kernel"] for e in _data(fw)["entries"] if not e.get("unavailable")}
    assert MODELS <= kernels


@pytest.mark.parametrize("fw", sorted(TRACKS))
def test_no_counterpart_entries_become_skipped_cases_with_their_reason(fw):
    m = _load(fw)
    unavailable = {e["kernel"]: e["unavailable"] for e in _data(fw)["entries"] if e.get("unavailable")}
    assert unavailable
    for c in m.cases:
        if c.kernel in unavailable:
            assert c.skip == unavailable[c.kernel]


@pytest.mark.parametrize("fw", sorted(TRACKS))
def test_smoke_slice_covers_every_exporter(fw):
    m = _load(fw, smoke=True)
    assert {c.exporter for c in m.cases} == set(TRACKS[fw]) and len(m.cases) >= 4


#: adapters that have no matrix of their own, and why
NO_MATRIX = {"onnx": "checks a user's own .onnx file on the runtimes (python -m harness model)"}


def test_every_framework_with_an_adapter_has_a_matrix():
    assert set(TRACKS) | {"paddle"} | set(NO_MATRIX) == set(registry.framework_names())
    assert {"torch", "tensorflow", "oneflow"} <= set(TRACKS)


def _matrices_of(fw: str) -> list[dict]:
    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "cases").rglob("*.yaml"))]
    return [d for d in docs if isinstance(d, dict) and d.get("framework") == fw]


@pytest.mark.parametrize("fw", registry.framework_names())
def test_builders_and_entries_match(fw):
    """Every builder of a framework is used by an entry of one of its matrices, and every entry's builder exists."""
    registry.load_builders(fw)
    used = {e["builder"] for d in _matrices_of(fw) for e in d["entries"] if "builder" in e}
    known = {name for (f, name) in registry.BUILDERS if f == fw} - {"user_model"}  # python -m harness model's
    assert used == known, (sorted(used - known), sorted(known - used))


def test_oneflow_entries_use_no_batches_because_the_export_is_static():
    assert not any("batches" in e or any("batches" in v for v in (e.get("variants") or {}).values())
                   for e in _data("oneflow")["entries"])
