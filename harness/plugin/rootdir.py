"""Keep pytest's rootdir where the command line's test paths put it, whatever form a path option takes.

pytest settles its rootdir and config file before any plugin has declared its
options, so in ``--case-ids /abs/ids.txt`` (the space form) it takes ``/abs/ids.txt``
for a test path. Outside the checkout that moves the rootdir: ``pyproject.toml`` is
ignored (its ``testpaths``, ``addopts``, markers), the harness's own self-tests are
collected and the usage checks skipped. ``--case-ids=/abs/ids.txt`` works.

:func:`repin` runs first in ``pytest_load_initial_conftests``, once the plugin's
options are known: it settles the setup again from the real test paths and, where
that differs, puts the right rootdir, config file and ``addopts`` in place before any
conftest is loaded or any argument parsed for good. Where this pytest keeps its
setup differently, the run stops with one line naming the option and the ``=`` form.
"""

from __future__ import annotations

import copy

import pytest

#: the harness's options that take a path (the space form of these is what moves the rootdir)
PATH_OPTIONS = ("--cases-dir", "--matrix", "--results", "--case-ids", "--reports-dir", "--repro-dir",
                "--shard-durations")


def repin(early_config, args: list[str]) -> None:
    """Settle rootdir, config file and ini ``addopts`` again from the real test paths (see the module)."""
    from _pytest.config.findpaths import determine_setup

    ns = early_config.known_args_namespace
    if not hasattr(ns, "cases_dir"):
        return
    try:
        rootpath, inipath, inicfg, *_ = determine_setup(
            inifile=ns.inifilename, override_ini=ns.override_ini, args=ns.file_or_dir,
            rootdir_cmd_arg=ns.rootdir or None, invocation_dir=early_config.invocation_params.dir)
    except TypeError:  # another pytest's signature: check only
        rootpath, inipath, inicfg = None, None, None
    if rootpath == early_config.rootpath and inipath == early_config.inipath:
        return
    if rootpath is None or not all(hasattr(early_config, a) for a in ("_rootpath", "_inipath", "_inicfg",
                                                                       "_inicache")):
        raise pytest.UsageError(_refusal(args, early_config.rootpath))
    old_cut = str(early_config.inipath.parent if early_config.inipath else early_config.rootpath)
    early_config._rootpath, early_config._inipath, early_config._inicfg = rootpath, inipath, inicfg
    early_config._inicache.clear()
    early_config._parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
    addopts = list(early_config.getini("addopts"))
    if addopts:  # the config file's options were not read: read them now, as pytest would have
        args[:] = addopts + args
        early_config.pluginmanager.consider_preparse(addopts, exclude_only=False)  # e.g. -p no:cacheprovider
    cut = ns.confcutdir
    early_config.known_args_namespace = ns = early_config._parser.parse_known_args(
        args, namespace=copy.copy(early_config.option))
    ns.confcutdir = str(inipath.parent if inipath else rootpath) if cut in (None, old_cut) else cut


def _refusal(args: list[str], rootpath) -> str:
    used = next((a for a in args if a in PATH_OPTIONS), "a path option")
    return (f"{used} PATH: pytest took PATH for a test path and moved its rootdir to {rootpath}; "
            f"write {used}=PATH instead")
