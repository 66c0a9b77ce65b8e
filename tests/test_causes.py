"""Failures grouped by cause: hand-labelled real failures, stability, counts, expected failures by cause."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from harness.core import status
from harness.spec.expectations import Expectations
from harness.report import diff, triage
from harness.core.causes import cause_of, group, normalise
from harness.cli.suggest import migrate, outcomes, render
from harness.spec.yamlsrc import MatrixError

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "data" / "causes_labelled.jsonl"
CONCAT = "paddle2onnx: Concat axis attribute is garbage when the axis is a tensor"


def labelled() -> list[dict]:
    """Failures of real runs, each labelled by hand with its bug (tests/data/causes_labelled.jsonl).

    From a default run, plus two ONNX Runtime ``runtime-error`` records of the
    Concat bug from a later run of the same cases (the garbage axis differs
    from run to run, and so does the status it shows as).
    """
    return [json.loads(line) for line in LABELLED.read_text().splitlines()]


def test_labelled_failures_neither_merge_nor_split():
    recs = labelled()
    by_label, by_cause = defaultdict(set), defaultdict(set)
    for r in recs:
        cid = cause_of(r).id
        by_label[r["label"]].add(cid)
        by_cause[cid].add(r["label"])
    splits = {label: ids for label, ids in by_label.items() if len(ids) > 1}
    merges = {cid: labels for cid, labels in by_cause.items() if len(labels) > 1}
    assert not splits and not merges, (splits, merges)
    # the cases the issue names: one cause over two statuses, over many kernels, and two SIGABRTs apart
    concat = [r for r in recs if r["label"] == CONCAT]
    assert {r["status"] for r in concat} == {status.INVALID_MODEL, status.RUNTIME_ERROR}
    constant = [r for r in recs if "Constant of int64" in r["label"]]
    assert len({r["kernel"] for r in constant}) >= 5 and len({r["exporter"] for r in constant}) == 2
    aborts = {r["label"] for r in recs if "SIGABRT" in r["message"]}
    assert len(aborts) >= 4 and len({cause_of(r).id for r in recs if "SIGABRT" in r["message"]}) == len(aborts)
    assert len(by_label) == len(by_cause) == 12


def _rerun(rec: dict, rng: random.Random) -> dict:
    """``rec`` as another run of the same bug would write it: new numbers in names, paths, times, values."""
    out = dict(rec)
    n = rng.randint(1, 999)
    for key in ("message", "log"):
        if out.get(key):
            text = re.sub(r"/tmp/[\w.-]+", f"/tmp/onnx-conf-{n}-{rng.randint(0, 99999):05d}", out[key])
            text = re.sub(r"(Concat|Identity|m-\w+)[.-](\d+)", lambda m: f"{m.group(1)}.{n}"
                          if m.group(0)[len(m.group(1))] == "." else f"{m.group(1)}-{n}", text)
            text = re.sub(r"axis \d{6,}", f"axis {rng.randint(10**9, 10**15)}", text)
            text = re.sub(r"max_abs=[\d.]+", f"max_abs={rng.uniform(0.1, 9):.3g}", text)
            text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "2027-01-0%d 0%d:11:12" % (n % 9 + 1, n % 9), text)
            out[key] = text
    out["finished"] = f"2027-01-01T00:00:{n % 60:02d}+00:00"
    return out


def test_grouping_is_stable_under_rerun_and_reordering():
    recs = labelled()
    first = [(g.cause.id, g.reach, [r["id"] for r in g.records]) for g in group(recs)]
    for seed in range(5):
        rng = random.Random(seed)
        again = [_rerun(r, rng) for r in recs]
        rng.shuffle(again)
        assert [(g.cause.id, g.reach, [r["id"] for r in g.records]) for g in group(again)] == first
        assert [g.smallest()["id"] for g in group(again)] == [g.smallest()["id"] for g in group(recs)]


def test_every_failing_record_is_in_exactly_one_cause_and_counts_add_up():
    recs = labelled()
    passing = {**recs[0], "id": "paddle-static-relu-default-opset13-float32-cpu", "status": status.PASS,
               "message": ""}
    skipped = {**passing, "id": passing["id"].replace("relu", "relu6"), "status": status.SKIPPED}
    groups, totals = triage.summary(recs + [passing, skipped])
    ids = [r["id"] for g in groups for r in g.records]
    assert sorted(ids) == sorted(r["id"] for r in recs)  # each failing record once, no pass or skip
    assert totals["failing"] == totals["grouped"] == len(recs) and totals["causes"] == len(groups)
    assert sum(totals["per_project"].values()) == len(groups)
    md = triage.markdown(groups, totals)
    assert f"{len(recs)} failing record(s) of {len(recs) + 2}" in md and f"**{len(groups)} cause(s)**" in md


def test_normalise_drops_what_varies_and_keeps_names():
    assert normalise("axis 94097586615792 is not in valid range [-3,2]") == "axis N is not in valid range [N,N]"
    assert normalise("Load model from /tmp/a1/b.onnx failed at 0x7ffd12") == "Load model from <path> failed at <addr>"
    assert normalise("(op_type:Concat, node name: Concat.12): tensor(int64) pool_2d") == \
        "(op_type:Concat, node name: <node>): tensor(int64) pool_2d"
    assert normalise("Only support data type of BOOL/FLOAT/INT64") == "Only support data type of BOOL/FLOAT/INT64"
    assert normalise("\x1b[0;33m2026-12-02 03:05:10 [WARNING]\tx") == "[WARNING] x"


def test_cause_is_the_runtimes_when_blamed_on_it_and_spans_frameworks():
    recs = [r for r in labelled() if "Conv kernel" in r["label"]]
    causes = {cause_of(r) for r in recs}
    assert len(causes) == 1
    (c,) = causes
    assert c.project == "ONNX Runtime" and c.party == status.BLAME_RUNTIME and c.op == "Conv"
    assert {r["framework"] for r in recs} == {"oneflow", "paddle"}


def test_draft_is_addressed_and_complete(tmp_path):
    recs = labelled()
    paths = triage.write(recs, tmp_path, env={"packages": {"onnx": "1.17.0", "paddle2onnx": "2.1.0"},
                                               "python": "3.11", "platform": "Linux"}, portable=True)
    assert [p.name for p in paths] == ["causes.md", "causes.json", "causes.html", "causes"]
    concat = next(g for g in group(recs) if g.cause.op == "Concat")
    text = (tmp_path / "causes" / f"{concat.cause.id}.md").read_text()
    for part in ("# Paddle2ONNX writes a Concat node with an out-of-range 'axis' attribute", "To: **Paddle2ONNX**",
                 "## Environment", "- paddle2onnx 2.1.0", "## Smallest case", "## Expected", "## Actual",
                 "## Error", "## ONNX node", "Op type: `Concat`", "## Scope", "| dygraph | concat |"):
        assert part in text, part
    smallest = concat.smallest()
    assert f"`{smallest['id']}`" in text.split("## Smallest case")[1].splitlines()[2]
    fewest = min(len(r["op_types"]) for r in concat.records)
    assert len(smallest["op_types"]) == fewest and smallest["opset"] == min(
        r["opset"] for r in concat.records if len(r["op_types"]) == fewest and r["dtype"] == smallest["dtype"])
    conv = next(g for g in group(recs) if g.cause.project == "ONNX Runtime")
    assert "To: **ONNX Runtime** (runtime)" in (tmp_path / "causes" / f"{conv.cause.id}.md").read_text()
    data = json.loads((tmp_path / "causes.json").read_text())
    assert sum(c["reach"] for c in data["causes"]) == len(recs) == data["totals"]["failing"]
    assert "<script" not in (tmp_path / "causes.html").read_text()


def test_triage_command(tmp_path, capsys):
    from harness.__main__ import main

    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in labelled()))
    assert main(["triage", str(src), "--out", str(tmp_path / "t"), "--markdown", str(tmp_path / "s.md"),
                 "--top", "3", "--expected", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "in **12 cause(s)**" in out and "| … | 9 more cause(s)" in out
    assert (tmp_path / "s.md").read_text().strip() == out.strip()
    assert len(list((tmp_path / "t" / "causes").glob("*.md"))) == 12
    assert main(["triage", str(tmp_path / "missing.jsonl")]) == 2


# -- expected failures keyed by cause -------------------------------------------------------

def _folder(tmp_path, files: dict[str, str]) -> Path:
    d = tmp_path / "expected_failures"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_a_cause_entry_covers_its_cause_in_its_framework_only(tmp_path):
    recs = labelled()
    conv = next(r for r in recs if "Conv kernel" in r["label"] and r["framework"] == "paddle")
    cid = cause_of(conv).id
    d = _folder(tmp_path, {"paddle.yaml": f"expected_failures:\n- cause: {cid}\n  reason: ORT has no float64 Conv\n"})
    exps = Expectations.load(d)
    e = exps.find(conv["id"], cause=cid)
    assert e is not None and e.cause == cid and e.where() == f"{d / 'paddle.yaml'}:2"
    other = next(r for r in recs if "Conv kernel" in r["label"] and r["framework"] == "oneflow")
    assert exps.find(other["id"], cause=cid) is None  # the entry is paddle's
    assert exps.find(conv["id"]) is None  # no cause given (a pass): a cause entry covers nothing
    assert [e.cause for e in exps.stale_causes(recs)] == []
    assert [e.cause for e in exps.stale_causes([r for r in recs if r is not conv and "Conv" not in r["label"]])] \
        == [cid]


@pytest.mark.parametrize("text,error", [
    ("expected_failures:\n- reason: a reason long enough\n",
     "paddle.yaml:2: expected_failures[0]: an entry needs 'cause' (a cause id) or 'match' (an id pattern)"),
    ("expected_failures:\n- match: torch-*\n  status: [crash]\n  reason: a reason long enough\n",
     "paddle.yaml:2: expected_failures[0].match: 'torch-*' is not a paddle case id pattern (file paddle.yaml)"),
    ("expected_failures:\n- cause: Not An Id\n  reason: a reason long enough\n",
     "paddle.yaml:2: expected_failures[0].cause: 'Not An Id' does not match"),
])
def test_bad_expected_failure_entries_are_one_line_errors(tmp_path, text, error):
    with pytest.raises(MatrixError, match=re.escape(error)):
        Expectations.load(_folder(tmp_path, {"paddle.yaml": text}))


def test_verdict_xfails_by_cause_and_reports_a_new_cause(tmp_path):
    from types import SimpleNamespace

    from harness.plugin.verdict import Verdicts

    recs = labelled()
    split = next(r for r in recs if "split" in r["label"])
    d = _folder(tmp_path, {"paddle.yaml": f"expected_failures:\n- cause: {cause_of(split).id}\n"
                                           f"  reason: split with a tensor axis aborts the exporter\n"})
    v = Verdicts(None, SimpleNamespace(expected=d, scope=SimpleNamespace(forms="fixed")), None)
    case = SimpleNamespace(id=split["id"], runtime="ort", post_pass="none", declared={}, opset=split["opset"])
    verdict = v.decide(case, dict(split))
    assert verdict.outcome == "xfailed" and "split with a tensor axis" in verdict.message
    box = next(r for r in recs if "box_coder" in r["label"])
    verdict = v.decide(SimpleNamespace(**{**vars(case), "id": box["id"]}), dict(box))
    assert verdict.outcome == "failed" and f"cause: {cause_of(box).id}" in verdict.message


def test_migration_keeps_every_verdict_and_shrinks_the_file(tmp_path):
    recs = labelled()
    old_text = ["expected_failures:"]
    for r in recs:  # one pattern entry per record, as the per-kernel drafts were
        old_text += [f"- match: {r['id']}", f"  status: [{r['status']}]", f"  reason: measured {r['status']} here"]
    old_text += ["- match: paddle-static-softmax-*", "  status: [crash]", "  reason: covers nothing in these records"]
    old = tmp_path / "old.yaml"
    old.write_text("\n".join(old_text) + "\n")
    passing = {**recs[0], "id": "paddle-static-relu-default-opset13-float32-cpu", "status": status.PASS}
    records = recs + [passing]
    files, notes = migrate(records, Expectations.load(old))
    assert notes == []
    d = tmp_path / "new"
    d.mkdir()
    for fw, entries in files.items():
        (d / f"{fw}.yaml").write_text(render(fw, entries))
    new = Expectations.load(d)
    assert outcomes(records, Expectations.load(old)) == outcomes(records, new)
    assert sum(1 for e in new.entries if e.cause) == 13  # 12 causes; ORT's Conv one in oneflow.yaml and paddle.yaml
    assert [e.match for e in new.entries if not e.cause] == ["paddle-static-softmax-*"]  # kept as it was
    # a cause with a record the old file did not expect is not migrated
    files, notes = migrate(records + [{**recs[-1], "id": recs[-1]["id"] + "-new"}], Expectations.load(old))
    assert len(notes) == 1 and "1 record(s) not expected before" in notes[0]


# -- a nightly diff with one injected bug ----------------------------------------------------

def test_nightly_diff_of_an_injected_bug_reports_exactly_one_new_cause(tmp_path):
    """Two runs of the fake matrix; in the second, the fake exporter writes Relu with a stray attribute."""
    from harness.isolation.processes import SessionClient
    from harness.spec.matrix import Scope, load_all

    m = load_all([ROOT / "tests" / "data" / "fake.yaml"], ROOT / "cases" / "tolerances.yaml",
                 Scope(opsets="declared"))
    cases = [c for c in m.cases if c.variant not in ("hangs", "aborts")]  # slow ones add nothing here
    # no case hangs here: a long time limit keeps a loaded machine from timing one out
    ex = SessionClient(timeout=60, plugins=m.plugins, workdir=str(tmp_path), frameworks=("fake",))
    try:
        night1 = [ex.run(c) for c in cases]
        injected = [replace(c, spec={**c.spec, "kwargs": {"behavior": "stray-attribute"}})
                    if c.variant == "good" else c for c in cases]
        night2 = [ex.run(c) for c in injected]
    finally:
        ex.close()
    d = diff.compare(night1, night2)
    assert len(d.causes_new) == 1 and not d.causes_gone and not d.causes_grew and not d.causes_shrank
    cause, before, after = d.causes_new[0]
    assert (before, after) == (0, sum(c.variant == "good" for c in cases)) and cause.op == "Relu"
    assert len(d.regressions) == after
    md = diff.markdown(d, "night1", "night2")
    assert "By cause: **1 new cause(s)**, 0 gone, 0 grew, 0 shrank" in md
    assert md.index("### New causes (1)") < md.index("### Regressions")


# -- blame from every runtime ----------------------------------------------------------------

def test_blame_weighs_every_other_runtime_when_the_reference_evaluator_is_under_test():
    from harness.core import blame

    agree = blame.Opinion(vs_framework="mismatch: output 0: max_abs=0.3", agrees_with_runtime=True,
                          vs_runtime="identical outputs")
    match = blame.Opinion()
    differ = blame.Opinion(vs_framework="mismatch: output 0: max_abs=2", agrees_with_runtime=False,
                           vs_runtime="output 0: max_abs=1.7")
    silent = blame.Opinion(problem="runtime-unsupported: no LeakyRelu")
    decide = blame.decide_many
    assert decide(status.MISMATCH, "compare", "reference", {"ort": agree, "openvino": agree})[0] == "exporter"
    found = decide(status.MISMATCH, "compare", "reference", {"ort": match, "openvino": match})
    assert found == ("runtime", "openvino, ort match the framework on the same model; reference does not")
    assert decide(status.MISMATCH, "compare", "reference", {"ort": agree, "openvino": match})[0] == "undetermined"
    assert decide(status.MISMATCH, "compare", "reference", {"ort": agree, "openvino": differ})[0] == "undetermined"
    assert decide(status.MISMATCH, "compare", "reference", {"ort": agree, "openvino": silent})[0] == "exporter"
    why = decide(status.MISMATCH, "compare", "reference", {"ort": silent})
    assert why[0] == "undetermined" and "no other runtime gave a verdict" in why[1]
    assert decide(status.INVALID_MODEL, "checker", "reference", {}) == blame.decide(
        status.INVALID_MODEL, "checker", "reference", None)


def test_a_run_xfails_by_cause_and_reports_a_stale_cause_entry(tmp_path, run_conformance):
    import shutil

    wrong = {"framework": "fake", "exporter": "fake", "kernel": "relu", "status": status.MISMATCH,
             "stage": "compare", "message": "output 0: max_abs=1.5 max_rel=2 under rule allclose", "max_rel": 2.0,
             "blame": status.BLAME_EXPORTER, "id": "x", "opset": 13}
    cases = tmp_path / "cases"
    (cases / "expected_failures").mkdir(parents=True)
    shutil.copy(ROOT / "cases" / "tolerances.yaml", cases)
    shutil.copy(ROOT / "tests" / "data" / "fake.yaml", cases)
    (cases / "expected_failures" / "fake.yaml").write_text(
        f"expected_failures:\n- cause: {cause_of(wrong).id}\n  reason: the fake exporter writes Abs for Relu\n"
        f"- cause: fake-nothing-00000000\n  reason: a cause that no longer occurs\n")
    results = tmp_path / "r.jsonl"
    run = run_conformance("--cases-dir", cases, "-n", "0", "--no-report", "--results", results,
                          "--case-timeout", "10", "-rx")
    out = run.stdout.str()
    recs = {r["id"]: r for r in map(json.loads, results.read_text().splitlines())}
    for opset in (13, 14):
        rec = recs[f"fake-fake-relu-wrong_values-opset{opset}-float32-cpu"]
        assert rec["outcome"] == "xfailed" and rec["expected"]["cause"] == cause_of(wrong).id, rec
    assert "the fake exporter writes Abs for Relu" in out
    stale = [ln for ln in out.splitlines() if ln.startswith("stale expected failure:")]
    assert len(stale) == 1 and "fake.yaml:4: cause fake-nothing-00000000 occurs in no record" in stale[0], out
    assert "cause: " in out  # a failure nothing expects names its cause


def test_portable_drafts_name_no_path_of_this_machine():
    from harness.report.environment import ROOT as REPO
    from harness.report.triage import portable_text

    text = (f"/opt/venv/lib/python3.11/site-packages/paddle/static/pir_io.py:389: UserWarning\n"
            f"Params file /tmp/onnx-conf-2633-64_z8n0k/cases/x.pdiparams; {REPO}/harness/core/pipeline.py")
    assert portable_text(text) == ("<site-packages>/paddle/static/pir_io.py:389: UserWarning\n"
                                   "Params file <tmp>/cases/x.pdiparams; <repo>/harness/core/pipeline.py")


def test_dynamo_failures_are_told_apart_by_their_exception_summary():
    head = ("ConversionError: Failed to convert the exported program to an ONNX model. \x1b[96mThis is step 3/3"
            "\x1b[0m of exporting the model to ONNX. Next steps:\n- If there is a missing ONNX function ...\n\n"
            "## Exception summary\n\n")
    rec = {"framework": "torch", "exporter": "dynamo", "kernel": "k", "status": status.EXPORT_ERROR,
           "stage": "export", "id": "torch-dynamo-k-default-opset18-float32-cpu", "opset": 18}
    pool = {**rec, "message": head + "<class 'torch.onnx._internal.exporter._errors.DispatchError'>: No ONNX "
                                     "function found for <OpOverload(op='aten.adaptive_max_pool2d')>.\n⬆️\n..."}
    other = {**rec, "kernel": "j", "message": head + "<class 'torch.onnx._internal.exporter._errors."
                                                     "DispatchError'>: No ONNX function found for "
                                                     "<OpOverload(op='aten.unfold')>.\n⬆️\n..."}
    assert cause_of(pool).id != cause_of(other).id
    assert cause_of(pool).template.startswith("DispatchError: No ONNX function found for <OpOverload(op='aten.adap")
