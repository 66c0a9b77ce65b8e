"""The named tolerance rules at their boundaries."""

import numpy as np
import pytest

from harness.core.tolerance import compare

SEED_ABS_REL = {"name": "seed-abs-rel", "kind": "abs-or-rel", "abs": 1e-5, "rel": 1e-5}
ALLCLOSE = {"name": "allclose", "kind": "allclose", "rtol": 1e-3, "atol": 1e-5}
EXACT = {"name": "exact", "kind": "exact"}


def f64(*v):
    return np.array(v, dtype=np.float64)


@pytest.mark.parametrize("err, ok", [(0.99e-5, True), (1.0e-5, False), (1.01e-5, False)])
def test_seed_abs_threshold_is_strict(err, ok):
    # peak |ref| is 0.5, so the relative branch cannot rescue (2e-5 > 1e-5)
    assert compare(SEED_ABS_REL, f64(0.5, 0.0), f64(0.5, err)).ok is ok


@pytest.mark.parametrize("peak, ok", [(10.0, True), (2.0, False)])
def test_seed_relative_branch(peak, ok):
    # max_abs 2e-5 fails the absolute branch; rel = 2e-5 / peak
    v = compare(SEED_ABS_REL, f64(peak, 0.0), f64(peak, 2e-5))
    assert v.ok is ok
    assert v.max_abs == 2e-5
    assert v.max_rel == pytest.approx(2e-5 / peak, rel=1e-6)


def test_seed_zero_reference_needs_abs():
    assert not compare(SEED_ABS_REL, f64(0.0, 0.0), f64(1e-4, 0.0)).ok
    assert compare(SEED_ABS_REL, f64(0.0, 0.0), f64(0.0, 0.0)).ok


@pytest.mark.parametrize("ref, act, ok", [
    (1.0, 1.0 + 1e-5 + 1e-3 - 1e-9, True),    # |a-r| <= atol + rtol*|r|
    (1.0, 1.0 + 1e-5 + 1e-3 + 1e-7, False),
    (0.0, 1e-5 - 1e-9, True),                 # only atol at zero
    (0.0, 1e-5 + 1e-7, False),
])
def test_allclose_boundary(ref, act, ok):
    assert compare(ALLCLOSE, f64(ref), f64(act)).ok is ok


def test_nan_equal_nan_and_inf():
    assert compare(ALLCLOSE, f64(np.nan, np.inf), f64(np.nan, np.inf)).ok
    assert not compare(ALLCLOSE, f64(np.nan), f64(0.0)).ok
    assert not compare(SEED_ABS_REL, f64(1.0), f64(np.nan)).ok


def test_exact_integers():
    a = np.array([1, 2, 3], dtype=np.int64)
    assert compare(EXACT, a, a.copy()).ok
    v = compare(EXACT, a, np.array([1, 2, 4], dtype=np.int64))
    assert not v.ok and "1 elements differ" in v.detail


def test_range_rule():
    rule = {"name": "r", "kind": "range", "low": 0.0, "high": 1.0}
    assert compare(rule, f64(0.3), f64(0.9)).ok
    assert not compare(rule, f64(0.3), f64(1.5)).ok
