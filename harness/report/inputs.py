"""Find results files, read them (collecting bad lines) and merge duplicate records.

Merge rule for records sharing an ``id``: identical duplicates collapse; among
different ones the record with the newest ``finished`` wins (ties: the larger
canonical JSON, so the result never depends on argument order). When the
duplicates disagree on ``status`` the kept record gets a ``conflict`` field and
the conflict is listed, so reports can show it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .results import BadLine, NotResults, read_results
from harness.core.errors import HarnessError

ROOT = Path(__file__).resolve().parent.parent.parent
MERGE_RULE = "newest 'finished' wins (ties: larger canonical JSON)"


class InputError(HarnessError):
    """A results argument that cannot be used at all (missing file, empty folder, not a results file)."""


@dataclass
class Loaded:
    """Merged records (sorted by id) with what went wrong on the way."""

    files: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    duplicates: int = 0
    #: property-mode records (``mode: explore``) left out of the support tables
    explore: int = 0


def newest_results(root: Path = ROOT) -> Path:
    """The newest ``results/run-*.jsonl`` under ``root`` (by modification time, then name)."""
    files = sorted((root / "results").glob("run-*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
    if not files:
        raise InputError(f"no results given and no {root / 'results'}/run-*.jsonl found")
    return files[-1]


def expand(paths: list[str | Path]) -> list[Path]:
    """Files to read: a folder stands for every ``*.jsonl`` in it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.jsonl"))
            if not found:
                raise InputError(f"{p}: folder holds no *.jsonl results file")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such results file or folder")
    return out


def canonical(rec: dict) -> str:
    """The record as sorted-key JSON (for equality and tie-breaking)."""
    return json.dumps(rec, sort_keys=True, default=str)


def load(paths: list[str | Path], include_explore: bool = True) -> Loaded:
    """Read every file of ``paths`` (folders expanded) and merge their records by id.

    ``include_explore=False`` sets property-mode records aside (counted in
    ``Loaded.explore``): their drawn configurations are not matrix cases.
    """
    files = expand(paths)
    out = Loaded(files=[str(f) for f in files])
    by_id: dict[str, list[tuple[dict, str]]] = {}
    for f in files:
        try:
            for rec in read_results(f, bad=out.bad):
                if not include_explore and rec.get("mode") == "explore":
                    out.explore += 1
                    continue
                by_id.setdefault(str(rec["id"]), []).append((rec, str(f)))
        except NotResults as exc:
            raise InputError(str(exc)) from None
    for rid in sorted(by_id):
        rec, conflict = resolve(by_id[rid])
        out.duplicates += len(by_id[rid]) - 1
        if conflict:
            out.conflicts.append(conflict)
        elif isinstance(rec.get("conflict"), dict):  # flagged by an earlier merge
            out.conflicts.append({"id": rid, **rec["conflict"]})
        out.records.append(rec)
    return out


def resolve(entries: list[tuple[dict, str]]) -> tuple[dict, dict | None]:
    """Pick one record among duplicates; return it and the conflict (None if statuses agree)."""
    uniq: dict[str, tuple[dict, str]] = {}
    for rec, src in entries:
        uniq.setdefault(canonical(rec), (rec, src))
    if len(uniq) == 1:
        return next(iter(uniq.values()))[0], None
    ranked = sorted(uniq.items(), key=lambda kv: (str(kv[1][0].get("finished") or ""), kv[0]))
    winner, wsrc = ranked[-1][1]
    if len({r["status"] for r, _ in uniq.values()}) == 1:
        return winner, None

    def brief(rec: dict, src: str) -> dict:
        return {"status": rec["status"], "finished": rec.get("finished"), "source": src}

    conflict = {"rule": MERGE_RULE, "kept": brief(winner, wsrc),
                "dropped": [brief(r, s) for _, (r, s) in ranked[:-1]]}
    winner = dict(winner)
    winner["conflict"] = conflict
    return winner, {"id": winner["id"], **conflict}


def newest_finished(records: list[dict]) -> str:
    """The newest ``finished`` stamp of the records (the report's date), or 'unknown'."""
    stamps = [str(r["finished"]) for r in records if r.get("finished")]
    return max(stamps) if stamps else "unknown"
