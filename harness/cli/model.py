"""Check your own model: export it through the framework's exporters and run it on the runtimes.

USER_MODEL is a YAML file kept with your model (see harness/spec/usermodel.py and
docs/models.md): the framework, a factory `module:function` (plus optional
weights) or a saved model (a Paddle inference folder, a Keras .h5/.keras file, an
.onnx file checked on the runtimes against the ONNX reference evaluator),
and the inputs (shapes and dtypes, or .npy/.npz files). The model runs through
the same exporters x opsets x runtimes x passes, records and reports as the
built-in models of `pytest --suite models`.

Before any runner starts, the file is checked and the model is built once in
its framework's environment and run on the inputs: a problem (a missing file, a
factory that raises, inputs the model refuses) is one line naming the file, the
line and the field, with exit code 4. Otherwise the exit code is pytest's: 0
when every case passes, 1 when a case fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from harness.isolation import environments
from harness.spec.matrix import Scope, load_all
from harness.spec import usermodel
from harness.spec.yamlsrc import MatrixError

HELP = "check your own model (a YAML file: factory or saved model, inputs) like the built-in models"

ROOT = Path(__file__).resolve().parent.parent.parent
USAGE_ERROR = 4


def add_arguments(p) -> None:
    """Arguments of ``python -m harness model``."""
    p.add_argument("user_model", metavar="USER_MODEL", help="the YAML file describing the model")
    p.add_argument("--results", help="results file (default: the run's, results/run-<UTC time>.jsonl)")
    p.add_argument("--reports-dir", help="where models.md/.json/.html and support.* go "
                                         "(default: <results file>-reports/)")
    p.add_argument("--runtimes", default="ort", help="comma-separated runtimes, as pytest --runtimes")
    p.add_argument("--passes", default="none", help="comma-separated post-export passes, as pytest --passes")
    p.add_argument("--workdir", help="where the generated one-entry matrix is written (default: a temp folder)")
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                   help="further pytest options after --, e.g. -- -n 2 --case-timeout 1800")


def prepare(path: str, workdir: Path) -> Path:
    """Check the user-model file and write its matrix into ``workdir``; raise MatrixError at a problem.

    The model is built once in its framework's environment (``harness.isolation.envprobe --build``) on the
    first input set, so a factory that raises or inputs the model refuses stop here.
    """
    model = usermodel.load(path)
    reason = environments.unavailable(model.framework)
    if reason:
        raise model.error("framework", reason)
    matrix = workdir / f"{model.name}.yaml"
    matrix.write_text(yaml.safe_dump(model.matrix(), sort_keys=False), encoding="utf-8")
    try:
        cases = load_all([matrix], ROOT / "cases" / "tolerances.yaml", Scope()).cases
    except MatrixError as exc:  # e.g. an unknown tolerance rule: name the user's field, not the generated file
        field = "tolerance" if "tolerance" in exc.field else "<file>"
        raise model.error(field, exc.message) from None
    case_file = workdir / "probe-case.json"
    case_file.write_text(json.dumps(cases[0].to_dict()), encoding="utf-8")
    probe = subprocess.run([environments.interpreter(model.framework), "-m", "harness.isolation.envprobe", "--build",
                            str(case_file)], cwd=ROOT, env=environments.runner_environ(model.framework),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    lines = probe.stdout.strip().splitlines()
    try:
        found = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = " ".join((probe.stderr or probe.stdout).strip().splitlines()[-3:])
        raise model.error("framework", f"the model could not be built (exit {probe.returncode}): {tail}") from None
    if not found["ok"]:
        if found["stage"] == "reference":
            raise model.error("inputs", f"the model refuses these inputs: {found['error']}")
        raise model.error("saved" if "saved" in model.kwargs else "factory",
                          f"building the model failed: {found['error']}")
    return matrix


def run(args) -> int:
    """Check the file, then run the conformance tests on its one-entry matrix."""
    own = None if args.workdir else tempfile.TemporaryDirectory(prefix="harness-model-")
    workdir = Path(args.workdir or own.name)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        try:
            matrix = prepare(args.user_model, workdir)
        except MatrixError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return USAGE_ERROR
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "conformance"), "--matrix", str(matrix),
               "--runtimes", args.runtimes, "--passes", args.passes, "--case-timeout", "900",
               "-q"]
        if args.results:
            cmd += ["--results", args.results]
        if args.reports_dir:
            cmd += ["--reports-dir", args.reports_dir]
        return subprocess.run(cmd + list(args.pytest_args), cwd=ROOT, check=False).returncode
    finally:
        if own is not None:
            own.cleanup()
