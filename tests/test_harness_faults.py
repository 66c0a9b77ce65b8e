"""Harness faults are never conformance verdicts, and a silent framework skip never turns a run green.

* a framework whose import is broken (a missing library, ``MemoryError``) stops the run, exit 6;
* a framework that is not installed, or whose environment is missing, is a skip, unless
  ``--require-frameworks`` (default ``all`` when ``CI=true``) requires it: then exit 6;
* a full temporary folder (ENOSPC) while exporting stops the run with one line, exit 6, and
  no case is recorded as ``export-error``;
* a stopped runner master costs the next case no ``timeout`` it never ran;
* SIGTERM of the controller writes the summary and ``<results>-reports/`` as Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core import status

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "data" / "broken.yaml"
FAULTS = ROOT / "tests" / "data" / "faults.yaml"
FAKE = ROOT / "tests" / "data" / "fake.yaml"
SLOW_ID = "fake-fake-relu-slow-opset10-float32-cpu"
EXIT_NOT_MEASURED = 6


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _exit_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if "onnx-conformance:" in ln and "Exit" in ln]


@pytest.fixture
def broken_run(run_conformance, monkeypatch, tmp_path):
    """Run the brokenfw matrix with HARNESS_FAKE_BROKEN=how; return (RunResult, output, results path)."""

    def run(how: str, *args):
        monkeypatch.setenv("PYTHONPATH", str(ROOT))
        monkeypatch.setenv("HARNESS_FAKE_BROKEN", how)
        monkeypatch.delenv("CI", raising=False)
        results = tmp_path / f"{how or 'ok'}.jsonl"
        res = run_conformance("--matrix", BROKEN, "--results", results, "--no-report", "--repro-dir", "", "-q",
                              *args)
        return res, res.stdout.str() + res.stderr.str(), results

    return run


@pytest.mark.parametrize("how, words, workers", [
    ("import", "ImportError: libbrokenfw_core.so.1: cannot open shared object file", "0"),
    ("import", "ImportError: libbrokenfw_core.so.1: cannot open shared object file", "2"),
    ("memory", "MemoryError: out of memory while loading brokenfw's kernels", "0"),
    ("oom", "the brokenfw runner did not start", "0"),  # killed while importing, as by the OOM killer
    ("oom", "the brokenfw runner did not start", "2"),
])
def test_a_broken_framework_import_fails_the_run_in_one_line(broken_run, how, words, workers):
    res, out, results = broken_run(how, "-n", workers, "--require-frameworks", "none")
    assert res.ret == EXIT_NOT_MEASURED, out[-3000:]
    lines = _exit_lines(out)
    assert len(lines) == 1 and words in lines[0], out[-3000:]
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert not _records(results)  # nothing was measured, so nothing is recorded as skipped either


def test_a_framework_that_is_not_installed_is_a_skip_unless_required(broken_run, monkeypatch):
    res, out, results = broken_run("missing", "-n", "0")
    assert res.ret == 0, out[-3000:]
    recs = _records(results)
    assert recs and {r["status"] for r in recs} == {status.SKIPPED}
    assert all("brokenfw is not installed here" in r["message"] for r in recs)

    for args, ci in ((("--require-frameworks", "all"), None), (("--require-frameworks", "brokenfw"), None),
                     ((), "true")):
        if ci:
            monkeypatch.setenv("CI", ci)
        res = broken_run("missing", "-n", "0", *args)[0] if not ci else None
        if ci:  # the default under CI=true: broken_run clears CI, so run it here
            monkeypatch.setenv("HARNESS_FAKE_BROKEN", "missing")
            res = subprocess.run([sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly", "--matrix",
                                  str(BROKEN), "--results", str(results.with_name("ci.jsonl")), "--no-report", "-q",
                                  "--repro-dir", ""], cwd=ROOT, capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
            out, ret = res.stdout + res.stderr, res.returncode
        else:
            out, ret = res.stdout.str() + res.stderr.str(), res.ret
        lines = _exit_lines(out)
        assert ret == EXIT_NOT_MEASURED and len(lines) == 1, out[-3000:]
        assert "--require-frameworks: every brokenfw case would be skipped: brokenfw is not installed" in lines[0]


def test_require_frameworks_names_a_declared_framework(broken_run):
    res, out, _ = broken_run("", "-n", "0", "--require-frameworks", "tensorflw")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "--require-frameworks tensorflw: no matrix declares it (known: brokenfw)" in out


def test_a_missing_environment_of_a_required_framework_fails_before_any_case(run_conformance, monkeypatch,
                                                                              tmp_path):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("HARNESS_MISSING_ENV_DIR", str(tmp_path))
    results = tmp_path / "r.jsonl"
    common = ("--matrix", FAKE, "-p", "tests.missing_env", "-k", "good", "--results", results, "--no-report",
              "--repro-dir", "", "-q")
    res = run_conformance(*common, "-n", "0", "--require-frameworks", "none")
    assert res.ret == 0 and {r["status"] for r in _records(results)} == {status.SKIPPED}  # a plain skip
    results.unlink()
    for workers in ("0", "2"):
        res = run_conformance(*common, "-n", workers, "--require-frameworks", "all")
        out = res.stdout.str() + res.stderr.str()
        lines = _exit_lines(out)
        assert res.ret == EXIT_NOT_MEASURED and len(lines) == 1, out[-3000:]
        assert "every fake case would be skipped: fake runs in its own environment" in lines[0]
        assert "python -m harness envs create fake-env" in lines[0]
        assert not results.exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_full_temp_folder_is_a_harness_fault_not_an_export_error(broken_run, workers):
    res, out, results = broken_run("", "-n", workers, "-k", "good or disk_full",
                                   "--require-frameworks", "all")
    assert res.ret == EXIT_NOT_MEASURED, out[-3000:]
    lines = _exit_lines(out)
    assert len(lines) == 1 and "harness fault: OSError: [Errno 28] No space left on device" in lines[0], out[-3000:]
    assert "run stopped, not a conformance verdict" in lines[0] and str(results) in lines[0]
    recs = _records(results)
    assert all(r["status"] == status.PASS for r in recs), recs  # what ran before is kept, no export-error
    assert not any("disk_full" in r["id"] for r in recs)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_stopped_runner_master_costs_the_next_case_no_timeout(run_conformance, monkeypatch, tmp_path, workers):
    """The slow case times out (it ran); its session is killed; the next session's master is stopped."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("HARNESS_FAKE_SLOW_S", "6")
    monkeypatch.setenv("HARNESS_FAULT", f"master-stop:{SLOW_ID}")
    monkeypatch.setenv("HARNESS_FAULT_MARK", str(tmp_path / "stop.done"))
    results = tmp_path / "r.jsonl"
    res = run_conformance("--matrix", FAULTS, "-p", "tests.fault_injection", "-k", "opset1 or slow", "--results",
                          results, "--no-report", "--case-timeout", "3", "--startup-timeout", "4", "-n", workers,
                          "-q", "--repro-dir", "")
    out = res.stdout.str() + res.stderr.str()
    assert res.ret == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    recs = {r["id"]: r for r in _records(results)}
    assert recs[SLOW_ID]["status"] == status.TIMEOUT  # it ran, and outlived its limit
    others = [r for i, r in recs.items() if i != SLOW_ID]
    assert len(others) == len(recs) - 1 >= 3 and {r["status"] for r in others} == {status.PASS}, others


def _wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_writes_the_summary_and_reports_like_ctrl_c(tmp_path, workers):
    results = tmp_path / "term.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_FAKE_SLOW_S": "60"}
    env.pop("CI", None)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly", "--matrix",
                             str(FAULTS), "-k", "opset7 or opset8 or slow", "-n", workers, "--results", str(results),
                             "--repro-dir", "", "-q"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: len(_records(results)) >= 2, 120), "the quick cases did not finish"
        time.sleep(1.0)  # the slow case is in flight
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    partial = [ln for ln in out.splitlines() if ln.startswith("reports: a partial run (")]
    assert "onnx conformance summary" in out and len(partial) == 1 and "interrupted" in partial[0], out[-3000:]
    assert (tmp_path / "term-reports" / "support.md").exists()
    assert len(_records(results)) >= 2


def test_fault_classification():
    from harness.core import faults

    assert faults.import_failure("paddle", ModuleNotFoundError("No module named 'paddle'", name="paddle"))[0] \
        == "missing"
    for exc in (ModuleNotFoundError("No module named 'google.protobuf'", name="google.protobuf"),
                ImportError("libcudnn.so.8: cannot open shared object file"), MemoryError(), OSError("bad ELF")):
        kind, why = faults.import_failure("paddle", exc)
        assert kind == "broken" and "a broken install" in why and "\n" not in why
    try:  # native code words it; Python wraps it
        try:
            raise RuntimeError("paddle2onnx: write failed: No space left on device")
        except RuntimeError as inner:
            raise ValueError("export failed") from inner
    except ValueError as exc:
        assert faults.disk_full(exc)
    assert faults.disk_full(OSError(28, "x")) and not faults.disk_full(RuntimeError("opset 7 not supported"))


def test_a_full_temp_folder_that_the_exporter_does_not_name_is_still_a_harness_fault(monkeypatch, tmp_path):
    """A native exporter may say only "failed to save": the free space of its folder tells."""
    import shutil

    from harness.core import faults

    usage = shutil.disk_usage(tmp_path)
    assert not faults.no_room(str(tmp_path / "not" / "made"))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=4096))
    assert faults.no_room(str(tmp_path / "not" / "made"))
