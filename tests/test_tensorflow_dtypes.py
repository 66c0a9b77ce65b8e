"""The TensorFlow matrix's dtype axis: what the entries declare, and the adapter measured in its environment.

The adapter checks run :mod:`tests.tf_dtype_probe` with the TensorFlow
interpreter (skipped, naming the command, when that environment is absent).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.isolation import environments
from harness.spec import matrix

ROOT = Path(__file__).resolve().parent.parent


def _load(**scope) -> matrix.Matrix:
    return matrix.load_all([ROOT / "cases" / "tensorflow.yaml"], ROOT / "cases" / "tolerances.yaml",
                           matrix.Scope(**scope), max_opset=22)


def test_every_tensorflow_variant_keeps_its_float32_cases():
    m = _load()
    variants = {(c.kernel, c.variant) for c in m.cases}
    at_float32 = {(c.kernel, c.variant) for c in m.cases if c.dtype == "float32"}
    assert variants == at_float32
    assert {c.dtype for c in m.cases} == {"float16", "float32", "float64", "int32", "int64", "bool"}


def test_inputs_with_a_dtype_of_their_own_keep_it():
    m = _load()
    crop = next(c for c in m.cases if c.kernel == "crop_and_resize" and c.dtype == "int32")
    assert [i["dtype"] for i in crop.spec["inputs"]] == ["int32", "float32", "int32"]  # boxes are float32 in TF


@pytest.fixture(scope="module")
def probe() -> dict:
    environments.declared.cache_clear()
    reason = environments.unavailable("tensorflow")
    if reason:
        pytest.skip(reason)
    env = environments.declared()["tensorflow"]
    out = subprocess.run([str(env.executable), "-m", "tests.tf_dtype_probe"], cwd=ROOT,
                         env=environments.runner_environ("tensorflow"), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_keras_layers_are_built_at_the_case_dtype_from_the_float32_draw(probe, dtype):
    conv = probe[f"conv@{dtype}"]
    assert conv["weights"] == [dtype] and conv["n_weights"] == 2
    assert conv["rounded_float32_draw"] is True
    assert conv["keras_out"] == dtype and conv["ref_out"] == [dtype]
    # Keras keeps BatchNormalization's variables at float32 in a float16 layer; the values are still rounded
    bn = probe[f"batch_norm@{dtype}"]
    assert bn["weights"] == (["float32"] if dtype == "float16" else [dtype])
    assert bn["rounded_float32_draw"] is True and bn["keras_out"] == dtype


def test_a_weightless_call_runs_at_the_case_dtype_and_floatx_is_restored(probe):
    for dtype in ("float16", "float32", "float64", "int32"):
        facts = probe[f"relu@{dtype}"]
        assert facts["keras_out"] == dtype and facts["ref_out"] == [dtype]
        assert facts["floatx_after"] == "float32"
    assert probe["conv@float32"]["weights"] == ["float32"]


def test_tensorflow_no_kernel_messages_are_skips_and_a_float32_one_is_not(probe):
    refusals = probe["refusals"]
    for kind in ("eager_no_kernel", "graph_no_kernel"):
        reason = refusals[kind]["int32"]
        assert reason and "at int32 on cpu" in reason and "Reciprocal" in reason and "T=DT_INT32" in reason
        assert refusals[kind]["float32"] is None
    # an op whose definition refuses the dtype is a wrong declaration in the matrix, not a skip
    assert refusals["op_refuses_dtype"]["int32"] is None
