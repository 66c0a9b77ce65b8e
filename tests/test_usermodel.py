"""``python -m harness model``: a user's model per framework, written to a folder outside the repository.

Per framework (its environment must exist, else the test skips with the reason):
a model that exports correctly passes (exit 0, every record ``pass``); the same
model with one layer no exporter can translate fails with the status its
exporter gives (exit 1); and a broken YAML stops with exit 4 and one line
naming the file, the line and the field, before any runner starts. The file
checks themselves (no framework needed) run on every machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.isolation import environments
from harness.spec import usermodel
from harness.spec.yamlsrc import MatrixError

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "data" / "usermodels"

#: framework -> (input shape, one exporter and opset to keep the test short, the broken model's statuses)
FRAMEWORKS = {
    # the custom op has no symbolic / ONNX function: the exporter raises
    "torch": ([2, 3, 8, 8], "torchscript", "17~17", {"export-error"}),
    # Paddle2ONNX aborts the process on an operator it has no converter for ("the conversion is aborted")
    "paddle": ([2, 3, 8, 8], "dygraph", "13~13", {"crash"}),
    # tf2onnx logs "Unsupported ops: Igamma" and writes the TF op into the graph: the checker rejects it
    "tensorflow": ([2, 8, 8, 3], "keras", "14~14", {"invalid-model", "export-error"}),
    # oneflow-onnx has no handler for cumprod and writes it into the graph as is: the checker rejects it
    # ("No Op registered for cumprod with domain_version of 13")
    "oneflow": ([2, 3, 8, 8], "graph", "13~13", {"invalid-model"}),
}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _yaml(fw: str, factory: str, extra: str = "") -> str:
    shape, exporter, opsets, _ = FRAMEWORKS[fw]
    if fw == "oneflow":  # one batch, the example's: a static export (oneflow-onnx's dynamic batch is a
        extra += "batches: [2]\n"  # finding of the models suite: its Reshapes keep the compiled batch)
    return (f"framework: {fw}\nfactory: {fw}_net:{factory}\nexporters: [{exporter}]\nopsets: \"{opsets}\"\n"
            f"inputs:\n  - {{shape: {shape}}}\n{extra}")


def _command(path: Path, results: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "model", str(path), "--results", str(results),
                           "--reports-dir", str(results.parent / "reports"), *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=1500)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def outside(tmp_path_factory):
    """A fresh folder outside the repository (the user's own)."""
    folder = tmp_path_factory.mktemp("usermodel")
    assert ROOT not in folder.resolve().parents
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("fw", sorted(FRAMEWORKS))
def test_user_model_passes_fails_and_refuses_bad_yaml(fw, outside):
    reason = environments.unavailable(fw)
    if reason:
        pytest.skip(reason)
    shutil.copy(MODELS / f"{fw}_net.py", outside)
    good = _command(_write(outside, "good.yaml", _yaml(fw, "build", "classifier: true\n")),
                    outside / "good.jsonl")
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    recs = _records(outside / "good.jsonl")
    assert recs and {r["status"] for r in recs} == {"pass"}, recs
    assert all(r["whole_model"] and r["kernel"] == "good" and "top1_agree" in r for r in recs)
    assert (outside / "reports" / "models.md").exists()

    broken = _command(_write(outside, "broken.yaml", _yaml(fw, "broken")), outside / "broken.jsonl")
    assert broken.returncode == 1, broken.stdout[-3000:] + broken.stderr[-3000:]
    statuses = {r["status"] for r in _records(outside / "broken.jsonl")}
    assert statuses and statuses <= FRAMEWORKS[fw][3], statuses

    bad = _write(outside, "bad.yaml", _yaml(fw, "build").replace(f"{{shape: {FRAMEWORKS[fw][0]}}}",
                                                                  "{file: missing.npy}"))
    run = _command(bad, outside / "bad.jsonl")
    assert run.returncode == 4, run.stdout + run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: {bad}:6: inputs[0].file: input file 'missing.npy' does not exist ({outside / 'missing.npy'})"]
    assert not (outside / "bad.jsonl").exists()  # no runner started


@pytest.mark.slow
def test_a_factory_that_raises_is_exit_4_naming_the_factory(outside):
    if environments.unavailable("torch"):
        pytest.skip("torch runs in the main environment")
    _write(outside, "raising.py", (MODELS / "torch_net.py").read_text(encoding="utf-8")
           + "\n\ndef explode():\n    raise ValueError('no such checkpoint layout')\n")
    path = _write(outside, "m.yaml", _yaml("torch", "explode").replace("torch_net:", "raising:"))
    run = _command(path, outside / "r.jsonl")
    assert run.returncode == 4, run.stdout + run.stderr
    line, = run.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:2: factory: building the model failed: ValueError: no such checkpoint")


@pytest.mark.slow
def test_inputs_the_model_refuses_are_exit_4_naming_the_inputs(outside):
    shutil.copy(MODELS / "torch_net.py", outside)
    path = _write(outside, "m.yaml", _yaml("torch", "build").replace("[2, 3, 8, 8]", "[2, 5, 8, 8]"))
    run = _command(path, outside / "r.jsonl")
    assert run.returncode == 4, run.stdout + run.stderr
    line, = run.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:5: inputs: the model refuses these inputs: RuntimeError")


# -- the file checks (no framework imported) ------------------------------------------------------

@pytest.mark.parametrize("text, where, words", [
    ("framework: torch\ninputs: [{shape: [1, 3]}]\n", 1, "<file>: give exactly one of 'factory'"),
    ("framework: jax\nfactory: a:b\ninputs: [{shape: [1]}]\n", 1, "framework: 'jax' is not one of"),
    ("framework: torch\nfactory: a:b\nweights: w.pth\ninputs: [{shape: [1]}]\n", 3,
     "weights: weights file 'w.pth' does not exist"),
    ("framework: torch\nfactory: a:b\ninputs: [{shape: [1]}]\nexporters: [keras]\n", 4,
     "exporters: unknown exporter 'keras' for this model (known: torchscript, dynamo)"),
    ("framework: torch\nfactory: a:b\ninputs: [{shape: [1]}]\nopsets: 13-14\n", 4,
     "opsets: opset range '13-14' is not of the form"),
    ("framework: torch\nsaved: m.h5\ninputs: [{shape: [1]}]\n", 2, "saved: saved model 'm.h5' does not exist"),
    ("framework: torch\nfactory: a:b\ninputs: [{shape: [1], colour: red}]\n", 3, "unknown key 'colour'"),
])
def test_a_bad_file_is_one_error_naming_line_and_field(outside, text, where, words):
    path = _write(outside, "m.yaml", text)
    with pytest.raises(MatrixError) as err:
        usermodel.load(path)
    assert str(err.value).startswith(f"{path}:{where}: ") and words in str(err.value), str(err.value)


def test_a_paddle_folder_without_params_and_npz_inputs(outside):
    folder = outside / "infer"
    folder.mkdir()
    (folder / "inference.json").write_text("{}")
    path = _write(outside, "m.yaml", "framework: paddle\nsaved: infer\ninputs: [{shape: [1, 3]}]\n")
    with pytest.raises(MatrixError, match=r"m.yaml:2: saved: a Paddle inference folder must hold .* lacks "
                                          r"inference.pdiparams"):
        usermodel.load(path)
    (folder / "inference.pdiparams").write_bytes(b"")
    np.savez(outside / "x.npz", image=np.ones((2, 3, 4, 4), "float32"), ids=np.arange(3))
    model = usermodel.load(_write(outside, "m.yaml", "framework: paddle\nname: mine\nsaved: infer\ninputs:\n"
                                                     "  - {file: x.npz, key: image}\n"))
    assert model.exporters == ["cli"] and model.batches is None
    assert model.inputs == [{"shape": [2, 3, 4, 4], "dtype": "float32", "file": str(outside / "x.npz"),
                             "key": "image"}]
    entry = model.matrix()["entries"][0]
    assert entry["kernel"] == "mine" and entry["builder"] == usermodel.BUILDER
    with pytest.raises(MatrixError, match=r"m.yaml:4: inputs\[0\].key: a .npz holds several arrays"):
        usermodel.load(_write(outside, "m.yaml", "framework: paddle\nsaved: infer\ninputs:\n  - {file: x.npz}\n"))


@pytest.mark.slow
def test_an_onnx_file_is_checked_on_the_runtimes_at_its_own_opset(outside):
    """``saved: m.onnx``: the runtimes against the ONNX reference evaluator, at the file's opset."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(6, 4)).astype("float32"), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                              "user", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), outside / "m.onnx")
    path = _write(outside, "m.yaml", "framework: onnx\nsaved: m.onnx\ninputs: [{shape: [2, 6]}]\n")
    model = usermodel.load(path)
    assert model.opsets == "15~15" and model.exporters == ["file"] and model.batches == [1, 3]
    run = _command(path, outside / "r.jsonl")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    recs = _records(outside / "r.jsonl")
    assert [(r["id"], r["status"]) for r in recs] == [("onnx-file-m-default-opset15-float32-cpu", "pass")]
    with pytest.raises(MatrixError, match=r"m.yaml:4: opsets: an ONNX file runs at its own opset \(15\)"):
        usermodel.load(_write(outside, "m.yaml", "framework: onnx\nsaved: m.onnx\ninputs: [{shape: [2, 6]}]\n"
                                                 "opsets: '13~14'\n"))
