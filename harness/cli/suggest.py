"""Draft expected-failure entries from a results file, for a person to review.

``python -m harness suggest-expectations RESULTS`` groups the failing records
by cause (:mod:`harness.core.causes`) and prints one ``cause:`` entry per
cause and framework, headed by the cause's title and reach, with a reason that
quotes what the exporter or the runtime said. ``--per-pattern`` prints the
older form instead: entries per framework, exporter, kernel and status with
their opsets folded into ranges. Nothing is written: review the draft, then
paste what you accept into ``cases/expected_failures/<framework>.yaml``.

``--migrate OLD --write DIR`` rewrites an expected-failure file (or folder) as
cause entries, one file per framework under DIR: every cause whose failing
records OLD expects (and that has no record OLD does not expect) becomes one
entry, with the reason and link of the old entries it replaces; old entries
that cover no failing record of RESULTS are kept as they are (other opsets,
runtimes, passes). An input that is missing, not a results file or without
any valid record is refused with one line (exit 2).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict

import yaml

from harness.spec.matrix import format_opsets
from harness.core.status import FAILURES

_PATH = re.compile(r"(/[\w.\-]+)+")
_NOISE = re.compile(r"\x1b\[[0-9;]*m|\\e\[[0-9;]*m|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s*")
# numbers (1, 0.00971, 7.41e+10, inf, nan) vary from run to run: a cause is grouped without them
_NUM = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|\b(inf|nan)\b")


def cause_of(rec: dict) -> str:
    """A short, human-readable cause from a failing record's message."""
    msg = rec.get("message") or ""
    if rec["status"] == "crash" and ": " in msg:
        msg = msg.split(": ", 1)[1]
    msg = _PATH.sub("<path>", _NOISE.sub("", msg))
    msg = msg.replace("\n", " ").strip()
    return msg[:240]


def _group_key(rec: dict) -> tuple:
    cause = _NUM.sub("N", cause_of(rec))
    # opset-not-honored messages name the opsets; group on the declared one only
    if rec["status"] == "opset-not-honored":
        cause = f"declares {rec.get('model_opset')}"
    return (rec["framework"], rec["exporter"], rec["kernel"], rec["status"], cause)


def suggest(records: list[dict], declared_only: bool = True) -> list[dict]:
    """Expected-failure entries (dicts) covering every failing record."""
    variants_at: dict[tuple, set] = defaultdict(set)
    for r in records:
        variants_at[(r["framework"], r["exporter"], r["kernel"], r["opset"])].add(r.get("variant", "default"))
    groups: dict[tuple, dict] = {}
    for r in records:
        if r["status"] not in FAILURES:
            continue
        if declared_only and not (r.get("declared") or {}).get("in_range", True):
            continue
        g = groups.setdefault(_group_key(r), {"cells": set(), "example": r, "records": []})
        g["cells"].add((r.get("variant", "default"), r["opset"]))
        g["records"].append(r)
    out = []
    for (fw, exp, kernel, st, _), g in sorted(groups.items()):
        ex = g["example"]
        reason = _reason(ex, g["records"])
        opsets = sorted({o for _, o in g["cells"]})
        whole = all({v for v, o in g["cells"] if o == op} == variants_at[(fw, exp, kernel, op)]
                    for op in opsets)
        targets = [f"{fw}-{exp}-{kernel}-*"] if whole else sorted(
            {f"{fw}-{exp}-{kernel}-{v}-*" for v, _ in g["cells"]})
        for target in targets:
            ops = opsets if whole else sorted({o for v, o in g["cells"]
                                               if target == f"{fw}-{exp}-{kernel}-{v}-*"})
            for run in format_opsets(ops).split(", "):
                lo, _, hi = run.partition("~")
                out.append({"match": target, "opsets": f"{lo}~{hi or lo}", "status": [st],
                            "reason": reason})
    return out


def _reason(rec: dict, others: list[dict] = ()) -> str:
    st = rec["status"]
    if st == "opset-not-honored":
        return (f"the {rec['exporter']} exporter writes an opset-{rec.get('model_opset')} model when "
                f"these opsets are requested")
    reason = f"measured {st}: {cause_of(rec)}"
    seen = {r.get("max_abs") for r in others if isinstance(r.get("max_abs"), (int, float))}
    if len(seen) > 1:  # e.g. an exporter writing an uninitialised attribute: say the size is not stable
        lo, hi = min(seen), max(seen)
        reason += f" (max_abs differs between these cases: {lo:.3g} to {hi:.3g})"
    return reason


def suggest_causes(records: list[dict], declared_only: bool = True) -> dict[str, list[tuple[str, dict]]]:
    """Cause entries covering every failing record: framework -> [(comment, entry)], widest first."""
    from harness.core.causes import group

    failing = [r for r in records if r["status"] in FAILURES
               and not (declared_only and not (r.get("declared") or {}).get("in_range", True))]
    out: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for g in group(failing):
        for fw in sorted({r["framework"] for r in g.records}):
            recs = [r for r in g.records if r["framework"] == fw]
            out[fw].append((_comment(g.cause, recs), {"cause": g.cause.id, "reason": _reason(recs[0], recs)}))
    return dict(out)


def _comment(cause, recs: list[dict]) -> str:
    kernels = sorted({r["kernel"] for r in recs})
    statuses = sorted({r["status"] for r in recs})
    return (f"{cause.title[:150]}\n{len(recs)} case(s), {', '.join(statuses)}; kernels: "
            f"{', '.join(kernels[:8])}{' …' if len(kernels) > 8 else ''}")


def migrate(records: list[dict], old) -> tuple[dict[str, list[tuple[str, dict]]], list[str]]:
    """Rewrite the entries of ``old`` (:class:`~harness.spec.expectations.Expectations`) as cause entries.

    Returns (framework -> [(comment, entry)], notes). A cause becomes one entry
    per framework when ``old`` expects every failing record of it there (its
    status among the covering entry's); the entries it replaces give its reason
    and link. An old entry that still covers some record OLD does not fully
    migrate, or no failing record at all, is kept as it is.
    """
    from harness.core.causes import group

    failing = [r for r in records if r["status"] in FAILURES]
    covering: dict[str, object] = {}
    for r in failing:
        e = old.find(r["id"], r.get("runtime", "ort"), r.get("post_pass", "none"))
        if e is not None and r["status"] in e.status:
            covering[_key(r)] = e
    out: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    replaced: set[int] = set()
    kept_for: set[int] = set()
    notes = []
    for g in group(failing):
        for fw in sorted({r["framework"] for r in g.records}):
            recs = [r for r in g.records if r["framework"] == fw]
            olds = [covering.get(_key(r)) for r in recs]
            uncovered = [r for r, e in zip(recs, olds)
                         if e is None and (r.get("declared") or {}).get("in_range", True)]
            if uncovered:
                kept_for.update(id(e) for e in olds if e is not None)
                notes.append(f"{g.cause.id} ({fw}): {len(uncovered)} record(s) not expected before "
                             f"(e.g. {uncovered[0]['id']}); not migrated")
                continue
            used = [e for e in olds if e is not None]
            if not used:  # only out-of-range records: expected without an entry
                continue
            replaced.update(id(e) for e in used)
            reasons = defaultdict(int)
            for e in used:
                reasons[e.reason] += 1
            reason = max(reasons, key=lambda k: (reasons[k], k))
            if len(reasons) > 1:  # one bug that several entries described, per kernel or per status
                reason = f"{g.cause.title} ({len(reasons)} entries before; the commonest said: {reason})"
            entry = {"cause": g.cause.id, "reason": reason}
            links = sorted({e.link for e in used if e.link})
            if links:
                entry["link"] = links[0]
            note = f"; replaces {len({id(e) for e in used})} pattern entries" if len(used) > 1 else ""
            out[fw].append((_comment(g.cause, recs) + note, entry))
    for e in old.entries:
        if e.cause or (id(e) in replaced and id(e) not in kept_for):
            if e.cause:
                out[e.match.split("-", 1)[0]].append(("kept as it was", _as_dict(e)))
            continue
        fw = e.match.split("-", 1)[0]
        out[fw].append(("kept: covers no failing record of the results migrated from"
                        if id(e) not in kept_for else "kept: its cause is not wholly expected", _as_dict(e)))
    return dict(out), notes


def outcomes(records: list[dict], exps) -> dict[tuple, str]:
    """What the verdict makes of each record under ``exps``: ``xfailed``, ``failed`` or ``passed`` (as
    :meth:`harness.plugin.verdict.Verdicts.decide` does, skips left out)."""
    from harness.core.causes import cause_of

    out = {}
    for r in records:
        st = r["status"]
        if st == "skipped":
            continue
        cause = cause_of(r)
        e = exps.find(r["id"], r.get("runtime", "ort"), r.get("post_pass", "none"), cause.id if cause else "")
        if e is not None:
            out[_key(r)] = "failed" if st == "pass" else "xfailed" if e.cause or st in e.status else "failed"
        elif st == "pass":
            out[_key(r)] = "passed"
        else:
            out[_key(r)] = "xfailed" if not (r.get("declared") or {}).get("in_range", True) else "failed"
    return out


def _key(r: dict) -> tuple:
    return (r["id"], r.get("runtime", "ort"), r.get("post_pass", "none"))


def _as_dict(e) -> dict:
    out: dict = {}
    if e.cause:
        out["cause"] = e.cause
    if not e.cause or e.match != f"{e.match.split('-', 1)[0]}-*":
        out["match"] = e.match
    if e.opsets:
        out["opsets"] = f"{e.opsets[0]}~{e.opsets[1]}"
    if e.runtimes:
        out["runtimes"] = list(e.runtimes)
    if e.passes:
        out["passes"] = list(e.passes)
    if e.status:
        out["status"] = list(e.status)
    out["reason"] = e.reason
    if e.link:
        out["link"] = e.link
    return out


HEADER = """\
# Expected failures of {framework}: data with a reason, applied strictly.
#
# A `cause:` entry expects every failing {framework} case whose cause (harness/core/causes.py,
# computed from the case's record) has that id, whatever kernel, opset, dtype or status it shows
# as; `python -m harness triage RESULTS` lists the causes and drafts their upstream reports. A
# `match:` entry covers the case ids matching `match` (fnmatch) within `opsets`, and such a
# case must end with one of `status`. An unexpected pass, a different failure, an entry that
# matches no case (`match:`) or whose cause occurs in no record of a whole run (`cause:`) are
# all reported.
#
# Rewritten from the per-pattern entries measured before (see git history) with
# `python -m harness suggest-expectations RESULTS --migrate OLD --write cases/expected_failures`;
# each comment gives the cause's title and reach in the run it was migrated from.
"""


def render(framework: str, entries: list[tuple[str, dict]]) -> str:
    """One framework's file: the header, then each entry under its comment."""
    parts = [HEADER.format(framework=framework), "expected_failures:"]
    for comment, entry in entries:
        parts.extend(f"# {line}" for line in comment.splitlines())
        parts.append(yaml.safe_dump([entry], sort_keys=False, width=110, allow_unicode=True).rstrip())
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m harness suggest-expectations", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="results files (JSON lines) or folders of them")
    ap.add_argument("--all-opsets", action="store_true",
                    help="include failures outside the declared range too")
    ap.add_argument("--per-pattern", action="store_true",
                    help="draft per-pattern entries (framework, exporter, kernel, status, opsets) instead of causes")
    ap.add_argument("--migrate", metavar="OLD", help="rewrite this expected-failure file or folder as cause "
                    "entries (with --write)")
    ap.add_argument("--write", metavar="DIR", help="with --migrate: write <framework>.yaml files here")
    args = ap.parse_args(argv)
    if bool(args.migrate) != bool(args.write):
        print("error: --migrate and --write go together", file=sys.stderr)
        return 2
    from .report import print_problems
    from harness.report.inputs import InputError, load

    try:
        loaded = load(args.results)
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_problems(loaded)
    records = loaded.records
    if not records:
        print(f"error: no valid record in {', '.join(loaded.files)}; nothing drafted", file=sys.stderr)
        return 2
    if args.migrate:
        return _migrate(records, args.migrate, args.write)
    if args.per_pattern:
        entries = suggest(records, declared_only=not args.all_opsets)
        yaml.safe_dump({"expected_failures": entries}, sys.stdout, sort_keys=False, width=110,
                       allow_unicode=True)
        print(f"# {len(entries)} entries drafted from {len(records)} records", file=sys.stderr)
        return 0
    drafted = suggest_causes(records, declared_only=not args.all_opsets)
    for fw, entries in sorted(drafted.items()):
        print(f"# ---- cases/expected_failures/{fw}.yaml ----")
        print("expected_failures:\n" + render(fw, entries).split("expected_failures:\n", 1)[1])
    n = sum(map(len, drafted.values()))
    print(f"# {n} cause entries drafted from {len(records)} records", file=sys.stderr)
    return 0


def _migrate(records: list[dict], old_path: str, out_dir: str) -> int:
    from pathlib import Path

    from harness.spec.expectations import Expectations
    from harness.spec.yamlsrc import MatrixError

    try:
        old = Expectations.load(old_path)
    except MatrixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    files, notes = migrate(records, old)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for fw, entries in sorted(files.items()):
        (out / f"{fw}.yaml").write_text(render(fw, entries), encoding="utf-8")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    before, after = outcomes(records, old), outcomes(records, Expectations.load(out))
    differ = sorted(k for k in before if before[k] != after[k])
    for k in differ[:20]:
        print(f"differs: {k[0]} ({k[1]}, {k[2]}): {before[k]} before, {after[k]} after", file=sys.stderr)
    n_x = sum(v == "xfailed" for v in before.values())
    print(f"# verdicts over {len(before)} records: {n_x} expected failures before, "
          f"{sum(v == 'xfailed' for v in after.values())} after; {len(differ)} verdict(s) differ", file=sys.stderr)
    print(f"# {len(old.entries)} entries of {old_path} -> {sum(map(len, files.values()))} entries in "
          f"{len(files)} file(s) under {out}", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
