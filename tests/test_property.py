"""Property mode, special values and repro bundles, checked with fake frameworks."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from harness.core import status
from harness.isolation.processes import SessionClient
from harness.spec.matrix import Scope, load_all
from harness.core.case import Case
from harness.explore.derive import Domain
from harness.core.special import describe_special_disagreement, inject_special_values
from harness.explore.strategies import ExploreError, compile_constraint

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TOL = ROOT / "cases" / "tolerances.yaml"
PY = sys.executable


# -- constraints and strategies ---------------------------------------------------------------

def test_constraints_evaluate_arithmetic_and_logic():
    names = {"C", "groups", "H", "padding", "kernel_size"}
    ok = compile_constraint("C % groups == 0 and kernel_size <= H + 2*padding", names)
    assert ok({"C": 4, "groups": 2, "H": 3, "padding": 1, "kernel_size": 5})
    assert not ok({"C": 3, "groups": 2, "H": 3, "padding": 1, "kernel_size": 5})
    assert not ok({"C": 4, "groups": 2, "H": 1, "padding": 1, "kernel_size": 5})
    assert compile_constraint("max(C, H) >= 2 or not C", names)({"C": 0, "H": 0})
    assert not compile_constraint("C // groups > 1", names)({"C": 1, "groups": 0})  # ZeroDivision -> False


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "C.__class__", "[x for x in (1, 2)]", "lambda: 1",
    "open('f')", "C if H else groups", "'a' == 'a'", "unknown > 1", "C = 1",
])
def test_constraints_reject_anything_outside_the_whitelist(text):
    with pytest.raises(ExploreError):
        compile_constraint(text, {"C", "H", "groups"})


EXPLORE = {
    "dims": {"C": {"min": 1, "max": 6}},
    "inputs": [{"shape": [{"min": 1, "max": 3}, "C", "C"]}],
    "kwargs": {"k": {"min": 0, "max": 9}, "groups": [1, 2, 3]},
    "constraints": ["C % groups == 0"],
    "dtypes": ["float32", "float64"],
    "input_seeds": 3,
}


def _one_case(shape, kwargs=None, **spec) -> list[Case]:
    return [Case("f", "k", "default", "e", 13, "float32", "cpu",
                 spec={"inputs": [{"shape": shape, "dtype": "float32"}], "kwargs": kwargs or {}, **spec},
                 tolerance={"name": "exact"}, declared={})]


BASE = _one_case([1, 1, 1], {"k": 0, "x": 1}, batches=[1, 2])


@settings(max_examples=60, deadline=None)
@given(Domain(BASE, EXPLORE).strategy())
def test_draws_respect_ranges_ties_and_constraints(draw):
    c, g = draw["dims"]["C"], draw["kwargs"]["groups"]
    assert c % g == 0 and 1 <= c <= 6 and 0 <= draw["kwargs"]["k"] <= 9
    n, c1, c2 = draw["shapes"][0]
    assert 1 <= n <= 3 and c1 == c2 == c
    assert draw["dtype"] in ("float32", "float64") and len(draw["input_seeds"]) == 3
    spec, _ = Domain(BASE, EXPLORE).apply(draw)
    assert spec["inputs"][0]["shape"] == draw["shapes"][0] and spec["kwargs"]["x"] == 1
    assert spec["inputs"][0]["dtype"] == draw["dtype"]
    assert spec["input_seeds"] == draw["input_seeds"] and "batches" not in spec


@pytest.mark.parametrize("bad, words", [
    ({"dims": {"C": {"min": 3, "max": 1}}}, "empty range"),
    ({"inputs": [{"shape": ["Q"]}]}, "unknown dim 'Q'"),
    ({"inputs": [{"shape": [1]}, {"shape": [1]}]}, "has 2 inputs"),
    ({"kwargs": {"k": [1]}, "constraints": ["k > nope"]}, "unknown name 'nope'"),
    ({"dims": {"k": {"min": 1, "max": 2}}, "kwargs": {"k": [1]}}, "both as a dim and a kwarg"),
])
def test_bad_explore_blocks_fail_early(bad, words):
    with pytest.raises(ExploreError, match=words):
        Domain(_one_case([1]), bad)


def test_bad_explore_block_is_a_usage_error(tmp_path):
    text = (DATA / "fake_explore.yaml").read_text().replace('"C % groups == 0"', '"C.real > 0"')
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = _pytest(["conformance/test_explore.py", "--explore", "--matrix", str(bad)], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode in (2, 4) and "bad.yaml" in out and "Attribute is not allowed" in out, out[-2000:]


# -- property mode end to end ---------------------------------------------------------------

def _pytest(args, tmp_path, timeout=300):
    return subprocess.run([PY, "-m", "pytest", *args, "--results", str(tmp_path / "r.jsonl"), "--no-report",
                           "-q", "-p", "no:randomly"], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_without_explore_the_property_tests_produce_no_items(tmp_path):
    proc = _pytest(["conformance/test_explore.py", "--matrix", str(DATA / "fake_explore.yaml"),
                    "--collect-only"], tmp_path)
    assert "test_explore[" not in proc.stdout, proc.stdout
    assert "skipped" not in proc.stdout


def test_property_mode_finds_and_shrinks_the_minimal_failing_attribute(tmp_path):
    """The fake exporter is wrong only for k > 5: property mode must shrink to k = 6."""
    from tests.fakes import EXPLORE_THRESHOLD

    repro = tmp_path / "repro"
    proc = _pytest(["conformance/test_explore.py", "--explore", "--matrix", str(DATA / "fake_explore.yaml"),
                    "--repro-dir", str(repro), "--explore-profile", "ci"], tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    (rec,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert rec["id"] == "explore-fakex-fakex-relu_add-cpu" and rec["mode"] == "explore"
    assert rec["status"] == status.MISMATCH
    m = rec["minimal_example"]
    assert m["kwargs"]["k"] == EXPLORE_THRESHOLD + 1
    assert m["kwargs"]["groups"] == 1 and m["shapes"] == [[1, 1]] and m["dims"] == {"C": 1}
    assert m["input_seeds"] == [0, 0] and m["failing_input_seed"] == 0
    assert m["spec"]["kwargs"]["k"] == EXPLORE_THRESHOLD + 1 and m["spec"]["input_seeds"] == [0, 0]
    assert rec["replay"]["reproduce_failure"].startswith("@reproduce_failure(")
    assert rec["explore"]["examples"] >= 10 and rec["explore"]["profile"] == "ci"
    bundle = Path(rec["repro_bundle"])
    assert bundle == repro / rec["id"] and str(bundle) in proc.stdout
    assert json.loads((bundle / "case.json").read_text())["spec"]["kwargs"]["k"] == EXPLORE_THRESHOLD + 1
    run = subprocess.run([PY, "-I", "repro.py"], cwd=bundle, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "REPRODUCED" in run.stdout, run.stdout + run.stderr


def test_property_mode_passes_when_the_exporter_is_right(tmp_path):
    text = (DATA / "fake_explore.yaml").read_text().replace("k: {min: 0, max: 20}", "k: {min: 0, max: 5}")
    ok = tmp_path / "ok.yaml"
    ok.write_text(text)
    proc = _pytest(["conformance/test_explore.py", "--explore", "--matrix", str(ok), "--max-examples", "7",
                    "--repro-dir", str(tmp_path / "repro")], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    (rec,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert rec["status"] == status.PASS and rec["explore"]["examples"] == 7
    assert not (tmp_path / "repro").exists()


# -- repro bundles (their replay is tested in test_repro.py) ------------------------------------

def test_failure_message_shows_the_bundle(tmp_path):
    proc = _pytest(["conformance", "--matrix", str(DATA / "fake.yaml"), "-k", "wrong_values and opset13",
                    "--repro-dir", str(tmp_path / "repro")], tmp_path)
    assert proc.returncode == 1
    assert f"repro bundle: {tmp_path / 'repro'}/fake-fake-relu-wrong_values-opset13" in proc.stdout


# -- special values ---------------------------------------------------------------------------

def test_special_values_are_mixed_into_float_inputs_only():
    x = np.zeros((8, 8), np.float32)
    i = np.zeros((4,), np.int64)
    sx, si = inject_special_values([x, i], seed=1)
    assert np.isnan(sx).any() and np.isposinf(sx).any() and np.isneginf(sx).any()
    assert (np.signbit(sx) & (sx == 0)).any() and (np.abs(sx) > 1e38).any()
    assert ((np.abs(sx) < 1e-37) & (sx != 0)).any() and si is i
    assert np.array_equal(sx, inject_special_values([x], seed=1)[0], equal_nan=True)


def test_special_value_disagreement_is_described():
    ref = np.array([1.0, np.nan, np.inf], np.float32)
    assert describe_special_disagreement(ref, ref.copy()) is None
    msg = describe_special_disagreement(ref, np.array([1.0, 0.0, np.inf], np.float32))
    assert msg.startswith("special values: framework gives NaN where ONNX Runtime gives 0 at index (1,)")


def test_special_values_mode_flags_nan_handling(tmp_path):
    m = load_all([DATA / "fake_special.yaml"], TOL, Scope(opsets="declared"))
    cases = {c.variant: replace(c, spec={**c.spec, "special_values": True}) for c in m.cases}
    ex = SessionClient(timeout=20, plugins=m.plugins, workdir=str(tmp_path), frameworks=("fake",))
    try:
        good, bad = ex.run(cases["good"]), ex.run(cases["nan_to_zero"])
        plain = ex.run(replace(cases["nan_to_zero"], variant="plain", spec=m.cases[1].spec))
    finally:
        ex.close()
    assert good["status"] == status.PASS and good["special_values"] is True
    assert bad["status"] == status.MISMATCH and bad["special_values"] is True
    assert "special values: framework gives NaN where ONNX Runtime gives 0 at index" in bad["message"]
    assert plain["status"] == status.PASS and "special_values" not in plain
