"""Entry point of the case-runner process (started by :class:`harness.isolation.Executor`).

The process is a *zygote*: it imports the frameworks once, then forks a server
that reads cases from stdin and answers records on the original stdout. When
native code kills the server (paddle2onnx aborts on opsets it rejects), the
zygote reports ``{"crashed": exit_code}`` for the case in flight and forks a
fresh server in milliseconds, with the imports already paid.

Everything the frameworks print (fd 1 and fd 2) goes to the log file the parent
gave as stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import sys


def _serve(fd_in: int, fd_out: int, plugins: tuple[str, ...]) -> None:
    from . import isolation, pipeline, status
    from .case import Case

    cache = pipeline.ModelCache()
    while True:
        msg = isolation._recv(fd_in, None)
        if msg is None:
            os._exit(0)
        case = Case.from_dict(msg["case"])
        print(f"--- case {case.id}", flush=True)
        try:
            rec = pipeline.run_case(case, msg["workdir"], cache, msg.get("providers"),
                                    msg.get("bundle_dir"), msg.get("device"))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a harness bug still becomes a record
            rec = pipeline._record(case, status.EXPORT_ERROR, stage="harness",
                                   message=f"harness error: {exc}", log=pipeline.format_exception())
        sys.stdout.flush()
        sys.stderr.flush()
        isolation._send(fd_out, rec)


def _warm_up(adapter) -> None:
    """Run the adapter's optional ``warm_up(workdir)`` so forked servers inherit a warm process."""
    warm = getattr(adapter, "warm_up", None)
    if warm is None or os.environ.get("HARNESS_NO_WARM_UP") == "1":
        return
    import shutil
    import tempfile

    workdir = tempfile.mkdtemp(prefix="onnx-conf-warm-")
    try:
        warm(workdir)
    except Exception as exc:  # noqa: BLE001 - only a lost optimisation; cases still run
        print(f"warm-up of {adapter.name} failed: {type(exc).__name__}: {exc}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Import the frameworks, then fork servers until stdin closes."""
    plugins = tuple(json.loads(sys.argv[1])) if len(sys.argv) > 1 else ()
    frameworks = tuple(json.loads(sys.argv[2])) if len(sys.argv) > 2 else ()
    msg_out = os.dup(1)
    os.dup2(2, 1)  # native prints on stdout must not corrupt the message pipe
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)

    from . import isolation, registry

    for mod in plugins:
        importlib.import_module(mod)
    for fw in frameworks:
        try:
            adapter = registry.load_framework(fw, plugins)
        except ImportError as exc:  # reported per case as 'skipped'
            print(f"framework {fw} not importable: {exc}", flush=True)
            continue
        _warm_up(adapter)
    import onnx  # noqa: F401 - imported once here, not in every forked server
    import onnxruntime  # noqa: F401
    fd_in = sys.stdin.fileno()
    use_fork = os.environ.get("HARNESS_NO_FORK") != "1"
    if not use_fork:
        _serve(fd_in, msg_out, plugins)
        return
    while True:
        pid = os.fork()
        if pid == 0:
            # A forked server must never run the interpreter's exit path: threads the
            # zygote's libraries started do not exist here, and joining them hangs.
            code = 0
            try:
                _serve(fd_in, msg_out, plugins)
            except BaseException:  # noqa: BLE001 - reported by the zygote as a crash
                code = 70
            finally:
                os._exit(code)
        _, code = os.waitpid(pid, 0)
        if os.WIFEXITED(code) and os.WEXITSTATUS(code) == 0:
            # The parent closed the pipe or asked us to stop. Skip the interpreter's
            # teardown of paddle/torch (~1 s that the pytest worker would wait for).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        exit_code = -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)
        isolation._send(msg_out, {"crashed": exit_code})


if __name__ == "__main__":
    main()
