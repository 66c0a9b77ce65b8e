"""Crash isolation: cases run in a long-lived helper process, one per pytest process.

Native exporter code can abort the whole process (paddle2onnx does on an opset
it rejects) or hang. The pytest process therefore never runs a case itself:
it hands the case to a runner process over a pipe and waits with a timeout.

* the runner imports the frameworks once and keeps built models cached, so
  start-up is paid once per worker, not once per case;
* if the runner dies, the case becomes ``crash`` (with the signal and the tail
  of what the native code printed) and a fresh runner is started for the next
  case;
* if the case outlives its timeout, the runner is killed and the case becomes
  ``timeout``.

The runner's stdout and stderr (where native code prints) go to a log file;
messages travel on a duplicate of the original stdout.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import status
from .case import Case

_HEADER = struct.Struct("!I")


def _send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    os.write(fd, _HEADER.pack(len(data)))
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _recv_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    buf = b""
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _recv(fd: int, deadline: float | None):
    head = _recv_exact(fd, _HEADER.size, deadline)
    if head is None:
        return None
    body = _recv_exact(fd, _HEADER.unpack(head)[0], deadline)
    return None if body is None else json.loads(body)


class Executor:
    """Runs cases in a helper process; see the module docstring."""

    def __init__(self, timeout: float = 120.0, plugins: tuple[str, ...] = (),
                 workdir: str | None = None, env: dict | None = None, label: str = "main",
                 frameworks: tuple[str, ...] = (), repro_dir: str | None = None):
        self.timeout = timeout
        #: failing cases leave a repro bundle in ``<repro_dir>/<case id>/`` (None: no bundles)
        self.repro_dir = repro_dir
        self.plugins = tuple(plugins)
        self.frameworks = tuple(frameworks)
        self.workdir = workdir or tempfile.mkdtemp(prefix="onnx-conf-")
        self.env = env or {}
        self.label = label
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(self.workdir) / f"runner-{label}.log"
        self.restarts = 0
        self.started = 0

    # -- process management -------------------------------------------------
    def start(self) -> None:
        """Start the runner now (it imports and warms up while the caller does other work)."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self._kill()
            self._start()

    def _start(self) -> None:
        env = dict(os.environ)
        env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "PYTHONUNBUFFERED": "1", "GLOG_minloglevel": "2"})
        env.update(self.env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.runner", json.dumps(list(self.plugins)),
             json.dumps(list(self.frameworks))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
            cwd=str(Path(__file__).resolve().parent.parent), start_new_session=True)
        log.close()
        self.started += 1

    def _kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.proc = None

    def close(self) -> None:
        """Stop the runner process."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                _send(self.proc.stdin.fileno(), None)
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def _log_tail(self, offset: int, limit: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return "\n".join(lines)[-limit:]

    # -- running ------------------------------------------------------------
    def run(self, case: Case, timeout: float | None = None, bundle_dir: str | None = "",
            device: dict | None = None) -> dict:
        """Run one case and return its record; never raises for the case's own failures.

        ``bundle_dir``: where a failure's repro bundle goes; ``""`` (default) means
        ``<repro_dir>/<case id>``, ``None`` means no bundle for this run.
        ``device`` is the case's :class:`~harness.devices.DeviceSetting` as a dict
        (ORT providers and options); None runs on CPU.
        """
        rec = self._run(case, timeout, bundle_dir, device)
        if rec["status"] in (status.CRASH, status.TIMEOUT) and rec.get("_bundle_dir"):
            from .repro import write_parent_bundle

            try:
                rec["repro_bundle"] = write_parent_bundle(rec["_bundle_dir"], case, rec, self.plugins)
            except Exception as exc:  # noqa: BLE001 - a bundle problem must not hide the verdict
                rec["repro_bundle_error"] = f"{type(exc).__name__}: {exc}"
        rec.pop("_bundle_dir", None)
        return rec

    def _run(self, case: Case, timeout: float | None, bundle_dir: str | None,
             device: dict | None) -> dict:
        if bundle_dir == "":
            bundle_dir = os.path.join(self.repro_dir, case.id) if self.repro_dir else None
        timeout = self.timeout if timeout is None else timeout
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
                self._kill()
            self._start()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        t0 = time.monotonic()
        try:
            _send(self.proc.stdin.fileno(), {"case": case.to_dict(), "bundle_dir": bundle_dir,
                                             "device": device,
                                             "workdir": os.path.join(self.workdir, "cases")})
            reply = _recv(self.proc.stdout.fileno(), t0 + timeout)
        except TimeoutError:
            self._kill()
            return _failure(case, status.TIMEOUT, f"no verdict within {timeout:g} s; runner killed",
                            self._log_tail(offset), time.monotonic() - t0) | {"_bundle_dir": bundle_dir}
        except (BrokenPipeError, OSError):
            reply = None
        if reply is None or "crashed" in reply:
            if reply is None:  # the zygote itself died: start afresh next time
                code = self.proc.wait() if self.proc else None
                self._kill()
            else:  # the forked server died; the zygote already forked a new one
                code = reply["crashed"]
                self.restarts += 1
            log = self._log_tail(offset)
            return _failure(case, status.CRASH, _describe_exit(code) + _key_lines(log), log,
                            time.monotonic() - t0) | {"_bundle_dir": bundle_dir}
        reply["wall_s"] = time.monotonic() - t0
        if reply["status"] == status.EXPORT_ERROR and not reply.get("log"):
            reply["log"] = self._log_tail(offset)
            if reply.get("message", "").startswith("the exporter called sys.exit"):
                reply["message"] += _key_lines(reply["log"])
        return reply


_KEY_MARKERS = ("error", "please", "must", "abort", "not support", "exception")
_NOISE = ("c++ traceback", "error message summary", "fatalerror", "[timeinfo", "[signalinfo",
          "paddle2onnx::export(", "warning", "'colored' module")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _key_lines(log: str, limit: int = 3) -> str:
    """The lines of a native log that say why, e.g. paddle2onnx's opset complaint."""
    keep = []
    for ln in _ANSI.sub("", log).splitlines():
        low = ln.lower()
        if any(m in low for m in _KEY_MARKERS) and not any(n in low for n in _NOISE):
            keep.append(ln.strip())
    return (": " + " | ".join(keep[:limit])) if keep else ""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the runner process died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the exporter process died with {name}"
    return f"the exporter process exited with code {code}"


def _failure(case: Case, st: str, message: str, log: str, wall: float) -> dict:
    from .pipeline import _record

    rec = _record(case, st, stage="process", message=message)
    rec["log"] = log
    rec["wall_s"] = wall
    return rec
