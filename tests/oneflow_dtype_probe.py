"""Run in the OneFlow environment by tests/test_oneflow_dtypes.py: the adapter's dtype handling, measured.

``python -m tests.oneflow_dtype_probe`` (from the repository root, the OneFlow
interpreter) builds one module with weights and buffers through the adapter at
float32, float16 and float64, runs one op at a dtype OneFlow's CPU has no
kernel for, and prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from harness.builders import oneflow_ops  # noqa: F401 - registers the builders
from harness.frameworks import oneflow as adapter

SPEC = {"builder": "module", "kwargs": {"module": "BatchNorm2d", "num_features": 3}}


def _state(fw, dtype: str) -> dict:
    model = fw.build({**SPEC, "dtype": dtype}, seed=7)
    return {k: v.numpy() for k, v in model.state_dict().items()}


def main() -> int:
    """Print ``{"dtypes": {dtype: {name: dtype}}, "rounded_once": bool, "no_kernel": message}``."""
    fw = adapter.OneFlowFramework()
    states = {d: _state(fw, d) for d in ("float32", "float16", "float64")}
    rounded = all(np.array_equal(states[d][k], states["float32"][k].astype(states[d][k].dtype))
                  for d in ("float16", "float64") for k in states["float32"])
    abs_ = fw.build({"call": "flow.abs", "dtype": "float16"}, seed=7)
    try:
        fw.reference(abs_, [np.ones((2, 3), dtype=np.float16)])
        message = ""
    except Exception as exc:  # noqa: BLE001 - the message is what is measured
        message = str(exc)
    print(json.dumps({"dtypes": {d: {k: str(v.dtype) for k, v in s.items()} for d, s in states.items()},
                      "rounded_once": rounded, "no_kernel": message}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
