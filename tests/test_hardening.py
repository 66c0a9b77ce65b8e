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
