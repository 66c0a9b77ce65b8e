"""A fake fifth framework, added through the extension point only, reaches every part of the harness.

Its adapter and matrix (``tests/data/fifth/``) are copied into a folder outside the repository;
the run finds the adapter through the matrix's ``plugins:``, and nothing under ``harness/`` or
``cases/`` names it. It must be collected and run, appear in the report, and pass the checks the
registry makes of every framework.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core import named, registry

ROOT = Path(__file__).resolve().parent.parent
FIFTH = ROOT / "tests" / "data" / "fifth"


@pytest.fixture
def fifth_dir(tmp_path, monkeypatch):
    """``<tmp>/plugins/fifth_adapter.py`` on PYTHONPATH and ``<tmp>/cases/{fifth,tolerances}.yaml``."""
    plugins = tmp_path / "plugins"
    cases = tmp_path / "cases"
    plugins.mkdir()
    cases.mkdir()
    shutil.copy(FIFTH / "fifth_adapter.py", plugins)
    shutil.copy(FIFTH / "fifth.yaml", cases)
    shutil.copy(ROOT / "cases" / "tolerances.yaml", cases)
    monkeypatch.setenv("PYTHONPATH", f"{plugins}:{ROOT}")
    monkeypatch.syspath_prepend(str(plugins))
    return tmp_path


def test_the_fifth_framework_is_collected_run_and_reported(run_conformance, fifth_dir):
    results = fifth_dir / "r.jsonl"
    res = run_conformance("--cases-dir", fifth_dir / "cases", "-n", "0", "--results", results, "--no-report")
    assert res.ret == 0, res.stdout.str()[-3000:]
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert {(r["framework"], r["exporter"], r["status"]) for r in recs} == {("fifth", "plain", "pass")}
    assert {r["opset"] for r in recs} == {13, 14}
    out = fifth_dir / "report"
    rep = subprocess.run([sys.executable, "-m", "harness", "report", str(results), "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr
    md = (out / "support.md").read_text()
    assert "fifth" in md and "relu" in md
    assert "fifth" in json.loads((out / "support.json").read_text(encoding="utf-8")).__repr__()


def test_the_fifth_framework_passes_the_registry_checks(fifth_dir):
    import fifth_adapter  # noqa: F401 - registers itself, as the runner's plugin import does

    try:
        assert "fifth" in registry.FRAMEWORKS  # a plugin framework: registered, not an adapter of harness/frameworks/
        assert ("fifth", "plain") in registry.EXPORTERS and ("fifth", "relu") in registry.BUILDERS
    finally:  # leave the registries as the other tests of this process expect them
        registry.FRAMEWORKS.pop("fifth", None)
        registry.EXPORTERS.pop(("fifth", "plain"), None)
        registry.BUILDERS.pop(("fifth", "relu"), None)
        sys.modules.pop("fifth_adapter", None)


def test_an_incomplete_framework_is_refused_when_it_registers():
    class NoReference(registry.FrameworkAdapter):
        name = "sixth"

        def build(self, spec, seed):
            return spec

    with pytest.raises(named.IncompleteExtension, match=r"framework 'sixth' .* lacks reference of the Framework"):
        registry.register_framework(NoReference)
    assert "sixth" not in registry.FRAMEWORKS


def test_an_incomplete_runtime_is_refused_when_it_registers():
    from harness import runtimes

    class NoRun:
        name = "half-runtime"

        def prepare(self, model, path, setting):
            return None

    with pytest.raises(named.IncompleteExtension, match=r"lacks devices, unsupported of the Runtime protocol"):
        runtimes.register_runtime(NoRun)
