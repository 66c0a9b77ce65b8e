"""The runner wire protocol: the messages between a pytest process and its runner session.

Both ends (:mod:`harness.isolation.processes` in the pytest process, :mod:`harness.core.runner`
in the session and server) use only this module to talk. A message is a JSON
value framed by a 4-byte big-endian length. The conversation on one connection:

1. owner -> session: :func:`hello` (where to log, extra environment, and
   optionally the matrix's ``call:`` targets to resolve);
2. session -> owner: :func:`ready` (the session's pid, which is also its process
   group, its master's pid, and the targets that did not resolve);
3. owner -> server: :func:`run_case`, at most two outstanding (one sent ahead);
4. server -> owner: the case's record (a plain dict, see :mod:`harness.core.record`),
   or, from the session when the server died, :func:`crashed`;
5. owner -> server: :data:`STOP` (``null``) ends the session.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct("!I")

#: The message that ends a session.
STOP = None


#: a ``check_calls`` target naming an exporter (``exporter:<framework>/<name>``), not a ``call:`` function
EXPORTER_TARGET = "exporter:"


def hello(log: str, env: dict[str, str], check_calls: list[str] | None = None) -> dict:
    """First message of an owner: the log file the session writes to and extra environment.

    ``check_calls``: dotted ``call:`` targets of the matrix the session resolves
    in its warm framework before anything runs (a typo is a configuration
    error, not a failing case), and the exporters the cases use
    (:data:`EXPORTER_TARGET`), which the adapter registers there; see :func:`ready`.
    """
    return {"hello": True, "log": log, "env": env, "check_calls": list(check_calls or ())}


def ready(pid: int, master: int, bad_calls: dict[str, str] | None = None,
          import_failures: dict[str, list[str]] | None = None) -> dict:
    """The session's answer to :func:`hello`; ``bad_calls``: target -> why it does not resolve;
    ``import_failures``: framework -> ["missing" or "broken", why] for the frameworks that did not import."""
    return {"pid": pid, "master": master, "bad_calls": dict(bad_calls or {}),
            "import_failures": dict(import_failures or {})}


def import_failures(msg: dict) -> dict[str, tuple[str, str]]:
    """The frameworks a :func:`ready` message reports as not importable: framework -> (kind, why)."""
    got = msg.get("import_failures") if isinstance(msg, dict) else None
    return {fw: (v[0], v[1]) for fw, v in (got or {}).items()}


def bad_calls(msg: dict) -> dict[str, str]:
    """The targets a :func:`ready` message reports as unresolvable (target -> why)."""
    return dict(msg.get("bad_calls") or {}) if isinstance(msg, dict) else {}


def run_case(case: dict, bundle_dir: str | None, device: dict | None, workdir: str) -> dict:
    """Ask the server to run one case (``case`` as :meth:`harness.core.case.Case.to_dict`)."""
    return {"case": case, "bundle_dir": bundle_dir, "device": device, "workdir": workdir}


def crashed(exit_code: int) -> dict:
    """The session's report that the server running the current case died."""
    return {"crashed": exit_code}


def crash_code(msg: dict) -> int | None:
    """The exit code of a :func:`crashed` message, or None for any other message."""
    return msg.get("crashed") if isinstance(msg, dict) else None


def is_crash(msg: Any) -> bool:
    """Whether ``msg`` is a :func:`crashed` message."""
    return isinstance(msg, dict) and "crashed" in msg


def send(fd: int, obj: Any) -> None:
    """Write one framed message (blocking until all of it is written)."""
    data = json.dumps(obj).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)  # one write: the reader wakes once, for all of it
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
            ready_fds, _, _ = select.select([fd], [], [], left)
            if not ready_fds:
                raise TimeoutError
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv(fd: int, deadline: float | None) -> Any:
    """Read one message; None when the other end closed; TimeoutError past ``deadline`` (monotonic)."""
    head = _recv_exact(fd, _HEADER.size, deadline)
    if head is None:
        return None
    body = _recv_exact(fd, _HEADER.unpack(head)[0], deadline)
    return None if body is None else json.loads(body)
