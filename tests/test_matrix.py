"""Matrix expansion, id stability and every schema error (file, line and field named)."""

import textwrap
from pathlib import Path

import pytest

from harness.matrix import Scope, format_opsets, load_all, load_tolerances
from harness.yamlsrc import MatrixError

ROOT = Path(__file__).resolve().parent.parent
TOL = ROOT / "cases" / "tolerances.yaml"

BASE = """\
framework: fake
exporters: [fake]
plugins: [tests.fakes]
entries:
  - kernel: relu
    table: {opsets: "1~12"}
    builder: relu
    inputs: [{shape: [2, 3]}]
    variants:
      a: {kwargs: {behavior: good}}
      b: {kwargs: {behavior: good}, dtypes: [float32, float64]}
"""


def write(tmp_path, text, name="m.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def expand(path, **scope):
    return load_all([path], TOL, Scope(**scope), max_opset=22)


def test_expansion_counts_and_ids(tmp_path):
    m = expand(write(tmp_path, BASE))
    # variant a: opsets 7..12 x float32; b: 7..12 x 2 dtypes
    assert len(m.cases) == 6 + 12
    ids = [c.id for c in m.cases]
    assert len(set(ids)) == len(ids)
    assert "fake-fake-relu-a-opset7-float32-cpu" in ids
    assert "fake-fake-relu-b-opset12-float64-cpu" in ids
    # opsets 1..6 are listed as skipped with a reason, once per variant
    assert [s[2] for s in m.skipped_opsets] == ["1~6", "1~6"]
    assert all("below opset 7" in s[3] for s in m.skipped_opsets)


def test_ids_are_stable_across_loads_and_scopes(tmp_path):
    p = write(tmp_path, BASE)
    first = [c.id for c in expand(p).cases]
    assert first == [c.id for c in expand(p).cases]
    full = {c.id for c in expand(p, opsets="full").cases}
    assert set(first) <= full
    assert "fake-fake-relu-a-opset22-float32-cpu" in full


def test_full_scope_marks_out_of_range(tmp_path):
    m = expand(write(tmp_path, BASE), opsets="full")
    by = {c.id: c for c in m.cases}
    assert by["fake-fake-relu-a-opset12-float32-cpu"].declared["in_range"] is True
    assert by["fake-fake-relu-a-opset13-float32-cpu"].declared["in_range"] is False


def test_seed_shared_across_opsets_and_exporters(tmp_path):
    m = expand(write(tmp_path, BASE))
    seeds = {c.seed for c in m.cases if c.variant == "a"}
    assert len(seeds) == 1


def test_devices_axis(tmp_path):
    m = expand(write(tmp_path, BASE), devices=("cpu", "cuda0"))
    assert len(m.cases) == 2 * 18
    assert any(c.id.endswith("-cuda0") for c in m.cases)


def test_format_opsets_with_holes():
    assert format_opsets([7, 8, 9, 11, 12, 13, 21]) == "7~9, 11~13, 21"
    assert format_opsets([13]) == "13"
    assert format_opsets([]) == ""


ERRORS = [
    # (replacement in BASE, expected line, field fragment, message fragment)
    ('    builder: relu\n', '    builder: relu\n    colour: red\n', 8, "entries[relu].colour", "unknown key 'colour'"),
    ('table: {opsets: "1~12"}', 'table: {opsets: "12~1"}', 6, "entries[relu].table.opsets", "impossible opset range"),
    ('table: {opsets: "1~12"}', 'table: {opsets: "one~12"}', 6, "table.opsets", "not of the form"),
    ('builder: relu', 'builder: no_such_builder', 7, "entries[relu].builder", "no builder 'no_such_builder'"),
    ('inputs: [{shape: [2, 3]}]', 'inputs: [{shape: "2x3"}]', 8, "inputs[0].shape", "is not of type 'array'"),
    ('a: {kwargs: {behavior: good}}', 'a: {kwargs: {behavior: good}, tolerance: loose}', 10,
     "entries[relu].tolerance", "unknown tolerance rule 'loose'"),
    ('a: {kwargs: {behavior: good}}', 'a: {kwargs: {behavior: good}, opsets: {min: 12, max: 9}}', 10,
     "entries[relu].opsets", "impossible opset range"),
    ('exporters: [fake]', 'exporters: fake', 2, "exporters", "is not of type 'array'"),
    ('    builder: relu\n', '    builder: relu\n    call: numpy.abs\n', 5, "entries[relu]", "exactly one of"),
]


@pytest.mark.parametrize("old, new, line, field, message", ERRORS, ids=[e[3] + ":" + e[4][:20] for e in ERRORS])
def test_schema_errors_name_file_line_field(tmp_path, old, new, line, field, message):
    assert old in BASE
    p = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(MatrixError) as err:
        expand(p)
    text = str(err.value)
    assert text.startswith(f"{p}:{line}: "), text
    assert field in text and message in text, text
    assert "\n" not in text


def test_duplicate_kernel_id(tmp_path):
    dup = BASE + textwrap.indent(textwrap.dedent("""\
        - kernel: relu
          table: {opsets: "7~8"}
          builder: relu
          inputs: [{shape: [1]}]
        """), "  ")
    p = write(tmp_path, dup)
    dup_msg = r"m.yaml:12: entries\[relu\].kernel: duplicate kernel id 'relu' \(first at line 5\)"
    with pytest.raises(MatrixError, match=dup_msg):
        expand(p)


def test_duplicate_yaml_key(tmp_path):
    p = write(tmp_path, BASE.replace("    builder: relu\n", "    builder: relu\n    builder: relu\n"))
    with pytest.raises(MatrixError, match=r"m.yaml:8: entries.0.builder: duplicate key"):
        expand(p)


def test_yaml_syntax_error(tmp_path):
    p = write(tmp_path, BASE.replace("entries:", "entries: [\n"))
    with pytest.raises(MatrixError, match=r"m.yaml:\d+: <syntax>"):
        expand(p)


def test_bad_tolerance_rule(tmp_path):
    p = write(tmp_path, "rules:\n  r: {kind: allclose, rtol: 1.0e-3}\ndefaults: {float32: r}\n", "tol.yaml")
    with pytest.raises(MatrixError, match=r"tol.yaml:2: rules.r.atol: rule kind 'allclose' needs a number 'atol'"):
        load_tolerances(p)
    # YAML 1.1 reads 1e-3 (no dot) as a string: the error says so
    p = write(tmp_path, "rules:\n  r: {kind: allclose, rtol: 1e-3, atol: 1.0e-5}\ndefaults: {float32: r}\n", "tol.yaml")
    with pytest.raises(MatrixError, match=r"rules.r.rtol: .*got '1e-3'.*1.0e-3"):
        load_tolerances(p)


def test_real_matrices_load():
    from harness.matrix import matrix_files

    m = load_all(matrix_files(ROOT / "cases"), TOL, Scope())
    assert m.cases and m.rows
