"""The bench's own logic: its weighted sample, its floor outside pytest, its per-framework costs, its
argument errors. Fast: no framework is imported (the floor runs the fake framework of tests/fakes.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.bench import costs, runs, sample
from harness.core.case import Case
from harness.spec.matrix import Scope, load_all

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
FOUR = ("paddle", "torch", "tensorflow", "oneflow")


# -- apportion ----------------------------------------------------------------------------------
def test_apportion_is_proportional_with_largest_remainders():
    got = sample.apportion(10, {"a": 1, "b": 1, "c": 1}, {"a": 99, "b": 99, "c": 99})
    assert sorted(got.values()) == [3, 3, 4] and sum(got.values()) == 10
    assert sample.apportion(100, {"a": 3, "b": 1}, {"a": 100, "b": 100}) == {"a": 75, "b": 25}
    # the remainder goes to the largest fraction: 7 * 0.55 = 3.85 -> 4, 7 * 0.45 = 3.15 -> 3
    assert sample.apportion(7, {"a": 55, "b": 45}, {"a": 9, "b": 9}) == {"a": 4, "b": 3}


def test_apportion_gives_what_a_capped_stratum_cannot_take_to_the_others_by_weight():
    got = sample.apportion(100, {"small": 50, "x": 30, "y": 20}, {"small": 10, "x": 1000, "y": 1000})
    assert got == {"small": 10, "x": 54, "y": 36}
    # never more than the caps allow in all; a weight or cap of 0 gets nothing
    assert sample.apportion(50, {"a": 1, "b": 1, "z": 0}, {"a": 5, "b": 7, "z": 9}) == {"a": 5, "b": 7, "z": 0}
    assert sample.apportion(5, {"a": 1, "b": 1}, {"a": 0, "b": 9}) == {"a": 0, "b": 5}


# -- the sample ---------------------------------------------------------------------------------
class _C:
    def __init__(self, fw, kernel, opset, exporter="e"):
        self.framework, self.kernel, self.variant, self.dtype, self.exporter = fw, kernel, "v", "float32", exporter
        self.opset, self.id = opset, f"{fw}-{kernel}-{exporter}-{opset}"


def test_round_robin_draws_depth_cases_of_a_group_in_its_turn():
    cases = [_C("f", k, o) for k in "abcd" for o in range(13, 20)]
    one = sample._round_robin(cases, 8)
    assert Counter(c.kernel for c in one) == {k: 2 for k in "abcd"}
    three = sample._round_robin(cases, 8, depth=3)
    assert sorted(Counter(c.kernel for c in three).values()) == [2, 3, 3]
    # the strata of one framework draw the same groups first (the exporter is not in the group's key)
    e1 = sample._round_robin([c for c in cases if c.opset < 15], 2, depth=2)
    e2 = sample._round_robin([_C(c.framework, c.kernel, c.opset, "other") for c in cases if c.opset < 15], 2, 2)
    assert {c.kernel for c in e1} == {c.kernel for c in e2}


def test_weights_are_the_default_runs_cases_per_framework_and_exporter():
    """Counted from the default run's expansion (declared opsets, not skipped), not from a hand list."""
    m = load_all(sorted(p for p in CASES.glob("*.yaml") if p.name not in ("tolerances.yaml",)),
                 CASES / "tolerances.yaml", Scope(frameworks=FOUR))
    want = Counter((c.framework, c.exporter) for c in m.cases if not c.skip)
    assert sample.matrix_weights(CASES, CASES / "tolerances.yaml", FOUR) == want
    assert {fw for fw, _ in want} == set(FOUR)


def test_default_sample_has_all_four_frameworks_weighted_like_the_default_run():
    weights = sample.matrix_weights(CASES, CASES / "tolerances.yaml", FOUR)
    depths = sample.matrix_depths(CASES, CASES / "tolerances.yaml", FOUR)
    n = runs.DEFAULT_CASES
    drawn = sample.sample_cases(CASES, n, 13, 21, frozenset(), FOUR, (), ("float32",), weights, depths=depths)
    assert len(drawn) == n and len({c.id for c in drawn}) == n
    got = Counter((c.framework, c.exporter) for c in drawn)
    total = sum(weights.values())
    for stratum, w in weights.items():  # every stratum within one case of its share
        assert abs(got[stratum] - n * w / total) <= 1, (stratum, got[stratum], n * w / total)
    assert all(13 <= c.opset <= 21 and c.dtype == "float32" for c in drawn)
    # deterministic
    again = sample.sample_cases(CASES, n, 13, 21, frozenset(), FOUR, (), ("float32",), weights, depths=depths)
    assert [c.id for c in again] == [c.id for c in drawn]


def test_paddle_only_sample_splits_like_paddles_default_run():
    weights = sample.matrix_weights(CASES, CASES / "tolerances.yaml", ("paddle",))
    assert {fw for fw, _ in weights} == {"paddle"}
    drawn = sample.sample_cases(CASES, 100, 13, 21, frozenset(), ("paddle",), (), ("float32",), weights)
    got = Counter(c.exporter for c in drawn)
    total = sum(weights.values())
    assert all(abs(got[ex] - 100 * w / total) <= 1 for (_, ex), w in weights.items()), got


# -- the floor ----------------------------------------------------------------------------------
def _fake_cases(*variants: str) -> list[Case]:
    m = load_all([ROOT / "tests" / "data" / "fake.yaml"], CASES / "tolerances.yaml", Scope())
    return [c for c in m.cases if c.variant in variants and c.opset == 13]


def test_floor_runs_cases_handed_over_as_dicts_and_writes_a_line_per_case(tmp_path):
    cases = _fake_cases("good", "wrong_values", "raises")
    assert len(cases) == 3
    cases_file, done = tmp_path / "cases.jsonl", tmp_path / "done.jsonl"
    cases_file.write_text("".join(json.dumps(c.to_dict()) + "\n" for c in cases))
    out = subprocess.run(runs._floor_cmd(sys.executable, cases_file, done, ("tests.fakes",)), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"counts": {"pass": 1, "mismatch": 1, "error": 1}}
    lines = [json.loads(ln) for ln in done.read_text().splitlines()]
    assert [ln["id"] for ln in lines] == [c.id for c in cases]
    assert all(ln["framework"] == "fake" and ln["wall_s"] > 0 for ln in lines)
    assert [ln["export_s"] is None for ln in lines] == [False, False, True]  # "raises" fails in its export


def test_floor_is_runner_side_code_that_the_oldest_environment_can_import():
    """The floor of TensorFlow and OneFlow runs in their interpreters (Python 3.10 for OneFlow)."""
    import ast

    from tests.test_environments import RUNNER_SIDE, _harness_imports

    seen, todo = set(), [ROOT / "harness" / "bench" / "floor.py", ROOT / "harness" / "bench" / "__init__.py"]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += _harness_imports(p)
    rel = {str(p.relative_to(ROOT / "harness")) for p in seen}
    # what the runner itself imports there, and nothing of the controller side (spec, plugin, bench.runs)
    assert rel - set(RUNNER_SIDE) == {"bench/floor.py", "bench/__init__.py"}, rel - set(RUNNER_SIDE)
    for p in seen:
        tree = ast.parse(p.read_text(encoding="utf-8"), feature_version=(3, 10))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not names & {"tomllib", "yaml", "pytest"}, (p, names)


def test_floor_groups_send_tensorflow_and_oneflow_to_their_own_interpreters():
    class C:
        def __init__(self, fw):
            self.framework, self.id = fw, fw

    groups = runs.floor_groups([C("oneflow"), C("torch"), C("paddle"), C("tensorflow")])
    assert [(name, [c.framework for c in cs]) for name, _, _, cs in groups] == [
        ("main", ["torch", "paddle"]), ("tensorflow", ["tensorflow"]), ("oneflow", ["oneflow"])]
    py = {name: exe for name, exe, _, _ in groups}
    assert py["main"] == sys.executable
    assert py["tensorflow"].endswith(".envs/tensorflow/bin/python")
    assert py["oneflow"].endswith(".envs/oneflow/bin/python")
    env = {name: e for name, _, e, _ in groups}
    assert str(ROOT) in env["oneflow"]["PYTHONPATH"].split(":")  # the harness is not installed there


# -- per-framework costs --------------------------------------------------------------------------
def test_framework_costs_from_records(tmp_path):
    recs = [
        {"framework": "paddle", "exporter": "dygraph", "status": "pass", "wall_s": 0.1, "export_s": 0.05,
         "run_s": 0.01},
        {"framework": "paddle", "exporter": "static", "status": "pass", "wall_s": 0.3, "export_s": 0.05,
         "run_s": 0.03},
        {"framework": "paddle", "exporter": "static", "status": "export-error", "wall_s": 0.2, "export_s": None},
        {"framework": "paddle", "exporter": "static", "status": "skipped", "wall_s": 0.0},
        {"framework": "oneflow", "exporter": "graph", "status": "pass", "wall_s": 1.0, "export_s": 0.8, "run_s": 0.1},
        {"framework": "oneflow", "exporter": "graph", "status": "pass", "wall_s": 0.5, "export_s": 0.4,
         "export_reused": True, "run_s": 0.1},
        {"id": "x", "framework": "tensorflow", "exporter": "keras", "export_s": 0.2, "wall_s": 0.4},  # floor line
    ]
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs) + "not json\n")
    got = costs.framework_costs(p)
    assert list(costs.order_frameworks(got)) == ["paddle", "tensorflow", "oneflow"]
    pd = got["paddle"]
    assert pd.cases == 3 and abs(pd.mean_s - 0.2) < 1e-9 and abs(pd.median_s - 0.2) < 1e-9
    assert abs(pd.export_s - 0.05) < 1e-9 and abs(pd.export_share - 0.1 / 0.4) < 1e-9
    assert abs(pd.run_s - 0.02) < 1e-9
    of = got["oneflow"]  # a reused export is not an export cost
    assert of.cases == 2 and abs(of.export_s - 0.8) < 1e-9 and abs(of.export_share - 0.8) < 1e-9
    assert abs(of.median_s - 0.75) < 1e-9 and abs(of.wall_s - 1.5) < 1e-9
    assert got["tensorflow"].run_s is None and got["tensorflow"].cases == 1
    assert costs.framework_costs(tmp_path / "missing.jsonl") == {}


def test_median_costs_and_the_spread_of_the_ratios_over_rounds():
    def fc(mean):
        return costs.FrameworkCost(cases=4, wall_s=4 * mean, mean_s=mean, median_s=mean, export_s=None,
                                   export_share=None, run_s=None)

    med = costs.median_costs([{"torch": fc(0.1)}, {"torch": fc(0.3)}, {"torch": fc(0.2), "paddle": fc(1.0)}])
    assert abs(med["torch"].mean_s - 0.2) < 1e-9 and med["paddle"].mean_s == 1.0 and med["torch"].export_s is None

    def rnd(a, b, c):
        return {k: runs.BenchRun(w, [], "", 1.0, None, None) for k, w in (("a", a), ("b", b), ("c", c))}

    got = runs.spread([rnd(10, 12, 6), rnd(10, 11, 5), rnd(10, 13, 8)])
    vals, mid, width = got["b/c"]
    assert vals == pytest.approx([2.0, 2.2, 1.625]) and mid == pytest.approx(2.0) and width == pytest.approx(0.575)
    assert got["b/a"][1] == pytest.approx(1.2) and "a/p" not in got


def test_framework_table_prints_a_row_per_run_and_framework(capsys):
    c = costs.FrameworkCost(cases=3, wall_s=0.6, mean_s=0.2, median_s=0.1, export_s=0.05, export_share=0.25,
                            run_s=0.01, peak_pss_mib=812.4)
    costs.print_framework_costs([("b", {"torch": c}), ("c", {"oneflow": c, "paddle": c})])
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["b", "torch", "3", "200.0", "100.0", "50.0", "25%", "10.0", "812"],
                    ["c", "paddle", "3", "200.0", "100.0", "50.0", "25%", "10.0", "812"],
                    ["c", "oneflow", "3", "200.0", "100.0", "50.0", "25%", "10.0", "812"]]


def test_runner_processes_are_labelled_with_their_frameworks():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "harness.core.runner", "[]",
                             '["tensorflow"]', "3"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        known: dict = {}
        for _ in range(200):  # until both have exec'd
            if runs._runner_label(proc.pid, known) and other.pid in known or runs._runner_label(other.pid, known):
                break
            time.sleep(0.01)
        assert runs._runner_label(proc.pid, known) == "tensorflow"
        assert runs._runner_label(other.pid, known) is None and known[other.pid] == ""
    finally:
        for p in (proc, other):
            p.kill()
            p.wait()


# -- argument errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, option", [
    (["--cases", "-1"], "--cases"),
    (["--cases", "many"], "--cases"),
    (["--repeat", "0"], "--repeat"),
    (["--workers", "0"], "--workers"),
    (["--only", "abx"], "--only"),
    (["--frameworks", "paddle,jax"], "--frameworks"),
    (["--frameworks", ""], "--frameworks"),
    (["--min-opset", "20", "--max-opset", "14"], "--min-opset"),
    (["--mem-interval", "-1"], "--mem-interval"),
    (["--from-results", "/no/such/results.jsonl"], "--from-results"),
    (["--exclude-from", "/no/such/results.jsonl"], "--exclude-from"),
    (["--suite", "nightly"], "--suite"),
    (["--cases-dir", "/no/such/cases"], "--cases-dir"),
])
def test_bad_arguments_are_one_line_naming_the_option_and_exit_4(argv, option, capsys):
    with pytest.raises(SystemExit) as exc:
        runs.main(argv)
    assert exc.value.code == 4
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and option in err, err


def test_a_filter_that_leaves_no_case_is_an_argument_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        runs.main(["--frameworks", "paddle", "--dtypes", "no-such-dtype", "--exclude-from", str(_empty(tmp_path)),
                   "--keep", str(tmp_path)])
    assert exc.value.code == 4
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--dtypes" in err, err


def _empty(tmp_path: Path) -> Path:
    p = tmp_path / "empty.jsonl"
    p.write_text("")
    return p


def test_from_results_prints_each_frameworks_cost(tmp_path, capsys):
    p = tmp_path / "models.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in [
        {"framework": "tensorflow", "exporter": "keras", "status": "pass", "wall_s": 30.0, "export_s": 27.9,
         "run_s": 0.5},
        {"framework": "paddle", "exporter": "dygraph", "status": "pass", "wall_s": 3.0, "export_s": 2.7, "run_s": 0.07},
    ]))
    assert runs.main(["--from-results", str(p)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {ln.split()[0]: ln.split() for ln in out[2:]}
    assert rows["paddle"][1:6] == ["1", "3.0", "3.00", "3.00", "2.70"]
    assert rows["tensorflow"][1:6] == ["1", "30.0", "30.00", "30.00", "27.90"]
    assert rows["all"][1:3] == ["2", "33.0"]


# -- the probe ----------------------------------------------------------------------------------
def test_the_probe_leaves_a_crashing_model_out_whole_in_one_probe_run(tmp_path, monkeypatch, capsys):
    """One probe run over the sample plus a margin; a model with a crashing case goes whole, and its
    replacement comes from the cases that probe already ran (no second start-up)."""
    weights = sample.matrix_weights(CASES, CASES / "tolerances.yaml", FOUR)
    depths = sample.matrix_depths(CASES, CASES / "tolerances.yaml", FOUR)

    def draw(exclude, n):
        return sample.sample_cases(CASES, n or 10**6, 13, 21, exclude, FOUR, (), ("float32",), weights, depths=depths)

    first = draw(frozenset(), 100)
    crashing = next(c for c in first if c.framework == "paddle" and
                    sum(d.model_key == c.model_key for d in first) > 1)
    probed: list[list[str]] = []
    every = {c.id: c for c in draw(frozenset(), 0)}

    def fake_timed(cmd, split, log, interval, *rest, **kw):
        ids = Path(next(a for a in cmd if a.startswith("--case-ids="))[len("--case-ids="):]).read_text().split()
        probed.append(ids)
        res = Path(cmd[cmd.index("--results") + 1])
        with res.open("a") as f:
            for cid in ids:
                c = every[cid]
                bad = c.id == crashing.id
                f.write(json.dumps({"id": c.id, "framework": c.framework, "kernel": c.kernel,
                                    "variant": c.variant, "dtype": c.dtype, "exporter": c.exporter,
                                    "opset": c.opset, "status": "crash" if bad else "pass",
                                    "message": ""}) + "\n")
        return 1.0, None, 0, 1.0, None

    monkeypatch.setattr(runs, "_timed", fake_timed)
    got = runs._probed_sample(draw, 100, ["pytest"], tmp_path, 2)
    assert len(got) == 100
    assert crashing.model_key not in {c.model_key for c in got}  # every opset of it, not the one case
    assert len(probed) == 1 and len(probed[0]) == 100 + int(100 * runs.PROBE_MARGIN)
    assert {c.id for c in got} <= set(probed[0])
    assert "leaves out their models whole" in capsys.readouterr().out
