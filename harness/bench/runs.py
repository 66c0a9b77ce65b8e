"""``python -m harness bench``: what the harness costs over a bare export loop, per framework.

On one fixed, deterministic sample of real cases of all four frameworks
(Paddle, torch, TensorFlow, OneFlow; ``--frameworks``), weighted per framework
and exporter like the default run (:mod:`harness.bench.sample`), it measures,
end to end (process start to exit, imports included, each in a fresh
subprocess):

a. the *floor*: no isolation, no pytest, doing only what a case needs
   (:mod:`harness.bench.floor`): build the model and its reference once per
   model, export through the harness's own exporter call, ``onnx.checker``
   full check, an ONNX Runtime session and run, and a comparison. One process
   per environment (the main one for Paddle and torch, ``.envs/tensorflow``,
   ``.envs/oneflow``), run one after another;
b. the harness with ``-n 0`` on exactly those case ids (``--case-ids``);
c. the harness with ``-n 2`` (``--workers``);
p. the floor of each environment split into as many processes as c has
   workers, run at once (each model's cases in one process): the speed-up the
   bare loop itself gets from the cores, so ``a/p`` is the ceiling the machine
   puts on ``b/c`` (processes on the cores share caches, memory bandwidth and
   clock).

Per run it prints the wall time, the CPU time of the whole process tree, the
time until the first case was done (``start s``: process start, imports,
warm-up, collection, first case) and the rate after it (``steady/s``), so the
serial start-up and the parallel part of each ratio can be told apart; and per
framework the cost of its cases read from the records (:mod:`harness.bench.costs`):
mean and median case wall, mean export and its share of the case wall, and
(b, c) the peak PSS of the framework's runner processes.

``--suite models`` runs the harness once (``-n 0``) over the model suite
(``cases/models/``, or ``--cases N`` of it) and prints the same per-framework
cost; ``--from-results FILE`` prints it from an earlier run's records.

Memory: every ``--mem-interval`` seconds (0.5) the process tree of each run is
read from ``/proc``. A *worker* is an xdist worker with the runner session and
server forked for it from the shared runner master; the master is reported on
its own (for ``-n 0`` and the floor: the whole tree). Reported per worker:

* peak PSS: the largest sum over the worker's processes of ``Pss`` from
  ``/proc/<pid>/smaps_rollup`` in one sample, read every ``--pss-every``-th
  sample (default 16: every 8 s). A read walks the target's page tables
  (~15 ms per paddle process) under its memory-map lock, and on two busy cores
  that slows the run measured: with PSS read every 2 s (and command lines read
  every sample) run c used 9% more CPU than b and b/c read 1.66-1.69 on the
  default sample; with no sampling 1.81, and with PSS every 8 s 1.80. PSS splits pages shared
  between the master and the forked processes instead of counting them twice, so
  the sum is the worker's real footprint; a spike between reads can be missed;
* sum of VmHWM: each process's own high-water RSS (``/proc/<pid>/status``, read
  every sample), summed over every process the worker ever had. Pages shared
  by fork count once per process, so this is an upper bound that misses nothing.

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path

from harness.bench.costs import (export_shares, framework_costs, median_costs, order_frameworks,
                                 print_framework_costs, print_suite_costs)
from harness.bench.sample import expand, matrix_depths, matrix_weights, sample_cases, shares
from harness.isolation.processes import RUNNER_ENV

HELP = "time the harness against a bare export loop on a weighted sample of the four frameworks' cases"

ROOT = Path(__file__).resolve().parents[2]



# -- process-tree memory sampling -------------------------------------------------------------------
def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids[ppid].append(int(d))
    return kids


def _tree(pid: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _kib(path: str, field: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds that ``pid`` has used so far (``/proc/<pid>/stat``)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def _runner_label(pid: int, known: dict[int, str]) -> str | None:
    """The frameworks a runner process serves (``"paddle"``, ``"tensorflow"``; a process of ``python -m
    harness.core.runner PLUGINS FRAMEWORKS FD`` or forked from one), or None for any other process.

    Reading a command line takes the target's memory-map lock, so the answer is kept in ``known``
    (``""`` for a process that is no runner) once the process has exec'd (its command line no
    longer says pytest, as its parent's does).
    """
    if pid in known:
        return known[pid] or None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return None
    argv = cmd.split(b"\0")
    if b"harness.core.runner" in argv:
        at = argv.index(b"harness.core.runner")
        try:
            label = "+".join(json.loads(argv[at + 2]))
        except (IndexError, ValueError, TypeError):
            label = "runner"
        known[pid] = label or "runner"
        return known[pid]
    if cmd and b"pytest" not in cmd:
        known[pid] = ""
    return None


def _is_runner(pid: int, known: dict[int, str]) -> bool:
    """Whether ``pid`` is a process of a runner master (see :func:`_runner_label`)."""
    return _runner_label(pid, known) is not None


def _xdist_workers(root: int, kids: dict[int, list[int]], known: dict[int, str]) -> dict[int, str]:
    """The xdist worker processes among ``root``'s children, named ``gw0``, ``gw1``, ... in start order.

    A worker sets ``PYTEST_XDIST_WORKER`` only once it runs, so /proc does not show it in its
    environment; every child of the controller that is not a runner master is a worker, and xdist
    starts them in the order of their names (pids grow).
    """
    workers = sorted(p for p in kids.get(root, []) if not _is_runner(p, known))
    return {p: f"gw{k}" for k, p in enumerate(workers)}


def _session_owner(pid: int) -> str | None:
    """The worker a runner session serves: its fd 1 is that worker's ``runner-<worker>-<framework>.log``."""
    try:
        target = os.readlink(f"/proc/{pid}/fd/1")
    except OSError:
        return None
    name = os.path.basename(target)
    if not (name.startswith("runner-") and name.endswith(".log")):
        return None
    return name[len("runner-"):-len(".log")].split("-", 1)[0]


class TreeSampler(threading.Thread):
    """Samples PSS and VmHWM per worker of the process tree under ``root`` until stopped.

    With ``split_workers`` (an xdist run) a worker is its pytest process plus the
    runner session (and server) serving it, which are children of the shared
    runner master, not of the worker; the master itself is counted on its own
    as ``master``. Otherwise the whole tree is one worker, ``all``.

    With ``by_framework`` it also keeps, per framework, the peak of the summed PSS
    of the runner processes that serve it (master, sessions and servers of every
    worker: :func:`_runner_label`), read at the same samples.
    """

    def __init__(self, root: int, split_workers: bool, interval: float = 0.5, pss_every: int = 16,
                 by_framework: bool = False):
        super().__init__(daemon=True)
        self.root, self.split, self.interval, self.pss_every = root, split_workers, interval, pss_every
        self.by_framework = by_framework
        self.runners: dict[int, str] = {}  # pid -> the frameworks of a runner process, "" for others
        self.peak_pss: dict[str, int] = defaultdict(int)  # worker name -> KiB
        self.framework_pss: dict[str, int] = defaultdict(int)  # runner's frameworks -> KiB
        self.hwm: dict[str, dict[int, int]] = defaultdict(dict)  # worker name -> pid -> KiB
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, CPU s last read)
        self.stop_event = threading.Event()

    def _groups(self, kids, workers: dict[int, str]) -> dict[str, list[int]]:
        if not self.split:
            return {"all": _tree(self.root, kids)}
        groups: dict[str, list[int]] = defaultdict(list)
        for child in kids.get(self.root, []):
            label = workers.get(child)
            if label is not None:
                groups[label] += _tree(child, kids)
                continue
            groups["master"].append(child)  # the shared runner master: its sessions go to their owners
            for session in kids.get(child, []):
                groups[_session_owner(session) or "master"] += _tree(session, kids)
        return groups

    def run(self) -> None:
        tick = 0
        while not self.stop_event.wait(self.interval):
            kids = _children_map()
            workers = _xdist_workers(self.root, kids, self.runners) if self.split else {}
            for p in _tree(self.root, kids):
                used = _cpu_s(p)
                if used is not None:  # the role is read anew: a child shows what it runs once it has exec'd
                    self.cpu[p] = ("main" if p == self.root else "workers" if p in workers else "runner", used)
            read_pss = tick % self.pss_every == 0
            pss_of: dict[int, int] = {}
            for w, pids in self._groups(kids, workers).items():
                pss = 0
                for p in pids:
                    if read_pss:
                        pss_of[p] = _kib(f"/proc/{p}/smaps_rollup", "Pss") or 0
                        pss += pss_of[p]
                    h = _kib(f"/proc/{p}/status", "VmHWM")
                    if h:
                        self.hwm[w][p] = max(h, self.hwm[w].get(p, 0))
                self.peak_pss[w] = max(self.peak_pss[w], pss)
            if read_pss and self.by_framework:
                per: dict[str, int] = defaultdict(int)
                for p, kib in pss_of.items():
                    label = _runner_label(p, self.runners)
                    if label:
                        per[label] += kib
                for label, kib in per.items():
                    self.framework_pss[label] = max(self.framework_pss[label], kib)
            tick += 1

    def cpu_by_role(self) -> dict[str, float]:
        """CPU s per role, as last read while each process lived: ``main`` (the process started:
        pytest, with xdist its controller, or the floor), ``workers`` (the xdist workers' pytest processes), ``runner``
        (the runner master, sessions and servers, where the cases run). A process's last
        ``interval`` before it exits is missed."""
        out: dict[str, float] = defaultdict(float)
        for role, used in self.cpu.values():
            out[role] += used
        return dict(out)

    def per_framework(self) -> dict[str, float]:
        """Framework -> peak PSS MiB of its runner processes (with ``by_framework``; else empty)."""
        return {fw: kib / 1024 for fw, kib in self.framework_pss.items() if kib}

    def per_worker(self) -> list[tuple[str, float | None, float]]:
        """[(name, peak PSS MiB or None if never read, sum VmHWM MiB)] per worker (and the master)."""
        return [(w, self.peak_pss[w] / 1024 if self.peak_pss.get(w) else None,
                 sum(self.hwm[w].values()) / 1024) for w in sorted(self.hwm) if self.hwm[w]]


class Progress(threading.Thread):
    """Polls a growing JSON-lines file every 20 ms: when its first and its last record appeared."""

    def __init__(self, path: Path, t0: float):
        super().__init__(daemon=True)
        self.path, self.t0 = path, t0
        self.count, self.first, self.last = 0, None, None
        self.stop_event = threading.Event()
        self._offset = 0

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return
        new = chunk.count(b"\n")
        if new:
            self._offset += chunk.rfind(b"\n") + 1
            now = time.perf_counter() - self.t0
            if self.first is None:
                self.first = now
            self.last, self.count = now, self.count + new

    def run(self) -> None:
        while not self.stop_event.wait(0.02):
            self.poll()


def _timed(cmd: list[str], split_workers: bool, log: Path, interval: float, results: Path | None = None,
           pss_every: int = 16, by_framework: bool = False
           ) -> tuple[float, "TreeSampler", int, float, "Progress | None"]:
    """Run ``cmd``: (wall s, its sampler (memory per worker and per framework, CPU per role), exit code,
    CPU s of its whole reaped process tree, arrival times of the records in ``results``)."""
    env = {**os.environ, **RUNNER_ENV}  # as the harness runs its cases
    t0 = time.perf_counter()
    progress = Progress(results, t0) if results is not None else None
    if progress is not None:
        progress.start()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = TreeSampler(proc.pid, split_workers, interval or 1e9, pss_every, by_framework)
        if interval:
            sampler.start()
        _, code, usage = os.wait4(proc.pid, 0)  # rusage covers every descendant that was waited for
        proc.returncode = rc = os.waitstatus_to_exitcode(code)
    wall = time.perf_counter() - t0
    sampler.stop_event.set()
    if interval:
        sampler.join()
    if progress is not None:
        progress.stop_event.set()
        progress.join()
        progress.poll()
    return wall, sampler, rc, usage.ru_utime + usage.ru_stime, progress


def _statuses(path: Path) -> Counter:
    if not path.exists():
        return Counter()
    return Counter(json.loads(ln)["status"] for ln in path.read_text().splitlines() if ln.strip())


@dataclass
class BenchRun:
    """One measured run of a, b or c."""

    wall: float  # s, process start to exit
    mem: list  # [(worker name, peak PSS MiB, sum VmHWM MiB)]
    what: str  # statuses and notes
    cpu: float  # s of CPU of the whole reaped process tree
    first: float | None  # s from start until the first case was done (imports, start-up, first case)
    steady: float | None  # cases/s from the first case done to the last
    #: framework/exporter -> (cases, mean export s, export share of the cases' wall time)
    exporters: dict | None = None
    #: CPU s per role (:meth:`TreeSampler.cpu_by_role`)
    roles: dict | None = None
    #: framework -> :class:`harness.bench.costs.FrameworkCost` of its cases in this run
    frameworks: dict | None = None

    @staticmethod
    def of(wall, sampler: "TreeSampler | None", what, cpu, progress) -> "BenchRun":
        first = steady = None
        if progress is not None and progress.first is not None:
            first = progress.first
            if progress.count > 1 and progress.last > progress.first:
                steady = (progress.count - 1) / (progress.last - progress.first)
        if sampler is None:  # not sampled
            return BenchRun(wall, [], what, cpu, first, steady)
        return BenchRun(wall, sampler.per_worker(), what, cpu, first, steady, roles=sampler.cpu_by_role())


def _with_pss(costs: dict, sampler: "TreeSampler | None") -> dict:
    """``costs`` with each framework's peak PSS from ``sampler`` (its runner processes, summed)."""
    peaks = sampler.per_framework() if sampler is not None else {}
    for fw, cost in costs.items():
        cost.peak_pss_mib = peaks.get(fw)
    return costs


def _round(args, harness: list[str], work: Path, cases: list) -> dict[str, BenchRun]:
    """One run each of a, p, b, c (as selected)."""
    runs, n = {}, len(cases)
    if "a" in args.only:
        runs["a"] = _floor_run(args, cases, work, "a", parts=1)
    if "p" in args.only:
        runs["p"] = _floor_run(args, cases, work, "p", parts=args.workers)
    for key, workers in (("b", 0), ("c", args.workers)):
        if key not in args.only:
            continue
        res = work / f"{key}.jsonl"
        res.unlink(missing_ok=True)
        cmd = harness + ["-n", str(workers), "--results", str(res)]
        if args.dist and workers:
            cmd += ["--dist", args.dist]
        wall, sampler, rc, cpu, prog = _timed(cmd, workers > 0, work / f"{key}.log", args.mem_interval, res,
                                              args.pss_every, by_framework=True)
        st = _statuses(res)
        note = "" if sum(st.values()) == n else f" ONLY {sum(st.values())} RECORDS (rc {rc}, see {key}.log)"
        runs[key] = BenchRun.of(wall, sampler, f"{dict(st)}{note}", cpu, prog)
        runs[key].exporters = export_shares(res)
        runs[key].frameworks = _with_pss(framework_costs(res), sampler if args.mem_interval else None)
    return runs


def floor_groups(cases: list) -> list[tuple[str, str, dict, list]]:
    """The floor's processes by interpreter: [(environment name, its python, process environment, cases)].

    Paddle and torch share the main environment (``main``); TensorFlow and
    OneFlow run in their own (:mod:`harness.isolation.environments`), started
    as the harness starts their runners. Groups in the reports' framework
    order, cases in matrix order within a group.
    """
    from harness.isolation import environments

    groups: OrderedDict[str, tuple[str, dict, set]] = OrderedDict()
    for fw in order_frameworks({c.framework for c in cases}):
        env = environments.environment_of(fw)
        name = env.name if env is not None else "main"
        if name not in groups:
            groups[name] = (environments.interpreter(fw),
                            environments.runner_environ(fw, {**os.environ, **RUNNER_ENV}), set())
        groups[name][2].add(fw)
    return [(name, py, env, [c for c in cases if c.framework in fws]) for name, (py, env, fws) in groups.items()]


def _floor_cmd(py: str, cases_file: Path, done: Path, plugins: tuple[str, ...]) -> list[str]:
    """The command of one bare-loop process over the cases in ``cases_file`` (a line per case into ``done``)."""
    return [py, "-m", "harness.bench.floor", str(cases_file), str(done), json.dumps(list(plugins))]


def _floor_counts(log: Path, rc: int) -> dict:
    """The counts a bare-loop process printed last, or what it died of."""
    lines = log.read_text().strip().splitlines()
    if rc == 0 and lines:
        try:
            return json.loads(lines[-1])["counts"]
        except (ValueError, KeyError, TypeError):
            pass
    return {"died": rc, "at": lines[-1] if lines else ""}


def split_by_model(cases: list, parts: int) -> list[list[str]]:
    """The ids of ``cases`` dealt into ``parts`` lists, a whole model at a time (the cases of one
    ``model_key`` share its build), each model to the list with the fewest cases so far; order kept."""
    models: OrderedDict[str, list[str]] = OrderedDict()
    for c in cases:
        models.setdefault(c.model_key, []).append(c.id)
    out: list[list[str]] = [[] for _ in range(max(1, parts))]
    for group in models.values():
        min(out, key=len).extend(group)
    return out


def _floor_run(args, cases: list, work: Path, key: str, parts: int) -> "BenchRun":
    """Run a (``parts`` 1) or p: the bare loop, one environment after another (:func:`floor_groups`);
    within one, its cases dealt by model into ``parts`` processes run at once. Run a's processes are
    sampled for memory and CPU (one ``all`` per environment); run p's are not."""
    done = work / f"{key}.done"
    done.unlink(missing_ok=True)
    t0 = time.perf_counter()
    progress = Progress(done, t0)
    progress.start()
    cpu, counts, died, mem, roles = 0.0, Counter(), [], [], defaultdict(float)
    sample = parts == 1 and args.mem_interval > 0
    for name, py, env, group in floor_groups(cases):
        by_id = {c.id: c for c in group}
        procs = []
        for k, part in enumerate(split_by_model(group, parts)):
            if not part:
                continue
            label = name if parts == 1 else f"{name}{k}"
            cases_file, log = work / f"{key}-{label}.cases", work / f"{key}-{label}.log"
            cases_file.write_text("".join(json.dumps(by_id[i].to_dict()) + "\n" for i in part))
            with open(log, "w") as out:
                proc = subprocess.Popen(_floor_cmd(py, cases_file, done, args.plugins), cwd=ROOT, stdout=out,
                                        stderr=subprocess.STDOUT, env=env)
            sampler = TreeSampler(proc.pid, False, args.mem_interval, args.pss_every) if sample else None
            if sampler is not None:
                sampler.start()
            procs.append((proc, log, label, sampler))
        for proc, log, label, sampler in procs:
            _, code, usage = os.wait4(proc.pid, 0)
            cpu += usage.ru_utime + usage.ru_stime
            if sampler is not None:
                sampler.stop_event.set()
                sampler.join()
                mem += [(label, p, h) for _, p, h in sampler.per_worker()]
                for role, used in sampler.cpu_by_role().items():
                    roles[role] += used
            got = _floor_counts(log, os.waitstatus_to_exitcode(code))
            if "died" in got:
                died.append({label: got})
            else:
                counts.update(got)
    wall = time.perf_counter() - t0
    progress.stop_event.set()
    progress.join()
    progress.poll()
    run = BenchRun.of(wall, None, f"{dict(counts)}" + (f" DIED: {died}" if died else ""), cpu, progress)
    run.mem, run.roles = mem, dict(roles) if sample else None
    run.exporters = export_shares(done)
    run.frameworks = framework_costs(done)
    return run


def _print_exporters(runs: dict[str, "BenchRun"]) -> None:
    rows = [(key, exp, figs) for key, r in runs.items() for exp, figs in (r.exporters or {}).items()]
    if not rows:
        return
    print(f"  {'run':<6}{'exporter':<20}{'cases':>7}{'mean export s':>15}{'share of case wall':>20}")
    for key, exp, (n, mean, share) in rows:
        print(f"  {key:<6}{exp:<20}{n:>7}{mean:>15.3f}{share:>19.0%}")


def _print_round(runs: dict[str, BenchRun], n: int, workers: int) -> None:
    label = {"a": "a floor (1 per env)", "b": "b harness -n 0", "c": f"c harness -n {workers}",
             "p": f"p floor ({workers} processes)"}
    print(f"  {'run':<22}{'wall s':>8}{'cases/s':>9}{'CPU s':>7}{'start s':>9}{'steady/s':>10}"
          f"   peak PSS / sum VmHWM (MiB)   statuses")
    for key, r in runs.items():
        m = "  ".join(f"{w} {_f(p, 0)}/{h:.0f}" for w, p, h in r.mem) or "-"
        print(f"  {label[key]:<22}{r.wall:>8.1f}{n / r.wall:>9.2f}{r.cpu:>7.1f}{_f(r.first, 1):>9}"
              f"{_f(r.steady, 1):>10}   {m:<28}  {r.what}")
    _print_ratios(runs)
    _print_exporters(runs)
    print_framework_costs([(k, r.frameworks) for k, r in runs.items() if r.frameworks])
    _print_roles(runs, n)
    parts = []
    for key, r in runs.items():
        workers = [(w, p) for w, p, _ in r.mem if w != "master" and p is not None]
        if not workers:
            continue
        w, peak = max(workers, key=lambda t: t[1])
        master = next((p for w2, p, _ in r.mem if w2 == "master"), 0) or 0
        parts.append(f"{key}: {peak:.0f} MiB ({w})" + (
            f", {peak + master:.0f} MiB with the whole shared master counted in" if master else ""))
    if parts:
        print("  largest peak PSS of a worker: " + "; ".join(parts) + " (target <= 1536)")


def _print_roles(runs: dict[str, BenchRun], n: int) -> None:
    """CPU ms per case of each role, where the extra CPU of a parallel run goes."""
    parts = []
    for key, r in runs.items():
        if r.roles:
            roles = ", ".join(f"{role} {sec * 1000 / n:.1f}" for role, sec in sorted(r.roles.items()))
            parts.append(f"{key}: {roles} (all {r.cpu * 1000 / n:.1f})")
    if parts:
        print("  CPU ms per case by process role: " + "; ".join(parts))


def _f(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


#: the wall-time ratios of a round: name -> (numerator run, denominator run)
RATIOS = {"b/a": ("b", "a"), "b/c": ("b", "c"), "a/p": ("a", "p")}


def ratios(runs: dict[str, BenchRun]) -> dict[str, float]:
    """The wall-time ratios (:data:`RATIOS`) that the runs of one round allow."""
    return {name: runs[num].wall / runs[den].wall for name, (num, den) in RATIOS.items()
            if num in runs and den in runs and runs[den].wall}


def spread(rounds: list[dict[str, BenchRun]]) -> dict[str, tuple[list[float], float, float]]:
    """Per ratio over the rounds: (each round's value, median, max - min)."""
    out = {}
    for name in RATIOS:
        vals = [r[name] for r in map(ratios, rounds) if name in r]
        if vals:
            out[name] = (vals, statistics.median(vals), max(vals) - min(vals))
    return out


def _print_ratios(runs: dict[str, BenchRun]) -> None:
    a, b, c, p = runs.get("a"), runs.get("b"), runs.get("c"), runs.get("p")
    if a and b:
        print(f"  overhead b/a = {b.wall / a.wall:.3f} wall (target <= 1.15), {b.cpu / a.cpu:.3f} CPU"
              + (f", {a.steady / b.steady:.3f} steady (per case, after the first)" if a.steady and b.steady
                 else ""))
    if b and c:
        print(f"  speed-up b/c = {b.wall / c.wall:.2f} wall (target >= 1.8 on {os.cpu_count()} cores)"
              + (f", {c.steady / b.steady:.2f} steady" if b.steady and c.steady else "")
              + (f"; start-up (until the first case is done) b {b.first:.1f} s, c {c.first:.1f} s"
                 if b.first is not None and c.first is not None else ""))
    if a and p:
        print(f"  the floor's own speed-up a/p = {a.wall / p.wall:.2f} wall"
              + (f", {p.steady / a.steady:.2f} steady" if a.steady and p.steady else "")
              + f", CPU p/a = {p.cpu / a.cpu:.3f}: the most b/c can reach on this machine with this sample")


#: the default sample size of the default suite: what a --repeat 3 (probe included) of the four frameworks
#: fits in 15 min on 2 cores (docs/benchmark.md); each run pays four frameworks' imports
DEFAULT_CASES = 1200


class _Parser(argparse.ArgumentParser):
    """Argument errors are one line naming the option, exit 4 (the harness's code for bad input)."""

    def error(self, message: str):
        self.exit(4, f"{self.prog}: error: {message}\n")


def _parser() -> _Parser:
    ap = _Parser(prog="python -m harness bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=("default", "models"), default="default",
                    help="default: time the harness against the bare loop on a sample of the default matrix; "
                         "models: run the harness (-n 0) over the model suite (cases/models/, or --cases N "
                         "of it) and print each framework's cost per case and peak memory")
    ap.add_argument("--cases", type=int, default=None,
                    help=f"sample size (default {DEFAULT_CASES} for the default suite, sized for a --repeat 3 "
                         "in 15 min on 2 cores; the whole suite for --suite models); 0: every candidate. The sample "
                         "is weighted like the suite's default run, per framework and exporter. Start-up "
                         "(imports, warm-up) is serial, so a small sample measures start-up more than "
                         "throughput: the 'start s' and 'steady/s' columns show both parts")
    ap.add_argument("--frameworks", default="paddle,torch,tensorflow,oneflow",
                    help="frameworks the sample is drawn from (default: all four, as the default run; "
                         "TensorFlow and OneFlow run in their own environments, floor included)")
    ap.add_argument("--exporters", default=None,
                    help="exporters the sample is drawn from (default: all; with --frameworks torch "
                         "alone: dynamo, which times the dynamo path alone). Every run prints, per "
                         "exporter, the mean export time and its share of the cases' wall time")
    ap.add_argument("--dtypes", default=None,
                    help="dtypes the sample is drawn from (default float32 for the default suite, the sample "
                         "the targets were set on, and every dtype for --suite models; 'all' for every dtype)")
    ap.add_argument("--workers", type=int, default=2, help="xdist workers for run c (default 2)")
    ap.add_argument("--dist", default=None, help="xdist --dist mode for run c (default: the harness's)")
    ap.add_argument("--cases-dir", default=str(ROOT / "cases"))
    ap.add_argument("--min-opset", type=int, default=13,
                    help="lowest opset in the sample (default 13)")
    ap.add_argument("--max-opset", type=int, default=21,
                    help="highest opset in the sample (default 21: paddle2onnx 2.1 aborts the process "
                         "above it, and the floor has no isolation)")
    ap.add_argument("--keep", default=None, help="folder for the id list, logs and results (default: temp)")
    ap.add_argument("--only", default="abcp",
                    help="which runs: any of a, b, c, p (default abcp; p: the floor in --workers processes "
                         "at once, whose a/p is the speed-up the machine itself allows)")
    ap.add_argument("--mem-interval", type=float, default=0.5,
                    help="seconds between memory samples; 0: no sampling (default 0.5)")
    ap.add_argument("--pss-every", type=int, default=16, metavar="K",
                    help="read PSS (smaps_rollup: a page-table walk under the target's memory-map lock) every "
                         "K-th memory sample only (default 16: every 8 s); more often slows the runs measured")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of a, b, c in turn (a shared machine is noisy; medians and each round's "
                         "ratios are printed)")
    ap.add_argument("--exclude-from", default=None, metavar="RESULTS",
                    help="a results file of an earlier --opsets full run: its cases that crashed, timed "
                         "out or called sys.exit are left out of the sample (the floor has no isolation). "
                         "Without it, a probe run of the harness over the candidates finds them first")
    ap.add_argument("--from-results", default=None, metavar="RESULTS",
                    help="run nothing: print each framework's cost per case from the records of an earlier "
                         "run (e.g. a nightly's --suite models results); no peak memory, records carry none")
    ap.add_argument("--runtimes", default="", metavar="LIST",
                    help="also time these runtimes beside ort (e.g. openvino,reference): one more harness run "
                         "(-n 0) with --runtimes ort,LIST over the sample prints each runtime's cost per case; "
                         "its cases reuse ort's exported model, so that cost is the marginal cost of the runtime")
    return ap


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for t in (text or "").split(",") if t.strip()))


def check_args(ap: _Parser, args) -> None:
    """Bad option values: ``ap.error`` (one line naming the option, exit 4) before anything runs."""
    from harness.core.registry import framework_names
    from harness.isolation import environments

    for option, value, least in (("--cases", args.cases, 0), ("--repeat", args.repeat, 1),
                                 ("--workers", args.workers, 1), ("--pss-every", args.pss_every, 1)):
        if value is not None and value < least:
            ap.error(f"{option} {value}: give a whole number, {least} or more")
    if not args.mem_interval >= 0:
        ap.error(f"--mem-interval {args.mem_interval}: give a number of seconds, 0 (no sampling) or more")
    if args.min_opset > args.max_opset:
        ap.error(f"--min-opset {args.min_opset} is above --max-opset {args.max_opset}")
    if not args.only or set(args.only) - set("abcp"):
        ap.error(f"--only {args.only!r}: give some of the letters a, b, c, p")
    for option, path in (("--exclude-from", args.exclude_from), ("--from-results", args.from_results)):
        if path is not None and not Path(path).is_file():
            ap.error(f"{option} {path}: no such file")
    cases_dir = Path(args.cases_dir)
    if not (cases_dir / "tolerances.yaml").is_file():
        ap.error(f"--cases-dir {args.cases_dir}: not a cases folder (no tolerances.yaml)")
    if args.from_results:
        return
    frameworks = _names(args.frameworks)
    known = framework_names()
    unknown = [fw for fw in frameworks if fw not in known]
    if not frameworks or unknown:
        ap.error(f"--frameworks {args.frameworks!r}: unknown {', '.join(unknown) or 'empty list'} "
                 f"(known: {', '.join(known)})")
    for fw in frameworks:
        why = environments.unavailable(fw)
        if why:
            ap.error(f"--frameworks: {why}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = _parser()
    args = ap.parse_args(argv)
    check_args(ap, args)
    if args.from_results:
        costs = framework_costs(Path(args.from_results))
        print(f"{args.from_results}: {sum(c.cases for c in costs.values())} timed records")
        print_suite_costs(costs)
        return 0
    work = Path(args.keep or tempfile.mkdtemp(prefix="harness-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    frameworks = _names(args.frameworks)
    exporters = _exporters(args.exporters, frameworks)
    models = args.suite == "models"
    dtypes_given = args.dtypes or ("all" if models else "float32")
    dtypes = () if dtypes_given == "all" else _names(dtypes_given)
    cases_dir = Path(args.cases_dir)
    suite_dir = cases_dir / "models" if models else cases_dir
    harness = [py, "-m", "pytest", "conformance", "--cases-dir", args.cases_dir, "--devices", "cpu",
               "--no-report", "--repro-dir", "", "-q", "-p", "no:randomly"]
    harness += ["--suite", "models"] if models else ["--opsets", "full"]
    harness += [a for fw in frameworks for a in ("--framework", fw)]
    harness += [a for ex in exporters for a in ("--exporter", ex)]
    weights = matrix_weights(suite_dir, cases_dir / "tolerances.yaml", frameworks, exporters)
    depths = matrix_depths(suite_dir, cases_dir / "tolerances.yaml", frameworks, exporters)
    n_wanted = args.cases if args.cases is not None else (0 if models else DEFAULT_CASES)
    args.plugins = expand(str(suite_dir), str(cases_dir / "tolerances.yaml"), "declared" if models else "full",
                          frameworks, exporters).plugins

    def draw(exclude: frozenset[str], n: int = n_wanted) -> list:
        return sample_cases(cases_dir, n or 10**9, args.min_opset, args.max_opset, exclude,
                            frameworks, exporters, dtypes, weights, suite_dir, "declared" if models else "full",
                            depths)

    if models:
        cases = draw(frozenset())
    else:
        cases = draw(frozenset(read_ids_to_exclude(args.exclude_from, models=True))) if args.exclude_from \
            else _probed_sample(draw, n_wanted, harness, work, args.workers)
    if not cases:
        ap.error(f"no case to run: --frameworks {args.frameworks!r}, --exporters {args.exporters!r}, "
                 f"--dtypes {dtypes_given!r} and --min-opset/--max-opset {args.min_opset}~{args.max_opset} "
                 f"leave none in {suite_dir}")
    ids = work / "case-ids.txt"
    ids.write_text("\n".join(c.id for c in cases) + "\n")
    _print_sample(cases, weights, ids)
    harness = harness + [f"--case-ids={ids}"]
    if models:
        return _suite_costs(args, harness, work, cases)
    rounds = []
    for r in range(args.repeat):
        print(f"round {r + 1} of {args.repeat}: running {', '.join(args.only)} ...", flush=True)
        runs = _round(args, harness, work, cases)
        rounds.append(runs)
        print(f"round {r + 1} of {args.repeat}, load average {os.getloadavg()[0]:.1f}:")
        _print_round(runs, len(cases), args.workers)
    if args.repeat > 1:
        _print_medians(rounds, len(cases))
    added = [r.strip() for r in args.runtimes.split(",") if r.strip() and r.strip() != "ort"]
    if added:
        _runtime_costs(harness[:-1], cases, added, work, rounds[-1].get("b"))
    return 0


def _print_sample(cases: list, weights: dict, ids: Path) -> None:
    """The sample's size and mix, beside the shares of the run it is weighted like."""
    n = len(cases)
    kinds = Counter((c.framework, c.exporter) for c in cases)
    want = shares(weights)
    got = shares(kinds)
    print(f"sample: {n} cases, {len({c.model_key for c in cases})} models, "
          f"opsets {min(c.opset for c in cases)}~{max(c.opset for c in cases)} "
          f"({sum(c.opset >= 13 for c in cases)} at >= 13); ids in {ids}")
    print("  share of the cases, sample (default run of the suite): " + "; ".join(
        f"{fw} {got.get(fw, 0):.1%} ({want.get(fw, 0):.1%}: "
        + ", ".join(f"{ex} {kinds[(f, ex)]} = {got.get(f'{fw}/{ex}', 0):.1%} "
                    f"({want.get(f'{fw}/{ex}', 0):.1%})" for f, ex in sorted(kinds) if f == fw) + ")"
        for fw in order_frameworks({f for f, _ in kinds})))


def _print_medians(rounds: list[dict[str, BenchRun]], n: int) -> None:
    """The medians over the rounds, and each ratio's value per round with its spread."""
    def med(key, field):
        vals = [getattr(rd[key], field) for rd in rounds if getattr(rd[key], field) is not None]
        return statistics.median(vals) if vals else None

    print(f"median of {len(rounds)} rounds:")
    _print_ratios({k: BenchRun(med(k, "wall"), [], "", med(k, "cpu"), med(k, "first"), med(k, "steady"))
                   for k in rounds[0]})
    for name, (vals, mid, width) in spread(rounds).items():
        print(f"  {name} per round: {', '.join(f'{v:.2f}' for v in vals)} (median {mid:.2f}, spread {width:.2f})")
    _print_exporters({k: BenchRun(0, [], "", 0, None, None, _median_shares([rd[k].exporters for rd in rounds]))
                      for k in rounds[0]})
    print_framework_costs([(k, median_costs([rd[k].frameworks for rd in rounds if rd[k].frameworks]))
                           for k in rounds[0] if any(rd[k].frameworks for rd in rounds)])
    _print_roles({k: BenchRun(0, [], "", med(k, "cpu"), None, None, roles={
        role: statistics.median(rd[k].roles.get(role, 0.0) for rd in rounds) for role in rounds[0][k].roles})
        for k in rounds[0] if rounds[0][k].roles}, n)


def _suite_costs(args, harness: list[str], work: Path, cases: list) -> int:
    """--suite models: one harness run (-n 0) over the sample; each framework's cost and peak PSS."""
    res = work / "models.jsonl"
    res.unlink(missing_ok=True)
    print(f"running the harness (-n 0) over {len(cases)} model-suite cases ...", flush=True)
    wall, sampler, rc, cpu, _ = _timed(harness + ["-n", "0", "--results", str(res)], False, work / "models.log",
                                       args.mem_interval, res, args.pss_every, by_framework=True)
    st = _statuses(res)
    print(f"  {sum(st.values())} records in {wall:.1f} s wall, {cpu:.1f} s CPU (rc {rc}, log {work / 'models.log'}):"
          f" {dict(st)}; load average {os.getloadavg()[0]:.1f}")
    print_suite_costs(_with_pss(framework_costs(res), sampler if args.mem_interval else None), wall)
    whole = [p for w, p, _ in sampler.per_worker() if p is not None] if args.mem_interval else []
    if whole:
        print(f"  peak PSS of the whole run: {max(whole):.0f} MiB")
    return 0


def read_ids_to_exclude(path, models: bool = False) -> set[str]:
    """The ids of a results file's cases that would kill the bare loop: crashed, timed out, or called
    sys.exit; with ``models``, their model keys (:attr:`Case.model_key`) as well."""
    from harness.core.case import model_key
    from harness.report.results import read_results

    out = set()
    for r in read_results(str(path), []):
        if r["status"] in ("crash", "timeout") or "sys.exit" in (r.get("message") or ""):
            out.add(r["id"])
            if models:
                out.add(model_key(r["framework"], r["kernel"], r.get("variant", ""), r.get("dtype", "")))
    return out


#: how many more cases than the sample the first probe run takes: a crashing model's replacement is then
#: mostly probed already, and a second probe run (another start-up of four frameworks) is rarely needed
PROBE_MARGIN = 0.25


def _probed_sample(draw, n: int, harness: list[str], work: Path, workers: int) -> list:
    """Draw the sample of ``n`` cases, leaving out every model a probe run of the harness saw crash,
    hang or exit in some case.

    The first probe runs the harness over a draw of ``n`` plus :data:`PROBE_MARGIN`; a model
    with a case left out goes whole (its other opsets mostly crash alike), and the
    sample is drawn again without it. Replacements the first probe did not cover are
    probed in turn, until the sample is all probed (usually one probe run).
    """
    known = work / "probe.jsonl"
    known.unlink(missing_ok=True)
    seen: set[str] = set()
    exclude: frozenset[str] = frozenset()
    want = n + max(1, int(n * PROBE_MARGIN)) if n else n
    while True:
        cases = draw(exclude, want)
        fresh = [c for c in cases if c.id not in seen]
        if not fresh:
            return draw(exclude, n) if want != n else cases
        cand = work / "candidates.txt"
        cand.write_text("\n".join(c.id for c in fresh) + "\n")
        print(f"probe: running the harness (-n {workers}) over {len(fresh)} drawn cases to find those that "
              f"crash or hang (the bare loop has no isolation); --exclude-from skips this", flush=True)
        _timed(harness + [f"--case-ids={cand}", "-n", str(workers), "--results", str(known)], False,
               work / "probe.log", 0)
        seen.update(c.id for c in fresh)
        exclude = frozenset(read_ids_to_exclude(known, models=True))
        if exclude:
            print(f"probe: {len(exclude & seen)} cases crashed, hung or exited so far; the sample "
                  f"leaves out their models whole", flush=True)
        want = n  # from now on only the sample itself: its cases not yet probed


def _exporters(given: str | None, frameworks: tuple[str, ...]) -> tuple[str, ...]:
    """The ``--exporters`` of a bench run: as given, else dynamo for a torch-only run, else all."""
    if given is not None:
        return tuple(e.strip() for e in given.split(",") if e.strip())
    return ("dynamo",) if frameworks == ("torch",) else ()


def _median_shares(per_round: list) -> dict:
    """Per exporter, the median over rounds of (cases, mean export s, share)."""
    keys = sorted({k for figs in per_round if figs for k in figs})
    return {k: tuple(statistics.median(f[k][i] for f in per_round if f and k in f) for i in range(3))
            for k in keys}


def _runtime_costs(harness: list[str], cases: list, added: list[str], work: Path, b: BenchRun | None) -> None:
    """Run the sample on ort plus ``added`` runtimes (-n 0) and print what each costs per case.

    Per runtime: the mean and median of the cases' ``wall_s`` (the runner's
    time for the case, export reuse included), ``run_s`` (session + run) and
    ``prepare_s`` (the runtime's own conversion or compilation, part of
    ``run_s``, for the runtimes that report it); for ort also ``export_s``, paid
    once and reused by the added runtimes; and how often a runtime server had to
    import its library (``runtime_load_s``: once per case server, after a crash again).
    """
    import dataclasses

    from harness.report.results import read_results

    runtimes = ["ort"] + added
    ids = work / "case-ids-runtimes.txt"
    ids.write_text("".join(dataclasses.replace(c, runtime=r).id + "\n" for c in cases for r in runtimes))
    res = work / "runtimes.jsonl"
    res.unlink(missing_ok=True)
    cmd = harness + [f"--case-ids={ids}", "--runtimes", ",".join(runtimes), "-n", "0", "--results", str(res)]
    print(f"runtimes: running the sample on {', '.join(runtimes)} (-n 0) ...", flush=True)
    wall, _, rc, _, _ = _timed(cmd, False, work / "runtimes.log", 0)
    recs = [r for r in read_results(str(res), []) if r.get("status") != "skipped"]

    def ms(values) -> str:
        values = [v * 1000 for v in values if isinstance(v, (int, float))]
        return f"{statistics.mean(values):8.1f} {statistics.median(values):8.1f}" if values else f"{'-':>8} {'-':>8}"

    print(f"  {len(recs)} records in {wall:.1f} s (rc {rc}); ms per case, mean and median:")
    print(f"  {'runtime':<12}{'cases':>6}  {'wall_s mean/median':>18}  {'run_s mean/median':>18}  "
          f"{'prepare_s mean/median':>21}  {'export_s mean/median':>20}  reused export  library loads")
    for r in runtimes:
        mine = [x for x in recs if x.get("runtime", "ort") == r]
        reused = sum(bool(x.get("export_reused")) for x in mine)
        loads = [x["runtime_load_s"] for x in mine if isinstance(x.get("runtime_load_s"), (int, float))]
        print(f"  {r:<12}{len(mine):>6}  {ms(x.get('wall_s') for x in mine):>18}  "
              f"{ms(x.get('run_s') for x in mine):>18}  {ms(x.get('prepare_s') for x in mine):>21}  "
              f"{ms(x.get('export_s') for x in mine if not x.get('export_reused')):>20}  {reused}/{len(mine)}"
              + (f"  {len(loads)} x {statistics.mean(loads):.2f} s" if loads else ""))
    if b is not None and cases:
        print(f"  whole run: {wall:.1f} s vs {b.wall:.1f} s for ort alone (run b): "
              f"{(wall - b.wall) / len(cases) / len(added) * 1000:.1f} ms per added runtime per case")


if __name__ == "__main__":
    sys.exit(main())
