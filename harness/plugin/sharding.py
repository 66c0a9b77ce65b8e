"""Deterministic sharding of the collected cases for nightly CI (``--shard-id K --num-shards N``).

Shards hold whole *model keys* (framework, kernel, variant, dtype), never parts
of one: every opset, exporter and device of one model variant lands on the
same shard, so the runner's ``ModelCache`` (model, inputs, reference outputs)
and Paddle's one ``jit.save`` per variant are paid once per shard instead of
once on every shard.

Two partitions, both the same in every process (xdist workers, CI jobs):

* **crc32** (default): a key belongs to shard ``crc32(key) % N + 1``. crc32 is
  stable across processes and Python versions (unlike ``hash()``).
* **cost-balanced** (``--shard-durations RESULTS``): the wall time each key took
  in an earlier results file is its cost; keys are dealt longest first to the
  least-loaded shard (ties: the lower shard), keys absent from that file cost
  the median. The keys dealt are the ones collected, so every job of one CI
  matrix computes the same partition from the same file.

``--shard-id auto`` takes K and N from the CI's own variables: see
:data:`CI_SOURCES` (shards are 1-based here, whatever the CI counts from).
"""

from __future__ import annotations

import statistics
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, TypeVar
from harness.core.errors import HarnessError

T = TypeVar("T")


class ShardError(HarnessError, ValueError):
    """Bad ``--shard-id`` / ``--num-shards`` / ``--shard-durations`` values (a usage error)."""


@dataclass(frozen=True)
class CISource:
    """Where one CI system puts the shard index and count."""

    name: str
    index_var: str
    count_var: str
    #: what the CI's first index is (GitLab counts from 1, Kubernetes from 0)
    base: int


#: Looked up in this order; the first whose index variable is set decides.
CI_SOURCES: tuple[CISource, ...] = (
    # GitHub Actions has no shard variables of its own: the workflow passes its matrix
    # value and strategy.job-total explicitly (see .github/workflows/nightly.yml)
    CISource("GitHub Actions matrix (set by the workflow)", "SHARD_INDEX", "SHARD_TOTAL", 1),
    CISource("GitLab parallel jobs", "CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
    # an Indexed Job sets JOB_COMPLETION_INDEX; the count is .spec.completions, which the
    # Job spec passes as an env variable of this name
    CISource("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", "JOB_COMPLETIONS", 0),
)


def check(shard_id: int | None, num_shards: int | None) -> tuple[int, int] | None:
    """Validate the options; None when sharding is off."""
    if shard_id is None and num_shards is None:
        return None
    if shard_id is None or num_shards is None:
        raise ShardError("--shard-id and --num-shards go together")
    if num_shards < 1 or not 1 <= shard_id <= num_shards:
        raise ShardError(f"need 1 <= --shard-id <= --num-shards, got {shard_id} of {num_shards}")
    return shard_id, num_shards


def from_ci(env: Mapping[str, str]) -> tuple[int, int, str]:
    """(K, N, source name) for ``--shard-id auto`` from the CI variables in ``env``.

    Raises :class:`ShardError` naming every variable looked for when none is
    set, or the missing/bad one when a source is half set.
    """
    for src in CI_SOURCES:
        if src.index_var not in env:
            continue
        if src.count_var not in env:
            raise ShardError(f"--shard-id auto: {src.index_var} is set ({src.name}) but {src.count_var} "
                             f"(the shard count) is not")
        try:
            index, count = int(env[src.index_var]), int(env[src.count_var])
        except ValueError:
            raise ShardError(f"--shard-id auto: {src.index_var}={env[src.index_var]!r} and "
                             f"{src.count_var}={env[src.count_var]!r} must be integers") from None
        k = index - src.base + 1
        if count < 1 or not 1 <= k <= count:
            raise ShardError(f"--shard-id auto: {src.index_var}={index} is out of range for "
                             f"{src.count_var}={count} ({src.name} counts from {src.base})")
        return k, count, src.name
    looked = "; ".join(f"{s.index_var} + {s.count_var} ({s.name})" for s in CI_SOURCES)
    raise ShardError(f"--shard-id auto: no shard variables set; looked for {looked}")


def resolve(shard_id: str | None, num_shards: int | None,
            env: Mapping[str, str]) -> tuple[int, int] | None:
    """The (K, N) of the command line: ``--shard-id K|auto`` and ``--num-shards N``."""
    if shard_id is not None and shard_id.strip().lower() == "auto":
        k, n, source = from_ci(env)
        if num_shards is not None and num_shards != n:
            raise ShardError(f"--num-shards {num_shards} disagrees with {n} from the {source} variables")
        return k, n
    if shard_id is not None:
        try:
            shard_id = int(shard_id)
        except ValueError:
            raise ShardError(f"--shard-id {shard_id!r}: give a shard number 1..N or 'auto'") from None
    return check(shard_id, num_shards)


def shard_of(model_key: str, num_shards: int) -> int:
    """The crc32 shard (1..num_shards) of a model key."""
    return zlib.crc32(model_key.encode()) % num_shards + 1


def model_key_of(record: dict) -> str | None:
    """The model key of a result record (as :attr:`harness.core.case.Case.model_key`)."""
    try:
        return f"{record['framework']}-{record['kernel']}-{record['variant']}-{record['dtype']}"
    except KeyError:
        return None


def load_costs(path: str | Path) -> dict[str, float]:
    """Seconds per model key: the sum of ``wall_s`` of its records in a results file.

    Property-mode records and records without ``wall_s`` (skips) are left out.
    An unreadable file or one with no usable record is a :class:`ShardError`.
    """
    from harness.report.results import read_results

    costs: dict[str, float] = {}
    bad: list = []
    try:
        for rec in read_results(path, bad):
            key = model_key_of(rec)
            wall = rec.get("wall_s")
            if key is None or rec.get("mode") == "explore" or not isinstance(wall, (int, float)):
                continue
            costs[key] = costs.get(key, 0.0) + float(wall)
    except OSError as exc:
        raise ShardError(f"--shard-durations {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not a results file (text, binary, a JSON document)
        raise ShardError(f"--shard-durations {exc}") from None
    if not costs:
        raise ShardError(f"--shard-durations {path}: no record with a wall_s to take durations from")
    return costs


def balance(keys: Iterable[str], num_shards: int, costs: Mapping[str, float]) -> dict[str, int]:
    """Shard (1..N) of every key: longest first onto the least-loaded shard.

    Keys missing from ``costs`` cost the median of the known costs. The result
    depends only on the set of keys and the costs, not on their order.
    """
    keys = sorted(set(keys))
    known = [costs[k] for k in keys if k in costs] or list(costs.values()) or [1.0]
    median = statistics.median(known)
    load = [0.0] * num_shards
    out: dict[str, int] = {}
    for key in sorted(keys, key=lambda k: (-costs.get(k, median), k)):
        i = min(range(num_shards), key=lambda s: (load[s], s))
        out[key] = i + 1
        load[i] += costs.get(key, median)
    return out


class Partition:
    """Which shard each model key belongs to: crc32, or balanced by ``costs``."""

    def __init__(self, num_shards: int, costs: Mapping[str, float] | None = None):
        self.num_shards = num_shards
        self.costs = costs
        self._balanced: dict[str, int] | None = None

    def assign(self, keys: Iterable[str]) -> "Partition":
        """Fix the balanced partition over the collected ``keys`` (no-op for crc32)."""
        if self.costs is not None:
            self._balanced = balance(keys, self.num_shards, self.costs)
        return self

    def shard_of(self, key: str) -> int:
        """The shard (1..N) of ``key``."""
        if self._balanced is not None and key in self._balanced:
            return self._balanced[key]
        return shard_of(key, self.num_shards)


def split(items: Iterable[T], key, shard_id: int, num_shards: int,
          costs: Mapping[str, float] | None = None) -> tuple[list[T], list[T]]:
    """(selected, deselected) for shard ``shard_id``; ``key(item)`` gives the model key."""
    items = list(items)
    part = Partition(num_shards, costs).assign(key(it) for it in items)
    keep, drop = [], []
    for it in items:
        (keep if part.shard_of(key(it)) == shard_id else drop).append(it)
    return keep, drop


def spread(costs_by_shard: Mapping[int, float]) -> dict:
    """Figures of a partition's shard wall times: max, min, max/min and max/mean."""
    vals = list(costs_by_shard.values())
    mean = sum(vals) / len(vals) if vals else 0.0
    return {"shards": {k: round(v, 1) for k, v in sorted(costs_by_shard.items())},
            "max_s": round(max(vals), 1), "min_s": round(min(vals), 1),
            "max_over_min": round(max(vals) / min(vals), 3) if min(vals) > 0 else None,
            "max_over_mean": round(max(vals) / mean, 3) if mean > 0 else None}


def suffix(shard_id: int, num_shards: int) -> str:
    """Results-file suffix, e.g. ``-shard1of4``."""
    return f"-shard{shard_id}of{num_shards}"
