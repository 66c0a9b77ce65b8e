"""Deterministic input tensors for a case, from its YAML input specs and seed."""

from __future__ import annotations

import numpy as np


def make_inputs(input_specs: list[dict], seed: int, batch: int | None = None) -> list[np.ndarray]:
    """Draw one array per input spec; ``batch`` replaces dimension 0 of dynamic inputs."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in input_specs:
        shape = list(spec["shape"])
        if batch is not None and shape and 0 in spec.get("dynamic", [0]):
            shape[0] = batch
        # np.asarray: a 0-d draw is a numpy scalar, and frameworks take arrays (torch.from_numpy)
        out.append(np.asarray(_draw(rng, spec, tuple(shape))))
    return out


def _draw(rng: np.random.Generator, spec: dict, shape: tuple) -> np.ndarray:
    dtype = np.dtype(spec.get("dtype", "float32"))
    if "file" in spec:  # a user's own input, as it is (the batch of the file)
        arrays = np.load(spec["file"], allow_pickle=False)
        return np.asarray(arrays[spec["key"]] if "key" in spec else arrays, dtype=dtype)
    if "values" in spec:
        arr = np.asarray(spec["values"], dtype=dtype)
        if arr.shape != shape:
            # one value fills any shape, a 0-d one included (broadcast_to refuses (1,) -> ())
            arr = np.broadcast_to(arr.reshape(-1)[0], shape).copy() if arr.size == 1 else arr
        return arr
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu" and spec.get("init") != "randint":
        return _draw_integers(rng, spec, shape, dtype)
    init = spec.get("init", "randint" if dtype.kind in "iu" else "uniform")
    low = spec.get("low", 0 if dtype.kind in "iub" else -1.0)
    high = spec.get("high", 10 if dtype.kind in "iu" else 1.0)
    if init == "randint":
        return rng.integers(int(low), int(high), size=shape).astype(dtype)
    if init == "permutation":
        # a permutation along the last axis (unique indices, e.g. for scatter-free gathers)
        n = shape[-1] if shape else 1
        return np.stack([rng.permutation(n) for _ in range(int(np.prod(shape[:-1])) or 1)]) \
            .reshape(shape).astype(dtype)
    if init == "unique":
        # distinct values, so argmax/argmin and sort-based ops have no ties
        flat = rng.permutation(int(np.prod(shape)) or 1)[: int(np.prod(shape))]
        return (flat.reshape(shape) * (high - low) / max(flat.size, 1) + low).astype(dtype)
    if init == "positive":
        return rng.uniform(max(low, 0.1), max(high, 0.2), size=shape).astype(dtype)
    if init == "boxes":
        # [..., 4] boxes as x1, y1, x2, y2 with x1 < x2 and y1 < y2 inside [low, high]
        pts = rng.uniform(low, high, size=shape[:-1] + (2, 2))
        lo_, hi_ = np.minimum(pts[..., 0, :], pts[..., 1, :]), np.maximum(pts[..., 0, :], pts[..., 1, :])
        hi_ = np.maximum(hi_, lo_ + (high - low) * 0.05)
        return np.concatenate([lo_, hi_], axis=-1).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def make_input_sets(case) -> list[list[np.ndarray]]:
    """The input sets of a case: one per drawn input seed, else one per ``batches`` entry."""
    seeds = case.spec.get("input_seeds")  # drawn by property mode
    if seeds:
        input_sets = [make_inputs(case.spec["inputs"], s) for s in seeds]
    else:
        batches = case.spec.get("batches") or [None]
        input_sets = [make_inputs(case.spec["inputs"], case.seed + i, b) for i, b in enumerate(batches)]
    if case.spec.get("special_values"):
        from .special import inject_special_values

        input_sets = [inject_special_values(xs, case.seed + i) for i, xs in enumerate(input_sets)]
    return input_sets


def _draw_integers(rng: np.random.Generator, spec: dict, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Integers for a spec written for floats (the dtype axis draws them at every dtype).

    The float range is widened to whole numbers (at least three values, so an
    op never sees a constant tensor); ``positive`` stays >= 1 (divisors, logs),
    ``unique`` gives distinct integers (no ties for argmax or sort), and
    ``permutation`` is kept as it is. ``init: randint`` specs are drawn as written.
    """
    init = spec.get("init", "uniform")
    low = int(np.floor(spec.get("low", -5)))
    high = int(np.ceil(spec.get("high", 5)))
    if init == "permutation":
        n = shape[-1] if shape else 1
        return np.stack([rng.permutation(n) for _ in range(int(np.prod(shape[:-1])) or 1)]) \
            .reshape(shape).astype(dtype)
    if init == "unique":
        size = int(np.prod(shape))
        return (rng.permutation(size or 1)[:size].reshape(shape) + low).astype(dtype)
    if init == "positive":
        low = max(low, 1)
    return rng.integers(low, max(high, low + 3), size=shape).astype(dtype)
