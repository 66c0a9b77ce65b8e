"""What a result record is: its fields, how one is made, and how one is checked.

Every finished case produces exactly one record (a plain dict, one JSON line
in the results file). The case runner makes them with :func:`new`, the pytest
side stamps where and how it ran (:func:`stamp`, :data:`RUN_FIELDS`), readers
check them with :func:`problem` before trusting them.

:data:`CATALOGUE` names every field a record may carry, whoever adds it; a field
that is not there is a harness bug (:func:`unknown_fields`, checked by the tests
on every record a run writes). To add a field, add it here first.
"""

from __future__ import annotations

import re
from typing import Any

from . import status

#: The fields every record carries, with their default values.
FIELDS: dict[str, Any] = {
    "id": "", "framework": "", "kernel": "", "variant": "", "exporter": "", "opset": 0,
    "dtype": "", "device": "", "shared_key": "", "declared": {}, "tolerance": None,
    "status": "", "message": "", "stage": "", "max_abs": None, "max_rel": None,
    "export_s": None, "run_s": None, "ref_s": None, "op_types": [],
    "model_opset": None, "provider": None, "provider_fallback": False,
    # whose bug a failure is (harness.core.blame): exporter / runtime / pass / undetermined, and why
    "blame": None, "blame_why": "",
}

#: Fields a case's axes add (``Case.record_fields``) and the special-value profile.
CASE_FIELDS = {
    "runtime": "the runtime that ran the model (ort unless the case names another)",
    "post_pass": "the post-export pass applied before the runtime (none by default)",
    "special_values": "true when NaN/Inf/extremes were mixed into the inputs (--special-values)",
}

#: Fields the pipeline adds only where they apply.
MEASURED_FIELDS = {
    "log": "the last lines of the exporter's or runtime's own output, for a failure",
    "failing_input": "which input set failed first (several input sets per case)",
    "pass_s": "seconds the post-export pass took",
    "blame_s": "seconds the blame's second opinion (the reference evaluator, time-boxed) took",
    "pass_status": "the verdict of the model after the pass, when the case is pass-changed-result",
    "export_reused": "true when the export was reused from an earlier case of the same model and opset",
    "repro_bundle": "where the failing case's repro bundle is",
    "repro_bundle_error": "why no repro bundle could be written",
    # whole models (harness/report/models.py)
    "top1_agree": "a classifier: the share of samples whose arg-max class the runtime and the framework agree on",
    "model_mb": "the exported model's size in MB",
    # runtimes in their own environments (harness/runtimes/_remote.py)
    "prepare_s": "seconds the runtime's own preparation (conversion, compilation) took",
    "exec_s": "seconds the runtime's runs took",
    "runtime_load_s": "seconds the first case of a fresh runtime server spent importing the runtime",
    "prepare_reused": "true when the runtime reused a model prepared for an earlier case",
}

#: Fields the pytest side adds when it writes the record (:func:`stamp`).
RUN_FIELDS = ("worker", "shard", "outcome", "finished", "expected", "unexpected_pass", "wall_s", "retried")

#: Fields of a property-mode summary record (``pytest --explore``, one record per entry).
EXPLORE_FIELDS = ("mode", "case_id", "matrix", "explore", "minimal_example", "replay", "search_error")

#: Every field a record may carry.
CATALOGUE = frozenset(FIELDS) | frozenset(CASE_FIELDS) | frozenset(MEASURED_FIELDS) | frozenset(RUN_FIELDS) | \
    frozenset(EXPLORE_FIELDS)

#: Fields a reader cannot do without.
REQUIRED = ("id", "status", "framework", "kernel", "exporter", "opset")

_DEVICE = re.compile(r"^(cpu|cuda:\d+)$")


def new(case, st: str, **fields: Any) -> dict:
    """A record of ``case`` with status ``st``; ``fields`` set or add the measured values."""
    if st not in status.ALL:
        raise ValueError(f"unknown status {st!r}")
    rec = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
           for k, v in FIELDS.items()}
    rec.update(id=case.id, framework=case.framework, kernel=case.kernel, variant=case.variant,
               exporter=case.exporter, opset=case.opset, dtype=case.dtype, device=case.device,
               shared_key=case.shared_key, declared=case.declared,
               tolerance=case.tolerance.get("name"), status=st)
    rec.update(case.record_fields())  # the axes added after the first records (runtime, pass)
    if case.spec.get("special_values"):
        rec["special_values"] = True
    if case.spec.get("whole_model"):  # a whole network (cases/models/, a user model): the model tables
        rec["whole_model"] = True
    rec.update(fields)
    return rec


def stamp(rec: dict, **run: Any) -> dict:
    """Add the pytest side's :data:`RUN_FIELDS` to ``rec`` (refusing any other name); return it."""
    bad = sorted(set(run) - set(RUN_FIELDS))
    if bad:
        raise KeyError(f"not a run field: {', '.join(bad)} (see harness.core.record.RUN_FIELDS)")
    rec.update(run)
    return rec


def unknown_fields(rec: dict) -> list[str]:
    """The fields of ``rec`` that :data:`CATALOGUE` does not name (a harness bug when not empty)."""
    return sorted(k for k in rec if k not in CATALOGUE)


def problem(rec: Any) -> str | None:
    """Why ``rec`` is not a valid result record, or None when it is."""
    if not isinstance(rec, dict):
        return "a record must be a JSON object"
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        return f"record lacks field(s) {', '.join(missing)}"
    for key in ("id", "framework", "kernel", "exporter"):
        if not isinstance(rec[key], str) or not rec[key]:
            return f"field {key!r} must be a non-empty string, not {rec[key]!r}"
    if rec["status"] not in status.ALL:
        return f"unknown status {rec['status']!r} (known: {', '.join(status.ALL)})"
    if not isinstance(rec["opset"], int) or isinstance(rec["opset"], bool) or rec["opset"] < 1:
        return f"field 'opset' must be a positive integer, not {rec['opset']!r}"
    if "dtype" in rec and not isinstance(rec["dtype"], str):
        return f"field 'dtype' must be a string, not {rec['dtype']!r}"
    if rec.get("blame") is not None and rec["blame"] not in status.BLAMES:
        return f"unknown blame {rec['blame']!r} (known: {', '.join(status.BLAMES)})"
    if "device" in rec and not (isinstance(rec["device"], str) and _DEVICE.match(rec["device"])):
        return f"field 'device' must be 'cpu' or 'cuda:N', not {rec['device']!r}"
    return None
