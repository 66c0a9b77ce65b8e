"""Pictures of failing models: ``graph.svg`` in every repro bundle that holds a model.

Controller only (like the results file, pictures are written by one process). A bundle is
complete when its case's record reaches the controller (the case server writes it before it
answers), so each record with a ``repro_bundle`` queues that bundle's models
(:func:`harness.report.netron.bundle_pictures`). One thread takes the pictures in one headless
Chromium (:class:`harness.report.netron.Pictures`, one Netron server over the repro folder),
value failures first. While cases run it takes one only when the CPU has room (:func:`cpu_busy`:
under :data:`BUSY` of the machine over the last half second) and at a lowered CPU priority:
measured in a default run on 2 cores, drawing all 1938 pictures beside the cases (256 s of
picture thread at nice 10) made the cases 23% slower (537 s against 437 s), since the browser's
processes and the thread's own work in the controller take CPU the cases use. After the last case it waits
at most ``--pictures-wait`` seconds for what is still queued, then ends the browser; what is
left is counted and ``python -m harness pictures RESULTS`` draws it later.

A picture never changes a verdict: every problem (no Chromium, Netron refusing a model, a
dead browser) is counted and its first message printed in the run's summary.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time

import pytest

from harness.core import status
from .options import HarnessConfig

#: CPU niceness of the browser while cases run (they keep the CPU first)
NICE_DURING_RUN = 10
#: pictures first of the failures a model picture explains best, then the rest
FIRST = (status.MISMATCH, status.SHAPE_MISMATCH, status.DTYPE_MISMATCH, status.RUNTIME_ERROR,
         status.RUNTIME_UNSUPPORTED)
#: the share of the machine's CPU above which no picture is started while cases run
BUSY = 0.85
#: seconds between looks at the CPU while it is busy
LOOK_EVERY = 1.0
#: consecutive failed pictures after which the browser is given up for this run
GIVE_UP_AFTER = 5
_DONE = object()


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine since boot, from ``/proc/stat``; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(interval: float = 0.5, threshold: float = BUSY) -> bool:
    """Whether the machine's CPU was busier than ``threshold`` over the next ``interval`` seconds
    (False where ``/proc/stat`` cannot be read: pictures are then drawn as they come)."""
    first = _cpu_times()
    time.sleep(interval)
    second = _cpu_times()
    if first is None or second is None or second[1] <= first[1]:
        return False
    return (second[0] - first[0]) / (second[1] - first[1]) > threshold


class BundlePictures:
    """Plugin object (controller only): draws each failing case's model into its repro bundle."""

    def __init__(self, config, cfg: HarnessConfig):
        self.config = config
        self.wait = cfg.pictures_wait
        self.root = cfg.repro_dir
        self.results = cfg.results
        from harness.report.netron import chromium

        self.binary = chromium()
        self.queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._pictures = None
        self._stop = threading.Event()
        #: set once the last case is done: from then on pictures no longer wait for a free CPU
        self._cases_done = threading.Event()
        self.queued = self.made = self.failed = 0
        self.busy_s = 0.0
        self.tail_s = 0.0
        self.timed_out = self.interrupted = False
        self.errors: list[str] = []

    def pytest_runtest_logreport(self, report):
        """Queue the models of a record's repro bundle."""
        if report.when != "call":
            return
        rec = next((v for k, v in report.user_properties if k == "record"), None)
        if not rec or not rec.get("repro_bundle"):
            return
        from harness.report.netron import bundle_pictures

        rank = 0 if rec.get("status") in FIRST else 1
        for model, picture in bundle_pictures(rec["repro_bundle"]):
            self.queued += 1
            if self.binary is not None:
                self.queue.put((rank, next(self._order), str(model), str(picture)))
        if self.queued and self.binary is not None and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="harness-pictures", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        """The picture thread: one browser for the run; every problem is counted, none raised."""
        from harness.report.netron import PictureError, Pictures

        try:
            self._pictures = Pictures(self.binary, root=self.root, nice=NICE_DURING_RUN)
        except (PictureError, OSError) as exc:
            self.errors.append(str(exc))
            self._drain()
            return
        streak = 0
        try:
            while not self._stop.is_set():
                _, _, model, picture = self.queue.get()
                if model is _DONE:
                    break
                while not self._cases_done.is_set() and cpu_busy():  # the cases keep the CPU first
                    self._cases_done.wait(LOOK_EVERY)
                t0 = time.perf_counter()
                try:
                    self._pictures.take(model, picture)
                    self.made += 1
                    streak = 0
                except Exception as exc:  # noqa: BLE001 - a picture problem must not reach a verdict
                    self.failed += 1
                    streak += 1
                    if len(self.errors) < 3:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                    if streak >= GIVE_UP_AFTER:
                        self.errors.append(f"gave up after {streak} failed pictures in a row")
                        break
                finally:
                    self.busy_s += time.perf_counter() - t0
        finally:
            self._pictures.close()

    def _drain(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return

    def pytest_sessionfinish(self, session, exitstatus):
        """Wait at most ``--pictures-wait`` s (none after Ctrl-C) for the queued pictures, then end the browser."""
        if self._thread is None:
            return
        t0 = time.monotonic()
        self.queue.put((2, next(self._order), _DONE, None))  # after every picture queued
        self._cases_done.set()
        pictures = self._pictures
        if pictures is not None:
            pictures.renice(0)  # the cases are done: the browser may have the CPU
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED  # Ctrl-C: no waiting for pictures
        self._thread.join(0 if interrupted else self.wait)
        self.interrupted = interrupted
        if self._thread.is_alive():
            self.timed_out = True
            self._stop.set()
            if self._pictures is not None:
                self._pictures.abort()  # a picture under way fails now; the thread then closes
            self._thread.join(10)
        self.tail_s = time.monotonic() - t0

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        """One line: pictures made, failed and left, and what they cost."""
        if not self.queued:
            return
        if self.binary is None:
            from harness.report.netron import CHROMIUM_NAMES

            terminalreporter.write_line(
                f"pictures: none of the {self.queued} models in the repro bundles drawn: no Chromium on PATH "
                f"(looked for {', '.join(CHROMIUM_NAMES)}; Debian: apt-get install -y chromium)")
            return
        left = self.queued - self.made - self.failed
        line = (f"pictures: {self.made} of {self.queued} graph.svg written in the repro bundles "
                f"({self.busy_s:.1f} s in the picture thread, {self.tail_s:.1f} s after the last case)")
        if self.failed:
            line += f"; {self.failed} failed"
        if left:
            why = (("the run was interrupted" if self.interrupted else f"--pictures-wait {self.wait:g} s passed")
                   if self.timed_out else "the picture thread stopped")
            line += f"; {left} left ({why}): python -m harness pictures {self.results}"
        terminalreporter.write_line(line)
        for err in self.errors:
            terminalreporter.write_line(f"  picture problem: {err}")

