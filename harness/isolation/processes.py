"""Crash isolation: cases run in forked helper processes, never in a pytest process.

Native exporter code can abort the whole process (paddle2onnx does on an opset
it rejects) or hang. The pytest process therefore never runs a case itself: it
hands the case to a server process over a Unix socket and waits with a timeout.

* one *master* process per run imports the frameworks and warms them up once
  (:mod:`harness.core.runner`); with xdist the controller starts it and every
  worker uses it, so N workers do not pay N imports;
* each pytest process opens a *session*: a fork of the master, made in
  milliseconds, that forks the server running its cases and keeps built
  models cached there;
* if the server dies, the case becomes ``crash`` (with the signal and the tail
  of what the native code printed) and the session forks a fresh server;
* if the case outlives its timeout, the session (a process group) is killed,
  the case becomes ``timeout``, and the next case gets a new session from the
  still-warm master.

What the servers print (fd 1 and fd 2) goes to the pytest process's log file;
messages travel on the socket.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from harness.core import record, status, wire
from harness.core.case import Case
from harness.core import faults
from harness.runtimes._remote import ENVS_VARIABLE
from .environments import runtime_environments

#: temporary folders of the harness: ``onnx-conf-[<kind>-]<owner pid>-<random>`` (kind: master, warm, matrix, ...)
TEMP_PREFIX = "onnx-conf-"
_TEMP_NAME = re.compile(r"^onnx-conf-(?:[a-z]+-)?(\d+)-")


def temp_dir(kind: str = "") -> str:
    """A new temporary folder whose name carries this process's pid (see :func:`sweep_stale_temp_dirs`)."""
    return tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind + '-' if kind else ''}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale_temp_dirs(where: str | None = None) -> list[str]:
    """Remove the runner folders whose owner process is gone (a killed run leaves them); return them.

    Only folders named by :func:`temp_dir` are touched, and only when the pid in
    their name is not a live process: folders of runs going on beside this one stay.
    """
    where = where or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(where)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_NAME.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            path = os.path.join(where, name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


#: environment of the processes that run cases: one thread per library, quiet native logs
RUNNER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "PYTHONUNBUFFERED": "1", "GLOG_minloglevel": "2"}


class Master:
    """The runner master (see :mod:`harness.core.runner`): imports once, forks a session per connection.

    The listening socket is made here, before the process starts, and handed to
    it as an inherited file descriptor: connecting never races its start-up (a
    connection made while it still imports waits in the backlog), and once the
    master is gone connecting fails at once instead of hanging.
    """

    def __init__(self, plugins: tuple[str, ...] = (), frameworks: tuple[str, ...] = (),
                 log_path: str | os.PathLike | None = None, env: dict | None = None,
                 python: str | None = None):
        #: the interpreter that runs the master (a framework may live in another environment)
        self.python = python or sys.executable
        self.plugins = tuple(plugins)
        self.frameworks = tuple(frameworks)
        self._dir = temp_dir("master")
        self.address = os.path.join(self._dir, "runner.sock")
        self.log_path = Path(log_path) if log_path else Path(self._dir) / "master.log"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Master":
        """Start the process (it imports and warms up while the caller goes on)."""
        if os.path.exists(self.address):
            os.unlink(self.address)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)
        listener.listen(128)
        env = {**os.environ, **RUNNER_ENV, **self.env}
        if ENVS_VARIABLE not in env:  # where the runtimes with an environment of their own find it
            env[ENVS_VARIABLE] = json.dumps(runtime_environments())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "harness.core.runner", json.dumps(list(self.plugins)),
                 json.dumps(list(self.frameworks)), str(listener.fileno())],
                stdin=subprocess.PIPE, stdout=log, stderr=log, env=env, pass_fds=(listener.fileno(),),
                cwd=str(Path(__file__).resolve().parents[2]), start_new_session=True)
        listener.close()  # only the master holds it now
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> dict:
        """What another process needs to use this master (see :meth:`SessionClient.__init__`)."""
        return {"address": self.address, "plugins": list(self.plugins), "frameworks": list(self.frameworks),
                "python": self.python}

    def close(self) -> None:
        """Stop the master (its sessions end when their owners disconnect)."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
        self.proc = None
        shutil.rmtree(self._dir, ignore_errors=True)  # the socket, and the log unless placed elsewhere


class SessionClient:
    """Runs cases in a session of a runner master; see the module docstring.

    ``master``: the address of a master another process started (the xdist
    controller's, shared by all workers), with the plugins and frameworks it
    imported. Without one, or if it does not serve this executor's plugins and
    frameworks or cannot be reached, the executor starts a master of its own.
    """

    def __init__(self, timeout: float = 120.0, plugins: tuple[str, ...] = (),
                 workdir: str | None = None, env: dict | None = None, label: str = "main",
                 frameworks: tuple[str, ...] = (), repro_dir: str | None = None,
                 master: dict | None = None, python: str | None = None, startup_timeout: float = 300.0,
                 check_calls: tuple[str, ...] = ()):
        self.timeout = timeout
        #: ``call:`` targets the first session resolves (see :meth:`wait_ready`)
        self.check_calls = tuple(check_calls)
        #: targets the session could not resolve (target -> why), once it said hello
        self.bad_calls: dict[str, str] = {}
        #: frameworks the master could not import: framework -> ("missing" | "broken", why), from the hello
        self.import_failures: dict[str, tuple[str, str]] = {}
        #: seconds a session may take to say hello (its master may still import and warm up);
        #: never counted against a case's ``timeout``
        self.startup_timeout = startup_timeout
        #: the interpreter of a master this executor starts itself
        self.python = python or sys.executable
        #: failing cases leave a repro bundle in ``<repro_dir>/<case id>/`` (None: no bundles)
        self.repro_dir = repro_dir
        self.plugins = tuple(plugins)
        self.frameworks = tuple(frameworks)
        #: exported models and the runner logs; a folder made here is removed by :meth:`close`
        self.workdir = workdir or temp_dir()
        self._owns_workdir = workdir is None
        self.env = env or {}
        self.label = label
        self.log_path = Path(self.workdir) / f"runner-{label}.log"
        self.shared = None
        if master and tuple(master.get("plugins", ())) == self.plugins \
                and tuple(master.get("frameworks", ())) == self.frameworks:
            self.shared = master["address"]
        self.own_master: Master | None = None
        self.conn: socket.socket | None = None
        self.pid: int | None = None  # the session's pid (and process group), once it said hello
        self._queue: deque[_Sent] = deque()  # cases sent, oldest first (at most 2)
        self.master_pid: int | None = None  # the master the current session was forked from
        self._free_at: float | None = None  # when the last record came back
        #: sessions started (a crash is survived inside a session: see ``restarts``)
        self.started = 0
        #: servers lost (crash) or sessions killed (timeout)
        self.restarts = 0

    # -- process management -------------------------------------------------
    def start(self) -> None:
        """Open a session now (a new master imports and warms up while the caller does other work)."""
        if self.conn is None:
            self._start()

    def _master_address(self) -> str:
        if self.shared is not None:
            return self.shared
        if self.own_master is None or not self.own_master.alive():
            if self.own_master is not None:
                self.own_master.close()
            self.own_master = Master(self.plugins, self.frameworks,
                                     Path(self.workdir) / f"master-{self.label}.log", self.env,
                                     python=self.python).start()
        return self.own_master.address

    def _start(self) -> None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self._master_address())
        except OSError as exc:
            conn.close()
            if self.shared is None:
                raise
            with open(self.log_path, "a") as log:  # the shared master is gone: carry on alone
                log.write(f"shared runner master {self.shared} unreachable ({exc}); starting our own\n")
            self.shared = None
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(self._master_address())
        wire.send(conn.fileno(), wire.hello(str(self.log_path), self.env, list(self.check_calls)))
        self.check_calls = ()  # resolved once, by the first session
        self.conn, self.pid, self._free_at = conn, None, None
        self._queue.clear()
        self.started += 1

    def _kill(self) -> None:
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif self.own_master is not None:
            # No hello yet: the master may be stuck in its imports or warm-up.
            self.own_master.close()
            self.own_master = None
        self._disconnect()

    def _disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, self.pid = None, None
        self._queue.clear()

    def close(self) -> None:
        """End the session, and the master if this executor started it."""
        if self.conn is not None:
            try:
                wire.send(self.conn.fileno(), wire.STOP)
            except OSError:
                pass
        self._disconnect()
        if self.own_master is not None:
            self.own_master.close()
            self.own_master = None
        if self._owns_workdir:  # what a failure needs is in its record and repro bundle
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _log_tail(self, offset: int, case_id: str | None = None, limit: int = 3000) -> str:
        """What the server printed from ``offset`` on; with ``case_id``, only that case's part."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        if case_id is not None:  # the server marks each case's start (see runner._serve)
            mark = f"--- case {case_id}\n"
            at = text.rfind(mark)
            if at >= 0:
                text = text[at + len(mark):]
                nxt = text.find("--- case ")
                text = text if nxt < 0 else text[:nxt]
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return "\n".join(lines)[-limit:]

    # -- running ------------------------------------------------------------
    def run(self, case: Case, timeout: float | None = None, bundle_dir: str | None = "",
            device: dict | None = None, ahead: tuple[Case, dict | None] | None = None) -> dict:
        """Run one case and return its record; never raises for the case's own failures.

        ``bundle_dir``: where a failure's repro bundle goes; ``""`` (default) means
        ``<repro_dir>/<case id>``, ``None`` means no bundle for this run.
        ``device`` is the case's :class:`~harness.core.devices.DeviceSetting` as a dict
        (ORT providers and options); None runs on CPU.
        ``ahead``: the (case, device) the caller will ask for next. It is sent now,
        so the server starts it the moment this one ends instead of waiting for
        the caller to judge this record and come back; the next :meth:`run` of
        that case only collects its record (its timeout counts from then on).
        """
        rec = self._run(case, timeout, bundle_dir, device, ahead)
        if rec["status"] in (status.CRASH, status.TIMEOUT) and rec.get("_bundle_dir"):
            from harness.core.repro import write_parent_bundle

            try:
                rec["repro_bundle"] = write_parent_bundle(rec["_bundle_dir"], case, rec, self.plugins)
            except Exception as exc:  # noqa: BLE001 - a bundle problem must not hide the verdict
                rec["repro_bundle_error"] = f"{type(exc).__name__}: {exc}"
        rec.pop("_bundle_dir", None)
        return rec

    def _send_case(self, case: Case, bundle_dir: str | None, device: dict | None) -> None:
        if bundle_dir == "":
            bundle_dir = os.path.join(self.repro_dir, case.id) if self.repro_dir else None
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        wire.send(self.conn.fileno(), wire.run_case(case.to_dict(), bundle_dir, device,
                                                   os.path.join(self.workdir, "cases")))
        self._queue.append(_Sent(case.id, bundle_dir, offset, time.monotonic()))

    def _run(self, case: Case, timeout: float | None, bundle_dir: str | None,
             device: dict | None, ahead: tuple[Case, dict | None] | None, retry: bool = True) -> dict:
        timeout = self.timeout if timeout is None else timeout
        if self._queue and self._queue[0].case_id != case.id:
            self._kill()  # what was sent ahead is not what the caller wants now: start clean
        if self.conn is None:
            self._start()
        t0 = time.monotonic()
        sent = _Sent(case.id, None, 0, t0)
        try:
            reply = {}
            if self.pid is None:  # the session's hello (the master may still be warming up)
                try:
                    reply = self._hello(t0 + self.startup_timeout)
                except TimeoutError:
                    if not retry:
                        return self._startup_failed(case, t0)
                    where = self.shared or getattr(self.own_master, "address", "?")
                    self._fresh_master(f"no session of {where} said hello within {self.startup_timeout:g} s "
                                       f"(a stopped or stuck master?)")
                    return self._run(case, timeout, bundle_dir, device, ahead, retry=False)
                t0 = time.monotonic()  # the case's clock starts once its runner is up
            if reply is not None:
                if not self._queue:
                    self._send_case(case, bundle_dir, device)
                else:  # sent ahead: its clock starts when the server was free for it
                    t0 = max(t0 if self._free_at is None else self._free_at, self._queue[0].t_sent)
                sent = self._queue[0]
                if ahead is not None and len(self._queue) == 1 and ahead[0].id != case.id:
                    self._send_case(ahead[0], "", ahead[1])
                reply = wire.recv(self.conn.fileno(), t0 + timeout)
        except TimeoutError:
            self._kill()
            self.restarts += 1
            return _failure(case, status.TIMEOUT, f"no verdict within {timeout:g} s; runner killed",
                            self._log_tail(sent.offset, case.id), time.monotonic() - t0) \
                | {"_bundle_dir": sent.bundle_dir}
        except OSError:
            reply = None
        self._free_at = time.monotonic()
        if reply is None or wire.is_crash(reply):
            code = None if reply is None else wire.crash_code(reply)
            if reply is None:  # the session itself died: start afresh next time
                self._kill()
            else:  # the server died; the session forked a new one, which reads the cases sent ahead
                self._queue.popleft()
            self.restarts += 1
            log = self._log_tail(sent.offset, case.id)
            return _failure(case, status.CRASH, _describe_exit(code) + _key_lines(log), log,
                            self._free_at - t0) | {"_bundle_dir": sent.bundle_dir}
        self._queue.popleft()
        reply["wall_s"] = self._free_at - t0
        if reply["status"] == status.EXPORT_ERROR and not reply.get("log"):
            reply["log"] = self._log_tail(sent.offset, case.id)
            if reply.get("message", "").startswith("the exporter called sys.exit"):
                reply["message"] += _key_lines(reply["log"])
        return reply


    def _hello(self, deadline: float) -> dict | None:
        """Read the session's :func:`~harness.core.wire.ready` (None: it closed); TimeoutError past ``deadline``."""
        reply = wire.recv(self.conn.fileno(), deadline)
        self.pid = reply.get("pid") if reply else None
        self.master_pid = reply.get("master") if reply else None
        self.bad_calls.update(wire.bad_calls(reply))
        self.import_failures.update(wire.import_failures(reply))
        return reply

    def wait_ready(self) -> dict[str, str]:
        """Open the session if needed and wait for its hello (start-up limit); return the bad ``call:`` targets.

        Raises TimeoutError when the runner does not start in time, OSError when it cannot be reached.
        """
        if self.conn is None:
            self._start()
        if self.pid is None and self._hello(time.monotonic() + self.startup_timeout) is None:
            self._kill()
            last = self._log_tail(0, limit=300).splitlines()[-1:]
            raise OSError("the runner closed the connection before it was ready"
                          + (f" (its log ends: {last[0]})" if last else ""))
        return dict(self.bad_calls)

    def _fresh_master(self, why: str) -> None:
        """Drop the session and its master (a shared one is left to its owner): the next start forks anew."""
        self._kill()
        self.restarts += 1
        with open(self.log_path, "a") as log:
            log.write(f"{why}; starting a runner master of our own\n")
        self.shared = None
        if self.own_master is not None:
            self.own_master.close()
            self.own_master = None

    def _startup_failed(self, case: Case, t0: float) -> dict:
        """The record of a case whose runner did not start in time, twice: a harness fault, not a verdict.

        The case never ran, so it is no ``timeout``: the record says the harness
        could not run it (see :mod:`harness.core.faults`), and the run stops.
        """
        self._kill()
        self.restarts += 1
        rec = faults.record_of(case, f"the runner did not start within {self.startup_timeout:g} s "
                               f"(imports and warm-up; --startup-timeout), also in a fresh master; "
                               f"the case did not run")
        rec["log"] = self._log_tail(0)
        rec["wall_s"] = time.monotonic() - t0
        return rec


@dataclass
class _Sent:
    """A case sent to the session whose record has not been read yet."""

    case_id: str
    bundle_dir: str | None
    offset: int  # log size when it was sent: its output starts after this
    t_sent: float


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
    rec = record.new(case, st, stage="process", message=message)
    rec["log"] = log
    rec["wall_s"] = wall
    return rec
