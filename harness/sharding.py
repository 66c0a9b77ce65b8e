"""Deterministic sharding of the collected cases for nightly CI (``--shard-id K --num-shards N``).

A case belongs to shard ``crc32(case.model_key) % N + 1`` (shards are numbered
1..N). The key is the *model key* (framework, kernel, variant, dtype), not the
case id, so every opset, exporter and device of one model variant lands on the
same shard: the runner's ``ModelCache`` (model, inputs, reference outputs) and
Paddle's one ``jit.save`` per variant are paid once per shard instead of once on
every shard. crc32 is stable across processes and Python versions (unlike
``hash()``), so every xdist worker and every CI job computes the same partition.
"""

from __future__ import annotations

import zlib
from typing import Iterable, TypeVar

T = TypeVar("T")


class ShardError(ValueError):
    """Bad ``--shard-id`` / ``--num-shards`` values."""


def check(shard_id: int | None, num_shards: int | None) -> tuple[int, int] | None:
    """Validate the options; None when sharding is off."""
    if shard_id is None and num_shards is None:
        return None
    if shard_id is None or num_shards is None:
        raise ShardError("--shard-id and --num-shards go together")
    if num_shards < 1 or not 1 <= shard_id <= num_shards:
        raise ShardError(f"need 1 <= --shard-id <= --num-shards, got {shard_id} of {num_shards}")
    return shard_id, num_shards


def shard_of(model_key: str, num_shards: int) -> int:
    """The shard (1..num_shards) of a model key."""
    return zlib.crc32(model_key.encode()) % num_shards + 1


def split(items: Iterable[T], key, shard_id: int, num_shards: int) -> tuple[list[T], list[T]]:
    """(selected, deselected) for shard ``shard_id``; ``key(item)`` gives the model key."""
    keep, drop = [], []
    for it in items:
        (keep if shard_of(key(it), num_shards) == shard_id else drop).append(it)
    return keep, drop


def suffix(shard_id: int, num_shards: int) -> str:
    """Results-file suffix, e.g. ``-shard1of4``."""
    return f"-shard{shard_id}of{num_shards}"
