"""The status taxonomy: every case ends with exactly one of these."""

from __future__ import annotations

PASS = "pass"
MISMATCH = "mismatch"
SHAPE_MISMATCH = "shape-mismatch"
DTYPE_MISMATCH = "dtype-mismatch"
EXPORT_ERROR = "export-error"
CRASH = "crash"
INVALID_MODEL = "invalid-model"
OPSET_NOT_HONORED = "opset-not-honored"
RUNTIME_UNSUPPORTED = "runtime-unsupported"
RUNTIME_ERROR = "runtime-error"
TIMEOUT = "timeout"
SKIPPED = "skipped"
#: the post-export pass raised (the message names the pass)
PASS_ERROR = "pass-error"
#: the post-export pass wrote a model onnx.checker rejects
PASS_INVALID_MODEL = "pass-invalid-model"

#: Every status, in the order reports list them.
ALL = (
    PASS,
    MISMATCH,
    SHAPE_MISMATCH,
    DTYPE_MISMATCH,
    EXPORT_ERROR,
    CRASH,
    INVALID_MODEL,
    OPSET_NOT_HONORED,
    RUNTIME_UNSUPPORTED,
    RUNTIME_ERROR,
    TIMEOUT,
    PASS_ERROR,
    PASS_INVALID_MODEL,
    SKIPPED,
)

#: Statuses that say the exporter or runtime did not conform.
FAILURES = frozenset(ALL) - {PASS, SKIPPED}
