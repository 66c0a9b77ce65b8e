"""Whose bug a failure is: the exporter's, the runtime's, or the post-export pass's.

A non-pass verdict says *that* a runtime's output differs from the
framework's, not who is wrong. The pipeline asks a second opinion, the ONNX
reference evaluator (the spec's semantics in plain Python), on the exported
model, and :func:`decide` turns what it measured into the record's ``blame``
and ``blame_why``:

* ``exporter``: the graph itself is wrong: the reference evaluator agrees
  with the runtime and both differ from the framework (and, without running
  anything, ``invalid-model`` and ``opset-not-honored``: the exporter wrote them);
* ``runtime``: the reference evaluator agrees with the framework, so the graph
  is right and the runtime computes it wrongly (or cannot load it);
* ``pass``: only the passed model fails (``pass-*`` statuses);
* ``undetermined``, with why: the reference evaluator could not run the model,
  is the runtime under test, or disagrees with both.

Cases with no model (export errors, crashes, timeouts, skips) get no blame.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import status

#: verdicts whose blame needs the reference evaluator's opinion
NEEDS_REFERENCE = frozenset({status.MISMATCH, status.SHAPE_MISMATCH, status.DTYPE_MISMATCH,
                             status.RUNTIME_ERROR, status.RUNTIME_UNSUPPORTED})

#: the runtime asked for the second opinion
REFERENCE = "reference"


@dataclass
class Opinion:
    """What the reference evaluator said about the exported model.

    ``problem`` is why it gave no verdict (it raised, lacks an op, ran out of
    time); else ``vs_framework`` compares it with the framework on the input
    set where the runtime failed (None: it agrees on every set), and
    ``vs_runtime`` with the runtime's output there (None: the runtime gave none).
    """

    problem: str | None = None
    vs_framework: str | None = None
    vs_runtime: str | None = None
    agrees_with_runtime: bool = False


def decide(verdict: str, stage: str, runtime: str, opinion: Opinion | None) -> tuple[str, str] | None:
    """``(blame, why)`` for a case with status ``verdict``, or None when it gets no blame.

    ``opinion`` is the reference evaluator's (None when it was not asked:
    statuses outside :data:`NEEDS_REFERENCE`, or the runtime under test is the
    reference evaluator).
    """
    if verdict in status.PASS_FAILURES:
        return status.BLAME_PASS, "only the model after the post-export pass fails"
    if verdict == status.OPSET_NOT_HONORED:
        return status.BLAME_EXPORTER, "the exporter wrote another opset than the one requested"
    if verdict == status.INVALID_MODEL:
        return status.BLAME_EXPORTER, ("onnx.checker rejects the exported model" if stage == "checker"
                                       else "the exported file is not a readable ONNX model")
    if verdict not in NEEDS_REFERENCE:
        return None
    if runtime == REFERENCE:
        return status.BLAME_UNDETERMINED, "the runtime under test is the reference evaluator: no second opinion"
    if opinion is None:
        return status.BLAME_UNDETERMINED, "the reference evaluator was not asked"
    if opinion.problem:
        return status.BLAME_UNDETERMINED, f"the reference evaluator gave no verdict: {opinion.problem}"
    if opinion.vs_framework is None:
        fails = "cannot run it" if verdict in (status.RUNTIME_ERROR, status.RUNTIME_UNSUPPORTED) else "does not"
        return status.BLAME_RUNTIME, f"the reference evaluator matches the framework; {runtime} {fails}"
    if opinion.agrees_with_runtime:
        return status.BLAME_EXPORTER, (f"the reference evaluator agrees with {runtime} ({opinion.vs_runtime}) "
                                       f"and both differ from the framework ({opinion.vs_framework})")
    if opinion.vs_runtime is None:
        return status.BLAME_UNDETERMINED, (f"the reference evaluator differs from the framework "
                                           f"({opinion.vs_framework}) and {runtime} gave no output")
    return status.BLAME_UNDETERMINED, (f"the reference evaluator differs from the framework "
                                       f"({opinion.vs_framework}) and from {runtime} ({opinion.vs_runtime})")
