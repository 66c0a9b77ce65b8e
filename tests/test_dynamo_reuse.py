"""The dynamo exporter's reuse: one capture per op variant and dtype, the same ONNX graph as a fresh export.

``harness.frameworks.torch.DynamoExporter`` captures a variant once and exports that
``ExportedProgram`` at every opset; these tests compare, node for node, what it writes with
what ``torch.onnx.export`` writes from the module itself (a fresh capture at each opset), on a
sample of the torch matrix's variants at every opset the default run gives dynamo.
"""

from __future__ import annotations

import io
import contextlib
import warnings
import zlib
from pathlib import Path

import pytest

from harness.spec.matrix import Scope, load_all

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")

from harness.core import registry  # noqa: E402
from harness.frameworks import torch as adapter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: every n-th dynamo float32 variant of the matrix (by a stable hash of its model key), at every opset
SAMPLE_EVERY = 23


def _sample():
    matrix = load_all([ROOT / "cases" / "torch.yaml"], ROOT / "cases" / "tolerances.yaml", Scope())
    cases = [c for c in matrix.cases if c.exporter == "dynamo" and c.dtype == "float32" and not c.skip]
    keys = sorted({c.model_key for c in cases}, key=lambda k: zlib.crc32(k.encode()))
    chosen = set(keys[::SAMPLE_EVERY])
    by_model: dict[str, list] = {}
    for c in cases:
        if c.model_key in chosen:
            by_model.setdefault(c.model_key, []).append(c)
    return sorted(by_model.items())


SAMPLE = _sample()


def _graph(path: str) -> dict:
    """What makes two ONNX models the same graph: nodes in order, initializers, inputs, outputs, opsets."""
    m = onnx.load(path)
    g = m.graph

    def value(v):
        return (v.name, v.type.SerializeToString())

    return {
        "opsets": sorted((o.domain, o.version) for o in m.opset_import),
        "inputs": [value(v) for v in g.input],
        "outputs": [value(v) for v in g.output],
        "initializers": sorted((t.name, t.SerializeToString()) for t in g.initializer),
        "nodes": [(n.op_type, n.domain, list(n.input), list(n.output),
                   [a.SerializeToString() for a in n.attribute]) for n in g.node],
        "functions": sorted(f.SerializeToString() for f in m.functions),
    }


def _fresh(model, case, cache, path):
    """The export a user writes: the module itself through ``torch.onnx.export(dynamo=True)``."""
    xs, n_out = adapter._example(model, case, cache)
    shapes = tuple({ax: torch.export.Dim.DYNAMIC for ax in dyn} or None for dyn in adapter._dynamic(case))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, xs, path, dynamo=True, opset_version=case.opset,
                          dynamic_shapes=shapes if any(s is not None for s in shapes) else None,
                          input_names=[f"x{i}" for i in range(len(xs))],
                          output_names=[f"y{i}" for i in range(n_out)], external_data=False, verbose=False)
    return path


def test_the_sample_covers_every_dynamo_opset_of_the_default_run():
    opsets = {c.opset for _, cases in SAMPLE for c in cases}
    assert len(SAMPLE) >= 5, [k for k, _ in SAMPLE]
    assert opsets >= {17, 18, 19, 20, 21, 22}, opsets


@pytest.mark.parametrize("key,cases", SAMPLE, ids=[k for k, _ in SAMPLE])
def test_a_reused_capture_writes_the_graph_of_a_fresh_export(key, cases, tmp_path):
    fw = registry.load_framework("torch")
    exporter = adapter.DynamoExporter()
    model = fw.build(cases[0].spec, cases[0].seed)
    cache: dict = {}
    compared = 0
    for case in sorted(cases, key=lambda c: c.opset):
        reused = tmp_path / "reused"
        reused.mkdir(exist_ok=True)
        try:
            got = exporter.export(model, case, str(reused), cache)
        except Exception as exc:  # noqa: BLE001 - then the fresh export must fail the same way
            with pytest.raises(type(exc)):
                _fresh(model, case, {}, str(tmp_path / "fresh.onnx"))
            continue
        want = _fresh(model, case, {}, str(tmp_path / "fresh.onnx"))
        assert _graph(got) == _graph(want), f"{case.id}: the reused capture wrote another graph"
        compared += 1
    assert compared, f"{key}: nothing exported"
    program = cache.get(("dynamo-capture", repr(_shapes(cases[0]))))
    assert program is not None, f"{key}: the capture was not reused (the exporter fell back to the module)"
    kept = getattr(program, adapter._PREPARED)
    assert 1 <= len(kept) < compared, f"{key}: {len(kept)} decompositions kept for {compared} opsets"


def _shapes(case):
    shapes = tuple({ax: torch.export.Dim.DYNAMIC for ax in dyn} or None for dyn in adapter._dynamic(case))
    return shapes if any(s is not None for s in shapes) else None


def test_the_cia_memo_answers_what_torch_computes_and_sees_a_new_op():
    from torch._export import utils

    memo = utils._collect_all_valid_cia_ops
    assert getattr(memo, "_harness_memo", False), "the adapter did not install its memo"
    assert memo() == set(memo.uncached())
    before = memo()
    lib = torch.library.Library("harness_memo_probe", "DEF")
    lib.define("twice(Tensor x) -> Tensor")
    lib.impl("twice", lambda x: x * 2, "CompositeImplicitAutograd")
    after = memo()
    assert after == set(memo.uncached())
    assert any("harness_memo_probe" in str(op) for op in after - before), sorted(map(str, after - before))
