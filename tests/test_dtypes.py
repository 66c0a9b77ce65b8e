"""The dtype axis: named dtype sets, per-dtype rules, integer inputs, exact integer outputs,
and a framework's refusal of a dtype recorded as a skip."""

import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.core import dtypes, tolerance
from harness.core.inputs import make_inputs
from harness.spec.matrix import Scope, load_all, load_dtype_policy, load_tolerances
from harness.spec.yamlsrc import MatrixError

ROOT = Path(__file__).resolve().parent.parent
TOL = ROOT / "cases" / "tolerances.yaml"

BASE = """\
framework: fake
exporters: [fake]
plugins: [tests.fakes]
defaults:
  dtypes: float
entries:
  - kernel: relu
    table: {opsets: "7~9"}
    builder: relu
    inputs: [{shape: [2, 3]}]
    variants:
      plain: {kwargs: {behavior: good}}
      loose: {kwargs: {behavior: good}, tolerance: allclose}
      ints: {kwargs: {behavior: good}, dtypes: [int32, bool]}
"""


def expand(tmp_path, text=BASE, **scope):
    p = tmp_path / "m.yaml"
    p.write_text(textwrap.dedent(text))
    return load_all([p], TOL, Scope(**scope), max_opset=22)


def test_named_set_expands_and_float32_ids_keep_their_form(tmp_path):
    m = expand(tmp_path, opsets="full")
    got = {(c.variant, c.dtype) for c in m.cases}
    assert {("plain", d) for d in ("float16", "float32", "float64")} <= got
    assert {("ints", "int32"), ("ints", "bool")} <= got and ("ints", "float32") not in got
    assert "fake-fake-relu-plain-opset9-float32-cpu" in {c.id for c in m.cases}
    # the case dtype reaches the builder and every input without a dtype of its own
    c = next(c for c in m.cases if c.dtype == "float16")
    assert c.spec["dtype"] == "float16" and c.spec["inputs"][0]["dtype"] == "float16"


def test_float16_rule_replaces_closeness_rules_only(tmp_path):
    m = expand(tmp_path, opsets="full")
    rule = {(c.variant, c.dtype): c.tolerance["name"] for c in m.cases}
    assert rule[("plain", "float16")] == rule[("loose", "float16")] == "half-allclose"
    assert rule[("plain", "float32")] == "seed-abs-rel" and rule[("loose", "float32")] == "allclose"
    assert rule[("ints", "int32")] == "seed-abs-rel"  # integer outputs compare exactly under it
    rules, defaults = load_tolerances(TOL)
    policy = load_dtype_policy(TOL)
    assert tolerance.rule_for("float16", "exact", rules, defaults, policy.coarse) == "exact"
    assert tolerance.rule_for("float16", "random-range", rules, defaults, policy.coarse) == "random-range"


def test_default_scope_runs_other_dtypes_at_the_ends(tmp_path):
    m = expand(tmp_path)
    by = {}
    for c in m.cases:
        by.setdefault((c.variant, c.dtype), []).append(c.opset)
    assert by[("plain", "float32")] == [7, 8, 9]
    assert by[("plain", "float64")] == [7, 9]
    assert any("--opsets full" in s[3] and s[2] == "8" for s in m.skipped_opsets)


def test_smoke_keeps_float32_only(tmp_path):
    m = expand(tmp_path, text=BASE.replace("plain: {kwargs: {behavior: good}}",
                                           "plain: {kwargs: {behavior: good}, smoke: true}"), smoke=True)
    assert {c.dtype for c in m.cases} == {"float32"}


def test_unknown_dtype_set_names_file_line_field(tmp_path):
    with pytest.raises(MatrixError, match=r"m.yaml:\d+: entries\[relu\].dtypes: unknown dtype set 'floaty'"):
        expand(tmp_path, BASE.replace("dtypes: [int32, bool]", "dtypes: floaty"))


def test_native_opset_keeps_one_case_below_and_reports_the_rest(tmp_path):
    text = BASE.replace("exporters: [fake]\n", "exporters: [fake]\nnative_opsets: {fake: 18}\n") \
               .replace('"7~9"', '"7~20"')
    m = expand(tmp_path, text)
    assert sorted({c.opset for c in m.cases if c.variant == "plain" and c.dtype == "float32"}) == [17, 18, 19, 20]
    left = [s for s in m.skipped_opsets if s[1] == "relu-plain" and "translates at opset 18" in s[3]]
    assert [s[2] for s in left] == ["7~16"]
    full = expand(tmp_path, text, opsets="full")
    assert 7 in {c.opset for c in full.cases}


def test_integer_and_bool_outputs_compare_exactly_under_closeness_rules():
    rule = {"name": "allclose", "kind": "allclose", "rtol": 1e-3, "atol": 1e-5}
    big = np.array([100000], dtype=np.int64)
    assert tolerance.compare(rule, big, big + 1).ok is False  # allclose alone would forgive 1 in 1e5
    assert tolerance.compare(rule, np.array([True]), np.array([True])).ok
    assert not tolerance.compare(rule, np.array([True]), np.array([False])).ok
    assert tolerance.compare(rule, np.array([1.0]), np.array([1.0005])).ok


@pytest.mark.parametrize("init, low, high, check", [
    ("uniform", -1.0, 1.0, lambda a: a.min() >= -1 and a.max() <= 1 and len(np.unique(a)) >= 2),
    ("positive", 0.5, 2.0, lambda a: a.min() >= 1),
    ("unique", -3.0, 3.0, lambda a: len(np.unique(a)) == a.size),
])
def test_integer_inputs_from_float_specs_are_sensible(init, low, high, check):
    spec = {"shape": [4, 6], "dtype": "int32", "init": init, "low": low, "high": high}
    (a,) = make_inputs([spec], seed=3)
    assert a.dtype == np.int32 and check(a), a


def test_explicit_randint_spec_is_drawn_as_written():
    spec = {"shape": [50], "dtype": "int64", "init": "randint", "low": 0, "high": 5}
    (a,) = make_inputs([spec], seed=1)
    assert a.min() >= 0 and a.max() <= 4


def test_bool_inputs_mix_both_values():
    (a,) = make_inputs([{"shape": [64], "dtype": "bool"}], seed=1)
    assert a.dtype == np.bool_ and a.any() and not a.all()


FW = SimpleNamespace(dtype_unsupported=(r"not implemented for '(Half|Int)'",))


def test_a_dtype_refusal_is_a_skip_with_the_frameworks_words():
    case = SimpleNamespace(dtype="float16", framework="torch", device="cpu")
    msg = "NotImplementedError: \"abs_cpu\" not implemented for 'Half'"
    reason = dtypes.unsupported_reason(FW, case, msg)
    assert reason and msg in reason and "float16" in reason


def test_other_reference_errors_and_float32_refusals_stay_errors():
    f16 = SimpleNamespace(dtype="float16", framework="torch", device="cpu")
    f32 = SimpleNamespace(dtype="float32", framework="torch", device="cpu")
    assert dtypes.unsupported_reason(FW, f16, "RuntimeError: expected scalar type Half but found Float") is None
    assert dtypes.unsupported_reason(FW, f32, "not implemented for 'Half'") is None
    assert dtypes.unsupported_reason(SimpleNamespace(dtype_unsupported=()), f16, "not implemented for 'Half'") is None


def test_framework_patterns_match_their_real_messages():
    """The adapters' patterns against messages measured from torch 2.13 and Paddle 3.3 on CPU."""
    import re

    torch_ = pytest.importorskip("harness.frameworks.torch")
    assert any(re.search(p, "\"avg_pool2d\" not implemented for 'Int'")
               for p in torch_.TorchFramework.dtype_unsupported)
    paddle_ = pytest.importorskip("harness.frameworks.paddle")
    msg = ("RuntimeError: (NotFound) The kernel with key (CPU, Undefined(AnyLayout), float16) of kernel "
           "`abs` is not registered. Selected wrong DataType `float16`")
    assert any(re.search(p, msg) for p in paddle_.PaddleFramework.dtype_unsupported)


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_zero_d_inputs_are_zero_d_arrays(dtype):
    (a,) = make_inputs([{"shape": [], "dtype": dtype, "dynamic": []}], seed=2)
    assert isinstance(a, np.ndarray) and a.shape == () and a.dtype == np.dtype(dtype)
