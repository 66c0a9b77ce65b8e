"""The pytest plugin of the harness.

Like pytest-xdist's own plugin module, this one only declares the options and,
in ``pytest_configure``, freezes them into a :class:`HarnessConfig` and
registers the plugin objects that hold the run's state and implement its hooks:

* :class:`~.collection.CaseCollection` -- the matrix, case ids, shards (``collection.py``);
* :class:`~.verdict.Verdicts` -- expected failures and the verdict per record (``verdict.py``);
* :class:`~.lifecycle.RunnerLifecycle` -- runner masters and sessions (``lifecycle.py``);
* :class:`~.protocol.CaseProtocol` -- a case item run with one report (``protocol.py``);
* :class:`~.summary.RunSummary` -- records, counts, reports; controller only (``summary.py``);
* :class:`~.pictures.BundlePictures` -- graph.svg in the repro bundles; controller only (``pictures.py``).

Each is kept in ``config.stash`` under a typed key (see :data:`HARNESS`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import pytest

from .collection import CaseCollection, targets_conformance
from .lifecycle import CaseRunner, RunnerLifecycle
from .options import CONFIG, HarnessConfig, add_options, is_controller, make_config, unique_results
from .pictures import BundlePictures
from .preflight import preflight
from .protocol import CaseProtocol
from .rootdir import repin
from .summary import RunSummary
from .verdict import Verdicts, xfail

__all__ = ["HARNESS", "Harness", "HarnessConfig", "CaseRunner", "xfail"]


@dataclass
class Harness:
    """The plugin objects of one pytest process."""

    config: HarnessConfig
    collection: CaseCollection
    verdicts: Verdicts
    lifecycle: RunnerLifecycle
    summary: RunSummary | None


HARNESS = pytest.StashKey[Harness]()


def pytest_addoption(parser):
    """Declare the harness's command-line options (see :mod:`.options`)."""
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """A path option in the space form (``--case-ids /abs/ids.txt``) does not move the rootdir (see :mod:`.rootdir`)."""
    repin(early_config, args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Freeze the options, check them and the input files, register the plugin objects, start the runners."""
    if not hasattr(config.option, "cases_dir"):
        return
    cfg = make_config(config)
    reserved = None  # a default results name, claimed now so that a run started in the same second takes another
    if is_controller(config) and targets_conformance(config) and not config.option.results \
            and not config.option.collectonly:
        cfg = replace(cfg, results=unique_results(cfg.results))
        reserved = cfg.results
    config.stash[CONFIG] = cfg
    models_dist(config)
    collection = CaseCollection(config, cfg)
    collection.check_axes()
    verdicts = Verdicts(config, cfg, collection)
    lifecycle = RunnerLifecycle(config, cfg, collection, verdicts)
    if is_controller(config) and targets_conformance(config):
        try:
            preflight(cfg, collection, verdicts)  # usage and configuration faults: one line, exit 4
        except BaseException:
            if reserved is not None and reserved.exists() and not reserved.stat().st_size:
                os.unlink(reserved)
            raise
    summary = RunSummary(config, cfg, collection, reserved=reserved) if is_controller(config) else None
    pm = config.pluginmanager
    pm.register(collection, "onnx-conformance-collection")
    pm.register(verdicts, "onnx-conformance-verdicts")
    pm.register(lifecycle, "onnx-conformance-lifecycle")
    pm.register(CaseProtocol(lifecycle), "onnx-conformance-protocol")
    if summary is not None:
        pm.register(summary, "onnx-conformance-summary")
        if cfg.pictures and cfg.repro_dir is not None:
            pm.register(BundlePictures(config, cfg), "onnx-conformance-pictures")
    config.stash[HARNESS] = Harness(cfg, collection, verdicts, lifecycle, summary)
    lifecycle.start()


def models_dist(config) -> None:
    """``--suite models`` under xdist's default ``--dist load`` runs as ``--dist loadgroup``.

    Then every case of a whole model goes to one worker (the model is built and
    calibrated once) and the entries of one ``serial_group`` run one after another,
    so two GB-sized conversions never overlap. Another ``--dist`` mode is kept.

    A worker parses the command line again without xdist's own defaulting, so it
    cannot see the switch: the controller tells it in ``workerinput`` (see
    :meth:`.lifecycle.RunnerLifecycle.pytest_configure_node`), and the worker then
    names each item's group the way ``--dist loadgroup`` does.
    """
    opt = config.option
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if workerinput.get("harness_dist") == "loadgroup":
            opt.loadgroup = True
        return
    if getattr(opt, "suite", "default") == "models" and getattr(opt, "dist", "no") == "load":
        opt.dist = "loadgroup"
        opt.loadgroup = True


@pytest.fixture(scope="session")
def case_runner(request) -> CaseRunner:
    """This process's :class:`CaseRunner` (its runner sessions start on first use)."""
    lifecycle = request.config.stash[HARNESS].lifecycle
    yield lifecycle.case_runner()
    lifecycle.close()
