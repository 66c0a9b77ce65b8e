"""Issue 24's input-hardening faults outside the YAML files: path options, command-line values, tools.

Each test here failed on the code before its fix (see the closing note of issue 24).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_usage_errors import FAULTS, _entry_point_site

ROOT = Path(__file__).resolve().parent.parent


# -- item 11: the space form of a path option does not move pytest's rootdir -----------------------

@pytest.mark.parametrize("option", ["--case-ids", "--results", "--cases-dir"])
def test_a_space_form_path_outside_the_checkout_keeps_the_rootdir(tmp_path, option):
    """Run from the checkout as a user does (the plugin from its entry point), one path option in the space form."""
    outside = tmp_path / "outside"
    cases = outside / "cases"
    cases.mkdir(parents=True)
    (cases / "faults.yaml").write_text(FAULTS.read_text())
    (cases / "tolerances.yaml").write_text((ROOT / "cases" / "tolerances.yaml").read_text())
    ids = outside / "ids.txt"
    ids.write_text("fake-fake-relu-good-opset7-float32-cpu\n")
    results = outside / "results"
    results.mkdir()
    (results / "r.jsonl").write_text("")  # an existing path: pytest's early parse looks at it
    paths = {"--case-ids": ids, "--results": results / "r.jsonl", "--cases-dir": cases}
    args = ["--matrix=" + str(cases / "faults.yaml"), "--cases-dir=" + str(cases), "--case-ids=" + str(ids),
            "--results=" + str(results / "r.jsonl")]
    args = [a for a in args if not a.startswith(option + "=")] + [option, str(paths[option])]
    site = _entry_point_site(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    res = subprocess.run([sys.executable, "-m", "pytest", *args, "-n", "0", "--no-report", "-p", "no:randomly",
                          "--co"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert f"rootdir: {ROOT}\n" in out and "configfile: pyproject.toml" in out, out[-3000:]
    assert "1 test collected" in out and "tests/" not in out, out[-3000:]  # the conformance case only


# -- items 7, 9, 15 end to end: a pytest run stops with one line and exit 4 ------------------------

def _bomb_defaults(text: str) -> str:
    levels = ['    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return text.replace("defaults:\n", "defaults:\n  kwargs:\n" + "\n".join(levels) + "\n")


YAML_FAULTS = [
    ("scalar-tag", lambda t: t.replace("{behavior: good}", "{behavior: !!python/name:os.system good}"),
     "faults.yaml:13: entries.0.variants.good.kwargs.behavior: tag !!python/name:os.system 'good'"),
    ("mapping-tag", lambda t: t.replace("good: {kwargs", "good: !!python/object:os.Foo {kwargs"),
     "faults.yaml:13: entries.0.variants.good: tag !!python/object:os.Foo"),
    ("date", lambda t: t.replace("{behavior: good}", "{behavior: good, day: 2024-01-01}"),
     "faults.yaml:13: entries.0.variants.good.kwargs.day: a date or time '2024-01-01' is not a JSON value"),
    ("alias-bomb", _bomb_defaults, "the aliases expand to more than 10000 values"),
    ("recursive-alias", lambda t: t.replace("{behavior: good}", "&a {behavior: good, again: *a}"),
     "faults.yaml:13: entries.0.variants.good.kwargs.again: an alias refers to an anchor that contains it"),
]


@pytest.mark.parametrize("fault, line", [(f, line) for _, f, line in YAML_FAULTS], ids=[i for i, *_ in YAML_FAULTS])
def test_yaml_faults_stop_the_run_in_one_line(run_conformance, tmp_path, monkeypatch, fault, line):
    import time

    from tests.test_usage_errors import _usage_error

    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "tolerances.yaml").write_text((ROOT / "cases" / "tolerances.yaml").read_text())
    (cases / "faults.yaml").write_text(fault(FAULTS.read_text()))
    start = time.monotonic()
    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--cases-dir", cases, workers="0")
    assert len(err) == 1 and err[0].startswith("ERROR: ") and line in err[0], err
    assert time.monotonic() - start < 60  # measured under load: about 3 s; the bomb took 40 s and 1.5 GB


# -- item 17: one line instead of a traceback --------------------------------------------------------

BAD_VALUES = [
    (("--max-examples", "0"), "argument --max-examples: '0': give a whole number, 1 or more"),
    (("--max-examples", "-1"), "argument --max-examples: '-1': give a whole number, 1 or more"),
    (("--max-examples", "many"), "argument --max-examples: 'many' is not a whole number"),
    (("--shrink-budget", "nan"), "argument --shrink-budget: 'nan': give a finite number of seconds, 0 or more"),
    (("--shrink-budget", "-1"), "argument --shrink-budget: '-1': give a finite number of seconds, 0 or more"),
    (("--shrink-budget", "inf"), "argument --shrink-budget: 'inf': give a finite number of seconds, 0 or more"),
]


@pytest.mark.parametrize("args, line", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_explore_values_are_one_line_usage_errors(run_conformance, tmp_path, monkeypatch, args, line):
    from tests.test_usage_errors import _usage_error

    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--matrix", FAULTS, "--explore", *args, workers="0")
    assert any(line in e for e in err), err


def _not_results(tmp_path) -> list[Path]:
    text, binary = tmp_path / "notes.txt", tmp_path / "image.png"
    text.write_text("hello\nnot a record\n")
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return [text, binary]


def test_shard_durations_on_a_non_results_file(run_conformance, tmp_path, monkeypatch):
    from tests.test_usage_errors import _usage_error

    for path in _not_results(tmp_path):
        err = _usage_error(run_conformance, tmp_path, monkeypatch, "--matrix", FAULTS, "--shard-id", "1",
                           "--num-shards", "2", "--shard-durations", path, workers="0")
        assert err == [f"ERROR: --shard-durations {path}: not a results file" + err[0].split("not a results file")[1]]
        assert "INTERNALERROR" not in err[0]


@pytest.mark.parametrize("command", [["shards"], ["pin-example"]])
def test_tools_on_non_records_say_so_in_one_line(tmp_path, capsys, command):
    from harness.__main__ import main

    for path in _not_results(tmp_path):
        argv = [*command, str(path)] + (["some-case-id"] if command == ["pin-example"] else [])
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{path}: not a results file" in err[0], err


def _records(tmp_path) -> Path:
    from tests.test_reports import sample, write

    return write(tmp_path / "run.jsonl", sample())


def test_report_out_on_a_file_is_one_line(tmp_path, capsys):
    from harness.__main__ import main

    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    assert main(["report", str(_records(tmp_path)), "--out", str(a_file), "--no-matrix"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out {a_file}: cannot write (File exists)"], err
    assert a_file.read_text() == "keep me"


def _tmpfs(where: Path, options: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                           text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")


@pytest.mark.parametrize("options, why", [("ro,size=64k", "Read-only file system"),
                                          ("size=8k", "No space left on device")])
def test_report_out_on_a_read_only_or_full_disk_is_one_line(tmp_path, capsys, options, why):
    from harness.__main__ import main

    records = _records(tmp_path)
    disk = tmp_path / "disk"
    _tmpfs(disk, options)
    try:
        rc = main(["report", str(records), "--out", str(disk / "reports"), "--no-matrix"])
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: --out {disk / 'reports'}: cannot write") and why in err[0], err


def test_diff_markdown_appends_and_a_folder_is_one_line(tmp_path, capsys):
    from harness.__main__ import main

    records = _records(tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("# an earlier step's summary\n")
    assert main(["diff", str(records), str(records), "--markdown", str(summary)]) == 0
    out = capsys.readouterr().out
    assert summary.read_text() == "# an earlier step's summary\n" + out
    assert main(["diff", str(records), str(records), "--markdown", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --markdown {tmp_path}: cannot append (Is a directory)"], err


def _refused_before_the_run(run_conformance, tmp_path, *args) -> list[str]:
    results = tmp_path / "r.jsonl"
    res = run_conformance("--matrix", FAULTS, "-n", "0", "--results", results, *args)
    assert res.ret == pytest.ExitCode.USAGE_ERROR, res.stdout.str()[-2000:] + res.stderr.str()[-2000:]
    assert not results.exists(), "a case ran"
    return [line for line in res.stderr.str().splitlines() if line.strip()]


@pytest.mark.parametrize("option", ["--repro-dir", "--reports-dir"])
def test_an_unwritable_output_folder_is_refused_before_the_run(run_conformance, tmp_path, option):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    err = _refused_before_the_run(run_conformance, tmp_path, option, a_file / "sub")
    assert err == [f"ERROR: {option} {a_file / 'sub'}: {a_file} is a file, not a folder"], err
    disk = tmp_path / "disk"
    _tmpfs(disk, "ro,size=64k")
    try:
        err = _refused_before_the_run(run_conformance, tmp_path, option, disk / "out")
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    assert err == [f"ERROR: {option} {disk / 'out'}: cannot write there (Read-only file system)"], err


# -- item 23: exporter names, a BOM in --case-ids, the TF warm-up's temp files -----------------------

@pytest.mark.parametrize("workers", ["0", "2"])
def test_an_exporter_the_framework_does_not_register_is_a_configuration_error(run_conformance, tmp_path,
                                                                              monkeypatch, workers):
    """Checked in the warm runner (the adapter registers its exporters there), before any case runs."""
    from tests.test_usage_errors import _usage_error

    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "tolerances.yaml").write_text((ROOT / "cases" / "tolerances.yaml").read_text())
    m = cases / "faults.yaml"
    m.write_text(FAULTS.read_text().replace("exporters: [fake]", "exporters:\n  - fake\n  - fkae"))
    err = _usage_error(run_conformance, tmp_path, monkeypatch, "--cases-dir", cases, workers=workers,
                       runner_starts=True)
    assert err == [f"ERROR: {m}:6: exporters: no exporter 'fkae' is registered for fake (registered: fake)"], err


def test_a_byte_order_mark_in_case_ids_is_not_part_of_the_first_id(run_conformance, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_bytes("fake-fake-relu-good-opset7-float32-cpu\r\nfake-fake-relu-good-opset8-float32-cpu\r\n"
                    .encode("utf-8-sig"))
    res = run_conformance("--matrix", FAULTS, "-n", "0", "--case-ids", ids, "--results", tmp_path / "r.jsonl",
                          "--no-report", "-q")
    res.assert_outcomes(passed=2)


def test_the_tensorflow_warm_up_leaves_nothing_in_the_temp_folder(tmp_path):
    from harness.isolation import environments
    from harness.spec.matrix import Scope, load_all

    reason = environments.unavailable("tensorflow")
    if reason:
        pytest.skip(reason)
    m = load_all([ROOT / "cases" / "tensorflow.yaml"], ROOT / "cases" / "tolerances.yaml", Scope(), max_opset=21)
    case = next(c for c in m.cases if c.kernel == "abs" and c.dtype == "float32" and c.exporter == "function")
    ids = tmp_path / "ids.txt"
    ids.write_text(case.id + "\n")
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="tfw-"))  # short: the runners' sockets live in TMPDIR
    try:
        res = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-p", "no:randomly", "-n",
                              "0", f"--case-ids={ids}", f"--results={tmp_path / 'r.jsonl'}", "--no-report", "-q"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)})
        left = sorted(p.name for p in scratch.glob("__autograph_generated_file*"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]
    assert not left, left
