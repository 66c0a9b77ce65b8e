"""Derived forms: variants made mechanically from a matrix entry and the framework's own API.

``python -m harness derive`` (:mod:`harness.cli.derive`) runs this over each matrix with the
facts :mod:`harness.explore.apifacts` read off the framework's API in its own environment, and
writes ``cases/derived/<matrix file>``; ``pytest --forms derived`` adds those variants to the
fixed matrix (:mod:`harness.spec.derived`). Every derived variant is named ``dv_<form>...`` so
``-k dv_`` selects them, and carries ``form:``, the one line saying how it was made.

The kinds of form are a registry (:data:`KINDS`, ``@kind``); each takes an :class:`Entry` and
returns its derived variants:

* ``pairwise``: within each group of variants that differ in their ``kwargs`` only, every
  attribute ranges over the values the variants give it (``<absent>`` where one leaves it out)
  and, for a documented flag, both ``True`` and ``False``; a covering array (``allpairspy``)
  makes every pair of (attribute = value, attribute = value) meet in some variant, fixed or
  derived. The domains are written beside the variants, so :func:`uncovered` can check the
  cover from the file alone.
* ``rank``: 0-d, all-size-1 and rank-changed (rank 1, one more leading axis) inputs, and a 0-d
  last operand, for a ``call:`` entry whose inputs all have one shape and whose attributes name
  no sizes (elementwise ops, activations, reductions, scale, cast).
* ``tensor``: a parameter documented as taking a tensor, given as a trailing tensor input
  (``tensor_kwargs``) instead of its Python value.
* ``list``, ``tuple`` and ``negative``: an axis parameter (``axis``, ``axes``, ``dim``, ``dims``)
  documented as taking a list, given as ``[axis]``; documented as taking a tuple, given as one
  (``tuple_kwargs``: YAML has no tuple); a non-negative axis counted from the end.

A form the framework itself refuses (its own model raises) is ``skipped`` with the form named,
never a failure (see :func:`harness.core.pipeline.run_case`).
"""

from __future__ import annotations

import copy
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Callable

#: a kwarg value meaning "not passed" (the same marker as property mode's)
ABSENT = "<absent>"
#: the prefix of every derived variant name (``-k dv_``)
PREFIX = "dv_"
#: variant names are part of case ids: at most this long (``harness.spec.schema``)
MAX_NAME = 48
#: parameter names that are axes (for the list and negative forms)
AXIS_NAMES = ("axis", "axes", "dim", "dims")
#: the integer dtype of an index-like tensor argument, per framework (default int32)
INDEX_DTYPE = {"torch": "int64", "oneflow": "int64"}
#: the spec fields a case takes from the matrix (``harness.spec.schema.CASE_FIELDS`` without the import)
_SPEC_IGNORED = ("smoke",)


@dataclass
class Entry:
    """One matrix entry seen by the form kinds: its merged variant specs and its call's API facts."""

    framework: str
    kernel: str
    raw: dict
    #: variant name -> the variant's own fields as written
    fields: dict[str, dict]
    #: variant name -> defaults + entry + variant, merged as the matrix loader merges them
    specs: dict[str, dict]
    #: parameter -> facts (see :mod:`harness.explore.apifacts`); empty for a builder entry
    api: dict[str, dict] = field(default_factory=dict)

    @property
    def call(self) -> str | None:
        """The entry's ``call:`` target, or None for a builder."""
        return self.raw.get("call")

    def runnable(self) -> list[str]:
        """The variants a form may start from (not skipped)."""
        return [n for n, s in self.specs.items() if not s.get("skip")]


@dataclass
class Derived:
    """One derived variant: its name, the line saying how it was made, and its fields."""

    name: str
    form: str
    fields: dict


#: form kind -> function(Entry) -> (derived variants, extra data for the file, e.g. pairwise domains)
KINDS: dict[str, Callable[[Entry], tuple[list[Derived], dict]]] = {}


def kind(name: str):
    """Register a form kind (see :data:`KINDS`)."""
    def wrap(fn):
        KINDS[name] = fn
        return fn
    return wrap


def _key(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _merge(*layers: dict) -> dict:
    out: dict = {}
    for layer in layers:
        for k, v in layer.items():
            out[k] = {**out.get("kwargs", {}), **v} if k == "kwargs" else v
    return out


def _token(value) -> str:
    """A value as a name part: ``-1`` -> ``m1``, ``True`` -> ``t``, ``[8, 7]`` -> ``8x7``."""
    if value == ABSENT:
        return "no"
    if isinstance(value, bool):
        return "t" if value else "f"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "x".join(_token(v) for v in value) or "empty"
    text = str(value).lower().replace("-", "m").replace(".", "p")
    return re.sub(r"[^a-z0-9]", "", text) or "v"


def name_of(form: str, parts: list[str]) -> str:
    """``dv_<form>_<parts>``, cut to :data:`MAX_NAME` with a stable crc32 suffix when too long."""
    name = "_".join([PREFIX + form, *parts]) if parts else PREFIX + form
    name = re.sub(r"_+", "_", name.lower())
    if len(name) <= MAX_NAME:
        return name
    tail = "%06x" % (zlib.crc32(name.encode()) & 0xFFFFFF)
    return name[:MAX_NAME - len(tail) - 1].rstrip("_") + "_" + tail


def _variant_fields(entry: Entry, base: str, **changes) -> dict:
    """The fields of a variant made from ``base``: its own fields, the full merged kwargs, ``changes``."""
    out = {k: copy.deepcopy(v) for k, v in entry.fields[base].items() if k not in _SPEC_IGNORED}
    out["kwargs"] = copy.deepcopy(entry.specs[base].get("kwargs", {}))
    out.update(changes)
    return out


# -- pairwise -----------------------------------------------------------------------------------
def _group_key(spec: dict) -> str:
    return _key({k: v for k, v in spec.items() if k not in ("kwargs", "smoke", "tolerance")})


def pairwise_cover(domains: dict[str, list]) -> list[dict]:
    """A deterministic covering array over ``domains`` (name -> values): every pair meets in some row."""
    from allpairspy import AllPairs

    names = sorted(domains)
    if len(names) < 2:
        return [{names[0]: v} for v in domains[names[0]]] if names else []
    rows = AllPairs([list(range(len(domains[n]))) for n in names])
    return [{n: domains[n][i] for n, i in zip(names, row)} for row in rows]


def uncovered(domains: dict[str, list], rows: list[dict]) -> list[tuple]:
    """The (name, value, name, value) pairs of ``domains`` that no row of ``rows`` holds."""
    names = sorted(domains)
    seen = {(a, _key(r.get(a, ABSENT)), b, _key(r.get(b, ABSENT))) for r in rows
            for i, a in enumerate(names) for b in names[i + 1:]}
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for va in domains[a]:
                for vb in domains[b]:
                    if (a, _key(va), b, _key(vb)) not in seen:
                        out.append((a, va, b, vb))
    return out


def _row_of(kwargs: dict, names) -> dict:
    return {n: kwargs.get(n, ABSENT) for n in names}


@kind("pairwise")
def pairwise(entry: Entry) -> tuple[list[Derived], dict]:
    """Every pair of attribute values of a group of variants in some case (see the module docstring)."""
    groups: dict[str, list[str]] = {}
    for name in entry.runnable():
        groups.setdefault(_group_key(entry.specs[name]), []).append(name)
    out: list[Derived] = []
    domains_out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        pools: dict[str, dict[str, object]] = {}
        for m in members:
            for k, v in entry.specs[m].get("kwargs", {}).items():
                pools.setdefault(k, {}).setdefault(_key(v), v)
        domains: dict[str, list] = {}
        for k, vals in pools.items():
            values = list(vals.values())
            if any(k not in entry.specs[m].get("kwargs", {}) for m in members):
                values.insert(0, ABSENT)
            if (entry.api.get(k) or {}).get("bool"):
                values += [b for b in (False, True) if b not in values]
            if len(values) > 1:
                domains[k] = values
        if len(domains) < 2:
            continue  # one attribute alone: the fixed variants already give each of its values
        existing = {_key(_row_of(entry.specs[m].get("kwargs", {}), domains)) for m in members}
        base = members[0]
        fixed = {k: v for k, v in entry.specs[base].get("kwargs", {}).items() if k not in domains}
        made = 0
        for row in pairwise_cover(domains):
            if _key(row) in existing:
                continue
            existing.add(_key(row))
            kwargs = {**fixed, **{k: v for k, v in row.items() if v != ABSENT}}
            parts = [f"{k}{_token(v)}" for k, v in sorted(row.items())]
            form = "pairwise: " + ", ".join(f"{k}={_short(v)}" for k, v in sorted(row.items()))
            out.append(Derived(name_of("pw", parts), form, _variant_fields(entry, base, kwargs=kwargs)))
            made += 1
        domains_out.append({"variants": members, "kwargs": domains})
    return out, ({"domains": domains_out} if domains_out else {})


def _short(value) -> str:
    return value if value == ABSENT else json.dumps(value)


# -- ranks --------------------------------------------------------------------------------------
#: input generators whose values are tied to a shape (boxes, permutations) or that are given as is
_TIED_INIT = ("boxes", "permutation")


def _rank_base(entry: Entry) -> str | None:
    """The variant the rank forms start from, or None when the entry's inputs do not allow them."""
    if not entry.call or entry.raw.get("pack"):
        return None
    for name in entry.runnable():
        spec = entry.specs[name]
        inputs = spec.get("inputs") or []
        if not inputs or spec.get("tensor_kwargs") or any(isinstance(a, (list, dict)) for a in spec.get("args") or ()):
            continue
        if any("values" in i or "file" in i or i.get("init") in _TIED_INIT or "dtype" in i for i in inputs):
            continue
        if len({_key(i["shape"]) for i in inputs}) != 1 or not inputs[0]["shape"]:
            continue
        if any(isinstance(v, (list, dict)) for v in (spec.get("kwargs") or {}).values()):
            continue  # a list-valued attribute names sizes or axes of the declared rank
        return name
    return None


#: rank form name -> (what it is, function(shape) -> new shape, whether the batch axis stays dynamic)
RANK_FORMS: dict[str, tuple[str, Callable[[list[int]], list[int]], bool]] = {
    "rank0": ("0-d inputs", lambda s: [], False),
    "size1": ("every axis of size 1", lambda s: [1] * len(s), False),
    "rank1": ("rank-1 inputs", lambda s: [s[-1] + 2], True),
    "rank_up": ("one more leading axis", lambda s: [2, *s], True),
}


def _reshaped(inp: dict, shape: list[int], dynamic: bool) -> dict:
    out = {k: v for k, v in inp.items() if k != "dynamic"}
    out["shape"] = shape
    if not dynamic:
        out["dynamic"] = []
    return out


@kind("rank")
def ranks(entry: Entry) -> tuple[list[Derived], dict]:
    """0-d, size-1 and rank-changed inputs (see the module docstring)."""
    base = _rank_base(entry)
    if base is None:
        return [], {}
    inputs = entry.specs[base]["inputs"]
    shape = inputs[0]["shape"]
    out = []
    for form, (what, reshape, dynamic) in RANK_FORMS.items():
        new = [_reshaped(i, reshape(shape), dynamic) for i in inputs]
        out.append(Derived(name_of(form, []), f"rank: {what} ({base}'s inputs {shape} as {reshape(shape)})",
                           _variant_fields(entry, base, inputs=new)))
    if len(inputs) > 1:
        new = [*inputs[:-1], _reshaped(inputs[-1], [], False)]
        out.append(Derived(name_of("rank0_last", []), f"rank: the last operand 0-d ({base}, broadcast)",
                           _variant_fields(entry, base, inputs=copy.deepcopy(new))))
    return out, {}


# -- argument forms -----------------------------------------------------------------------------
def _scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _first_giving(entry: Entry, param: str, ok: Callable[[object], bool]) -> str | None:
    for name in entry.runnable():
        kwargs = entry.specs[name].get("kwargs") or {}
        if param in kwargs and ok(kwargs[param]) and not entry.specs[name].get("tensor_kwargs"):
            return name
    return None


def _tensor_input(framework: str, value) -> dict:
    flat = value if isinstance(value, list) else [value]
    integer = all(isinstance(v, int) for v in flat)
    dtype = INDEX_DTYPE.get(framework, "int32") if integer else "float32"
    return {"shape": [len(value)] if isinstance(value, list) else [], "dtype": dtype,
            "values": list(flat), "dynamic": []}


@kind("tensor")
def tensor_args(entry: Entry) -> tuple[list[Derived], dict]:
    """Each parameter documented as taking a tensor, given as one (see the module docstring)."""
    if not entry.call:
        return [], {}
    already = {p for s in entry.specs.values() for p in s.get("tensor_kwargs") or ()}
    out = []
    for param, facts in sorted(entry.api.items()):
        if not facts.get("tensor") or param in already:
            continue
        base = _first_giving(entry, param, lambda v: _scalar(v) or (
            isinstance(v, list) and v and all(_scalar(x) for x in v)))
        if base is None:
            continue
        fields = _variant_fields(entry, base)
        value = fields["kwargs"].pop(param)
        fields["inputs"] = [*copy.deepcopy(entry.specs[base]["inputs"]), _tensor_input(entry.framework, value)]
        fields["tensor_kwargs"] = [param]
        out.append(Derived(name_of("t", [param]),
                           f"tensor: {param}={_short(value)} of {base} as a tensor input "
                           f"(documented {facts.get('type')!r})", fields))
    return out, {}


def _axis_rank(entry: Entry, base: str) -> int | None:
    inputs = entry.specs[base].get("inputs") or []
    return len(inputs[0]["shape"]) if inputs else None


_LIST_TYPE = re.compile(r"\b(list|List|sequence|Sequence)")
_TUPLE_TYPE = re.compile(r"\b(tuple|Tuple)")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _documented_axes(entry: Entry, type_re: re.Pattern, accepts):
    """(param, base variant) for each axis parameter whose documented type matches ``type_re``
    and that some variant gives a value ``accepts`` takes."""
    for param in AXIS_NAMES:
        if not type_re.search((entry.api.get(param) or {}).get("type", "")):
            continue
        base = _first_giving(entry, param, accepts)
        if base is not None:
            yield param, base


@kind("list")
def list_axes(entry: Entry) -> tuple[list[Derived], dict]:
    """An int axis documented as also taking a list, given as ``[axis]``."""
    out = []
    for param, base in _documented_axes(entry, _LIST_TYPE, _int):
        fields = _variant_fields(entry, base)
        value = fields["kwargs"][param]
        fields["kwargs"][param] = [value]
        out.append(Derived(name_of("l", [param]), f"list: {param}={value} of {base} as [{value}] "
                           f"(documented {entry.api[param].get('type')!r})", fields))
    return out, {}


@kind("tuple")
def tuple_axes(entry: Entry) -> tuple[list[Derived], dict]:
    """An axis (an int, or a list of ints) documented as taking a tuple, given as one (``tuple_kwargs``)."""
    out = []
    ints = lambda v: _int(v) or (isinstance(v, list) and v and all(map(_int, v)))  # noqa: E731
    for param, base in _documented_axes(entry, _TUPLE_TYPE, ints):
        if entry.specs[base].get("tuple_kwargs"):
            continue
        fields = _variant_fields(entry, base)
        value = fields["kwargs"][param]
        items = value if isinstance(value, list) else [value]
        fields["kwargs"][param] = list(items)
        fields["tuple_kwargs"] = [param]
        out.append(Derived(name_of("tu", [param]), f"tuple: {param}={value} of {base} as "
                           f"{tuple(items)} (documented {entry.api[param].get('type')!r})", fields))
    return out, {}


def _nonneg(v) -> bool:
    if isinstance(v, list):
        return bool(v) and all(_nonneg(x) for x in v)
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _has_negative(entry: Entry, param: str) -> bool:
    def neg(v):
        return (isinstance(v, int) and not isinstance(v, bool) and v < 0) or (
            isinstance(v, list) and any(neg(x) for x in v))
    return any(neg((s.get("kwargs") or {}).get(param)) for s in entry.specs.values())


@kind("negative")
def negative_axes(entry: Entry) -> tuple[list[Derived], dict]:
    """A non-negative axis counted from the end (``axis - rank``), where no variant has a negative one."""
    if not entry.call:
        return [], {}
    out = []
    for param in AXIS_NAMES:
        if param not in entry.api or _has_negative(entry, param):
            continue
        base = _first_giving(entry, param, _nonneg)
        rank = _axis_rank(entry, base) if base else None
        if base is None or not rank:
            continue
        fields = _variant_fields(entry, base)
        value = fields["kwargs"][param]
        if any(a >= rank for a in (value if isinstance(value, list) else [value])):
            continue
        neg = [a - rank for a in value] if isinstance(value, list) else value - rank
        fields["kwargs"][param] = neg
        out.append(Derived(name_of("n", [param]), f"negative: {param}={value} of {base} as {neg} "
                           f"(rank {rank})", fields))
    return out, {}


# -- a whole matrix -----------------------------------------------------------------------------
def entries_of(data: dict, facts: dict[str, dict]) -> list[Entry]:
    """The :class:`Entry` of every available entry of a matrix (``data``: the loaded YAML)."""
    from harness.spec.schema import CASE_FIELDS

    defaults = data.get("defaults") or {}
    out = []
    for raw in data["entries"]:
        if raw.get("unavailable"):
            continue
        base = _merge(defaults, {k: v for k, v in raw.items() if k in CASE_FIELDS})
        fields = dict(raw.get("variants") or {"default": {}})
        specs = {n: _merge(base, f) for n, f in fields.items()}
        api = facts.get(raw.get("call"), {}) if raw.get("call") else {}
        if "error" in api:
            api = {}
        out.append(Entry(data["framework"], raw["kernel"], raw, fields, specs, api))
    return out


def derive(data: dict, facts: dict[str, dict], kinds: tuple[str, ...] | None = None) -> dict:
    """kernel -> ``{"variants": {name: {"form": ..., **fields}}, **extra}`` for one matrix."""
    out: dict = {}
    for entry in entries_of(data, facts):
        taken = set(entry.fields)
        variants: dict[str, dict] = {}
        extra: dict = {}
        for name in kinds or tuple(KINDS):
            made, more = KINDS[name](entry)
            extra.update(more)
            for d in made:
                if d.name in taken:
                    continue  # a fixed variant (or an earlier form) of that name exists
                taken.add(d.name)
                variants[d.name] = {"form": d.form, **d.fields}
        if variants:
            out[entry.kernel] = {**extra, "variants": variants}
    return out
