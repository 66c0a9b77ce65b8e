"""Special-value inputs (``--special-values``): NaN, infinities, signed zero and extremes mixed into
float inputs, and how a disagreement on them is described."""

from __future__ import annotations

import numpy as np

#: The values mixed into float inputs by ``--special-values``.
SPECIAL_VALUES = (np.nan, np.inf, -np.inf, -0.0, 3.0e38, -3.0e38, 1.0e-38, -1.0e-45, 6.0e4)


def inject_special_values(arrays: list[np.ndarray], seed: int, fraction: float = 0.25) -> list[np.ndarray]:
    """Replace about ``fraction`` of each float array's elements with special values (seeded)."""
    rng = np.random.default_rng(seed ^ 0x5EC1A1)
    out = []
    for a in arrays:
        if a.dtype.kind != "f" or a.size == 0:
            out.append(a)
            continue
        a = a.copy()
        flat = a.reshape(-1)
        n = max(1, int(flat.size * fraction))
        idx = rng.choice(flat.size, size=min(n, flat.size), replace=False)
        vals = np.array(SPECIAL_VALUES, dtype=np.float64)
        if a.dtype == np.float16:
            vals = np.where(np.abs(vals) > 6.0e4, np.sign(vals) * 6.0e4, vals)
        # every special value appears at least once when the array is big enough
        picks = np.concatenate([np.arange(len(vals)), rng.integers(0, len(vals), size=len(idx))])[:len(idx)]
        flat[idx] = vals[picks].astype(a.dtype)
        out.append(a)
    return out


def _name(v) -> str:
    v = float(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0 and np.signbit(v):
        return "-0.0"
    return f"{v:.6g}"


def describe_special_disagreement(ref: np.ndarray, act: np.ndarray) -> str | None:
    """First index where framework and ORT disagree on a NaN/Inf, as a readable sentence."""
    if ref.shape != act.shape or ref.dtype.kind != "f" or act.dtype.kind != "f":
        return None
    r, a = ref.astype(np.float64), act.astype(np.float64)
    special = ~np.isfinite(r) | ~np.isfinite(a)
    agree = (np.isnan(r) & np.isnan(a)) | (np.isinf(r) & (r == a))
    bad = np.argwhere(special & ~agree)
    if bad.size == 0:
        return None
    at = tuple(int(i) for i in bad[0])
    return (f"special values: framework gives {_name(r[at])} where ONNX Runtime gives {_name(a[at])} "
            f"at index {at} ({len(bad)} such element(s))")
