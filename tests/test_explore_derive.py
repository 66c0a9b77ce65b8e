"""Property mode on every entry: strategies derived from the entry, explore: blocks, pin-example."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import find, given, settings

from harness.explore.derive import ABSENT, Domain, shape_template
from harness.explore.property import collect_targets
from harness.spec.matrix import Scope, load_all
from harness.explore.pin import pin
from harness.explore.strategies import ExploreError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CASES = ROOT / "cases"
TOL = CASES / "tolerances.yaml"
PY = sys.executable


def _cases(tmp_path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_all([path], TOL, Scope(opsets="declared"), max_opset=21).cases, path


MATRIX = """\
framework: fakex
exporters: [fakex]
plugins: [tests.fakes]
entries:
  - kernel: relu_add
    table: {opsets: "13~15"}
    builder: relu_add
    inputs: [{shape: [1, 3, 8, 6]}]
    kwargs: {k: 0}
    variants:
      base: {}
      p1: {kwargs: {p: 1}}
      q2: {kwargs: {q: 2, k: 3}}
      listy: {kwargs: {size: [6, 5]}, dtypes: [float32, float64]}
"""


# -- the derived domain ---------------------------------------------------------------------------
def test_attributes_range_over_every_variant_value_and_absent(tmp_path):
    cases, _ = _cases(tmp_path, MATRIX)
    d = Domain(cases)
    assert d.kwargs == {"k": [0, 3], "p": [ABSENT, 1], "q": [ABSENT, 2], "size": [ABSENT, [6, 5]]}
    assert d.args is None and list(d.variants) == ["base", "p1", "q2", "listy"]
    assert d.variants["listy"].dtypes == ["float32", "float64"] and d.variants["base"].opsets == [13, 14, 15]


def test_attributes_are_drawn_in_combination(tmp_path):
    """p and q never appear together in a variant; the derived strategy draws them together."""
    cases, _ = _cases(tmp_path, MATRIX)
    d = Domain(cases)
    both = find(d.strategy(), lambda x: x["kwargs"]["p"] == 1 and x["kwargs"]["q"] == 2 and x["kwargs"]["k"] == 0,
                settings=settings(max_examples=500, database=None))
    assert both["variant"] == "base"  # shrunk to the first variant
    spec, base = d.apply(both)
    assert spec["kwargs"] == {"k": 0, "p": 1, "q": 2} and base.variant == "base"
    assert spec["input_seeds"] == both["input_seeds"] and len(spec["input_seeds"]) == 2
    # another dtype than the starting case's: inputs of that dtype follow it
    f64 = find(d.strategy(), lambda x: x["dtype"] == "float64", settings=settings(max_examples=500, database=None))
    spec, base = d.apply(f64)
    assert f64["variant"] == "listy" and spec["inputs"][0]["dtype"] == "float64" and base.dtype == "float64"


@settings(max_examples=50, deadline=None, database=None)
@given(st_draw=Domain(load_all([DATA / "fake_combo.yaml"], TOL, Scope(opsets="declared"),
                               max_opset=21).cases[:6]).strategy())
def test_draws_stay_around_the_declared_shapes(st_draw):
    n, c, w = st_draw["shapes"][0]
    assert c == 3 and 2 <= n <= 4 and 2 <= w <= 8  # batch and spatial free, channels fixed
    assert st_draw["opset"] in (13, 14)


@pytest.mark.parametrize("inputs, protected, want", [
    # batch 1 and channels stay; each spatial axis free on its own
    ([{"shape": [1, 3, 8, 8]}], set(), [[1, 3, "i0_2", "i0_3"]]),
    # rank 2: batch free, features fixed
    ([{"shape": [4, 5]}], set(), [["i0_0", 5]]),
    # a size a list attribute names stays
    ([{"shape": [2, 3, 6]}], {6}, [["i0_0", 3, 6]]),
    # elementwise operands: equal sizes stay equal
    ([{"shape": [2, 3, 4]}, {"shape": [2, 3, 4]}], set(), [["s2", 3, "s4"], ["s2", 3, "s4"]]),
    # matmul: the inner size is fixed somewhere, so fixed everywhere
    ([{"shape": [2, 3]}, {"shape": [3, 4]}], set(), [["s2", 3], [3, 4]]),
    # explicit dynamic axes, explicit values: only what is dynamic moves
    ([{"shape": [3, 4], "dynamic": []}, {"shape": [2], "values": [0, 1]}], set(), [[3, 4], [2]]),
])
def test_shape_template(inputs, protected, want):
    template, dims = shape_template(inputs, protected)
    assert template == want
    assert all(lo == 2 and hi >= 2 for lo, hi in dims.values())


def test_explore_block_refines_the_derived_domain(tmp_path):
    cases, _ = _cases(tmp_path, MATRIX)
    block = {"dims": {"H": {"min": 3, "max": 5}}, "inputs": [{"shape": [1, 3, "H", "H"]}],
             "kwargs": {"k": {"min": 0, "max": 9}}, "constraints": ["k > H"], "dtypes": ["float32"]}
    d = Domain(cases, block)
    assert d.kwargs["k"] == {"min": 0, "max": 9} and d.kwargs["p"] == [ABSENT, 1]  # the rest stays derived

    @settings(max_examples=40, deadline=None, database=None)
    @given(d.strategy())
    def check(x):
        h = x["dims"]["H"]
        assert x["shapes"] == [[1, 3, h, h]] and x["kwargs"]["k"] > h and x["dtype"] == "float32"

    check()
    with pytest.raises(ExploreError, match="unknown name 'nope'"):
        Domain(cases, {"constraints": ["nope > 1"]})
    with pytest.raises(ExploreError, match="no variant of the entry has as many"):
        Domain(cases, {"inputs": [{"shape": [1]}, {"shape": [1]}]})


def test_every_entry_of_the_real_matrices_gets_a_target():
    paths = tuple(CASES / f for f in ("paddle.yaml", "torch.yaml", "paddle_models.yaml"))
    m = load_all(list(paths), TOL, Scope(opsets="declared"), max_opset=21)
    targets = collect_targets(paths, m)
    entries = {(r.framework, r.kernel) for r in m.rows}
    assert {(t.framework, t.kernel) for t in targets} == entries
    for t in targets:
        if t.skip:  # e.g. no Paddle 3 API: the target skips with the matrix's reason
            assert all(c.skip for c in m.cases if (c.framework, c.kernel) == (t.framework, t.kernel))
        else:
            assert t.domain().variants  # every runnable entry derives a strategy
    ids = [t.id for t in targets]
    assert len(ids) == len(set(ids))


# -- end to end: a two-attribute bug, found, pinned, reproduced ---------------------------------------
def _pytest(args, results):
    return subprocess.run([PY, "-m", "pytest", *args, "--results", str(results), "--no-report", "-q",
                           "-p", "no:randomly"], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_found_pinned_and_reproduced(tmp_path):
    matrix = tmp_path / "combo.yaml"
    matrix.write_text((DATA / "fake_combo.yaml").read_text())
    fixed = _pytest(["conformance", "--matrix", str(matrix)], tmp_path / "fixed.jsonl")
    assert fixed.returncode == 0, fixed.stdout[-2000:]  # every fixed variant passes

    found = _pytest(["conformance/test_explore.py", "--explore", "--matrix", str(matrix), "--max-examples", "40",
                     "--repro-dir", ""], tmp_path / "explore.jsonl")
    assert found.returncode == 1, found.stdout[-3000:]
    recs = {r["id"]: r for r in map(json.loads, (tmp_path / "explore.jsonl").read_text().splitlines())}
    assert recs["explore-fakex-fakex-relu_add_two-cpu"]["status"] == "pass"
    rec = recs["explore-fakex-fakex-relu_add-cpu"]
    m = rec["minimal_example"]
    assert rec["status"] == "mismatch" and m["kwargs"] == {"k": 0, "p": 1, "q": 1}
    assert m["variant"] == "base" and m["opset"] == 13 and m["shapes"] == [[2, 3, 2]]
    assert "pin-example" in found.stdout

    before = matrix.read_text()
    out = subprocess.run([PY, "-m", "harness", "pin-example", str(tmp_path / "explore.jsonl"), rec["id"]],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name = m["case_variant"]
    line = int(out.stdout.split(":", 2)[1])
    after = matrix.read_text().splitlines()
    assert after[line - 1].strip().startswith(f"{name}: {{kwargs: {{k: 0, p: 1, q: 1}}")
    assert after[line - 2].strip().startswith("# pinned from explore-fakex-fakex-relu_add-cpu")
    # only two lines added, right after the last variant; comments and layout kept
    assert [ln for ln in after if ln not in (after[line - 1], after[line - 2])] == before.splitlines()
    assert after[line - 3].strip().startswith("q1:")

    rerun = _pytest(["conformance", "--matrix", str(matrix), "-k", name], tmp_path / "pinned.jsonl")
    pinned = [json.loads(x) for x in (tmp_path / "pinned.jsonl").read_text().splitlines()]
    assert rerun.returncode == 1 and {r["status"] for r in pinned} == {"mismatch"}
    assert m["case_id"] in {r["id"] for r in pinned}  # the very case exploration found
    assert {r["opset"] for r in pinned} == {13, 14}

    again = subprocess.run([PY, "-m", "harness", "pin-example", str(tmp_path / "explore.jsonl"), m["case_id"]],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and f"already has the variant {name}" in again.stderr


def test_pin_adds_a_variants_block_beside_default(tmp_path):
    matrix = tmp_path / "combo.yaml"
    matrix.write_text((DATA / "fake_combo.yaml").read_text() + "# trailing comment\n")
    spec = {"kwargs": {"k": 2, "p": 1}, "inputs": [{"shape": [3, 3, 2], "dtype": "float32"}], "input_seeds": [5, 6]}
    rec = {"id": "explore-fakex-fakex-relu_add_two-cpu", "framework": "fakex", "kernel": "relu_add_two",
           "exporter": "fakex", "opset": 13, "status": "mismatch", "message": "values differ",
           "minimal_example": {"variant": "default", "opset": 13, "kwargs": {"k": 2, "p": 1}, "dtype": "float32",
                               "input_seeds": [5, 6], "case_id": "fakex-fakex-relu_add_two-xabc-opset13-float32-cpu",
                               "spec": spec}}
    path, line, name = pin(rec, matrix)
    text = matrix.read_text()
    assert name == "xabc" and text.endswith(
        "    variants:\n      default: {}\n"
        "      # pinned from explore-fakex-fakex-relu_add_two-cpu (python -m harness pin-example): "
        "mismatch at fakex opset 13: values differ\n"
        "      xabc: {kwargs: {k: 2, p: 1}, inputs: [{shape: [3, 3, 2]}], input_seeds: [5, 6]}\n"
        "# trailing comment\n")
    cases = load_all([matrix], TOL, Scope(opsets="declared"), max_opset=21).cases
    assert {c.variant for c in cases if c.kernel == "relu_add_two"} == {"default", "xabc"}
    pinned = next(c for c in cases if c.variant == "xabc")
    assert pinned.spec["input_seeds"] == [5, 6] and pinned.spec["inputs"][0]["shape"] == [3, 3, 2]


def test_pin_example_usage_errors(tmp_path):
    res = tmp_path / "r.jsonl"
    res.write_text(json.dumps({"id": "explore-x", "status": "pass", "framework": "f", "kernel": "k",
                               "exporter": "e", "opset": 13}) + "\n")
    out = subprocess.run([PY, "-m", "harness", "pin-example", str(res), "explore-x"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no property-mode failure with id or case_id 'explore-x'" in out.stderr


def test_failures_the_fixed_matrix_already_shows_are_not_findings(tmp_path):
    """Expected for the starting case, or a structural status the entry's fixed cases expect at that opset."""
    from dataclasses import replace
    from types import SimpleNamespace

    from harness.spec.expectations import Expectations
    from harness.explore.property import Explorer, ExploreTarget

    cases, _ = _cases(tmp_path, MATRIX)
    exp = tmp_path / "expected.yaml"
    exp.write_text(
        "expected_failures:\n"
        "- {match: fakex-fakex-relu_add-p1-*, opsets: 13~13, status: [crash, mismatch], reason: measured p1 abort}\n")
    runner = SimpleNamespace(expectations=Expectations.load(exp))
    target = ExploreTarget("fakex", "relu_add", "fakex", "cpu", tuple(cases))
    ex = Explorer(target, runner, {}, {}, {})
    draw = {"variant": "base", "opset": 13, "dtype": "float32", "kwargs": {"k": 0, "p": 1, "q": ABSENT,
            "size": ABSENT}, "dims": {}, "shapes": [[1, 3, 8, 6]], "input_seeds": [1, 2]}
    case = ex.case_of(draw)
    base = ex.domain.variants["base"].case(13, "float32")
    p1 = ex.domain.variants["p1"].case(13, "float32")
    crash, mismatch = {"status": "crash", "message": ""}, {"status": "mismatch", "message": ""}
    assert not ex._is_failure(case, dict(crash), base)      # p1 crashes at opset 13 too: the same limitation
    assert ex._is_failure(case, dict(mismatch), base)       # values: a finding unless its own start expects it
    assert not ex._is_failure(case, dict(mismatch), p1)     # ... as here
    assert ex._is_failure(replace(case, opset=14), dict(crash), base)  # not expected at opset 14
    assert not ex._is_failure(case, {"status": "pass", "message": ""}, base)
