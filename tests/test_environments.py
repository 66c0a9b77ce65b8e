"""Extra environments: declaration, readiness checks, the ``envs`` command, the runner-side closure.

The checks that need a made environment (``python -m harness envs create``)
skip with that command when it is absent; everything else runs anywhere.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.isolation import environments

ROOT = Path(__file__).resolve().parent.parent

#: Where the runner side starts: the runner, the probe, the adapters and builders of the extra environments.
ENTRY_POINTS = ("core/runner", "isolation/envprobe", "frameworks/tensorflow", "frameworks/oneflow",
                "builders/tensorflow_ops", "builders/tensorflow_models",
                "builders/oneflow_ops", "builders/oneflow_models")


def _harness_imports(path: Path) -> set[Path]:
    """The harness modules that ``path`` imports (relative or ``harness.`` imports, any depth)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = path.parent
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg
            for _ in range(node.level - 1):
                base = base.parent
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "harness":
            base = ROOT
        elif isinstance(node, ast.Import):
            out.update(ROOT.joinpath(*a.name.split(".")) for a in node.names if a.name.split(".")[0] == "harness")
            continue
        else:
            continue
        stem = base.joinpath(*node.module.split(".")) if node.module else base
        out.add(stem)
        out.update(stem / a.name for a in node.names)
    found = set()
    for stem in out:
        for cand in (stem.with_suffix(".py"), stem / "__init__.py"):
            if cand.is_file():
                found.add(cand)
    return found


def _runner_closure() -> list[str]:
    todo = [ROOT / "harness" / f"{m}.py" for m in ENTRY_POINTS]
    seen: set[Path] = set()
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += _harness_imports(p)
    return sorted(str(p.relative_to(ROOT / "harness")) for p in seen)


RUNNER_SIDE = _runner_closure()


def _pyproject(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "pyproject.toml"
    p.write_text(body, encoding="utf-8")
    environments.declared.cache_clear()
    return p


_ONE = """
[tool.harness.environments.demo]
frameworks = ["demofw"]
python = "3.11"
path = ".envs/demo"
requirements = ["numpy==2.4.6"]
"""


def test_the_repository_declares_tensorflow_on_311_and_oneflow_on_310_with_pinned_requirements():
    envs = environments.declared()
    assert envs["tensorflow"].python == "3.11" and envs["tensorflow"].frameworks == ("tensorflow",)
    assert envs["oneflow"].python == "3.10" and envs["oneflow"].frameworks == ("oneflow",)
    for env in envs.values():
        assert all("==" in r for r in env.requirements), env.requirements
        # the point of a separate environment: no other framework beside it
        assert not any(r.split("==")[0] in ("paddlepaddle", "torch") for r in env.requirements)


def test_main_environment_frameworks_run_with_this_interpreter():
    for fw in ("paddle", "torch"):
        assert environments.interpreter(fw) == sys.executable
        assert environments.unavailable(fw) is None
    assert environments.interpreter("tensorflow") == str(ROOT / ".envs" / "tensorflow" / "bin" / "python")


def test_missing_environment_is_a_reason_naming_the_command(tmp_path):
    p = _pyproject(tmp_path, _ONE)
    reason = environments.unavailable("demofw", p)
    assert reason is not None and "`python -m harness envs create demo`" in reason
    assert "\n" not in reason


def _fake_venv(env, marker: dict | None = None) -> None:
    """A venv-shaped folder whose bin/python is this interpreter (Python 3.11), and its marker."""
    env.executable.parent.mkdir(parents=True)
    env.executable.symlink_to(sys.executable)
    (env.path / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n", encoding="utf-8")
    if marker is not None:
        env.marker.write_text(json.dumps(marker), encoding="utf-8")


def _marker(env, **kw) -> dict:
    return {"fingerprint": env.fingerprint, "versions": {"python": "%d.%d.%d" % sys.version_info[:3]}, **kw}


def test_ready_only_with_interpreter_and_matching_marker(tmp_path):
    p = _pyproject(tmp_path, _ONE)
    env = environments.declared(p)["demo"]
    _fake_venv(env)
    assert "was not completed" in environments.unavailable("demofw", p)
    env.marker.write_text(json.dumps({**_marker(env), "fingerprint": "stale"}), encoding="utf-8")
    assert "out of date" in environments.unavailable("demofw", p)
    env.marker.write_text(json.dumps(_marker(env)), encoding="utf-8")
    assert environments.unavailable("demofw", p) is None
    assert environments.interpreter("demofw", p) == str(env.executable)


def test_changed_pin_changes_the_fingerprint(tmp_path):
    a = environments.declared(_pyproject(tmp_path, _ONE))["demo"].fingerprint
    b = environments.declared(_pyproject(tmp_path, _ONE.replace("2.4.6", "2.4.5")))["demo"].fingerprint
    assert a != b


def test_declaration_missing_a_key_is_refused(tmp_path):
    p = _pyproject(tmp_path, _ONE.replace('python = "3.11"\n', ""))
    with pytest.raises(environments.EnvironmentSpecError, match="missing key 'python'"):
        environments.declared(p)


def test_no_interpreter_of_the_version_is_a_clear_error(tmp_path):
    env = environments.declared(_pyproject(tmp_path, _ONE.replace('"3.11"', '"2.1"')))["demo"]
    with pytest.raises(environments.EnvironmentSpecError, match=r"needs Python 2\.1 .*pyenv install 2\.1"):
        environments.find_python(env)


def test_create_is_idempotent_when_the_marker_matches(tmp_path):
    env = environments.declared(_pyproject(tmp_path, _ONE))["demo"]
    _fake_venv(env, _marker(env, size_bytes=0))
    lines: list[str] = []
    environments.create(env, log=lines.append)
    assert lines == ["[demo] up to date (" + str(env.path) + ", 0.00 GiB)"]


def test_too_little_disk_refuses_before_anything_is_made(tmp_path):
    env = environments.declared(_pyproject(tmp_path, _ONE + "disk_gib = 4\n"))["demo"]
    assert env.disk_gib == 4.0
    environments.check_disk(env, free=lambda path: 4.5)
    with pytest.raises(environments.EnvironmentSpecError,
                       match=r"needs about 4 GiB free .*disk_gib\), but the disk holding .* has 1\.5 GiB free"):
        environments.check_disk(env, free=lambda path: 1.5)


def test_undeclared_disk_need_is_not_checked(tmp_path):
    env = environments.declared(_pyproject(tmp_path, _ONE))["demo"]
    assert env.disk_gib == 0.0
    environments.check_disk(env, free=lambda path: 0.0)


def test_free_gib_looks_at_the_nearest_existing_parent(tmp_path):
    import shutil

    expected = shutil.disk_usage(tmp_path).free / 2**30
    got = environments.free_gib(tmp_path / "not" / "made" / "yet")
    assert abs(got - expected) < 0.5, (got, expected)  # the same disk, read a moment apart


def test_failed_install_removes_the_unfinished_environment(tmp_path, monkeypatch):
    env = environments.declared(_pyproject(tmp_path, _ONE))["demo"]

    def half_install(env_, log, prefix):
        env_.executable.parent.mkdir(parents=True)
        (env_.path / "big-partial-wheel").write_bytes(b"x" * 1024)
        raise environments.EnvironmentSpecError("pip exited 1: No space left on device")

    monkeypatch.setattr(environments, "_install", half_install)
    lines: list[str] = []
    with pytest.raises(environments.EnvironmentSpecError, match="No space left"):
        environments.create(env, log=lines.append)
    assert not env.path.exists()
    assert lines[-1] == f"[demo] removing the unfinished {env.path} to give its disk space back"


def test_a_failed_update_keeps_the_working_environment(tmp_path, monkeypatch):
    """Only an environment this call started is removed; one that an update failed on stays, marker too."""
    p = _pyproject(tmp_path, _ONE)
    env = environments.declared(p)["demo"]
    _fake_venv(env, {**_marker(env), "fingerprint": "an older declaration"})
    (env.path / "lib-in-use").write_text("installed packages")

    def failing_update(env_, log, prefix):
        raise environments.EnvironmentSpecError("pip exited 1: Could not find a version that satisfies numpy==9")

    monkeypatch.setattr(environments, "_install", failing_update)
    lines: list[str] = []
    with pytest.raises(environments.EnvironmentSpecError, match="numpy==9"):
        environments.create(env, log=lines.append)
    assert (env.path / "lib-in-use").read_text() == "installed packages" and env.executable.exists()
    assert env.marker_data()["fingerprint"] == "an older declaration"
    assert lines[-1] == f"[demo] the update failed; {env.path} is kept as it was"


def test_a_folder_that_is_not_a_venv_is_never_installed_into(tmp_path, monkeypatch):
    """A bare interpreter symlink at bin/python: pip would install into that interpreter's own packages."""
    p = _pyproject(tmp_path, _ONE)
    env = environments.declared(p)["demo"]
    env.executable.parent.mkdir(parents=True)
    env.executable.symlink_to(sys.executable)
    monkeypatch.setattr(environments, "_run", lambda *a, **k: pytest.fail("nothing may be run"))
    with pytest.raises(environments.EnvironmentSpecError, match=r"exists but is not a virtual environment \(no "
                                                            r"pyvenv.cfg\): nothing was installed"):
        environments.create(env, log=lambda line: None)
    with pytest.raises(environments.EnvironmentSpecError, match="--recreate removes only environments"):
        environments.create(env, log=lambda line: None, recreate=True)
    assert env.executable.is_symlink()  # left as it was
    env.marker.write_text(json.dumps(_marker(env)), encoding="utf-8")
    assert "is not a Python 3.11 virtual environment" in environments.unavailable("demofw", p)


def test_an_interpreter_of_another_version_is_refused_and_never_marked(tmp_path, monkeypatch):
    """Declared 3.12, bin/python is 3.11: neither installed into nor marked as 3.12."""
    p = _pyproject(tmp_path, _ONE.replace('"3.11"', '"3.12"'))
    env = environments.declared(p)["demo"]
    _fake_venv(env)
    monkeypatch.setattr(environments, "_run", lambda *a, **k: pytest.fail("nothing may be run"))
    with pytest.raises(environments.EnvironmentSpecError, match=r"has Python 3\.11, but the declaration asks for "
                                                            r"Python 3\.12: .*--recreate"):
        environments.create(env, log=lambda line: None)
    assert not env.marker.exists()
    env.marker.write_text(json.dumps(_marker(env)), encoding="utf-8")  # a marker written by the old code
    assert "is not a Python 3.12 virtual environment (its marker records Python 3.11" in \
        environments.unavailable("demofw", p)


def test_the_cache_key_follows_the_declarations_not_their_layout(tmp_path):
    a = environments.tables_key(_pyproject(tmp_path, _ONE))
    assert a == environments.tables_key(_pyproject(tmp_path, "# a comment\n" + _ONE.replace(" = ", "=")))
    assert a != environments.tables_key(_pyproject(tmp_path, _ONE.replace("2.4.6", "2.4.5")))
    out = subprocess.run([sys.executable, "-m", "harness", "envs", "key"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == environments.tables_key()
    assert len(out.stdout.strip()) == 32


def test_envs_command_lists_and_refuses_unknown_names():
    run = [sys.executable, "-m", "harness", "envs"]
    out = subprocess.run(run + ["list"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "tensorflow: Python 3.11" in out.stdout and "oneflow: Python 3.10" in out.stdout
    bad = subprocess.run(run + ["create", "nosuch"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown environment 'nosuch'" in bad.stderr


def test_runner_environ_puts_the_repository_first_on_pythonpath():
    env = environments.runner_environ("tensorflow", {"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]
    assert "PYTHONPATH" not in environments.runner_environ("paddle", {})


@pytest.mark.parametrize("module", RUNNER_SIDE)
def test_runner_side_parses_as_python_310_and_needs_no_311_stdlib(module):
    path = ROOT / "harness" / module
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"tomllib", "yaml", "jsonschema", "jinja2"}, f"{module} imports {imported}"


def _ready(name: str) -> environments.Environment:
    environments.declared.cache_clear()
    env = environments.declared()[name]
    reason = environments.unavailable(env.frameworks[0])
    if reason:
        pytest.skip(reason)
    return env


def _probe(env, *args) -> dict:
    out = subprocess.run([str(env.executable), "-m", "harness.isolation.envprobe", *args], cwd=ROOT,
                         env=environments.runner_environ(env.frameworks[0]), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tensorflow_runner_side_holds_tensorflow_alone():
    """``import tensorflow, paddle`` dies with SIGSEGV: the TensorFlow runner can never hold paddle.

    Its interpreter imports the runner side and the adapter with tensorflow
    loaded and neither paddle nor torch imported; neither is even installed there.
    """
    mods = _probe(_ready("tensorflow"), "--modules", "tensorflow")
    assert mods["imported"] == ["tensorflow"]
    assert "paddle" not in mods["importable"] and "torch" not in mods["importable"]


def test_oneflow_runner_master_does_not_import_oneflow():
    """An nn.Graph compiled in a process forked after ``import oneflow`` hangs: the master must not import it."""
    mods = _probe(_ready("oneflow"), "--modules", "oneflow")
    assert mods["imported"] == []
    assert "paddle" not in mods["importable"] and "torch" not in mods["importable"]


def test_oneflow_environment_runs_the_runner_side_on_python_310():
    found = _probe(_ready("oneflow"), "oneflow")
    assert found["python"].startswith("3.10.") and found["oneflow"] == "0.9.0"
    assert int(found["cuda_libraries_preloaded"]) > 0  # from the env's nvidia wheels, no LD_LIBRARY_PATH


def test_envs_create_makes_two_at_once_and_reports_each_failure(monkeypatch, capsys):
    """``envs create`` makes the environments two at a time (``--jobs``); one that fails does not stop
    the other, and the exit code is 1 naming it."""
    import threading
    import time
    from types import SimpleNamespace

    from harness.__main__ import main

    envs = {n: SimpleNamespace(name=n) for n in ("one", "two", "three")}
    running, peak, lock = [0], [0], threading.Lock()

    def fake_create(env, log=print, recreate=False):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        if env.name == "two":
            raise environments.EnvironmentSpecError("no interpreter")
        log(f"[{env.name}] ready")
        return {}

    monkeypatch.setattr(environments, "declared", lambda *a, **k: envs)
    monkeypatch.setattr(environments, "create", fake_create)
    assert main(["envs", "create"]) == 1
    out, err = capsys.readouterr()
    assert peak[0] == 2 and "[one] ready" in out and "[three] ready" in out
    assert "[two] FAILED: no interpreter" in err and "not ready: two" in err
    peak[0] = 0
    assert main(["envs", "create", "one", "three", "--jobs", "1"]) == 0
    assert peak[0] == 1
    with pytest.raises(SystemExit) as exc:
        main(["envs", "create", "--jobs", "0"])
    assert exc.value.code == 2 and "--jobs: '0': give a whole number, 1 or more" in capsys.readouterr().err
