"""Every status of the taxonomy, each produced by a small fake exporter or runtime."""

import json
from pathlib import Path

import pytest
from dataclasses import replace

from harness.core import record, status
from harness.isolation.processes import SessionClient
from harness.spec.matrix import Scope, load_all

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "data" / "fake.yaml"

EXPECTED = {
    "good": status.PASS,
    "wrong_values": status.MISMATCH,
    "wrong_attribute": status.MISMATCH,
    "raises_opset": status.OPSET_NOT_HONORED,
    "checker_rejects": status.INVALID_MODEL,
    "shape": status.SHAPE_MISMATCH,
    "dtype": status.DTYPE_MISMATCH,
    "ort_unsupported": status.RUNTIME_UNSUPPORTED,
    "runtime_error": status.RUNTIME_ERROR,
    "raises": status.EXPORT_ERROR,
    "aborts": status.CRASH,
    "hangs": status.TIMEOUT,
    "no_file": status.EXPORT_ERROR,
    "reference_raises": status.EXPORT_ERROR,
    "constant_reference": status.HARNESS_ERROR,
    "skipped": status.SKIPPED,
}

#: variant -> blame on the default runtime (ORT): the reference evaluator's second opinion decides
BLAME = {
    "wrong_values": status.BLAME_EXPORTER,  # Abs for Relu: ORT and the reference evaluator agree
    "wrong_attribute": status.BLAME_EXPORTER,  # LeakyRelu alpha 0.3 for Relu
    "raises_opset": status.BLAME_EXPORTER,
    "checker_rejects": status.BLAME_EXPORTER,
    "shape": status.BLAME_EXPORTER,
    "dtype": status.BLAME_EXPORTER,
    "ort_unsupported": status.BLAME_UNDETERMINED,  # the reference evaluator lacks the op too
    "runtime_error": status.BLAME_UNDETERMINED,  # the reference evaluator fails on the Reshape too
}

#: (variant, runtime, pass) -> (status, blame): the axes added through the runtime and pass extension points
BACKENDS = {
    ("good", "fake-wrong-relu", "none"): (status.MISMATCH, status.BLAME_RUNTIME),
    ("wrong_values", "fake-wrong-relu", "none"): (status.MISMATCH, status.BLAME_EXPORTER),
    ("wrong_attribute", "fake-wrong-relu", "none"): (status.MISMATCH, status.BLAME_EXPORTER),
    ("ort_unsupported", "fake-wrong-relu", "none"): (status.RUNTIME_UNSUPPORTED, status.BLAME_UNDETERMINED),
    ("good", "reference", "none"): (status.PASS, None),
    # the reference evaluator under test: ORT (and OpenVINO, where installed) run the same model and agree
    ("wrong_attribute", "reference", "none"): (status.MISMATCH, status.BLAME_EXPORTER),
    ("good", "ort", "fake-raises"): (status.PASS_ERROR, status.BLAME_PASS),
    ("good", "ort", "fake-breaks"): (status.PASS_INVALID_MODEL, status.BLAME_PASS),
    # Relu -> Identity: the inputs have negatives; the exported model itself passes
    ("good", "ort", "fake-drop-node"): (status.PASS_CHANGED_RESULT, status.BLAME_PASS),
    # the exporter did not honor the opset: that verdict comes first, whatever the pass did
    ("raises_opset", "ort", "fake-drop-node"): (status.OPSET_NOT_HONORED, status.BLAME_EXPORTER),
    # Abs -> Identity: both fail, so the failure is the exporter's, not the pass's
    ("wrong_values", "ort", "fake-drop-node"): (status.MISMATCH, status.BLAME_EXPORTER),
}


def fake_cases():
    m = load_all([FAKE], ROOT / "cases" / "tolerances.yaml", Scope(opsets="declared"))
    return {c.variant: c for c in m.cases if c.opset == 13}, m


def test_every_status_is_covered_by_a_fake():
    assert set(EXPECTED.values()) | {st for st, _ in BACKENDS.values()} == set(status.ALL)
    assert set(BLAME.values()) | {b for _, b in BACKENDS.values()} == set(status.BLAMES) | {None}


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    _, m = fake_cases()
    ex = SessionClient(timeout=4, plugins=m.plugins, workdir=str(tmp_path_factory.mktemp("ex")),
                  frameworks=("fake",))
    yield ex
    ex.close()


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_fake_status(executor, variant):
    cases, _ = fake_cases()
    rec = executor.run(cases[variant])
    assert rec["status"] == EXPECTED[variant], rec
    if variant == "aborts":
        assert "SIGABRT" in rec["message"]
    if variant == "wrong_values":
        assert rec["max_abs"] > 0 and rec["op_types"] == ["Abs"]
    if variant == "good":
        assert rec["max_abs"] == 0 and rec["model_opset"] == 13 and rec["provider"] == "CPUExecutionProvider"
    assert rec["blame"] == BLAME.get(variant), rec
    assert bool(rec["blame_why"]) == (variant in BLAME), rec


@pytest.mark.parametrize("variant,runtime,post_pass", sorted(BACKENDS))
def test_fake_runtime_and_pass(executor, variant, runtime, post_pass):
    """A runtime and passes added as modules behind the extension points run end to end in the runner."""
    cases, _ = fake_cases()
    case = replace(cases[variant], runtime=runtime, post_pass=post_pass)
    rec = executor.run(case)
    expected, blamed = BACKENDS[(variant, runtime, post_pass)]
    assert rec["status"] == expected, rec
    assert rec["blame"] == blamed, rec
    assert rec["runtime"] == runtime and rec["post_pass"] == post_pass
    assert case.id.endswith("-cpu" + ("" if runtime == "ort" else f"-{runtime}")
                            + ("" if post_pass == "none" else f"-{post_pass}"))
    if runtime != "ort" and expected == status.MISMATCH:
        assert rec["provider"] == ("onnx.reference" if runtime == "reference" else "fake-reference")
    if post_pass == "fake-raises":
        assert "fake-raises raised: RuntimeError: fake pass refuses" in rec["message"]
    if expected == status.PASS_CHANGED_RESULT:
        assert rec["pass_status"] == status.MISMATCH and "fake-drop-node changed the result" in rec["message"]


def test_export_once_per_runtime_and_pass(executor):
    """Every runtime and pass of a case reuses the model exported for (model, exporter, opset)."""
    _, m = fake_cases()
    base = next(c for c in m.cases if c.variant == "wrong_attribute" and c.opset == 14)  # run nowhere else
    first = executor.run(replace(base, runtime="reference"))
    recs = [executor.run(replace(base, runtime=r, post_pass=p))
            for r, p in (("ort", "none"), ("fake-wrong-relu", "none"), ("ort", "fake-drop-node"))]
    assert "export_reused" not in first
    assert all(r["export_reused"] and r["export_s"] == first["export_s"] for r in recs), recs


def test_runner_survives_a_crash(executor):
    cases, _ = fake_cases()
    assert executor.run(cases["aborts"])["status"] == status.CRASH
    assert executor.run(cases["good"])["status"] == status.PASS


@pytest.mark.parametrize("workers", ["0", "2"])
def test_whole_run_keeps_every_record(tmp_path, workers, run_conformance, fake_matrix):
    """A run with crashing, hanging and failing cases records each case exactly once."""
    results = tmp_path / "r.jsonl"
    run = run_conformance("--matrix", FAKE, "-n", workers, "--results", results, "--no-report",
                          "--case-timeout", "4", "-q")
    assert run.ret == pytest.ExitCode.TESTS_FAILED, run.stdout.str()[-3000:]
    n_skipped = sum(1 for c in fake_matrix.cases if c.skip)
    n_pass = sum(1 for c in fake_matrix.cases if EXPECTED[c.variant] == status.PASS)
    run.assert_outcomes(passed=n_pass, skipped=n_skipped, failed=len(fake_matrix.cases) - n_pass - n_skipped)
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["id"] for r in recs) == sorted(c.id for c in fake_matrix.cases)
    for r in recs:
        assert r["status"] == EXPECTED[r["variant"]], r
        assert record.unknown_fields(r) == [], "add new record fields to harness/core/record.py's catalogue"
    run.stdout.fnmatch_lines(["*per status:*"])


def _outcomes(results: Path, junit: Path) -> tuple[dict, dict]:
    """Per case id: (status, outcome, expected statuses) from the records, and the junit result."""
    import xml.etree.ElementTree as ET

    recs = {}
    for line in results.read_text().splitlines():
        r = json.loads(line)
        recs[r["id"]] = (r["status"], r["outcome"], tuple((r.get("expected") or {}).get("status", ())))
    cases = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        kinds = sorted(child.tag + ":" + child.get("type", "") for child in tc if child.tag in ("failure", "skipped"))
        props = [p.get("name") for p in tc.iter("property")]
        cases[tc.get("name")] = (tuple(kinds), tuple(props))
    return recs, cases


def test_light_protocol_matches_pytest_protocol(tmp_path, run_conformance):
    """One report per case (the default) gives each case the same outcome, record and junit entry as
    pytest's own setup/call/teardown protocol: passes, failures, skips, expected failures, an unexpected
    pass, a crash and a timeout."""
    cases_dir = tmp_path / "cases"
    cases_dir.mkdir()
    (cases_dir / "tolerances.yaml").write_text((ROOT / "cases" / "tolerances.yaml").read_text())
    (cases_dir / "expected_failures.yaml").write_text(
        "expected_failures:\n"
        "- {match: fake-fake-relu-wrong_values-*, status: [mismatch], reason: expected on purpose}\n"
        "- {match: fake-fake-relu-good-opset13-*, status: [mismatch], reason: an unexpected pass on purpose}\n")
    seen = {}
    for protocol in ("light", "pytest"):
        results, junit = tmp_path / f"{protocol}.jsonl", tmp_path / f"{protocol}.xml"
        run = run_conformance("--matrix", FAKE, "--cases-dir", cases_dir, "-n", "0", "--results", results,
                              "--no-report", "--case-timeout", "4", "-q", "--case-protocol", protocol,
                              "--junitxml", junit)
        assert run.ret == pytest.ExitCode.TESTS_FAILED, run.stdout.str()[-3000:]
        seen[protocol] = (run.parseoutcomes(), *_outcomes(results, junit))
    light, full = seen["light"], seen["pytest"]
    assert light == full
    counts, recs, junit_cases = light
    assert counts["xfailed"] == 2 and counts["skipped"] == 2 and counts["passed"] == 1
    assert recs["fake-fake-relu-good-opset13-float32-cpu"][:2] == (status.PASS, "failed")  # strict
    assert recs["fake-fake-relu-wrong_values-opset14-float32-cpu"][1] == "xfailed"
    assert recs["fake-fake-relu-hangs-opset13-float32-cpu"][0] == status.TIMEOUT
    assert len(junit_cases) == len(recs)
    assert all(props == ("record",) for _, props in junit_cases.values())


def test_crash_retry_runs_a_crashed_case_once_more(tmp_path, run_conformance, monkeypatch):
    """With ``crash_retry`` a case that crashes once passes on its second attempt, the first attempt kept in
    its record; a case that crashes every time stays a crash. Without it a crash is final."""
    monkeypatch.setenv("HARNESS_FAKE_ONCE_DIR", str(tmp_path))
    results = tmp_path / "r.jsonl"
    run = run_conformance("--matrix", ROOT / "tests" / "data" / "fake_retry.yaml", "-n", "0", "--results", results,
                          "--no-report", "--repro-dir", "", "-q")
    assert run.ret == pytest.ExitCode.TESTS_FAILED, run.stdout.str()[-3000:]
    recs = {r["variant"] + str(r["opset"]): r for r in map(json.loads, results.read_text().splitlines())}
    assert len(recs) == 6
    for opset in (13, 14):
        once, always, good = recs[f"aborts_once{opset}"], recs[f"aborts{opset}"], recs[f"good{opset}"]
        assert once["status"] == status.PASS and once["retried"]["status"] == status.CRASH
        assert "SIGABRT" in once["retried"]["message"] and "on purpose" in once["retried"]["why"]
        assert always["status"] == status.CRASH and always["retried"]["status"] == status.CRASH
        assert good["status"] == status.PASS and "retried" not in good
    run.assert_outcomes(passed=4, failed=2)
