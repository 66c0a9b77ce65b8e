"""The bench's sample: a fixed, deterministic draw of real cases, weighted like the default run.

The weights are read off the expanded matrix of the run the sample stands
for (:func:`matrix_weights`): for the default suite, the cases that
``pytest -n auto`` runs (``--opsets declared``, CPU, not skipped), counted per
``(framework, exporter)``. A sample of ``n`` cases gets, per
``(framework, exporter)``, its share of ``n`` by the largest-remainder method
(:func:`apportion`); a stratum with fewer candidates than its share gives the
rest to the others, in proportion. Within a stratum the cases are drawn
round-robin over its (kernel, variant, dtype) groups (:func:`_round_robin`),
so a small sample still spreads over the kernels, taking as many cases of a
group in its turn as the default run has per group of that stratum on average
(:func:`matrix_depths`: 3 to 5 opsets), so a model's build is shared by about
as many cases as in the default run.

The candidates are the ``--opsets full`` expansion (so a sample can hold
opsets the support table does not claim) within ``min_opset``..``max_opset``
and the given dtypes; the weights do not depend on those filters.
"""

from __future__ import annotations

import functools
import zlib
from collections import Counter, defaultdict
from pathlib import Path

#: a stratum of the sample
Stratum = tuple[str, str]  # (framework, exporter)


@functools.lru_cache(maxsize=4)
def expand(suite_dir: str, tolerances: str, opsets: str, frameworks: tuple[str, ...],
           exporters: tuple[str, ...]):
    """The expanded matrix of the matrix files in ``suite_dir`` (CPU only), loaded once per process."""
    from harness.spec.matrix import Scope, load_all, matrix_files

    return load_all(matrix_files(Path(suite_dir)), Path(tolerances),
                    Scope(opsets=opsets, frameworks=frameworks, exporters=exporters, devices=("cpu",)))


def matrix_weights(suite_dir: Path, tolerances: Path, frameworks: tuple[str, ...],
                   exporters: tuple[str, ...] = ()) -> Counter:
    """Per ``(framework, exporter)``: how many cases the suite's default run has (declared opsets,
    CPU, not skipped) among ``frameworks`` (and ``exporters``, empty: all)."""
    m = expand(str(suite_dir), str(tolerances), "declared", tuple(frameworks), tuple(exporters))
    return Counter((c.framework, c.exporter) for c in m.cases if not c.skip)


def matrix_depths(suite_dir: Path, tolerances: Path, frameworks: tuple[str, ...],
                  exporters: tuple[str, ...] = ()) -> dict:
    """Per ``(framework, exporter)``: how many cases the suite's default run has per (kernel, variant,
    dtype), on average, rounded (at least 1): so many a sample draws of each such group in turn."""
    m = expand(str(suite_dir), str(tolerances), "declared", tuple(frameworks), tuple(exporters))
    cases: Counter = Counter()
    groups: dict[Stratum, set] = defaultdict(set)
    for c in m.cases:
        if not c.skip:
            cases[(c.framework, c.exporter)] += 1
            groups[(c.framework, c.exporter)].add((c.kernel, c.variant, c.dtype))
    return {k: max(1, round(cases[k] / len(groups[k]))) for k in cases}


def apportion(n: int, weights: dict, caps: dict) -> dict:
    """``n`` split over the keys of ``weights`` in proportion, each at most ``caps[key]``.

    Largest remainder (ties by key); what a capped key cannot take goes to the
    others by their weights. Keys of weight 0 or cap 0 get nothing; the total
    is ``min(n, sum of the caps of the keys with a weight)``.
    """
    out = {k: 0 for k in weights}
    live = sorted((k for k in weights if weights[k] > 0 and caps.get(k, 0) > 0), key=str)
    left = min(n, sum(caps[k] for k in live))
    while left > 0 and live:
        total = sum(weights[k] for k in live)
        exact = {k: left * weights[k] / total for k in live}
        give = {k: min(int(exact[k]), caps[k] - out[k]) for k in live}
        rest = left - sum(give.values())
        for k in sorted(live, key=lambda k: (-(exact[k] - int(exact[k])), str(k))):
            if rest <= 0:
                break
            if give[k] < caps[k] - out[k]:
                give[k] += 1
                rest -= 1
        for k in live:
            out[k] += give[k]
        left -= sum(give.values())
        live = [k for k in live if out[k] < caps[k]]
    return out


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _round_robin(cases: list, n: int, depth: int = 1) -> list:
    """``n`` of ``cases``: ``depth`` cases of each (framework, kernel, variant, dtype) group in turn.

    Groups go in crc32 order of that key (no exporter in it, so the strata of one
    framework draw the same models first, and a model's build serves its exporters
    as in the full run); within a group by crc32 of the id, opsets >= 13 first with
    one opset < 13 after the first five.
    """
    groups: dict[tuple, list] = defaultdict(list)
    for c in cases:
        groups[(c.framework, c.kernel, c.variant, c.dtype)].append(c)
    seqs = []
    for key in sorted(groups, key=lambda k: _crc(repr(k))):
        hi = sorted((c for c in groups[key] if c.opset >= 13), key=lambda c: _crc(c.id))
        lo = sorted((c for c in groups[key] if c.opset < 13), key=lambda c: _crc(c.id))
        seqs.append(hi[:5] + lo[:1] + hi[5:] + lo[1:])
    picked: list = []
    at = 0
    while len(picked) < n and any(at < len(s) for s in seqs):
        for s in seqs:
            take = s[at:at + depth][:n - len(picked)]
            picked += take
        at += depth
    return picked


def sample_cases(cases_dir: Path, n: int, min_opset: int = 11, max_opset: int = 21,
                 exclude: frozenset[str] = frozenset(), frameworks: tuple[str, ...] = ("paddle", "torch"),
                 exporters: tuple[str, ...] = (), dtypes: tuple[str, ...] = (),
                 weights: dict | None = None, suite_dir: Path | None = None, opsets: str = "full",
                 depths: dict | None = None) -> list:
    """A deterministic sample of ``n`` runnable CPU cases (see the module's docstring), in matrix order.

    ``weights`` (``(framework, exporter)`` -> weight, e.g. :func:`matrix_weights`): each stratum's share
    of ``n``; None: one round-robin over every group, whatever its stratum. ``depths`` (stratum ->
    cases per group, e.g. :func:`matrix_depths`; default 1): how many cases of a group are drawn in
    its turn. ``suite_dir`` (default ``cases_dir``): where the matrix files are (``cases_dir /
    "models"`` for the model suite). ``exclude`` holds case ids or model keys (a model key leaves
    out every case of that model).
    """
    m = expand(str(suite_dir or cases_dir), str(Path(cases_dir) / "tolerances.yaml"), opsets,
               tuple(frameworks), tuple(exporters))
    order = {c.id: i for i, c in enumerate(m.cases)}
    cands = [c for c in m.cases if not c.skip and min_opset <= c.opset <= max_opset and c.id not in exclude
             and c.model_key not in exclude and (not dtypes or c.dtype in dtypes)]
    if weights is None:
        picked = _round_robin(cands, n)
    else:
        strata: dict[Stratum, list] = defaultdict(list)
        for c in cands:
            strata[(c.framework, c.exporter)].append(c)
        quota = apportion(n, {k: weights.get(k, 0) for k in strata}, {k: len(v) for k, v in strata.items()})
        picked = [c for k, v in strata.items() for c in _round_robin(v, quota[k], (depths or {}).get(k, 1))]
    return sorted(picked, key=lambda c: order[c.id])


def shares(weights: dict) -> dict[str, float]:
    """Per framework and per ``framework/exporter``: its fraction of the total weight."""
    total = sum(weights.values()) or 1
    out: dict[str, float] = defaultdict(float)
    for (fw, ex), w in weights.items():
        out[fw] += w / total
        out[f"{fw}/{ex}"] += w / total
    return dict(out)
