"""Runtimes that live in an environment of their own, reached through a small server process.

TVM, ncnn, tract, MNN (environment ``runtimes``) and LiteRT through onnx2tf
(environment ``litert``, Python 3.12) cannot share the environments the cases
run in (pinned numpy/onnx, Python 3.10 for OneFlow). Their adapter in the case
server is a :class:`RemoteRuntime`: on first use it starts
``python -m harness.runtimes._serve`` in the runtime's environment (declared in
``pyproject.toml`` like a framework's) and sends it the path of the exported
ONNX file and the inputs; the server converts/compiles the model with the
runtime's native API and runs it.

The wire is one JSON header line per message followed by an optional ``.npz``
payload (portable across numpy 1.x and 2.x, unlike pickles). The server is a
child of the case server, in its process group: when a case times out the
whole group is killed with it. When the server dies of a signal (a native
crash of the runtime) the client raises :class:`harness.runtimes.Crashed`,
which the pipeline records as that case's ``crash``; the next case starts a
fresh server.

Network: the server runs in an unshared network namespace (``unshare -n``)
where the kernel allows it, and always under an audit hook (see
:mod:`harness.runtimes._serve`) that refuses and records any socket or
unexpected subprocess, so no runtime can reach the network or pip-install at
run time. This module imports only the standard library and numpy.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import Crashed, Unsupported

#: set by the pytest controller for the runners: {env name: {"python": exe, "unavailable": reason or None}}
ENVS_VARIABLE = "HARNESS_RUNTIME_ENVS"
ROOT = Path(__file__).resolve().parent.parent.parent
#: what the runtime servers' processes get besides the case server's environment: no telemetry, no
#: backtraces from Rust, one thread
SERVER_ENV = {"RUST_BACKTRACE": "0", "MNN_TELEMETRY": "0", "DO_NOT_TRACK": "1", "TVM_NUM_THREADS": "1",
              "OMP_NUM_THREADS": "1", "PIP_NO_INDEX": "1", "PIP_NO_INPUT": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
              "PYTHONDONTWRITEBYTECODE": "1"}


def environment(name: str) -> tuple[str | None, str | None]:
    """(interpreter, None) of the runtime environment ``name``, or (None, why it cannot be used).

    The controller resolves the declaration and passes it in ``HARNESS_RUNTIME_ENVS``;
    without it (a direct call, a replay) the conventional path ``.envs/<name>`` is used
    when the marker that ``envs create`` writes last is there.
    """
    how = f"create it with `python -m harness envs create {name}`"
    try:
        given = json.loads(os.environ.get(ENVS_VARIABLE) or "{}")
    except ValueError:
        given = {}
    if name in given:
        found = given[name]
        return (None, found["unavailable"]) if found.get("unavailable") else (found["python"], None)
    path = ROOT / ".envs" / name
    if not (path / "bin" / "python").exists():
        return None, f"it runs in its own environment .envs/{name}, which does not exist: {how}"
    if not (path / "harness-env.json").exists():
        return None, f"its environment .envs/{name} was not completed: {how}"
    return str(path / "bin" / "python"), None


def pack(arrays: list[np.ndarray]) -> bytes:
    """Arrays as an ``.npz`` payload (``a0``, ``a1``, ...)."""
    buf = io.BytesIO()
    np.savez(buf, **{f"a{i}": np.asarray(a) for i, a in enumerate(arrays)})
    return buf.getvalue()


def unpack(payload: bytes) -> list[np.ndarray]:
    """Inverse of :func:`pack`."""
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        return [z[f"a{i}"] for i in range(len(z.files))]


def send(stream, header: dict, payload: bytes = b"") -> None:
    """One message: the JSON header (with the payload's size) on a line, then the payload."""
    stream.write((json.dumps({**header, "nbytes": len(payload)}) + "\n").encode())
    if payload:
        stream.write(payload)
    stream.flush()


def receive(stream) -> tuple[dict | None, bytes]:
    """The next message, or (None, b"") at end of stream."""
    line = stream.readline()
    if not line:
        return None, b""
    header = json.loads(line)
    n = header.get("nbytes", 0)
    payload = stream.read(n) if n else b""
    if len(payload) != n:
        return None, b""
    return header, payload


#: prepared models a runtime server keeps per runtime (least recently used dropped first)
KEPT_MODELS = 8

_UNSHARE: list[str] | None = None


def _network_off_prefix() -> list[str]:
    """``["unshare", "-n"]`` when this process may make a network namespace without network, else ``[]``."""
    global _UNSHARE
    if _UNSHARE is None:
        exe = shutil.which("unshare")
        ok = False
        if exe:
            try:
                ok = subprocess.run([exe, "-n", "true"], capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
        _UNSHARE = [exe, "-n"] if ok and exe else []
    return _UNSHARE


class Server:
    """One runtime server process in one environment (started lazily, restarted after it died)."""

    def __init__(self, env_name: str):
        self.env_name = env_name
        self.proc: subprocess.Popen | None = None
        self.log_path: str | None = None
        self.network_namespace = False
        #: counts the starts: a prepared model's id is valid only in the server that made it
        self.generation = 0

    def start(self) -> None:
        exe, why = environment(self.env_name)
        if exe is None:
            raise Unsupported(f"environment {self.env_name} unavailable: {why}")
        fd, self.log_path = tempfile.mkstemp(prefix=f"onnx-conf-rt-{self.env_name}-", suffix=".log")
        prefix = _network_off_prefix()
        self.network_namespace = bool(prefix)
        env = {**os.environ, **SERVER_ENV, "PYTHONPATH": str(ROOT)}
        env.pop(ENVS_VARIABLE, None)
        self.proc = subprocess.Popen([*prefix, exe, "-m", "harness.runtimes._serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=fd, cwd=str(ROOT), env=env)
        os.close(fd)
        self.generation += 1

    def call(self, header: dict, payload: bytes = b"") -> tuple[dict, bytes]:
        """Send one request and wait for its answer; :class:`Crashed` when the server died meanwhile."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            send(self.proc.stdin, header, payload)
            reply, data = receive(self.proc.stdout)
        except (BrokenPipeError, OSError, ValueError):
            reply, data = None, b""
        if reply is None:
            raise Crashed(self._death())
        return reply, data

    def _death(self) -> str:
        """Why the server is gone (its exit or signal and the last lines it printed); it is restarted next time."""
        code = self.proc.wait(timeout=30) if self.proc else None
        self.proc = None
        if code is not None and code < 0:
            import signal

            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited {code}"
        tail = ""
        if self.log_path:
            try:
                with open(self.log_path, errors="replace") as f:
                    lines = [ln.strip() for ln in f.read()[-4000:].splitlines() if ln.strip()]
                tail = " | ".join(lines[-6:])
            except OSError:
                pass
        return f"the {self.env_name} runtime server {how}" + (f": {tail}" if tail else "")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


_SERVERS: dict[str, Server] = {}


def server(env_name: str) -> Server:
    """This process's server of ``env_name`` (one per case server, shared by that environment's runtimes)."""
    found = _SERVERS.get(env_name)
    if found is None:
        found = _SERVERS[env_name] = Server(env_name)
    return found


class RemoteSession:
    """A model prepared in a runtime server on the first ``run`` of each input signature.

    Converters and compilers fix the input shapes (pnnx's ``inputshape``, TVM's
    static shapes), so a case whose input sets differ in shape (a dynamic axis)
    gets one preparation per signature, each timed into ``prepare_s``.
    """

    fallback = None

    def __init__(self, runtime: "RemoteRuntime", path: str):
        self.runtime = runtime
        self.path = path
        self.provider = runtime.provider
        #: input signature -> model id in the server
        self.sids: dict = {}
        #: the runtime's own preparation (conversion, compilation), timed in the server
        self.timings: dict = {}

    def _prepare(self, inputs: list[np.ndarray], signature: tuple) -> int:
        srv = server(self.runtime.environment)
        key = (self.path, os.path.getmtime(self.path), signature)
        cached = self.runtime.sessions.get(key)
        if cached is not None and cached[0] == srv.generation and srv.proc is not None:
            # the same exported model met this runtime before (e.g. the base run after a pass)
            self.runtime.sessions.move_to_end(key)
            self.timings.setdefault("prepare_s", 0.0)
            self.timings["prepare_reused"] = True
            return cached[1]
        reply, _ = srv.call(
            {"op": "prepare", "runtime": self.runtime.name, "path": self.path,
             "shapes": [list(a.shape) for a in inputs], "dtypes": [a.dtype.str for a in inputs]})
        if not reply.get("ok"):
            self._raise(reply)
        self.provider = reply.get("provider") or self.provider
        self.timings["prepare_s"] = self.timings.get("prepare_s", 0.0) + (reply.get("prepare_s") or 0.0)
        if reply.get("load_s"):  # the first model of a fresh server also paid the library's import
            self.timings["runtime_load_s"] = reply["load_s"]
        self.runtime.sessions[key] = (srv.generation, reply["sid"])
        while len(self.runtime.sessions) > KEPT_MODELS:
            (_, (gen, sid)) = self.runtime.sessions.popitem(last=False)
            if gen == srv.generation and srv.proc is not None:
                srv.call({"op": "drop", "sid": sid})
        return reply["sid"]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        inputs = [np.asarray(a, order="C") for a in inputs]  # (ascontiguousarray would make a 0-d input 1-d)
        signature = tuple((a.shape, a.dtype.str) for a in inputs)
        sid = self.sids.get(signature)
        if sid is None:
            sid = self.sids[signature] = self._prepare(inputs, signature)
        t0 = time.perf_counter()
        reply, data = server(self.runtime.environment).call({"op": "run", "sid": sid}, pack(inputs))
        self.timings["exec_s"] = self.timings.get("exec_s", 0.0) + time.perf_counter() - t0
        if not reply.get("ok"):
            self._raise(reply)
        return unpack(data)

    def _raise(self, reply: dict):
        msg = reply.get("error", "unknown error")
        if reply.get("crashed"):  # a converter the runtime started died of a signal
            raise Crashed(msg)
        if reply.get("unsupported"):
            raise Unsupported(msg)
        raise RuntimeError(msg)


class RemoteRuntime:
    """Base of a runtime run by a server in its own environment (``environment`` names it)."""

    name = ""
    environment = ""
    provider = ""
    #: the devices this runtime runs cases on; a case on another device is skipped
    devices = ("cpu",)

    def __init__(self):
        #: (path, mtime, input shapes) -> (server generation, model id); the server keeps these models
        self.sessions: OrderedDict = OrderedDict()

    def unavailable(self) -> str | None:
        """Why this runtime cannot run here (its environment is missing), or None."""
        exe, why = environment(self.environment)
        return None if exe else why

    def prepare(self, model, path, setting):
        return RemoteSession(self, path)

    def unsupported(self, exc):
        return isinstance(exc, Unsupported)
