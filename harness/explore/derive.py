"""Property-mode strategies derived from a matrix entry itself (``pytest --explore`` on every entry).

An entry's expanded cases on one exporter and device say what a valid model
of that entry looks like; :class:`Domain` reads it off them:

* **variants**: a draw starts from one variant's spec (its inputs, input
  generators, tolerance), at one of that variant's opsets and dtypes;
* **attributes in combination**: every kwarg ranges over the values it takes
  in any variant (plus "not passed" where some variant leaves it out), each
  drawn independently, so attributes that no variant changes together meet;
  the positional ``args`` lists likewise;
* **shapes around the declared ones**: the batch axes (an input's ``dynamic``
  axes, default 0) and the spatial axes (2 and up, of inputs of rank 3 or
  more without an explicit ``dynamic``) range over [2, 2 x declared].
  Channels and feature sizes, size-1 axes (broadcasting), inputs with explicit
  ``values`` and sizes that a list-valued attribute names (a reshape target, a
  normalized shape) stay as declared. Between several inputs, equal sizes stay
  equal (one named dim), so elementwise, matmul and concat operands still fit.

An ``explore:`` block refines it (schema in :mod:`harness.spec.schema`): its
``kwargs`` replace the derived domains of those names, its ``dims`` and
``inputs`` the derived shapes, its ``dtypes`` the dtypes, its ``constraints``
filter draws and ``input_seeds`` sets how many input sets each model gets.
A draw the framework itself refuses is discarded by the explorer (hypothesis
``reject``), so a derived domain may be loose; an entry needs a block where
most draws are refused (counted per target as ``rejected``).

A draw is a plain dict: ``variant``, ``opset``, ``dtype``, ``kwargs`` (with
:data:`ABSENT` for "not passed"), ``args`` (when the variants differ in
them), ``dims``, ``shapes`` and ``input_seeds``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from harness.core.case import Case
from .strategies import ExploreError, compile_constraint, validate_explore

#: a kwarg value meaning "not passed" (some variant leaves the kwarg out)
ABSENT = "<absent>"
#: the smallest size a free axis is drawn at (torch.export specialises size-1 axes)
FREE_MIN = 2
#: how many input sets each drawn model is checked on, without an ``explore.input_seeds``
INPUT_SEEDS = 2


@dataclass
class Variant:
    """One variant of the entry: its cases by (opset, dtype) and its shape template."""

    name: str
    cases: dict[tuple[int, str], Case] = field(default_factory=dict)
    #: per input, per axis: a fixed size, a dim name, or a {min, max} range
    template: list[list] = field(default_factory=list)
    dims: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def opsets(self) -> list[int]:
        """The opsets this variant runs at."""
        return sorted({o for o, _ in self.cases})

    @property
    def dtypes(self) -> list[str]:
        """The dtypes this variant runs at, in matrix order."""
        return list(dict.fromkeys(d for _, d in self.cases))

    def case(self, opset: int, dtype: str) -> Case:
        """The matrix case a draw starts from (another dtype of the opset when ``dtype`` is new)."""
        return self.cases.get((opset, dtype)) or next(c for (o, _), c in self.cases.items() if o == opset)


def _key(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _ints(value) -> set[int]:
    """Integers inside a list-valued attribute (sizes it may name)."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int):
        return {value}
    if isinstance(value, (list, tuple)):
        return set().union(*(_ints(v) for v in value)) if value else set()
    return set()


def _free_axes(inp: dict) -> set[int]:
    rank = len(inp["shape"])
    if "values" in inp:
        return set()
    if "dynamic" in inp:
        return {a for a in inp["dynamic"] if a < rank}
    return {0} | (set(range(2, rank)) if rank >= 3 else set())


def shape_template(inputs: list[dict], protected: set[int]) -> tuple[list[list], dict[str, tuple[int, int]]]:
    """(template per input, named dims with their ranges) of one variant's declared inputs."""
    free = []
    for inp in inputs:
        axes = _free_axes(inp)
        free.append([a in axes and s > 1 and s not in protected for a, s in enumerate(inp["shape"])])
    dims: dict[str, tuple[int, int]] = {}
    template: list[list] = []
    if len(inputs) == 1:
        for a, s in enumerate(inputs[0]["shape"]):
            if free[0][a]:
                dims[f"i0_{a}"] = (FREE_MIN, max(FREE_MIN, 2 * s))
        return [[f"i0_{a}" if free[0][a] else s for a, s in enumerate(inputs[0]["shape"])]], dims
    # several inputs: one dim per declared size, free only where every occurrence is free
    fixed = {s for i, inp in enumerate(inputs) for a, s in enumerate(inp["shape"]) if not free[i][a]}
    for i, inp in enumerate(inputs):
        row = []
        for a, s in enumerate(inp["shape"]):
            if free[i][a] and s not in fixed:
                dims[f"s{s}"] = (FREE_MIN, max(FREE_MIN, 2 * s))
                row.append(f"s{s}")
            else:
                row.append(s)
        template.append(row)
    return template, dims


class Domain:
    """What a derived strategy draws from: one entry's cases on one exporter and device."""

    def __init__(self, cases: list[Case], explore: dict | None = None):
        if not cases:
            raise ExploreError("no runnable case to derive a strategy from")
        self.explore = explore or {}
        self.variants: dict[str, Variant] = {}
        for c in cases:
            self.variants.setdefault(c.variant, Variant(c.variant)).cases.setdefault((c.opset, c.dtype), c)
        specs = {name: next(iter(v.cases.values())).spec for name, v in self.variants.items()}
        self.kwargs = self._kwarg_pools(specs)
        args = list({_key(s.get("args")): s.get("args") for s in specs.values()}.values())
        self.args: list | None = args if len(args) > 1 else None
        protected = set()
        for s in specs.values():
            protected |= _ints(s.get("args") or [])
            for v in (s.get("kwargs") or {}).values():
                if isinstance(v, (list, tuple)):
                    protected |= _ints(v)
        if self.explore and "inputs" not in self.explore:  # ranges checked even without block inputs
            validate_explore({k: x for k, x in self.explore.items() if k != "constraints"},
                             next(iter(specs.values()))["inputs"])
        self._shapes(specs, protected)
        names = set(self.kwargs) | set(self.explore.get("dims", {}))
        self.constraints = [compile_constraint(c, names) for c in self.explore.get("constraints", [])]

    def _kwarg_pools(self, specs: dict[str, dict]) -> dict[str, list | dict]:
        pools: dict[str, dict[str, object]] = {}
        for s in specs.values():
            for k, v in (s.get("kwargs") or {}).items():
                pools.setdefault(k, {}).setdefault(_key(v), v)
        out: dict[str, list | dict] = {}
        for k, vals in pools.items():
            optional = any(k not in (s.get("kwargs") or {}) for s in specs.values())
            out[k] = ([ABSENT] if optional else []) + list(vals.values())
        for k, dom in self.explore.get("kwargs", {}).items():
            out[k] = dom  # the block's domain wins
        return out

    def _shapes(self, specs: dict[str, dict], protected: set[int]) -> None:
        block = self.explore.get("inputs")
        for name, v in list(self.variants.items()):
            inputs = specs[name]["inputs"]
            if block is None:
                v.template, v.dims = shape_template(inputs, protected)
                continue
            if len(block) != len(inputs):
                del self.variants[name]  # the block describes other inputs than this variant's
                continue
            validate_explore({k: x for k, x in self.explore.items() if k != "constraints"}, inputs)
            v.template = [list(b["shape"]) for b in block]
            v.dims = {n: (r["min"], r["max"]) for n, r in self.explore.get("dims", {}).items()}
        if not self.variants:
            raise ExploreError(f"explore.inputs has {len(block)} inputs; no variant of the entry has as many")

    def _satisfied(self, draw: dict) -> bool:
        env = {**draw["dims"], **{k: v for k, v in draw["kwargs"].items() if v != ABSENT}}
        return all(c(env) for c in self.constraints)

    def strategy(self):
        """A hypothesis strategy of draws (see the module docstring)."""
        from hypothesis import strategies as st

        def domain(d):
            return st.integers(d["min"], d["max"]) if isinstance(d, dict) else st.sampled_from(d)

        kwargs = st.fixed_dictionaries({n: domain(d) for n, d in sorted(self.kwargs.items())})
        n_seeds = self.explore.get("input_seeds", INPUT_SEEDS)

        def of_variant(name: str):
            v = self.variants[name]
            parts = {"variant": st.just(name), "opset": st.sampled_from(v.opsets),
                     "dtype": st.sampled_from(self.explore.get("dtypes") or v.dtypes), "kwargs": kwargs,
                     "dims": st.fixed_dictionaries({n: st.integers(lo, hi) for n, (lo, hi) in sorted(v.dims.items())})}
            if self.args is not None:
                parts["args"] = st.sampled_from(self.args)

            def with_shapes(d: dict):
                shapes = st.tuples(*[st.tuples(*[
                    st.just(d["dims"][x]) if isinstance(x, str) else
                    st.integers(x["min"], x["max"]) if isinstance(x, dict) else st.just(x)
                    for x in row]).map(list) for row in v.template]).map(list)
                return st.fixed_dictionaries({
                    **{k: st.just(x) for k, x in d.items()}, "shapes": shapes,
                    "input_seeds": st.lists(st.integers(0, 2**31 - 1), min_size=n_seeds, max_size=n_seeds)})

            return st.fixed_dictionaries(parts).filter(self._satisfied).flatmap(with_shapes)

        return st.sampled_from(list(self.variants)).flatmap(of_variant)

    def apply(self, draw: dict) -> tuple[dict, Case]:
        """(case spec of a draw, the matrix case it starts from)."""
        base = self.variants[draw["variant"]].case(draw["opset"], draw["dtype"])
        spec = copy.deepcopy(base.spec)
        spec["kwargs"] = {k: v for k, v in draw["kwargs"].items() if v != ABSENT}
        if "args" in draw:
            if draw["args"] is None:
                spec.pop("args", None)
            else:
                spec["args"] = draw["args"]
        for inp, shape in zip(spec["inputs"], draw["shapes"]):
            inp["shape"] = list(shape)
            if draw["dtype"] != base.dtype and inp.get("dtype") == base.dtype:
                inp["dtype"] = draw["dtype"]  # inputs of a fixed other dtype (indices) keep it
        spec["input_seeds"] = list(draw["input_seeds"])
        spec.pop("batches", None)
        return spec, base
