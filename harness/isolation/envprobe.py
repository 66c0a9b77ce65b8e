"""``python -m harness.isolation.envprobe FRAMEWORK ...``: can this interpreter run these frameworks' cases?

Run by :func:`harness.isolation.environments.create` in a new environment, from the
repository root. It imports what the case runner imports (the runner, the
pipeline and the modules they load) and each framework's adapter through the
registry, then prints one JSON line: the versions found. Any import problem
ends it with a traceback and a non-zero exit, so no marker is written.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys



def probe(frameworks: list[str]) -> dict:
    """Import the runner side and each framework adapter; return package versions."""
    from harness.core import pipeline, registry, runner  # noqa: F401 - the runner's import closure

    found = {"python": "%d.%d.%d" % sys.version_info[:3]}
    for fw in frameworks:
        adapter = registry.load_framework(fw)
        found.update(adapter.versions())
    for mod in ("onnx", "onnxruntime", "numpy"):
        found[mod] = importlib.import_module(mod).__version__
    return found


def framework_modules() -> dict:
    """Which framework modules this process has imported and which this interpreter could import."""
    from harness.core import registry, repro

    # the frameworks the harness has (not the base packages every runner holds, e.g. the onnx adapter's onnx)
    known = [m for m in registry.framework_names() if m not in repro.BASE_REQUIRES]
    return {"imported": sorted(m for m in known if m in sys.modules),
            "importable": sorted(m for m in known if importlib.util.find_spec(m) is not None)}


def build_probe(case_file: str) -> dict:
    """Build the model of the case in ``case_file`` (JSON) and run its reference on the first input set.

    What ``python -m harness model`` checks before any runner starts: ``{"ok": true}``, or the
    stage that failed (``build``: the factory or the weights; ``reference``: the model refuses
    the inputs) and the error in one line.
    """
    from harness.core import registry
    from harness.core.case import Case
    from harness.core.inputs import make_input_sets

    with open(case_file, encoding="utf-8") as f:
        case = Case.from_dict(json.load(f))
    stage = "build"
    try:
        fw = registry.load_framework(case.framework)
        model = fw.build(case.spec, case.seed)
        stage = "reference"
        outputs = fw.reference(model, make_input_sets(case)[0])
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported to the command as one line
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        return {"ok": False, "stage": stage, "error": text[:600]}
    return {"ok": True, "outputs": [[list(o.shape), str(o.dtype)] for o in outputs]}


def probe_runtimes(names: list[str]) -> dict:
    """Import each runtime module and its native library (as the runtime server does); return versions."""
    from importlib import metadata

    from harness.runtimes import _serve  # noqa: F401 - the server's import closure

    found = {"python": "%d.%d.%d" % sys.version_info[:3]}
    for name in names:
        mod = importlib.import_module(f"harness.runtimes.{name}")
        mod.load()
        for dist in getattr(mod, "DISTRIBUTIONS", ()):
            found[dist] = metadata.version(dist)
    for mod in ("onnx", "numpy"):
        found[mod] = importlib.import_module(mod).__version__
    return found


def main(argv: list[str]) -> int:
    """Probe the frameworks named in ``argv``; print the versions as one JSON line.

    With ``--build CASE_FILE``, build that case's model instead (see :func:`build_probe`).

    With ``--modules`` first, print instead which framework modules the process
    imported while loading those adapters (and which it could import at all).
    """
    if argv[:1] == ["--runtimes"]:  # a runtime environment: probe those runtimes instead
        print(json.dumps(probe_runtimes(argv[1:]), sort_keys=True))
        return 0
    if argv[:1] == ["--build"] and len(argv) == 2:
        found = build_probe(argv[1])
        print(json.dumps(found, sort_keys=True))
        return 0 if found["ok"] else 3
    if argv[:1] == ["--modules"]:
        from harness.core import registry, runner  # noqa: F401

        for fw in argv[1:]:
            registry.load_framework(fw)
        print(json.dumps(framework_modules(), sort_keys=True))
        return 0
    print(json.dumps(probe(argv), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
