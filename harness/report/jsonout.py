"""support.json: environment, per-kernel rows, conflicts and one compact record per case."""

from __future__ import annotations

import json
from collections import Counter

from .aggregate import DETAIL_CHARS, KernelRow, Summary, dtype_cell

SCHEMA_VERSION = 1
#: Record fields carried into support.json (figures and identity; no logs).
FIELDS = ("id", "framework", "exporter", "device", "kernel", "variant", "opset", "dtype", "status",
          "stage", "message", "max_abs", "max_rel", "tolerance", "model_opset", "shared_key", "declared",
          "expected", "outcome", "export_s", "run_s", "finished", "conflict",
          "runtime", "post_pass", "pass_status", "blame", "blame_why")
SORT = ("framework", "exporter", "device", "kernel", "variant", "dtype", "opset", "id")


def compact(rec: dict) -> dict:
    """The fields of :data:`FIELDS` that the record has, with a bounded message."""
    out = {k: rec[k] for k in FIELDS if k in rec}
    msg = out.get("message")
    if isinstance(msg, str) and len(msg) > DETAIL_CHARS * 2:
        out["message"] = msg[:DETAIL_CHARS * 2] + "…"
    return out


def sort_key(rec: dict) -> tuple:
    """Order of records in support.json."""
    return tuple((0, rec[k]) if isinstance(rec.get(k), int) else (1, str(rec.get(k, ""))) for k in SORT)


def dtype_entry(row: KernelRow) -> dict:
    """One kernel's figures at one dtype (its ``by_dtype`` value)."""
    counts: Counter = Counter()
    for c in row.by_opset.values():
        counts.update(c)
    return {"measured": row.measured(), "tested": row.tested, "passing": row.passing,
            "cell": dtype_cell(row), "counts": dict(sorted(counts.items()))}


def document(records: list[dict], summary: Summary, meta: dict) -> dict:
    """The support.json object."""
    kernels = []
    for g, rows in summary.rows.items():
        per = summary.by_dtype.get(g, {})
        for r in rows:
            kernels.append({"framework": r.framework, "exporter": r.exporter, "device": r.device,
                            "kernel": r.kernel, "shared_key": r.shared_key, "declared": r.declared,
                            "note": r.note, "measured": r.measured(), "tested": r.tested,
                            "passing": r.passing, "status_text": r.status_text() if r.tested or not r.reason
                            else r.reason, "marker": r.marker(),
                            "by_dtype": {d: dtype_entry(k[r.kernel]) for d, k in per.items() if r.kernel in k}})
    return {"schema_version": SCHEMA_VERSION, "environment": meta["environment"],
            "inputs": {"files": meta["files"], "records": len(records), "loaded": meta["n_loaded"],
                       "bad_lines": [str(b) for b in meta["bad"]]},
            "counts": dict(summary.counts), "dtypes": meta["dtypes"], "kernels": kernels,
            "conflicts": meta["conflicts"],
            "records": [compact(r) for r in sorted(records, key=sort_key)]}


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(", ", ": "))


def render(records: list[dict], summary: Summary, meta: dict) -> str:
    """support.json text: sorted keys, stable order, one list item per line (diffable and fast)."""
    doc = document(records, summary, meta)
    parts = []
    for key in sorted(doc):
        value = doc[key]
        if isinstance(value, list) and value:
            text = "[\n  " + ",\n  ".join(_dumps(v) for v in value) + "\n ]"
        else:
            text = _dumps(value)
        parts.append(f" {_dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
