"""The results file: whole lines only, a torn tail repaired on the next append, a full disk reported."""

import errno
import json
import os
from pathlib import Path

import pytest

from harness.report import results
from harness.report.results import NotResults, ResultsWriter, WriteFailed, read_results

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "data" / "fake.yaml"


def rec(i: int) -> dict:
    return {"id": f"fake-fake-relu-a-opset{7 + i}-float32-cpu", "status": "pass", "framework": "fake",
            "kernel": "relu", "exporter": "fake", "opset": 7 + i, "device": "cpu", "dtype": "float32"}


def lines(path):
    return path.read_bytes().split(b"\n")


def test_each_record_is_one_whole_line(tmp_path):
    p = tmp_path / "r.jsonl"
    w = ResultsWriter(p)
    for i in range(3):
        w.write(rec(i))
    w.close()
    assert p.read_bytes().endswith(b"\n") and w.count == 3
    assert [r["opset"] for r in read_results(p)] == [7, 8, 9]


@pytest.mark.parametrize("tail, kept, note", [
    (json.dumps(rec(1))[:25], 1, "cut off a torn last line"),       # a record cut mid-way: dropped
    (json.dumps(rec(1)), 2, "had no newline; one added"),           # whole record, lost newline: kept
])
def test_torn_tail_of_a_killed_run_is_never_glued_to_the_next_record(tmp_path, tail, kept, note):
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(rec(0)) + "\n" + tail)
    w = ResultsWriter(p)
    assert note in w.repaired
    w.write(rec(5))
    w.close()
    bad = []
    got = list(read_results(p, bad))
    assert not bad and len(got) == kept + 1 and got[-1]["opset"] == 12


def test_torn_only_line_is_cut(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(rec(0))[:30])
    w = ResultsWriter(p)
    w.write(rec(1))
    w.close()
    assert [r["opset"] for r in read_results(p)] == [8]


def test_short_write_or_full_disk_leaves_no_torn_line(tmp_path, monkeypatch):
    p = tmp_path / "r.jsonl"
    w = ResultsWriter(p)
    w.write(rec(0))
    real_write = os.write
    calls = []

    def full_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 1:  # the kernel takes part of the line, then the disk is full
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results.os, "write", full_disk)
    with pytest.raises(WriteFailed) as err:
        w.write(rec(1))
    monkeypatch.undo()
    msg = str(err.value)
    assert "\n" not in msg and str(p) in msg and "No space left on device" in msg and "1 record(s)" in msg
    assert p.read_bytes() == (json.dumps(rec(0), sort_keys=True) + "\n").encode()
    w.write(rec(2))  # space came back: appending goes on after the last whole line
    w.close()
    assert [r["opset"] for r in read_results(p)] == [7, 9]


@pytest.mark.parametrize("content, why", [
    (b"\x00\x01\x02binary\xff\n", "binary data"),
    ('{\n "records": [\n  {"id": "a"}\n ]\n}\n'.encode(), "one JSON document, not one record per line"),
    (b"framework: fake\nentries: []\n", "line 1 is not a result record"),
])
def test_a_file_that_is_not_results_is_refused_in_one_line(tmp_path, content, why):
    p = tmp_path / "x.jsonl"
    p.write_bytes(content)
    with pytest.raises(NotResults) as err:
        list(read_results(p, []))
    assert why in str(err.value) and str(p) in str(err.value) and "\n" not in str(err.value)


def test_the_record_catalogue_names_every_field_and_refuses_a_stray_one():
    from harness.core import record

    assert record.unknown_fields({"id": "x", "status": "pass", "blame": None, "worker": "gw0"}) == []
    assert record.unknown_fields({"id": "x", "colour": "red"}) == ["colour"]
    assert record.stamp({"id": "x"}, worker="gw1") == {"id": "x", "worker": "gw1"}
    with pytest.raises(KeyError, match="not a run field: colour"):
        record.stamp({}, colour="red")


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 16


@pytest.mark.parametrize("content", [
    PNG,                                                     # an image: binary data
    b"meeting notes\nsecond line without newline",           # text of another kind
    b"one line of prose, no newline at all",                 # not even the start of a record
    b'{"report": "support.json",\n "kernels": []}\n',        # a JSON document
])
def test_an_existing_file_that_is_not_results_is_never_cut_or_appended_to(tmp_path, content):
    p = tmp_path / "precious"
    p.write_bytes(content)
    with pytest.raises(NotResults, match="nothing was written to it"):
        ResultsWriter(p)
    assert p.read_bytes() == content


def test_results_option_on_an_existing_non_results_file_is_a_usage_error(run_conformance, tmp_path):
    p = tmp_path / "picture.png"
    p.write_bytes(PNG)
    res = run_conformance("--matrix", FAKE, "-n", "0", "-k", "good", "--results", p, "--no-report", "-q")
    out = res.stdout.str() + res.stderr.str()
    assert res.ret == pytest.ExitCode.USAGE_ERROR, out[-2000:]
    assert f"--results {p}: not a results file (binary data, not JSON lines); nothing was written to it" in out
    assert p.read_bytes() == PNG


def test_runs_started_in_the_same_second_get_their_own_results_file(tmp_path):
    """The default name has a one-second clock; the second run to claim it takes the next free one."""
    from concurrent.futures import ThreadPoolExecutor

    from harness.plugin.options import unique_results

    want = tmp_path / "results" / "run-20261202-031500.jsonl"
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: unique_results(want), range(8)))
    assert len(set(got)) == 8 and want in got
    assert sorted(p.name for p in got) == sorted(["run-20261202-031500.jsonl"]
                                                + [f"run-20261202-031500-{n}.jsonl" for n in range(2, 9)])
    assert len({p.with_name(p.stem + "-reports") for p in got}) == 8  # and so their report folders
