"""Repro bundles: everything needed to replay one failing case without the harness.

A bundle is a folder (``artifacts/repro/<case id>/`` by default) with

* ``model.onnx``     -- the exported model (absent when the export itself failed);
* ``inputs.npz``     -- the input sets (``set<i>_x<j>``);
* ``reference.npz``  -- the framework's outputs (``set<i>_y<k>``), when it ran;
* ``actual.npz``     -- ONNX Runtime's outputs, when it ran;
* ``case.json``      -- the case (spec, exporter, opset, tolerance rule, seed) and its record;
* ``repro.py``       -- a standalone script (framework + onnx + onnxruntime only, no
  harness import) that rebuilds the model from the spec, re-exports it with the same
  exporter call and opset, runs ``onnx.checker`` and ONNX Runtime on the saved inputs
  and compares with the saved reference under the case's rule. Exit code 1 when the
  failure reproduces, 0 when it does not.

The case runner writes bundles (it has the model and the arrays); the parent writes
them for crashes and timeouts (no model; ``repro.py`` re-runs the export in a child
process so that an abort or a hang is reported, not suffered).

Framework-specific parts of ``repro.py`` (how to build, run and export a model) come
from a template registered per framework with :func:`register_template`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import textwrap
from typing import Callable

import numpy as np

from .case import Case

#: framework -> function(case) returning the Python source that defines
#: ``build(spec, seed)``, ``reference(model, inputs)`` and
#: ``export(model, spec, exporter, opset, workdir) -> path``.
TEMPLATES: dict[str, Callable[[Case], str]] = {}


def register_template(framework: str):
    """Decorator: register the repro.py source generator of ``framework``."""

    def deco(fn):
        TEMPLATES[framework] = fn
        return fn

    return deco


def function_source(fn) -> str:
    """Source of a module-level function without its decorators (for embedding)."""
    lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("def "))
    return "\n".join(lines[start:]) + "\n"


def _save_sets(path: str, sets: list[list], letter: str) -> None:
    arrays = {f"set{i}_{letter}{j}": np.asarray(a) for i, xs in enumerate(sets) for j, a in enumerate(xs)}
    np.savez(path, **arrays)


def _fresh_dir(bundle_dir: str) -> str:
    if os.path.isdir(bundle_dir):
        shutil.rmtree(bundle_dir)
    os.makedirs(bundle_dir)
    return bundle_dir


_RECORD_KEYS = ("id", "status", "message", "stage", "max_abs", "max_rel", "failing_input",
                "op_types", "model_opset", "special_values")


def _case_json(case: Case, rec: dict) -> dict:
    return {"id": case.id, "framework": case.framework, "kernel": case.kernel, "variant": case.variant,
            "exporter": case.exporter, "opset": case.opset, "dtype": case.dtype, "device": case.device,
            "seed": case.seed, "spec": case.spec, "tolerance": case.tolerance,
            "record": {k: rec.get(k) for k in _RECORD_KEYS if k in rec}}


def _write_common(bundle_dir: str, case: Case, rec: dict, input_sets, references,
                  plugins: tuple[str, ...] = ()) -> None:
    _save_sets(os.path.join(bundle_dir, "inputs.npz"), input_sets, "x")
    if references is not None:
        _save_sets(os.path.join(bundle_dir, "reference.npz"), references, "y")
    with open(os.path.join(bundle_dir, "case.json"), "w", encoding="utf-8") as f:
        json.dump(_case_json(case, rec), f, indent=2, sort_keys=True, default=str)
    with open(os.path.join(bundle_dir, "repro.py"), "w", encoding="utf-8") as f:
        f.write(render_script(case, plugins))
    os.chmod(os.path.join(bundle_dir, "repro.py"), 0o755)


def write_bundle(bundle_dir: str, case: Case, rec: dict, ctx: dict) -> str:
    """Runner side: write the bundle of a failing case from the pipeline's context; return its path."""
    from .inputs import make_input_sets

    _fresh_dir(bundle_dir)
    prep = ctx.get("prep")
    input_sets = prep.input_sets if prep is not None else make_input_sets(case)
    references = prep.references if prep is not None else None
    model_path = ctx.get("model_path")
    if model_path and os.path.exists(model_path):
        shutil.copyfile(model_path, os.path.join(bundle_dir, "model.onnx"))
    if ctx.get("actual"):
        _save_sets(os.path.join(bundle_dir, "actual.npz"), ctx["actual"], "y")
    _write_common(bundle_dir, case, rec, input_sets, references)
    return os.path.abspath(bundle_dir)


def write_parent_bundle(bundle_dir: str, case: Case, rec: dict, plugins: tuple[str, ...] = ()) -> str:
    """Parent side (crash, timeout): case.json, repro.py and inputs, no model; return its path."""
    from .inputs import make_input_sets

    _fresh_dir(bundle_dir)
    _write_common(bundle_dir, case, rec, make_input_sets(case), None, plugins)
    return os.path.abspath(bundle_dir)


def render_script(case: Case, plugins: tuple[str, ...] = ()) -> str:
    """The standalone ``repro.py`` of ``case`` (``plugins`` may register its template on import)."""
    if case.framework not in TEMPLATES:
        for mod in plugins:
            importlib.import_module(mod)
    make = TEMPLATES.get(case.framework)
    fw_src = make(case) if make else (
        "def build(spec, seed):\n"
        f"    raise SystemExit('no repro template for framework {case.framework}; use --saved')\n")
    return _SCRIPT.replace("{{CASE_ID}}", case.id).replace("{{FRAMEWORK}}", case.framework) \
        .replace("{{FRAMEWORK_SOURCE}}", fw_src)


# -- the script ------------------------------------------------------------------------------

_SCRIPT = '''#!/usr/bin/env python3
"""Standalone repro of {{CASE_ID}} (written by the ONNX conformance harness).

Needs only {{FRAMEWORK}}, onnx, onnxruntime and numpy. Rebuilds the model from
case.json, re-exports it with the same exporter and opset, checks it with
onnx.checker, runs ONNX Runtime on inputs.npz and compares with reference.npz
under the case's tolerance rule.

    python repro.py            # rebuild + re-export (the real repro)
    python repro.py --saved    # judge the bundled model.onnx instead

Exit code: 1 when the failure reproduces, 0 when it does not.
"""
import argparse
import json
import os
import signal
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- framework part: build(spec, seed), reference(model, inputs), export(...) ----
{{FRAMEWORK_SOURCE}}
# ---- tolerance rules (the harness's rule kinds, inlined) ----


def figures(ref, act):
    if ref.size == 0:
        return 0.0, 0.0
    r, a = ref.astype(np.float64), act.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        agree = (np.isnan(r) & np.isnan(a)) | (np.isinf(r) & (r == a))
        diff = np.where(agree, 0.0, np.abs(r - a))
        diff = np.where(np.isnan(diff), np.inf, diff)
        max_abs = float(diff.max())
        peak = float(np.abs(np.where(np.isfinite(r), r, 0.0)).max())
    max_rel = max_abs / peak if peak > 0 else (0.0 if max_abs == 0 else float("inf"))
    return max_abs, max_rel


def judge(rule, ref, act):
    """(ok, detail) of one output under the case's rule."""
    kind = rule["kind"]
    if kind == "range":
        lo, hi = rule.get("low", -np.inf), rule.get("high", np.inf)
        ok = bool(np.all((act >= lo) & (act <= hi))) if act.size else True
        return ok, "" if ok else f"values outside [{lo}, {hi}]"
    if kind == "exact":
        ok = bool(np.array_equal(ref, act, equal_nan=ref.dtype.kind == "f"))
        return ok, "" if ok else f"{int((ref != act).sum())} elements differ"
    max_abs, max_rel = figures(ref, act)
    if kind == "abs-or-rel":
        ok = max_abs < rule["abs"] or max_rel < rule["rel"]
    elif kind == "allclose":
        ok = bool(np.allclose(act.astype(np.float64), ref.astype(np.float64),
                              rtol=rule["rtol"], atol=rule["atol"], equal_nan=True))
    else:
        raise SystemExit(f"unknown rule kind {kind!r}")
    return ok, f"max_abs={max_abs:.3g} max_rel={max_rel:.3g}"


def first_difference(ref, act):
    if ref.shape != act.shape or ref.size == 0:
        return ""
    r, a = ref.astype(np.float64), act.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(((np.isnan(r) & np.isnan(a))) | (r == a))
    idx = np.argwhere(bad)
    if idx.size == 0:
        return ""
    at = tuple(int(i) for i in idx[0])
    return f"; first difference at index {at}: framework {r[at]:.9g}, ONNX Runtime {a[at]:.9g}"


def load_sets(name, letter):
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        return None
    data = np.load(path)
    sets = {}
    for key in data.files:
        s, k = key.split("_")
        sets.setdefault(int(s[3:]), {})[int(k[1:])] = data[key]
    return [[sets[i][j] for j in sorted(sets[i])] for i in sorted(sets)]


def reproduced(what):
    print(f"REPRODUCED: {what}")
    return 1


def export_isolated(model, case, workdir, timeout):
    """Export in a forked child: an abort or a hang becomes a message, not our death."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            path = export(model, case["spec"], case["exporter"], case["opset"], workdir)
            with open(os.path.join(workdir, "exported.txt"), "w") as f:
                f.write(path)
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001
            print(f"export raised {type(exc).__name__}: {exc}", flush=True)
            os._exit(3)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(code):
                raise ChildProcessError(f"the export died with {signal.Signals(os.WTERMSIG(code)).name}")
            if os.WEXITSTATUS(code) != 0:
                raise ChildProcessError("the export raised (see above)")
            with open(os.path.join(workdir, "exported.txt")) as f:
                return f.read()
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise TimeoutError(f"the export did not finish within {timeout:g} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--saved", action="store_true", help="judge the bundled model.onnx, do not re-export")
    ap.add_argument("--isolate", action="store_true",
                    help="export in a child process (default for crash and timeout cases)")
    ap.add_argument("--timeout", type=float, default=120.0, help="export time limit with --isolate")
    args = ap.parse_args()
    with open(os.path.join(HERE, "case.json")) as f:
        case = json.load(f)
    spec, rule, opset = case["spec"], case["tolerance"], case["opset"]
    original = case.get("record", {})
    print(f"case {case['id']}: originally {original.get('status')}: {original.get('message', '')[:300]}")
    inputs = load_sets("inputs.npz", "x")
    refs = load_sets("reference.npz", "y")
    workdir = tempfile.mkdtemp(prefix="repro-")
    if args.saved:
        path = os.path.join(HERE, "model.onnx")
        if not os.path.exists(path):
            raise SystemExit("this bundle has no model.onnx (the export failed); run without --saved")
    else:
        try:
            model = build(spec, case["seed"])
            fresh = [reference(model, xs) for xs in inputs]
        except Exception as exc:  # noqa: BLE001
            return reproduced(f"the framework cannot run its own model: {type(exc).__name__}: {exc}")
        if refs is None:
            refs = fresh
        else:
            same = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind == "f")
                       for fs, rs in zip(fresh, refs) for a, b in zip(fs, rs))
            if not same:
                print("note: the rebuilt model's outputs differ from reference.npz "
                      "(weights not reproduced exactly); comparing with reference.npz")
        isolate = args.isolate or original.get("status") in ("crash", "timeout")
        try:
            if isolate and hasattr(os, "fork"):
                path = export_isolated(model, case, workdir, args.timeout)
            else:
                path = export(model, spec, case["exporter"], opset, workdir)
        except Exception as exc:  # noqa: BLE001
            return reproduced(f"export failed: {type(exc).__name__}: {exc}")
        if not path or not os.path.exists(path):
            return reproduced("the exporter returned without writing a model")
    import onnx
    import onnxruntime as ort

    try:
        proto = onnx.load(path)
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001
        return reproduced(f"invalid model: {type(exc).__name__}: {str(exc)[:2000]}")
    declared = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    print("model ops:", ", ".join(sorted({n.op_type for n in proto.graph.node})), f"| opset {declared}")
    problems = []
    if declared != opset:
        problems.append(f"opset not honored: requested {opset}, model declares {declared}")
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        return reproduced(f"ONNX Runtime cannot load the model: {type(exc).__name__}: {str(exc)[:2000]}")
    for n, (xs, rs) in enumerate(zip(inputs, refs)):
        try:
            outs = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
        except Exception as exc:  # noqa: BLE001
            return reproduced(f"ONNX Runtime failed on input set {n}: {type(exc).__name__}: {exc}")
        if len(outs) != len(rs):
            problems.append(f"input set {n}: {len(outs)} outputs, reference has {len(rs)}")
            continue
        for k, (r, a) in enumerate(zip(rs, outs)):
            r, a = np.asarray(r), np.asarray(a)
            if r.shape != a.shape:
                problems.append(f"input set {n}, output {k}: shape {a.shape}, reference {r.shape}")
            elif r.dtype != a.dtype:
                problems.append(f"input set {n}, output {k}: dtype {a.dtype}, reference {r.dtype}")
            else:
                ok, detail = judge(rule, r, a)
                if not ok:
                    problems.append(f"input set {n}, output {k}: mismatch {detail} under rule "
                                    f"{rule.get('name')}{first_difference(r, a)}")
    if problems:
        return reproduced("; ".join(problems))
    print("NOT REPRODUCED: the model exports, checks, runs and matches the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


# -- framework templates ---------------------------------------------------------------------

_PADDLE = '''
import importlib

import paddle
import paddle2onnx
from paddle.static import InputSpec

paddle.set_device("cpu")


def resolve(dotted):
    mod, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(mod), attr)


class _Call(paddle.nn.Layer):
    def __init__(self, fn, args, kwargs, pack):
        super().__init__()
        self.fn, self.args, self.kwargs, self.pack = fn, list(args), dict(kwargs), pack

    def _apply(self, *xs):
        xs = [list(xs)] if self.pack == "list" else list(xs)
        return self.fn(*xs, *self.args, **self.kwargs)


class _Call1(_Call):
    def forward(self, x):
        return self._apply(x)


class _Call2(_Call):
    def forward(self, x, y):
        return self._apply(x, y)


class _Call3(_Call):
    def forward(self, x, y, z):
        return self._apply(x, y, z)


class _Call4(_Call):
    def forward(self, x, y, z, w):
        return self._apply(x, y, z, w)


{{BUILDER_SOURCE}}

def build(spec, seed):
    paddle.seed(seed)
    np.random.seed(seed % (2**32))
    if spec.get("call"):
        arity = {1: _Call1, 2: _Call2, 3: _Call3, 4: _Call4}[len(spec["inputs"])]
        layer = arity(resolve(spec["call"]), spec.get("args", []), spec.get("kwargs", {}), spec.get("pack"))
    else:
        layer = BUILDER(spec)
    layer.eval()
    return layer


def flatten(out):
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in flatten(o)]
    if isinstance(out, paddle.Tensor):
        return [out.numpy()]
    return [np.asarray(out)]


def reference(model, inputs):
    with paddle.no_grad():
        return flatten(model(*[paddle.to_tensor(x) for x in inputs]))


def input_specs(spec):
    return [InputSpec([None if ax in inp.get("dynamic", [0]) else d for ax, d in enumerate(inp["shape"])],
                      inp["dtype"], inp.get("name", f"x{i}")) for i, inp in enumerate(spec["inputs"])]


def export(model, spec, exporter, opset, workdir):
    if exporter == "dygraph":  # paddle.onnx.export on the dynamic-graph layer
        prefix = os.path.join(workdir, "model")
        paddle.onnx.export(model, prefix, input_spec=input_specs(spec), opset_version=opset)
        return prefix + ".onnx"
    if exporter == "static":  # paddle.jit.save, then paddle2onnx at exactly this opset
        saved = os.path.join(workdir, "static", "model")
        paddle.jit.save(model, saved, input_spec=input_specs(spec))
        out = os.path.join(workdir, "model.onnx")
        paddle2onnx.export(saved + ".json", saved + ".pdiparams", save_file=out,
                           opset_version=opset, auto_upgrade_opset=False)
        return out
    raise SystemExit(f"unknown paddle exporter {exporter!r}")
'''


@register_template("paddle")
def paddle_template(case: Case) -> str:
    """Paddle: the call wrapper inline, or the builder's own source embedded."""
    from . import registry

    builder = case.spec.get("builder")
    src = "BUILDER = None\n"
    if builder and not case.spec.get("call"):
        registry.load_builders("paddle")
        fn = registry.BUILDERS[("paddle", builder)]
        src = function_source(fn) + f"\n\nBUILDER = {fn.__name__}\n"
    return _PADDLE.replace("{{BUILDER_SOURCE}}", src)
