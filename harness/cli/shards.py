"""Shard wall times of a results file: crc32 partition against the cost-balanced one.

For N shards, sums the ``wall_s`` of each model key's records per shard under
both partitions (the crc32 one of ``--shard-id K --num-shards N`` and the one
``--shard-durations RESULTS`` deals) and prints each shard's seconds and the
spread (max/min, max/mean). The keys are those of the file itself, so the
balanced figure is what the same matrix gets when last night's file balances
tonight's run.
"""

from __future__ import annotations

import json
import sys

from harness.plugin import sharding

HELP = "shard wall times of a results file: crc32 vs cost-balanced partition"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness shards``."""
    p.add_argument("results", metavar="RESULTS", help="results file with per-case wall_s")
    p.add_argument("--num-shards", type=int, default=4, help="number of shards (default 4)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def plan(costs: dict[str, float], num_shards: int) -> dict:
    """Per-shard seconds and spread of both partitions over the keys of ``costs``."""
    out = {}
    for name, part in (("crc32", sharding.Partition(num_shards)),
                       ("balanced", sharding.Partition(num_shards, costs))):
        part.assign(costs)
        per = {k: 0.0 for k in range(1, num_shards + 1)}
        for key, cost in costs.items():
            per[part.shard_of(key)] += cost
        out[name] = sharding.spread(per)
    return out


def run(args) -> int:
    """Print both partitions' shard wall times; 2 on unusable input."""
    if args.num_shards < 1:
        print("error: --num-shards must be at least 1", file=sys.stderr)
        return 2
    try:
        costs = sharding.load_costs(args.results)
    except sharding.ShardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = plan(costs, args.num_shards)
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
        return 0
    print(f"{len(costs)} model keys, {sum(costs.values()):.1f} s of case wall time, {args.num_shards} shards")
    for name, r in result.items():
        secs = "  ".join(f"{k}:{v:.1f}" for k, v in r["shards"].items())
        print(f"{name:<9} {secs}   max/min={r['max_over_min']}  max/mean={r['max_over_mean']}")
    return 0
