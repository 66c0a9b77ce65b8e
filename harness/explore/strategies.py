"""What an ``explore:`` block may draw, and its constraint language.

An ``explore:`` block (schema in :mod:`harness.spec.schema`) describes where a
configuration may be drawn from::

    explore:
      dims: {C: {min: 1, max: 8}, H: {min: 3, max: 12}}
      inputs: [{shape: [{min: 1, max: 2}, C, H, H]}]
      kwargs: {out_channels: {min: 1, max: 8}, kernel_size: [1, 2, 3], groups: [1, 2]}
      constraints: ["C % groups == 0", "out_channels % groups == 0", "kernel_size <= H"]
      dtypes: [float32]
      input_seeds: 3

:class:`harness.explore.derive.Domain` refines the strategy it derives from the
entry with it (a strategy of *draws*, plain dicts). Constraints are
parsed once by :func:`compile_constraint`, which accepts only arithmetic,
comparisons, boolean operators, names and numbers (and ``min``/``max``/``abs``
calls) -- nothing else is ever evaluated -- and bounds their size: at most
400 characters and 100 syntax nodes, and ``**`` only with a constant exponent
of at most 64 (on a base below 2**64).
"""

from __future__ import annotations

import ast
import hashlib
import json
import operator
from typing import Any, Callable
from harness.core.errors import HarnessError


#: bounds of the constraint language: text length, syntax nodes, nesting, and ``**``'s operands
MAX_CONSTRAINT_CHARS = 400
MAX_CONSTRAINT_NODES = 100
MAX_CONSTRAINT_DEPTH = 20
MAX_EXPONENT = 64
MAX_POW_BASE = 2 ** 64


def _pow(base, exponent):
    """``base ** exponent`` with both bounded (``C ** 9 ** 9 ** 9`` would compute for hours)."""
    if abs(exponent) > MAX_EXPONENT or abs(base) > MAX_POW_BASE:
        raise OverflowError(f"** needs |exponent| <= {MAX_EXPONENT} and |base| <= 2**64")
    return operator.pow(base, exponent)


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Div: operator.truediv,
           ast.Pow: _pow}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
           ast.NotIn: lambda a, b: a not in b}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_FUNCS = {"min": min, "max": max, "abs": abs}


class ExploreError(HarnessError, ValueError):
    """An ``explore:`` block that cannot be turned into a strategy."""


def compile_constraint(text: str, names: set[str]) -> Callable[[dict], bool]:
    """Parse ``text`` (e.g. ``"C % groups == 0"``) into a predicate over a dict of names.

    Raises :class:`ExploreError` for any syntax outside the whitelist or an unknown name.
    """
    if len(text) > MAX_CONSTRAINT_CHARS:
        raise ExploreError(f"constraint {text[:40]!r}...: longer than {MAX_CONSTRAINT_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExploreError(f"constraint {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExploreError(f"constraint {text[:40]!r}...: nested too deeply") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_CONSTRAINT_NODES:
        raise ExploreError(f"constraint {text!r}: {len(nodes)} syntax nodes (at most {MAX_CONSTRAINT_NODES}); "
                           f"split it into several constraints")
    if _depth(tree.body) > MAX_CONSTRAINT_DEPTH:
        raise ExploreError(f"constraint {text!r}: nested more than {MAX_CONSTRAINT_DEPTH} levels deep")
    for node in nodes:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = node.right
            if not (isinstance(exponent, ast.Constant) and isinstance(exponent.value, int)
                    and not isinstance(exponent.value, bool) and 0 <= exponent.value <= MAX_EXPONENT):
                raise ExploreError(f"constraint {text!r}: the exponent of ** must be a whole number from 0 "
                                   f"to {MAX_EXPONENT}")
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare,
                               ast.Name, ast.Load, ast.Constant, ast.Tuple, ast.List, ast.Call,
                               ast.And, ast.Or, *_BINOPS, *_CMPOPS, *_UNARY))
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
            ok = False
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                                               and not node.keywords):
            ok = False
        if not ok:
            raise ExploreError(f"constraint {text!r}: {type(node).__name__} is not allowed "
                               f"(only arithmetic, comparisons, and/or/not, min/max/abs)")
        if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCS:
            raise ExploreError(f"constraint {text!r}: unknown name {node.id!r} "
                               f"(known: {', '.join(sorted(names))})")

    def predicate(env: dict) -> bool:
        try:
            return bool(_eval(tree.body, env))
        except (ZeroDivisionError, OverflowError, TypeError, KeyError):  # KeyError: a kwarg not passed
            return False

    predicate.__doc__ = text
    return predicate


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max(map(_depth, children), default=0)


def _eval(node: ast.AST, env: dict) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, env) for e in node.elts)
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, env))
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, env) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, env)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _FUNCS[node.func.id](*(_eval(a, env) for a in node.args))
    raise ExploreError(f"unexpected node {type(node).__name__}")  # unreachable after the whitelist


def _check_range(where: str, r: dict) -> None:
    if r["min"] > r["max"]:
        raise ExploreError(f"{where}: empty range min={r['min']} > max={r['max']}")


def validate_explore(explore: dict, base_inputs: list[dict]) -> list[Callable[[dict], bool]]:
    """Check an ``explore:`` block against its entry; return the compiled constraints."""
    dims = explore.get("dims", {})
    for name, r in dims.items():
        _check_range(f"explore.dims.{name}", r)
    for name, dom in explore.get("kwargs", {}).items():
        if isinstance(dom, dict):
            _check_range(f"explore.kwargs.{name}", dom)
    inputs = explore.get("inputs")
    if inputs is not None and len(inputs) != len(base_inputs):
        raise ExploreError(f"explore.inputs has {len(inputs)} inputs, the entry has {len(base_inputs)}")
    for i, inp in enumerate(inputs or []):
        for k, d in enumerate(inp["shape"]):
            if isinstance(d, str) and d not in dims:
                raise ExploreError(f"explore.inputs[{i}].shape[{k}]: unknown dim {d!r} "
                                   f"(declare it under explore.dims)")
            if isinstance(d, dict):
                _check_range(f"explore.inputs[{i}].shape[{k}]", d)
    names = set(dims) | set(explore.get("kwargs", {}))
    clash = set(dims) & set(explore.get("kwargs", {}))
    if clash:
        raise ExploreError(f"explore: {sorted(clash)} named both as a dim and a kwarg")
    return [compile_constraint(c, names) for c in explore.get("constraints", [])]


def draw_key(draw: dict) -> str:
    """Short stable hash of a draw (the model-cache key holds it: cached inputs depend on the seeds too)."""
    return hashlib.sha1(json.dumps(draw, sort_keys=True, default=str).encode()).hexdigest()[:10]
