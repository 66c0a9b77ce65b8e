"""The shared runner master and cases sent ahead (fake framework only).

One master imports once; every executor (one per pytest process) gets a
session forked from it. These tests pin down what that must not cost: a
timeout or crash in one session leaves the master and the other sessions
alone, a lost master is replaced, and a case sent ahead keeps its own verdict.
"""

import os
import time
from pathlib import Path

import pytest

from harness.core import status
from harness.isolation.processes import SessionClient, Master
from harness.spec.matrix import Scope, load_all
from harness.core import faults

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "data" / "fake.yaml"
TOLS = ROOT / "cases" / "tolerances.yaml"


@pytest.fixture(scope="module")
def fake():
    m = load_all([FAKE], TOLS, Scope(opsets="declared"))
    cases = {(c.variant, c.opset): c for c in m.cases}
    return m.plugins, lambda variant, opset=13: cases[(variant, opset)]


@pytest.fixture
def master(fake, tmp_path):
    plugins, _ = fake
    m = Master(plugins, ("fake",), tmp_path / "master.log").start()
    yield m
    m.close()


def _executor(fake, tmp_path, master=None, timeout=20, label="main"):
    plugins, _ = fake
    return SessionClient(timeout=timeout, plugins=plugins, workdir=str(tmp_path), frameworks=("fake",),
                    label=label, master=master.describe() if master else None)


def test_two_executors_share_one_master(fake, master, tmp_path):
    _, case = fake
    a, b = (_executor(fake, tmp_path, master, label=n) for n in ("gw0", "gw1"))
    try:
        assert a.run(case("good"))["status"] == status.PASS
        assert b.run(case("good", 14))["status"] == status.PASS
        assert a.master_pid == b.master_pid == master.proc.pid
        assert a.own_master is None and b.own_master is None
        assert a.pid != b.pid  # each has its own session
        # each session writes what its server prints to its owner's log
        assert "--- case fake-fake-relu-good-opset13" in (tmp_path / "runner-gw0.log").read_text()
        assert "--- case fake-fake-relu-good-opset14" in (tmp_path / "runner-gw1.log").read_text()
    finally:
        a.close()
        b.close()


def test_timeout_kills_only_that_session(fake, master, tmp_path):
    _, case = fake
    a = _executor(fake, tmp_path, master, timeout=3, label="gw0")
    b = _executor(fake, tmp_path, master, label="gw1")
    try:
        assert b.run(case("good"))["status"] == status.PASS
        b_session = b.pid
        assert a.run(case("hangs"))["status"] == status.TIMEOUT
        t = time.monotonic()
        assert a.run(case("good"))["status"] == status.PASS
        assert time.monotonic() - t < 2.5  # a fork of the warm master, not a new import
        assert a.started == 2 and a.master_pid == master.proc.pid and master.alive()
        assert b.run(case("good", 14))["status"] == status.PASS and b.pid == b_session
    finally:
        a.close()
        b.close()


def test_crash_keeps_the_session(fake, master, tmp_path):
    _, case = fake
    ex = _executor(fake, tmp_path, master)
    try:
        assert ex.run(case("good"))["status"] == status.PASS
        session = ex.pid
        rec = ex.run(case("aborts"))
        assert rec["status"] == status.CRASH and "SIGABRT" in rec["message"], rec
        assert ex.run(case("good", 14))["status"] == status.PASS
        assert ex.pid == session and ex.started == 1
    finally:
        ex.close()


def test_a_master_that_is_gone_is_replaced(fake, tmp_path):
    plugins, case = fake
    gone = Master(plugins, ("fake",), tmp_path / "gone.log").start()
    address = gone.describe()
    gone.close()
    ex = SessionClient(timeout=20, plugins=plugins, workdir=str(tmp_path), frameworks=("fake",), master=address)
    try:
        assert ex.run(case("good"))["status"] == status.PASS
        assert ex.own_master is not None and ex.master_pid == ex.own_master.proc.pid
        assert "unreachable" in (tmp_path / "runner-main.log").read_text()
    finally:
        ex.close()


def test_a_master_for_other_frameworks_is_not_used(fake, tmp_path):
    plugins, case = fake
    other = {"address": "/nonexistent/runner.sock", "plugins": list(plugins), "frameworks": ["paddle"]}
    ex = SessionClient(timeout=20, plugins=plugins, workdir=str(tmp_path), frameworks=("fake",), master=other)
    try:
        assert ex.shared is None
        assert ex.run(case("good"))["status"] == status.PASS
    finally:
        ex.close()


def test_own_master_goes_away_on_close(fake):
    plugins, case = fake
    ex = SessionClient(timeout=20, plugins=plugins, frameworks=("fake",))  # its own master and workdir
    assert ex.run(case("good"))["status"] == status.PASS
    proc = ex.own_master.proc
    session = ex.pid
    ex.close()
    assert proc.poll() is not None
    assert _gone(session, 5), f"session {session} outlived its executor"
    assert not os.path.exists(ex.workdir)  # a workdir the executor made is removed with it


# -- cases sent ahead -------------------------------------------------------------------------------
def test_case_sent_ahead_keeps_its_own_verdict_and_log(fake, master, tmp_path):
    _, case = fake
    ex = _executor(fake, tmp_path, master)
    try:
        good, bad, crash = case("good"), case("wrong_values"), case("aborts")
        assert ex.run(good, ahead=(bad, None))["status"] == status.PASS
        time.sleep(0.5)  # the server runs `bad` meanwhile
        rec = ex.run(bad, ahead=(crash, None))
        assert rec["status"] == status.MISMATCH and rec["id"] == bad.id, rec
        rec = ex.run(crash, ahead=(case("good", 14), None))
        assert rec["status"] == status.CRASH and "SIGABRT" in rec["message"], rec
        assert bad.id not in rec["log"] and "good-opset14" not in rec["log"], rec["log"]  # its own part only
        # the server forked after the crash goes on with what was sent ahead
        assert ex.run(case("good", 14))["status"] == status.PASS
        assert ex.started == 1
    finally:
        ex.close()


def test_asking_for_another_case_than_the_one_sent_ahead(fake, master, tmp_path):
    _, case = fake
    ex = _executor(fake, tmp_path, master, timeout=3)
    try:
        assert ex.run(case("good"), ahead=(case("hangs"), None))["status"] == status.PASS
        # the caller changed its mind (e.g. pytest -x stopped): the hanging case must not block it
        t = time.monotonic()
        rec = ex.run(case("wrong_values"))
        assert rec["status"] == status.MISMATCH and rec["id"] == case("wrong_values").id, rec
        assert time.monotonic() - t < 2.5
    finally:
        ex.close()


def test_timeout_of_a_case_sent_ahead_counts_from_when_it_started(fake, master, tmp_path):
    _, case = fake
    ex = _executor(fake, tmp_path, master, timeout=3)
    try:
        assert ex.run(case("good"), ahead=(case("hangs"), None))["status"] == status.PASS
        time.sleep(2)  # the caller is slow to come back: the hang has been running meanwhile
        t = time.monotonic()
        rec = ex.run(case("hangs"))
        assert rec["status"] == status.TIMEOUT, rec
        assert time.monotonic() - t < 2.5  # ~1 s left of its 3 s, not a fresh 3 s
    finally:
        ex.close()


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_hung_server_dies_with_its_owner(fake, master, tmp_path):
    """A pytest worker that dies (or is stopped) mid-case must not leave its server running."""
    _, case = fake
    ex = _executor(fake, tmp_path, master, timeout=60)
    try:
        assert ex.run(case("good"))["status"] == status.PASS
        session = ex.pid
        ex._send_case(case("hangs"), None, None)
        time.sleep(0.5)
        servers = _children(session)
        assert len(servers) == 1
        ex.conn.close()  # the owner vanishes without a word
        ex.conn = None
        assert _gone(servers[0], 5) and _gone(session, 5)
        assert master.alive()
    finally:
        ex.close()


def test_start_up_is_not_counted_against_the_first_case(fake, tmp_path):
    """A slow import and warm-up (3 s) must not time out a 1 s case: start-up has its own limit."""
    plugins, case = fake
    ex = SessionClient(timeout=1, startup_timeout=30, plugins=plugins, workdir=str(tmp_path), frameworks=("fake",),
                  env={"HARNESS_FAKE_WARM_UP_S": "3"})
    try:
        t = time.monotonic()
        rec = ex.run(case("good"))
        assert rec["status"] == status.PASS, rec
        assert time.monotonic() - t >= 3 and rec["wall_s"] < 1  # the wait was start-up, not the case
    finally:
        ex.close()


def test_a_runner_that_does_not_start_in_time_says_so(fake, tmp_path):
    plugins, case = fake
    ex = SessionClient(timeout=30, startup_timeout=1, plugins=plugins, workdir=str(tmp_path), frameworks=("fake",),
                  env={"HARNESS_FAKE_WARM_UP_S": "10"})
    try:
        rec = ex.run(case("good"))
        # the case never ran: no timeout verdict, but a harness fault (after one try with a fresh master)
        assert faults.is_fault(rec) and rec["status"] == status.SKIPPED, rec
        assert "the runner did not start within 1 s (imports and warm-up; --startup-timeout), also in a " \
               "fresh master; the case did not run" in rec["message"]
        assert ex.restarts == 2
    finally:
        ex.close()


def test_call_targets_resolve_in_a_child_not_in_the_session(monkeypatch):
    """The session's ``call:`` check imports each target's module in a forked child, so the servers
    the session forks later do not inherit it (OneFlow's graph compile hangs after a fork that
    follows its import); a typo is still reported, and a child that dies says so for every target."""
    import subprocess
    import sys

    from harness.core import runner

    probe = ("import sys; from harness.core import runner; "
             "bad = runner.check_calls_apart(['wave.open', 'wave.nosuchcall', 'nosuchmodule.f']); "
             "print(sorted(bad), 'wave' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['nosuchmodule.f',", "'wave.nosuchcall']", "False"], out.stdout
    assert runner.check_calls_apart(()) == {}
    monkeypatch.setattr(runner, "check_calls", lambda targets: os.kill(os.getpid(), 9))
    died = runner.check_calls_apart(["wave.open", "json.dumps"])
    assert set(died) == {"wave.open", "json.dumps"}
    assert all("killed the process (signal 9)" in why for why in died.values()), died
