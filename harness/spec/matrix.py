"""Load, validate and expand the YAML matrices of ``cases/`` into :class:`Case` objects.

Expansion happens here and only here: kernel x variant x opset x dtype x
exporter x device. Every problem in a file is reported as one
:class:`~harness.spec.yamlsrc.MatrixError` naming the file, the line and the field.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from harness.core import registry, tolerance
from . import derived as derived_forms, schema
from harness.core.case import Case
from .yamlsrc import MatrixError, SourcedDoc, load_yaml

#: Lowest opset tested: paddle2onnx accepts 7 and up, and ONNX Runtime
#: implements the default domain from opset 7.
TESTABLE_MIN = 7
BELOW_MIN_REASON = "below opset 7: paddle2onnx and ONNX Runtime support opset 7 and up"

#: The dtype every entry runs at every opset; the others run at the ends of the range by default.
BASE_DTYPE = "float32"
DTYPE_ENDS_REASON = ("dtypes other than float32 run at the lowest and highest opset of each exporter "
                     "(keeps the default run short); --opsets full runs them all")

_RANGE = re.compile(r"^\s*(\d+)\s*~\s*(\d+)\s*$")


@dataclass(frozen=True)
class Scope:
    """Which slice of the matrix to expand (from command-line options)."""

    opsets: str = "declared"  # "declared": table range only; "full": every testable opset
    frameworks: tuple[str, ...] = ()
    exporters: tuple[str, ...] = ()
    devices: tuple[str, ...] = ("cpu",)
    smoke: bool = False
    #: "fixed": the variants written in the matrices; "derived": plus ``cases/derived/`` (harness.spec.derived)
    forms: str = "fixed"


@dataclass
class Row:
    """One kernel row of a matrix, kept for reports even when nothing runs."""

    framework: str
    kernel: str
    declared: str
    note: str
    unavailable: str | None
    shared_key: str
    source: str


@dataclass
class Matrix:
    """The expanded matrix: cases to run, rows for reports, and opsets left out."""

    cases: list[Case] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    #: (framework, kernel, opsets text, reason) for every opset not tested
    skipped_opsets: list[tuple[str, str, str, str]] = field(default_factory=list)
    plugins: tuple[str, ...] = ()
    #: ``call:`` target -> ``file:line`` of the first entry field naming it (for errors about the target)
    call_sources: dict[str, str] = field(default_factory=dict)
    #: ``framework/exporter`` -> ``file:line`` of the ``exporters:`` item naming it (checked in the runner)
    exporter_sources: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def testable_max_opset() -> int:
    """Highest opset that both the installed onnx and onnxruntime handle."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    top = onnx.defs.onnx_opset_version()
    info = helper.make_tensor_value_info
    for opset in range(top, TESTABLE_MIN - 1, -1):
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])], "probe",
            [info("x", TensorProto.FLOAT, [1])], [info("y", TensorProto.FLOAT, [1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:  # noqa: BLE001 - any refusal means "not this opset"
            continue
    return TESTABLE_MIN


def parse_range(text: str, doc: SourcedDoc, at: tuple) -> tuple[int, int]:
    """Parse a table range such as ``1~12`` or ``7 ~ 12``."""
    m = _RANGE.match(str(text))
    if not m:
        raise MatrixError(doc.path, doc.line_of(at), _dotted(doc, at),
                          f"opset range {text!r} is not of the form 'LOW~HIGH'")
    lo, hi = int(m.group(1)), int(m.group(2))
    if lo < 1 or lo > hi:
        raise MatrixError(doc.path, doc.line_of(at), _dotted(doc, at),
                          f"impossible opset range {text!r} (need 1 <= LOW <= HIGH)")
    return lo, hi


def format_opsets(opsets: list[int]) -> str:
    """``[7, 8, 9, 11]`` -> ``'7~9, 11'``."""
    out, run = [], []
    for o in sorted(set(opsets)):
        if run and o != run[-1] + 1:
            out.append(_fmt_run(run))
            run = []
        run.append(o)
    if run:
        out.append(_fmt_run(run))
    return ", ".join(out)


def _fmt_run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}~{run[-1]}"


def _dotted(doc: SourcedDoc, at: tuple) -> str:
    parts = []
    data = doc.data
    for key in at:
        if isinstance(key, int) and isinstance(data, list) and key < len(data) \
                and isinstance(data[key], dict) and _printable_name(data[key].get("kernel")):
            parts.append(f"[{data[key]['kernel']}]")
        else:
            parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            data = None
    return "".join(parts).lstrip(".") or "<root>"


def _printable_name(name) -> bool:
    """Whether ``name`` may stand in an error line as given (a bad kernel name is shown by its index)."""
    return isinstance(name, str) and 0 < len(name) <= 48 and name.isascii() and name.replace("_", "a").isalnum()


def validate(doc: SourcedDoc, json_schema: dict) -> None:
    """Validate ``doc`` against ``json_schema``; raise the first error as a MatrixError."""
    if json_schema.get("type") == "object" and not isinstance(doc.data, dict):
        keys = ", ".join(f"{k}:" for k in json_schema.get("required", ()))
        got = "the file is empty" if doc.data is None else f"the file holds a {_kind(doc.data)}"
        raise MatrixError(doc.path, doc.line_of(()), "<file>", f"{got}; expected a mapping with the keys {keys}")
    validator = jsonschema.Draft202012Validator(json_schema)
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if not errors:
        return
    err = min(errors, key=lambda e: doc.line_of(tuple(e.absolute_path)) or 0)
    at = tuple(err.absolute_path)
    message = err.message
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            at = at + (extra[0],)
            message = f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})"
    if "propertyNames" in err.schema_path:  # at the line of the bad name (the field stays its mapping's)
        raise MatrixError(doc.path, doc.line_of(at + (err.instance,)), _dotted(doc, at), f"name {message}")
    raise MatrixError(doc.path, doc.line_of(at), _dotted(doc, at), message)


def _kind(value) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__)


def load_tolerances(path: str | Path) -> tuple[dict, dict]:
    """Return (rules by name, default rule name by dtype) from ``tolerances.yaml``."""
    doc = load_yaml(path)
    validate(doc, schema.TOLERANCES)
    rules = doc.data["rules"]
    for name, rule in rules.items():
        kind = rule["kind"]
        if kind not in tolerance.KINDS:
            raise MatrixError(doc.path, doc.line_of(("rules", name, "kind")), f"rules.{name}.kind",
                              f"unknown rule kind {kind!r} (known: {', '.join(tolerance.KINDS)})")
        for p in tolerance.REQUIRED_PARAMS[kind]:
            value = rule.get(p)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                hint = ""
                if isinstance(value, str):
                    hint = (f" (got {value!r}: YAML reads exponents without a dot as text; "
                            f"write e.g. 1.0e-3)")
                raise MatrixError(doc.path, doc.line_of(("rules", name, p)) or doc.line_of(("rules", name)),
                                  f"rules.{name}.{p}", f"rule kind {kind!r} needs a number {p!r}{hint}")
            _check_bound(doc, name, kind, p, value)
        for p in ("low", "high"):
            if kind == "range" and p in rule:
                value = rule[p]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
                    raise MatrixError(doc.path, doc.line_of(("rules", name, p)), f"rules.{name}.{p}",
                                      f"rule kind 'range' needs a number {p!r} (.inf for no bound), not {value!r}")
        if kind == "range" and rule.get("low", -math.inf) > rule.get("high", math.inf):
            raise MatrixError(doc.path, doc.line_of(("rules", name, "low")), f"rules.{name}.low",
                              f"low {rule['low']} is above high {rule['high']}: no value could pass")
    for dtype, name in doc.data["defaults"].items():
        if name not in rules:
            raise MatrixError(doc.path, doc.line_of(("defaults", dtype)), f"defaults.{dtype}",
                              f"unknown tolerance rule {name!r}")
    return {n: {"name": n, **r} for n, r in rules.items()}, dict(doc.data["defaults"])


def _check_bound(doc: SourcedDoc, name: str, kind: str, param: str, value: float) -> None:
    """A closeness bound is finite and not negative (and, under ``abs-or-rel``'s strict ``<``, above 0).

    NaN fails every comparison (identical outputs would be a mismatch), a negative bound
    likewise, and ``.inf`` lets any wrong value pass.
    """
    strict = kind == "abs-or-rel"
    if math.isnan(value):
        why = "NaN compares false with everything: identical outputs would be a mismatch"
    elif math.isinf(value):
        why = "an infinite bound lets any wrong value pass"
    elif value < 0:
        why = "a negative bound fails even identical outputs"
    elif strict and value == 0:
        why = "abs-or-rel passes when the error is below the bound: 0 fails even identical outputs"
    else:
        return
    need = "a finite number above 0" if strict else "a finite number, 0 or above"
    raise MatrixError(doc.path, doc.line_of(("rules", name, param)), f"rules.{name}.{param}",
                      f"{value!r}: give {need} ({why})")


@dataclass(frozen=True)
class DtypePolicy:
    """What ``tolerances.yaml`` says beyond one rule per dtype.

    ``coarse``: dtype -> the rule that replaces an entry's closeness rule at that
    dtype (float16); ``sets``: named dtype lists an entry gives as ``dtypes: NAME``.
    """

    coarse: dict = field(default_factory=dict)
    sets: dict = field(default_factory=dict)


def load_dtype_policy(path: str | Path) -> DtypePolicy:
    """Read the ``coarse`` and ``dtype_sets`` sections of ``tolerances.yaml``."""
    doc = load_yaml(path)
    validate(doc, schema.TOLERANCES)
    rules = doc.data["rules"]
    coarse = dict(doc.data.get("coarse") or {})
    for dtype, name in coarse.items():
        if name not in rules:
            raise MatrixError(doc.path, doc.line_of(("coarse", dtype)), f"coarse.{dtype}",
                              f"unknown tolerance rule {name!r}")
    return DtypePolicy(coarse, {k: list(v) for k, v in (doc.data.get("dtype_sets") or {}).items()})


def _merge(*layers: dict) -> dict:
    out: dict = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "kwargs":
                out["kwargs"] = {**out.get("kwargs", {}), **value}
            else:
                out[key] = value
    return out


def load_matrix(path: str | Path, rules: dict, default_rules: dict, scope: Scope,
                max_opset: int | None = None, policy: DtypePolicy | None = None,
                allow_any_call: bool = False) -> Matrix:
    """Validate one matrix file and expand it under ``scope``.

    A matrix is trusted code (its ``plugins:`` are imported, its ``call:`` targets
    called); still, a ``call:`` must lie in the framework's own namespaces or the
    harness builders unless ``allow_any_call`` (``--allow-any-call``).
    """
    policy = policy or DtypePolicy()
    doc = load_yaml(path)
    validate(doc, schema.MATRIX)
    data = doc.data
    fw = data["framework"]
    plugins = tuple(data.get("plugins", ()))
    try:
        registry.load_builders(fw, plugins)
    except ImportError as exc:
        raise MatrixError(doc.path, doc.line_of(("plugins",)), "plugins", f"cannot import: {exc}") from None
    top = max_opset if max_opset is not None else testable_max_opset()
    matrix = Matrix(plugins=plugins)
    if scope.frameworks and fw not in scope.frameworks:
        return matrix
    exporters = [e for e in data["exporters"] if not scope.exporters or e in scope.exporters]
    for k, name in enumerate(data["exporters"]):
        matrix.exporter_sources.setdefault(f"{fw}/{name}", f"{doc.path}:{doc.line_of(('exporters', k))}")
    defaults = data.get("defaults", {})
    native = data.get("native_opsets", {})
    crash_retry = (data.get("crash_retry") or {}).get("reason")
    derived_doc, derived = derived_forms.load(path, doc, validate) if scope.forms == "derived" else (None, {})
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["entries"]):
        at = ("entries", i)
        kernel = entry["kernel"]
        line = doc.line_of(at)
        if kernel in seen:
            raise MatrixError(doc.path, doc.line_of(at + ("kernel",)), f"entries[{kernel}].kernel",
                              f"duplicate kernel id {kernel!r} (first at line {seen[kernel]})")
        seen[kernel] = line
        lo, hi = parse_range(entry["table"]["opsets"], doc, at + ("table", "opsets"))
        unavailable = entry.get("unavailable")
        if not unavailable:
            _check_builder(doc, at, entry, fw)
        source = f"{doc.path}:{line}"
        if entry.get("call") and not allow_any_call and not registry.call_allowed(fw, entry["call"]):
            allowed = ", ".join((*registry.CALL_NAMESPACES.get(fw, ()), *registry.HARNESS_CALLS))
            raise MatrixError(doc.path, doc.line_of(at + ("call",)), f"entries[{kernel}].call",
                              f"{entry['call']!r} lies outside {fw}'s namespaces ({allowed}); a matrix "
                              f"is trusted code: give --allow-any-call to call it anyway")
        if entry.get("call"):
            matrix.call_sources.setdefault(entry["call"], f"{doc.path}:{doc.line_of(at + ('call',))}")
        shared_key = entry.get("shared_key", kernel)
        matrix.rows.append(Row(fw, kernel, entry["table"]["opsets"], entry["table"].get("note", ""),
                               unavailable, shared_key, source))
        base = _merge(defaults, {k: v for k, v in entry.items() if k in schema.CASE_FIELDS})
        variants = entry.get("variants") or {"default": {}}
        extra = derived.get(kernel, {}) if not unavailable else {}
        for vname, vfields in {**variants, **extra}.items():
            vat = at + ("variants", vname)
            form = vfields.get("form") if vname in extra else None
            if form:  # a derived variant carries its whole kwargs (see harness.spec.derived)
                spec = _merge({**base, "kwargs": {}}, {k: v for k, v in vfields.items() if k != "form"})
                spec.pop("smoke", None)
            else:
                spec = _merge(base, vfields)
            spec["call"] = entry.get("call")
            spec["builder"] = entry.get("builder")
            spec["pack"] = entry.get("pack")
            if "inputs" not in spec and not unavailable:
                raise MatrixError(doc.path, doc.line_of(vat if "variants" in entry else at),
                                  f"entries[{kernel}].inputs", "no inputs given")
            rlo, rhi = 1, 64  # restriction from the entry's own `opsets:`, if any
            if "opsets" in spec:
                rlo, rhi = spec["opsets"].get("min", 1), spec["opsets"].get("max", 64)
                if rlo > rhi:
                    raise MatrixError(doc.path, doc.first_line(vat + ("opsets",), at + ("opsets",),
                                                               ("defaults", "opsets")),
                                      f"entries[{kernel}].opsets",
                                      f"impossible opset range min={rlo} > max={rhi}")
            olo, ohi = max(lo, rlo), min(hi, rhi)
            want_lo, want_hi = (olo, ohi) if scope.opsets == "declared" else (max(rlo, 1), min(rhi, top))
            opsets = list(range(max(want_lo, TESTABLE_MIN), min(want_hi, top) + 1))
            if want_lo < TESTABLE_MIN:
                matrix.skipped_opsets.append((fw, f"{kernel}-{vname}", format_opsets(
                    list(range(want_lo, TESTABLE_MIN))), BELOW_MIN_REASON))
            if want_hi > top:
                matrix.skipped_opsets.append((fw, f"{kernel}-{vname}", format_opsets(
                    list(range(max(top + 1, want_lo), want_hi + 1))),
                    f"above opset {top}: the highest the installed onnx and onnxruntime support"))
            if scope.smoke and not spec.get("smoke"):
                continue
            only = spec.get("exporters")
            if only:
                unknown = sorted(set(only) - set(data["exporters"]))
                if unknown:
                    raise MatrixError(doc.path, doc.first_line(vat + ("exporters",), at + ("exporters",),
                                                               ("defaults", "exporters")),
                                      f"entries[{kernel}].exporters",
                                      f"unknown exporter {unknown[0]!r} (the file lists "
                                      f"{', '.join(data['exporters'])})")
                for exporter in exporters:
                    if exporter not in only and opsets:
                        matrix.skipped_opsets.append((fw, f"{kernel}-{vname}", format_opsets(opsets),
                                                      f"exporter {exporter} left out: the variant lists "
                                                      f"exporters {', '.join(only)} only"))
            by_exporter = {e: _exporter_opsets(e, opsets, native, scope, matrix, fw, f"{kernel}-{vname}")
                           for e in exporters if not only or e in only}
            if form:
                for e, o in by_exporter.items():
                    if len(o) > 2:
                        matrix.skipped_opsets.append((fw, f"{kernel}-{vname}-{e}", format_opsets(o[1:-1]),
                                                      derived_forms.SCOPE_REASON))
            if scope.smoke or form:  # the lowest and highest opset each exporter runs
                by_exporter = {e: sorted({o[0], o[-1]}) if o else [] for e, o in by_exporter.items()}
            tol_name = spec.get("tolerance")
            dtypes = _dtypes(spec.get("dtypes", ["float32"]), policy, doc, at, vat, kernel)
            if form:
                dtypes = [derived_forms.DTYPE] if derived_forms.DTYPE in dtypes else dtypes[:1]
                spec["derived"] = form
            if scope.smoke:  # the smoke slice guards float32 regressions; the dtype axis is the full run's
                dtypes = [d for d in dtypes if d == "float32"] or dtypes[:1]
            for dtype in dtypes:
                name = tolerance.rule_for(dtype, tol_name, rules, default_rules, policy.coarse)
                if name not in rules:
                    if tol_name is None:
                        raise MatrixError(doc.path, doc.first_line(vat + ("dtypes",), at + ("dtypes",),
                                                                   ("defaults", "dtypes")),
                                          f"entries[{kernel}].dtypes", f"no 'tolerance:' given and the "
                                          f"tolerance file has no default rule for dtype {dtype!r}")
                    raise MatrixError(doc.path, doc.first_line(vat + ("tolerance",), at + ("tolerance",),
                                                               ("defaults", "tolerance")),
                                      f"entries[{kernel}].tolerance", f"unknown tolerance rule {name!r} "
                                      f"(known: {', '.join(sorted(rules))})")
                cspec = {k: v for k, v in spec.items()
                         if k not in ("dtypes", "tolerance", "smoke", "skip", "exporters")}
                cspec["inputs"] = [{"dtype": dtype, **inp} for inp in spec.get("inputs", [])]
                cspec["dtype"] = dtype
                if crash_retry:
                    cspec["crash_retry"] = crash_retry
                vsource = source
                if form:
                    vsource = f"{derived_doc.path}:{derived_doc.line_of(('entries', kernel, 'variants', vname))}"
                for exporter, ex_opsets in by_exporter.items():
                    if dtype != BASE_DTYPE and scope.opsets == "declared" and len(ex_opsets) > 2:
                        matrix.skipped_opsets.append((fw, f"{kernel}-{vname}-{dtype}-{exporter}",
                                                      format_opsets(ex_opsets[1:-1]), DTYPE_ENDS_REASON))
                        ex_opsets = [ex_opsets[0], ex_opsets[-1]]
                    for opset in ex_opsets:
                        for device in scope.devices:
                            matrix.cases.append(Case(
                                framework=fw, kernel=kernel, variant=vname, exporter=exporter,
                                opset=opset, dtype=dtype, device=device, spec=cspec,
                                tolerance=rules[name],
                                declared={"range": entry["table"]["opsets"],
                                          "note": entry["table"].get("note", ""),
                                          "in_range": olo <= opset <= ohi},
                                shared_key=shared_key,
                                skip=unavailable or spec.get("skip"),
                                smoke=bool(spec.get("smoke")),
                                source=vsource))
    return matrix


def _dtypes(given, policy: DtypePolicy, doc: SourcedDoc, at: tuple, vat: tuple, kernel: str) -> list[str]:
    """An entry's ``dtypes:``: a list as given, or the named set of ``tolerances.yaml``."""
    if isinstance(given, list):
        return given
    if given not in policy.sets:
        raise MatrixError(doc.path, doc.line_of(vat + ("dtypes",)) or doc.line_of(at + ("dtypes",)),
                          f"entries[{kernel}].dtypes",
                          f"unknown dtype set {given!r} (cases/tolerances.yaml dtype_sets: "
                          f"{', '.join(policy.sets) or 'none'})")
    return policy.sets[given]


def _exporter_opsets(exporter: str, opsets: list[int], native: dict, scope: Scope, matrix: Matrix,
                     fw: str, label: str) -> list[int]:
    """The opsets ``exporter`` runs at.

    An exporter with a native opset (dynamo: 18) reaches lower ones only by
    version conversion: in the declared scope one case, at the highest lower
    opset, records what that conversion does; the other lower opsets are
    listed as skipped. ``--opsets full`` keeps them all.
    """
    top = native.get(exporter)
    if top is None or scope.opsets != "declared":
        return opsets
    below = [o for o in opsets if o < top]
    if len(below) > 1:
        matrix.skipped_opsets.append((fw, label, format_opsets(below[:-1]),
                                      f"exporter {exporter} translates at opset {top}: below it one case "
                                      f"per variant (the highest lower opset) records the version "
                                      f"conversion; --opsets full runs them all"))
    return below[-1:] + [o for o in opsets if o >= top]


def _check_builder(doc: SourcedDoc, at: tuple, entry: dict, fw: str) -> None:
    kernel = entry["kernel"]
    has_call, has_builder = "call" in entry, "builder" in entry
    if has_call == has_builder:
        raise MatrixError(doc.path, doc.line_of(at), f"entries[{kernel}]",
                          "give exactly one of 'call' (a framework function) or 'builder' "
                          "(a registered builder), or 'unavailable' with a reason")
    if has_builder and (fw, entry["builder"]) not in registry.BUILDERS:
        raise MatrixError(doc.path, doc.line_of(at + ("builder",)), f"entries[{kernel}].builder",
                          f"no builder {entry['builder']!r} registered for {fw} "
                          f"(harness/builders/{fw}_ops.py)")


def load_all(paths: list[Path], tolerances_path: Path, scope: Scope,
             max_opset: int | None = None, allow_any_call: bool = False) -> Matrix:
    """Load every matrix file in ``paths`` and concatenate them; ids must be unique."""
    rules, defaults = load_tolerances(tolerances_path)
    policy = load_dtype_policy(tolerances_path)
    out = Matrix()
    seen: dict[str, str] = {}
    for path in paths:
        m = load_matrix(path, rules, defaults, scope, max_opset, policy, allow_any_call)
        for c in m.cases:
            if c.id in seen:
                where, _, line = c.source.rpartition(":")
                raise MatrixError(where or path, int(line) if line.isdigit() else None, f"entries[{c.kernel}]",
                                  f"case id {c.id} also produced by {seen[c.id]}")
            seen[c.id] = c.source
        out.cases += m.cases
        out.rows += m.rows
        out.skipped_opsets += m.skipped_opsets
        out.plugins += m.plugins
        out.call_sources = {**m.call_sources, **out.call_sources}  # the first file naming a target wins
        out.exporter_sources = {**m.exporter_sources, **out.exporter_sources}
    return out


def matrix_files(cases_dir: Path) -> list[Path]:
    """The matrix files of a cases folder: every ``*.yaml`` with a ``framework:`` key."""
    out = []
    for p in sorted(Path(cases_dir).glob("*.yaml")):
        if p.name in ("tolerances.yaml", "expected_failures.yaml"):
            continue
        out.append(p)
    return out
