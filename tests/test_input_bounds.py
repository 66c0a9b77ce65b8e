"""Untrusted-looking input is bounded and refused in one line: YAML tags, non-JSON values, aliases, nesting.

Issue 24, items 7, 9 and 15: there is one YAML loader (:func:`harness.spec.yamlsrc.load_yaml`), it accepts
JSON's types only, and it never expands an alias bomb or a recursive alias.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.spec.yamlsrc import MatrixError, load_yaml


TOL = Path(__file__).resolve().parent.parent / "cases" / "tolerances.yaml"


def _load(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return load_yaml(path)


def _bomb(levels: int) -> str:
    """The classic billion-laughs document: each level lists the one below nine times."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, line, field, message", [
    ("a: 1\nb: !!python/tuple [1, 2]\n", 2, "b", "tag !!python/tuple: only JSON values"),
    ("a:\n  b: !!python/name:os.system ls\n", 2, "a.b", "tag !!python/name:os.system 'ls'"),
    ("a: !!python/object:os.Foo {x: 1}\n", 1, "a", "tag !!python/object:os.Foo"),
    ("a: [1, !custom 3]\n", 1, "a.1", "tag !custom '3'"),
    ("kwargs:\n  day: 2024-01-01\n", 2, "kwargs.day", "a date or time '2024-01-01' is not a JSON value; quote it"),
    ("a: !!binary aGVsbG8=\n", 1, "a", "binary data is not one"),
    ("a: !!set {x, y}\n", 1, "a", "a set is not one"),
    ("a: !!omap [x: 1]\n", 1, "a", "an ordered map is not one"),
    ("a: &x {k: 1}\nb:\n  <<: *x\n", 3, "b", "a merge key (<<) is not one"),
    ("a: &a [1, *a]\n", 1, "a.1", "a recursive alias"),
    ("a: &a {b: *a}\n", 1, "a.b", "a recursive alias"),
    ("1: x\n", 1, "<root>", "key '1' is not text (YAML reads it as a number); quote it"),
    ("? [1, 2]\n: x\n", 1, "<root>", "a key must be text"),
])
def test_non_json_yaml_is_one_error_naming_file_line_field(tmp_path, text, line, field, message):
    with pytest.raises(MatrixError) as err:
        _load(tmp_path, text)
    assert (err.value.line, err.value.field) == (line, field), str(err.value)
    assert message in err.value.message
    assert str(err.value).startswith(f"{tmp_path / 'm.yaml'}:{line}: {field}: ")
    assert "\n" not in str(err.value)


def test_quoted_and_json_values_still_load(tmp_path):
    doc = _load(tmp_path, 'a: "2024-01-01"\nb: [1, 2.5, .inf, true, null, "x"]\nc: &c {k: [1]}\nd: *c\n')
    assert doc.data == {"a": "2024-01-01", "b": [1, 2.5, float("inf"), True, None, "x"],
                        "c": {"k": [1]}, "d": {"k": [1]}}
    assert doc.line_of(("d",)) == 4


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    text = _bomb(8)  # 9**8 = 43 million strings if expanded
    assert len(text) < 700
    start = time.monotonic()
    with pytest.raises(MatrixError, match=r"the aliases expand to more than \d+ values"):
        _load(tmp_path, text)
    assert time.monotonic() - start < 2.0


def test_a_small_alias_bomb_below_the_bound_loads(tmp_path):
    doc = _load(tmp_path, _bomb(2))  # 1 + 9 + 81 copies
    assert len(doc.data["l2"]) == 9 and doc.data["l2"][0][0] == ["lol"] * 9


def test_deep_nesting_is_refused(tmp_path):
    for text in ["a: " + "[" * 100 + "]" * 100 + "\n", "a: " + "[" * 20000 + "]" * 20000 + "\n"]:
        with pytest.raises(MatrixError, match="nested"):
            _load(tmp_path, text)


# -- item 14: tolerance bounds ---------------------------------------------------------------------

TOLERANCES = """\
rules:
  r:
    kind: {kind}
    {a}: {x}
    {b}: 1.0e-5
defaults: {{float32: r}}
"""


@pytest.mark.parametrize("kind, a, b, x, why", [
    ("abs-or-rel", "abs", "rel", ".nan", "NaN compares false"),
    ("abs-or-rel", "abs", "rel", "-1.0e-5", "a negative bound"),
    ("abs-or-rel", "abs", "rel", "0", "0 fails even identical outputs"),
    ("abs-or-rel", "abs", "rel", ".inf", "lets any wrong value pass"),
    ("allclose", "rtol", "atol", ".nan", "NaN compares false"),
    ("allclose", "atol", "rtol", "-.inf", "infinite bound"),
    ("allclose", "rtol", "atol", "-0.001", "a negative bound"),
    ("allclose", "atol", "rtol", ".inf", "lets any wrong value pass"),
])
def test_bad_tolerance_bounds_are_refused_at_their_line(tmp_path, kind, a, b, x, why):
    from harness.spec.matrix import load_tolerances

    path = tmp_path / "tolerances.yaml"
    path.write_text(TOLERANCES.format(kind=kind, a=a, b=b, x=x))
    with pytest.raises(MatrixError) as err:
        load_tolerances(path)
    assert str(err.value).startswith(f"{path}:4: rules.r.{a}: "), str(err.value)
    assert why in str(err.value)


def test_good_tolerance_bounds_load_and_judge(tmp_path):
    import numpy as np

    from harness.core import tolerance
    from harness.spec.matrix import load_tolerances

    path = tmp_path / "tolerances.yaml"
    path.write_text(TOLERANCES.format(kind="allclose", a="atol", b="rtol", x="0"))
    rules, _ = load_tolerances(path)
    same = np.array([1.0, 2.0])
    assert tolerance.compare(rules["r"], same, same.copy()).ok
    assert not tolerance.compare(rules["r"], same, same + 1).ok


@pytest.mark.parametrize("body, field, message", [
    ("low: .nan\n    high: 1.0", "low", "needs a number 'low'"),
    ("low: 2.0\n    high: 1.0", "low", "low 2.0 is above high 1.0"),
    ("high: abc", "high", "needs a number 'high'"),
])
def test_bad_range_bounds(tmp_path, body, field, message):
    from harness.spec.matrix import load_tolerances

    path = tmp_path / "tolerances.yaml"
    path.write_text(f"rules:\n  r:\n    kind: range\n    {body}\ndefaults: {{float32: r}}\n")
    with pytest.raises(MatrixError, match=f"rules.r.{field}: .*{message}"):
        load_tolerances(path)


# -- item 8: call: targets and plugins: ------------------------------------------------------------

MATRIX = """\
framework: fake
exporters: [fake]
plugins: [tests.fakes]
entries:
  - kernel: relu
    table: {opsets: "7~8"}
    call: CALL
    inputs: [{shape: [2, 3]}]
"""


def _expand(tmp_path, text, **kw):
    from harness.spec.matrix import Scope, load_all

    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path, load_all([path], TOL, Scope(), max_opset=22, **kw)


@pytest.mark.parametrize("target", ["os.system", "subprocess.run", "builtins.eval", "numpyx.abs", "tests.fakes.x"])
def test_a_call_outside_the_frameworks_namespaces_is_refused(tmp_path, target):
    with pytest.raises(MatrixError) as err:
        _expand(tmp_path, MATRIX.replace("CALL", target))
    assert str(err.value).startswith(f"{tmp_path / 'm.yaml'}:7: entries[relu].call: '{target}' lies outside "
                                     f"fake's namespaces (numpy, harness.builders); a matrix is trusted code: "
                                     f"give --allow-any-call"), str(err.value)
    _, m = _expand(tmp_path, MATRIX.replace("CALL", target), allow_any_call=True)
    assert {c.spec["call"] for c in m.cases} == {target}


@pytest.mark.parametrize("target", ["numpy.abs", "numpy", "harness.builders.torch_ops.whatever"])
def test_a_call_inside_the_namespaces_loads(tmp_path, target):
    _, m = _expand(tmp_path, MATRIX.replace("CALL", target))
    assert len(m.cases) == 2


def test_real_frameworks_declare_their_call_namespaces():
    from harness.core import registry

    for fw in ("torch", "paddle", "tensorflow", "oneflow"):
        registry.load_builders(fw)
    assert registry.call_allowed("tensorflow", "tf.nn.relu") and registry.call_allowed("oneflow", "flow.abs")
    assert not registry.call_allowed("torch", "torchvision.ops.nms") and not registry.call_allowed("torch", "os.system")


@pytest.mark.parametrize("plugin", ["../evil", "tests/fakes.py", "tests.fakes\n", "a..b", ""])
def test_plugins_must_be_dotted_module_names(tmp_path, plugin):
    import json

    with pytest.raises(MatrixError, match=r"m.yaml:3: plugins\[0\]: .* does not match"):
        _expand(tmp_path, MATRIX.replace("CALL", "numpy.abs").replace("[tests.fakes]", f"[{json.dumps(plugin)}]"))


def test_help_says_matrices_are_trusted_code(pytester):
    res = pytester.runpytest_subprocess("--help")
    text = " ".join(res.stdout.str().split())
    assert "are trusted code" in text and "--allow-any-call" in text
    from harness.__main__ import parser
    assert "trusted code" in parser().format_help()


# -- items 20, 21: names' characters and length ----------------------------------------------------

NAMES = """\
framework: fake
exporters: [fake]
plugins: [tests.fakes]
entries:
  - kernel: relu
    table: {opsets: "7~8"}
    builder: relu
    inputs: [{shape: [2, 3]}]
    variants:
      good: {kwargs: {behavior: good}}
"""


@pytest.mark.parametrize("old, new, line, field, message", [
    ("kernel: relu", 'kernel: "relu\\n"', 5, "entries[0].kernel", r"'relu\n' does not match"),
    ("kernel: relu", 'kernel: "re\\tlu"', 5, "entries[0].kernel", r"'re\tlu' does not match"),
    ("kernel: relu", 'kernel: "relu\\u0085"', 5, "entries[0].kernel", "does not match"),
    ("      good:", '      "good\\n":', 10, "entries[relu].variants", r"'good\n' does not match"),
    ("      good:", '      "go\\x1bod":', 10, "entries[relu].variants", "does not match"),
    ("kernel: relu", "kernel: " + "r" * 300, 5, "entries[0].kernel", "is too long"),
    ("      good:", "      " + "g" * 49 + ":", 10, "entries[relu].variants", "is too long"),
    ("framework: fake", "framework: " + "f" * 25, 1, "framework", "is too long"),
    ("exporters: [fake]", 'exporters: ["fake\\n"]', 2, "exporters[0]", "does not match"),
    ("exporters: [fake]", "exporters: [" + "e" * 25 + "]", 2, "exporters[0]", "is too long"),
    ("exporters: [fake]", "exporters: [../x]", 2, "exporters[0]", "does not match"),
])
def test_names_are_short_and_plain_one_line_at_load(tmp_path, old, new, line, field, message):
    assert old in NAMES
    with pytest.raises(MatrixError) as err:
        _expand(tmp_path, NAMES.replace(old, new, 1))
    assert str(err.value).startswith(f"{tmp_path / 'm.yaml'}:{line}: {field}: "), str(err.value)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_longest_names_give_an_id_that_is_a_file_name(tmp_path):
    text = (NAMES.replace("framework: fake", "framework: fake").replace("kernel: relu", "kernel: " + "k" * 48)
            .replace("      good:", "      " + "v" * 48 + ":"))
    _, m = _expand(tmp_path, text)
    case = m.cases[0]
    (tmp_path / case.id).mkdir()  # a repro bundle's folder
    assert len(case.id.encode()) < 200


# -- item 10: the explore-constraint language is bounded -------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("C ** 9 ** 9 ** 9 > 0", "the exponent of ** must be a whole number from 0 to 64"),
    ("C ** H > 0", "the exponent of ** must be"),
    ("C ** 65 > 0", "the exponent of ** must be"),
    ("C ** -1 > 0", "the exponent of ** must be"),
    ("C ** 0.5 > 0", "the exponent of ** must be"),
    (" + ".join(["C"] * 60) + " > 0", "syntax nodes (at most 100)"),
    ("C > 0 and " * 50 + "C > 0", "longer than 400 characters"),
    ("(" * 30 + "C" + ")" * 30 + " + " + "-" * 30 + "C > 0", "nested more than 20 levels"),
    ("-" * 390 + "C > 0", "syntax nodes"),
])
def test_constraints_beyond_the_bounds_are_refused_quickly(text, message):
    from harness.explore.strategies import ExploreError, compile_constraint

    start = time.monotonic()
    with pytest.raises(ExploreError, match=message.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")):
        compile_constraint(text, {"C", "H"})
    assert time.monotonic() - start < 1.0


def test_bounded_powers_evaluate_and_a_huge_base_is_false_not_slow():
    from harness.explore.strategies import compile_constraint

    assert compile_constraint("C ** 2 == 9 and (C ** 3) ** 2 > 700", {"C"})({"C": 3})
    huge = compile_constraint("((C ** 64) ** 64) ** 64 > 0", {"C"})
    start = time.monotonic()
    assert huge({"C": 3}) is False  # the second ** has a base above 2**64: no value, so the draw is refused
    assert time.monotonic() - start < 1.0


def test_an_explore_block_with_a_bad_constraint_names_its_line(tmp_path):
    from harness.explore.property import collect_targets

    text = NAMES.replace("    builder: relu\n", "    builder: relu\n    explore:\n      dims: {C: {min: 1, max: 4}}\n"
                         "      constraints: ['C ** 9 ** 9 ** 9 > 0']\n")
    path, m = _expand(tmp_path, text)
    with pytest.raises(MatrixError, match=r"m.yaml:8: entries\[relu\].explore: constraint .* the exponent of \*\*"):
        collect_targets([path], m)
