"""The harness's command-line options and the frozen :class:`HarnessConfig` made from them.

Configuration flows one way: options -> one :class:`HarnessConfig` made in
``pytest_configure`` (kept in ``config.stash[CONFIG]``) -> the plugin objects.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.core import devices
from . import sharding
from harness.core.case import DEFAULT_PASS, DEFAULT_RUNTIME
from harness.spec.matrix import Scope, matrix_files

ROOT = Path(__file__).resolve().parent.parent.parent

#: --suite values: the default matrices of ``cases/``, or the whole models of ``cases/models/``
SUITES = ("default", "models")
#: per-case limit by suite when --case-timeout is not given (a whole model's dynamo export alone
#: takes tens of seconds on a loaded machine)
SUITE_TIMEOUTS = {"default": 120.0, "models": 900.0}


@dataclass(frozen=True)
class HarnessConfig:
    """Everything the run needs, decided once from the command line."""

    cases_dir: Path
    matrices: tuple[Path, ...]
    tolerances: Path
    expected: Path
    scope: Scope
    timeout: float
    results: Path
    report: bool
    reports_dir: Path
    extra_plugins: tuple[str, ...] = field(default=())
    #: failing cases leave a repro bundle under this folder (None: no bundles)
    repro_dir: Path | None = None
    #: property mode (``--explore``) and its settings
    explore: bool = False
    max_examples: int | None = None
    shrink_budget: float | None = None
    hypothesis_profile: str = "ci"
    #: mix NaN, +-Inf, -0.0, huge and tiny values into float inputs
    special_values: bool = False
    #: devices present on this machine (cpu, cuda:N) and the ORT providers offered
    present: tuple[str, ...] = ("cpu",)
    ort_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    #: (K, N) with --shard-id K|auto --num-shards N, else None
    shard: tuple[int, int] | None = None
    #: model key -> seconds from --shard-durations (None: crc32 shards)
    shard_costs: dict | None = field(default=None, hash=False, compare=False)
    #: the case ids of --case-ids FILE, else None
    case_ids: frozenset[str] | None = None
    #: --reports-dir was given: reports go there even from a partial run
    reports_dir_given: bool = False
    #: seconds a runner may take to import and warm up before its first case (not counted in a case's)
    startup_timeout: float = 300.0
    #: --runtimes and --passes: every case runs on each runtime after each post-export pass
    runtimes: tuple[str, ...] = (DEFAULT_RUNTIME,)
    post_passes: tuple[str, ...] = (DEFAULT_PASS,)
    #: run each case item with one report (see :mod:`.protocol`) instead of pytest's own protocol
    light_protocol: bool = True
    #: --allow-any-call: a matrix's ``call:`` may name any function, not only its framework's
    allow_any_call: bool = False
    #: --require-frameworks: "all", or the frameworks whose whole matrix may not be skipped for a
    #: missing environment or a missing install (empty: none required)
    require_frameworks: tuple[str, ...] = ()
    #: draw graph.svg into each repro bundle (see :mod:`.pictures`), waiting at most this long after the last case
    pictures: bool = True
    pictures_wait: float = 30.0


def _seconds(text: str, zero_ok: bool) -> float:
    """``text`` as a finite number of seconds above 0 (or 0 too, with ``zero_ok``); else an argparse error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        need = "a finite number of seconds, 0 or more" if zero_ok else "a positive, finite number of seconds"
        raise argparse.ArgumentTypeError(f"{text!r}: give {need}")
    return value


def positive_seconds(text: str) -> float:
    """An option value in seconds: a positive, finite number (argparse ``type``)."""
    return _seconds(text, zero_ok=False)


def read_case_ids(path: str) -> frozenset[str]:
    """The ids of a ``--case-ids`` file: one per line; blank lines and ``#`` comments (even indented) skipped.

    A UTF-8 byte-order mark (as some Windows editors write) is not part of the first id.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise pytest.UsageError(f"--case-ids {path}: cannot read ({why})") from None
    ids = frozenset(s for s in (ln.strip() for ln in lines) if s and not s.startswith("#"))
    if not ids:
        raise pytest.UsageError(f"--case-ids {path}: the file lists no case id (one per line; # for comments)")
    return ids


def seconds_or_zero(text: str) -> float:
    """An option value in seconds that may be 0 (none): a finite number, 0 or more (argparse ``type``)."""
    return _seconds(text, zero_ok=True)


def positive_count(text: str) -> int:
    """An option value that counts something: a whole number, 1 or more (argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 1 or more")
    return value


CONFIG = pytest.StashKey[HarnessConfig]()

#: Exit code of a run that could not measure what it was asked to (a required framework's
#: environment or install is missing, a framework's import is broken, a harness fault such as a
#: full temp folder): distinct from a conformance failure (1) and a usage error (4).
EXIT_NOT_MEASURED = 6


def require_frameworks_default(environ) -> str:
    """``all`` on a CI machine (``CI=true``, as GitHub Actions and most CI systems set), else ``none``."""
    return "all" if str(environ.get("CI", "")).lower() in ("true", "1", "yes") else "none"


def add_options(parser) -> None:
    """Declare the harness's command-line options."""
    g = parser.getgroup("onnx-conformance", "ONNX export conformance harness")
    g.addoption("--cases-dir", default=str(ROOT / "cases"),
                help="folder with the YAML matrices, tolerances.yaml and expected_failures/<framework>.yaml. "
                     "Matrices, expectations and --cases-dir are trusted code: a matrix's plugins: are "
                     "imported and its call: functions called (call: only within the framework's own "
                     "packages and harness.builders, unless --allow-any-call)")
    g.addoption("--allow-any-call", action="store_true",
                help="let a matrix's call: name any importable function (default: only the framework's "
                     "own packages, e.g. torch.*, and harness.builders.*)")
    g.addoption("--matrix", action="append", default=[],
                help="run only this matrix file (repeatable); default: every matrix of the --suite")
    g.addoption("--suite", choices=SUITES, default="default",
                help="default: the matrices of --cases-dir (kernels and small networks); models: the "
                     "whole-model matrices of <cases-dir>/models/ (real architectures, minutes per "
                     "model; the nightly runs it; --case-timeout defaults to 900 there)")
    g.addoption("--framework", action="append", default=[],
                help="run only this framework (repeatable), e.g. paddle or torch")
    g.addoption("--exporter", action="append", default=[],
                help="run only this exporter path (repeatable), e.g. dygraph, static")
    g.addoption("--opsets", choices=("declared", "full"), default="declared",
                help="declared: the opsets the support table claims (default); "
                     "full: every opset from 7 to the highest onnx/onnxruntime support "
                     "(failures outside the claimed range are reported as xfail)")
    g.addoption("--forms", choices=("fixed", "derived"), default="fixed",
                help="fixed: the variants written in the matrices (default); derived: plus the generated "
                     "variants of cases/derived/ (pairwise attribute combinations, 0-d/size-1/rank-changed "
                     "inputs, tensor/list/negative argument forms; ids dv_*; python -m harness derive)")
    g.addoption("--smoke", action="store_true",
                help="run only the smoke slice: entries marked smoke, lowest and highest opset")
    g.addoption("--case-timeout", type=positive_seconds, default=None,
                help="seconds one case may take before it is recorded as 'timeout' (default 120, "
                     "900 with --suite models); "
                     "a runner's start-up (imports, warm-up) is not counted")
    g.addoption("--startup-timeout", type=positive_seconds, default=300.0,
                help="seconds a runner may take to import and warm up before its first case (default 300)")
    g.addoption("--results", default=None,
                help="results file (JSON lines) to append to; default results/run-<UTC time>.jsonl")
    g.addoption("--no-report", action="store_true",
                help="do not regenerate reports/ at the end of the run")
    g.addoption("--devices", default=None,
                help="comma-separated devices to expand the matrix over, e.g. cpu,cuda:0 "
                     "(default: cpu plus cuda:N for each GPU ONNX Runtime's CUDA provider can use); "
                     "cases on an absent device are skipped")
    g.addoption("--shard-id", default=None,
                help="run only shard K (1..N) of the cases, partitioned by model key (with --num-shards); "
                     "'auto': K and N from the CI's variables (SHARD_INDEX/SHARD_TOTAL set by the "
                     "workflow, GitLab's CI_NODE_INDEX/CI_NODE_TOTAL, Kubernetes' "
                     "JOB_COMPLETION_INDEX/JOB_COMPLETIONS)")
    g.addoption("--num-shards", type=int, default=None,
                help="number of shards for --shard-id")
    g.addoption("--shard-durations", default=None, metavar="RESULTS",
                help="balance the shards by the wall time each model took in this earlier results "
                     "file (default: crc32 of the model key)")
    g.addoption("--case-ids", default=None,
                help="file with case ids, one per line: run only those (others are deselected)")
    g.addoption("--reports-dir", default=None,
                help="where the end-of-run report is written (default: reports/ after a full run; "
                     "after a partial one (-k, --smoke, --case-ids, a shard, an interrupted run, ...) "
                     "the folder <results file>-reports/ beside the results, so the committed "
                     "snapshot is not overwritten; give this option to write there anyway)")
    g.addoption("--repro-dir", default=str(ROOT / "artifacts" / "repro"),
                help="every failing case leaves a repro bundle in DIR/<case id>/ "
                     "(default artifacts/repro; '' for none)")
    g.addoption("--no-pictures", action="store_true",
                help="do not draw graph.svg (Netron, headless Chromium) into the repro bundles")
    g.addoption("--pictures-wait", type=positive_seconds, default=30.0, metavar="S",
                help="after the last case, wait at most S seconds for the bundles' pictures still being "
                     "drawn (default 30); the rest: python -m harness pictures RESULTS")
    g.addoption("--runtimes", default=DEFAULT_RUNTIME,
                help="comma-separated runtimes every case runs on, e.g. ort,openvino,tvm,ncnn,reference, "
                     "or 'all' (every runtime module; those whose environment or device is missing are "
                     f"skipped with the reason) (default {DEFAULT_RUNTIME}; a non-default one is appended to the "
                     "case id)")
    g.addoption("--passes", default=DEFAULT_PASS,
                help="comma-separated post-export passes applied before the runtime, e.g. "
                     f"none,onnxsim,onnxoptimizer (default {DEFAULT_PASS}; a non-default one is appended "
                     "to the case id); each exported model is reused by every runtime and pass")
    g.addoption("--case-protocol", choices=("light", "pytest"), default="light",
                help="how a case item runs: light (default) = one report per case, no fixtures (the case "
                     "runs in its runner session anyway); pytest = pytest's setup/call/teardown, slower "
                     "(always used with --pdb, --trace, --runxfail and --setup-show/-only/-plan)")
    g.addoption("--explore", action="store_true",
                help="property mode: hypothesis draws configurations of every matrix entry (variant, "
                     "opset, attributes in combination, shapes; refined by an 'explore:' block), one "
                     "test per entry x exporter x device; the matrix cases do not run")
    g.addoption("--max-examples", type=positive_count, default=None,
                help="property mode: examples per test (overrides the hypothesis profile)")
    g.addoption("--shrink-budget", type=seconds_or_zero, default=None,
                help="property mode: seconds of shrinking per failing test before the smallest "
                     "failure found so far is kept (default: 60 with profile ci, 600 with nightly)")
    g.addoption("--special-values", action="store_true",
                help="mix NaN, +-Inf, -0.0, huge and tiny magnitudes into float inputs")
    g.addoption("--require-frameworks", default=None, metavar="all|none|LIST",
                help="fail the run (exit 6, one line) when the whole matrix of a framework is skipped because "
                     "its environment or install is missing: 'all' (the frameworks of this run), 'none', or "
                     "a comma-separated list; default 'all' when CI=true, else 'none'. A framework whose "
                     "import is broken (not missing) always fails the run")
    g.addoption("--explore-profile", choices=("ci", "nightly"), default="ci",
                help="property mode: hypothesis profile; ci = few examples, derandomized so verdicts "
                     "don't flake (default); nightly = many examples")


def make_config(config) -> HarnessConfig:
    """Freeze the options into a :class:`HarnessConfig`; bad values are a usage error."""
    opt = config.option
    if opt.explore:
        from harness.explore.property import register_profiles

        register_profiles()
    cases_dir = Path(opt.cases_dir)
    suite_dir = cases_dir / "models" if opt.suite == "models" else cases_dir
    matrices = tuple(Path(p) for p in opt.matrix) or tuple(matrix_files(suite_dir))
    try:
        shard = sharding.resolve(opt.shard_id, opt.num_shards, os.environ)
        if opt.shard_durations and shard is None:
            raise sharding.ShardError("--shard-durations needs --shard-id")
        shard_costs = sharding.load_costs(opt.shard_durations) if opt.shard_durations else None
    except sharding.ShardError as exc:
        raise pytest.UsageError(str(exc)) from None
    results = Path(opt.results) if opt.results else ROOT / "results" / (
        "run-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        + (sharding.suffix(*shard) if shard else "") + ".jsonl")
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "harness_results" in workerinput:
        results = Path(workerinput["harness_results"])
    if workerinput and "harness_devices" in workerinput:  # the controller detected once
        present = tuple(workerinput["harness_devices"]["present"])
        providers = tuple(workerinput["harness_devices"]["providers"])
    else:
        providers = devices.ort_providers()
        present = devices.detect(providers)
    try:
        wanted = devices.parse_devices(opt.devices) if opt.devices else present
    except devices.DeviceError as exc:
        raise pytest.UsageError(str(exc)) from None
    case_ids = read_case_ids(opt.case_ids) if opt.case_ids else None
    return HarnessConfig(
        cases_dir=cases_dir, matrices=matrices, tolerances=cases_dir / "tolerances.yaml",
        expected=_expected_path(suite_dir),
        scope=Scope(opsets=opt.opsets, frameworks=tuple(opt.framework),
                    exporters=tuple(opt.exporter), devices=wanted, smoke=opt.smoke, forms=opt.forms),
        timeout=opt.case_timeout or SUITE_TIMEOUTS[opt.suite], startup_timeout=opt.startup_timeout, results=results,
        report=not opt.no_report, reports_dir=Path(opt.reports_dir or ROOT / "reports"),
        reports_dir_given=opt.reports_dir is not None, repro_dir=Path(opt.repro_dir) if opt.repro_dir else None,
        explore=opt.explore, max_examples=opt.max_examples, shrink_budget=opt.shrink_budget,
        hypothesis_profile=opt.explore_profile or "ci", special_values=opt.special_values,
        present=present, ort_providers=providers, shard=shard, shard_costs=shard_costs, case_ids=case_ids,
        runtimes=_runtime_names(opt.runtimes), post_passes=_names("--passes", opt.passes),
        allow_any_call=opt.allow_any_call,
        require_frameworks=_required(opt.require_frameworks or require_frameworks_default(os.environ)),
        pictures=not opt.no_pictures, pictures_wait=opt.pictures_wait,
        light_protocol=opt.case_protocol == "light" and not any(
            getattr(opt, name, False) for name in ("usepdb", "trace", "runxfail", "setupshow", "setuponly",
                                                   "setupplan")))


def narrowing(config, cfg: HarnessConfig) -> list[str]:
    """The options that narrow this run to a slice of the matrix (empty for a full run)."""
    opt = config.option
    found = [name for name, on in (
        ("--smoke", cfg.scope.smoke), ("--framework", cfg.scope.frameworks), ("--exporter", cfg.scope.exporters),
        ("--matrix", opt.matrix), ("--suite models", opt.suite != "default"),
        ("--case-ids", cfg.case_ids is not None), ("--shard-id", cfg.shard is not None),
        ("--explore", cfg.explore), ("-k", getattr(opt, "keyword", "")), ("-m", getattr(opt, "markexpr", "")),
        ("a node id", any("::" in str(a) for a in config.args)),
        ("--deselect", getattr(opt, "deselect", None)),
        ("--ignore", getattr(opt, "ignore", None) or getattr(opt, "ignore_glob", None))) if on]
    return found


def required(cfg: HarnessConfig, framework: str) -> bool:
    """Whether ``--require-frameworks`` forbids skipping ``framework``'s whole matrix."""
    return cfg.require_frameworks == ("all",) or framework in cfg.require_frameworks


def other_matrix(cfg: HarnessConfig) -> list[str]:
    """``["--cases-dir"]`` when the run's cases are not the repository's own ``cases/`` (and
    ``"--forms derived"`` when it adds the derived variants), else empty.

    Such a run may be whole for its own matrix (stale expected failures are still
    checked), but its reports are not the repository's support tables.
    """
    return (["--cases-dir"] if _other_cases_dir(cfg.cases_dir) else []) + (
        ["--forms derived"] if cfg.scope.forms != "fixed" else [])


def _other_cases_dir(cases_dir: Path) -> bool:
    """True when ``--cases-dir`` is not the repository's own ``cases/`` (another matrix: not the full run)."""
    try:
        return Path(cases_dir).resolve() != (ROOT / "cases").resolve()
    except OSError:
        return True


def unique_results(path: Path) -> Path:
    """Claim ``path`` (or ``<stem>-2``, ``-3``, ... beside it) by creating it exclusively; return the one claimed.

    Two runs started in the same second get the same default name; the one that
    creates the file first keeps it, the other takes the next free name, so
    neither reads or reports the other's records.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        return candidate
    raise pytest.UsageError(f"--results: no free name beside {path}")


def _required(value: str) -> tuple[str, ...]:
    """``--require-frameworks``: ``("all",)``, ``()`` for none, or the frameworks named."""
    value = value.strip()
    if value == "none":
        return ()
    names = _names("--require-frameworks", value)
    if "all" in names and len(names) > 1:
        raise pytest.UsageError("--require-frameworks: 'all' is not combined with names")
    return names


def _names(option: str, value: str) -> tuple[str, ...]:
    """The comma-separated names of ``option``, in order, without repeats (checked by the collection)."""
    out = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not out:
        raise pytest.UsageError(f"{option}: give at least one name")
    return out


def _runtime_names(value: str) -> tuple[str, ...]:
    """``--runtimes``: the names given, or with ``all`` every runtime module (:func:`harness.runtimes.every`)."""
    if value.strip() == "all":
        from harness import runtimes

        return runtimes.every()
    return _names("--runtimes", value)


def shard_field(cfg: HarnessConfig) -> dict:
    """The ``shard`` run field of a record of a sharded run (``{}`` otherwise)."""
    return {} if cfg.shard is None else {"shard": list(cfg.shard)}


def is_controller(config) -> bool:
    """True in the process that writes files: the xdist controller, or a plain pytest run."""
    return getattr(config, "workerinput", None) is None


def _expected_path(cases_dir: Path) -> Path:
    """The expected failures of a cases folder: ``expected_failures/`` (one file per framework), else
    a single ``expected_failures.yaml``."""
    folder = cases_dir / "expected_failures"
    return folder if folder.is_dir() else cases_dir / "expected_failures.yaml"
