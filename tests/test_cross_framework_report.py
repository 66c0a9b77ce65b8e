"""The cross-framework table, the PNG and the HTML with all four frameworks' records."""

from __future__ import annotations

import json
from pathlib import Path

from harness.__main__ import main
from harness.report.aggregate import cross_framework, summarize
from harness.report.html import view

GROUPS = [("oneflow", "graph"), ("paddle", "dygraph"), ("tensorflow", "function"), ("tensorflow", "keras"),
          ("torch", "torchscript")]


def rec(framework, exporter, kernel, opset, status="pass", shared_key="relu6", message=""):
    return {"id": f"{framework}-{exporter}-{kernel}-default-opset{opset}-float32-cpu", "framework": framework,
            "exporter": exporter, "kernel": kernel, "variant": "default", "opset": opset, "dtype": "float32",
            "device": "cpu", "status": status, "message": message, "stage": "", "max_abs": 0.0,
            "max_rel": 0.0, "shared_key": shared_key, "tolerance": "seed-abs-rel",
            "declared": {"range": "7~22", "note": "", "in_range": True},
            "finished": "2026-01-02T03:04:05+00:00"}


def records() -> list[dict]:
    out = []
    for fw, ex in GROUPS:
        kernel = "relu6" if fw != "tensorflow" else "relu_6"
        for o in range(7, 19):
            bad = fw == "oneflow" and o >= 11
            out.append(rec(fw, ex, kernel, o, "mismatch" if bad else "pass"))
    # a kernel with no TensorFlow counterpart: skipped with its reason
    out += [rec("tensorflow", ex, "yolo_box", o, "skipped", "yolo_box", "no TensorFlow op decodes YOLO heads")
            for ex in ("function", "keras") for o in (14, 18)]
    out += [rec("paddle", "dygraph", "yolo_box", o, shared_key="yolo_box") for o in (9, 12)]
    return out


def test_columns_follow_paddle_torch_tensorflow_oneflow():
    cols, shared = cross_framework(summarize(records()))
    assert [c[0] for c in cols] == ["paddle", "torch", "tensorflow", "tensorflow", "oneflow"]
    assert [k for k, _ in shared] == ["relu6", "yolo_box"]


def test_markdown_cells_give_each_exporters_measured_range(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records()))
    out = tmp_path / "rep"
    assert main(["report", str(src), "--out", str(out), "--no-matrix"]) == 0
    md = (out / "support.md").read_text()
    cross = md.split("## Cross-framework (by shared_key)")[1].split("\n## ")[0]
    header = next(line for line in cross.splitlines() if line.startswith("| shared_key"))
    assert header == ("| shared_key | paddle/dygraph/cpu | torch/torchscript/cpu | tensorflow/function/cpu | "
                      "tensorflow/keras/cpu | oneflow/graph/cpu |")
    assert "| relu6 | relu6: 7~18 | relu6: 7~18 | relu_6: 7~18 | relu_6: 7~18 | relu6: 7~10 |" in cross
    assert "| yolo_box | yolo_box: 9, 12 | not run | yolo_box: not runnable | yolo_box: not runnable | not run |" \
        in cross
    assert "not runnable: no TensorFlow op decodes YOLO heads" in md.split("## tensorflow / keras / cpu")[1]
    # every framework gets its sections in the page and the image
    sections = [(s["framework"], s["exporter"]) for s in view(summarize(records()))[0]]
    assert sections == [("paddle", "dygraph"), ("torch", "torchscript"), ("tensorflow", "function"),
                        ("tensorflow", "keras"), ("oneflow", "graph")]
    html = (out / "support.html").read_text()
    for fw in ("paddle", "torch", "tensorflow", "oneflow"):
        assert f'data-framework="{fw}"' in html
    assert Path(out / "support.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
