"""Serve a failing case's model in Netron on 127.0.0.1, or write its picture (--picture).

TARGET is a case id, a repro bundle's folder, or an .onnx file. A case id is looked up in
RESULTS (default: the newest results/run-*.jsonl): its record names its repro bundle, which
holds the exported model (model.onnx) and, when a post-export pass ran, the model after it
(model.<pass>.onnx). A case without a record there is looked for in --repro-dir/<case id>/.
Only failing cases keep their models (in their bundles).

Each model gets its own Netron server (netron.start) on a free port of 127.0.0.1; the
addresses are printed, and the models are served until Ctrl-C (or for --for S seconds).
Netron's page, opened in your own browser, asks ipinfo.io for your country and sends usage
events to Google Analytics unless the browser blocks them; --picture never lets it.

With --picture OUT.svg|OUT.png the graph is drawn by Netron's own export in a headless
Chromium that reaches nothing beyond loopback, and nothing is served; the model after a
pass goes to OUT.<pass>.svg|png beside it.

Exit codes: 0 done; 1 a picture could not be taken (no Chromium, Netron refused the model);
2 usage (unknown case, no model kept for it, a bad --picture name).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from harness.report.inputs import ROOT, InputError, load, newest_results

HELP = "serve a failing case's model (and the model after its pass) in Netron on 127.0.0.1, or --picture it"


class NotFound(Exception):
    """The target names no model that can be shown (one line for the user)."""


def add_arguments(p) -> None:
    """Arguments of ``python -m harness view``."""
    p.add_argument("target", metavar="CASE_ID|BUNDLE|MODEL",
                   help="a case id, a repro bundle's folder, or an .onnx file")
    p.add_argument("--results", action="append", default=[], metavar="RESULTS",
                   help="results file or folder to find the case in (repeatable; default: the newest "
                        "results/run-*.jsonl)")
    p.add_argument("--repro-dir", default=str(ROOT / "artifacts" / "repro"),
                   help="where bundles are looked for when no record names one (default artifacts/repro)")
    p.add_argument("--picture", metavar="OUT", help="write the graph to OUT (.svg or .png) instead of serving")
    p.add_argument("--for", dest="serve_for", type=float, default=None, metavar="S",
                   help="serve for S seconds, then stop (default: until Ctrl-C)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds a picture may take (default 60)")


def models_of(bundle: Path) -> list[tuple[str, Path]]:
    """(label, model) of a repro bundle: the exported model, then each model after a pass."""
    out = [("exported model", bundle / "model.onnx")] if (bundle / "model.onnx").is_file() else []
    for model in sorted(bundle.glob("model.*.onnx")):
        out.append((f"after {model.name[len('model.'):-len('.onnx')]}", model))
    return out


def find_models(target: str, results: list[str], repro_dir: str) -> list[tuple[str, Path]]:
    """The models ``target`` (case id, bundle folder, .onnx file) names; NotFound with the reason."""
    path = Path(target)
    if path.is_file():
        if path.suffix != ".onnx":
            raise NotFound(f"{target}: not an .onnx model")
        return [("model", path)]
    if path.is_dir():
        found = models_of(path)
        if not found:
            why = "the export failed or crashed" if (path / "case.json").is_file() else "not a repro bundle"
            raise NotFound(f"{target}: no model.onnx in this folder ({why})")
        return found
    rec = _record(target, results)
    bundle = Path(rec["repro_bundle"]) if rec and rec.get("repro_bundle") else Path(repro_dir) / target
    if bundle.is_dir():
        found = models_of(bundle)
        if found:
            return found
        raise NotFound(f"{target}: its bundle {bundle} holds no model ({_why(rec)})")
    if rec is not None:
        if rec.get("status") in ("pass", "skipped"):
            raise NotFound(f"{target}: {rec['status']} in {rec['_source']}: only failing cases keep their "
                           f"model (in a repro bundle)")
        raise NotFound(f"{target}: {rec['status']} in {rec['_source']}, but its bundle "
                       f"{rec.get('repro_bundle') or bundle} is gone")
    raise NotFound(f"{target}: no such case in {', '.join(results) or 'the results'} and no bundle "
                   f"{bundle}")


def _why(rec: dict | None) -> str:
    if rec is None:
        return "no record of the case found"
    return f"{rec['status']} at stage {rec.get('stage') or '?'}: {str(rec.get('message') or '')[:120]}"


def _record(case_id: str, results: list[str]) -> dict | None:
    """The case's record in ``results`` (merged: the newest wins), with ``_source``; None if absent."""
    loaded = load(results)
    rec = next((r for r in loaded.records if r.get("id") == case_id), None)
    if rec is not None:
        rec = {**rec, "_source": ", ".join(loaded.files)}
    return rec


def picture_names(out: Path, models: list[tuple[str, Path]]) -> list[Path]:
    """Where each model's picture goes: OUT for the first, OUT.<pass><suffix> for a model after a pass."""
    names = [out]
    for _, model in models[1:]:
        names.append(out.with_name(f"{out.stem}.{model.name[len('model.'):-len('.onnx')]}{out.suffix}"))
    return names


def run(args) -> int:
    """Find the models; draw them (--picture) or serve them until interrupted."""
    from harness.report import netron

    if args.picture is not None:
        try:
            netron.picture_format(args.picture)
        except ValueError as exc:
            print(f"error: --picture {exc}", file=sys.stderr)
            return 2
    try:
        results = args.results or ([] if Path(args.target).exists() else _newest())
        models = find_models(args.target, results, args.repro_dir)
    except (NotFound, InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.picture is not None:
        return _pictures(models, picture_names(Path(args.picture), models), args.timeout)
    with contextlib.ExitStack() as stack:
        for label, model in models:
            try:
                url = stack.enter_context(netron.served(model))
            except netron.PictureError as exc:  # netron missing
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"{label}: {url}  ({model})", flush=True)
        print("serving on 127.0.0.1 until Ctrl-C" if args.serve_for is None else
              f"serving on 127.0.0.1 for {args.serve_for:g} s", flush=True)
        try:
            time.sleep(args.serve_for) if args.serve_for is not None else _forever()
        except KeyboardInterrupt:
            pass
    return 0


def _newest() -> list[str]:
    """The newest results file, if there is one (else the bundle is looked for in --repro-dir only)."""
    try:
        return [str(newest_results())]
    except InputError:
        return []


def _forever() -> None:
    while True:
        time.sleep(3600)


def _pictures(models: list[tuple[str, Path]], outs: list[Path], timeout: float) -> int:
    from harness.report import netron

    try:
        with netron.Pictures(timeout=timeout) as pictures:
            for (label, model), out in zip(models, outs):
                done = pictures.take(model, out)
                print(f"wrote {out} ({label}, {model}: {len(done.labels)} texts drawn, {done.seconds:.2f} s)")
    except netron.PictureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
