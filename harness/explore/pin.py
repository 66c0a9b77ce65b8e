"""Pin a failure found by property mode as a fixed variant of its matrix entry.

``python -m harness pin-example RESULTS CASE_ID`` reads the property-mode
record of CASE_ID (the target id, e.g. ``explore-paddle-static-pool2d-cpu``,
or the minimal case id it reports) from RESULTS, and writes its minimal example
into the entry's ``variants:`` block of the matrix file it came from, as a
variant named like the explored case (``x<hash>``). The same name gives the
same model key, hence the same weights seed, and ``input_seeds`` the same
inputs: the pinned case is the minimal example, now a regular, reported case
(``<framework>-<exporter>-<kernel>-x<hash>-opset<N>-<dtype>-<device>``).

The file is edited line by line (comments, order and layout stay as they
are: the matrix loader reports errors by line), then loaded again; if it no
longer loads, the edit is undone and the error printed.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml

from .derive import ABSENT
from harness.spec.yamlsrc import MatrixError, load_yaml
from harness.core.errors import HarnessError

HELP = "write a property-mode failure (its minimal example) into its matrix entry as a fixed variant"


def add_arguments(p) -> None:
    """Arguments of ``python -m harness pin-example``."""
    p.add_argument("results", metavar="RESULTS", help="results file of a `pytest --explore` run")
    p.add_argument("case_id", metavar="CASE_ID",
                   help="the property test's id (explore-...) or the minimal case id its record names")
    p.add_argument("--matrix", metavar="FILE", help="matrix file to write to (default: the one the record names)")
    p.add_argument("--dry-run", action="store_true", help="print the variant, change nothing")


class PinError(HarnessError):
    """Why a record cannot be pinned (a usage error: exit 2)."""


def find_record(path: str | Path, case_id: str) -> dict:
    """The last property-mode record of ``case_id`` (target id or minimal case id) with a minimal example."""
    from harness.report.results import read_results

    found = None
    try:
        for rec in read_results(path, bad=[]):
            if case_id in (rec.get("id"), rec.get("case_id")) and rec.get("minimal_example"):
                found = rec
    except OSError as exc:
        raise PinError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not a results file (text, binary, a JSON document)
        raise PinError(str(exc)) from None
    if found is None:
        raise PinError(f"{path}: no property-mode failure with id or case_id {case_id!r} "
                       f"(only failing `pytest --explore` records carry a minimal example)")
    return found


def _matrix_of(rec: dict) -> str:
    if rec.get("matrix"):
        return rec["matrix"]
    argv = shlex.split((rec.get("replay") or {}).get("pytest", ""))
    if "--matrix" in argv:
        return argv[argv.index("--matrix") + 1]
    raise PinError(f"record {rec['id']} does not say which matrix file it came from: pass --matrix FILE")


def variant_name(rec: dict) -> str:
    """The explored case's variant (``x<hash>``)."""
    m = rec["minimal_example"]
    if m.get("case_variant"):
        return m["case_variant"]
    prefix = f"{rec['framework']}-{rec['exporter']}-{rec['kernel']}-"
    return m["case_id"][len(prefix):].rsplit("-opset", 1)[0]


def variant_fields(rec: dict, entry: dict, defaults: dict) -> dict:
    """The YAML fields of the pinned variant (what it changes relative to its entry)."""
    m = rec["minimal_example"]
    spec, dtype = m["spec"], m["dtype"]
    out: dict = {}
    kwargs = {k: v for k, v in (m.get("kwargs") or {}).items() if v != ABSENT}
    if kwargs:
        out["kwargs"] = kwargs
    if m.get("args") is not None:
        out["args"] = m["args"]
    out["inputs"] = [{k: v for k, v in inp.items() if not (k == "dtype" and v == dtype)}
                     for inp in spec["inputs"]]
    if (entry.get("dtypes") or defaults.get("dtypes") or ["float32"]) != [dtype]:
        out["dtypes"] = [dtype]
    base = (entry.get("variants") or {}).get(m.get("variant")) or {}
    for key in ("exporters", "tolerance", "opsets"):  # what the starting variant restricts
        if key in base:
            out[key] = base[key]
    out["input_seeds"] = list(m["input_seeds"])
    return out


def _flow(data) -> str:
    return yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=10**6).strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _significant(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def insertion(lines: list[str], doc, index: int) -> tuple[int, int, bool]:
    """(line index to insert before, indentation of a variant name, whether ``variants:`` must be added)."""
    entry = doc.data["entries"][index]
    key_line = doc.line_of(("entries", index, "kernel")) - 1
    key_col = lines[key_line].index("kernel")
    if "variants" in entry:
        vline = doc.line_of(("entries", index, "variants")) - 1
        if "{" in lines[vline].split("variants:", 1)[1]:
            raise PinError(f"{doc.path}:{vline + 1}: the variants are written in flow style; add the variant by hand")
        first = doc.line_of(("entries", index, "variants", next(iter(entry["variants"])))) - 1
        start, col, add = vline, _indent(lines[first]), False
    else:
        start, col, add = key_line, key_col + 2, True
    end = start + 1  # first line after the block (or the entry, when it has no variants)
    # the block (or the entry) goes on while lines are deeper than its key
    limit = key_col if not add else key_col - 1
    while end < len(lines) and (not _significant(lines[end]) or _indent(lines[end]) > limit):
        end += 1
    while end > start + 1 and not _significant(lines[end - 1]):
        end -= 1  # keep blank lines and comments that open the next block after the pinned variant
    return end, col, add


def pin(rec: dict, matrix: str | Path, dry_run: bool = False) -> tuple[Path, int, str]:
    """Write the variant; return (file, line of the variant, variant name)."""
    path = Path(matrix)
    doc = load_yaml(path)
    entries = doc.data.get("entries") or []
    index = next((i for i, e in enumerate(entries) if e.get("kernel") == rec["kernel"]), None)
    if doc.data.get("framework") != rec["framework"] or index is None:
        raise PinError(f"{path}: no {rec['framework']} entry {rec['kernel']!r}")
    entry = entries[index]
    name = variant_name(rec)
    if name in (entry.get("variants") or {}):
        line = doc.line_of(("entries", index, "variants", name))
        raise PinError(f"{path}:{line}: {rec['kernel']} already has the variant {name}")
    fields = variant_fields(rec, entry, doc.data.get("defaults") or {})
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    at, col, add = insertion(lines, doc, index)
    m = rec["minimal_example"]
    found = (f"{rec['status']} at {rec['exporter']} opset {m.get('opset', rec['opset'])}: "
             f"{' '.join(rec.get('message', '').split())[:120]}")
    new = []
    if add:  # the entry ran as variant `default`: keep it beside the pinned one
        new += [" " * (col - 2) + "variants:\n", " " * col + "default: {}\n"]
    new += [" " * col + f"# pinned from {rec['id']} (python -m harness pin-example): {found}\n",
            " " * col + f"{name}: {_flow(fields)}\n"]
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    out = "".join(lines[:at] + new + lines[at:])
    line = at + len(new)
    if dry_run:
        print("".join(new), end="")
        return path, line, name
    path.write_text(out, encoding="utf-8")
    try:
        _check_loads(path)
    except MatrixError as exc:
        path.write_text(text, encoding="utf-8")
        raise PinError(f"the pinned variant would break {path} (edit undone): {exc}") from None
    return path, line, name


def _check_loads(path: Path) -> None:
    from harness.spec.matrix import Scope, load_matrix, load_tolerances

    tolerances = path.parent / "tolerances.yaml"
    if not tolerances.exists():  # a matrix outside cases/ (e.g. tests/data)
        tolerances = Path(__file__).resolve().parents[2] / "cases" / "tolerances.yaml"
    rules, defaults = load_tolerances(tolerances)
    load_matrix(path, rules, defaults, Scope(opsets="declared"), max_opset=64)


def run(args) -> int:
    """Pin and print where; 2 when the record or the file cannot be used."""
    try:
        rec = find_record(args.results, args.case_id)
        path, line, name = pin(rec, args.matrix or _matrix_of(rec), dry_run=args.dry_run)
    except (PinError, MatrixError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = rec["minimal_example"]
    verb = "would pin" if args.dry_run else "pinned"
    print(f"{path}:{line}: {verb} variant {name} of {rec['framework']} {rec['kernel']} "
          f"({rec['status']} at {rec['exporter']} opset {m.get('opset', rec['opset'])})")
    cid = re.sub(r"-opset\d+-", "-opset*-", m["case_id"])
    print(f"its cases: {cid} (every exporter and opset of the entry); run them with "
          f"pytest -k {name} --matrix {path}")
    return 0
