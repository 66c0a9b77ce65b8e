"""Entry point of the case-runner *master* process (started by :class:`harness.isolation.processes.Master`).

Three levels of processes, all forked from one import:

* the **master** imports the frameworks once, runs their warm-up, then waits
  on a listening Unix socket (inherited from its parent as fd ``argv[3]``);
  one master serves every pytest process of a run (the xdist controller
  starts it; with ``-n 0`` the pytest process starts its own);
* each connection gets a **session**, forked from the master in milliseconds:
  it calls ``setsid`` (so its owner can kill it and everything under it as one
  process group), points fd 1 and 2 at the log file its owner names, then
* forks a **server** that reads cases from the connection and answers
  records on it. When native code kills the server (paddle2onnx aborts on
  opsets it rejects), the session reports ``{"crashed": exit_code}`` for the
  case in flight and forks a fresh server, with the imports already paid.

The master exits when its stdin (a pipe from its parent) closes. Forked
processes never run the interpreter's exit path (``os._exit``): threads the
master's libraries started do not exist in them, and joining those hangs.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import sys


#: framework -> ("missing" | "broken", reason): the master's failed framework imports, told in every hello
IMPORT_FAILURES: dict[str, tuple[str, str]] = {}


def _serve(fd: int, plugins: tuple[str, ...]) -> None:
    from . import pipeline, record, status, wire
    from .case import Case
    from . import faults

    cache = pipeline.ModelCache()
    while True:
        msg = wire.recv(fd, None)
        if msg is None:
            os._exit(0)
        case = Case.from_dict(msg["case"])
        print(f"--- case {case.id}", flush=True)
        try:
            rec = pipeline.run_case(case, msg["workdir"], cache, msg.get("providers"),
                                    msg.get("bundle_dir"), msg.get("device"))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a harness bug still becomes a record
            if faults.disk_full(exc) or isinstance(exc, MemoryError):  # the machine's fault, not the exporter's
                rec = faults.record_of(case, f"{faults.describe(exc)} while running {case.id}")
            else:
                rec = record.new(case, status.EXPORT_ERROR, stage="harness",
                                 message=f"harness error: {exc}", log=pipeline.format_exception())
        sys.stdout.flush()
        sys.stderr.flush()
        wire.send(fd, rec)


def check_calls(targets) -> dict[str, str]:
    """The ``call:`` targets that do not resolve here, and the exporters not registered (target -> why).

    Targets resolve through the aliases of every framework this runner holds (``tf.`` ->
    ``tensorflow.``: :func:`harness.core.calls.unresolved`); the framework is installed here, so a
    first segment that does not import is a typo like any other.
    """
    from . import calls, registry
    from .wire import EXPORTER_TARGET

    bad = {}
    calls_ = []
    for target in targets:
        if target.startswith(EXPORTER_TARGET):  # "exporter:<framework>/<name>": registered by the adapter?
            fw, _, name = target[len(EXPORTER_TARGET):].partition("/")
            if fw in registry.FRAMEWORKS and (fw, name) not in registry.EXPORTERS:
                known = sorted(e for f, e in registry.EXPORTERS if f == fw)
                bad[target] = f"no exporter {name!r} is registered for {fw} (registered: {', '.join(known)})"
        else:
            calls_.append(target)
    aliases = {k: v for fw in registry.FRAMEWORKS.values() for k, v in fw.call_aliases.items()}
    bad.update(calls.unresolved(calls_, aliases))
    return bad


def check_calls_apart(targets) -> dict[str, str]:
    """:func:`check_calls` in a forked child, so that the session stays as its master left it.

    Resolving a target imports its module; in the session itself that import
    would be inherited by every server forked after it, and a framework that is
    imported lazily, in each server, because it does not survive a fork (OneFlow:
    :func:`harness.frameworks.oneflow.flow`) would then hang in its first case.
    A child that dies before it answers makes every target unresolved, with why.
    """
    targets = tuple(targets)
    if not targets:
        return {}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            answer = json.dumps(check_calls(targets)).encode()
            while answer:
                answer = answer[os.write(w, answer):]
        except BaseException:  # noqa: BLE001 - the parent says the check died
            code = 1
        os._exit(code)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code == 0:
        try:
            return json.loads(b"".join(chunks))
        except ValueError:
            code = 1
    why = f"signal {-code}" if code < 0 else f"exit code {code}"
    return {t: f"checking the call targets killed the process ({why})" for t in targets}


def _warm_up(adapter) -> None:
    """Run the adapter's optional ``warm_up(workdir)`` so forked servers inherit a warm process."""
    if os.environ.get("HARNESS_NO_WARM_UP") == "1":
        return
    import shutil
    import tempfile

    workdir = tempfile.mkdtemp(prefix=f"onnx-conf-warm-{os.getpid()}-")  # see isolation.temp_dir
    # what the warm-up writes to the temp folder goes into workdir, removed below: TensorFlow's autograph
    # leaves its __autograph_generated_file*.py for an atexit hook that a runner, ending with _exit, never runs
    previous, tempfile.tempdir = tempfile.tempdir, workdir
    try:
        adapter.warm_up(workdir)
    except Exception as exc:  # noqa: BLE001 - only a lost optimisation; cases still run
        print(f"warm-up of {adapter.name} failed: {type(exc).__name__}: {exc}", flush=True)
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(workdir, ignore_errors=True)


def _session(conn: socket.socket, plugins: tuple[str, ...]) -> None:
    """One connection's session (a child of the master); never returns."""
    from . import wire

    os.setsid()
    fd = conn.fileno()
    hello = wire.recv(fd, None)
    if not hello:
        os._exit(0)
    try:
        log = os.open(hello["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
    except OSError as exc:
        print(f"session {os.getpid()}: cannot open log {hello.get('log')!r}: {exc}", flush=True)
    os.environ.update(hello.get("env") or {})
    wire.send(fd, wire.ready(os.getpid(), os.getppid(), check_calls_apart(hello.get("check_calls") or ()),
                             {fw: list(v) for fw, v in IMPORT_FAILURES.items()}))
    if os.environ.get("HARNESS_NO_FORK") == "1":
        _serve(fd, plugins)
    while True:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _serve(fd, plugins)
            except BaseException:  # noqa: BLE001 - reported by the session as a crash
                code = 70
            finally:
                os._exit(code)
        code = _wait_server(pid, conn)
        if code is None or (os.WIFEXITED(code) and os.WEXITSTATUS(code) == 0):
            os._exit(0)  # the owner closed the connection, asked us to stop, or is gone
        exit_code = -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)
        try:
            wire.send(fd, wire.crashed(exit_code))
        except OSError:
            os._exit(0)


def _wait_server(pid: int, conn: socket.socket) -> int | None:
    """Wait for the server ``pid``; if the owner hangs up first, kill it and return None.

    Without this a server stuck in native code would outlive a pytest worker
    that died or was stopped (the server only reads the socket between cases).
    """
    watch = select.poll()
    watch.register(conn, select.POLLRDHUP)
    try:
        exited = os.pidfd_open(pid)  # readable when the server exits: no polling delay
        watch.register(exited, select.POLLIN)
        tick = None
    except (AttributeError, OSError):  # no pidfd (Linux < 5.3): look every 20 ms
        exited, tick = None, 20
    try:
        while True:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                return code
            events = watch.poll(tick)
            if any(fd == conn.fileno() for fd, _ in events):  # the owner's end is closed
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    return code
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
    finally:
        if exited is not None:
            os.close(exited)


def _reap(wait_s: float = 0.0) -> None:
    """Reap ended sessions; with ``wait_s``, keep waiting that long for the rest to end."""
    import time

    end = time.monotonic() + wait_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= end:
                return
            time.sleep(0.01)


def main() -> None:
    """Import the frameworks, then fork a session per connection until stdin closes."""
    plugins = tuple(json.loads(sys.argv[1]))
    frameworks = tuple(json.loads(sys.argv[2]))
    listener = socket.socket(fileno=int(sys.argv[3]))
    os.dup2(2, 1)  # everything the frameworks print goes to the master's log
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)

    from . import registry

    for mod in plugins:
        try:
            importlib.import_module(mod)
        except ImportError as exc:  # e.g. a runtime or pass whose library is missing here: its cases say so
            print(f"plugin {mod} not importable: {exc}", flush=True)
    from . import faults

    for fw in frameworks:
        try:
            adapter = registry.load_framework(fw, plugins)
        except Exception as exc:  # noqa: BLE001 - missing or broken: every session's hello says which
            IMPORT_FAILURES[fw] = faults.import_failure(fw, exc)
            print(f"framework {fw} not importable: {IMPORT_FAILURES[fw][1]}", flush=True)
            continue
        _warm_up(adapter)
    import onnx  # noqa: F401 - imported once here, not in every forked server

    from harness import runtimes

    try:
        runtimes.get(runtimes.DEFAULT)
    except ImportError as exc:  # reported per case
        print(f"runtime {runtimes.DEFAULT} not importable: {exc}", flush=True)
    from . import repro

    try:
        repro.warm(tuple(fw for fw in frameworks if fw not in IMPORT_FAILURES), plugins)
    except Exception as exc:  # noqa: BLE001 - a failing case then reads the files itself
        print(f"repro bundles not warmed: {type(exc).__name__}: {exc}", flush=True)

    parent = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([listener, parent], [], [], 1.0)
        _reap()
        if parent in ready and not os.read(parent, 4096):
            _reap(2.0)  # they end as their owners disconnect; reaped here, CPU time counts
            sys.stdout.flush()
            os._exit(0)  # the parent is gone or done; skip the teardown of paddle/torch
        if listener in ready:
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                os.close(parent)
                try:
                    _session(conn, plugins)
                finally:
                    os._exit(0)
            conn.close()


if __name__ == "__main__":
    main()
