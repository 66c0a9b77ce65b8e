"""The dtype axis: its names, and at run time when a framework's refusal of a dtype is a skip.

A case at a dtype its framework has no CPU kernel for cannot have a reference,
so it has no verdict either: it is recorded as ``skipped`` with the framework's
own message, never dropped and never counted as an exporter failure. Only the
framework's explicit "no kernel for this dtype" errors qualify: each adapter
lists them as regular expressions in its ``dtype_unsupported`` attribute, and
only at a dtype other than float32 (the dtype every entry is known to take),
so a harness bug such as an uncast weight still shows as an error.
"""

from __future__ import annotations

import re

#: The dtype names the harness knows (cases, records, ``report --dtypes``), in report column order.
NAMES = ("float16", "float32", "float64", "int8", "int32", "int64", "bool", "uint8")
#: The dtype every entry takes; a refusal at it is never a skip.
BASE_DTYPE = "float32"


def ordered(names) -> list[str]:
    """``names`` without repeats, in :data:`NAMES` order (names the harness does not know last, by name)."""
    rank = {n: i for i, n in enumerate(NAMES)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(NAMES)), n))


def unsupported_reason(fw, case, message: str) -> str | None:
    """The skip reason when ``message`` is ``fw`` refusing ``case.dtype``, else None.

    ``fw`` is the framework adapter, ``message`` the reference failure's text.
    """
    if case.dtype == BASE_DTYPE:
        return None
    for pattern in fw.dtype_unsupported:
        if re.search(pattern, message):
            return f"{case.framework} cannot run this op at {case.dtype} on {case.device}: {message}"
    return None
