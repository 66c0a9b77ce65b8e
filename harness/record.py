"""What a result record is: its fields, how one is made, and how one is checked.

Every finished case produces exactly one record (a plain dict, one JSON line
in the results file). The case runner makes them with :func:`new`, the pytest
side adds where it ran (:data:`RUN_FIELDS`), readers check them with
:func:`problem` before trusting them. Nothing else defines record fields.
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
    # whose bug a failure is (harness.blame): exporter / runtime / pass / undetermined, and why
    "blame": None, "blame_why": "",
}

#: Fields the pytest side adds when it writes the record.
RUN_FIELDS = ("worker", "shard", "outcome", "finished", "expected", "unexpected_pass", "wall_s")

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
