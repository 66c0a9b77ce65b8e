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
  or disagrees with both.

When the runtime under test *is* the reference evaluator, the other runtimes
(:data:`SECOND_OPINIONS`, those installed) run the same exported model instead,
and :func:`decide_many` weighs them: blame is ``runtime`` when every one that
gave a verdict matches the framework, ``exporter`` when every one agrees with
the reference evaluator, and ``undetermined`` only when they disagree (or none
could run it).

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

#: the runtimes asked, in this order, when the runtime under test is the reference evaluator
SECOND_OPINIONS = ("ort", "openvino")


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


def decide_many(verdict: str, stage: str, runtime: str, opinions: dict[str, Opinion]) -> tuple[str, str] | None:
    """``(blame, why)`` from several runtimes' opinions (name -> :class:`Opinion`) on the same model.

    Used when the runtime under test is the reference evaluator: each other
    runtime that ran the exported model is evidence.
    """
    if verdict not in NEEDS_REFERENCE:
        return decide(verdict, stage, runtime, None)
    heard = {n: o for n, o in opinions.items() if not o.problem}
    silent = "; ".join(f"{n} gave no verdict: {o.problem}" for n, o in opinions.items() if o.problem)
    if not heard:
        return status.BLAME_UNDETERMINED, ("the runtime under test is the reference evaluator and no other "
                                           "runtime gave a verdict" + (f" ({silent})" if silent else ""))
    names = ", ".join(sorted(heard))
    if all(o.vs_framework is None for o in heard.values()):
        fails = "cannot run it" if verdict in (status.RUNTIME_ERROR, status.RUNTIME_UNSUPPORTED) else "does not"
        return status.BLAME_RUNTIME, f"{names} match the framework on the same model; {runtime} {fails}"
    if all(o.vs_framework is not None and o.agrees_with_runtime for o in heard.values()):
        return status.BLAME_EXPORTER, (f"{names} agree with {runtime} on the same model and all differ from the "
                                       f"framework (" + "; ".join(f"{n}: {o.vs_framework}" for n, o in
                                                                  sorted(heard.items())) + ")")
    said = "; ".join(f"{n}: {'matches the framework' if o.vs_framework is None else o.vs_framework}"
                     + ("" if o.vs_framework is None else
                        f", {'agrees' if o.agrees_with_runtime else 'disagrees'} with {runtime}")
                     for n, o in sorted(heard.items()))
    return status.BLAME_UNDETERMINED, f"the other runtimes disagree on the same model ({said})"
