"""The harness's own errors: one root, so that any of them can be caught and reported as one line.

A :class:`HarnessError` is a problem of the harness's input or of this machine (a matrix that
does not load, an environment that cannot be made, a results file that is not one), never a
verdict on an exporter or a runtime. Each subclass keeps the builtin base its callers relied on
(``ValueError``, ``OSError``) beside it.

Two signals are deliberately *not* harness errors, because they carry conformance outcomes
through the pipeline: :class:`harness.runtimes.Unsupported` (a runtime refused the model) and
:class:`harness.passes.PassFailed` (a post-export pass failed).
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error the harness raises about its own input or machine."""


class UsageError(HarnessError):
    """Bad input from a person: a file, a field or an option; reported as one line with a usage exit code."""
