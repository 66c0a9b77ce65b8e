"""Repro bundles: everything needed to replay one failing case without the harness installed.

A bundle is a folder (``artifacts/repro/<case id>/`` by default) with

* ``model.onnx``       -- the exported model (absent when the export itself failed);
* ``model.<pass>.onnx`` -- the model after the case's post-export pass, when the pass ran;
* ``inputs.npz``       -- the input sets (``set<i>_x<j>``);
* ``reference.npz``    -- the framework's outputs (``set<i>_y<k>``), when it ran;
* ``actual.npz``       -- ONNX Runtime's outputs, when it ran;
* ``case.json``        -- the case (:meth:`Case.to_dict`, with its ``runtime`` and ``post_pass``), its
  record, and how to replay it (``modules`` to import, ``isolate``);
* ``requirements.txt`` -- the pip packages the replay needs, pinned to the versions that ran;
* ``repro.py``         -- a copy of :mod:`harness.core.replay`;
* ``_vendor/``         -- copies of the harness modules the replay imports: the pipeline, its
  tolerance rules and verdict, the case's framework adapter, exporter, builder module, runtime
  and post-export pass, and every module they import from the harness (found by walking their
  imports).

No source is generated: ``repro.py`` runs the very files the harness ran. The vendored modules
import only the standard library, numpy, onnx, onnxruntime and the framework at module level
(``tests/test_repro.py`` checks it), so the bundle runs in an environment holding only those.

The case runner writes bundles (it has the model and the arrays); the parent writes them for
crashes and timeouts (no model, no reference; ``repro.py`` re-runs the case in a child process
so that an abort or a hang is reported, not suffered).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np

from harness import passes, runtimes
from . import registry, status
from .case import Case
from .inputs import make_input_sets

#: The replay script; copied into every bundle as ``repro.py``.
SCRIPT = Path(__file__).with_name("replay.py")
#: Folder of a bundle that holds the vendored modules (put first on ``sys.path`` by the replay).
VENDOR = "_vendor"
#: What every replay needs besides the framework's own packages.
BASE_REQUIRES = ("numpy", "onnx", "onnxruntime")
#: Name of the module-level tuple in a framework adapter listing its replay's pip packages.
REQUIRES_NAME = "REPLAY_REQUIRES"

_RECORD_KEYS = ("id", "status", "message", "stage", "max_abs", "max_rel", "failing_input",
                "op_types", "model_opset", "special_values")


def write_bundle(bundle_dir: str, case: Case, rec: dict, ctx: dict, plugins: tuple[str, ...] = ()) -> str:
    """Runner side: write the bundle of a failing case from the pipeline's context; return its path."""
    _fresh_dir(bundle_dir)
    prep = ctx.get("prep")
    input_sets = prep.input_sets if prep is not None else make_input_sets(case)
    references = prep.references if prep is not None else None
    for key, name in (("model_path", "model.onnx"), ("passed_path", f"model.{case.post_pass}.onnx")):
        path = ctx.get(key)
        if path and os.path.exists(path):
            shutil.copyfile(path, os.path.join(bundle_dir, name))
    if ctx.get("actual"):
        _save_sets(os.path.join(bundle_dir, "actual.npz"), ctx["actual"], "y")
    _write_common(bundle_dir, case, rec, input_sets, references, plugins)
    return os.path.abspath(bundle_dir)


def write_parent_bundle(bundle_dir: str, case: Case, rec: dict, plugins: tuple[str, ...] = ()) -> str:
    """Parent side (crash, timeout): no model and no reference; the replay isolates the case."""
    _fresh_dir(bundle_dir)
    _write_common(bundle_dir, case, rec, make_input_sets(case), None, plugins)
    return os.path.abspath(bundle_dir)


def render(bundle_dir: str, case: Case, plugins: tuple[str, ...] = ()) -> list[str]:
    """Write the bundle's scripts (``repro.py``, ``_vendor/``, ``requirements.txt``); return the files.

    ``plugins`` are extra modules (e.g. the fakes of the harness's tests) that may hold the
    case's framework, exporter or builder.
    """
    modules = case_modules(case, plugins)
    written = [str(Path(bundle_dir) / "repro.py")]
    shutil.copyfile(SCRIPT, written[0])
    os.chmod(written[0], 0o755)
    roots = sorted(set(modules) | _replay_imports())
    for name, path in sorted(vendored_modules(roots).items()):
        rel = Path(*name.split("."))
        target = Path(bundle_dir) / VENDOR / (rel / "__init__.py" if path.name == "__init__.py" else
                                              rel.with_suffix(".py"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(str(target))
    req = Path(bundle_dir) / "requirements.txt"
    req.write_text("".join(f"{r}\n" for r in requirements(modules)), encoding="utf-8")
    written.append(str(req))
    return written


def _replay_imports() -> set[str]:
    """The harness modules the replay script itself imports."""
    return {m for m in imported_modules(SCRIPT, "__main__", local={"harness"}) if m.split(".")[0] == "harness"}


def _framework_module(framework: str) -> str:
    """The module of ``framework``'s registered adapter, else the conventional one (nothing imported)."""
    fw = registry.FRAMEWORKS.get(framework)
    return type(fw).__module__ if fw is not None else f"harness.frameworks.{framework}"


def case_modules(case: Case, plugins: tuple[str, ...] = ()) -> list[str]:
    """The modules that register the case's framework adapter, exporter, builder, runtime and pass.

    Read from the registries where they are registered (the case runner, or a plugin); else by
    the conventions of :mod:`harness.core.registry`, :mod:`harness.runtimes` and :mod:`harness.passes`
    (``harness.frameworks.<framework>``, ``harness.runtimes.<name>``, ``harness.passes.<name>``),
    so the parent process never imports a framework.
    """
    registry.load_builders(case.framework, tuple(plugins))
    exporter = registry.EXPORTERS.get((case.framework, case.exporter))
    mods = [_framework_module(case.framework)]
    if exporter is not None:
        mods.append(type(exporter).__module__)
    builder = None if case.spec.get("call") else case.spec.get("builder")
    if builder and (case.framework, builder) in registry.BUILDERS:
        mods.append(registry.BUILDERS[(case.framework, builder)].__module__)
    for name in (case.runtime, runtimes.DEFAULT):  # the default too: its library is always required
        runtime = runtimes.RUNTIMES.get(name)
        mods.append(type(runtime).__module__ if runtime is not None else f"harness.runtimes.{name}")
    if case.post_pass != passes.NONE:
        done = passes.PASSES.get(case.post_pass)
        mods.append(type(done).__module__ if done is not None else f"harness.passes.{case.post_pass}")
    return list(dict.fromkeys(mods))


def warm(frameworks: tuple[str, ...], plugins: tuple[str, ...] = ()) -> None:
    """Read, once, the files that the bundles of ``frameworks`` vendor, and the pinned versions.

    Called by the case runner's master after its imports, so every server it forks (the fresh
    one after a crash too) starts with :func:`imported_modules`' and :func:`requirements`' work
    done, and a failing case pays for copying its bundle, not for parsing the harness.
    """
    mods: list[str] = []
    for fw in frameworks:
        registry.load_builders(fw, plugins)
        mods.append(_framework_module(fw))
        mods += [type(e).__module__ for (f, _), e in registry.EXPORTERS.items() if f == fw]
        mods += [b.__module__ for (f, _), b in registry.BUILDERS.items() if f == fw]
    mods += [type(r).__module__ for r in runtimes.RUNTIMES.values()] + [f"harness.runtimes.{runtimes.DEFAULT}"]
    mods += [type(p).__module__ for p in passes.PASSES.values()]
    roots = sorted({m for m in mods if m.split(".")[0] in {"harness", *(p.split(".")[0] for p in plugins)}}
                   | _replay_imports())
    vendored_modules(roots)
    requirements(list(dict.fromkeys(mods)))


def requirements(modules: list[str]) -> list[str]:
    """Pinned pip requirements of a replay: numpy, onnx, onnxruntime and the adapters' ``REPLAY_REQUIRES``."""
    names = list(BASE_REQUIRES)
    for mod in modules:
        spec = importlib.util.find_spec(mod)
        if spec is not None and spec.origin:
            names += [n for n in module_constant(Path(spec.origin), REQUIRES_NAME) if n not in names]
    return [_pinned(name) for name in names]


@functools.lru_cache(maxsize=None)
def _pinned(name: str) -> str:
    """``name==<installed version>`` (``name`` alone when not installed); looked up once a process,
    since nothing installs packages while the harness runs."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def vendored_modules(roots: list[str]) -> dict[str, Path]:
    """Module name -> source file of ``roots`` and every module of their packages they import.

    Imports are followed wherever they are written (module level or inside a function) when
    their top-level package is one of the roots' (``harness``, or a plugin's package); the
    packages' ``__init__.py`` files come along.
    """
    local = {r.split(".")[0] for r in roots}
    found: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            raise ImportError(f"cannot vendor {name}: no Python source found")
        found[name] = Path(spec.origin)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [m for m in imported_modules(Path(spec.origin), name, spec.submodule_search_locations is not None,
                                             local) if m.split(".")[0] in local]
    return found


#: (path, mtime, size, name, is_package, local) -> what :func:`imported_modules` found there. A run
#: writes many bundles from the same few dozen files; parsing them again for each one cost a
#: failing case 0.1-0.3 s. A file that changes gets a new key.
_IMPORTS: dict[tuple, frozenset[str]] = {}


def imported_modules(path: Path, name: str, is_package: bool = False, local: set[str] = frozenset()) -> set[str]:
    """Absolute names of the modules that the file ``path`` (module ``name``) imports anywhere.

    ``from pkg import x`` counts as ``pkg.x`` when ``pkg`` is in a ``local`` package and ``pkg.x``
    is a module, else as ``pkg`` (nothing outside ``local`` is looked up, so no framework is
    imported); relative imports are resolved against ``name``.
    """
    st = os.stat(path)
    key = (str(path), st.st_mtime_ns, st.st_size, name, is_package, frozenset(local))
    if key not in _IMPORTS:
        _IMPORTS[key] = frozenset(_parse_imports(path, name, is_package, local))
    return set(_IMPORTS[key])


def _parse_imports(path: Path, name: str, is_package: bool, local: set[str]) -> set[str]:
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if base.split(".")[0] in local and _is_module(sub) else base)
    return out


def module_level_imports(path: Path) -> set[str]:
    """Top-level package names imported when the file ``path`` is loaded (not inside functions)."""
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module != "__future__":
            out.add(node.module.split(".")[0])
    return out


def _module_level(body):
    """Statements run at import time: the body, into if/try/with blocks and class bodies."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With, ast.ClassDef)):
            for field in ("body", "orelse", "finalbody"):
                yield from _module_level(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from _module_level(handler.body)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def module_constant(path: Path, const: str) -> tuple:
    """The literal value of a module-level ``const = (...)`` in ``path`` (``()`` when absent)."""
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == const for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return ()


def _save_sets(path: str, sets: list[list], letter: str) -> None:
    arrays = {f"set{i}_{letter}{j}": np.asarray(a) for i, xs in enumerate(sets) for j, a in enumerate(xs)}
    np.savez(path, **arrays)


def _fresh_dir(bundle_dir: str) -> str:
    if os.path.isdir(bundle_dir):
        shutil.rmtree(bundle_dir)
    os.makedirs(bundle_dir)
    return bundle_dir


def case_json(case: Case, rec: dict, plugins: tuple[str, ...] = ()) -> dict:
    """What ``case.json`` holds: the case's fields, its record and the replay's settings.

    The case's ``runtime`` and ``post_pass`` fields name the runtime that runs the model and the
    pass applied to it after export (a case.json without them gets :class:`Case`'s defaults,
    ``ort`` and ``none``); ``modules`` are imported by the replay to register the case's
    framework, exporter, builder, runtime and pass; ``isolate`` replays in a child process.
    """
    return {**case.to_dict(), "record": {k: rec.get(k) for k in _RECORD_KEYS if k in rec},
            "modules": case_modules(case, plugins),
            "isolate": rec.get("status") in (status.CRASH, status.TIMEOUT)}


def _write_common(bundle_dir: str, case: Case, rec: dict, input_sets, references,
                  plugins: tuple[str, ...] = ()) -> None:
    _save_sets(os.path.join(bundle_dir, "inputs.npz"), input_sets, "x")
    if references is not None:
        _save_sets(os.path.join(bundle_dir, "reference.npz"), references, "y")
    with open(os.path.join(bundle_dir, "case.json"), "w", encoding="utf-8") as f:
        json.dump(case_json(case, rec, plugins), f, indent=2, sort_keys=True, default=str)
    render(bundle_dir, case, plugins)
