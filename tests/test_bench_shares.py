"""The bench's per-exporter figures: mean export time and its share of the cases' wall time."""

import json
import subprocess
import sys
import time
from pathlib import Path

from harness.bench.runs import TreeSampler, _children_map, _exporters, _xdist_workers, export_shares, split_by_model


def test_export_shares_per_exporter(tmp_path):
    p = tmp_path / "r.jsonl"
    recs = [
        {"framework": "torch", "exporter": "dynamo", "export_s": 0.2, "wall_s": 0.4},
        {"framework": "torch", "exporter": "dynamo", "export_s": 0.4, "wall_s": 0.4},
        {"framework": "torch", "exporter": "torchscript", "export_s": 0.01, "wall_s": 0.04},
        {"framework": "torch", "exporter": "dynamo", "export_s": None, "wall_s": 0.1},  # failed before export
        {"id": "torch/dynamo", "exporter": "torch/dynamo", "export_s": 0.3, "wall_s": 0.6},  # floor line
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs) + "not json\n")
    got = export_shares(p)
    n, mean, share = got["torch/dynamo"]
    assert n == 3 and abs(mean - 0.3) < 1e-9 and abs(share - 0.9 / 1.4) < 1e-9
    assert got["torch/torchscript"][0] == 1 and abs(got["torch/torchscript"][2] - 0.25) < 1e-9
    assert export_shares(tmp_path / "missing.jsonl") == {}


def test_torch_alone_times_dynamo_alone():
    assert _exporters(None, ("torch",)) == ("dynamo",)
    assert _exporters(None, ("paddle", "torch")) == ()
    assert _exporters("torchscript,dynamo", ("torch",)) == ("torchscript", "dynamo")


def test_tree_sampler_splits_cpu_between_the_started_process_and_its_children(tmp_path):
    """The sampler's figure for the child equals the CPU the child says it used (load cannot change that:
    CPU seconds are not wall seconds, and the child idles after burning so its last reading is final)."""
    burner = Path(__file__).with_name("burn_cpu.py")
    truth = tmp_path / "cpu"
    proc = subprocess.Popen([sys.executable, str(burner), "0.4", "--in-child", "--report", str(truth)])
    sampler = TreeSampler(proc.pid, split_workers=False, interval=0.02)
    sampler.start()
    proc.wait(timeout=60)
    sampler.stop_event.set()
    sampler.join()
    roles = sampler.cpu_by_role()
    used = float(truth.read_text())
    assert set(roles) == {"main", "runner"}
    assert abs(roles["runner"] - used) <= 0.03, (roles, used)  # /proc counts in clock ticks (10 ms)
    assert roles["main"] < used / 2, (roles, used)  # the started process only started its child and waited


def test_parallel_floor_deals_whole_models_to_the_least_loaded_process():
    class C:
        def __init__(self, cid, model):
            self.id, self.model_key = cid, model

    cases = [C("a1", "A"), C("a2", "A"), C("a3", "A"), C("b1", "B"), C("c1", "C"), C("c2", "C"), C("b2", "B")]
    parts = split_by_model(cases, 2)
    assert parts == [["a1", "a2", "a3"], ["b1", "b2", "c1", "c2"]]
    assert split_by_model(cases, 1) == [["a1", "a2", "a3", "b1", "b2", "c1", "c2"]]


def test_xdist_workers_are_the_controllers_children_that_are_not_runner_masters():
    burner = Path(__file__).with_name("burn_cpu.py")
    proc = subprocess.Popen([sys.executable, str(burner), "1.0", "--in-child"])
    try:
        kids: dict = {}
        for _ in range(200):  # until the child is started
            kids = _children_map()
            if kids.get(proc.pid):
                break
            time.sleep(0.01)
        child = kids[proc.pid][0]
        assert _xdist_workers(proc.pid, kids, {}) == {child: "gw0"}
        assert _xdist_workers(child, kids, {}) == {}
    finally:
        proc.kill()
        proc.wait()
