#!/usr/bin/env python3
"""Replay a repro bundle: does the case's failure still happen here?

This file is ``harness/core/replay.py``; every repro bundle holds a copy of it as ``repro.py``,
beside ``_vendor/`` (the harness modules the case ran with, see :mod:`harness.core.repro`),
``case.json``, ``inputs.npz`` and, when the framework ran, ``reference.npz``. It needs only
the framework, onnx, onnxruntime and numpy (``pip install -r requirements.txt``).

    python repro.py                 # rebuild, re-export, check, run, compare
    python repro.py --isolate       # the same in a child process (default after a crash or timeout)

It runs the harness's own pipeline (:func:`harness.core.pipeline.run_case`) from ``_vendor/``: the
framework adapter builds the model with the case's seed, the registered exporter exports it at
the case's opset, ``onnx.checker`` checks it, the opset it declares is compared with the one
requested, the case's post-export pass (``post_pass``, none by default) transforms it and the
case's runtime (``runtime``, ONNX Runtime by default) runs it on the saved inputs; outputs are
compared with the saved reference in shape, dtype, then value under the case's tolerance rule.

Exit code and last line of output:

* 0 ``NOT REPRODUCED: ...`` -- the case passes here;
* 1 ``REPRODUCED: <status>: ...`` -- it fails here (a crash or a hang of the child included);
* 2 ``CANNOT RUN: <reason>`` -- the replay itself could not run (a package is missing, the
  bundle is incomplete, the replay failed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NOT_REPRODUCED, REPRODUCED, CANNOT_RUN = 0, 1, 2
#: Folder of the bundle that holds the vendored harness (see :mod:`harness.core.repro`).
VENDOR = "_vendor"
#: Packages every replay needs, and what for (the framework's come from the adapter's import).
BASE_PACKAGES = {"numpy": "to read the saved arrays", "onnx": "to check the model",
                 "onnxruntime": "to run the model"}


class CannotRun(Exception):  # not a HarnessError: this script runs before its vendored harness is on sys.path
    """The replay itself could not run; the message is the one-line reason (exit 2)."""


def main(argv: list[str] | None = None) -> int:
    """Replay the bundle this file lives in (or ``--bundle``); return the exit code."""
    args = _parser().parse_args(argv)
    here = os.path.abspath(args.bundle or os.path.dirname(os.path.abspath(__file__)))
    try:
        data = load_case_json(here)
        if args.child:
            return _child(here, data, args.child)
        rec = _replay(here, data, args)
    except CannotRun as exc:
        return _say(CANNOT_RUN, f"CANNOT RUN: {exc}")
    except Exception as exc:  # noqa: BLE001 - the replay's own error is a "cannot run", never a verdict
        return _say(CANNOT_RUN, f"CANNOT RUN: the repro script failed: {type(exc).__name__}: {exc}")
    finally:
        _tidy(here)
    code, line = outcome(rec, data.get("record", {}).get("status"))
    return _say(code, line)


def outcome(rec: dict, original: str | None) -> tuple[int, str]:
    """Exit code and verdict line of a replayed record (``original``: the bundle's status)."""
    st, msg = rec.get("status"), " ".join(str(rec.get("message") or "").split())
    was = f" (originally {original})" if original and original != st else ""
    if st == "pass":
        return NOT_REPRODUCED, f"NOT REPRODUCED: the model exports, checks, runs and matches the reference{was}"
    if st == "skipped" or st is None:
        return CANNOT_RUN, f"CANNOT RUN: {msg or 'no verdict'}"
    return REPRODUCED, f"REPRODUCED: {st}{was}: {_cut(msg)}"


def load_case_json(here: str) -> dict:
    """The bundle's case.json, or :class:`CannotRun` naming what is wrong with it."""
    path = os.path.join(here, "case.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CannotRun(f"bad bundle: {path} is missing") from None
    except json.JSONDecodeError as exc:
        raise CannotRun(f"bad bundle: {path}:{exc.lineno}: {exc.msg}") from None
    for key in ("framework", "exporter", "opset", "spec", "tolerance"):
        if key not in data:
            raise CannotRun(f"bad bundle: {path}: no '{key}'")
    return data


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="the bundle folder (default: the folder of this file)")
    ap.add_argument("--isolate", action="store_true",
                    help="replay in a child process (default for crash and timeout cases)")
    ap.add_argument("--timeout", type=_seconds, default=120.0,
                    help="seconds the isolated replay may take (a positive, finite number; default 120)")
    ap.add_argument("--child", metavar="RESULT", help=argparse.SUPPRESS)
    return ap


def _seconds(text: str) -> float:
    """``--timeout``: a positive, finite number of seconds (0, -1 or nan would give no verdict, or a false one)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):  # `not >` also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive, finite number of seconds")
    return value


def _tidy(here: str) -> None:
    """Leave the bundle as it was written: drop the bytecode caches the replay's imports left in it."""
    for folder, dirs, _ in os.walk(os.path.join(here, VENDOR)):
        if "__pycache__" in dirs:
            shutil.rmtree(os.path.join(folder, "__pycache__"), ignore_errors=True)
            dirs.remove("__pycache__")


def _say(code: int, line: str) -> int:
    print(line, flush=True)
    return code


def _cut(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


# -- loading the vendored harness --------------------------------------------------------------

def _use_vendor(here: str):
    """Import the bundle's own harness; return ``(pipeline, registry, Case)``."""
    vendor = os.path.join(here, VENDOR)
    if not os.path.isdir(os.path.join(vendor, "harness")):
        raise CannotRun(f"bad bundle: {vendor}/harness is missing")
    sys.path.insert(0, vendor)
    for name, why in BASE_PACKAGES.items():
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise CannotRun(_missing(exc, why, here)) from None
    try:
        import harness
        from harness.core import pipeline, registry
        from harness.core.case import Case
    except ModuleNotFoundError as exc:
        raise CannotRun(_missing(exc, "to run the harness's pipeline", here)) from None
    if not os.path.abspath(harness.__file__).startswith(vendor + os.sep):
        raise CannotRun(f"bad bundle: harness was imported from {harness.__file__}, not from {vendor}")
    return pipeline, registry, Case


def _missing(exc: ModuleNotFoundError, why: str, here: str) -> str:
    if os.path.isdir(os.path.join(here, VENDOR, (exc.name or "").split(".")[0])):
        return f"bad bundle: {VENDOR}/ lacks {exc.name}"
    return f"{exc.name} is not installed in this Python (needed {why})"


def _case(data: dict, case_cls):
    fields = set(case_cls.__dataclass_fields__)
    return case_cls.from_dict({k: v for k, v in data.items() if k in fields})


# -- the replay --------------------------------------------------------------------------------

def _replay(here: str, data: dict, args) -> dict:
    original = data.get("record", {}).get("status")
    if args.isolate or data.get("isolate") or original in ("crash", "timeout"):
        return _isolated(here, data, args.timeout)
    return _run_here(here, data)


def _run_here(here: str, data: dict, scratch: str | None = None) -> dict:
    """Load the framework from the vendored adapter and run the case through the pipeline.

    The exported model goes to a temporary folder (under ``scratch`` when given), removed afterwards.
    """
    pipeline, registry, case_cls = _use_vendor(here)
    case = _case(data, case_cls)
    try:
        for mod in data.get("modules", []):
            importlib.import_module(mod)
        registry.load_framework(case.framework)
    except ModuleNotFoundError as exc:
        raise CannotRun(_missing(exc, "to rebuild the model", here)) from None
    inputs = load_sets(os.path.join(here, "inputs.npz"), "x")
    if inputs is None:
        raise CannotRun(f"bad bundle: {os.path.join(here, 'inputs.npz')} is missing")
    cache = BundleCache(pipeline, inputs, load_sets(os.path.join(here, "reference.npz"), "y"))
    with tempfile.TemporaryDirectory(prefix="repro-", dir=scratch, ignore_cleanup_errors=True) as workdir:
        return pipeline.run_case(case, workdir, cache)


def _child(here: str, data: dict, result: str) -> int:
    """``--child``: replay in this process and write the record (or the reason it could not) to ``result``."""
    try:  # the work folder lies beside the result file: the parent removes both, even after killing this process
        out = {"record": _run_here(here, data, os.path.dirname(result))}
    except CannotRun as exc:
        out = {"cannot_run": str(exc)}
    with open(result, "w", encoding="utf-8") as f:
        json.dump(out, f, default=str)
    return 0


def _isolated(here: str, data: dict, timeout: float) -> dict:
    """Replay in a child process, so that an abort or a hang becomes a verdict.

    The child and everything it started are killed however this process leaves
    (a timeout, an exception, SIGTERM), and its temporary folder is removed.
    """
    with tempfile.TemporaryDirectory(prefix="repro-", ignore_cleanup_errors=True) as scratch:
        result = os.path.join(scratch, "result.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--bundle", here, "--child", result]
        sys.stdout.flush()
        previous = signal.signal(signal.SIGTERM, _terminated)
        child = subprocess.Popen(cmd, start_new_session=True)
        t0 = time.monotonic()
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "message": f"no verdict within {timeout:g} s (the child was killed)"}
        finally:
            _kill_group(child)
            signal.signal(signal.SIGTERM, previous)
        if code < 0:
            return {"status": "crash", "message": f"the replay's child died with {signal.Signals(-code).name} "
                    f"after {time.monotonic() - t0:.1f} s"}
        if not os.path.exists(result):
            raise CannotRun(f"the replay's child exited with {code} and no result")
        with open(result, encoding="utf-8") as f:
            out = json.load(f)
    if "cannot_run" in out:
        raise CannotRun(out["cannot_run"])
    return out["record"]


def _terminated(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through _isolated's cleanup


def _kill_group(child: subprocess.Popen) -> None:
    """Kill the child's process group (it may have started processes of its own) and reap the child."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


class BundleCache:
    """The pipeline's model cache (``get(case, fw)``), serving the bundle's saved arrays.

    The model is rebuilt by the framework adapter; the inputs are the bundle's, and the
    reference too when the bundle has one (else the framework's output on those inputs).
    """

    def __init__(self, pipeline, inputs: list, references: list | None):
        self._pipeline, self._inputs, self._refs = pipeline, inputs, references
        self._prep = None

    def get(self, case, fw):
        """The prepared model of ``case``; raises the pipeline's ``FrameworkOutputError`` as it would."""
        if self._prep is None:
            self._prep = self._prepare(case, fw)
        if isinstance(self._prep, Exception):
            raise self._prep
        return self._prep

    def _prepare(self, case, fw):
        import numpy as np

        t0 = time.perf_counter()
        try:
            model = fw.build(case.spec, case.seed)
            fresh = [list(fw.reference(model, xs)) for xs in self._inputs]
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the pipeline reports it as the case's status
            return self._pipeline.FrameworkOutputError(f"{type(exc).__name__}: {exc}")
        refs = fresh if self._refs is None else self._refs
        same = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind == "f")
                   for fs, rs in zip(fresh, refs) for a, b in zip(fs, rs))
        if not same:
            print("note: the framework's output here differs from reference.npz; comparing with reference.npz",
                  file=sys.stderr)
        return self._pipeline.Prepared(model, self._inputs, refs, time.perf_counter() - t0)


def load_sets(path: str, letter: str) -> list[list] | None:
    """Arrays saved as ``set<i>_<letter><j>`` -> ``[[set0 arrays], [set1 arrays], ...]`` (None if absent)."""
    if not os.path.exists(path):
        return None
    import numpy as np

    data = np.load(path)
    sets: dict[int, dict[int, object]] = {}
    for key in data.files:
        s, k = key.split("_")
        sets.setdefault(int(s[3:]), {})[int(k[len(letter):])] = data[key]
    return [[sets[i][j] for j in sorted(sets[i])] for i in sorted(sets)]


if __name__ == "__main__":
    sys.exit(main())
