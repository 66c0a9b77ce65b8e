"""Which Python environment runs each framework, and how the extra ones are made.

Paddle and torch live in the main environment (the one pytest runs in). A
framework that cannot share it gets an environment of its own, declared once in
``pyproject.toml`` under ``[tool.harness.environments.<name>]``::

    [tool.harness.environments.oneflow]
    frameworks = ["oneflow"]          # the frameworks whose runner uses it
    python = "3.10"                   # the interpreter version it is made with
    path = ".envs/oneflow"            # relative to the repository root
    requirements = ["oneflow==0.9.0", ...]   # pinned, installed with pip
    disk_gib = 7                      # optional: free GiB needed to make it

``python -m harness envs create [NAME ...]`` makes them (see :func:`create`);
it is idempotent: an environment whose marker file matches its declaration
is left alone. The marker (``<path>/harness-env.json``) is written last, after
a probe run in the new interpreter imported the runner side of the harness
and the framework adapter, so its presence means "this interpreter runs this
framework's cases". An environment that declares ``disk_gib`` is not started
on a disk with less free space, and one whose install fails is removed again,
so a failed attempt never leaves the disk fuller than it found it.

The pytest controller asks :func:`interpreter` which executable starts a
framework's runner and :func:`unavailable` whether it can (a file check, no
subprocess). The runner side is started from the repository root with the root
on ``PYTHONPATH`` (:func:`runner_environ`): the harness is not installed into
the extra environments, because ``pyproject.toml`` requires Python 3.11 and
the OneFlow environment is 3.10. Everything the runner imports must therefore
stay importable on the oldest declared Python (``tests/test_environments.py``
checks the import closure).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from harness.core.errors import HarnessError

from harness.core.atomic import write_atomic

#: The repository root: where ``pyproject.toml`` and the ``.envs`` folder are.
ROOT = Path(__file__).resolve().parents[2]
#: The one command that creates the extra environments (named in skip reasons).
CREATE_COMMAND = "python -m harness envs create"
MARKER = "harness-env.json"


class EnvironmentSpecError(HarnessError):
    """An environment cannot be made (no interpreter of its version, pip failed, ...)."""


@dataclass(frozen=True)
class Environment:
    """One declared extra environment."""

    name: str
    frameworks: tuple[str, ...]
    python: str
    path: Path
    requirements: tuple[str, ...]
    #: interpreters to try first when looking for ``python`` (optional, declared)
    interpreters: tuple[str, ...] = ()
    #: free disk space, in GiB, that making it takes (installed size plus pip's downloads); 0: unchecked
    disk_gib: float = 0.0
    #: the runtimes (``harness/runtimes/<name>.py``) whose runtime server runs here
    runtimes: tuple[str, ...] = ()
    #: pinned packages installed after the requirements with ``pip install --no-deps`` (their declared
    #: dependencies are not needed here, e.g. pnnx's torch)
    no_deps: tuple[str, ...] = ()

    @property
    def executable(self) -> Path:
        """The environment's own interpreter."""
        return self.path / "bin" / "python"

    @property
    def marker(self) -> Path:
        """Written last by :func:`create`; its fingerprint must match the declaration."""
        return self.path / MARKER

    @property
    def fingerprint(self) -> str:
        """Hash of what the declaration asks for (a changed pin makes the environment stale)."""
        text = json.dumps([self.python, sorted(self.requirements)]
                          + ([sorted(self.no_deps)] if self.no_deps else []))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def marker_data(self) -> dict | None:
        """The marker's content, or None when absent or unreadable."""
        try:
            return json.loads(self.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def _read_pyproject(pyproject: Path) -> dict:
    import tomllib  # controller side only (Python 3.11+)

    with open(pyproject, "rb") as f:
        return tomllib.load(f)


@functools.lru_cache(maxsize=8)
def declared(pyproject: Path | None = None) -> dict[str, Environment]:
    """The extra environments declared in ``pyproject`` (default: the repository's), by name."""
    pyproject = Path(pyproject) if pyproject else ROOT / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    tables = _read_pyproject(pyproject).get("tool", {}).get("harness", {}).get("environments", {})
    out = {}
    for name, t in tables.items():
        where = f"{pyproject}: [tool.harness.environments.{name}]"
        for key in ("python", "path", "requirements"):
            if key not in t:
                raise EnvironmentSpecError(f"{where}: missing key {key!r}")
        if "frameworks" not in t and "runtimes" not in t:
            raise EnvironmentSpecError(f"{where}: missing key 'frameworks' (or 'runtimes')")
        path = Path(t["path"])
        out[name] = Environment(name=name, frameworks=tuple(t.get("frameworks", ())), python=str(t["python"]),
                                runtimes=tuple(t.get("runtimes", ())), no_deps=tuple(t.get("no_deps", ())),
                                path=path if path.is_absolute() else pyproject.parent / path,
                                requirements=tuple(t["requirements"]),
                                interpreters=tuple(t.get("interpreters", ())),
                                disk_gib=float(t.get("disk_gib", 0.0)))
    return out


def tables_key(pyproject: Path | None = None) -> str:
    """A hash of the ``[tool.harness.environments.*]`` tables (a CI cache key: a changed pin changes it).

    Computed from the parsed tables, so comments and layout do not count.
    """
    pyproject = Path(pyproject) if pyproject else ROOT / "pyproject.toml"
    tables = _read_pyproject(pyproject).get("tool", {}).get("harness", {}).get("environments", {})
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:32]


def environment_of(framework: str, pyproject: Path | None = None) -> Environment | None:
    """The extra environment that runs ``framework``; None for the main environment."""
    return next((e for e in declared(pyproject).values() if framework in e.frameworks), None)


def interpreter(framework: str, pyproject: Path | None = None) -> str:
    """The Python executable that must run ``framework``'s runner."""
    env = environment_of(framework, pyproject)
    return sys.executable if env is None else str(env.executable)


def unavailable(framework: str, pyproject: Path | None = None) -> str | None:
    """None when ``framework``'s interpreter is ready, else a one-line skip reason.

    Cheap: checks files only (the interpreter and the marker :func:`create`
    writes after a successful probe), so it may run once per test session.
    A framework of the main environment is always "ready" here; whether it
    imports is the runner's finding.
    """
    env = environment_of(framework, pyproject)
    if env is None:
        return None
    return env_unavailable(env, framework)


def env_unavailable(env: Environment, who: str | None = None) -> str | None:
    """None when ``env`` is made and up to date, else a one-line reason naming ``who`` uses it."""
    who = who or env.name
    how = f"create it with `{CREATE_COMMAND} {env.name}`"
    if not env.executable.exists():
        return f"{who} runs in its own environment {show_path(env.path)}, which does not exist: {how}"
    data = env.marker_data()
    if data is None:
        return f"{who}'s environment {show_path(env.path)} was not completed: {how}"
    python = str((data.get("versions") or {}).get("python", ""))
    if not python.startswith(env.python + ".") or not is_venv(env.path):
        return (f"{who}'s environment {show_path(env.path)} is not a Python {env.python} virtual "
                f"environment (its marker records Python {python or '?'}): {how} --recreate")
    if data.get("fingerprint") != env.fingerprint:
        return (f"{who}'s environment {show_path(env.path)} is out of date with pyproject.toml: "
                f"{how}")
    return None


def runtime_environments(pyproject: Path | None = None) -> dict:
    """The runtime environments for the runners (``HARNESS_RUNTIME_ENVS``, see :mod:`harness.runtimes._remote`):
    ``{name: {"python": interpreter, "unavailable": reason or None}}``."""
    return {e.name: {"python": str(e.executable), "unavailable": env_unavailable(e, ", ".join(e.runtimes))}
            for e in declared(pyproject).values() if e.runtimes}


def runner_environ(framework: str, base: dict | None = None) -> dict:
    """The process environment for ``framework``'s runner: the repository root on ``PYTHONPATH``."""
    env = dict(os.environ if base is None else base)
    if environment_of(framework) is not None:
        parts = [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def show_path(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# -- creation ------------------------------------------------------------------------------


def _version_of(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _pyenv_candidates(version: str) -> list[str]:
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    out = []
    for root in filter(None, roots):
        versions = Path(root) / "versions"
        if versions.is_dir():
            found = sorted(versions.glob(f"{version}.*"), key=lambda p: [int(x) for x in p.name.split(".")
                                                                         if x.isdigit()], reverse=True)
            out += [str(p / "bin" / "python") for p in found + [versions / version]]
    return out


def find_python(env: Environment) -> str:
    """An interpreter of ``env.python``: declared ones, this one, ``pythonX.Y`` on PATH, pyenv's, /usr."""
    want = env.python
    candidates = list(env.interpreters) + [sys.executable]
    candidates += [p for p in (shutil.which(f"python{want}"),) if p]
    candidates += _pyenv_candidates(want)
    candidates += [f"/usr/bin/python{want}", f"/usr/local/bin/python{want}"]
    tried = []
    for exe in dict.fromkeys(candidates):
        if not os.path.exists(exe):
            continue
        tried.append(exe)
        if _version_of(exe) == want:
            return exe
    raise EnvironmentSpecError(
        f"environment {env.name} needs Python {want} and none was found (tried: "
        f"{', '.join(tried) or 'nothing on this machine'}); install one, e.g. `pyenv install {want}`, "
        f"or declare its path in pyproject.toml under [tool.harness.environments.{env.name}] interpreters")


def tree_size(path: Path) -> int:
    """Bytes used by the files under ``path`` (symlinks not followed)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def free_gib(path: Path) -> float:
    """Free space, in GiB, on the file system that holds ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 2**30


def check_disk(env: Environment, free: Callable[[Path], float] = free_gib) -> None:
    """Refuse to start making ``env`` when the disk cannot hold it (declared ``disk_gib``).

    A half-installed multi-GB environment fills the disk that the rest of the
    run (tests, lint caches, results) needs, so it is refused before it starts.
    """
    if env.disk_gib <= 0:
        return
    have = free(env.path)
    if have < env.disk_gib:
        raise EnvironmentSpecError(
            f"needs about {env.disk_gib:g} GiB free to be made (pyproject.toml [tool.harness.environments."
            f"{env.name}] disk_gib), but the disk holding {show_path(env.path)} has {have:.1f} GiB free")


def _run(cmd: list[str], log: Callable[[str], None], prefix: str, **kw) -> None:
    log(f"{prefix}$ {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, **kw)
    tail = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-20:]
        if line.startswith(("Collecting", "Successfully", "ERROR", "error", "Downloading")) or \
                line.startswith(prefix.strip()):
            log(f"{prefix}{line}")
    if proc.wait() != 0:
        raise EnvironmentSpecError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n" + "\n".join(tail))


def _install(env: Environment, log: Callable[[str], None], prefix: str) -> None:
    """The venv (unless it exists) and the pinned requirements."""
    if not env.executable.exists():
        base = find_python(env)
        log(f"{prefix}creating a Python {env.python} environment in {show_path(env.path)} from {base}")
        _run([base, "-m", "venv", str(env.path)], log, prefix)
    pip = [str(env.executable), "-m", "pip", "install", "--progress-bar", "off",
           "--disable-pip-version-check"]
    log(f"{prefix}installing {len(env.requirements)} pinned requirements (large downloads: minutes)")
    _run(pip + list(env.requirements), log, prefix)
    if env.no_deps:
        _run(pip + ["--no-deps"] + list(env.no_deps), log, prefix)


def is_venv(path: Path) -> bool:
    """True when ``path`` is a virtual environment (``python -m venv`` writes ``pyvenv.cfg``)."""
    return (Path(path) / "pyvenv.cfg").is_file()


def check_existing(env: Environment) -> None:
    """Refuse to install into ``env.path`` unless it is a venv of the declared Python (or absent).

    pip run by a bare interpreter (a symlink, a copied ``bin/python``) installs
    into that interpreter's own site-packages; a venv of another version would
    be marked as the declared one. Neither is this harness's to change.
    """
    if not env.path.exists():
        return
    where = f"{show_path(env.path)} (pyproject.toml [tool.harness.environments.{env.name}] path)"
    if not is_venv(env.path):
        raise EnvironmentSpecError(f"{where} exists but is not a virtual environment (no pyvenv.cfg): nothing was "
                                f"installed; move it away, or declare another path")
    if env.executable.exists():
        have = _version_of(str(env.executable))
        if have != env.python:
            raise EnvironmentSpecError(f"{where} has Python {have or 'that does not run'}, but the declaration asks "
                                    f"for Python {env.python}: `{CREATE_COMMAND} {env.name} --recreate` makes it anew")


def create(env: Environment, log: Callable[[str], None] = print, recreate: bool = False) -> dict:
    """Make ``env`` (venv, pinned requirements, probe, marker) unless it is up to date.

    Returns the marker's data: versions the probe found, ``seconds`` it took,
    ``size_bytes`` on disk. Raises :class:`EnvironmentSpecError` with the cause.
    A failed install removes only an environment this call started; a working
    one that an update failed on is kept as it was, marker included.
    """
    prefix = f"[{env.name}] "
    if recreate and env.path.exists():
        if not is_venv(env.path):
            raise EnvironmentSpecError(f"{show_path(env.path)} is not a virtual environment (no pyvenv.cfg): "
                                    f"--recreate removes only environments, so it was left as it is")
        log(f"{prefix}removing {show_path(env.path)}")
        shutil.rmtree(env.path)
    data = env.marker_data()
    if data and data.get("fingerprint") == env.fingerprint and env.executable.exists() and is_venv(env.path):
        log(f"{prefix}up to date ({show_path(env.path)}, {data.get('size_bytes', 0) / 2**30:.2f} GiB)")
        return data
    t0 = time.monotonic()
    check_existing(env)
    check_disk(env)
    fresh = not env.path.exists()
    try:
        _install(env, log, prefix)
    except (EnvironmentSpecError, OSError):
        if fresh and env.path.exists():
            log(f"{prefix}removing the unfinished {show_path(env.path)} to give its disk space back")
            shutil.rmtree(env.path, ignore_errors=True)
        elif not fresh:
            log(f"{prefix}the update failed; {show_path(env.path)} is kept as it was")
        raise
    if env.frameworks:
        log(f"{prefix}probing: the runner side of the harness and the adapters of {', '.join(env.frameworks)}")
        args, environ = list(env.frameworks), runner_environ(env.frameworks[0])
    else:
        log(f"{prefix}probing: the runtime server and the libraries of {', '.join(env.runtimes)}")
        args, environ = ["--runtimes", *env.runtimes], {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = subprocess.run([str(env.executable), "-m", "harness.isolation.envprobe", *args],
                           cwd=ROOT, env=environ, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=600)
    if probe.returncode != 0:
        raise EnvironmentSpecError(f"the probe failed in {show_path(env.path)}:\n{probe.stderr[-3000:]}")
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    if not str(found.get("python", "")).startswith(env.python + "."):
        raise EnvironmentSpecError(f"{show_path(env.path)} runs Python {found.get('python')}, not the declared "
                                f"{env.python}; no marker written")
    data = {"name": env.name, "fingerprint": env.fingerprint, "python": env.python,
            "versions": found, "seconds": round(time.monotonic() - t0, 1),
            "size_bytes": tree_size(env.path)}
    write_atomic(env.marker, json.dumps(data, indent=2, sort_keys=True) + "\n")  # replaces the old one
    log(f"{prefix}ready in {data['seconds']:.0f} s, {data['size_bytes'] / 2**30:.2f} GiB: "
        + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
    return data
