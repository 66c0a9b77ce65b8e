"""Usage and configuration faults: one line, exit code 4, before any runner starts, once under xdist.

Every fault here must end the run before a case runs: the results file stays
absent and no runner master is started (its warm-up would write the marker
file the fake framework's ``warm_up`` leaves when ``HARNESS_FAKE_WARM_UP_MARK`` is set).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "data" / "fake.yaml"
FAULTS = ROOT / "tests" / "data" / "faults.yaml"


@pytest.fixture
def cases_dir(tmp_path):
    """A cases folder with the fault matrix and the real tolerances."""
    d = tmp_path / "cases"
    d.mkdir()
    shutil.copy(ROOT / "cases" / "tolerances.yaml", d)
    shutil.copy(FAULTS, d / "faults.yaml")
    return d


def _usage_error(run_conformance, tmp_path, monkeypatch, *args, workers="2", runner_starts=False):
    marker = tmp_path / "warmed-up"
    monkeypatch.setenv("HARNESS_FAKE_WARM_UP_MARK", str(marker))
    results = tmp_path / "r.jsonl"
    res = run_conformance("-n", workers, "--no-report", *(["--results", results] if "--results" not in args
                                                          else []), *args)
    err = [line for line in res.stderr.str().splitlines() if line.strip()]
    assert res.ret == pytest.ExitCode.USAGE_ERROR, res.stdout.str()[-2000:] + res.stderr.str()[-2000:]
    assert "Traceback" not in res.stdout.str() + res.stderr.str()
    assert not results.exists(), "a case ran"
    assert marker.exists() == runner_starts, "a runner started" if marker.exists() else "no runner started"
    return err


BAD_OPTIONS = [
    (("--case-timeout", "inf"), "argument --case-timeout: 'inf': give a positive, finite number"),
    (("--case-timeout", "nan"), "argument --case-timeout: 'nan': give a positive, finite number"),
    (("--case-timeout", "0"), "argument --case-timeout: '0': give a positive, finite number"),
    (("--case-timeout", "-1"), "argument --case-timeout: '-1': give a positive, finite number"),
    (("--framework", "padle"), "ERROR: --framework padle: no matrix declares it (known: fake)"),
    (("--exporter", "typo"), "ERROR: --exporter typo: no matrix declares it (known: fake)"),
    (("--matrix", "/nonexistent/m.yaml"), "ERROR: --matrix /nonexistent/m.yaml: no such file"),
]


@pytest.mark.parametrize("args, line", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_options_are_one_line_usage_errors(run_conformance, tmp_path, monkeypatch, args, line):
    matrix = () if "--matrix" in args else ("--matrix", FAULTS)
    err = _usage_error(run_conformance, tmp_path, monkeypatch, *matrix, *args)
    assert any(line in e for e in err), err


def test_results_path_that_cannot_be_written(run_conformance, tmp_path, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for results, why in [(tmp_path, "is a folder"), (a_file / "r.jsonl", "is a file, not a folder")]:
        err = _usage_error(run_conformance, tmp_path, monkeypatch, "--matrix", FAULTS, "--results", results)
        assert len(err) == 1 and err[0].startswith(f"ERROR: --results {results}: ") and why in err[0], err


def test_results_on_a_read_only_file_system(run_conformance, tmp_path, monkeypatch):
    import os
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root (and root ignores file modes)")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=4k", "tmpfs", str(ro)], capture_output=True,
                           text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        err = _usage_error(run_conformance, tmp_path, monkeypatch, "--matrix", FAULTS, "--results", ro / "r.jsonl")
    finally:
        subprocess.run(["umount", str(ro)], check=False)
    assert err == [f"ERROR: --results {ro / 'r.jsonl'}: cannot write there (Read-only file system)"], err


@pytest.mark.parametrize("fault, line", [
    (lambda d: (d / "faults.yaml").write_text((d / "faults.yaml").read_text().replace('"7~21"', '"21~7"')),
     "faults.yaml:10: entries[relu].table.opsets: impossible opset range '21~7'"),
    (lambda d: (d / "faults.yaml").write_bytes(b"framework: fak\xe9\n"), "faults.yaml:1: <encoding>: not UTF-8"),
    (lambda d: (d / "tolerances.yaml").write_text(""), "tolerances.yaml: <file>: the file is empty"),
    (lambda d: (d / "expected_failures.yaml").write_text(
        "expected_failures:\n  - match: 'fake-*'\n    status: [mismatch]\n"),
     "expected_failures.yaml:2: expected_failures[0]: 'reason' is a required property"),
    (lambda d: (d / "expected_failures.yaml").write_text(
        "expected_failures:\n  - match: 'fake-*'\n    status: [great]\n    reason: a reason long enough\n"),
     "expected_failures.yaml:3: expected_failures[0].status: 'great' is not a failure status"),
    (lambda d: (d / "expected_failures.yaml").write_text(
        "expected_failures:\n  - match: 'fake-*'\n    opsets: '12~7'\n    status: [mismatch]\n"
        "    reason: a reason long enough\n"),
     "expected_failures.yaml:3: expected_failures[0].opsets: impossible opset range '12~7'"),
    (lambda d: (d / "expected_failures.yaml").write_text(""), "expected_failures.yaml: <file>: the file is empty"),
], ids=["matrix-range", "matrix-encoding", "empty-tolerances", "xfail-no-reason", "xfail-status",
        "xfail-range", "xfail-empty"])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_configuration_faults_are_one_line_printed_once(run_conformance, tmp_path, monkeypatch, cases_dir,
                                                        fault, line, workers):
    fault(cases_dir)
    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--cases-dir", cases_dir, workers=workers)
    assert len(err) == 1 and err[0].startswith("ERROR: ") and line in err[0], err


def test_case_ids_file_faults(run_conformance, tmp_path, monkeypatch):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n   # only a comment, indented\n\n")
    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--matrix", FAULTS, "--case-ids", ids)
    assert err == [f"ERROR: --case-ids {ids}: the file lists no case id (one per line; # for comments)"], err
    ids.write_text("fake-fake-relu-good-opset7-float32-cpu\nfake-nope\n")
    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--matrix", FAULTS, "--case-ids", ids)
    assert err == ["ERROR: --case-ids: 1 id(s) match no case of this run, e.g. fake-nope"], err


def test_indented_comment_in_case_ids_is_a_comment(run_conformance, tmp_path, monkeypatch):
    marker = tmp_path / "warmed-up"
    monkeypatch.setenv("HARNESS_FAKE_WARM_UP_MARK", str(marker))
    ids = tmp_path / "ids.txt"
    ids.write_text("  # the two lowest opsets\nfake-fake-relu-good-opset7-float32-cpu\n"
                   "    fake-fake-relu-good-opset8-float32-cpu\n")
    res = run_conformance("--matrix", FAULTS, "-n", "0", "--case-ids", ids, "--results", tmp_path / "r.jsonl",
                          "--no-report", "-q")
    res.assert_outcomes(passed=2)
    assert marker.exists()  # the control for the other tests: a run that does start a runner leaves it


def _entry_point_site(tmp_path) -> Path:
    """A site folder declaring pyproject.toml's pytest11 entry points, as ``pip install -e .`` does."""
    import tomllib

    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    info = tmp_path / "site" / "harness_entry_point-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-entry-point\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return info.parent


@pytest.mark.parametrize("where", ["repo", "elsewhere"])
def test_space_form_paths_outside_the_repo_work_from_any_folder(tmp_path, cases_dir, where):
    """``--cases-dir DIR --results FILE`` (space form, paths outside the repo) parse, from any folder."""
    import os
    import subprocess
    import sys

    site = _entry_point_site(tmp_path)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    args = ["--cases-dir", str(cases_dir), "--results", str(tmp_path / "r.jsonl"), "-n", "0", "--no-report",
            "-q", "-k", "opset7", "-p", "no:randomly"]
    if where == "elsewhere":
        args = [str(ROOT / "conformance"), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    res = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT if where == "repo" else elsewhere,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "unrecognized arguments" not in res.stderr and "already registered" not in res.stderr
    assert "1 passed" in res.stdout


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_call_target_that_does_not_resolve_is_a_configuration_error(run_conformance, tmp_path, monkeypatch,
                                                                      cases_dir, workers):
    """Resolved in the warm runner (importing a framework in the controller costs seconds), before any case."""
    m = cases_dir / "faults.yaml"
    m.write_text(m.read_text().replace("builder: relu", "call: numpy.maximum_nope"))
    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--cases-dir", cases_dir, workers=workers,
                       runner_starts=True)
    assert err == [f"ERROR: {m}:11: entries[relu].call: 'numpy.maximum_nope' does not resolve in fake "
                   f"(AttributeError: module 'numpy' has no attribute 'maximum_nope')"], err


#: A typo in a ``call:`` target of each real framework, written with the prefix its matrix uses
#: (``tf.`` and ``flow.`` are aliases the adapters declare), and the exporter to collect it under.
CALL_TYPOS = [
    ("paddle", "dygraph", "paddle.abss", "13~13"),
    ("torch", "torchscript", "torch.nn.functional.reluu", "13~13"),
    ("tensorflow", "function", "tf.math.abss", "14~14"),
    ("oneflow", "graph", "flow.abss", "13~13"),
    ("tensorflow", "function", "tf.mathh.abs", "14~14"),  # a module segment after the alias
]


@pytest.mark.parametrize("fw, exporter, target, opsets", CALL_TYPOS, ids=[t[2] for t in CALL_TYPOS])
def test_a_call_typo_of_every_framework_is_one_line_exit_4(run_conformance, tmp_path, monkeypatch, fw, exporter,
                                                            target, opsets):
    """Resolved through the adapter's own aliases, in the framework's own runner environment."""
    from harness.isolation import environments

    why = environments.unavailable(fw)
    if why:
        pytest.skip(f"{fw} cannot run here: {why}")
    d = tmp_path / "cases"
    d.mkdir()
    shutil.copy(ROOT / "cases" / "tolerances.yaml", d)
    m = d / f"{fw}.yaml"
    m.write_text(f"framework: {fw}\nexporters: [{exporter}]\nentries:\n  - kernel: abs\n"
                 f"    table: {{opsets: \"{opsets}\"}}\n    call: {target}\n    inputs: [{{shape: [2, 3]}}]\n")
    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--cases-dir", d, workers="0")
    line = f"ERROR: {m}:6: entries[abs].call: '{target}' does not resolve in {fw} ("
    assert len(err) == 1 and err[0].startswith(line), err
