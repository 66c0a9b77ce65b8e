"""Derived forms (``--forms derived``): the generated files are current, the pairwise cover covers,
the API reader reads both docstring styles, the loader adds only ``dv_`` variants, and a form the
framework refuses is a skip naming the form."""

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml

from harness.cli import derive as derive_cli
from harness.core import status
from harness.core.case import Case
from harness.explore import apifacts, forms
from harness.spec import derived
from harness.spec.matrix import Scope, load_all, matrix_files
from harness.spec.yamlsrc import MatrixError

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
DERIVED = sorted((CASES / "derived").glob("*.yaml"))


def _load(forms_: str, cases=CASES):
    return load_all(matrix_files(cases), cases / "tolerances.yaml", Scope(forms=forms_), max_opset=21)


@pytest.mark.parametrize("framework", ["paddle", "torch"])
def test_the_committed_files_are_what_derive_writes(framework):
    """For the frameworks of the main environment: rerunning ``python -m harness derive`` changes nothing."""
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed here")
    files = derive_cli.derive_files(CASES, (framework,))
    assert files, f"no matrix of {framework}"
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        assert current == text, f"{path.relative_to(ROOT)} is out of date: run python -m harness derive"


def test_every_framework_has_a_derived_file():
    assert {yaml.safe_load(p.read_text())["framework"] for p in DERIVED} >= {"paddle", "torch", "tensorflow",
                                                                             "oneflow"}


@pytest.mark.parametrize("path", DERIVED, ids=[p.stem for p in DERIVED])
def test_the_pairwise_variants_cover_every_pair(path):
    """Fixed variants of a group plus its derived pairwise ones hold every (attr=value, attr=value) pair."""
    data = yaml.safe_load(path.read_text())
    matrix = yaml.safe_load((CASES / data["matrix"]).read_text())
    entries = {e.kernel: e for e in forms.entries_of(matrix, {})}
    checked = 0
    for kernel, block in data["entries"].items():
        pw = [v["kwargs"] for n, v in block["variants"].items() if n.startswith("dv_pw_")]
        for dom in block.get("domains", []):
            rows = [entries[kernel].specs[m].get("kwargs", {}) for m in dom["variants"]] + pw
            assert forms.uncovered(dom["kwargs"], rows) == [], (kernel, dom["variants"])
            checked += 1
    assert checked or "pairwise" not in path.read_text().split("\n", 6)[5]


def test_tuple_kwargs_pass_a_tuple():
    from harness.core.calls import Call

    call = Call.of({"call": "builtins.dict", "kwargs": {"dim": [1, 2]}, "tuple_kwargs": ["dim"]})
    assert call.kwargs == {"dim": (1, 2)} and call() == {"dim": (1, 2)}


def test_the_cover_check_can_fail():
    domains = {"a": [1, 2, 3], "b": [True, False], "c": [forms.ABSENT, "x"]}
    rows = forms.pairwise_cover(domains)
    assert forms.uncovered(domains, rows) == []
    assert len(rows) < 3 * 2 * 2  # a cover, not the product
    drop = rows[0]
    missing = forms.uncovered(domains, rows[1:])
    assert missing and all(drop.get(a) == va and drop.get(b) == vb for a, va, b, vb in missing)
    assert forms.pairwise_cover(domains) == rows  # deterministic


def test_names_are_short_stable_and_unique():
    long = forms.name_of("pw", [f"attribute{i}value{i}" for i in range(8)])
    assert len(long) <= forms.MAX_NAME and long == forms.name_of("pw", [f"attribute{i}value{i}" for i in range(8)])
    assert long != forms.name_of("pw", [f"attribute{i}value{i + 1}" for i in range(8)])
    assert forms.name_of("pw", ["axism1", "keepdimt"]) == "dv_pw_axism1_keepdimt"
    for path in DERIVED:
        for block in yaml.safe_load(path.read_text())["entries"].values():
            assert all(n.startswith(forms.PREFIX) and len(n) <= forms.MAX_NAME for n in block["variants"])


PADDLE_DOC = """Concat tensors.

Args:
    x (list|tuple): The input Tensors.
    axis (int|Tensor, optional): Specify the axis. Default is 0.
        It's a continuation: not a parameter.
    keepdim (bool, optional): Whether to keep.
    name (str|None, optional): For details.

Returns:
    Tensor, the result.
"""
TF_DOC = """Reshapes a tensor.

Args:
  tensor: The tensor to reshape.
  shape: A `Tensor`. Must be one of the following types: `int32`, `int64`. The shape.
  axis: The dimension along which to split the tensor. Must be in range.
  size: A 1-D int32 Tensor of 2 elements.
  name: A name for the operation (optional).
"""


def test_the_api_reader_reads_both_docstring_styles():
    types, prose = apifacts.parse_doc(PADDLE_DOC)
    assert types == {"x": "list|tuple", "axis": "int|Tensor, optional", "keepdim": "bool, optional",
                     "name": "str|None, optional"} and not prose

    def fn(x, axis=0, keepdim=False, name=None):
        pass
    fn.__doc__ = PADDLE_DOC
    facts = apifacts.facts_of(fn)
    assert facts["axis"]["tensor"] and not facts["x"]["tensor"] and facts["x"]["sequence"]
    assert facts["keepdim"]["bool"] and not facts["axis"]["bool"]

    def tf_fn(tensor, shape, axis=None, size=None, name=None):
        pass
    tf_fn.__doc__ = TF_DOC
    facts = apifacts.facts_of(tf_fn)
    assert facts["shape"]["tensor"] and facts["size"]["tensor"]
    assert not facts["axis"]["tensor"] and not facts["tensor"]["tensor"]  # "the tensor" is the input


def test_forms_of_an_entry():
    matrix = {"framework": "torch", "entries": [{
        "kernel": "sum", "table": {"opsets": "7~13"}, "call": "torch.sum", "inputs": [{"shape": [2, 3, 4]}],
        "variants": {"dim1": {"kwargs": {"dim": 1}}, "dim2_keep": {"kwargs": {"dim": 2, "keepdim": True}}}}]}
    api = {"torch.sum": {"dim": {"type": "int or tuple of ints", "tensor": False, "sequence": True, "bool": False},
                         "keepdim": {"type": "bool", "tensor": False, "sequence": False, "bool": True}}}
    out = forms.derive(matrix, api)["sum"]
    names = set(out["variants"])
    assert {"dv_rank0", "dv_size1", "dv_rank1", "dv_rank_up", "dv_tu_dim", "dv_n_dim"} <= names
    assert "dv_l_dim" not in names  # the docs name a tuple, not a list
    assert out["variants"]["dv_tu_dim"]["kwargs"] == {"dim": [1]}
    assert out["variants"]["dv_tu_dim"]["tuple_kwargs"] == ["dim"]
    assert out["variants"]["dv_n_dim"]["kwargs"] == {"dim": -2}
    assert out["variants"]["dv_rank0"]["inputs"] == [{"shape": [], "dynamic": []}]
    # keepdim: absent, True, and the documented False; dim: 1, 2
    assert out["domains"] == [{"variants": ["dim1", "dim2_keep"],
                               "kwargs": {"dim": [1, 2], "keepdim": [forms.ABSENT, True, False]}}]
    assert not any(n.startswith("dv_t_") for n in names)  # nothing documented as a tensor
    api["torch.sum"]["dim"].update(tensor=True, type="int|list|Tensor")
    assert forms.derive(matrix, api)["sum"]["variants"]["dv_l_dim"]["kwargs"] == {"dim": [1]}
    t = forms.derive(matrix, api)["sum"]["variants"]["dv_t_dim"]
    assert t["tensor_kwargs"] == ["dim"] and "dim" not in t["kwargs"]
    assert t["inputs"][-1] == {"shape": [], "dtype": "int64", "values": [1], "dynamic": []}


def test_the_default_run_is_unchanged_and_derived_adds_dv_variants_only():
    fixed, more = _load("fixed"), _load("derived")
    assert not [c for c in fixed.cases if c.variant.startswith("dv_")]
    assert {c.id for c in fixed.cases} <= {c.id for c in more.cases}
    new = [c for c in more.cases if c.variant.startswith("dv_")]
    assert len(new) == len(more.cases) - len(fixed.cases) > 0
    assert {c.framework for c in new} == {"paddle", "torch", "tensorflow", "oneflow"}
    for c in new:
        assert c.spec["derived"] and c.source.split(":")[0].endswith(f"derived/{Path(c.source.split(':')[0]).name}")
    assert {c.dtype for c in new} <= {"float32", "int32", "int64", "bool"}
    per = {}
    for c in new:
        per.setdefault((c.framework, c.kernel, c.variant, c.exporter), set()).add(c.opset)
    assert max(len(o) for o in per.values()) <= 2  # the lowest and highest opset of each exporter


def _copy_cases(tmp_path):
    dst = tmp_path / "cases"
    dst.mkdir()
    for p in ("paddle.yaml", "tolerances.yaml"):
        (dst / p).write_text((CASES / p).read_text())
    (dst / "derived").mkdir()
    return dst


def test_a_stale_derived_file_is_refused_with_its_line(tmp_path):
    dst = _copy_cases(tmp_path)
    data = yaml.safe_load((CASES / "derived" / "paddle.yaml").read_text())
    data["entries"] = {"no_such_kernel": copy.deepcopy(next(iter(data["entries"].values())))}
    (dst / "derived" / "paddle.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(MatrixError, match=r"derived/paddle\.yaml:\d+: entries\.no_such_kernel: no entry"):
        _load("derived", dst)
    _load("fixed", dst)  # the default run never reads it


def test_a_form_the_framework_refuses_is_a_skip_naming_the_form(tmp_path):
    from harness.core.pipeline import ModelCache, run_case
    import tests.fakes  # noqa: F401 - registers the fake framework and exporter

    spec = {"builder": "relu", "kwargs": {"behavior": "reference-raises"},
            "inputs": [{"shape": [2, 3], "dtype": "float32"}], "dtype": "float32"}
    base = dict(framework="fake", kernel="relu", variant="dv_rank0", exporter="fake", opset=13, dtype="float32",
                device="cpu", tolerance={"name": "exact", "kind": "exact"}, declared={"range": "13~14"})
    fixed = run_case(Case(spec=spec, **base), str(tmp_path), ModelCache())
    assert fixed["status"] == status.EXPORT_ERROR  # a fixed variant: the framework failing is a failure
    made = run_case(Case(spec={**spec, "derived": "rank: 0-d inputs"}, **base), str(tmp_path), ModelCache())
    assert made["status"] == status.SKIPPED
    assert "refuses the derived form dv_rank0 (rank: 0-d inputs)" in made["message"]
    assert derived.path_of(CASES / "paddle.yaml") == CASES / "derived" / "paddle.yaml"


def test_derived_expected_failures_are_read_with_derived_forms_only(tmp_path):
    from harness.spec.expectations import Expectations

    folder = tmp_path / "expected_failures"
    (folder / "derived").mkdir(parents=True)
    (folder / "paddle.yaml").write_text("expected_failures:\n  - match: 'paddle-*-abs-default-*'\n"
                                        "    status: [mismatch]\n    reason: a fixed case fails for a reason\n")
    (folder / "derived" / "paddle.yaml").write_text(
        "expected_failures:\n  - match: 'paddle-*-abs-dv_rank0-*'\n"
        "    status: [mismatch]\n    reason: a derived case fails for a reason\n")
    assert [e.match for e in Expectations.load(folder).entries] == ["paddle-*-abs-default-*"]
    assert [e.match for e in Expectations.load(folder, "derived").entries] == [
        "paddle-*-abs-default-*", "paddle-*-abs-dv_rank0-*"]


def test_a_tensor_form_of_a_scalar_is_a_0d_input():
    import numpy as np

    from harness.core.inputs import make_input_sets

    spec = {"inputs": [{"shape": [2], "dtype": "float32"},
                       {"shape": [], "dtype": "int64", "values": [1], "dynamic": []}]}
    case = Case(framework="torch", kernel="k", variant="dv_t_dim", exporter="e", opset=13, dtype="float32",
                device="cpu", spec=spec, tolerance={}, declared={})
    xs = make_input_sets(case)[0]
    assert xs[1].shape == () and xs[1].dtype == np.int64 and int(xs[1]) == 1
