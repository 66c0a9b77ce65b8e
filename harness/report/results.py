"""Result records on disk: one JSON object per line, appended as each case ends.

Only the pytest controller writes (xdist workers send their records to it), so
one run produces one file and a run killed half-way keeps every finished case.

A line is written with one ``write`` call on a file opened for appending, and
a write that fails part-way (a full disk) is cut back, so the file only ever
holds whole lines. A torn tail left by a run killed some other way is repaired
(a complete record gets its newline) or cut off when the file is next opened,
so it is never glued to the next record.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness.core import record
from harness.core.errors import HarnessError

SCHEMA_VERSION = 1


class WriteFailed(HarnessError, OSError):
    """A record could not be written (full disk, lost device): the file still ends with a whole line."""


class NotResults(HarnessError, ValueError):
    """A file that is not a results file at all (binary, a JSON document, text of another kind)."""


class ResultsWriter:
    """Appends records to a JSONL file, one ``write`` per record.

    A written line is in the operating system's hands, so a run that is killed
    (or whose pytest process dies) keeps every finished case; an fsync per
    record would also survive a power cut, at several milliseconds a case.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_appendable(self.path)  # never "repair" (cut) a file that is not results
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.count = 0
        #: what was done to a torn tail found on opening (None: the file ended with a whole line)
        self.repaired: str | None = None
        try:
            self._size = self._repair_tail()
        except OSError as exc:
            os.close(self._fd)
            raise WriteFailed(exc.errno, f"{self.path}: cannot repair its torn last line: "
                              f"{exc.strerror or exc}") from None

    def _repair_tail(self) -> int:
        """Make the file end with a whole line; return its size."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return 0
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return size
            keep = size - 1
            while keep > 0:  # back to the end of the last whole line
                step = min(keep, 1 << 16)
                f.seek(keep - step)
                cut = f.read(step).rfind(b"\n")
                if cut >= 0:
                    keep = keep - step + cut + 1
                    break
                keep -= step
            f.seek(keep)
            torn = f.read()
        try:
            whole = record.problem(json.loads(torn)) is None
        except (ValueError, UnicodeDecodeError):
            whole = False
        if whole:  # a complete record that lost only its newline
            self._write_all(b"\n")
            self.repaired = f"{self.path}: the last record had no newline; one added"
            return size + 1
        os.ftruncate(self._fd, keep)
        self.repaired = (f"{self.path}: cut off a torn last line ({len(torn)} bytes, "
                         f"not a whole record) left by an earlier run")
        return keep

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[n:]

    def write(self, rec: dict) -> None:
        """Append one record as one whole line, or raise :class:`WriteFailed` leaving none of it."""
        data = (json.dumps(rec, sort_keys=True, default=str) + "\n").encode("utf-8")
        try:
            self._write_all(data)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise WriteFailed(exc.errno, f"{self.path}: cannot write the record of {rec.get('id')!r}: "
                              f"{exc.strerror or exc}; the file keeps the {self.count} record(s) "
                              f"written before it") from None
        self._size += len(data)
        self.count += 1

    def close(self) -> None:
        """Close the file (fsynced once at the end; a failing fsync is ignored: the data was written)."""
        if self._fd < 0:
            return
        try:
            os.fsync(self._fd)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1


def check_appendable(path: str | Path) -> None:
    """Raise :class:`NotResults` unless ``path`` is absent, empty, or a results file (maybe with a torn tail).

    Records are appended, and a torn last line is cut, only in a file of
    records: its first line is a whole record, or (a run killed during its very
    first write) the file is one unfinished line of JSON text. A text file, an
    image, a JSON document or a report is refused, never touched.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WriteFailed(exc.errno, f"{path}: cannot read it ({exc.strerror})") from None
    if not head:
        return
    first, newline, _ = head.partition(b"\n")
    if not newline and len(head) < (1 << 20):  # one torn line and nothing else
        try:  # UTF-8 text, maybe cut inside a character
            codecs.getincrementaldecoder("utf-8")().decode(first)
            text = b"\0" not in first
        except UnicodeDecodeError:
            text = False
        if text and first.startswith(b'{"'):
            return
        raise NotResults(f"{path}: not a results file (no whole line, and not the start of a record); "
                         f"nothing was written to it")
    rec, problem = _line_problem(first)
    if problem or b"\0" in first:
        raise NotResults(str(_not_results(path, first, 1, problem or "binary data"))
                         + "; nothing was written to it")


@dataclass
class BadLine:
    """A line of a results file that is not a valid record."""

    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def _line_problem(raw: bytes) -> tuple[dict | None, str | None]:
    try:
        rec = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno}); truncated or corrupt line"
    problem = record.problem(rec)
    if problem and isinstance(rec, dict) and isinstance(rec.get("id"), str) and rec["id"]:
        problem = f"record {rec['id']!r}: {problem}"
    return rec, problem


def _not_results(path: Path, first: bytes, n: int, problem: str) -> NotResults:
    """Why a file whose first line is no record is not a results file at all."""
    if b"\0" in first or problem == "not UTF-8 text":
        return NotResults(f"{path}: not a results file (binary data, not JSON lines)")
    if problem.startswith("not valid JSON") and first.strip()[:1] in (b"{", b"["):
        try:
            with open(path, "rb") as f:
                json.loads(f.read(64 << 20))
        except ValueError:
            pass
        else:
            return NotResults(f"{path}: not a results file: one JSON document, not one record per line "
                              f"(a report's support.json is an output, not an input)")
    return NotResults(f"{path}: not a results file: line {n} is not a result record ({problem})")


def read_results(path: str | Path, bad: list[BadLine] | None = None) -> Iterator[dict]:
    """Yield every valid record of ``path``; invalid lines go to ``bad`` (or raise ValueError).

    A file whose first line is not a record (binary data, a JSON document such
    as a report's ``support.json``, text of another kind) raises
    :class:`NotResults` instead of listing each of its lines.
    """
    path = Path(path)
    first = True
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            rec, problem = _line_problem(raw)
            if first and (problem or b"\0" in raw):
                raise _not_results(path, raw, n, problem or "binary data")
            first = False
            if problem:
                b = BadLine(str(path), n, problem)
                if bad is None:
                    raise ValueError(str(b))
                bad.append(b)
                continue
            yield rec
