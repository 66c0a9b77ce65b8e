"""Result records on disk: one JSON object per line, appended as each case ends.

Only the pytest controller writes (xdist workers send their records to it), so
one run produces one file and a run killed half-way keeps every finished case.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import record

SCHEMA_VERSION = 1


class ResultsWriter:
    """Appends records to a JSONL file, flushed per record.

    A flushed line is in the operating system's hands, so a run that is killed
    (or whose pytest process dies) keeps every finished case; an fsync per
    record would also survive a power cut, at several milliseconds a case.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")
        self.count = 0

    def write(self, record: dict) -> None:
        """Append one record and flush it to the operating system."""
        self._f.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._f.flush()
        self.count += 1

    def close(self) -> None:
        """Close the file (fsynced once at the end)."""
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


@dataclass
class BadLine:
    """A line of a results file that is not a valid record."""

    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def read_results(path: str | Path, bad: list[BadLine] | None = None) -> Iterator[dict]:
    """Yield every valid record of ``path``; invalid lines go to ``bad`` (or raise ValueError)."""
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            problem = None
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = f"not valid JSON ({exc.msg} at column {exc.colno}); truncated or corrupt line"
            else:
                problem = record.problem(rec)
                if problem and isinstance(rec, dict) and isinstance(rec.get("id"), str) and rec["id"]:
                    problem = f"record {rec['id']!r}: {problem}"
            if problem:
                b = BadLine(str(path), n, problem)
                if bad is None:
                    raise ValueError(str(b))
                bad.append(b)
                continue
            yield rec
