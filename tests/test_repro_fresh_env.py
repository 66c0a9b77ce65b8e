"""A real failing case per framework, replayed from its bundle in a fresh virtual environment.

The environment is built from the bundle's own ``requirements.txt`` (the framework, onnx,
onnxruntime and numpy, pinned) with pip, from the machine's wheel cache or index: nothing of the
harness, pytest, yaml, jsonschema or hypothesis. In it the bundle must exit 1 (the failure
reproduces), 0 once its case is moved to an opset that passes, and 2 with a one-line reason once
the framework is uninstalled. Slow (a fresh environment per framework): ``-m 'not slow'`` skips it.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from harness.core import status
from harness.isolation.processes import SessionClient
from harness.spec.matrix import Scope, load_all

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOL = ROOT / "cases" / "tolerances.yaml"

#: framework -> (matrix, failing case id, its status, an opset at which the same model passes,
#: the pip distribution whose removal leaves no framework, the module the replay then lacks)
REAL = {
    "paddle": ("paddle.yaml", "paddle-dygraph-conv2d-basic-opset7-float32-cpu", status.INVALID_MODEL, 11,
               "paddlepaddle", "paddle"),
    "torch": ("torch.yaml", "torch-torchscript-interpolate_bilinear-half_pixel-opset9-float32-cpu",
              status.MISMATCH, 11, "torch", "torch"),
}
#: What the fresh environment must not hold.
NOT_THERE = {"pyyaml", "jsonschema", "pytest", "hypothesis", "onnx-conformance-harness", "pyflakes"}


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), stdin=subprocess.DEVNULL, **kw)


def _bundle(fw: str, tmp: Path) -> tuple[dict, Path]:
    """Run the real failing case through the harness's executor; return its record and bundle."""
    matrix, case_id = REAL[fw][:2]
    m = load_all([ROOT / "cases" / matrix], TOL, Scope(opsets="declared", frameworks=(fw,)))
    case = next(c for c in m.cases if c.id == case_id)
    (tmp / "ex").mkdir()
    ex = SessionClient(timeout=300, plugins=m.plugins, workdir=str(tmp / "ex"), frameworks=(fw,),
                  repro_dir=str(tmp / "repro"))
    try:
        rec = ex.run(case)
    finally:
        ex.close()
    return rec, Path(rec["repro_bundle"])


def _fresh_venv(where: Path, requirements: Path) -> Path:
    """``python -m venv`` + ``pip install -r requirements``; return the environment's python."""
    made = _run([sys.executable, "-m", "venv", str(where)], timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    py = where / "bin" / "python"
    # --no-compile: byte-compiling every file of torch or paddle costs more CPU than the install
    # itself; the first replay compiles only what it imports.
    pip = _run([str(py), "-m", "pip", "install", "-q", "--no-compile", "-r", str(requirements)], timeout=900)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return py


def _replay(py: Path, bundle: Path) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    run = _run([str(py), "-I", "repro.py"], cwd=bundle, timeout=600)
    return run, time.perf_counter() - t0


def _last(run) -> str:
    lines = run.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.split("==", 1) for d in deps)


@pytest.mark.parametrize("fw", sorted(REAL))
def test_a_real_bundle_replays_in_a_fresh_environment(fw, tmp_path, record_property):
    _, case_id, failing, passing_opset, dist, module = REAL[fw]
    t0 = time.perf_counter()
    rec, bundle = _bundle(fw, tmp_path)
    made_s = time.perf_counter() - t0
    assert rec["id"] == case_id and rec["status"] == failing, rec
    req = bundle / "requirements.txt"
    pins = _pins()
    for line in req.read_text().split():
        name, version = line.split("==")
        assert version.split("+")[0] == pins[name], (line, pins[name])

    t0 = time.perf_counter()
    py = _fresh_venv(tmp_path / "venv", req)
    venv_s = time.perf_counter() - t0
    held = {ln.split("==")[0].lower() for ln in _run([str(py), "-m", "pip", "list", "--format=freeze"]).stdout.split()}
    assert dist in held and not held & NOT_THERE, held

    run, fail_s = _replay(py, bundle)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert _last(run).startswith(f"REPRODUCED: {failing}: "), run.stdout[-3000:]
    assert rec["message"][:60] in _last(run)

    passing = tmp_path / "passing"
    shutil.copytree(bundle, passing)
    data = json.loads((passing / "case.json").read_text())
    (passing / "case.json").write_text(json.dumps({**data, "opset": passing_opset}))
    run, pass_s = _replay(py, passing)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _last(run) == ("NOT REPRODUCED: the model exports, checks, runs and matches the reference "
                          f"(originally {failing})"), run.stdout[-3000:]

    gone = _run([str(py), "-m", "pip", "uninstall", "-y", "-q", dist], timeout=300)
    assert gone.returncode == 0, gone.stderr[-2000:]
    run, none_s = _replay(py, bundle)
    assert run.returncode == 2 and run.stdout.strip() == (
        f"CANNOT RUN: {module} is not installed in this Python (needed to rebuild the model)"), \
        run.stdout[-3000:] + run.stderr[-3000:]

    figures = {"bundle_s": made_s, "venv_s": venv_s, "replay_failing_s": fail_s, "replay_passing_s": pass_s,
               "replay_no_framework_s": none_s}
    for k, v in figures.items():
        record_property(k, round(v, 1))
    print(f"{fw}: " + ", ".join(f"{k}={v:.1f}" for k, v in figures.items()))
