"""Expected failures: data with a reason, applied strictly.

``cases/expected_failures.yaml`` lists entries ``{match, opsets?, runtimes?, passes?, status,
reason, link?}``; ``match`` is an fnmatch pattern over case ids and ``opsets`` (e.g. ``"7~12"``)
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
    def load(cls, path: str | Path) -> "Expectations":
        """Load and validate ``expected_failures.yaml`` (a missing file means no entries)."""
        from harness.core import status as st
        from .matrix import parse_range, validate
        from .yamlsrc import MatrixError

        path = Path(path)
        if not path.exists():
            return cls([], str(path))
        doc = load_yaml(path)
        validate(doc, schema.EXPECTED)
        out = []
        for i, e in enumerate(doc.data["expected_failures"]):
            for s in e["status"]:
                if s not in st.FAILURES:
                    raise MatrixError(path, doc.line_of(("expected_failures", i, "status")),
                                      f"expected_failures[{i}].status",
                                      f"{s!r} is not a failure status ({', '.join(sorted(st.FAILURES))})")
            rng = None
            if "opsets" in e:
                rng = parse_range(e["opsets"], doc, ("expected_failures", i, "opsets"))
            out.append(Expectation(e["match"], rng, tuple(e["status"]), e["reason"], e.get("link", ""),
                                   doc.line_of(("expected_failures", i)),
                                   tuple(e["runtimes"]) if "runtimes" in e else None,
                                   tuple(e["passes"]) if "passes" in e else None))
        return cls(out, str(path))

    def find(self, case_id: str, runtime: str = DEFAULT_RUNTIME, post_pass: str = DEFAULT_PASS) -> Expectation | None:
        """The first entry that covers ``case_id`` (run on ``runtime`` after ``post_pass``).

        Only the entries that can match are tested: an entry whose literal
        prefix (its pattern up to the first wildcard) holds three dashes can
        only match ids that begin with the same three dash-separated fields
        (framework, exporter, kernel), so entries are indexed by them; the
        others are tested for every id. File order is kept (first match wins).
        """
        if self._index is None:
            self._index = self._build_index()
        by_head, general = self._index
        for i in heapq.merge(by_head.get(_head(case_id), ()), general):
            e = self.entries[i]
            if e.covers(case_id, runtime, post_pass):
                return e
        return None

    def _build_index(self) -> tuple[dict[str, list[int]], list[int]]:
        by_head: dict[str, list[int]] = {}
        general: list[int] = []
        for i, e in enumerate(self.entries):
            prefix = _literal_prefix(e.match)
            if prefix.count("-") >= _HEAD_FIELDS:
                by_head.setdefault(_head(prefix), []).append(i)
            else:
                general.append(i)
        return by_head, general

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
