"""Usage and configuration checks, made once in the controller before any runner starts.

A bad option or a fault in the files the run reads (matrix, tolerances,
expected failures, ``--case-ids``, ``--results``) is reported as one line
naming the file:line:field or the option, with pytest's usage-error exit
code (4), distinct from a conformance failure (1). Under xdist the controller
checks before any worker starts, so the line is printed once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from harness.isolation import environments
from harness.report.results import NotResults, WriteFailed, check_appendable
from harness.spec.yamlsrc import load_yaml
from .collection import CaseCollection
from .options import EXIT_NOT_MEASURED, HarnessConfig, required
from .verdict import Verdicts


def check_results_path(path: Path) -> None:
    """``--results`` must be a file that can be appended to (its folder is made if missing)."""
    if path.is_dir():
        raise pytest.UsageError(f"--results {path}: is a folder; give the path of a results file")
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise pytest.UsageError(f"--results {path}: {above} is a file, not a folder")
    try:
        check_appendable(path)
    except (NotResults, WriteFailed) as exc:
        raise pytest.UsageError(f"--results {exc}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise pytest.UsageError(f"--results {path}: cannot write there ({exc.strerror})") from None
    os.close(fd)
    if not existed:
        path.unlink()


def check_output_folder(option: str, path: Path) -> None:
    """An output folder (``--repro-dir``, ``--reports-dir``) must be writable, checked before any case runs.

    The folder need not exist yet (it is made when first needed): then its nearest
    existing parent must be a folder that can be written to. Nothing is left behind.
    """
    above = path
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        what = "is a file" if above == path else f"{above} is a file"
        raise pytest.UsageError(f"{option} {path}: {what}, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".harness-write-check-", dir=above)
    except OSError as exc:
        raise pytest.UsageError(f"{option} {path}: cannot write there ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def declared_names(paths) -> tuple[set[str], set[str]]:
    """The frameworks and exporters the matrix files declare (files already validated)."""
    frameworks, exporters = set(), set()
    for path in paths:
        data = load_yaml(path).data
        frameworks.add(data["framework"])
        exporters.update(data["exporters"])
    return frameworks, exporters


def check_names(cfg: HarnessConfig) -> None:
    """``--framework`` and ``--exporter`` must name something a matrix declares."""
    frameworks, exporters = declared_names(cfg.matrices)
    for option, given, known in (("--framework", cfg.scope.frameworks, frameworks),
                                 ("--exporter", cfg.scope.exporters, exporters)):
        unknown = sorted(set(given) - known)
        if unknown:
            raise pytest.UsageError(f"{option} {unknown[0]}: no matrix declares it (known: "
                                    f"{', '.join(sorted(known))})")


def check_case_ids(cfg: HarnessConfig, collection: CaseCollection) -> None:
    """Every ``--case-ids`` id must be a case of this run's matrix."""
    if cfg.case_ids is None or cfg.explore:
        return
    missing = sorted(cfg.case_ids - {c.id for c in collection.matrix.cases})
    if missing:
        raise pytest.UsageError(f"--case-ids: {len(missing)} id(s) match no case of this run, e.g. {missing[0]}")


def check_required_frameworks(cfg: HarnessConfig, collection: CaseCollection) -> None:
    """``--require-frameworks``: a named framework no matrix declares is a usage error (exit 4); one of
    this run whose environment is missing (its cases would all be skipped) stops the run (exit 6)."""
    names = [n for n in cfg.require_frameworks if n != "all"]
    if names:
        declared, _ = declared_names(cfg.matrices)
        unknown = sorted(set(names) - declared)
        if unknown:
            raise pytest.UsageError(f"--require-frameworks {unknown[0]}: no matrix declares it (known: "
                                    f"{', '.join(sorted(declared))})")
    for fw in collection.frameworks():
        reason = environments.unavailable(fw)
        if reason is not None and required(cfg, fw):
            pytest.exit(f"onnx-conformance: --require-frameworks: every {fw} case would be skipped: {reason}",
                        returncode=EXIT_NOT_MEASURED)


def preflight(cfg: HarnessConfig, collection: CaseCollection, verdicts: Verdicts) -> None:
    """Run every check; the first fault raises :class:`pytest.UsageError` (one line, exit 4)."""
    for path in cfg.matrices:
        if not Path(path).is_file():
            raise pytest.UsageError(f"--matrix {path}: no such file")
    check_results_path(cfg.results)
    if cfg.repro_dir is not None:
        check_output_folder("--repro-dir", cfg.repro_dir)
    if cfg.report and cfg.reports_dir_given:
        check_output_folder("--reports-dir", cfg.reports_dir)
    collection.matrix  # noqa: B018 - loads and validates the matrices and tolerances (cached)
    check_names(cfg)
    verdicts.expectations  # noqa: B018 - loads and validates expected_failures.yaml (cached)
    check_case_ids(cfg, collection)
    check_required_frameworks(cfg, collection)
