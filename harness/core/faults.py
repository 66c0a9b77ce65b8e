"""Harness faults: what goes wrong around a case (a full disk, a broken install), never a verdict on it.

A conformance status says what the exporter or runtime did. When the case could
not be measured because of the machine -- no space left in the temporary
folder, a framework whose import fails although it is installed, a runner that
never started -- the record says so instead (:func:`record_of`: status
``skipped``, stage ``harness``, a message starting ``harness fault:``), and
the controller stops the run with one line and exit code 6 rather than count
it (see ``harness.plugin.summary``).
"""

from __future__ import annotations

import errno
import os

from . import record, status

#: the stage of a harness fault's record
STAGE = "harness"
PREFIX = "harness fault: "
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a full disk or quota, also as native code words it."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            return True
        if any(t in str(e) for t in _DISK_FULL_TEXT):
            return True
    return False


def no_room(path: str, need: int = 1 << 20) -> bool:
    """True when the file system holding ``path`` has less than ``need`` bytes free (a native exporter
    that met a full disk may say only "failed to save the model")."""
    import shutil

    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path or ".").free < need
    except OSError:
        return False


def not_installed(framework: str, exc: BaseException) -> bool:
    """True when ``exc`` says that ``framework``'s own top-level package is absent (a plain skip).

    Anything else raised by importing a framework -- a missing shared library or
    dependency, a ``MemoryError``, a syntax error in a half-written file -- is a
    broken install, which must fail the run, not look like "not installed".
    """
    return isinstance(exc, ModuleNotFoundError) and (exc.name or "") == framework


def describe(exc: BaseException) -> str:
    """One line: the exception's type and message."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:500]}"


def import_failure(framework: str, exc: BaseException) -> tuple[str, str]:
    """(``"missing"`` or ``"broken"``, one-line reason) for a failed import of ``framework``."""
    if not_installed(framework, exc):
        return "missing", f"{framework} is not installed here ({describe(exc)})"
    return "broken", f"{framework} is installed but its import fails ({describe(exc)}): a broken install"


def record_of(case, message: str) -> dict:
    """The record of ``case`` that a harness fault kept from being measured."""
    return record.new(case, status.SKIPPED, stage=STAGE, message=PREFIX + message)


def is_fault(rec: dict) -> bool:
    """True for a record made by :func:`record_of`."""
    return rec.get("stage") == STAGE and rec.get("status") == status.SKIPPED \
        and str(rec.get("message", "")).startswith(PREFIX)
