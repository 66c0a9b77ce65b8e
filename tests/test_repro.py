"""Repro bundles: what they hold, that their scripts are sound, and how they replay (fake frameworks).

The replay of real Paddle and torch bundles in fresh environments is in ``test_repro_fresh_env.py``.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.core import registry, replay, repro, status
from harness.isolation.processes import SessionClient
from harness.spec.matrix import Scope, load_all
from harness.spec import usermodel

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TOL = ROOT / "cases" / "tolerances.yaml"
PY = sys.executable

#: The packages a vendored module may import when it is loaded, besides the standard library and
#: the bundle's own packages: numpy, onnx, onnxruntime and the framework's own.
ALLOWED = {"numpy", "onnx", "onnxruntime"}
FRAMEWORK_IMPORTS = {"paddle": {"paddle", "paddle2onnx"}, "torch": {"torch"}, "fake": set(), "fakex": set()}
#: Undefined names, as ruff (pyflakes' rules) reports them: in code, in ``__all__``, a local before assignment.
UNDEFINED = "F821,F822,F823"


# -- the script set of every framework x exporter x builder -----------------------------------

def _user_matrices(folder: Path) -> list[Path]:
    """The one-entry matrices ``python -m harness model`` writes for the user-model files of tests/data."""
    out = []
    for fw in ("paddle", "torch"):
        path = folder / f"user-{fw}.yaml"
        path.write_text(yaml.safe_dump(usermodel.load(ROOT / "tests" / "data" / "usermodels" / f"{fw}.yaml")
                                       .matrix()), encoding="utf-8")
        out.append(path)
    return out


def _script_cases() -> list:
    """One case per framework x exporter x builder of the real matrices (kernels, small networks, whole
    models, a user model), plus a ``call:`` case each."""
    with tempfile.TemporaryDirectory() as tmp:
        m = load_all([ROOT / "cases" / f for f in ("paddle.yaml", "paddle_models.yaml", "torch.yaml",
                                                   "models/paddle.yaml", "models/torch.yaml")]
                     + _user_matrices(Path(tmp)), TOL, Scope(opsets="declared"))
    out = {}
    for fw in sorted({c.framework for c in m.cases}):
        registry.load_builders(fw)
        mine = [c for c in m.cases if c.framework == fw]
        for exporter in sorted({c.exporter for c in mine}):
            call = next(c for c in mine if c.spec.get("call"))
            out[(fw, exporter, "call")] = dataclasses.replace(call, exporter=exporter)
            for (bfw, name) in sorted(registry.BUILDERS):
                if bfw != fw:
                    continue
                case = next(c for c in mine if c.spec.get("builder") == name and not c.spec.get("call"))
                out[(fw, exporter, name)] = dataclasses.replace(case, exporter=exporter)
    return sorted(out.items())


SCRIPT_CASES = _script_cases()


def test_every_registered_builder_and_both_exporters_are_covered():
    keys = {k for k, _ in SCRIPT_CASES}
    for fw in ("paddle", "torch"):
        builders = {n for (f, n) in registry.BUILDERS if f == fw}
        exporters = {e for (f, e, _) in keys if f == fw}
        assert exporters == {"paddle": {"dygraph", "static", "cli"}, "torch": {"torchscript", "dynamo"}}[fw]
        assert {(e, b) for (f, e, b) in keys if f == fw} == {(e, b) for e in exporters for b in builders | {"call"}}


def _undefined_names(files: list[Path]) -> list[str]:
    run = subprocess.run([PY, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", UNDEFINED,
                          "--output-format", "concise", *map(str, files)], capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1) and "error:" not in run.stderr, run.stderr
    return [ln for ln in run.stdout.splitlines() if ": F82" in ln]


@pytest.mark.parametrize("key, script_case", SCRIPT_CASES, ids=["-".join(k) for k, _ in SCRIPT_CASES])
def test_bundle_scripts_compile_define_every_name_and_import_only_what_the_replay_needs(key, script_case, tmp_path):
    fw, _, builder = key
    files = [Path(p) for p in repro.render(str(tmp_path), script_case)]
    scripts = [p for p in files if p.suffix == ".py"]
    assert (tmp_path / "repro.py").read_bytes() == Path(replay.__file__).read_bytes()
    vendor = tmp_path / repro.VENDOR
    rel = {p.relative_to(vendor).as_posix() for p in scripts if vendor in p.parents}
    assert {"harness/__init__.py", "harness/core/pipeline.py", "harness/core/tolerance.py", "harness/core/registry.py",
            f"harness/frameworks/{fw}.py", "harness/runtimes/ort.py"} <= rel
    if builder != "call":
        module = registry.BUILDERS[(fw, builder)].__module__
        assert module.replace(".", "/") + ".py" in rel
    for path in scripts:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
        if vendor in path.parents:
            outside = {m for m in repro.module_level_imports(path) if m not in sys.stdlib_module_names}
            assert outside <= ALLOWED | FRAMEWORK_IMPORTS[fw] | {"harness"}, (path, outside)
            name = ".".join(path.relative_to(vendor).with_suffix("").parts).removesuffix(".__init__")
            for mod in repro.imported_modules(path, name, path.name == "__init__.py", {"harness"}):
                if mod.split(".")[0] == "harness":  # every harness module it imports is in the bundle
                    where = vendor / Path(*mod.split("."))
                    assert where.with_suffix(".py").exists() or (where / "__init__.py").exists(), (path, mod)
    assert _undefined_names(scripts) == []
    req = (tmp_path / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in req} >= {"numpy", "onnx", "onnxruntime",
                                                {"paddle": "paddlepaddle", "torch": "torch"}[fw]}


def test_the_bundle_writer_does_not_import_the_pipeline():
    """No cycle: pipeline imports repro (to write bundles), repro never imports pipeline."""
    mods = repro.imported_modules(Path(repro.__file__), "harness.core.repro", False, {"harness"})
    assert "harness.core.pipeline" not in mods and "harness.core.replay" not in mods


def test_a_warmed_process_writes_bundles_without_parsing_the_harness_again(monkeypatch, tmp_path):
    """What the runner master warms covers every file a bundle of its frameworks vendors."""
    monkeypatch.setattr(repro, "_IMPORTS", {})
    repro.warm(("paddle", "torch"))
    assert len(repro._IMPORTS) > 10

    def parse(path, *args):
        raise AssertionError(f"{path} parsed again")

    monkeypatch.setattr(repro, "_parse_imports", parse)
    for i, (key, case) in enumerate(SCRIPT_CASES):
        out = tmp_path / str(i)
        out.mkdir()
        files = repro.render(str(out), case)
        assert any(f.endswith(f"harness/frameworks/{key[0]}.py") for f in files)


def test_a_changed_file_is_parsed_again(tmp_path):
    mod = tmp_path / "mod.py"
    mod.write_text("import json\n", encoding="utf-8")
    assert repro.imported_modules(mod, "mod") == {"json"}
    mod.write_text("import json\nimport csv\n", encoding="utf-8")
    assert repro.imported_modules(mod, "mod") == {"json", "csv"}


@pytest.mark.parametrize("rec, original, code, words", [
    ({"status": "pass"}, "mismatch", 0, "NOT REPRODUCED: the model exports, checks, runs and matches"
                                        " the reference (originally mismatch)"),
    ({"status": "mismatch", "message": "output 0:\n max_abs=1"}, "mismatch", 1,
     "REPRODUCED: mismatch: output 0: max_abs=1"),
    ({"status": "runtime-error", "message": "boom"}, "mismatch", 1, "REPRODUCED: runtime-error (originally mismatch)"),
    ({"status": "skipped", "message": "paddle/static not available here"}, "crash", 2, "CANNOT RUN: paddle/static"),
])
def test_a_replayed_record_gives_one_exit_code_and_one_line(rec, original, code, words):
    got, line = replay.outcome(rec, original)
    assert got == code and line.startswith(words) and "\n" not in line


# -- fake bundles, end to end ------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Run a few fake cases with bundles on; yield (records by variant, repro dir)."""
    m = load_all([DATA / "fake.yaml"], TOL, Scope(opsets="declared"))
    cases = {c.variant: c for c in m.cases if c.opset == 13}
    out = tmp_path_factory.mktemp("repro")
    ex = SessionClient(timeout=4, plugins=m.plugins, workdir=str(tmp_path_factory.mktemp("ex")),
                  frameworks=("fake",), repro_dir=str(out))
    recs = {v: ex.run(cases[v]) for v in ("good", "wrong_values", "checker_rejects", "raises", "aborts", "hangs")}
    # a runtime and a pass added through their extension points (tests/fake_backends.py)
    recs["runtime"] = ex.run(dataclasses.replace(cases["good"], runtime="fake-wrong-relu"))
    recs["pass"] = ex.run(dataclasses.replace(cases["good"], post_pass="fake-drop-node"))
    ex.close()
    yield recs, out


def _replay(bundle, *args, python=PY):
    return subprocess.run([python, "-I", "repro.py", *args], cwd=bundle, capture_output=True, text=True,
                          timeout=120)


def _last(run) -> str:
    lines = run.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def test_no_bundle_for_a_passing_case(bundles):
    recs, out = bundles
    assert recs["good"]["status"] == status.PASS and "repro_bundle" not in recs["good"]
    assert not (out / recs["good"]["id"]).exists()


def test_bundle_of_a_mismatch_has_every_file_and_reproduces(bundles):
    recs, out = bundles
    rec = recs["wrong_values"]
    bundle = Path(rec["repro_bundle"])
    assert bundle == out / rec["id"]
    assert sorted(p.name for p in bundle.iterdir()) == ["_vendor", "actual.npz", "case.json", "inputs.npz",
                                                        "model.onnx", "reference.npz", "repro.py", "requirements.txt"]
    data = json.loads((bundle / "case.json").read_text())
    assert data["modules"] == ["tests.fakes", "harness.runtimes.ort"]
    assert data["runtime"] == "ort" and data["post_pass"] == "none"
    assert data["record"]["status"] == status.MISMATCH and data["id"] == rec["id"]
    assert (bundle / "_vendor" / "tests" / "fakes.py").read_bytes() == (ROOT / "tests" / "fakes.py").read_bytes()
    x = np.load(bundle / "inputs.npz")["set0_x0"]
    assert np.array_equal(np.load(bundle / "reference.npz")["set0_y0"], np.maximum(x, 0))
    assert np.array_equal(np.load(bundle / "actual.npz")["set0_y0"], np.abs(x))
    run = _replay(bundle)
    assert run.returncode == 1 and _last(run).startswith("REPRODUCED: mismatch: output 0: max_abs="), \
        run.stdout + run.stderr
    assert not list(bundle.rglob("__pycache__")), "the replay wrote into the bundle"


def _copy(rec, tmp_path) -> Path:
    bundle = tmp_path / "b"
    shutil.copytree(rec["repro_bundle"], bundle)
    return bundle


def _edit(bundle: Path, **changes) -> None:
    data = json.loads((bundle / "case.json").read_text())
    data.update(changes)
    (bundle / "case.json").write_text(json.dumps(data))


def test_repro_exits_0_when_the_failure_is_gone(bundles, tmp_path):
    """The same bundle, with the exporter fixed (behaviour 'good'), does not reproduce."""
    bundle = _copy(bundles[0]["wrong_values"], tmp_path)
    spec = json.loads((bundle / "case.json").read_text())["spec"]
    _edit(bundle, spec={**spec, "kwargs": {**spec["kwargs"], "behavior": "good"}})
    run = _replay(bundle)
    assert run.returncode == 0 and _last(run) == ("NOT REPRODUCED: the model exports, checks, runs and matches "
                                                  "the reference (originally mismatch)"), run.stdout + run.stderr


@pytest.mark.parametrize("variant, words, files", [
    ("checker_rejects", "REPRODUCED: invalid-model: ValidationError", {"model.onnx"}),
    ("raises", "REPRODUCED: export-error: RuntimeError: fake exporter refuses", set()),
    ("aborts", "REPRODUCED: crash: the replay's child died with SIGABRT", set()),
])
def test_bundles_of_other_failures_reproduce(bundles, variant, words, files):
    rec = bundles[0][variant]
    bundle = Path(rec["repro_bundle"])
    names = {p.name for p in bundle.iterdir()}
    assert {"case.json", "inputs.npz", "repro.py", "_vendor", "requirements.txt"} <= names
    assert names & {"model.onnx"} == files
    run = _replay(bundle)
    assert run.returncode == 1 and _last(run).startswith(words), run.stdout + run.stderr


@pytest.mark.parametrize("axis, module, verdict, words", [
    ("runtime", "tests.fake_backends", status.MISMATCH, "REPRODUCED: mismatch: output 0:"),
    # the exported model passes on ORT, so the dropped node is the pass's doing
    ("pass", "tests.fake_backends", status.PASS_CHANGED_RESULT,
     "REPRODUCED: pass-changed-result: fake-drop-node changed the result"),
])
def test_a_bundle_replays_with_the_case_s_runtime_and_pass(bundles, tmp_path, axis, module, verdict, words):
    rec = bundles[0][axis]
    assert rec["status"] == verdict, rec
    bundle = Path(rec["repro_bundle"])
    data = json.loads((bundle / "case.json").read_text())
    assert module in data["modules"] and (bundle / "_vendor" / "tests" / "fake_backends.py").exists()
    run = _replay(bundle)
    assert run.returncode == 1 and _last(run).startswith(words), run.stdout + run.stderr
    good = _copy(rec, tmp_path)
    _edit(good, runtime="ort", post_pass="none")
    run = _replay(good)
    assert run.returncode == 0 and _last(run).startswith("NOT REPRODUCED"), run.stdout + run.stderr


def test_a_hang_is_reported_not_suffered(bundles):
    rec = bundles[0]["hangs"]
    assert rec["status"] == status.TIMEOUT
    run = _replay(rec["repro_bundle"], "--timeout", "3")
    assert run.returncode == 1 and _last(run).startswith("REPRODUCED: timeout: no verdict within 3 s"), \
        run.stdout + run.stderr


def test_the_isolated_replay_says_not_reproduced_too(bundles, tmp_path):
    bundle = _copy(bundles[0]["aborts"], tmp_path)
    spec = json.loads((bundle / "case.json").read_text())["spec"]
    _edit(bundle, spec={**spec, "kwargs": {**spec["kwargs"], "behavior": "good"}})
    run = _replay(bundle)
    assert run.returncode == 0 and _last(run).startswith("NOT REPRODUCED") and "(originally crash)" in _last(run), \
        run.stdout + run.stderr


@pytest.mark.parametrize("damage, words", [
    (lambda b: (b / "case.json").unlink(), "CANNOT RUN: bad bundle: "),
    (lambda b: (b / "case.json").write_text("{\n  nope"), "CANNOT RUN: bad bundle: "),
    (lambda b: shutil.rmtree(b / "_vendor"), "CANNOT RUN: bad bundle: "),
    (lambda b: (b / "_vendor" / "tests" / "fakes.py").unlink(), "CANNOT RUN: bad bundle: _vendor/ lacks tests.fakes"),
    (lambda b: _edit(b, runtime="openvino"), "CANNOT RUN: runtime openvino not available here"),
    (lambda b: _edit(b, post_pass="fold-everything"), "CANNOT RUN: post-export pass fold-everything not available"),
    (lambda b: (b / "inputs.npz").unlink(), "CANNOT RUN: bad bundle: "),
])
def test_a_replay_that_cannot_run_exits_2_with_one_line(bundles, tmp_path, damage, words):
    bundle = _copy(bundles[0]["wrong_values"], tmp_path)
    damage(bundle)
    run = _replay(bundle)
    assert run.returncode == 2 and _last(run).startswith(words), run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("adapter", sorted((ROOT / "harness" / "frameworks").glob("[!_]*.py")), ids=lambda p: p.stem)
def test_every_framework_adapter_names_what_its_replay_needs(adapter):
    """A bundle's requirements.txt comes from the adapter's REPLAY_REQUIRES (read from its source)."""
    names = repro.requirements([f"harness.frameworks.{adapter.stem}"])
    if adapter.stem == "onnx":  # an ONNX file needs nothing beyond numpy, onnx and onnxruntime
        assert "REPLAY_REQUIRES = ()" in adapter.read_text(encoding="utf-8")
        return
    assert len(names) > len(repro.BASE_REQUIRES), f"{adapter}: no REPLAY_REQUIRES"


# -- issue 24, item 18: --timeout values, orphans and temporary folders ----------------------------

@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_gives_no_verdict_is_a_usage_error(bundles, tmp_path, value):
    bundle = bundles[0]["hangs"]["repro_bundle"]
    run = subprocess.run([PY, "-I", "repro.py", "--timeout", value], cwd=bundle, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert run.returncode == 2 and "REPRODUCED" not in run.stdout, run.stdout + run.stderr
    assert f"argument --timeout: {value!r}" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert not list(tmp_path.glob("repro-*")), "a replay was started"


@pytest.mark.parametrize("variant, args, verdict", [
    ("wrong_values", (), "REPRODUCED: mismatch"),  # replayed in this process
    ("aborts", (), "REPRODUCED: crash"),  # in a child
    ("hangs", ("--timeout", "2"), "REPRODUCED: timeout"),  # in a child, killed
])
def test_a_replay_leaves_no_temporary_folder(bundles, tmp_path, variant, args, verdict):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = subprocess.run([PY, "-I", "repro.py", *args], cwd=bundles[0][variant]["repro_bundle"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "TMPDIR": str(scratch)})
    assert run.returncode == 1 and _last(run).startswith(verdict), run.stdout + run.stderr
    assert not list(scratch.glob("repro-*")), f"left behind: {sorted(p.name for p in scratch.iterdir())}"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_of_an_isolated_replay_leaves_no_orphan(bundles, tmp_path):
    import signal
    import time

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen([PY, "-I", "repro.py", "--timeout", "60"], cwd=bundles[0]["hangs"]["repro_bundle"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(scratch)})
    deadline = time.monotonic() + 30
    while not _children(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = _children(proc.pid)
    assert child, "the replay started no child"
    time.sleep(0.5)  # the child is hanging in the fake exporter by now
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert not _alive(child[0]), "the child outlived its replay"
    assert not list(scratch.glob("repro-*"))
