"""Failures grouped by cause: one stable id per distinct bug, derived from one record.

:func:`cause_of` turns a failing record into a :class:`Cause`. It reads
structure before text:

1. whose bug it is (the record's ``blame``; an export error, crash or timeout
   is the exporter's, a model the framework cannot run is the framework's) and
   the project it is addressed to (Paddle2ONNX, ONNX Runtime, onnxsim, ...);
2. the failure's kind, folded over the statuses one bug produces: a
   ``crash`` "please set the opset_version to 13" of one exporter and an
   ``opset-not-honored`` "model declares 13" of its sibling are one kind
   (``needs-opset``); an attribute out of range reads as ``invalid-model``
   from the checker or ``runtime-error`` from the runtime, depending on the
   garbage value: one kind (``attribute``);
3. the ONNX node involved: its op type, from the checker's, runtime's or
   exporter's message or log (``op_type:Constant``, ``OP=ArgMax``,
   ``Conv(11) node``); the node's generated name is a fact, not part of the id;
4. the message template: numbers, addresses, paths, timestamps and generated
   node names replaced, the exception's first line kept;
5. the failure's shape for value mismatches: which output and the numeric
   pattern (special values, precision, wrong values, shape, dtype).

A template that names nothing specific (``IndexError: list index out of
range``, a bare ``SIGABRT``) is qualified by the framework kernel, so two
unrelated bugs behind one generic message stay two causes; value mismatches
always are (no message names their node).

The id is ``<project>-<locus>-<hash>``: the hash covers every part of the
signature, so the same bug gets the same id in every run and every order of
records. Everything here is a pure function of one record, so the pytest
process can key expected failures by cause at verdict time, and old results
files can be grouped after the fact.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from . import status

#: the upstream project an exporter's bugs are filed against (exporters of one converter share it)
PROJECTS: dict[tuple[str, str], str] = {
    ("paddle", "static"): "Paddle2ONNX", ("paddle", "dygraph"): "Paddle2ONNX",
    ("torch", "torchscript"): "torch.onnx (TorchScript)", ("torch", "dynamo"): "torch.onnx (dynamo)",
    ("tensorflow", "function"): "tf2onnx", ("tensorflow", "keras"): "tf2onnx",
    ("oneflow", "graph"): "oneflow-onnx",
}

#: runtimes and passes by the project a bug of theirs is filed against
RUNTIME_PROJECTS = {"ort": "ONNX Runtime", "openvino": "OpenVINO", "reference": "onnx (ReferenceEvaluator)"}
PASS_PROJECTS = {"onnxsim": "onnxsim", "onnxslim": "onnxslim", "onnxoptimizer": "onnxoptimizer"}

#: the part of a fingerprint kept: the first line, this long at most
TEMPLATE_CHARS = 160


@dataclass(frozen=True)
class Cause:
    """One distinct failure cause: its stable ``id``, a ``title`` and the ``facts`` it was derived from."""

    id: str
    title: str
    party: str
    project: str
    kind: str
    op: str
    template: str
    facts: dict = field(default_factory=dict, compare=False, hash=False)

    def as_dict(self) -> dict:
        """The cause as plain JSON data."""
        return {"id": self.id, "title": self.title, "party": self.party, "project": self.project,
                "kind": self.kind, "op": self.op, "template": self.template, "facts": dict(self.facts)}


# -- normalising volatile text ---------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m|\\e\[[0-9;]*m")
_STAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?\s*")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_PATH = re.compile(r"(?<![\w/])(?:/[\w.\-+@]+){2,}/?")
# a number standing alone (1, -3, 0.00971, 7.41e+10), not the digits inside a name (int64, pool_2d)
_NUM = re.compile(r"(?<![\w.])[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?(?![\w])")
_NODE_NAMES = (
    re.compile(r"(node name: )([^)\s,]+)"),
    re.compile(r"(Name: ?')([^']+)"),
    re.compile(r"(Name: )(\S+)"),
    re.compile(r"(node with name ')([^']+)"),
    re.compile(r"(Node ?\()([^)]+)"),
    re.compile(r"(convert failed for name: \"?)([^\"\s]+)"),
    re.compile(r"(Failed to convert node )(\S+)"),
)


def normalise(text: str) -> str:
    """``text`` with what varies between runs of one bug replaced: paths, addresses, numbers, node names."""
    text = _STAMP.sub("", _ANSI.sub("", text))
    text = _PATH.sub("<path>", text)
    text = _HEX.sub("<addr>", text)
    for rx in _NODE_NAMES:
        text = rx.sub(lambda m: m.group(1) + "<node>", text)
    text = _NUM.sub("N", text)
    return re.sub(r"\s+", " ", text).strip()


def node_names(text: str) -> list[str]:
    """The generated node names a message or log mentions, in order, without repeats."""
    out: list[str] = []
    for rx in _NODE_NAMES:
        for m in rx.finditer(text):
            if m.group(2) not in out:
                out.append(m.group(2))
    return out


# -- the ONNX node involved ------------------------------------------------------------------

_OP_PATTERNS = (
    re.compile(r"op_type:\s*(\w+)"),
    re.compile(r"OpType: (\w+)"),
    re.compile(r"schema\(::(\w+):"),
    re.compile(r"No Op registered for (\w+)"),
    re.compile(r"implementation for (\w+)\(\d+\) node"),
    re.compile(r"running (\w+) node"),
    re.compile(r"for operator (\w+)"),
    re.compile(r"\bOp \((\w+)\)"),
    re.compile(r"^OP=(\w+)", re.M),
)


def onnx_op(*texts: str) -> str:
    """The op type of the ONNX node a message (or, failing that, a log) names first, or ''."""
    for text in texts:
        if not text:
            continue
        best = None
        for rx in _OP_PATTERNS:
            m = rx.search(text)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), m.group(1))
        if best:
            return best[1]
    return ""


# -- folds: statuses and messages one bug produces in several forms ---------------------------

#: (pattern over the message, folded template): an attribute out of range reads differently from
#: the checker (invalid-model) and from the runtime (runtime-error), depending on the bad value
_ATTRIBUTE_FOLDS = (
    (re.compile(r"\baxis\b[^.;]*\bnot in (the )?valid range|\baxis must be in \[|"
                r"rank must be greater than axis|\baxis\b[^.;]*out of (the )?range", re.I),
     "out-of-range 'axis' attribute"),
)
#: ops whose only attribute is ``axis``: an inferred shape that disagrees with the declared one on
#: such a node can only come from that attribute (a wrong but in-range axis)
_AXIS_ONLY_OPS = ("Concat", "Flatten", "Softmax", "LogSoftmax", "Hardmax")
_SHAPE_MERGE = re.compile(r"op_type:(%s)\b[^\n]*?Can't merge shape info" % "|".join(_AXIS_ONLY_OPS))
_NEEDS_OPSET = (re.compile(r"set the opset_version to (\d+)"), re.compile(r"model declares (\d+)"))
_GENERIC = re.compile(r"^(\w+(Error|Exception): )?(list index out of range|N|None|'?\w*'?|<path>)?$|"
                      r"^the exporter (called sys\.exit\(N\)|process died with \w+)$|"
                      r"Due to the unsupported operators", re.I)
_HALF = ("float16", "bfloat16")
_SPECIAL = re.compile(r"\b(nan|NaN|inf|Inf|infinity)\b")


def _headline(rec: dict) -> str:
    """The message's first meaningful line, prefixes that only say where the harness saw it dropped."""
    msg = rec.get("message") or ""
    msg = re.sub(r"^(the framework could not run its own model|\w+ (raised|wrote an invalid model)): ", "", msg)
    msg = re.sub(r"^\w+: (?=\w+Error|\[ONNXRuntimeError\])", "", msg)  # "openvino: " before the runtime's error
    # torch.onnx (dynamo) opens with the same "Failed to convert ... step 3/3" for every failure; its
    # exception summary says which
    summary = re.search(r"## Exception summary\s*\n\s*(?:<class '[\w.]*?(\w+)'>)?(.+)", msg)
    if summary:
        return f"{summary.group(1) or ''}{summary.group(2)}".strip()
    first = msg.strip().splitlines()[0] if msg.strip() else ""
    return first


#: "has unsupported type: tensor(int32)": one bug (an op written for a type it does not take) at every
#: such type; the record's dtype says which
_UNSUPPORTED_TYPE = re.compile(r"(unsupported type:? )tensor\(\w+\)")


def _template(rec: dict) -> str:
    text = _UNSUPPORTED_TYPE.sub(r"\1tensor(<type>)", normalise(_headline(rec)))
    return text[:TEMPLATE_CHARS]


def _values_pattern(rec: dict) -> tuple[str, str]:
    """(output, pattern) of a value, shape or dtype mismatch."""
    msg = rec.get("message") or ""
    st = rec["status"]
    if st == status.PASS_CHANGED_RESULT:
        st = rec.get("pass_status") or st
    m = re.search(r"output (\d+)", msg)
    out = m.group(1) if m else ""
    if st == status.SHAPE_MISMATCH:
        return out, "shape" if m else "number of outputs"
    if st == status.DTYPE_MISMATCH:
        d = re.search(r"dtype (\w+), reference (\w+)", msg)
        return out, f"dtype {d.group(1)} instead of {d.group(2)}" if d else "dtype"
    if _SPECIAL.search(msg.split(" under rule")[0]):
        return out, "special values"
    rel = rec.get("max_rel")
    if isinstance(rel, (int, float)) and rel == rel and rel < 0.05:
        return out, "precision"
    return out, "wrong values"


# -- whose bug, addressed to whom ------------------------------------------------------------

def _party(rec: dict, kind: str) -> str:
    if kind in ("needs-opset", "attribute"):
        return status.BLAME_EXPORTER
    if rec.get("stage") == "reference":
        return "framework"
    return rec.get("blame") or status.BLAME_EXPORTER


def project_of(rec: dict, party: str) -> str:
    """Whom a cause of ``party`` in ``rec`` is addressed to."""
    if party == status.BLAME_RUNTIME:
        return RUNTIME_PROJECTS.get(rec.get("runtime", "ort"), rec.get("runtime", "ort"))
    if party == status.BLAME_PASS:
        return PASS_PROJECTS.get(rec.get("post_pass", ""), rec.get("post_pass", ""))
    if party == "framework":
        return rec["framework"]
    return PROJECTS.get((rec["framework"], rec["exporter"]), f"{rec['framework']}/{rec['exporter']}")


def _kind(rec: dict, msg: str) -> tuple[str, str]:
    """(kind, template) of a failing record: the folded status class and the normalised message."""
    st = rec["status"]
    for rx in _NEEDS_OPSET:
        m = rx.search(msg)
        if m and st in (status.CRASH, status.EXPORT_ERROR, status.OPSET_NOT_HONORED):
            return "needs-opset", f"the model needs opset {m.group(1)}"
    if st in (status.INVALID_MODEL, status.RUNTIME_ERROR, status.PASS_INVALID_MODEL):
        for rx, folded in _ATTRIBUTE_FOLDS:
            if rx.search(msg):
                return "attribute", folded
        if _SHAPE_MERGE.search(msg):
            return "attribute", "out-of-range 'axis' attribute"
    if st == status.OPSET_NOT_HONORED:
        return "needs-opset", f"the model declares opset {rec.get('model_opset')}"
    if st in (status.MISMATCH, status.SHAPE_MISMATCH, status.DTYPE_MISMATCH) or (
            st == status.PASS_CHANGED_RESULT and rec.get("pass_status") in (
                status.MISMATCH, status.SHAPE_MISMATCH, status.DTYPE_MISMATCH)):
        out, pattern = _values_pattern(rec)
        return "values", f"output {out}: {pattern}" if out else pattern
    kinds = {status.EXPORT_ERROR: "export", status.CRASH: "crash", status.TIMEOUT: "timeout",
             status.INVALID_MODEL: "model", status.RUNTIME_ERROR: "runtime",
             status.RUNTIME_UNSUPPORTED: "unsupported", status.PASS_ERROR: "pass",
             status.PASS_INVALID_MODEL: "model", status.PASS_CHANGED_RESULT: "pass"}
    if st == status.TIMEOUT:
        return "timeout", f"no result at stage {rec.get('stage') or 'unknown'}"
    return kinds.get(st, st), _template(rec)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:32] or "x"


def cause_of(rec: dict) -> Cause | None:
    """The cause of a failing record (None for a pass or a skip)."""
    st = rec.get("status")
    if st not in status.FAILURES:
        return None
    msg = rec.get("message") or ""
    log = rec.get("log") or ""
    kind, template = _kind(rec, msg)
    party = _party(rec, kind)
    project = project_of(rec, party)
    op = "" if kind in ("values", "needs-opset") else onnx_op(msg, log)
    generic = kind in ("values", "needs-opset", "timeout") or (not op and bool(_GENERIC.search(template)))
    # the kernel tells apart what a generic message or a value mismatch does not
    kernel = rec["kernel"] if generic else ""
    where = ""
    if party in (status.BLAME_RUNTIME, status.BLAME_UNDETERMINED):
        where = rec.get("runtime", "ort")
    dtype = rec.get("dtype", "") if kind in ("unsupported", "values") and party == status.BLAME_RUNTIME else ""
    if kind == "values" and "precision" in template and rec.get("dtype") in _HALF:
        dtype = "half"  # a half type's rounding is its own cause; the same small error at float32 and
        # float64 is one (e.g. an attribute written rounded)
    if party == status.BLAME_PASS:
        where = rec.get("post_pass", "")
    signature = [party, project, kind, op, kernel, template, where, dtype]
    digest = hashlib.sha1(json.dumps(signature).encode()).hexdigest()[:8]
    locus = op or kernel or kind
    cid = f"{_slug(project)}-{_slug(locus)}-{digest}"
    facts = {"blame": rec.get("blame"), "stage": rec.get("stage", ""), "status": st,
             "op_type": op, "kernel": kernel, "runtime": where if party != status.BLAME_PASS else "",
             "post_pass": where if party == status.BLAME_PASS else "", "dtype": dtype,
             "nodes": node_names(msg + "\n" + log)[:3]}
    return Cause(cid, _title(project, party, kind, op, kernel, template, where), party, project, kind, op,
                 template, {k: v for k, v in facts.items() if v})


def _title(project: str, party: str, kind: str, op: str, kernel: str, template: str, where: str) -> str:
    """A one-line title in the addressee's vocabulary."""
    subject = f"{op} node" if op else f"`{kernel}`" if kernel else ""
    if kind == "needs-opset":
        return f"{project}: `{kernel}` cannot be exported below the opset it needs ({template[10:]})"
    if kind == "attribute":
        return f"{project} writes {'a ' + op if op else 'a'} node with an {template}"
    if kind == "values":
        return f"{project}: exported `{kernel}` computes wrong results ({template})"
    if kind == "model":
        return f"{project} writes an invalid {subject or 'model'}: {template}"
    if kind in ("export", "crash"):
        verb = "aborts" if kind == "crash" else "fails"
        return f"{project} {verb} exporting{' ' + subject if subject else ''}: {template}"
    if party == status.BLAME_RUNTIME:
        return f"{project} cannot run {subject or 'the model'}: {template}"
    if kind == "timeout":
        return f"{project}: `{kernel}` times out ({template})"
    tail = f" (undetermined on {where})" if party == status.BLAME_UNDETERMINED else ""
    return f"{project}: {subject or kind} fails: {template}{tail}"


# -- grouping ------------------------------------------------------------------------------

@dataclass
class Group:
    """The failing records of one cause."""

    cause: Cause
    records: list = field(default_factory=list)

    @property
    def reach(self) -> int:
        """How many failing records the cause covers."""
        return len(self.records)

    def scope(self, key: str) -> list:
        """The distinct values of record field ``key`` among the cause's records, sorted."""
        return sorted({r.get(key) for r in self.records if r.get(key) not in (None, "")}, key=str)

    def smallest(self) -> dict:
        """The smallest case of the cause: fewest nodes, smallest tensors, float32 where possible, lowest opset.

        Nodes and tensors are measured by the sizes of the repro bundle's
        ``model.onnx`` and ``inputs.npz`` in whole KiB when it has one (else by
        the number of op types alone), so a few bytes do not outweigh float32;
        a case with a bundle wins over one without. Ties are broken by id, so
        the choice is stable under reordering.
        """
        def size(r: dict):
            model, inputs = _bundle_sizes(r.get("repro_bundle") or "")
            return (len(r.get("op_types") or ()) or 99, model, inputs, r.get("dtype") != "float32",
                    r.get("opset", 0), r.get("variant") != "default", r["id"])
        return min(self.records, key=size)


_NO_FILE = 1 << 62


def _bundle_sizes(bundle: str) -> tuple[int, int]:
    """KiB of a repro bundle's exported model and inputs (huge when absent: a bundle wins)."""
    import os

    out = []
    for name in ("model.onnx", "inputs.npz"):
        try:
            out.append(os.path.getsize(os.path.join(bundle, name)) // 1024 if bundle else _NO_FILE)
        except OSError:
            out.append(_NO_FILE)
    return out[0], out[1]


def group(records) -> list[Group]:
    """The failing records grouped by cause, widest cause first (ties by id).

    Every failing record lands in exactly one group; passes and skips in none.
    """
    groups: dict[str, Group] = {}
    for r in records:
        c = cause_of(r)
        if c is None:
            continue
        groups.setdefault(c.id, Group(c)).records.append(r)
    for g in groups.values():
        g.records.sort(key=lambda r: (r["id"], r.get("runtime", ""), r.get("post_pass", "")))
    return sorted(groups.values(), key=lambda g: (-g.reach, g.cause.id))
