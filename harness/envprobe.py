"""``python -m harness.envprobe FRAMEWORK ...``: can this interpreter run these frameworks' cases?

Run by :func:`harness.environments.create` in a new environment, from the
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

#: The frameworks the harness knows; the probe says which of them this process holds.
FRAMEWORK_MODULES = ("paddle", "torch", "tensorflow", "oneflow")


def probe(frameworks: list[str]) -> dict:
    """Import the runner side and each framework adapter; return package versions."""
    from . import pipeline, registry, runner  # noqa: F401 - the runner's import closure

    found = {"python": "%d.%d.%d" % sys.version_info[:3]}
    for fw in frameworks:
        adapter = registry.load_framework(fw)
        found.update(getattr(adapter, "versions", lambda: {})())
    for mod in ("onnx", "onnxruntime", "numpy"):
        found[mod] = importlib.import_module(mod).__version__
    return found


def framework_modules() -> dict:
    """Which framework modules this process has imported and which this interpreter could import."""
    return {"imported": sorted(m for m in FRAMEWORK_MODULES if m in sys.modules),
            "importable": sorted(m for m in FRAMEWORK_MODULES if importlib.util.find_spec(m) is not None)}


def probe_runtimes(names: list[str]) -> dict:
    """Import each runtime module and its native library (as the runtime server does); return versions."""
    from importlib import metadata

    from .runtimes import _serve  # noqa: F401 - the server's import closure

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

    With ``--runtimes`` first, probe those runtimes instead (a runtime environment).
    With ``--modules`` first, print instead which framework modules the process
    imported while loading those adapters (and which it could import at all).
    """
    if argv[:1] == ["--runtimes"]:
        print(json.dumps(probe_runtimes(argv[1:]), sort_keys=True))
        return 0
    if argv[:1] == ["--modules"]:
        from . import registry, runner  # noqa: F401

        for fw in argv[1:]:
            registry.load_framework(fw)
        print(json.dumps(framework_modules(), sort_keys=True))
        return 0
    print(json.dumps(probe(argv), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
