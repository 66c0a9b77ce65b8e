"""The CI workflows: schema and security audit, pins, the commands they call, and their jobs run locally."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.__main__ import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = [WORKFLOWS / "nightly.yml", WORKFLOWS / "pr.yml"]
FAKE = ROOT / "tests" / "data" / "fake.yaml"
BROKEN = ROOT / "tests" / "data" / "broken.yaml"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    """A linter installed with the project (pyproject.toml's dependencies: .ci/run installs them)."""
    local = BIN / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e . (it is one of the project's pinned dependencies)"
    return found


def _workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def _runs(doc: dict, job: str | None = None) -> list[dict]:
    jobs = [doc["jobs"][job]] if job else doc["jobs"].values()
    return [s for j in jobs for s in j.get("steps", []) if "run" in s]


def test_workflows_pass_the_github_workflow_schema():
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, FILES)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions",
                           str(ROOT / ".github" / "actions" / "baseline" / "action.yml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_at_medium_or_above():
    """Offline audit: unpinned actions, persisted checkout credentials, template injection, permissions."""
    proc = subprocess.run([_tool("zizmor"), "--offline", "--min-severity", "medium", "--format", "json", ".github/"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    findings = json.loads(proc.stdout or "[]")
    assert proc.returncode == 0 and findings == [], [
        (f["ident"], f["locations"][0]["symbolic"]["key"]) for f in findings] or proc.stderr


_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _uses(path: Path) -> list[tuple[str, str]]:
    """(uses, the comment after it) of every step of ``path``, read from the text (YAML drops comments)."""
    return re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(?:#\s*(.*))?$", path.read_text(), re.M)


def test_every_action_is_pinned_by_commit_with_its_tag_and_no_checkout_keeps_credentials():
    files = [*FILES, ROOT / ".github" / "actions" / "baseline" / "action.yml"]
    seen = 0
    for path in files:
        for uses, comment in _uses(path):
            if uses.startswith("./"):
                continue
            seen += 1
            assert _PINNED.match(uses), f"{path.name}: {uses} is not pinned by a full commit SHA"
            assert re.fullmatch(r"v\d+\.\d+\.\d+", comment.strip()), f"{path.name}: {uses} lacks its tag comment"
    assert seen >= 10
    for path in FILES:
        doc = _workflow(path.name)
        assert doc["permissions"] in ({}, {"contents": "read"}), path.name  # least privilege by default
        for name, job in doc["jobs"].items():
            for step in job["steps"]:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}: {name}"
            granted = job.get("permissions", doc["permissions"])
            assert set(granted.values()) <= {"read"}, f"{path.name}: {name} may write: {granted}"


def test_workflows_call_registered_commands_and_known_options():
    """Every `python -m harness X` is a registered command; every pytest option exists."""
    help_text = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120).stdout
    seen_harness, seen_pytest = set(), 0
    for path in FILES:
        for step in _runs(_workflow(path.name)):
            text = " ".join(step["run"].split())
            for cmd in re.findall(r"python -m harness ([a-z-]+)", text):
                assert cmd in COMMANDS, f"{path.name}: unknown harness command {cmd!r}"
                seen_harness.add(cmd)
            if "python -m pytest" in text:
                seen_pytest += 1
                for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text.split("python -m pytest", 1)[1]):
                    assert re.search(rf"(^|\s){re.escape(opt)}[\s=,]", help_text, re.M), \
                        f"{path.name}: pytest knows no option {opt}"
    # pytest lines: shard, models, gpu, the gpu job's TensorRT line, explore
    assert seen_harness == {"merge", "report", "diff", "envs", "tally"} and seen_pytest == 5


def test_nightly_shape():
    doc = _workflow("nightly.yml")
    assert {"schedule", "workflow_dispatch"} <= set(doc["on"])
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"gpu", "explore"}
    jobs = doc["jobs"]
    assert jobs["shard"]["env"]["SHARD_INDEX"] == "${{ matrix.shard }}"
    assert "gpu" in jobs["gpu"]["runs-on"] and "inputs.gpu" in jobs["gpu"]["if"]
    assert "--devices cuda:0" in _runs(doc, "gpu")[-1]["run"]
    assert jobs["merge"]["needs"] == ["shard", "gpu"]
    uses = [s.get("uses", "").split("@")[0] for s in jobs["explore"]["steps"]]
    assert "actions/cache/restore" in uses and "actions/cache/save" in uses
    assert "--explore-profile nightly" in " ".join(_runs(doc, "explore")[-1]["run"].split())
    pr = _workflow("pr.yml")
    assert _runs(pr)[-1]["run"] == "bash .ci/run"
    # every framework: both interpreters, the extra environments (cached on their declarations), required
    for job in ("shard", "merge"):
        steps = jobs[job]["steps"]
        py = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
        assert py["with"]["python-version"].split() == ["3.10", "3.11"], job
        assert any(s.get("run") == "python -m harness envs create" for s in steps), job
        cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
        assert cache["with"]["path"] == ".envs" and "steps.envs.outputs.key" in cache["with"]["key"], job
    assert "--require-frameworks all" in " ".join(_runs(doc, "shard")[-2]["run"].split())
    assert "--forms derived" in " ".join(_runs(doc, "shard")[-2]["run"].split())  # the derived forms nightly
    assert any("harness tally" in s["run"] for s in _runs(doc, "shard"))
    assert any("harness tally merged.jsonl --fail-on-missing" in s["run"] for s in _runs(doc, "merge"))
    assert py_versions(pr["jobs"]["test"]["steps"]) == ["3.10", "3.11"]
    # the nightly runs the whole-model suite, every framework required, in a job of its own whose
    # artifact the merge job does not join with the shards (it downloads results-*)
    models = " ".join(next(s["run"] for s in _runs(doc, "models") if "python -m pytest" in s["run"]).split())
    assert "--suite models" in models and "--require-frameworks all" in models
    assert any(s.get("run") == "python -m harness envs create" for s in jobs["models"]["steps"])
    assert any("--cases-dir cases/models --fail-on-missing" in s["run"] for s in _runs(doc, "models"))
    names = [s["with"]["name"] for s in jobs["models"]["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert names and not any(n.startswith("results-") for n in names)


def py_versions(steps: list[dict]) -> list[str]:
    py = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    return str(py["with"]["python-version"]).split()


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHARD_", "CI_NODE_", "JOB_COMPLETION"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `python` is this interpreter
    env["PYTHONPATH"] = str(ROOT)
    return env


def _run_shards(tmp_path: Path, n: int = 3) -> Path:
    """The shard job's pytest command on the fake matrix, shard K of n from SHARD_INDEX/SHARD_TOTAL."""
    shards = tmp_path / "shards"
    for k in range(1, n + 1):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly", "-q", "--shard-id", "auto",
             "--matrix", str(FAKE), "-k", "not hangs", "--results", str(shards / f"shard-{k}.jsonl"),
             "--no-report", "--repro-dir", ""],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={**_env(), "SHARD_INDEX": str(k), "SHARD_TOTAL": str(n)})
        assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    return shards


def _merge_job(tmp_path: Path, matrices: tuple[Path, ...] = (FAKE,)) -> list[tuple[str, int, str]]:
    """Run the merge job's harness steps in order, as the runner would; (step, exit code, output).

    The environments' steps are left out (tested on their own); ``tally`` lists the frameworks of
    ``matrices`` (the merged records are the fake matrix's, not the repository's).
    """
    summary = tmp_path / "summary.md"
    cases = tmp_path / "cases"
    cases.mkdir(exist_ok=True)
    for m in matrices:
        shutil.copy(m, cases / m.name)
    out = []
    for step in _runs(_workflow("nightly.yml"), "merge"):
        if not step["run"].startswith("python -m harness") or step["run"].startswith("python -m harness envs"):
            continue
        run = step["run"].replace("harness tally ", f"harness tally --cases-dir {cases} ")
        mine = tmp_path / f"summary-{len(out)}.md"  # each step has a summary file of its own, as on GitHub
        mine.unlink(missing_ok=True)
        proc = subprocess.run(["bash", "-c", run], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env={**_env(), "GITHUB_STEP_SUMMARY": str(mine)})
        with open(summary, "a" if out else "w") as f:
            f.write(mine.read_text() if mine.exists() else "")
        out.append((step.get("name", step["run"]), proc.returncode, proc.stdout + proc.stderr))
        if proc.returncode:
            break
    return out


def test_merge_report_diff_on_three_shards_exits_1_on_a_regression(tmp_path):
    shards = _run_shards(tmp_path)
    files = sorted(shards.rglob("*.jsonl"))
    assert len(files) == 3 and all(f.read_text() for f in files)
    per_shard = [{json.loads(line)["id"] for line in f.read_text().splitlines()} for f in files]
    assert not set.intersection(*per_shard)  # a partition, not copies

    # last night: the same records, except that wrong_values passed then
    (tmp_path / "baseline").mkdir()
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    regressed = sorted(r["id"] for r in records if r["kernel"] == "relu" and r["variant"] == "wrong_values")
    assert regressed
    base = [{**r, "status": "pass", "message": ""} if r["id"] in regressed else r for r in records]
    (tmp_path / "baseline" / "merged.jsonl").write_text("".join(json.dumps(r) + "\n" for r in base))

    steps = _merge_job(tmp_path)
    assert [rc for _, rc, _ in steps] == [0, 0, 0, 1], steps
    merged = (tmp_path / "merged.jsonl").read_text().splitlines()
    assert len(merged) == len(records) == sum(map(len, per_shard))
    assert (tmp_path / "reports" / "support.md").exists()
    summary = (tmp_path / "summary.md").read_text()
    assert all(i in summary for i in regressed), summary
    assert f"| fake | {len(records)} |" in summary  # the cases per framework

    # a night like the last one: the diff passes
    (tmp_path / "baseline" / "merged.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [rc for _, rc, _ in _merge_job(tmp_path)] == [0, 0, 0, 0]

    # a framework of the matrices without a single record fails the night, and the summary says which
    steps = _merge_job(tmp_path, (FAKE, BROKEN))
    assert [rc for _, rc, _ in steps] == [0, 1], steps
    assert "**brokenfw: no record: none of its cases ran.**" in (tmp_path / "summary.md").read_text()


def _shard_step(name_part: str) -> str:
    return next(s["run"] for s in _runs(_workflow("nightly.yml"), "shard") if name_part in s["run"])


@pytest.mark.slow
def test_the_shard_job_creates_every_environment():
    """Its environment steps, run as the runner runs them (seconds where .envs is up to date)."""
    from harness.isolation import environments

    key = subprocess.run(["bash", "-c", "GITHUB_OUTPUT=/dev/stdout; " + _shard_step("harness envs key")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=_env())
    assert key.returncode == 0 and re.fullmatch(r"key=[0-9a-f]{32}\n", key.stdout), key.stdout + key.stderr
    proc = subprocess.run(["bash", "-c", _shard_step("harness envs create")], cwd=ROOT, capture_output=True,
                          text=True, timeout=3600, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    environments.declared.cache_clear()
    for env in environments.declared().values():
        for fw in env.frameworks:
            assert environments.unavailable(fw) is None, fw


@pytest.mark.parametrize("ci", ["true", None])
def test_the_shard_run_fails_when_a_framework_is_missing(tmp_path, ci):
    """The shard job's pytest line, on the fake matrix whose framework's environment is missing.

    The line asks --require-frameworks all itself, so it fails with or without CI=true: exit 6 and
    one line naming the framework and the command that makes its environment, before any case.
    """
    env = {**_env(), "SHARD_INDEX": "1", "SHARD_TOTAL": "4", "HARNESS_MISSING_ENV_DIR": str(tmp_path),
           "PYTEST_ADDOPTS": f"--matrix {FAKE} -p tests.missing_env -p no:randomly"}
    env.pop("CI", None)
    if ci:
        env["CI"] = ci
    proc = subprocess.run(["bash", "-c", _shard_step("python -m pytest")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**env, "DURATIONS": ""})
    out = proc.stdout + proc.stderr
    lines = [ln for ln in out.splitlines() if "--require-frameworks:" in ln]
    assert proc.returncode == 6 and len(lines) == 1, out[-3000:]
    assert "every fake case would be skipped" in lines[0] and "python -m harness envs create fake-env" in lines[0]
    assert not (ROOT / "results" / "shard-1.jsonl").exists()
