"""Reports, diff and merge over synthetic records (small JSONL files in tmp_path)."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.__main__ import COMMANDS, main
from harness.spec.matrix import Row
from harness.report import build_reports
from harness.report.aggregate import summarize
from harness.report.inputs import load
from harness.report.hook import end_of_run

XSS = "<script>alert(1)</script>"


def rec(kernel="abs", opset=13, status="pass", variant="default", exporter="dygraph", framework="paddle",
        dtype="float32", finished="2026-01-02T03:04:05+00:00", **kw):
    r = {"id": f"{framework}-{exporter}-{kernel}-{variant}-opset{opset}-{dtype}-cpu", "framework": framework,
         "exporter": exporter, "kernel": kernel, "variant": variant, "opset": opset, "dtype": dtype,
         "device": "cpu", "status": status, "message": "" if status == "pass" else f"{status} happened",
         "stage": "", "max_abs": 0.0, "max_rel": 0.0, "shared_key": kernel, "tolerance": "allclose",
         "declared": {"range": "7~12", "note": "", "in_range": opset <= 12}, "finished": finished}
    r.update(kw)
    return r


def write(path: Path, records, extra_lines=()) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records) + "".join(extra_lines))
    return path


def sample():
    out = [rec(opset=o) for o in range(7, 22)]
    out += [rec(kernel="conv2d", opset=o, variant=v, status="mismatch" if (v == "b" and o == 10) else "pass",
                max_abs=0.25 if (v == "b" and o == 10) else 0.0) for o in range(7, 22) for v in ("a", "b")]
    out += [rec(kernel="gone", opset=o, status="skipped", message="no public API") for o in range(7, 13)]
    out += [rec(framework="torch", exporter="dynamo", kernel="abs", opset=o,
                status="export-error" if o < 9 else "pass") for o in range(7, 22)]
    return out


def report(tmp_path, *files, out="rep", extra=()):
    d = tmp_path / out
    assert main(["report", *map(str, files), "--out", str(d), "--no-matrix", *extra]) == 0
    return d


def test_commands_registered_with_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert len(capsys.readouterr().out) > 200


def test_regeneration_is_byte_identical(tmp_path):
    src = write(tmp_path / "r.jsonl", sample())
    a, b = report(tmp_path, src, out="a"), report(tmp_path, src, out="b")
    for name in ("support.md", "support.json", "support.html"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    doc = json.loads((a / "support.json").read_text())
    assert doc["schema_version"] == 1
    assert doc["environment"]["date"] == "2026-01-02T03:04:05+00:00"  # from the records, not the clock
    assert set(doc["environment"]["packages"]) >= {"paddlepaddle", "paddle2onnx", "torch", "onnx",
                                                    "onnxruntime", "onnxscript", "numpy"}
    assert len(doc["records"]) == len(sample())
    assert (a / "support.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_measured_range_with_holes_and_status_text(tmp_path):
    md = (report(tmp_path, write(tmp_path / "r.jsonl", sample())) / "support.md").read_text()
    assert "| Paddle kernel | ONNX Opset Versions | support_status |" in md
    conv = next(line for line in md.splitlines() if line.startswith("| conv2d "))
    assert "| 7~9, 11~21 |" in conv  # variant b fails at 10, so opset 10 does not pass
    assert "mismatch ×1 at 10" in conv and "max_abs 0.25" in conv
    assert "✗ declared but failing: 10" in conv and "+ passes beyond declared: 13~21" in conv
    abs_row = next(line for line in md.splitlines() if line.startswith("| abs "))
    assert "| 7~21 | all 15 cases pass |" in abs_row
    assert "not runnable: no public API" in md
    torch_abs = md.split("## torch / dynamo / cpu")[1].splitlines()[4]
    assert torch_abs.startswith("| abs | 9~21 | fails at opset 7~8: export-error ×2 at 7~8")
    # cross-framework table keyed by shared_key
    cross = md.split("## Cross-framework (by shared_key)")[1].split("##")[0]
    assert "| abs | abs: 7~21 | abs: 9~21 |" in cross


def test_matrix_rows_without_records_are_listed():
    rows = [Row("paddle", "abs", "7~12", "", None, "abs", "x:1"),
            Row("paddle", "box_coder", "7~12", "", None, "box_coder", "x:2")]
    s = summarize([rec()], rows, {})
    texts = {r.kernel: (r.tested, r.reason) for r in s.rows[("paddle", "dygraph", "cpu")]}
    assert texts["box_coder"] == ([], "not run in these results")
    assert texts["abs"][0] == [13]


def test_untrusted_strings_stay_escaped_in_html(tmp_path):
    bad = [rec(opset=13, status="mismatch", message=XSS + " & </script>", variant=XSS, kernel=XSS)]
    page = (report(tmp_path, write(tmp_path / "r.jsonl", sample() + bad)) / "support.html").read_text()
    assert XSS not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text (titles, counts)
    data = re.search(r'<script type="application/json" id="details-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data and ">" not in data and "&" not in data
    assert XSS in json.dumps(json.loads(data))  # the JSON still carries the exact string
    assert page.count("<script") == 2  # the data block and the page's own script, nothing injected
    assert "http://" not in page and "https://" not in page  # self-contained


def test_diff_names_the_regression_and_exits_1(tmp_path, capsys):
    old = sample()
    new = [dict(r) for r in old]
    fixed = next(r for r in new if r["status"] == "mismatch")
    fixed["status"] = "pass"
    victim = next(r for r in new if r["kernel"] == "abs" and r["opset"] == 15)
    victim.update(status="mismatch", max_abs=0.5, message="values differ")
    new.append(rec(kernel="newop"))
    new = [r for r in new if r["kernel"] != "gone"]
    a, b = write(tmp_path / "old.jsonl", old), write(tmp_path / "new.jsonl", new)
    md = tmp_path / "summary.md"
    assert main(["diff", str(a), str(b), "--markdown", str(md)]) == 1
    out = capsys.readouterr().out
    assert "**1 regression(s)**" in out and victim["id"] in out and "max_abs 0.5" in out
    assert "Fixes: not pass → pass (1)" in out and fixed["id"] in out
    assert "New cases (1)" in out and "Vanished cases (6)" in out
    assert md.read_text().strip() == out.strip()
    assert main(["diff", str(a), str(a)]) == 0
    assert "no regression" in capsys.readouterr().out
    assert main(["diff", str(a), str(tmp_path / "missing.jsonl")]) == 2
    assert "no such results file" in capsys.readouterr().err


def test_merge_collapses_identical_and_flags_conflicts(tmp_path, capsys):
    base = sample()
    a = write(tmp_path / "shard-a.jsonl", base[:20])
    later = rec(opset=8, status="crash", finished="2026-01-03T00:00:00+00:00")
    b = write(tmp_path / "shard-b.jsonl", base[10:] + [later])  # 10 identical overlaps + 1 conflict
    out1, out2 = tmp_path / "m1.jsonl", tmp_path / "m2.jsonl"
    assert main(["merge", str(out1), str(a), str(b)]) == 0
    err = capsys.readouterr().err
    assert f"conflict: {later['id']}: kept crash" in err and "dropped pass" in err
    assert main(["merge", str(out2), str(b), str(a)]) == 0
    assert out1.read_bytes() == out2.read_bytes()  # argument order does not matter
    merged = [json.loads(line) for line in out1.read_text().splitlines()]
    assert len(merged) == len(base)
    kept = next(r for r in merged if r["id"] == later["id"])
    assert kept["status"] == "crash" and kept["conflict"]["dropped"][0]["status"] == "pass"
    capsys.readouterr()
    d = report(tmp_path, out1)
    md = (d / "support.md").read_text()
    assert "## Conflicts" in md and later["id"] in md.split("## Conflicts")[1]
    assert json.loads((d / "support.json").read_text())["conflicts"][0]["id"] == later["id"]


def test_corrupt_lines_are_named_and_valid_records_kept(tmp_path, capsys):
    good = sample()
    src = write(tmp_path / "r.jsonl", good, extra_lines=["this is garbage\n", '{"id": "x", "status": "pass"}\n',
                                                          json.dumps({**rec(), "opset": "13x"}) + "\n",
                                                          json.dumps(rec(opset=30))[:40]])
    d = report(tmp_path, src)
    err = capsys.readouterr().err
    n = len(good)
    assert f"error: {src}:{n + 1}: not valid JSON" in err
    assert f"error: {src}:{n + 2}: record 'x': record lacks field(s)" in err
    assert f"error: {src}:{n + 3}: record 'paddle-dygraph-abs-default-opset13-float32-cpu': field 'opset'" in err
    assert f"error: {src}:{n + 4}: not valid JSON" in err and "truncated" in err
    doc = json.loads((d / "support.json").read_text())
    assert len(doc["records"]) == n
    assert len(doc["inputs"]["bad_lines"]) == 4
    assert f"{src}:{n + 1}" in (d / "support.md").read_text()
    assert f"error: 4 invalid line(s) left out; {n} valid record(s) kept" in err
    only_bad = write(tmp_path / "bad.jsonl", [], extra_lines=["garbage\n"])
    assert main(["report", str(only_bad), "--out", str(tmp_path / "x"), "--no-matrix"]) == 2
    assert "not a results file: line 1 is not a result record" in capsys.readouterr().err
    empty = write(tmp_path / "empty.jsonl", [])
    assert main(["report", str(empty), "--out", str(tmp_path / "x"), "--no-matrix"]) == 2
    assert "no valid record" in capsys.readouterr().err


@pytest.mark.parametrize("bad, field", [({"status": "great"}, "unknown status 'great'"),
                                        ({"device": None}, "field 'device'"), ({"dtype": 7}, "field 'dtype'")])
def test_records_with_unknown_values_are_left_out_and_counted(tmp_path, capsys, bad, field):
    src = write(tmp_path / "r.jsonl", sample() + [rec(kernel="odd", **bad)])
    doc = json.loads((report(tmp_path, src) / "support.json").read_text())
    err = capsys.readouterr().err
    assert field in err and f"error: 1 invalid line(s) left out; {len(sample())} valid record(s) kept" in err
    assert "odd" not in {r["kernel"] for r in doc["records"]} and len(doc["inputs"]["bad_lines"]) == 1


def test_inputs_that_are_not_results_are_refused_in_one_line(tmp_path, capsys):
    d = report(tmp_path, write(tmp_path / "r.jsonl", sample()))
    capsys.readouterr()
    blob = tmp_path / "blob.jsonl"
    blob.write_bytes(bytes(range(256)) * 4)
    for given, why in [(d / "support.json", "one JSON document"), (d / "support.png", "binary data"),
                       (blob, "binary data")]:
        for cmd in (["report", str(given), "--out", str(tmp_path / "x"), "--no-matrix"],
                    ["suggest-expectations", str(given)], ["merge", str(tmp_path / "m.jsonl"), str(given)]):
            assert main(cmd) == 2, cmd
            out, err = capsys.readouterr()
            assert err.count("\n") == 1 and why in err and str(given) in err, (cmd, err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "m.jsonl").exists()


def test_folder_input_merges_every_jsonl(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    s = sample()
    write(folder / "a.jsonl", s[:5])
    write(folder / "b.jsonl", s[5:])
    assert len(load([folder]).records) == len(s)


def test_end_of_run_writes_reports_and_never_raises(tmp_path):
    src = write(tmp_path / "r.jsonl", sample())
    matrix = SimpleNamespace(rows=[Row("paddle", "later", "7~12", "", None, "later", "x:1")], cases=[])
    cfg = SimpleNamespace(results=src, reports_dir=tmp_path / "reports")
    lines = end_of_run(cfg, matrix)
    assert [line.rsplit("/", 1)[-1] for line in lines] == ["support.md", "support.json", "support.html",
                                                           "support.png", "causes.md", "causes.json",
                                                           "causes.html", "causes"]
    assert "| later | — | not run in these results |" in (tmp_path / "reports" / "support.md").read_text()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    lines = end_of_run(SimpleNamespace(results=src, reports_dir=blocker / "sub"), matrix)
    assert len(lines) == 1 and lines[0].startswith("reports: failed")


def test_build_reports_api(tmp_path):
    recs = sample()
    loaded = load([write(tmp_path / "r.jsonl", recs)])
    paths = build_reports(loaded, tmp_path / "o", only=("support.md",))
    assert [p.name for p in paths] == ["support.md"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["support.md"]  # only what was asked for
    text = paths[0].read_text(encoding="utf-8")
    assert {r["kernel"] for r in recs} <= {k for k in {r["kernel"] for r in recs} if f"| {k} |" in text}


def test_reports_name_no_path_of_this_machine(tmp_path):
    """A results file outside the checkout is named by its file name alone (reports/ is committed)."""
    import json

    from harness.report.environment import ROOT, shown_path

    loaded = load([write(tmp_path / "night.jsonl", sample())])
    build_reports(loaded, tmp_path / "o", only=("support.md", "support.json"))
    md = (tmp_path / "o" / "support.md").read_text(encoding="utf-8")
    assert "records in night.jsonl " in md and str(tmp_path) not in md
    assert json.loads((tmp_path / "o" / "support.json").read_text())["inputs"]["files"] == ["night.jsonl"]
    assert shown_path(ROOT / "results" / "run-1.jsonl") == "results/run-1.jsonl"  # inside: relative


def test_pytest_run_writes_junitxml_and_end_of_run_reports(tmp_path):
    """A small real run (fake matrix): valid JUnit XML with a record per case, and the reports."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    root = Path(__file__).resolve().parent.parent
    junit, results, reports = tmp_path / "x.xml", tmp_path / "r.jsonl", tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "--matrix", str(root / "tests" / "data" / "fake.yaml"),
         "-k", "good or wrong_values or skipped", "--results", str(results), "--reports-dir", str(reports),
         f"--junitxml={junit}", "--case-timeout", "10", "-q", "-p", "no:randomly"],
        cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout[-3000:]  # wrong_values fails (in range)
    assert f"reports: wrote {reports / 'support.md'}" in proc.stdout
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert len(cases) == len(results.read_text().splitlines()) > 0
    for case in cases:
        props = [p for p in case.findall("./properties/property") if p.get("name") == "record"]
        assert len(props) == 1 and len(props[0].get("value")) < 20_000
    md = (reports / "support.md").read_text()
    assert "| relu | — | fails at opset 13~14: mismatch ×2 at 13~14" in md


def test_explore_records_stay_out_of_the_support_tables(tmp_path):
    from harness.report.inputs import load

    base = {"status": "pass", "framework": "paddle", "kernel": "relu6", "exporter": "dygraph",
            "opset": 13, "variant": "default", "dtype": "float32", "device": "cpu"}
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps({**base, "id": "paddle-dygraph-relu6-default-opset13-float32-cpu"}) + "\n"
                 + json.dumps({**base, "id": "explore-paddle-dygraph-relu6-opset13", "mode": "explore"}) + "\n")
    assert len(load([p]).records) == 2
    loaded = load([p], include_explore=False)
    assert [r["id"] for r in loaded.records] == ["paddle-dygraph-relu6-default-opset13-float32-cpu"]
    assert loaded.explore == 1


HOSTILE = ("<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) "
           "![i](http://t/p.png) `code` a|b &amp; *em*")


def _inert(md: str) -> None:
    """No raw HTML tag, link, image or code span survives outside what the harness wrote itself."""
    assert not re.search(r"<\s*(script|img|a|iframe)\b", md, re.I), md
    assert "](" not in md.replace("\\](", ""), "a link or image survived"
    assert "`code`" not in md and "&amp;amp;" in md


def _cells(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def test_untrusted_strings_stay_text_in_support_md(tmp_path):
    bad = [rec(opset=13, status="mismatch", message=HOSTILE, variant="v", kernel="k" + HOSTILE, shared_key=HOSTILE),
           rec(opset=13, dtype=HOSTILE, kernel="k" + HOSTILE)]
    src = write(tmp_path / "r`<b>`.jsonl", sample() + bad, extra_lines=[HOSTILE + "\n"])
    md = (report(tmp_path, src) / "support.md").read_text()
    _inert(md)
    main_table, by_dtype = md.split("## paddle / dygraph / cpu")[1].split("\n## ")[0].split("By dtype:")
    rows = [line for line in main_table.splitlines() if line.startswith("| k")]
    assert rows and all(_cells(r) == 5 for r in rows)
    rows = [line for line in by_dtype.splitlines() if line.startswith("| ")]
    assert len(rows) > 3 and all(_cells(r) == 3 for r in rows)  # kernel, float32, the hostile dtype


def test_untrusted_strings_stay_text_in_diff_markdown(tmp_path, capsys):
    old = sample()
    new = [dict(r) for r in old]
    victim = next(r for r in new if r["status"] == "pass")
    victim.update(status="mismatch", message=HOSTILE, id=victim["id"])
    a, b = write(tmp_path / "old.jsonl", old), write(tmp_path / "new<i>.jsonl", new)
    md = tmp_path / "summary.md"
    assert main(["diff", str(a), str(b), "--markdown", str(md)]) == 1
    text = md.read_text()
    _inert(text)
    row = next(line for line in text.splitlines() if line.startswith(f"| {victim['id']}"))
    assert _cells(row) == 4


def test_diff_fails_on_a_vanished_case_unless_allowed(tmp_path, capsys):
    old = sample()
    lost = next(r for r in old if r["status"] == "pass")
    a = write(tmp_path / "old.jsonl", old)
    b = write(tmp_path / "new.jsonl", [r for r in old if r is not lost])
    assert main(["diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "no regression" in out and "**1 vanished case(s)**" in out and lost["id"] in out
    assert main(["diff", str(a), str(b), "--allow-vanished"]) == 0
    assert main(["diff", str(b), str(a)]) == 0  # a new case is no failure


def test_suggest_expectations_refuses_bad_input_in_one_line(tmp_path, capsys):
    good = write(tmp_path / "r.jsonl", sample())
    assert main(["suggest-expectations", str(good)]) == 0
    assert "expected_failures:" in capsys.readouterr().out
    cases = [(tmp_path / "missing.jsonl", "no such results file"),
             (write(tmp_path / "empty.jsonl", []), "no valid record"),
             (write(tmp_path / "s.jsonl", [{**rec(), "opset": "9"}]), "not a results file: line 1")]
    for path, why in cases:
        assert main(["suggest-expectations", str(path)]) == 2, path
        out, err = capsys.readouterr()
        assert why in err and "Traceback" not in err and not out, (path, err)
    mixed = write(tmp_path / "m.jsonl", sample() + [{**rec(status="mismatch"), "opset": "9"}])
    assert main(["suggest-expectations", str(mixed)]) == 0
    assert "field 'opset' must be a positive integer" in capsys.readouterr().err


def mixed_dtypes():
    """abs passes at float32 at every opset and fails at float16 at opset 12 only."""
    out = [rec(opset=o) for o in range(7, 13)]
    out += [rec(opset=o, dtype="float16", status="mismatch" if o == 12 else "pass", max_abs=0.5 if o == 12 else 0.0)
            for o in (7, 12)]
    out += [rec(framework="torch", exporter="dynamo", opset=o, dtype=d) for o in (7, 12) for d in ("float32", "int64")]
    return out


def _tables(md: str) -> str:
    """The report from its first section on (the header names files and dtypes)."""
    return md[md.index("\n## "):]


def test_dtypes_option_gives_exactly_the_float32_only_report(tmp_path, capsys):
    mixed = mixed_dtypes()
    src = write(tmp_path / "mixed.jsonl", mixed)
    md_all = (report(tmp_path, src, out="all") / "support.md").read_text()
    assert ("| abs | 7~11 | fails at opset 12: mismatch ×1 at 12; worst max_abs 0.5 (opset 12, default, float16)"
            in md_all)
    assert "Dtypes: every dtype in the records (float16, float32, int64)." in md_all
    chosen = report(tmp_path, src, out="f32", extra=["--dtypes", "float32"])
    md = (chosen / "support.md").read_text()
    assert "| abs | 7~12 | all 6 cases pass | 7~12 | ✓ agrees |" in md  # the float16 failure is left out
    float32 = [r for r in mixed if r["dtype"] == "float32"]
    assert f"Dtypes: only float32 (--dtypes float32): {len(float32)} of {len(mixed)} records." in md
    alone = report(tmp_path, write(tmp_path / "f32.jsonl", float32), out="alone")
    assert _tables(md) == _tables((alone / "support.md").read_text())
    doc, doc_alone = (json.loads((d / "support.json").read_text()) for d in (chosen, alone))
    assert doc["kernels"] == doc_alone["kernels"] and doc["records"] == doc_alone["records"]
    assert doc["dtypes"] == {"selected": ["float32"], "covered": ["float32"], "missing": []}
    assert "float16" not in (chosen / "support.html").read_text()
    capsys.readouterr()
    md = (report(tmp_path, src, out="u8", extra=["--dtypes", "uint8,float32"]) / "support.md").read_text()
    assert (f"Dtypes: only float32, uint8 (--dtypes float32,uint8): {len(float32)} of {len(mixed)} records; "
            "no record of uint8 in these results.") in md


def by_dtype_records():
    """relu: float16 passes at 7 only, float32 has a failing variant at 9, float64 always fails,
    no int32 case, bool skipped; exp: float32 and int32 only."""
    out = [rec(kernel="relu", opset=o, variant=v, status="mismatch" if (v == "b" and o == 9) else "pass")
           for o in range(7, 13) for v in ("a", "b")]
    out += [rec(kernel="relu", opset=o, variant=v, dtype="float16",
                status="mismatch" if (v == "b" and o == 12) else "pass") for o in (7, 12) for v in ("a", "b")]
    out += [rec(kernel="relu", opset=o, dtype="float64", status="export-error") for o in (7, 12)]
    out += [rec(kernel="relu", opset=o, dtype="bool", status="skipped", message="no bool kernel") for o in (7, 12)]
    out += [rec(kernel="exp", opset=o) for o in range(7, 13)]
    out += [rec(kernel="exp", opset=o, dtype="int32") for o in (7, 12)]
    out += [rec(framework="torch", exporter="dynamo", kernel="relu", opset=o) for o in (7, 12)]
    return out


def test_by_dtype_table_gives_each_dtypes_own_range(tmp_path):
    d = report(tmp_path, write(tmp_path / "r.jsonl", by_dtype_records()))
    md = (d / "support.md").read_text()
    paddle = md.split("## paddle / dygraph / cpu")[1].split("\n## ")[0]
    assert "| relu | 8, 10~11 |" in paddle  # the main table: every dtype at once
    table = paddle.split("By dtype:")[1].strip().splitlines()
    assert table == ["| Paddle kernel | float16 | float32 | float64 | int32 | bool |",
                     "| --- | --- | --- | --- | --- | --- |",
                     "| exp |  | 7~12 |  | 7, 12 |  |",
                     "| relu | 7 | 7~8, 10~12 | — |  | skipped |"]
    torch = md.split("## torch / dynamo / cpu")[1].split("\n## ")[0]
    assert "By dtype: every case here is float32." in torch and "| --- | --- |\n" not in torch.split("By dtype")[1]
    kernels = {(k["framework"], k["kernel"]): k for k in json.loads((d / "support.json").read_text())["kernels"]}
    relu = kernels[("paddle", "relu")]["by_dtype"]
    assert sorted(relu) == ["bool", "float16", "float32", "float64"]  # no int32 case: no entry
    assert relu["float16"] == {"measured": "7", "tested": [7, 12], "passing": [7], "cell": "7",
                               "counts": {"mismatch": 1, "pass": 3}}
    assert relu["float64"]["cell"] == "—" and relu["float64"]["passing"] == []
    assert relu["bool"] == {"measured": "", "tested": [], "passing": [], "cell": "skipped", "counts": {"skipped": 2}}
    assert kernels[("paddle", "exp")]["by_dtype"]["int32"]["measured"] == "7, 12"
    page = (d / "support.html").read_text()
    bydtype = re.search(r'<table class="plain bydtype">(.*?)</table>', page, re.S).group(1)
    assert "<th>float16</th><th>float32</th><th>float64</th><th>int32</th><th>bool</th>" in bydtype
    assert ("<tr><th>relu</th><td>7</td><td>7~8, 10~12</td><td>—</td><td></td><td>skipped</td></tr>"
            in bydtype)


@pytest.mark.parametrize("value, named", [("float32,float8", "'float8'"), ("fp16", "'fp16'"), (" , ", "no dtype")])
def test_unknown_dtype_is_a_one_line_usage_error(tmp_path, capsys, value, named):
    src = write(tmp_path / "r.jsonl", sample())
    assert main(["report", str(src), "--out", str(tmp_path / "x"), "--no-matrix", "--dtypes", value]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: --dtypes: ") and named in err, err
    assert "float16, float32, float64" in err and not out and not (tmp_path / "x").exists()


def test_long_skip_reasons_are_cut_in_the_tables_but_kept_in_the_records():
    from harness.report.aggregate import REASON_CHARS, short_reason

    long = "paddle cannot run this op at float16 on cpu: RuntimeError: (NotFound) " + "x" * 400
    cut = short_reason(long)
    assert len(cut) == REASON_CHARS and cut.endswith("…") and cut.startswith("paddle cannot run this op at float16")
    assert short_reason("  two\n lines  ") == "two lines"
