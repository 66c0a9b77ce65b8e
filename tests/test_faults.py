"""Fault injection: kill a worker, a server or the runner mid-run, fill the results disk.

Each run uses the small fault matrix (tests/data/faults.yaml: quick cases around
one slow one, killed while it runs; see tests/fault_injection.py). After each,
the records must equal the finished cases (every case once, the killed one as
``crash``), no line may be torn, and ``harness diff`` against a clean run must
flag what was lost (exit 1).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.core import status
from harness.__main__ import main as harness_main
from harness.spec.matrix import Scope, load_all

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ROOT / "tests" / "data" / "faults.yaml"
SLOW_ID = "fake-fake-relu-slow-opset10-float32-cpu"


@pytest.fixture(scope="module")
def fault_ids():
    return sorted(c.id for c in load_all([FAULTS], ROOT / "cases" / "tolerances.yaml", Scope()).cases)


def records(path: Path) -> list[dict]:
    """Every line of ``path`` parsed; a torn or invalid line fails the test."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "the results file ends with a torn line"
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.fixture
def fault_run(run_conformance, monkeypatch, tmp_path):
    """Run the fault matrix with ``HARNESS_FAULT=kind:SLOW_ID``; return (RunResult, results path)."""

    def run(kind: str | None, *args, results: Path | None = None):
        results = results or tmp_path / f"{kind}.jsonl"
        monkeypatch.setenv("PYTHONPATH", str(ROOT))
        monkeypatch.setenv("HARNESS_FAKE_SLOW_S", "3")
        monkeypatch.setenv("HARNESS_FAULT", f"{kind}:{SLOW_ID}" if kind else "")
        monkeypatch.setenv("HARNESS_FAULT_MARK", str(tmp_path / f"{kind}.done"))
        res = run_conformance("--matrix", FAULTS, "-p", "tests.fault_injection", "--results", results,
                              "--no-report", "--case-timeout", "30", "-q", *args)
        return res, results

    return run


@pytest.fixture
def baseline(fault_run, fault_ids, tmp_path):
    res, path = fault_run(None, "-n", "0", results=tmp_path / "baseline.jsonl")
    assert res.ret == 0, res.stdout.str()[-2000:]
    recs = records(path)
    assert sorted(r["id"] for r in recs) == fault_ids and {r["status"] for r in recs} == {status.PASS}
    return path


@pytest.mark.parametrize("kind, workers, message", [
    ("worker", "2", "the pytest worker gw"),
    ("server", "0", "the exporter process died with SIGKILL"),
    ("server", "2", "the exporter process died with SIGKILL"),
    ("runner", "0", "the runner process died"),
    ("runner", "2", "the runner process died"),
])
def test_a_killed_process_loses_no_record(fault_run, baseline, fault_ids, kind, workers, message):
    res, path = fault_run(kind, "-n", workers)
    out = res.stdout.str() + res.stderr.str()
    assert res.ret == pytest.ExitCode.TESTS_FAILED and "INTERNALERROR" not in out, out[-3000:]
    recs = records(path)
    ids = [r["id"] for r in recs]
    assert sorted(ids) == fault_ids, "every case once: none lost, none counted twice"
    killed = next(r for r in recs if r["id"] == SLOW_ID)
    assert killed["status"] == status.CRASH and message in killed["message"], killed
    assert {r["status"] for r in recs if r["id"] != SLOW_ID} == {status.PASS}
    assert harness_main(["diff", str(baseline), str(path)]) == 1  # the lost verdict is a regression


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only), nearly full: a few records fit, then ENOSPC."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        with open(disk / "filler", "wb") as f:
            f.write(b"x" * (64 - 8) * 1024)  # leaves 8 KiB: about ten records
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_full_disk_stops_the_run_in_one_line_with_whole_records(fault_run, baseline, small_disk, workers,
                                                                   fault_ids):
    res, path = fault_run(None, "-n", workers, results=small_disk / "r.jsonl")
    out = res.stdout.str() + res.stderr.str()
    assert res.ret == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert "INTERNALERROR" not in out and "Traceback" not in out, out[-3000:]
    stop = [line for line in out.splitlines() if "No space left on device" in line]
    assert len(stop) == 1 and "run stopped" in stop[0] and str(path) in stop[0], out[-3000:]
    recs = records(path)  # whole lines only
    assert 0 < len(recs) < len(fault_ids) and len({r["id"] for r in recs}) == len(recs)
    assert harness_main(["diff", str(baseline), str(path)]) == 1  # the records that could not be written
    assert harness_main(["diff", str(baseline), str(path), "--allow-vanished"]) == 0


@pytest.fixture
def snapshot_guard():
    """The committed reports/ snapshot must come out of a partial run untouched (restored if not)."""
    files = {p: p.read_bytes() for p in (ROOT / "reports").glob("support.*")}
    yield
    changed = [p.name for p, data in files.items() if not p.exists() or p.read_bytes() != data]
    for p, data in files.items():
        p.write_bytes(data)
    assert not changed, f"a partial run overwrote the committed snapshot: {changed}"


def test_partial_runs_write_reports_beside_their_results(run_conformance, tmp_path, snapshot_guard):
    results = tmp_path / "narrow.jsonl"
    res = run_conformance("--matrix", FAULTS, "-n", "0", "-k", "good", "--results", results, "-q")
    assert res.ret == 0, res.stdout.str()[-2000:]
    res.stdout.fnmatch_lines(["reports: a partial run (--matrix, -k): written beside the results*"])
    assert (tmp_path / "narrow-reports" / "support.md").exists()
    # asked for explicitly: written where asked
    res = run_conformance("--matrix", FAULTS, "-n", "0", "-k", "good", "--results", tmp_path / "asked.jsonl",
                          "--reports-dir", tmp_path / "asked", "-q")
    assert res.ret == 0 and (tmp_path / "asked" / "support.md").exists()


def test_an_interrupted_run_writes_reports_beside_its_results(run_conformance, tmp_path, snapshot_guard):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "tolerances.yaml").write_bytes((ROOT / "cases" / "tolerances.yaml").read_bytes())
    (cases / "fake.yaml").write_bytes((ROOT / "tests" / "data" / "fake.yaml").read_bytes())
    results = tmp_path / "stopped.jsonl"
    res = run_conformance("--cases-dir", cases, "-n", "0", "-x", "--results", results, "--case-timeout", "5", "-q")
    assert res.ret == pytest.ExitCode.TESTS_FAILED, res.stdout.str()[-2000:]
    res.stdout.fnmatch_lines(["reports: a partial run (--cases-dir, interrupted): written beside the results*"])
    assert (tmp_path / "stopped-reports" / "support.md").exists()


@pytest.mark.parametrize("how", ["cases-dir", "deselect"])
def test_another_cases_dir_or_a_deselect_is_not_a_full_run(run_conformance, tmp_path, snapshot_guard, how):
    """Neither may overwrite the committed reports/ snapshot: their reports go beside the results."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "tolerances.yaml").write_bytes((ROOT / "cases" / "tolerances.yaml").read_bytes())
    (cases / "faults.yaml").write_bytes(FAULTS.read_bytes())
    args = ("--cases-dir", cases) if how == "cases-dir" else (
        "--matrix", FAULTS, "--deselect", f"conformance/test_conformance.py::test_case[{SLOW_ID}]")
    results = tmp_path / "r.jsonl"
    res = run_conformance(*args, "-n", "0", "--results", results, "--case-timeout", "30", "-q")
    assert res.ret == 0, res.stdout.str()[-2000:]
    res.stdout.fnmatch_lines([f"reports: a partial run (*--{how}*): written beside the results*"])
    assert (tmp_path / "r-reports" / "support.md").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_folders_of_dead_owners(tmp_path):
    from harness.isolation.processes import sweep_stale_temp_dirs

    dead = _dead_pid()
    names = {f"onnx-conf-{dead}-a": False, f"onnx-conf-master-{dead}-b": False, f"onnx-conf-warm-{dead}-c": False,
             f"onnx-conf-matrix-{dead}-g": False,  # the matrix an xdist controller ships to its workers
             f"onnx-conf-{os.getpid()}-d": True, "onnx-conf-1-e": True,  # live owners
             "onnx-conf-oldstyle": True, f"other-{dead}-f": True}  # not ours to judge
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "runner.log").write_text("x")
    removed = sweep_stale_temp_dirs(str(tmp_path))
    assert sorted(os.path.basename(p) for p in removed) == sorted(n for n, keep in names.items() if not keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, keep in names.items() if keep)


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path (Unix socket paths are limited to ~100 bytes)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="oct", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_a_run_sweeps_what_killed_runs_left(run_conformance, tmp_path, monkeypatch, short_tmp):
    tmp = short_tmp
    stale = tmp / f"onnx-conf-master-{_dead_pid()}-x"
    stale.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    res = run_conformance("--matrix", FAULTS, "-n", "0", "-k", "opset7", "--results", tmp_path / "r.jsonl",
                          "--no-report", "-q")
    assert res.ret == 0 and not stale.exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith("onnx-conf-")]  # and its own are gone too


def test_a_run_appending_to_a_torn_file_repairs_it_first(run_conformance, tmp_path):
    """A killed run's torn last line is cut (and said so) before the next run appends: never glued."""
    results = tmp_path / "r.jsonl"
    results.write_text('{"id": "fake-fake-relu-good-opset8-float32-cpu", "status": "pa')
    res = run_conformance("--matrix", FAULTS, "-n", "0", "-k", "opset7", "--results", results, "--no-report", "-q")
    assert res.ret == 0
    res.stdout.fnmatch_lines([f"onnx-conformance: {results}: cut off a torn last line*"])
    assert [r["id"] for r in records(results)] == ["fake-fake-relu-good-opset7-float32-cpu"]
