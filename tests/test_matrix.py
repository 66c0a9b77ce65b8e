"""Matrix expansion, id stability and every schema error (file, line and field named)."""

import textwrap
from pathlib import Path

import pytest

from harness.spec.matrix import Scope, format_opsets, load_all, load_tolerances
from harness.spec.yamlsrc import MatrixError

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
    # variant a: opsets 7..12 x float32; b: 7..12 at float32, the ends (7, 12) at float64
    assert len(m.cases) == 6 + 6 + 2
    ids = [c.id for c in m.cases]
    assert len(set(ids)) == len(ids)
    assert "fake-fake-relu-a-opset7-float32-cpu" in ids
    assert "fake-fake-relu-b-opset12-float64-cpu" in ids
    # opsets 1..6 are listed as skipped with a reason, once per variant; float64's middle opsets too
    assert [s[2] for s in m.skipped_opsets] == ["1~6", "1~6", "8~11"]
    assert all("below opset 7" in s[3] for s in m.skipped_opsets[:2])
    assert "--opsets full" in m.skipped_opsets[2][3]
    assert len(expand(write(tmp_path, BASE), opsets="full").cases) == 16 * 3


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
    assert len(m.cases) == 2 * 14
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
    from harness.spec.matrix import matrix_files

    m = load_all(matrix_files(ROOT / "cases"), TOL, Scope())
    assert m.cases and m.rows


# Each message points at the line that wrote the faulty value (entry, variant or file defaults).
FIELD_LINES = [
    ("    inputs:", "    opsets: {min: 12, max: 9}\n    inputs:", 8, "entries[relu].opsets", "impossible opset range"),
    ("    inputs:", "    tolerance: nope\n    inputs:", 8, "entries[relu].tolerance", "unknown tolerance rule 'nope'"),
    ("    inputs:", "    exporters: [nope]\n    inputs:", 8, "entries[relu].exporters", "unknown exporter 'nope'"),
    ("entries:", "defaults:\n  tolerance: nope\nentries:", 5, "entries[relu].tolerance", "unknown tolerance rule"),
    ("a: {kwargs: {behavior: good}}", "a: {kwargs: {behavior: good}, exporters: [nope]}", 10,
     "entries[relu].exporters", "unknown exporter"),
]


@pytest.mark.parametrize("old, new, line, field, message", FIELD_LINES, ids=[f"{e[3]}@{e[2]}" for e in FIELD_LINES])
def test_messages_point_at_the_line_of_the_field(tmp_path, old, new, line, field, message):
    p = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(MatrixError) as err:
        expand(p)
    assert str(err.value).startswith(f"{p}:{line}: {field}: {message}"), str(err.value)


def test_duplicate_across_files_names_both_lines(tmp_path):
    a, b = write(tmp_path, BASE, "a.yaml"), write(tmp_path, "# second copy\n" + BASE, "b.yaml")
    with pytest.raises(MatrixError) as err:
        load_all([a, b], TOL, Scope(), max_opset=22)
    assert str(err.value).startswith(f"{b}:6: entries[relu]: case id fake-fake-relu-a-opset7-float32-cpu "
                                     f"also produced by {a}:5"), str(err.value)


def test_non_utf8_file_is_named(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_bytes(BASE.replace("    builder: relu\n", "    builder: relu  # caf\xe9\n").encode("latin-1"))
    with pytest.raises(MatrixError, match=r"m.yaml:7: <encoding>: not UTF-8 text \(byte 0xe9"):
        expand(p)


@pytest.mark.parametrize("text, got", [("", "the file is empty"), ("# nothing yet\n", "the file is empty"),
                                       ("- relu\n", "the file holds a list")])
def test_empty_or_non_mapping_files_say_what_was_expected(tmp_path, text, got):
    from harness.spec.expectations import Expectations

    m = write(tmp_path, text)
    with pytest.raises(MatrixError) as err:
        expand(m)
    assert f"{got}; expected a mapping with the keys framework:, exporters:, entries:" in str(err.value)
    assert "None is not of type" not in str(err.value)
    tol = write(tmp_path, text, "tol.yaml")
    with pytest.raises(MatrixError, match=f"{got}; expected a mapping with the keys rules:, defaults:"):
        load_tolerances(tol)
    with pytest.raises(MatrixError, match=f"{got}; expected a mapping with the keys expected_failures:"):
        Expectations.load(write(tmp_path, text, "xf.yaml"))


def test_control_character_names_the_line(tmp_path):
    p = write(tmp_path, BASE.replace("builder: relu", "builder: re\x07lu"))
    with pytest.raises(MatrixError, match=r"m.yaml:7: <syntax>: unacceptable character"):
        expand(p)
