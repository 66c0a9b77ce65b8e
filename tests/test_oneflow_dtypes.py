"""The OneFlow adapter on the dtype axis: weights cast once, OneFlow's "no kernel" refusal a skip.

The pattern tests read the adapter without OneFlow (it is imported lazily, in
the forked server); the measured test runs ``tests/oneflow_dtype_probe.py`` in
the OneFlow environment and skips when that environment is not made.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.core import dtypes
from harness.isolation import environments
from harness.frameworks import oneflow as adapter

ROOT = Path(__file__).resolve().parent.parent

#: measured with oneflow 0.9.0 on CPU (flow.abs on a float16 tensor), traceback lines shortened
NO_KERNEL = """Cannot find the kernel matching Current OperatorConf.  The Info of OperatorConf are
 op_name: abs4
 op_type_name: abs
 DeviceType_Name: kCPU
 DataType_Name of x_0: kFloat16
 DataType_Name of y_0: kFloat16
  File "oneflow/core/framework/op_interpreter/op_interpreter_util.cpp", line 144, in Dispatch<oneflow::one::Tensor>"""
#: measured with oneflow 0.9.0 (nn.BatchNorm2d in eval mode on float16): not a missing kernel
INFER_FAILED = "InferDataType Failed. Expected kFloat16, but got kFloat"


def _case(dtype: str) -> SimpleNamespace:
    return SimpleNamespace(dtype=dtype, framework="oneflow", device="cpu")


def test_oneflows_no_kernel_message_is_a_skip_with_its_words():
    reason = dtypes.unsupported_reason(adapter.OneFlowFramework, _case("float16"), NO_KERNEL)
    assert reason and NO_KERNEL in reason and "float16" in reason


def test_no_kernel_at_float32_and_other_errors_stay_errors():
    fw = adapter.OneFlowFramework
    assert dtypes.unsupported_reason(fw, _case("float32"), NO_KERNEL) is None
    assert dtypes.unsupported_reason(fw, _case("float16"), INFER_FAILED) is None
    on_gpu = NO_KERNEL.replace("kCPU", "kCUDA")
    assert dtypes.unsupported_reason(fw, _case("float16"), on_gpu) is None
    float32_kernel = NO_KERNEL.replace("kFloat16", "kFloat")
    assert dtypes.unsupported_reason(fw, _case("float16"), float32_kernel) is None


def test_oneflow_builds_at_the_cases_dtype_with_weights_rounded_once():
    environments.declared.cache_clear()
    env = environments.declared()["oneflow"]
    reason = environments.unavailable("oneflow")
    if reason:
        pytest.skip(reason)
    out = subprocess.run([str(env.executable), "-m", "tests.oneflow_dtype_probe"], cwd=ROOT,
                         env=environments.runner_environ("oneflow"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    for dtype in ("float32", "float16", "float64"):
        state = found["dtypes"][dtype]
        assert state["op.weight"] == state["op.running_mean"] == dtype, state
        assert state["op.num_batches_tracked"] == "int64"  # integer buffers are left alone
    assert found["rounded_once"]
    assert any(re.search(p, found["no_kernel"]) for p in adapter.OneFlowFramework.dtype_unsupported), \
        found["no_kernel"][:500]


def test_the_first_oneflow_case_of_a_plain_run_does_not_hang(tmp_path):
    """``-n 0``: the session that checked the matrix's ``call:`` targets runs the cases, and its servers
    must not inherit ``import oneflow`` (a graph compiled after that fork hangs: measured, the first case
    was a timeout in every ``-n 0`` run until the check moved into a child of the session)."""
    if environments.unavailable("oneflow"):
        pytest.skip(environments.unavailable("oneflow"))
    ids = tmp_path / "ids.txt"
    ids.write_text("oneflow-graph-relu-default-opset13-float32-cpu\n")
    results = tmp_path / "r.jsonl"
    run = subprocess.run([sys.executable, "-m", "pytest", "conformance", "--framework", "oneflow", "-n", "0",
                          "--case-ids", str(ids), "--opsets", "full", "--results", str(results), "--no-report",
                          "--repro-dir", "", "-q", "-p", "no:cacheprovider", "--case-timeout", "40"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["status"] for r in recs] == ["pass"], run.stdout[-2000:]


def test_a_reused_graph_converts_to_the_model_a_fresh_one_does(tmp_path):
    """The compiled graph and saved weights shared by a model's opsets give, at every opset, the ONNX
    model that compiling afresh gives (nodes, attributes, initializers, opset imports): every 40th
    OneFlow variant at float32, opsets 9, 11, 13, 17."""
    from harness.spec.matrix import Scope, load_all

    reason = environments.unavailable("oneflow")
    if reason:
        pytest.skip(reason)
    m = load_all([ROOT / "cases" / "oneflow.yaml"], ROOT / "cases" / "tolerances.yaml",
                 Scope(opsets="full", frameworks=("oneflow",)))
    firsts = {}
    for c in m.cases:
        if c.dtype == "float32" and not c.skip and c.opset == 13:
            firsts.setdefault(c.model_key, c)
    picked = list(firsts.values())[::40]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c.to_dict()) + "\n" for c in picked))
    env = environments.declared()["oneflow"]
    out = subprocess.run([str(env.executable), "-m", "tests.oneflow_reuse_probe", str(cases), "9,11,13,17"],
                         cwd=ROOT, env=environments.runner_environ("oneflow"), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(found) == len(picked) >= 3
    differ = {cid: opset for cid, per in found.items() for opset, got in per.items() if not got["same"]}
    assert not differ, differ
