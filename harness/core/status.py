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
#: the passed model fails (any non-pass verdict) where the exported model passes on the same runtime;
#: the record's ``pass_status`` keeps the passed model's own verdict
PASS_CHANGED_RESULT = "pass-changed-result"
#: the harness refused to judge the case: its reference is degenerate (constant, near zero, NaN/Inf,
#: the same for different inputs), so no comparison could show anything. Not a conformance verdict:
#: no expected failure covers it, and the case fails until its entry draws meaningful weights.
HARNESS_ERROR = "harness-error"

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
    PASS_CHANGED_RESULT,
    HARNESS_ERROR,
    SKIPPED,
)

#: Statuses that say the exporter or runtime did not conform.
FAILURES = frozenset(ALL) - {PASS, SKIPPED, HARNESS_ERROR}

#: Statuses that name the post-export pass as the one at fault.
PASS_FAILURES = frozenset({PASS_ERROR, PASS_INVALID_MODEL, PASS_CHANGED_RESULT})

#: Whose bug a failure is (the record's ``blame``), see :mod:`harness.core.blame`.
BLAME_EXPORTER = "exporter"
BLAME_RUNTIME = "runtime"
BLAME_PASS = "pass"
BLAME_UNDETERMINED = "undetermined"
BLAMES = (BLAME_EXPORTER, BLAME_RUNTIME, BLAME_PASS, BLAME_UNDETERMINED)
