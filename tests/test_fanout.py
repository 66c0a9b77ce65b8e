"""Fan-out: devices, sharding, and the runner surviving a timeout (fake matrix only).

No GPU is needed: device detection is fed fake provider lists and fake
``nvidia-smi -L`` output, and the CPU-fallback check uses the real, CPU-only
ONNX Runtime, which silently drops a requested CUDA provider.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest

from harness.core import devices, status
from harness.plugin import sharding
from harness.isolation.processes import SessionClient
from harness.spec.matrix import Scope, load_all

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "data" / "fake.yaml"
TOLS = ROOT / "cases" / "tolerances.yaml"
HAS_CUDA = "CUDAExecutionProvider" in onnxruntime.get_available_providers() and devices.gpu_count() > 0

SMI = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1111)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2222)
"""


def _pytest(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# -- devices --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("cpu", ("cpu",)),
    ("cpu,cuda:0", ("cpu", "cuda:0")),
    (" CPU , cuda:1,cuda:1 ", ("cpu", "cuda:1")),
    ("cuda", ("cuda:0",)),
    ("gpu:2", ("cuda:2",)),
])
def test_parse_devices(text, want):
    assert devices.parse_devices(text) == want


@pytest.mark.parametrize("text", ["tpu", "cuda:x", "", " , ", "cpu,cuda:-1"])
def test_parse_devices_rejects(text):
    with pytest.raises(devices.DeviceError):
        devices.parse_devices(text)


def test_detect_with_fake_providers():
    assert devices.gpu_count(SMI) == 2
    assert devices.gpu_count("") == 0
    assert devices.detect(("CPUExecutionProvider",), n_gpus=2) == ("cpu",)
    assert devices.detect(("CUDAExecutionProvider", "CPUExecutionProvider"), n_gpus=0) == ("cpu",)
    assert devices.detect(("CUDAExecutionProvider", "CPUExecutionProvider"), n_gpus=2) == \
        ("cpu", "cuda:0", "cuda:1")


def test_setting_for_gpu_binds_device_id():
    trt = devices.setting_for("cuda:1", ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                                         "CPUExecutionProvider"))
    assert trt.providers == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert trt.provider_options == ({"device_id": 1}, {"device_id": 1}, {})
    plain = devices.setting_for("cuda:0", ("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert plain.providers == ("CUDAExecutionProvider", "CPUExecutionProvider") and plain.is_gpu
    cpu = devices.setting_for("cpu", ("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert cpu.providers == ("CPUExecutionProvider",) and not cpu.is_gpu
    assert devices.DeviceSetting.from_dict(trt.to_dict()) == trt


def test_skip_reason_and_fallback_rule():
    assert devices.skip_reason("cuda:0", ("cpu",)) == devices.NO_CUDA_REASON
    assert devices.skip_reason("cuda:0", ("cpu", "cuda:0")) is None
    assert devices.skip_reason("cpu", ("cpu",)) is None
    gpu = devices.setting_for("cuda:0", ())
    assert devices.is_fallback(gpu, ["CPUExecutionProvider"])
    assert not devices.is_fallback(gpu, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert not devices.is_fallback(devices.DeviceSetting(), ["CPUExecutionProvider"])


def _fake(variant, opset=13, device="cpu"):
    m = load_all([FAKE], TOLS, Scope(opsets="declared", devices=(device,)))
    return next(c for c in m.cases if c.variant == variant and c.opset == opset), m


def test_cuda_case_that_lands_on_cpu_is_not_a_pass(tmp_path):
    """The real ORT: on a CPU-only build the CUDA provider is dropped, and that must show."""
    case, m = _fake("good", device="cuda:0")
    setting = devices.setting_for("cuda:0", tuple(onnxruntime.get_available_providers()))
    ex = SessionClient(timeout=30, plugins=m.plugins, workdir=str(tmp_path), frameworks=("fake",))
    try:
        rec = ex.run(case, device=setting.to_dict())
    finally:
        ex.close()
    if HAS_CUDA:
        assert rec["status"] == status.PASS and rec["provider"] != "CPUExecutionProvider", rec
        assert rec["provider_fallback"] is False
    else:
        assert rec["status"] == status.RUNTIME_UNSUPPORTED, rec
        assert rec["provider_fallback"] is True and rec["provider"] == "CPUExecutionProvider"
        assert rec["message"].startswith(devices.FALLBACK_MESSAGE)


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is present: cuda cases would run")
def test_cuda_cases_skip_without_gpu_and_cpu_cases_run(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(f"fake-fake-relu-good-opset{o}-float32-{d}"
                             for o in (13, 14) for d in ("cpu", "cuda:0")))
    results = tmp_path / "r.jsonl"
    proc = _pytest("--matrix", str(FAKE), "--devices", "cpu,cuda:0", "--case-ids", str(ids),
                   "--results", str(results), "--no-report", "-q", "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = {r["id"]: r for r in map(json.loads, results.read_text().splitlines())}
    assert len(recs) == 4
    for r in recs.values():
        if r["device"] == "cpu":
            assert r["status"] == status.PASS, r
        else:
            assert r["status"] == status.SKIPPED and r["message"] == devices.NO_CUDA_REASON, r
    # --case-ids generates only the listed cases (nothing to deselect)
    assert "2 passed, 2 skipped" in proc.stdout and "deselected" not in proc.stdout
    assert devices.NO_CUDA_REASON in proc.stdout


def test_bad_devices_option_is_a_usage_error():
    proc = _pytest("--matrix", str(FAKE), "--devices", "tpu:0", "--collect-only", "-q")
    assert proc.returncode == 4 and "unknown device 'tpu:0'" in proc.stderr


# -- sharding -------------------------------------------------------------------------------------
def _all_cases():
    m = load_all([FAKE, ROOT / "cases" / "paddle.yaml"], TOLS,
                 Scope(opsets="full", devices=("cpu", "cuda:0")))
    return m.cases


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_shards_are_an_exact_cover_grouped_by_model(n):
    cases = _all_cases()
    seen: dict[str, int] = {}
    for k in range(1, n + 1):
        keep, drop = sharding.split(cases, lambda c: c.model_key, k, n)
        assert len(keep) + len(drop) == len(cases)
        for c in keep:
            assert c.id not in seen, f"{c.id} in shards {seen[c.id]} and {k}"
            seen[c.id] = k
    assert set(seen) == {c.id for c in cases}
    by_model: dict[str, set] = {}
    for c in cases:
        by_model.setdefault(c.model_key, set()).add(seen[c.id])
    assert all(len(s) == 1 for s in by_model.values())


def test_shard_of_is_the_same_in_every_process():
    keys = sorted({c.model_key for c in _all_cases()})
    code = ("import json, sys; from harness.plugin import sharding; "
            "print(json.dumps([sharding.shard_of(k, 4) for k in json.loads(sys.argv[1])]))")
    got = []
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(keys)], cwd=ROOT, text=True,
                             capture_output=True, env={"PYTHONHASHSEED": seed, "PATH": ""}, check=True)
        got.append(json.loads(out.stdout))
    assert got[0] == got[1] == [sharding.shard_of(k, 4) for k in keys]
    assert len(set(got[0])) > 1  # the keys really spread over shards


def test_shard_options_select_and_name_the_results_file():
    ids_by_shard = []
    for k in (1, 2, 3):
        proc = _pytest("--matrix", str(FAKE), "--shard-id", str(k), "--num-shards", "3",
                       "--collect-only")
        assert proc.returncode == 0, proc.stderr
        ids_by_shard.append(set(re.findall(r"test_case\[([^\]]+)\]", proc.stdout)))
        assert f"shard{k}of3.jsonl" in proc.stdout
        assert "deselected" in proc.stdout or len(ids_by_shard[-1]) == 0
    _, m = _fake("good")
    assert set().union(*ids_by_shard) == {c.id for c in m.cases}
    assert sum(map(len, ids_by_shard)) == len(m.cases)


@pytest.mark.parametrize("args", [["--shard-id", "0", "--num-shards", "3"],
                                  ["--shard-id", "4", "--num-shards", "3"],
                                  ["--shard-id", "1"]])
def test_bad_shard_options_are_usage_errors(args):
    proc = _pytest("--matrix", str(FAKE), *args, "--collect-only", "-q")
    assert proc.returncode == 4, proc.stdout + proc.stderr


# -- timeouts -------------------------------------------------------------------------------------
def test_timeout_then_next_case_passes_on_the_same_executor(tmp_path):
    hang, m = _fake("hangs")
    good, _ = _fake("good")
    ex = SessionClient(timeout=3, plugins=m.plugins, workdir=str(tmp_path), frameworks=("fake",))
    try:
        assert ex.run(good)["status"] == status.PASS
        assert ex.run(hang)["status"] == status.TIMEOUT
        rec = ex.run(good)
        assert rec["status"] == status.PASS, rec
        assert ex.started == 2  # the killed runner was replaced by a fresh one
    finally:
        ex.close()


def test_timeout_then_worker_runs_its_other_cases(tmp_path):
    """In a real xdist run, the worker whose case hung still runs (and passes) its next cases."""
    text = FAKE.read_text().split("    variants:")[0]
    matrix = tmp_path / "order.yaml"
    matrix.write_text(text + "    variants:\n      hangs: {kwargs: {behavior: hangs}}\n"
                      "      good: {kwargs: {behavior: good}}\n")
    results = tmp_path / "r.jsonl"
    proc = _pytest("--matrix", str(matrix), "-n", "1", "--case-timeout", "3", "--results", str(results),
                   "--no-report", "-q")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = [json.loads(ln) for ln in results.read_text().splitlines()]
    assert [r["status"] for r in recs if r["variant"] == "hangs"] == [status.TIMEOUT] * 2
    good = [r for r in recs if r["variant"] == "good"]
    assert len(good) == 2 and all(r["status"] == status.PASS for r in good), good
    assert {r["worker"] for r in recs} == {"gw0"}
    assert "2 failed, 2 passed" in proc.stdout


# -- grouping -------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", [("--dist", "loadgroup"), ("--suite", "models")], ids=["dist", "suite"])
def test_dist_loadgroup_keeps_each_model_on_one_worker(tmp_path, how):
    """--dist loadgroup sends every case of one model key to one worker (also on pytest >= 9.2);
    ``--suite models`` switches to it by itself."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(f"fake-fake-relu-{v}-opset{o}-float32-cpu"
                             for v in ("good", "wrong_values", "dtype") for o in (13, 14)))
    results = tmp_path / "r.jsonl"
    proc = _pytest("--matrix", str(FAKE), "-n", "2", *how, "--case-ids", str(ids),
                   "--results", str(results), "--no-report", "-q")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = [json.loads(ln) for ln in results.read_text().splitlines()]
    assert len(recs) == 6
    workers: dict[str, set] = {}
    for r in recs:
        workers.setdefault(r["variant"], set()).add(r["worker"])
    assert all(len(w) == 1 for w in workers.values()), workers
