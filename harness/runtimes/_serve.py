"""``python -m harness.runtimes._serve``: the runtime server of :mod:`harness.runtimes._remote`.

Runs in a runtime's own environment, started by the case server. Reads
requests on stdin and answers on the original stdout; everything the native
libraries print goes to stderr (the file descriptor 1 is pointed there before
any runtime is imported, so a converter's chatter cannot corrupt the wire).

Requests (JSON header line, optional ``.npz`` payload):

* ``{"op": "prepare", "runtime": NAME, "path": ONNX, "shapes": [...], "dtypes": [...]}``:
  imports ``harness.runtimes.<NAME>`` and its library (``load()``, once: ``load_s``),
  then calls its ``native(path, shapes, dtypes, workdir)`` (timed: ``prepare_s``);
  answers ``{"ok": true, "sid": N, "provider": ..., "prepare_s": ..., "load_s": ...}``;
* ``{"op": "run", "sid": N}`` + the inputs: answers the outputs;
* ``{"op": "drop", "sid": N}``; ``{"op": "attempts"}``: the network and process
  starts the guard refused so far.

A failure answers ``{"ok": false, "error": ..., "unsupported": bool}``, with
``unsupported`` from the runtime's ``UNSUPPORTED_MARKERS``. Imports only the
standard library and numpy (plus the runtime asked for); Python 3.10+.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import time

#: audit events that reach the network or start a program
_NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
                   "socket.sendto", "urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect")
_PROCESS_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork")

#: what the guard refused: [event, detail]
ATTEMPTS: list[list[str]] = []
#: programs a runtime may start (its own converter binary, found by the runtime module)
ALLOWED_PROGRAMS: set[str] = set()


def _allowed(event: str, args: tuple) -> bool:
    if event == "socket.connect" and args and getattr(args[0], "family", None) == 1:  # AF_UNIX: local
        return True
    if event == "subprocess.Popen" and len(args) > 1:
        program = os.path.basename(str(args[0]))
        argv = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
        return program in ALLOWED_PROGRAMS or (bool(argv) and os.path.basename(str(argv[0])) in ALLOWED_PROGRAMS)
    return False


def _guard(event: str, args: tuple) -> None:
    """Audit hook: refuse (and record) network access and program starts other than the allowed ones."""
    if not (event in _NETWORK_EVENTS or event.startswith(_PROCESS_EVENTS)):
        return
    if _allowed(event, args):
        return
    detail = " ".join(str(a) for a in args)[:300]
    ATTEMPTS.append([event, detail])
    raise PermissionError(f"harness runtime server: {event} refused (no network or program starts at run time)")


def main() -> int:
    """Serve requests until stdin closes."""
    from . import Crashed, Unsupported
    from ._remote import pack, receive, send, unpack

    wire_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    wire_in = sys.stdin.buffer
    # pnnx: ncnn's converter; the C++ compiler driver: TVM links a module with no compiled kernel through it
    ALLOWED_PROGRAMS.update({"pnnx", "g++", "gcc", "c++", "cc"})
    sys.addaudithook(_guard)
    workdir = tempfile.mkdtemp(prefix="onnx-conf-rt-")
    sessions: dict[int, object] = {}
    modules: dict[str, object] = {}
    next_id = 0
    try:
        while True:
            msg, payload = receive(wire_in)
            if msg is None:
                return 0
            op = msg.get("op")
            mod = None
            try:
                if op == "prepare":
                    name = msg["runtime"]
                    load_s = 0.0
                    if name not in modules:
                        t0 = time.perf_counter()
                        modules[name] = importlib.import_module(f"harness.runtimes.{name}")
                        getattr(modules[name], "load", lambda: None)()
                        load_s = time.perf_counter() - t0
                    mod = modules[name]
                    t0 = time.perf_counter()
                    sess = mod.native(msg["path"], msg["shapes"], msg["dtypes"], workdir)
                    next_id += 1
                    sessions[next_id] = (mod, sess)
                    send(wire_out, {"ok": True, "sid": next_id, "provider": getattr(sess, "provider", name),
                                    "prepare_s": time.perf_counter() - t0, "load_s": load_s})
                elif op == "run":
                    mod, sess = sessions[msg["sid"]]
                    outs = sess.run(unpack(payload))
                    send(wire_out, {"ok": True}, pack(outs))
                elif op == "drop":
                    sessions.pop(msg.get("sid"), None)
                    send(wire_out, {"ok": True})
                elif op == "attempts":
                    send(wire_out, {"ok": True, "attempts": ATTEMPTS})
                else:
                    send(wire_out, {"ok": False, "error": f"unknown request {op!r}"})
            except Exception as exc:  # noqa: BLE001 - answered; the case decides what it means
                text = f"{type(exc).__name__}: {exc}"
                markers = getattr(mod, "UNSUPPORTED_MARKERS", ()) if mod is not None else ()
                unsupported = isinstance(exc, (Unsupported, NotImplementedError)) or any(m in text for m in markers)
                send(wire_out, {"ok": False, "error": text[:4000], "unsupported": unsupported,
                                "crashed": isinstance(exc, Crashed)})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
