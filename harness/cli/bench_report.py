"""Time the report writers on synthetic records (deterministic, seed 0).

Generates --records records spread over frameworks, exporters, kernels,
variants, dtypes and opsets 7~21 with a fixed mix of statuses, writes them to
a temporary JSONL file, then times loading and each output.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from harness.core import status as st
from harness.report.build import build_reports
from harness.report.inputs import load

HELP = "benchmark report generation on N synthetic records"

_FAIL_MIX = (st.MISMATCH, st.EXPORT_ERROR, st.CRASH, st.INVALID_MODEL, st.OPSET_NOT_HONORED,
             st.RUNTIME_UNSUPPORTED, st.SHAPE_MISMATCH, st.TIMEOUT)


def synthetic(n: int, seed: int = 0):
    """Yield ``n`` deterministic records shaped like the pipeline's."""
    rng = random.Random(seed)
    groups = [("paddle", "dygraph"), ("paddle", "static"), ("torch", "dynamo"), ("torch", "torchscript")]
    opsets, dtypes, variants = range(7, 22), ("float32", "float16"), ("basic", "strided", "big")
    per_kernel = len(groups) * len(opsets) * len(dtypes) * len(variants)
    for i in range(n):
        k, rest = divmod(i, per_kernel)
        g, rest = divmod(rest, len(opsets) * len(dtypes) * len(variants))
        v, rest = divmod(rest, len(opsets) * len(dtypes))
        d, o = divmod(rest, len(opsets))
        fw, ex = groups[g]
        kernel, opset = f"op{k:04d}", opsets[o]
        r = rng.random()
        status = st.PASS if r < 0.8 else st.SKIPPED if r < 0.83 else _FAIL_MIX[rng.randrange(len(_FAIL_MIX))]
        rec = {"id": f"{fw}-{ex}-{kernel}-{variants[v]}-opset{opset}-{dtypes[d]}-cpu", "framework": fw,
               "exporter": ex, "kernel": kernel, "variant": variants[v], "opset": opset, "dtype": dtypes[d],
               "device": "cpu", "status": status, "shared_key": kernel, "stage": "",
               "declared": {"range": "7~17", "note": "", "in_range": opset <= 17},
               "message": "" if status == st.PASS else f"synthetic {status} <b>#{i}</b> & more text " * 3,
               "max_abs": rng.random() if status == st.MISMATCH else 0.0, "max_rel": None,
               "tolerance": "allclose", "finished": f"2026-01-01T00:{i // 6000 % 60:02d}:00+00:00"}
        yield rec


def add_arguments(p) -> None:
    """Arguments of ``python -m harness bench-report``."""
    p.add_argument("--records", type=int, default=100_000, help="number of synthetic records (default 100000)")
    p.add_argument("--out", default=None, help="where to write the reports (default: a temporary folder)")


def run(args) -> int:
    """Generate, then time each step; print seconds per output."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        src = Path(tmp) / "synthetic.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for rec in synthetic(args.records):
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        t, c = time.perf_counter(), time.process_time()
        loaded = load([src])
        timings = {"load": (time.perf_counter() - t, time.process_time() - c)}
        out = Path(args.out) if args.out else Path(tmp) / "reports"
        paths = build_reports(loaded, out, timings=timings)
        print(f"{len(loaded.records)} synthetic records ({src.stat().st_size / 1e6:.1f} MB JSONL)")
        print(f"  {'step':<14} {'wall s':>8} {'CPU s':>8} {'size MB':>8}")
        sizes = {p.name: p.stat().st_size / 1e6 for p in paths}
        for name, (wall, cpu) in timings.items():
            size = f"{sizes[name]:8.2f}" if name in sizes else ""
            print(f"  {name:<14} {wall:8.2f} {cpu:8.2f} {size}")
        print(f"  {'total':<14} {sum(w for w, _ in timings.values()):8.2f} "
              f"{sum(c for _, c in timings.values()):8.2f}")
    return 0
