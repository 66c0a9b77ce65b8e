"""Shards from CI variables (``--shard-id auto``) and cost-balanced shards (``--shard-durations``)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.plugin import sharding
from harness.cli.shards import plan

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "data" / "fake.yaml"


# -- --shard-id auto --------------------------------------------------------------------------
@pytest.mark.parametrize("env, want", [
    # GitHub Actions: the workflow passes matrix.shard (1-based) and strategy.job-total
    ({"GITHUB_ACTIONS": "true", "SHARD_INDEX": "3", "SHARD_TOTAL": "4"}, (3, 4)),
    # GitLab `parallel: N`: CI_NODE_INDEX counts from 1
    ({"GITLAB_CI": "true", "CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "5"}, (1, 5)),
    ({"CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "5"}, (5, 5)),
    # Kubernetes Indexed Job: JOB_COMPLETION_INDEX counts from 0
    ({"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "3"}, (1, 3)),
    ({"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"}, (3, 3)),
])
def test_auto_reads_each_ci_variables(env, want):
    k, n, _ = sharding.from_ci(env)
    assert (k, n) == want
    assert sharding.resolve("auto", None, env) == want
    assert sharding.resolve("auto", want[1], env) == want


@pytest.mark.parametrize("env, words", [
    ({}, "no shard variables set; looked for SHARD_INDEX + SHARD_TOTAL (GitHub Actions matrix"),
    ({"PATH": "/bin"}, "CI_NODE_INDEX + CI_NODE_TOTAL (GitLab parallel jobs); "
                       "JOB_COMPLETION_INDEX + JOB_COMPLETIONS (Kubernetes Indexed Job)"),
    ({"CI_NODE_INDEX": "2"}, "CI_NODE_INDEX is set (GitLab parallel jobs) but CI_NODE_TOTAL"),
    ({"JOB_COMPLETION_INDEX": "1"}, "but JOB_COMPLETIONS (the shard count) is not"),
    ({"SHARD_INDEX": "x", "SHARD_TOTAL": "2"}, "must be integers"),
    ({"JOB_COMPLETION_INDEX": "3", "JOB_COMPLETIONS": "3"}, "out of range for JOB_COMPLETIONS=3"),
    ({"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "3"}, "counts from 1"),
])
def test_auto_without_usable_variables_names_what_it_looked_for(env, words):
    with pytest.raises(sharding.ShardError, match=re.escape(words)):
        sharding.from_ci(env)


def test_auto_count_must_agree_with_num_shards():
    with pytest.raises(sharding.ShardError, match="--num-shards 3 disagrees with 4"):
        sharding.resolve("auto", 3, {"SHARD_INDEX": "1", "SHARD_TOTAL": "4"})
    with pytest.raises(sharding.ShardError, match="'auto'"):
        sharding.resolve("first", 3, {})


def _pytest(*args, env=None):
    import os

    full = {k: v for k, v in os.environ.items()
            if k not in ("SHARD_INDEX", "SHARD_TOTAL", "CI_NODE_INDEX", "CI_NODE_TOTAL",
                         "JOB_COMPLETION_INDEX", "JOB_COMPLETIONS")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly",
                           "--matrix", str(FAKE), "--collect-only", "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=full)


def test_shard_id_auto_on_the_command_line():
    """GitLab's variables select shard 2 of 3, exactly as --shard-id 2 --num-shards 3 does."""
    auto = _pytest("--shard-id", "auto", env={"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"})
    explicit = _pytest("--shard-id", "2", "--num-shards", "3")
    assert auto.returncode == 0, auto.stdout + auto.stderr
    ids = set(re.findall(r"test_case\[([^\]]+)\]", auto.stdout))
    assert ids and ids == set(re.findall(r"test_case\[([^\]]+)\]", explicit.stdout))
    missing = _pytest("--shard-id", "auto")
    assert missing.returncode == 4
    assert "--shard-id auto: no shard variables set; looked for SHARD_INDEX" in missing.stderr


# -- cost-balanced shards ---------------------------------------------------------------------
def test_balance_puts_the_expensive_keys_apart_and_keeps_the_total():
    costs = {"a": 30.0, "b": 10.0, "c": 10.0, "d": 10.0, "e": 1.0, "f": 1.0}
    got = sharding.balance(costs, 3, costs)
    per = {k: sum(c for key, c in costs.items() if got[key] == k) for k in (1, 2, 3)}
    assert per == {1: 30.0, 2: 20.0, 3: 12.0}  # longest first: a alone, b+d, c+e+f
    assert sorted(got) == sorted(costs)
    # the same whatever order the keys come in
    assert sharding.balance(list(reversed(list(costs))), 3, costs) == got


def test_unknown_keys_cost_the_median():
    costs = {"a": 1.0, "b": 2.0, "c": 9.0}
    got = sharding.balance(["a", "b", "c", "new1", "new2"], 2, costs)
    # c (9) -> 1; new1, new2 (median 2 each) and b (2), a (1) fill shard 2 first
    per = {1: 0.0, 2: 0.0}
    for k, s in got.items():
        per[s] += costs.get(k, 2.0)
    assert got["c"] == 1 and per == {1: 9.0, 2: 7.0}


def test_balanced_split_is_an_exact_cover_by_model():
    keys = [f"m{i}" for i in range(40)]
    costs = {k: float(i % 7 + 1) for i, k in enumerate(keys[:30])}
    items = [(k, o) for k in keys for o in range(3)]  # 3 "opsets" per model
    seen = {}
    for shard in (1, 2, 3, 4):
        keep, drop = sharding.split(items, lambda it: it[0], shard, 4, costs)
        assert len(keep) + len(drop) == len(items)
        for key, _ in keep:
            assert seen.setdefault(key, shard) == shard
    assert set(seen) == set(keys)


def test_shards_command_compares_both_partitions(tmp_path, capsys):
    from harness.__main__ import main

    recs = [{"id": f"x{i}", "status": "pass", "framework": "f", "kernel": f"k{i % 9}", "variant": "v",
             "dtype": "float32", "exporter": "e", "opset": 13, "wall_s": 1.0 + (i % 9) ** 2}
            for i in range(90)]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    costs = sharding.load_costs(path)
    assert len(costs) == 9 and costs["f-k8-v-float32"] == 10 * 65.0
    result = plan(costs, 4)
    for name in ("crc32", "balanced"):
        assert sum(result[name]["shards"].values()) == pytest.approx(sum(costs.values()), abs=0.5)
    assert result["balanced"]["max_over_min"] <= result["crc32"]["max_over_min"]
    assert main(["shards", str(path), "--num-shards", "4"]) == 0
    out = capsys.readouterr().out
    assert "9 model keys" in out and out.count("max/min=") == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["shards", str(empty)]) == 2


def test_shard_durations_select_balanced_shards(tmp_path):
    """--shard-durations deals the fake matrix's models by the wall times of a results file."""
    from harness.spec.matrix import Scope, load_all

    cases = load_all([FAKE], ROOT / "cases" / "tolerances.yaml", Scope(opsets="declared")).cases
    keys = sorted({c.model_key for c in cases})
    # one expensive model, the rest cheap: balanced, it is alone on its shard
    recs = [{"id": f"{k}-{i}", "status": "pass", "framework": "fake", "kernel": "relu",
             "variant": k.split("-")[2], "dtype": "float32", "exporter": "fake", "opset": 13,
             "wall_s": 100.0 if k == keys[0] else 1.0} for i, k in enumerate(keys)]
    durations = tmp_path / "d.jsonl"
    durations.write_text("".join(json.dumps(r) + "\n" for r in recs))
    want = sharding.balance(keys, 3, sharding.load_costs(durations))
    for k in (1, 2, 3):
        proc = _pytest("--shard-id", str(k), "--num-shards", "3", "--shard-durations", str(durations))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        ids = set(re.findall(r"test_case\[([^\]]+)\]", proc.stdout))
        assert ids == {c.id for c in cases if want[c.model_key] == k}
    bad = _pytest("--shard-id", "1", "--num-shards", "3", "--shard-durations", str(tmp_path / "none.jsonl"))
    assert bad.returncode == 4 and "--shard-durations" in bad.stderr
