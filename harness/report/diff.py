"""Compare two sets of results by case id (regressions, fixes, status changes, added, removed) and by
cause (new causes, causes gone, causes whose reach grew or shrank; see :mod:`harness.core.causes`).

A case of the old run with no record in the new one (*vanished*) fails the
comparison like a regression, unless the caller allows it: a lost record (a
killed worker, a full disk) must not hide a regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.core import status as st
from .markdown import cell, text

#: Rows listed per section of the markdown (the counts are always complete).
MAX_ROWS = 200


@dataclass
class Diff:
    """The differences between an old and a new run."""

    regressions: list[tuple[dict, dict]] = field(default_factory=list)  # pass -> non-pass
    fixes: list[tuple[dict, dict]] = field(default_factory=list)  # non-pass -> pass
    changed: list[tuple[dict, dict]] = field(default_factory=list)  # non-pass A -> non-pass B
    appeared: list[dict] = field(default_factory=list)
    vanished: list[dict] = field(default_factory=list)
    unchanged: int = 0
    #: by cause, each ``(cause, reach in old, reach in new)``, widest first
    causes_new: list[tuple] = field(default_factory=list)
    causes_gone: list[tuple] = field(default_factory=list)
    causes_grew: list[tuple] = field(default_factory=list)
    causes_shrank: list[tuple] = field(default_factory=list)
    causes_same: int = 0


def compare(old: list[dict], new: list[dict]) -> Diff:
    """Pair records by id (each list holds one record per id) and classify the differences."""
    o = {r["id"]: r for r in old}
    n = {r["id"]: r for r in new}
    d = Diff()
    for rid in sorted(o.keys() | n.keys()):
        a, b = o.get(rid), n.get(rid)
        if a is None:
            d.appeared.append(b)
        elif b is None:
            d.vanished.append(a)
        elif a["status"] == b["status"]:
            d.unchanged += 1
        elif a["status"] == st.PASS:
            d.regressions.append((a, b))
        elif b["status"] == st.PASS:
            d.fixes.append((a, b))
        else:
            d.changed.append((a, b))
    _by_cause(d, old, new)
    return d


def _by_cause(d: Diff, old: list[dict], new: list[dict]) -> None:
    """Fill ``d``'s cause lists: which causes appeared, went, or changed reach."""
    from harness.core.causes import group

    a = {g.cause.id: g for g in group(old)}
    b = {g.cause.id: g for g in group(new)}
    for cid in a.keys() | b.keys():
        ga, gb = a.get(cid), b.get(cid)
        item = ((gb or ga).cause, ga.reach if ga else 0, gb.reach if gb else 0)
        if ga is None:
            d.causes_new.append(item)
        elif gb is None:
            d.causes_gone.append(item)
        elif gb.reach > ga.reach:
            d.causes_grew.append(item)
        elif gb.reach < ga.reach:
            d.causes_shrank.append(item)
        else:
            d.causes_same += 1
    for items in (d.causes_new, d.causes_gone, d.causes_grew, d.causes_shrank):
        items.sort(key=lambda t: (-max(t[1], t[2]), t[0].id))


def failed(d: Diff, allow_vanished: bool = False) -> bool:
    """True when ``d`` fails a CI gate: a regression, or a vanished case (a lost record can hide one)."""
    return bool(d.regressions or (d.vanished and not allow_vanished))


def _why(rec: dict) -> str:
    msg = " ".join(str(rec.get("message") or "").split())
    if isinstance(rec.get("max_abs"), (int, float)) and rec["status"] == st.MISMATCH:
        msg = f"max_abs {rec['max_abs']:.3g}; " + msg
    return msg[:160] + ("…" if len(msg) > 160 else "")


def markdown(d: Diff, old_name: str, new_name: str, allow_vanished: bool = False) -> str:
    """A CI job summary of ``d``; vanished cases count as failures unless ``allow_vanished``."""
    verdict = (f"**{len(d.regressions)} regression(s)**" if d.regressions else "no regression")
    vanished = f"{len(d.vanished)} vanished case(s)"
    if d.vanished and not allow_vanished:
        vanished = f"**{vanished}** (no record in the new run: counted as failures)"
    out = ["## ONNX conformance: results diff", "",
           f"{text(old_name)} → {text(new_name)}: {verdict}; {len(d.fixes)} fixed; "
           f"{len(d.changed)} changed failure status; {len(d.appeared)} new case(s); "
           f"{vanished}; {d.unchanged} unchanged.", "",
           f"By cause: **{len(d.causes_new)} new cause(s)**, {len(d.causes_gone)} gone, "
           f"{len(d.causes_grew)} grew, {len(d.causes_shrank)} shrank, {d.causes_same} unchanged.", ""]

    def causes(title: str, items: list[tuple]) -> None:
        if not items:
            return
        out.extend([f"### {title} ({len(items)})", "", "| cause | title | reach old | reach new |",
                    "| --- | --- | --- | --- |"])
        for c, ra, rb in items[:MAX_ROWS]:
            out.append(f"| `{cell(c.id)}` | {cell(c.title)} | {ra} | {rb} |")
        if len(items) > MAX_ROWS:
            out.append(f"| … and {len(items) - MAX_ROWS} more | | | |")
        out.append("")

    causes("New causes", d.causes_new)
    causes("Causes gone", d.causes_gone)
    causes("Causes whose reach grew", d.causes_grew)
    causes("Causes whose reach shrank", d.causes_shrank)

    def pairs(title: str, items: list[tuple[dict, dict]], reason_of_new: bool) -> None:
        if not items:
            return
        out.extend([f"### {title} ({len(items)})", "", "| case | old | new | detail |", "| --- | --- | --- | --- |"])
        for a, b in items[:MAX_ROWS]:
            out.append(f"| {cell(b['id'])} | {cell(a['status'])} | {cell(b['status'])} | "
                       f"{cell(_why(b if reason_of_new else a))} |")
        if len(items) > MAX_ROWS:
            out.append(f"| … and {len(items) - MAX_ROWS} more | | | |")
        out.append("")

    def singles(title: str, items: list[dict]) -> None:
        if not items:
            return
        out.extend([f"### {title} ({len(items)})", "", "| case | status |", "| --- | --- |"])
        out.extend(f"| {cell(r['id'])} | {cell(r['status'])} |" for r in items[:MAX_ROWS])
        if len(items) > MAX_ROWS:
            out.append(f"| … and {len(items) - MAX_ROWS} more | |")
        out.append("")

    pairs("Regressions: pass → not pass", d.regressions, True)
    pairs("Fixes: not pass → pass", d.fixes, False)
    pairs("Status changes among failures", d.changed, True)
    singles("New cases", d.appeared)
    singles("Vanished cases", d.vanished)
    return "\n".join(out)
