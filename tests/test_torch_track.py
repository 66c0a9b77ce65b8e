"""The PyTorch track: real torch cases through the isolated runner, and model-level expansion.

The conformance path is the real one here (torch.onnx.export, onnx checker,
ONNX Runtime); the tests skip when torch is not installed.
"""

from pathlib import Path

import pytest

from harness.core import status
from harness.isolation.processes import SessionClient
from harness.spec.matrix import Scope, load_all
from harness.spec.yamlsrc import MatrixError

ROOT = Path(__file__).resolve().parent.parent
TOL = ROOT / "cases" / "tolerances.yaml"
TORCH = ROOT / "cases" / "torch.yaml"
PADDLE_MODELS = ROOT / "cases" / "paddle_models.yaml"
MODELS = {"linear_net", "two_io_net", "resnet_basic_block", "mbv3_block"}


def _cases(*paths, **scope):
    return load_all(list(paths), TOL, Scope(**scope))


def _pick(matrix, kernel, exporter, opset, variant="default"):
    return next(c for c in matrix.cases if (c.kernel, c.exporter, c.opset, c.variant)
                == (kernel, exporter, opset, variant))


@pytest.fixture(scope="module")
def torch_executor(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    ex = SessionClient(timeout=300, workdir=str(tmp_path_factory.mktemp("torch")), frameworks=("torch",))
    yield ex
    ex.close()


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_relu6_passes_on_both_exporters(torch_executor, exporter):
    case = _pick(_cases(TORCH), "relu6", exporter, 18)
    rec = torch_executor.run(case)
    assert rec["status"] == status.PASS, rec
    assert rec["model_opset"] == 18 and "Clip" in rec["op_types"], rec
    assert rec["max_abs"] is not None and rec["max_abs"] <= 1e-5, rec


def test_dynamo_below_its_opset_is_never_a_pass_under_another_opset(torch_executor):
    """dynamo translates at opset 18; a lower request that the saved model does not honour is not a pass."""
    m = _cases(TORCH, opsets="full")  # the declared scope keeps one opset below 18 (17)
    seen_other = False
    for opset in (9, 13, 15):
        rec = torch_executor.run(_pick(m, "relu6", "dynamo", opset))
        assert rec["opset"] == opset and rec["model_opset"] is not None, rec
        if rec["model_opset"] != opset:
            seen_other = True
            assert rec["status"] == status.OPSET_NOT_HONORED, rec
            assert f"model declares {rec['model_opset']}" in rec["message"], rec
        else:
            assert rec["status"] == status.PASS, rec
    # torch 2.13's version converter cannot take relu6's graph below opset 15 (no CastLike before 15)
    assert seen_other, "expected at least one opset the dynamo exporter does not honour"


@pytest.mark.parametrize("variant", ["positive_sum", "negative_sum"])
def test_scripted_branch_model_runs_both_batches(torch_executor, variant):
    """Seed 003's two-input, two-output model with its @torch.jit.script branch, at batches 1 and 3."""
    case = _pick(_cases(TORCH), "two_io_net", "torchscript", 17, variant)
    assert case.spec["batches"] == [1, 3]
    rec = torch_executor.run(case)
    assert rec["status"] == status.PASS, rec
    assert "If" in rec["op_types"], rec  # the scripted branch stays control flow


def test_model_entries_expand_for_both_frameworks():
    m = _cases(TORCH, PADDLE_MODELS)
    got = {(c.framework, c.exporter) for c in m.cases if c.kernel in MODELS}
    assert got == {("torch", "torchscript"), ("torch", "dynamo"), ("paddle", "dygraph"), ("paddle", "static")}
    for fw in ("torch", "paddle"):
        kernels = {c.kernel for c in m.cases if c.framework == fw and c.kernel in MODELS}
        assert kernels == MODELS, fw
        for c in m.cases:
            if c.framework == fw and c.kernel in MODELS:
                assert c.spec["batches"] == [1, 3] and c.shared_key == c.kernel, c.id
    for fw in ("torch", "paddle"):
        variants = {c.variant for c in m.cases if c.framework == fw and c.kernel == "two_io_net"}
        assert variants == {"positive_sum", "negative_sum"}, fw
    two_io = next(c for c in m.cases if c.framework == "paddle" and c.kernel == "two_io_net")
    assert len(two_io.spec["inputs"]) == 2


def test_torch_entries_claim_the_full_range_and_name_their_paddle_kernel():
    m = _cases(TORCH)
    rows = {r.kernel: r for r in m.rows}
    assert all(r.declared == "7~22" for r in rows.values())
    assert rows["relu6"].shared_key == "relu6"
    assert rows["interpolate_bilinear"].shared_key == "bilinear_interp"
    assert rows["add"].shared_key == "elementwise_add"
    assert rows["mean"].shared_key == "reduce_mean"
    assert rows["roi_align"].unavailable and rows["nms"].unavailable


def _restricted(tmp_path, exporters="torchscript"):
    """torch.yaml with the abs entry restricted to ``exporters``."""
    p = tmp_path / "torch.yaml"
    p.write_text(TORCH.read_text().replace("call: torch.abs\n", f"call: torch.abs\n    exporters: [{exporters}]\n", 1))
    return p


def test_every_variant_runs_on_both_exporters():
    m = _cases(TORCH)
    pairs = {(c.kernel, c.variant, c.exporter) for c in m.cases}
    for kernel, variant, _ in pairs:
        assert {(kernel, variant, "torchscript"), (kernel, variant, "dynamo")} <= pairs, (kernel, variant)


def test_dynamo_below_its_native_opset_keeps_one_case_and_reports_the_rest():
    m = _cases(TORCH)
    opsets = sorted({c.opset for c in m.cases if c.exporter == "dynamo" and c.kernel == "relu6"})
    assert opsets == [17, 18, 19, 20, 21, 22], opsets
    left = [s for s in m.skipped_opsets if s[1] == "relu6-default" and "dynamo" in s[3]]
    assert left and left[0][2] == "7~16" and "version conversion" in left[0][3]
    full = _cases(TORCH, opsets="full")
    assert 7 in {c.opset for c in full.cases if c.exporter == "dynamo" and c.kernel == "relu6"}


def test_variant_exporter_restriction_is_reported_not_dropped(tmp_path):
    m = _cases(_restricted(tmp_path))
    ids = {c.id for c in m.cases}
    assert "torch-torchscript-abs-default-opset7-float32-cpu" in ids
    assert "torch-dynamo-abs-default-opset7-float32-cpu" not in ids
    left = [s for s in m.skipped_opsets if s[1] == "abs-default"]
    assert left and "dynamo" in left[0][3] and left[0][2] == "7~22"


def test_unknown_exporter_in_a_variant_is_a_matrix_error(tmp_path):
    with pytest.raises(MatrixError, match="unknown exporter 'torchscrpit'"):
        _cases(_restricted(tmp_path, "torchscrpit"))
