"""The report's deployment lines: framework/exporter -> ONNX -> runtime, from the records alone."""

from __future__ import annotations

from harness.report import backends


def _rec(kernel, runtime, st, variant="default", blame=None, note=""):
    rid = f"torch-torchscript-{kernel}-{variant}-opset17-float32-cpu" + ("" if runtime == "ort" else f"-{runtime}")
    rec = {"id": rid, "framework": "torch", "exporter": "torchscript", "kernel": kernel, "variant": variant,
           "opset": 17, "dtype": "float32", "device": "cpu", "runtime": runtime, "post_pass": "none",
           "status": st, "declared": {"note": note}}
    if blame:
        rec["blame"] = blame
    return rec


RECORDS = [
    _rec("relu", "ort", "pass"), _rec("relu", "ncnn", "pass"),
    _rec("conv2d", "ort", "pass"), _rec("conv2d", "ncnn", "runtime-unsupported", blame="runtime"),
    _rec("pool", "ort", "pass"), _rec("pool", "ncnn", "pass"),
    _rec("pool", "ort", "pass", variant="pad1"),
    _rec("pool", "ncnn", "shape-mismatch", variant="pad1", blame="runtime"),
    _rec("cumsum", "ort", "export-error"), _rec("cumsum", "ncnn", "export-error"),
    _rec("gelu", "ort", "skipped"), _rec("gelu", "ncnn", "skipped"),
    _rec("resnet_block", "ort", "pass", note="model-level case"),
    _rec("resnet_block", "ncnn", "mismatch", blame="runtime", note="model-level case"),
]


def test_lines_count_kernels_and_models_and_place_each_break():
    lines = {ln.line: ln for ln in backends.summarize(RECORDS).lines}
    ort, ncnn = lines["torch/torchscript → ONNX → ort"], lines["torch/torchscript → ONNX → ncnn"]
    assert (ort.through, ort.kernels, ort.models_through, ort.models) == (3, 4, 1, 1)
    assert (ncnn.through, ncnn.kernels, ncnn.models_through, ncnn.models) == (1, 4, 0, 1)
    assert set(ncnn.breaks["export"]) == {"cumsum"} and set(ncnn.breaks["runtime"]) == {"conv2d"}
    assert set(ncnn.breaks["values"]) == {"pool", "resnet_block"}  # one failing variant breaks the kernel
    assert "gelu" not in str(ncnn.breaks)  # skipped cases are no measurement


def test_the_table_names_where_each_line_breaks():
    table = next(t for t in backends.tables(backends.summarize(RECORDS)) if t.title == "Deployment lines")
    row = next(r for r in table.rows if r[0].endswith("→ ncnn"))
    assert row[1:7] == ["1/4", "0/1", "1", "1", "2", "0"]
    assert "runtime: conv2d (runtime-unsupported, runtime)" in row[7]
    assert "values: pool (shape-mismatch, runtime), resnet_block (mismatch, runtime)" in row[7]


def test_no_lines_with_one_runtime():
    """A default (ort-only) report stays as it was."""
    summary = backends.summarize([r for r in RECORDS if r["runtime"] == "ort"])
    assert summary.lines == [] and all(t.title != "Deployment lines" for t in backends.tables(summary))
