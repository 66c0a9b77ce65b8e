"""Create or list the extra Python environments of frameworks that cannot share the main one.

They are declared in pyproject.toml under [tool.harness.environments.<name>]
(Python version, path, pinned requirements, frameworks). `create` is
idempotent: an environment whose marker matches its declaration is left as it
is; a missing or stale one is (re)made, probed and marked.

    python -m harness envs create              # every declared environment
    python -m harness envs create oneflow      # just one
    python -m harness envs create --jobs 1     # one after another (default: two at once)
    python -m harness envs list                # state, size, versions
    python -m harness envs key                 # hash of the declarations (a CI cache key)
"""

from __future__ import annotations

import sys

from harness.isolation import environments

HELP = "create or list the extra environments (TensorFlow, OneFlow, ...)"


def add_arguments(p) -> None:
    """``create [NAME ...] [--recreate]`` or ``list``."""
    p.add_argument("action", choices=["create", "list", "key"],
                   help="create them; list their state; key: print a hash of their declarations in "
                        "pyproject.toml (changes when a pin does), for a CI cache key")
    p.add_argument("names", nargs="*", metavar="NAME", help="environments to act on (default: all)")
    p.add_argument("--recreate", action="store_true", help="delete and make them again")
    from harness.plugin.options import positive_count

    p.add_argument("--jobs", type=positive_count, default=2, metavar="N",
                   help="environments made at once (default 2: a download or an unpacking of one overlaps "
                        "the other's; each checks the disk it needs itself)")


def run(args) -> int:
    """Exit 0 when every named environment is ready (create) or listed; 2 for an unknown name."""
    envs = environments.declared()
    unknown = [n for n in args.names if n not in envs]
    if unknown:
        print(f"python -m harness envs: unknown environment {unknown[0]!r} "
              f"(pyproject.toml declares: {', '.join(envs) or 'none'})", file=sys.stderr)
        return 2
    chosen = [envs[n] for n in (args.names or envs)]
    if args.action == "key":
        print(environments.tables_key())
        return 0
    if args.action == "list":
        for env in chosen:
            for fw in env.frameworks:
                reason = environments.unavailable(fw)
                data = env.marker_data() or {}
                state = "ready" if reason is None else reason
                size = f", {data['size_bytes'] / 2**30:.2f} GiB" if "size_bytes" in data else ""
                print(f"{env.name}: Python {env.python}, {environments.show_path(env.path)}{size}: {state}")
        return 0
    from concurrent.futures import ThreadPoolExecutor

    def make(env) -> str | None:
        """Make one environment; its name if that failed (each log line starts with ``[name]``)."""
        try:
            environments.create(env, log=lambda line: print(line, flush=True), recreate=args.recreate)
        except environments.EnvironmentSpecError as exc:
            print(f"[{env.name}] FAILED: {exc}", file=sys.stderr, flush=True)
            return env.name
        return None

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        failed = [name for name in pool.map(make, chosen) if name]
    if failed:
        print(f"not ready: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
