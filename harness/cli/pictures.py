"""Draw graph.svg into every repro bundle that lacks one (Netron, headless Chromium).

A run draws its failing cases' models while it runs and for at most --pictures-wait
seconds after its last case; this command draws the rest. ARGS are results files (the
bundles their records name), repro bundle folders, or folders of bundles (such as
artifacts/repro); default: the newest results/run-*.jsonl. One browser draws them all
(one Netron server per folder of bundles), on loopback only.

Exit codes: 0 every picture drawn (or none missing); 1 some could not be drawn (each is
printed) or no Chromium; 2 usage (a missing file or folder).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness.report.inputs import InputError, load, newest_results

HELP = "draw graph.svg into every repro bundle (of a results file or folder) that lacks one"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness pictures``."""
    p.add_argument("paths", nargs="*", metavar="RESULTS|BUNDLES",
                   help="results files, bundle folders or folders of bundles (default: the newest "
                        "results/run-*.jsonl)")
    p.add_argument("--force", action="store_true", help="draw again where a picture exists")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds a picture may take (default 60)")


def bundles_of(paths: list[str]) -> list[Path]:
    """The bundle folders ``paths`` name (results files: their records' ``repro_bundle``)."""
    out: list[Path] = []
    results = []
    for p in map(Path, paths):
        if p.is_dir() and (p / "case.json").is_file():
            out.append(p)
        elif p.is_dir() and not any(p.glob("*.jsonl")):
            out += sorted(d for d in p.iterdir() if (d / "case.json").is_file())
        else:
            results.append(str(p))
    if results:
        out += [Path(r["repro_bundle"]) for r in load(results).records
                if r.get("repro_bundle") and Path(r["repro_bundle"]).is_dir()]
    return list(dict.fromkeys(out))


def run(args) -> int:
    """Draw each missing picture; print one line per problem and a total."""
    from harness.report import netron

    try:
        bundles = bundles_of(args.paths or [str(newest_results())])
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    todo = [(m, pic) for b in bundles for m, pic in netron.bundle_pictures(b) if args.force or not pic.exists()]
    if not todo:
        print(f"{len(bundles)} bundles: no picture missing")
        return 0
    made = failed = 0
    t0 = time.perf_counter()
    try:
        with netron.Pictures(timeout=args.timeout, root=_common_root(todo)) as pictures:
            for model, pic in todo:
                try:
                    pictures.take(model, pic)
                    made += 1
                except netron.PictureError as exc:
                    failed += 1
                    print(f"error: {exc}", file=sys.stderr)
    except netron.PictureError as exc:  # no browser at all
        print(f"error: {exc}", file=sys.stderr)
        return 1
    dt = time.perf_counter() - t0
    print(f"{made} of {len(todo)} pictures drawn in {len(bundles)} bundles in {dt:.1f} s"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _common_root(todo: list[tuple[Path, Path]]) -> Path:
    """The folder holding every bundle (one Netron server for all of them)."""
    import os

    return Path(os.path.commonpath([str(m.resolve().parent.parent) for m, _ in todo]))
