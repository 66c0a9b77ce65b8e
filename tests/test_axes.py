"""Runtimes and post-export passes as axes of the matrix: selection, ids, expected failures, blame."""

import shutil

import pytest

from harness.core import status
from harness.spec.expectations import Expectations
from harness.report.results import read_results

EXPECTED = """\
expected_failures:
  - match: "fake-fake-relu-good-*"
    runtimes: [fake-wrong-relu]
    status: [mismatch]
    reason: "the fake runtime adds 1 to every model with a Relu"
  - match: "fake-fake-relu-good-*"
    runtimes: [ort]
    passes: [fake-drop-node]
    status: [pass-changed-result]
    reason: "the fake pass drops the Relu"
"""


def test_entries_narrow_to_runtimes_and_passes(tmp_path):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(EXPECTED)
    exp = Expectations.load(path)
    cid = "fake-fake-relu-good-opset13-float32-cpu"
    assert exp.find(cid) is None  # ort, no pass: neither entry
    assert exp.find(cid + "-fake-wrong-relu", "fake-wrong-relu", "none") is exp.entries[0]
    assert exp.find(cid + "-fake-wrong-relu-fake-drop-node", "fake-wrong-relu", "fake-drop-node") is exp.entries[0]
    assert exp.find(cid + "-fake-drop-node", "ort", "fake-drop-node") is exp.entries[1]
    assert exp.find(cid + "-onnxsim", "ort", "onnxsim") is None
    stale = exp.mark_collected([cid, cid + "-fake-drop-node"], {cid + "-fake-drop-node": ("ort", "fake-drop-node")})
    assert stale == [exp.entries[0]]


def test_runtimes_and_passes_expand_the_matrix(tmp_path, root, run_conformance):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(root / "cases" / "tolerances.yaml", cases)
    (cases / "expected_failures.yaml").write_text(EXPECTED)
    results = tmp_path / "r.jsonl"
    run = run_conformance("--cases-dir", cases, "--matrix", root / "tests" / "data" / "fake.yaml", "-n", "0",
                          "--no-report", "--results", results, "-k", "good",
                          "--runtimes", "ort,fake-wrong-relu", "--passes", "none,fake-drop-node")
    assert run.ret == pytest.ExitCode.OK, run.stdout.str()
    run.assert_outcomes(passed=2, xfailed=6)
    recs = list(read_results(results))
    base = "fake-fake-relu-good-opset13-float32-cpu"
    ids = [r["id"] for r in recs if r["opset"] == 13]
    # a case's runtimes and passes follow it (they share its export), in the order asked for
    assert ids == [base, base + "-fake-drop-node", base + "-fake-wrong-relu", base + "-fake-wrong-relu-fake-drop-node"]
    by_id = {r["id"]: r for r in recs}
    assert by_id[base]["status"] == status.PASS and by_id[base]["blame"] is None
    assert by_id[base + "-fake-drop-node"]["status"] == status.PASS_CHANGED_RESULT
    assert by_id[base + "-fake-drop-node"]["blame"] == status.BLAME_PASS
    assert by_id[base + "-fake-wrong-relu"]["blame"] == status.BLAME_RUNTIME
    assert all(r["export_reused"] for r in recs if r["runtime"] != "ort" or r["post_pass"] != "none")


@pytest.mark.parametrize("option, value, known", [
    ("--runtimes", "ort,nosuch", "fake-wrong-relu, litert, mnn, ncnn, openvino, ort, reference, tensorrt, tract, tvm"),
    ("--passes", "nosuch", "fake-breaks")])
def test_unknown_runtime_or_pass_is_a_usage_error(root, run_conformance, option, value, known):
    run = run_conformance("--matrix", root / "tests" / "data" / "fake.yaml", "-n", "0", "--no-report",
                          option, value)
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    err = run.stderr.str()
    assert f"{option}: unknown 'nosuch' (known: " in err and known in err, err


def _rec(runtime="ort", post_pass="none", status_="pass", kernel="leaky_relu", opset=13, **kw):
    rid = f"paddle-dygraph-{kernel}-default-opset{opset}-float32-cpu"
    rid += (f"-{runtime}" if runtime != "ort" else "") + (f"-{post_pass}" if post_pass != "none" else "")
    r = {"id": rid, "framework": "paddle", "exporter": "dygraph", "kernel": kernel, "variant": "default",
         "opset": opset, "dtype": "float32", "device": "cpu", "status": status_, "message": "", "stage": "",
         "max_abs": 0.0, "max_rel": 0.0, "shared_key": kernel, "tolerance": "seed-abs-rel",
         "declared": {"range": "7~21"}, "runtime": runtime, "post_pass": post_pass}
    r.update(kw)
    return r


def test_report_tables_for_runtimes_passes_and_blame():
    from harness.report.aggregate import summarize
    from harness.report.markdown import cell, render
    from harness.report.backends import markdown_sections

    records = [
        _rec(),
        _rec("openvino", status_="mismatch", max_abs=0.5, max_rel=1.0, blame="runtime"),
        _rec("reference"),
        _rec(post_pass="onnxsim", status_="pass-changed-result", pass_status="mismatch", max_abs=2.0,
             blame="pass", message="onnxsim changed the result"),
        _rec(kernel="abs", status_="mismatch", max_abs=1.0, blame="exporter"),
        _rec("openvino", kernel="abs", status_="mismatch", max_abs=1.0, blame="exporter"),
    ]
    summary = summarize(records)
    b = summary.backends
    assert [d.case for d in b.disagreements] == ["paddle-dygraph-leaky_relu-default-opset13-float32-cpu"]
    assert set(b.disagreements[0].by_runtime) == {"ort", "openvino", "reference"}
    assert [r["id"] for r in b.pass_breaks] == [records[3]["id"]]
    assert b.blame_by_exporter == {"paddle/dygraph": {"runtime": 1, "pass": 1, "exporter": 2}}
    assert b.blame_by_runtime["openvino"] == {"runtime": 1, "exporter": 1}
    # one heatmap group per runtime and pass
    assert {g[2] for g in summary.rows} == {"cpu", "cpu · runtime openvino", "cpu · runtime reference",
                                            "cpu · pass onnxsim"}
    text = "\n".join(markdown_sections(b, cell))
    assert "## Runtimes disagree" in text and "mismatch (max_abs 0.5, max_rel 1)" in text
    assert "## Post-export passes break models" in text and "| pass-changed-result | mismatch (max_abs 2" in text
    assert "| paddle/dygraph | 2 | 1 | 1 | 0 |" in text
    meta = {**meta_of(6), "environment": {"packages": {}, "python": "3.11", "date": "x"}}
    assert "## Blame per framework/exporter" in render(summary, meta)
    from harness.report.html import render as render_html

    page = render_html(summary, {**meta, "environment": {**meta["environment"], "git_sha": ""}})
    assert "<h2>Runtimes disagree</h2>" in page and "<h2>Blame per runtime under test</h2>" in page


def meta_of(n: int) -> dict:
    return {"files": [], "n_records": n, "n_loaded": n, "conflicts": [], "bad": [],
            "dtypes": {"selected": None, "covered": ["float32"], "missing": []}}


def test_reference_evaluator_refuses_older_semantics_it_does_not_implement():
    """onnx.reference runs RoiAlign / Resize / Softmax-family nodes with their newest semantics only."""
    from onnx import TensorProto, helper

    from harness.runtimes.reference import older_semantics

    def softmax(opset, axis):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])
        node = helper.make_node("Softmax", ["x"], ["y"], axis=axis)
        return helper.make_model(helper.make_graph([node], "g", [x], [y]),
                                 opset_imports=[helper.make_opsetid("", opset)])

    assert older_semantics(softmax(13, 1)) is None
    assert older_semantics(softmax(11, -1)) is None and older_semantics(softmax(11, 2)) is None  # the last axis
    assert "Softmax-13's semantics, not those of Softmax-11" in older_semantics(softmax(11, 1))


@pytest.mark.parametrize("verdict, runtime, opinion, blamed, why", [
    (status.PASS, "ort", None, None, None),
    (status.EXPORT_ERROR, "ort", None, None, None),  # no model to judge
    (status.CRASH, "ort", None, None, None),
    (status.INVALID_MODEL, "ort", None, status.BLAME_EXPORTER, "onnx.checker rejects"),
    (status.OPSET_NOT_HONORED, "openvino", None, status.BLAME_EXPORTER, "another opset"),
    (status.PASS_CHANGED_RESULT, "ort", None, status.BLAME_PASS, "after the post-export pass"),
    (status.MISMATCH, "reference", None, status.BLAME_UNDETERMINED, "no second opinion"),
    (status.MISMATCH, "ort", {}, status.BLAME_RUNTIME, "matches the framework; ort does not"),
    (status.RUNTIME_UNSUPPORTED, "openvino", {}, status.BLAME_RUNTIME, "openvino cannot run it"),
    (status.MISMATCH, "ort", {"vs_framework": "mismatch: far", "vs_runtime": "identical outputs",
                              "agrees_with_runtime": True}, status.BLAME_EXPORTER, "agrees with ort (identical"),
    (status.MISMATCH, "ort", {"vs_framework": "mismatch: far", "vs_runtime": "output 0: far"},
     status.BLAME_UNDETERMINED, "and from ort"),
    (status.RUNTIME_ERROR, "ort", {"vs_framework": "mismatch: far"}, status.BLAME_UNDETERMINED, "gave no output"),
    (status.MISMATCH, "ort", {"problem": "it lacks Foo"}, status.BLAME_UNDETERMINED, "gave no verdict: it lacks Foo"),
])
def test_blame_decision_table(verdict, runtime, opinion, blamed, why):
    from harness.core.blame import Opinion, decide

    found = decide(verdict, "checker", runtime, None if opinion is None else Opinion(**opinion))
    if blamed is None:
        assert found is None
    else:
        assert found[0] == blamed and why in found[1], found


def test_a_slow_second_opinion_is_cut_off(fake_matrix, tmp_path, monkeypatch):
    """The reference evaluator gets BLAME_BUDGET_S per case; past it the blame is undetermined, the verdict stays."""
    import time

    import tests.fakes  # noqa: F401 - registers the fake framework in this process
    from harness.core import pipeline
    from harness.runtimes import reference

    def slow(self, inputs):
        time.sleep(5)

    monkeypatch.setattr(pipeline, "BLAME_BUDGET_S", 0.2)
    monkeypatch.setattr(reference.ReferenceSession, "run", slow)
    case = next(c for c in fake_matrix.cases if c.variant == "wrong_values" and c.opset == 13)
    t0 = time.perf_counter()
    rec = pipeline.run_case(case, str(tmp_path), pipeline.ModelCache())
    assert time.perf_counter() - t0 < 3
    assert rec["status"] == status.MISMATCH
    assert rec["blame"] == status.BLAME_UNDETERMINED and "took longer than 0.2 s" in rec["blame_why"], rec
