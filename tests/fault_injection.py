"""Test-only pytest plugin: kills part of the harness while one chosen case runs.

Loaded with ``-p tests.fault_injection`` by tests/test_faults.py. ``HARNESS_FAULT``
is ``KIND:CASE_ID``; while that case is in flight (half a second after it was
handed to its runner) this process kills, with SIGKILL (or stops):

* ``worker``: itself (the pytest process running the case, e.g. an xdist worker);
* ``server``: the server process running the case (its session forks a new one);
* ``runner``: the case's whole session (process group) and the runner master it came from;
* ``master-stop``: stops (SIGSTOP) the runner master the case's session came from, and nothing else.

Each fault fires once per run (a marker file next to the results records it).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path


DELAY_S = 0.5


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _kill(kind: str, config) -> None:
    from harness.plugin import HARNESS

    if kind == "worker":
        os.kill(os.getpid(), signal.SIGKILL)
    lifecycle = config.stash[HARNESS].lifecycle
    for _ in range(200):  # the first case of a process may still be opening its runner session
        ex = lifecycle.runner.executors.get("fake") if lifecycle.runner is not None else None
        if ex is not None and ex.pid is not None:
            break
        time.sleep(0.05)
    if kind == "server":
        for pid in _children(ex.pid):
            os.kill(pid, signal.SIGKILL)
    elif kind == "master-stop":
        os.kill(ex.master_pid, signal.SIGSTOP)
    elif kind == "runner":
        os.killpg(ex.pid, signal.SIGKILL)
        if ex.master_pid:
            os.kill(ex.master_pid, signal.SIGKILL)


_config = None


def pytest_configure(config):
    global _config
    _config = config


def pytest_runtest_logstart(nodeid, location):
    """Arm the fault for the chosen case: it fires while the case runs (both case protocols log its start)."""
    from harness.plugin.lifecycle import where_cases_run
    from harness.plugin.summary import case_id_of

    if where_cases_run(_config) != "here":  # the xdist controller replays its workers' logstart
        return
    kind, _, case_id = os.environ.get("HARNESS_FAULT", "").partition(":")
    once = Path(os.environ.get("HARNESS_FAULT_MARK", "/nonexistent/fault.done"))
    if case_id and case_id_of(nodeid) == case_id and not once.exists():
        once.write_text(kind)

        def fire():
            time.sleep(DELAY_S)
            _kill(kind, _config)

        threading.Thread(target=fire, daemon=True).start()
