"""The bench's per-exporter figures: mean export time and its share of the cases' wall time."""

import json

from harness.bench import _exporters, export_shares


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
