"""Expected failures: data with a reason, applied strictly.

``cases/expected_failures/<framework>.yaml`` (one file per framework; a single
``expected_failures.yaml`` is read the same way) lists two kinds of entries:

* ``{cause, reason, link?, match?, opsets?, runtimes?, passes?}``: every failing
  case whose cause (see :mod:`harness.core.causes`, computed from its record)
  is ``cause`` is expected, wherever the bug shows; ``match`` and the rest may
  narrow it. A cause entry whose cause occurs in no record of a whole run is
  reported as stale.
* ``{match, opsets?, runtimes?, passes?, status, reason, link?}``, below.

``match`` is an fnmatch pattern over case ids and ``opsets`` (e.g. ``"7~12"``)
narrows it to the cases whose opset is in that range. ``runtimes`` / ``passes`` (lists of
names, e.g. ``[ort]``, ``[none, onnxoptimizer]``) narrow it to cases run on those runtimes
after those post-export passes; without them an entry covers every runtime and pass, as an
exporter's bug fails under all of them. A case covered by an entry must end with one of the
listed statuses:

* it does -> ``xfail`` with the entry's reason;
* it passes -> an unexpected pass, reported as a failure (strict);
* it fails another way -> a failure that names both statuses.

Entries that match no collected case are reported at the end of the run.
"""

from __future__ import annotations

import bisect
import heapq
import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import schema
from harness.core.case import DEFAULT_PASS, DEFAULT_RUNTIME
from .yamlsrc import load_yaml


_OPSET = re.compile(r"-opset(\d+)-")


@dataclass
class Expectation:
    """One expected-failure entry."""

    match: str
    opsets: tuple[int, int] | None
    status: tuple[str, ...]
    reason: str
    link: str = ""
    line: int | None = None
    #: the runtimes / post-export passes the entry covers (None: all)
    runtimes: tuple[str, ...] | None = None
    passes: tuple[str, ...] | None = None
    #: the cause id the entry covers (a cause entry; ``match`` then only narrows it)
    cause: str = ""
    #: the file the entry comes from
    path: str = ""
    _rx: re.Pattern | None = field(default=None, compare=False, repr=False)

    def covers(self, case_id: str, runtime: str = DEFAULT_RUNTIME, post_pass: str = DEFAULT_PASS) -> bool:
        """True when ``case_id`` matches the pattern and, if given, the opset range, runtimes and passes."""
        if self.runtimes is not None and runtime not in self.runtimes:
            return False
        if self.passes is not None and post_pass not in self.passes:
            return False
        if self._rx is None:
            self._rx = re.compile(fnmatch.translate(self.match))
        if not self._rx.match(case_id):
            return False
        if self.opsets is None:
            return True
        m = _OPSET.search(case_id)
        return bool(m) and self.opsets[0] <= int(m.group(1)) <= self.opsets[1]

    def text(self) -> str:
        """The reason, with its link when there is one."""
        return f"{self.reason} ({self.link})" if self.link else self.reason

    def where(self) -> str:
        """``file:line`` of the entry."""
        return f"{self.path}:{self.line}"


#: an id's first fields, the key of :meth:`Expectations.find`'s index: framework, exporter, kernel
_HEAD_FIELDS = 3


def _head(text: str) -> str:
    return "-".join(text.split("-", _HEAD_FIELDS)[:_HEAD_FIELDS])


def _any_opset(text: str) -> str:
    """``text`` (an id or a pattern) with its opset field made a wildcard."""
    return _OPSET_FIELD.sub("-opset*-", text)


_OPSET_FIELD = re.compile(r"-opset[0-9*?]*-")


def _literal_prefix(pattern: str) -> str:
    """What every id an fnmatch pattern matches starts with (the part before its first wildcard)."""
    return re.split(r"[*?\[]", pattern, maxsplit=1)[0]


class Expectations:
    """The loaded entries and lookup by case id."""

    def __init__(self, entries: list[Expectation], path: str = ""):
        self.entries = entries
        self.path = path
        self._index: tuple[dict[str, list[int]], list[int]] | None = None

    @classmethod
    def load(cls, path: str | Path, forms: str = "fixed") -> "Expectations":
        """Load and validate a folder of ``<framework>.yaml`` files or one file (missing: no entries).

        With ``forms="derived"`` (``--forms derived``) a folder's ``derived/<framework>.yaml`` files
        are read too: the expected failures that only derived variants show, which a default run
        neither applies nor reports as stale.
        """
        path = Path(path)
        if path.is_dir():
            out: list[Expectation] = []
            files = sorted(path.glob("*.yaml"))
            if forms == "derived":
                files += sorted((path / "derived").glob("*.yaml"))
            for p in files:
                out.extend(_load_file(p, p.stem))
            return cls(out, str(path))
        if not path.exists():
            return cls([], str(path))
        return cls(_load_file(path), str(path))

    def find(self, case_id: str, runtime: str = DEFAULT_RUNTIME, post_pass: str = DEFAULT_PASS,
             cause: str = "") -> Expectation | None:
        """The first entry that covers ``case_id`` (run on ``runtime`` after ``post_pass``).

        ``cause``: the id of the case's failure cause (a failing record's): a
        cause entry for it wins over pattern entries.

        Only the entries that can match are tested: an entry whose literal
        prefix (its pattern up to the first wildcard) holds three dashes can
        only match ids that begin with the same three dash-separated fields
        (framework, exporter, kernel), so entries are indexed by them; the
        others are tested for every id. File order is kept (first match wins).
        """
        if self._index is None:
            self._index = self._build_index()
        by_head, general, by_cause = self._index
        for i in by_cause.get(cause, ()) if cause else ():
            e = self.entries[i]
            if e.covers(case_id, runtime, post_pass):
                return e
        for i in heapq.merge(by_head.get(_head(case_id), ()), general):
            e = self.entries[i]
            if e.covers(case_id, runtime, post_pass):
                return e
        return None

    @property
    def by_cause(self) -> dict[str, list[Expectation]]:
        """The cause entries by cause id."""
        out: dict[str, list[Expectation]] = {}
        for e in self.entries:
            if e.cause:
                out.setdefault(e.cause, []).append(e)
        return out

    def stale_causes(self, records) -> list[Expectation]:
        """The cause entries whose cause no failing record of ``records`` has (computed per record)."""
        from harness.core.causes import cause_of

        seen = {c.id for c in map(cause_of, records) if c is not None}
        return [e for e in self.entries if e.cause and e.cause not in seen]

    def _build_index(self) -> tuple[dict[str, list[int]], list[int], dict[str, list[int]]]:
        by_head: dict[str, list[int]] = {}
        general: list[int] = []
        by_cause: dict[str, list[int]] = {}
        for i, e in enumerate(self.entries):
            if e.cause:
                by_cause.setdefault(e.cause, []).append(i)
                continue
            prefix = _literal_prefix(e.match)
            if prefix.count("-") >= _HEAD_FIELDS:
                by_head.setdefault(_head(prefix), []).append(i)
            else:
                general.append(i)
        return by_head, general, by_cause

    def mark_collected(self, case_ids, axes: dict[str, tuple[str, str]] | None = None,
                       any_opset: bool = False) -> list[Expectation]:
        """Return the entries that match none of the collected ids.

        ``axes`` maps an id to its (runtime, post-export pass) when not the defaults.
        ``any_opset``: an entry counts as matched when it matches a collected id
        at any opset (the opset in ids and patterns, and the entry's ``opsets``
        range, are ignored): for a run of fewer opsets than ``--opsets full``,
        where an entry about the other opsets is not stale.

        Ids are sorted once, and each entry only tests the ids that start with
        its pattern's literal prefix (found by bisection).
        """
        axes = axes or {}
        if any_opset:
            axes = {_any_opset(cid): ax for cid, ax in axes.items()}
            case_ids = {_any_opset(cid) for cid in case_ids}
        ids = sorted(case_ids)
        stale = []
        for e in self.entries:
            if e.cause:  # stale when its cause occurs in no record: see stale_causes
                continue
            probe = replace(e, match=_any_opset(e.match), opsets=None, _rx=None) if any_opset else e
            prefix = _literal_prefix(probe.match)
            start = bisect.bisect_left(ids, prefix)
            hit = False
            for cid in ids[start:]:
                if not cid.startswith(prefix):
                    break
                if probe.covers(cid, *axes.get(cid, (DEFAULT_RUNTIME, DEFAULT_PASS))):
                    hit = True
                    break
            if not hit:
                stale.append(e)
        return stale


def _load_file(path: Path, framework: str = "") -> list[Expectation]:
    """The entries of one file; in ``<framework>.yaml`` every ``match`` must start with ``<framework>-``."""
    from harness.core import status as st
    from .matrix import parse_range, validate
    from .yamlsrc import MatrixError

    doc = load_yaml(path)
    validate(doc, schema.EXPECTED)
    out = []
    for i, e in enumerate(doc.data["expected_failures"]):
        where = ("expected_failures", i)
        if "cause" not in e and "match" not in e:
            raise MatrixError(path, doc.line_of(where), f"expected_failures[{i}]",
                              "an entry needs 'cause' (a cause id) or 'match' (an id pattern)")
        if "cause" not in e and "status" not in e:
            raise MatrixError(path, doc.line_of(where), f"expected_failures[{i}]",
                              "a 'match' entry needs 'status' (the failure statuses it expects)")
        if framework and "match" in e and not e["match"].startswith(f"{framework}-"):
            raise MatrixError(path, doc.line_of((*where, "match")), f"expected_failures[{i}].match",
                              f"{e['match']!r} is not a {framework} case id pattern (file {path.name})")
        for s in e.get("status", ()):
            if s not in st.FAILURES:
                raise MatrixError(path, doc.line_of((*where, "status")),
                                  f"expected_failures[{i}].status",
                                  f"{s!r} is not a failure status ({', '.join(sorted(st.FAILURES))})")
        rng = None
        if "opsets" in e:
            rng = parse_range(e["opsets"], doc, (*where, "opsets"))
        # a cause entry of <framework>.yaml covers that framework's cases only
        default_match = f"{framework}-*" if framework else "*"
        out.append(Expectation(e.get("match", default_match), rng, tuple(e.get("status", ())), e["reason"],
                               e.get("link", ""), doc.line_of(where),
                               tuple(e["runtimes"]) if "runtimes" in e else None,
                               tuple(e["passes"]) if "passes" in e else None,
                               e.get("cause", ""), str(path)))
    return out
