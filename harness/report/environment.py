"""Versions of the packages that matter, read from package metadata (no heavy imports)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("paddlepaddle", "paddle2onnx", "torch", "onnx", "onnxruntime", "onnxscript", "numpy")
ROOT = Path(__file__).resolve().parent.parent.parent


def shown_path(path: str | Path) -> str:
    """A file as a report names it: relative to the checkout when inside it, else its name alone
    (a committed report names no path of the machine that made it)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return p.name


def package_versions() -> dict[str, str | None]:
    """Installed version of each package of :data:`PACKAGES` (None when absent)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    if out.get("onnxruntime") is None:  # the GPU build has another distribution name
        try:
            out["onnxruntime"] = metadata.version("onnxruntime-gpu")
        except metadata.PackageNotFoundError:
            pass
    return out


def git_sha(root: Path = ROOT) -> str | None:
    """The checkout's HEAD commit, or None outside git."""
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None


def extra_environments() -> dict[str, dict]:
    """Versions in each ready extra environment, as its creation probe found them (no import)."""
    from harness.isolation import environments

    out = {}
    for name, env in sorted(environments.declared().items()):
        data = env.marker_data()
        if data and data.get("fingerprint") == env.fingerprint:
            out[name] = dict(sorted(data.get("versions", {}).items()))
    return out


def environment(date: str) -> dict:
    """The report-building environment; ``date`` comes from the results, never from the clock."""
    return {"packages": package_versions(), "python": platform.python_version(),
            "extra_environments": extra_environments(),
            "platform": platform.platform(), "git_sha": git_sha(), "date": date}
