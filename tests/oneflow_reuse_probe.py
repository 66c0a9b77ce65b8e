"""Run in the OneFlow environment by tests/test_oneflow_dtypes.py: a reused graph converts as a fresh one.

``python -m tests.oneflow_reuse_probe CASES OPSETS`` (from the repository root, the OneFlow
interpreter) reads cases (a :meth:`Case.to_dict` JSON line each), builds each model once
through the adapter and exports it at every opset of ``OPSETS`` (comma-separated) twice:
through one shared model cache (the graph compiled and the weights saved once, as a case
server does) and with a fresh cache per opset (compiled again, as before the reuse). It
prints one JSON line: per case and opset, whether the two ONNX models have the same nodes
(op type, attributes, arity, in order), initializers and opset imports, and the export
seconds of both ways.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper

from harness.builders import oneflow_ops  # noqa: F401 - registers the builders
from harness.core.case import Case
from harness.frameworks import oneflow as adapter


def structure(path: str) -> dict:
    """What a model computes, without the names the converter makes up per graph."""
    m = onnx.load(path)
    return {
        "nodes": [[n.op_type, n.domain, len(n.input), len(n.output),
                   sorted((a.name, repr(helper.get_attribute_value(a))) for a in n.attribute)]
                  for n in m.graph.node],
        "initializers": sorted(numpy_helper.to_array(t).tobytes().hex() for t in m.graph.initializer),
        "opsets": sorted((o.domain, o.version) for o in m.opset_import),
        "io": [len(m.graph.input), len(m.graph.output)],
    }


def main(argv: list[str]) -> int:
    """Print ``{case id: {opset: {"same": bool, "reused_s": s, "fresh_s": s}}}``."""
    with open(argv[0], encoding="utf-8") as f:
        cases = [Case.from_dict(json.loads(line)) for line in f if line.strip()]
    opsets = [int(o) for o in argv[1].split(",")]
    fw = adapter.OneFlowFramework()
    exporter = adapter.GraphExporter()
    out: dict = {}
    for case in cases:
        model = fw.build(case.spec, case.seed)
        shared: dict = {}
        seen = out[case.id] = {}
        reused_dir = tempfile.mkdtemp()  # a case server's work folder: kept across the model's opsets
        for opset in opsets:
            at = Case.from_dict({**case.to_dict(), "opset": opset})
            with tempfile.TemporaryDirectory() as fresh_dir:
                t0 = time.perf_counter()
                reused = exporter.export(model, at, reused_dir, shared)
                t1 = time.perf_counter()
                fresh = exporter.export(model, at, fresh_dir, {})
                t2 = time.perf_counter()
                seen[opset] = {"same": structure(reused) == structure(fresh),
                               "reused_s": round(t1 - t0, 4), "fresh_s": round(t2 - t1, 4)}
        del shared
        shutil.rmtree(reused_dir, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main(sys.argv[1:]))
