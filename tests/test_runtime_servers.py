"""The runtimes that run in environments of their own (tvm, ncnn, tract, mnn, litert) and tensorrt.

Each runtime's smoke test runs a real model through its real library, in its
declared environment, and is skipped with the reason when that environment
has not been made (``python -m harness envs create runtimes litert``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from harness.isolation import environments
from harness.core import pipeline, status
from harness import runtimes
from harness.runtimes import _remote

from .test_statuses import fake_cases

REMOTE = ("tvm", "ncnn", "tract", "mnn", "litert")
ROOT = environments.ROOT


def _model(path, pads, batch="N", opset=13):
    """Conv + Relu + MaxPool (k3 s2) with the given MaxPool pads, saved at ``path``."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "B")
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=pads)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model


def _runtime(name):
    rt = runtimes.get(name)
    why = rt.unavailable()
    if why:
        pytest.skip(f"{name}: {why}")
    return rt


def _inputs():
    return [np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)]


def test_runtime_names_leave_out_the_server_machinery():
    """``--runtimes`` knows every runtime module and none of the server's own modules."""
    known = runtimes.names()
    assert {"ort", "openvino", "reference", "tensorrt", *REMOTE} <= known
    assert not {n for n in known if n.startswith("_")}


@pytest.mark.parametrize("name", REMOTE)
def test_runtime_smoke(tmp_path, name):
    """A small Conv/Relu/MaxPool model on the runtime matches the reference evaluator; its prepare is timed apart."""
    rt = _runtime(name)
    model = _model(tmp_path / "m.onnx", [1, 1, 1, 1])
    xs = _inputs()
    want = ReferenceEvaluator(model).run(None, {"x": xs[0]})[0]
    sess = rt.prepare(model, str(tmp_path / "m.onnx"), None)
    got = sess.run(xs)
    assert got[0].shape == want.shape and got[0].dtype == want.dtype
    assert float(np.abs(got[0] - want).max()) < 1e-5
    assert sess.timings["prepare_s"] > 0 and sess.provider.startswith(name)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]  # converters write beside a private copy only


def test_ncnn_pads_an_asymmetric_maxpool_twice(tmp_path):
    """pnnx turns MaxPool pads [1,1,0,0] into a Padding layer *and* a padded Pooling: a 5x5 output for 4x4.

    OneFlow exports ``max_pool2d(padding=1)`` with those pads (the end pad it does not need is dropped);
    resnet's stem then gives 57x57 instead of 56x56. Fails when pnnx is fixed.
    """
    rt = _runtime("ncnn")
    model = _model(tmp_path / "m.onnx", [1, 1, 0, 0], batch=2)
    want = ReferenceEvaluator(model).run(None, {"x": _inputs()[0]})[0]
    got = rt.prepare(model, str(tmp_path / "m.onnx"), None).run(_inputs())
    assert want.shape == (2, 4, 4, 4)
    assert got[0].shape == (2, 4, 5, 5)


def test_conversions_try_no_network_and_start_no_program(tmp_path):
    """Every available runtime converts and runs a model in its server; the guard saw no attempt at all,
    and the server runs without a network where the kernel lets it make a namespace."""
    ran = []
    model = _model(tmp_path / "m.onnx", [1, 1, 1, 1])
    for name in REMOTE:
        rt = runtimes.get(name)
        if rt.unavailable():
            continue
        rt.prepare(model, str(tmp_path / "m.onnx"), None).run(_inputs())
        ran.append(name)
    if not ran:
        pytest.skip("no runtime environment made here")
    for env_name, srv in _remote._SERVERS.items():
        if srv.proc is None:
            continue
        reply, _ = srv.call({"op": "attempts"})
        assert reply["attempts"] == [], (env_name, reply)
        assert srv.network_namespace == bool(_remote._network_off_prefix())


GUARDED = """
import socket, subprocess, sys
from harness.runtimes import _serve
sys.addaudithook(_serve._guard)
for what, call in (("connect", lambda: socket.socket().connect(("192.0.2.1", 80))),
                   ("resolve", lambda: socket.getaddrinfo("pypi.org", 443)),
                   ("pip", lambda: subprocess.run([sys.executable, "-m", "pip", "install", "x"]))):
    try:
        call()
        print(what, "went through")
    except PermissionError:
        pass
print(len(_serve.ATTEMPTS), sorted({e for e, _ in _serve.ATTEMPTS}))
"""


def test_guard_refuses_sockets_and_program_starts():
    """The audit hook of the runtime server refuses (and records) a connection, a name lookup and a pip run."""
    out = subprocess.run([sys.executable, "-c", GUARDED], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == "3 ['socket.connect', 'socket.getaddrinfo', 'subprocess.Popen']"


def test_dead_server_is_a_crash_and_a_fresh_one_follows(monkeypatch):
    """A runtime server killed by a signal raises Crashed (status crash, signal named); the next call restarts it."""
    monkeypatch.setenv(_remote.ENVS_VARIABLE, json.dumps({"selftest": {"python": sys.executable, "unavailable": None}}))
    srv = _remote.Server("selftest")
    try:
        assert srv.call({"op": "attempts"})[0]["ok"]
        os.kill(srv.proc.pid, signal.SIGSEGV)
        with pytest.raises(runtimes.Crashed, match="killed by SIGSEGV"):
            srv.call({"op": "attempts"})
        assert srv.call({"op": "attempts"})[0]["ok"] and srv.generation == 2
    finally:
        srv.stop()
    assert pipeline._runtime_status(runtimes.get("tvm"), runtimes.Crashed("x")) == status.CRASH


def test_missing_environment_is_a_skip_reason(monkeypatch, tmp_path):
    """Without its environment a remote runtime names the command that makes it."""
    monkeypatch.delenv(_remote.ENVS_VARIABLE, raising=False)
    monkeypatch.setattr(_remote, "ROOT", tmp_path)
    exe, why = _remote.environment("runtimes")
    assert exe is None and "python -m harness envs create runtimes" in why
    given = {"runtimes": {"python": "/x", "unavailable": "out of date"}}
    monkeypatch.setenv(_remote.ENVS_VARIABLE, json.dumps(given))
    assert _remote.environment("runtimes") == (None, "out of date")


def test_declared_runtime_environments():
    """pyproject.toml declares where each remote runtime runs; each runtime module names its environment."""
    envs = environments.declared()
    by_runtime = {r: e for e in envs.values() for r in e.runtimes}
    assert set(by_runtime) == set(REMOTE)
    for name in REMOTE:
        assert runtimes.get(name).environment == by_runtime[name].name
    assert envs["runtimes"].no_deps == ("pnnx==20261020",)
    assert envs["litert"].python == "3.12"
    given = environments.runtime_environments()
    assert set(given) == {"runtimes", "litert"}


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    from harness.isolation.processes import SessionClient

    _, m = fake_cases()
    ex = SessionClient(timeout=120, plugins=m.plugins, workdir=str(tmp_path_factory.mktemp("ex")), frameworks=("fake",))
    yield ex
    ex.close()


@pytest.mark.parametrize("name", REMOTE + ("tensorrt",))
def test_runtime_end_to_end_in_the_runner(executor, name):
    """A fake framework's good case on each runtime, through the runner: pass with prepare_s, or skipped with why."""
    cases, _ = fake_cases()
    rec = executor.run(replace(cases["good"], runtime=name))
    why = runtimes.get(name).unavailable()
    if why:
        assert rec["status"] == status.SKIPPED and why in rec["message"], rec
        return
    assert rec["status"] == status.PASS, rec
    assert rec["prepare_s"] > 0 and rec["run_s"] >= rec["prepare_s"], rec


def test_runtimes_all_names_every_runtime_module():
    """``--runtimes all`` is every runtime module: ort first, the reference evaluator last."""
    from harness.plugin.options import _runtime_names

    every = _runtime_names("all")
    assert every[0] == "ort" and every[-1] == "reference"
    assert set(every) == runtimes.names() and len(every) == len(set(every))
    assert _runtime_names("tvm,ncnn,tvm") == ("tvm", "ncnn")
