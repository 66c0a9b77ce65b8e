"""The bench's bare floor: export + checker + ORT + compare, one case after another, nothing else.

``python -m harness.bench.floor CASES DONE`` runs the cases of ``CASES`` (JSON
lines, one :meth:`harness.core.case.Case.to_dict` each, written by
:mod:`harness.bench.runs`) in this one process and appends a line per case to
``DONE`` (its id, framework, exporter, ``export_s`` and ``wall_s``); the last
line it prints is ``{"counts": {...}}``.

It runs in the interpreter of the cases' framework (the main environment for
Paddle and torch, ``.envs/tensorflow`` and ``.envs/oneflow`` for the others;
see :mod:`harness.isolation.environments`), so it imports only the runner side
of the harness (``harness.core``) and must stay importable on the oldest
declared Python, like the runner itself.

Per model (as the harness caches them: the last ``pipeline.CACHED_MODELS``):
the framework adapter's ``build`` and ``reference`` on the same seeded inputs.
Per case: the registered exporter's ``export`` (the harness's own thin wrapper
over ``paddle.onnx.export``, ``paddle2onnx.export``, ``torch.onnx.export``,
``tf2onnx``, ``oneflow_onnx``), ``onnx.checker`` full check, an ONNX Runtime
session and run, and a comparison. No isolation, no pytest, no records.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter, OrderedDict


def read_cases(path: str) -> list:
    """The cases of a ``CASES`` file (a :meth:`Case.to_dict` per line)."""
    from harness.core.case import Case

    with open(path, encoding="utf-8") as f:
        return [Case.from_dict(json.loads(line)) for line in f if line.strip()]


def run(cases: list, done_file: str | None = None, plugins: tuple[str, ...] = ()) -> dict:
    """Run ``cases`` as the bare loop; a line per case into ``done_file``; return the counts."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from harness.core import registry
    from harness.core.inputs import make_input_sets
    from harness.core.pipeline import CACHED_MODELS

    for fw in sorted({c.framework for c in cases}):
        registry.load_framework(fw, plugins)
    work = tempfile.mkdtemp(prefix="bench-floor-")
    models: OrderedDict = OrderedDict()
    counts: Counter = Counter()
    done = open(done_file, "a", buffering=1) if done_file else None  # noqa: SIM115 - one line per case
    for case in cases:
        print(f"--- case {case.id}", flush=True)  # the last one names the culprit if native code aborts
        t_case, export_s = time.perf_counter(), None
        try:
            fw = registry.FRAMEWORKS[case.framework]
            if case.model_key not in models:
                model = fw.build(case.spec, case.seed)
                xss = make_input_sets(case)
                models[case.model_key] = (model, xss, [list(fw.reference(model, xs)) for xs in xss], {})
                while len(models) > CACHED_MODELS:  # the harness's servers keep as many (an LRU)
                    models.popitem(last=False)
            models.move_to_end(case.model_key)
            model, xss, refs, cache = models[case.model_key]
            t_export = time.perf_counter()
            out = registry.EXPORTERS[(case.framework, case.exporter)].export(model, case, work, cache)
            export_s = time.perf_counter() - t_export
            onnx.checker.check_model(onnx.load(out), full_check=True)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 3
            sess = ort.InferenceSession(out, sess_options=opts, providers=["CPUExecutionProvider"])
            ok = True
            for xs, ref in zip(xss, refs):
                got = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
                ok &= len(got) == len(ref) and all(
                    np.asarray(g).shape == np.asarray(r).shape and np.allclose(g, r, rtol=1e-4, atol=1e-5)
                    for g, r in zip(got, ref))
            counts["pass" if ok else "mismatch"] += 1
        except (Exception, SystemExit):  # noqa: BLE001 - the floor counts, it does not classify
            counts["error"] += 1
        if done is not None:  # as the harness writes a record per case
            done.write(json.dumps({"id": case.id, "framework": case.framework, "exporter": case.exporter,
                                   "export_s": export_s, "wall_s": time.perf_counter() - t_case}) + "\n")
    return {"counts": dict(counts)}  # timings come from the done file


def main(argv: list[str]) -> None:
    """``CASES DONE [PLUGINS_JSON]``: run the floor, print its counts, end without interpreter teardown."""
    plugins = tuple(json.loads(argv[2])) if len(argv) > 2 else ()
    print(json.dumps(run(read_cases(argv[0]), argv[1], plugins)), flush=True)
    os._exit(0)  # like the harness's runner: no teardown of the frameworks' threads


if __name__ == "__main__":
    main(sys.argv[1:])
