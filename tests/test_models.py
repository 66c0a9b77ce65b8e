"""Whole models: the suite selection, degenerate references, top-1, the model tables, torchvision's import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.core import pipeline
from harness.spec.matrix import Scope, load_all, matrix_files
from harness.report import models

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "cases" / "models"


def _suite():
    return load_all(matrix_files(MODELS), ROOT / "cases" / "tolerances.yaml", Scope(), max_opset=21)


def test_the_models_suite_is_its_own_selection():
    default = {p.name for p in matrix_files(ROOT / "cases")}
    assert not {p.resolve() for p in matrix_files(MODELS)} & {p.resolve() for p in matrix_files(ROOT / "cases")}
    assert "expected_failures.yaml" not in {p.name for p in matrix_files(MODELS)} and default
    m = _suite()
    frameworks = {r.framework for r in m.rows}
    assert frameworks == {"paddle", "torch", "tensorflow", "oneflow"}
    assert len({(r.framework, r.kernel) for r in m.rows}) >= 24
    # every whole model is checked: degenerate references refused, dynamic batch at 1 and N > 1
    for c in m.cases:
        assert c.spec["whole_model"] and c.spec["check_reference"], c.id
        assert len(set(c.spec["batches"])) >= 2 and 1 in c.spec["batches"], c.id
    kernels = {(r.framework, r.kernel) for r in m.rows}
    for need in (("paddle", "resnet50"), ("paddle", "mobilenet_v3_small"), ("paddle", "seed000_inference_folder"),
                 ("oneflow", "resnet34"), ("tensorflow", "mobilenet_v2_h5")):
        assert need in kernels
    assert {c.exporter for c in m.cases if c.kernel == "seed000_inference_folder"} == {"cli"}


@pytest.mark.parametrize("refs, words", [
    ([[np.full((2, 10), 0.25, "float32")]], "output 0 is constant"),
    ([[np.zeros((2, 10), "float32") + 1e-5 * np.arange(10)]], "near zero"),
    ([[np.array([[1.0, np.nan]], "float32")]], "NaN or Inf"),
    ([[np.tile(np.arange(10, dtype="float32"), (3, 1))]], "the same for 3 different input samples"),
    ([[np.arange(10, dtype="float32")[None]], [np.arange(10, dtype="float32")[None]]],
     "the same for 2 different input samples"),
])
def test_a_degenerate_reference_is_named(refs, words):
    assert words in pipeline.degenerate(refs)


def test_a_meaningful_reference_and_integer_outputs_are_not_degenerate():
    rng = np.random.default_rng(0)
    assert pipeline.degenerate([[rng.normal(size=(1, 10)).astype("float32")],
                                [rng.normal(size=(3, 10)).astype("float32")]]) is None
    assert pipeline.degenerate([[np.zeros((2, 3), "int64")]]) is None


def test_top1_agreement():
    ref = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]], "float32")
    assert pipeline.top1_agreement(ref, ref + 1e-6) == 1.0
    assert pipeline.top1_agreement(ref, ref[:, ::-1].copy()) == 0.5
    assert pipeline.top1_agreement(ref, ref[:1]) is None


def _rec(fw, kernel, exporter, opset, st, **kw):
    return {"id": f"{fw}-{exporter}-{kernel}-default-opset{opset}-float32-cpu", "framework": fw, "kernel": kernel,
            "exporter": exporter, "opset": opset, "status": st, "whole_model": True, "runtime": "ort",
            "shared_key": kw.pop("shared_key", kernel), **kw}


def test_model_tables_from_records(tmp_path):
    recs = [
        _rec("paddle", "resnet50", "dygraph", 13, "pass", max_abs=1e-5, max_rel=2e-6, export_s=2.5, run_s=0.07,
             model_mb=102.2, top1_agree=1.0, wall_s=4.0),
        _rec("paddle", "resnet50", "dygraph", 14, "mismatch", max_abs=3e-3, max_rel=4e-4, export_s=2.7, run_s=0.08,
             model_mb=102.2, top1_agree=0.5, expected={"status": ["mismatch"]}, wall_s=6.5),
        _rec("torch", "resnet50", "dynamo", 18, "pass", max_abs=2e-6, max_rel=1e-6, export_s=9.0, run_s=0.05,
             model_mb=102.0),
        {"id": "torch-dynamo-abs-default-opset18-float32-cpu", "framework": "torch", "kernel": "abs",
         "exporter": "dynamo", "opset": 18, "status": "pass"},  # a kernel case: not a model
    ]
    table = models.rows(recs)
    assert set(table) == {"paddle", "torch"}
    row, = table["paddle"]
    assert row["opsets_pass"] == "13" and row["opsets_tested"] == "13~14" and row["runtimes_pass"] == ["ort"]
    assert row["max_abs"] == 3e-3 and row["top1"] == 0.5 and row["failures"] == {"mismatch": 1}
    assert row["run_ms"] == pytest.approx(70.0)  # from the passing records
    md = models.render_markdown(table)
    assert ("| resnet50 | dygraph | 13 | ort | 0.003 / 0.0004 | 0.50 | 2.7 | 70 | 102.2 "
            "| mismatch 1 (1 expected) |") in md
    assert "| resnet50 | 1/2 | 1/1 |" in md  # the cross-framework table, keyed by shared_key
    written = models.write(recs, tmp_path)
    assert [p.name for p in written] == list(models.OUTPUTS)
    data = json.loads((tmp_path / "models.json").read_text())
    assert data["cross_framework"][0]["cells"]["paddle"] == {"pass": 1, "cases": 2, "models": ["resnet50"]}
    assert "<td>resnet50</td>" in (tmp_path / "models.html").read_text()
    assert models.write(recs[3:], tmp_path / "none") == []
    assert models.cost(recs)["paddle"] == {"cases": 2, "wall_s": 10.5, "max_wall_s": 6.5}
    assert "| paddle | 2 | 10 | 6 |" in models.render_markdown(table, models.cost(recs))


@pytest.mark.parametrize("plain", [True, False], ids=["plain-import-fails", "adapter-defines-schemas"])
def test_torchvision_imports_only_through_the_adapter(plain):
    """torchvision 0.28.0's _C.so needs libtorch_cuda.so: a plain import fails on the CPU torch, and the
    adapter's schema definitions make it import, build resnet18 and export it."""
    pytest.importorskip("torch")
    if __import__("importlib").util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    run = subprocess.run([sys.executable, "-m", "tests.torchvision_probe"] + (["--plain"] if plain else []),
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    if plain:
        if facts["imported"]:
            pytest.skip("torchvision imports by itself here (its C++ library loaded): nothing to prove")
        assert "torchvision::nms" in facts["error"]
    else:
        assert facts["imported"] and facts["exported"], facts


def test_a_server_keeps_one_whole_model(monkeypatch):
    """Whole models are big: the model cache keeps one of them (kernel models: the last eight)."""
    from harness.core.case import Case

    built = []
    monkeypatch.setattr(pipeline, "_prepare", lambda case, fw: built.append(case.kernel) or pipeline.Prepared(
        case.kernel, [], [], 0.0))

    def case(kernel, whole):
        return Case("fake", kernel, "default", "fake", 13, "float32", "cpu", {"whole_model": whole}, {}, {})

    cache = pipeline.ModelCache()
    for k in ("a", "b", "a"):
        cache.get(case(k, True), None)
    assert built == ["a", "b", "a"]  # b pushed a out
    for k in ("k1", "k2", "k1"):
        cache.get(case(k, False), None)
    assert built[3:] == ["k1", "k2"]  # kernel models stay


# -- the suite's budget: grouping, letting go of a whole model ---------------------------------------
SERIAL = """\
framework: fake
exporters: [fake]
plugins: [tests.fakes, tests.fake_backends]
defaults:
  inputs: [{shape: [2, 3]}]
  whole_model: true
entries:
  - kernel: relu
    table: {opsets: "13~14"}
    builder: relu
    variants:
"""


def test_a_serial_group_runs_on_one_worker(tmp_path):
    """Entries of one ``serial_group`` share an xdist group: under loadgroup their models never overlap.

    Without it, loadgroup deals the first model to one worker and the second to the other.
    """
    from harness.plugin.collection import xdist_group

    names = [f"s{k}" for k in range(4)] + ["free0", "free1"]
    body = "".join(f"      {n}: {{kwargs: {{behavior: good}}{', serial_group: big' if n[0] == 's' else ''}}}\n"
                   for n in names)
    matrix = tmp_path / "serial.yaml"
    matrix.write_text(SERIAL + body)
    results = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly", "-p",
                           "no:cacheprovider", "--matrix", str(matrix), "-n", "2", "--dist", "loadgroup",
                           "--results", str(results), "--no-report", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = [json.loads(ln) for ln in results.read_text().splitlines()]
    assert len(recs) == 12
    serial = {r["worker"] for r in recs if r["variant"].startswith("s")}
    assert len(serial) == 1, serial
    m = load_all([matrix], ROOT / "cases" / "tolerances.yaml", Scope(), max_opset=21)
    groups = {c.variant: xdist_group(c) for c in m.cases}
    assert groups["s0"] == groups["s3"] == "serial-big" and groups["free0"] == m.cases[0].model_key.replace(
        m.cases[0].variant, "free0")


def test_the_models_suite_runs_with_loadgroup():
    """``--suite models -n 2`` turns xdist's default ``load`` into ``loadgroup``; another mode stays."""
    assert _dist_mode("load", "models") == ("loadgroup", True)
    assert _dist_mode("load", "default") == ("load", False)
    assert _dist_mode("worksteal", "models") == ("worksteal", False)
    assert _dist_mode("no", "models") == ("no", False)


def _dist_mode(dist, suite):
    from types import SimpleNamespace

    from harness.plugin import models_dist

    opt = SimpleNamespace(suite=suite, dist=dist, loadgroup=False)
    models_dist(SimpleNamespace(option=opt))
    return opt.dist, opt.loadgroup


class _Executor:
    def __init__(self, log, fw):
        self.log, self.fw = log, fw

    def run(self, case, device=None, ahead=None):
        self.log.append(("run", self.fw, case.variant))
        return {"id": case.id, "status": "pass"}

    def close(self):
        self.log.append(("close", self.fw))


def test_a_worker_lets_go_of_a_whole_model_after_its_last_case():
    """The session (server, model, exports) of a whole model ends when the next case is another model."""
    from types import SimpleNamespace

    from harness.core.case import Case
    from harness.plugin.lifecycle import CaseRunner

    log = []
    cfg = SimpleNamespace(shard=None, ort_providers=("CPUExecutionProvider",))
    lifecycle = SimpleNamespace(cfg=cfg, verdicts=SimpleNamespace(expectations=None),
                                early={}, next_case=None, executor=lambda fw: _Executor(log, fw))

    def case(variant, opset, whole=True):
        return Case("fake", "net", variant, "fake", opset, "float32", "cpu", {"whole_model": whole}, {}, {})

    runner = CaseRunner(lifecycle)
    order = [case("a", 13), case("a", 14), case("b", 13), case("k", 13, whole=False), case("k", 14, whole=False)]
    for n, c in enumerate(order):
        lifecycle.next_case = order[n + 1] if n + 1 < len(order) else None
        runner.run(c)
    assert log == [("run", "fake", "a"), ("run", "fake", "a"), ("close", "fake"), ("run", "fake", "b"),
                   ("close", "fake"), ("run", "fake", "k"), ("run", "fake", "k")]
    assert "fake" in runner.executors  # kernel models keep their session (and its cache of eight)


def test_a_whole_model_export_is_unloaded_after_its_case_and_reloaded_when_reused(fake_matrix, tmp_path):
    """Whole models keep their exported file, not the loaded graph, between cases."""
    from dataclasses import replace

    import tests.fakes  # noqa: F401 - registers the fake framework in this process
    from harness.core import status

    base = next(c for c in fake_matrix.cases if c.variant == "good" and c.opset == 13)
    case = replace(base, spec={**base.spec, "whole_model": True})
    cache = pipeline.ModelCache()
    first = pipeline.run_case(case, str(tmp_path), cache)
    exported = next(iter(cache._items.values())).cache[("exported", case.export_key)]
    assert first["status"] == status.PASS and exported.model is None and exported.path
    again = pipeline.run_case(case, str(tmp_path), cache)  # e.g. another runtime of the same export
    assert again["status"] == status.PASS and again.get("export_reused")
