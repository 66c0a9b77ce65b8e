"""Named tolerance rules.

Rules are data (``cases/tolerances.yaml``); this module only knows the *kinds*
of rule and how each one judges a pair of arrays. Every comparison also
reports the raw figures (max abs error, max relative error) so reports can
show how close a failing case came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Comparison:
    """Outcome of comparing one output: ``ok`` plus the measured figures."""

    ok: bool
    max_abs: float
    max_rel: float
    detail: str = ""


def _figures(ref: np.ndarray, act: np.ndarray) -> tuple[float, float]:
    if ref.size == 0:
        return 0.0, 0.0
    r = ref.astype(np.float64)
    a = act.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return _figures64(r, a)


def _figures64(r: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    both_nan = np.isnan(r) & np.isnan(a)
    same_inf = np.isinf(r) & (r == a)
    diff = np.where(both_nan | same_inf, 0.0, np.abs(r - a))
    diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(diff.max())
    peak = float(np.abs(np.where(np.isfinite(r), r, 0.0)).max())
    max_rel = max_abs / peak if peak > 0 else (0.0 if max_abs == 0 else float("inf"))
    return max_abs, max_rel


def _abs_or_rel(ref, act, params) -> Comparison:
    """Seed 000: ``max_abs < abs``, else ``max_abs / max|ref| < rel``."""
    max_abs, max_rel = _figures(ref, act)
    ok = max_abs < params["abs"] or max_rel < params["rel"]
    return Comparison(ok, max_abs, max_rel, f"max_abs={max_abs:.3g} max_rel={max_rel:.3g}")


def _allclose(ref, act, params) -> Comparison:
    """Seed 001: ``assert_allclose(rtol, atol)`` elementwise, NaN equal to NaN."""
    max_abs, max_rel = _figures(ref, act)
    ok = bool(np.allclose(act.astype(np.float64), ref.astype(np.float64),
                          rtol=params["rtol"], atol=params["atol"], equal_nan=True))
    return Comparison(ok, max_abs, max_rel, f"max_abs={max_abs:.3g} max_rel={max_rel:.3g}")


def _exact(ref, act, params) -> Comparison:
    """Bit-for-bit equality (integers, booleans, indices)."""
    max_abs, max_rel = _figures(ref, act) if ref.dtype != np.bool_ else (
        float((ref != act).sum()), 0.0)
    ok = bool(np.array_equal(ref, act, equal_nan=ref.dtype.kind == "f"))
    return Comparison(ok, max_abs, max_rel, "" if ok else f"{int((ref != act).sum())} elements differ")


def _range(ref, act, params) -> Comparison:
    """Random outputs: only shape and dtype must match and values stay in [low, high]."""
    low, high = params.get("low", -np.inf), params.get("high", np.inf)
    inside = bool(np.all((act >= low) & (act <= high))) if act.size else True
    return Comparison(inside, float("nan"), float("nan"),
                   "" if inside else f"values outside [{low}, {high}]")


#: Rule kinds by name; a rule in YAML picks one with ``kind:``.
KINDS: dict[str, Callable[[np.ndarray, np.ndarray, dict], Comparison]] = {
    "abs-or-rel": _abs_or_rel,
    "allclose": _allclose,
    "exact": _exact,
    "range": _range,
}

#: Parameters each kind needs; checked when the YAML is loaded.
REQUIRED_PARAMS = {
    "abs-or-rel": ("abs", "rel"),
    "allclose": ("rtol", "atol"),
    "exact": (),
    "range": (),
}


#: Kinds that judge how close floating values are. Under them an integer or
#: boolean output is judged exactly: there is no rounding to forgive.
CLOSENESS = ("abs-or-rel", "allclose")


def compare(rule: dict, ref: np.ndarray, act: np.ndarray) -> Comparison:
    """Judge ``act`` against ``ref`` under ``rule`` (a dict with ``kind`` and its params).

    Integer and boolean reference outputs are compared exactly under a closeness rule.
    """
    ref, act = np.asarray(ref), np.asarray(act)
    if rule["kind"] in CLOSENESS and ref.dtype.kind in "iub":
        return _exact(ref, act, rule)
    return KINDS[rule["kind"]](ref, act, rule)


def rule_for(dtype: str, entry_rule: str | None, rules: dict, defaults: dict, coarse: dict) -> str | None:
    """The rule name a case at ``dtype`` is judged by.

    The entry's own rule when it names one, else the dtype's default; at a dtype
    listed in ``coarse`` (float16) an entry's closeness rule gives way to the
    coarse dtype's rule, since no float32 figure holds at 11 significant bits.
    """
    name = entry_rule or defaults.get(dtype)
    floor = coarse.get(dtype)
    if floor and name in rules and rules[name]["kind"] in CLOSENESS:
        return floor
    return name
