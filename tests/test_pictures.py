"""graph.svg in the repro bundles of a real run, and the view / pictures commands on them.

One run of a small fake matrix (``--passes none,fake-drop-node``) with pictures on; its
bundles, records and report are what the tests below look at. A second run has a Chromium
on PATH that cannot start: its verdicts must be those of the first. Skipped, with the
reason, where no Chromium binary is on PATH.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import onnx
import pytest

from harness.report import netron

ROOT = Path(__file__).resolve().parent.parent
MATRIX = """\
framework: fake
exporters: [fake]
plugins: [tests.fakes, tests.fake_backends]
defaults:
  inputs: [{shape: [2, 3]}]
entries:
  - kernel: relu
    table: {opsets: "13~14"}
    builder: relu
    variants:
      good: {kwargs: {behavior: good}}
      wrong_values: {kwargs: {behavior: wrong-values}}
      no_file: {kwargs: {behavior: no-file}}
"""
PASS = "fake-drop-node"
PASSED = f"fake-fake-relu-good-opset13-float32-cpu-{PASS}"  # pass-changed-result: two models

pytestmark = pytest.mark.skipif(netron.chromium() is None, reason="no Chromium binary on PATH (looked for "
                                                                   f"{', '.join(netron.CHROMIUM_NAMES)})")


def harness(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=kw.pop("timeout", 300), **kw)


def conformance(tmp: Path, name: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = tmp / name
    matrix = tmp / "fake_pictures.yaml"
    matrix.write_text(MATRIX)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly", "-n", "0", "-q", "--matrix", matrix,
         "--passes", f"none,{PASS}", "--results", out / "run.jsonl", "--repro-dir", out / "repro",
         "--no-report", "--pictures-wait", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    records = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    return proc, records


def svg_texts(path: Path) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pictures")
    proc, records = conformance(tmp, "a")
    return tmp, proc, {r["id"]: r for r in records}


def test_every_bundle_with_a_model_gets_its_pictures(run):
    tmp, proc, records = run
    with_model = 0
    for rec in records.values():
        bundle = Path(rec["repro_bundle"]) if rec.get("repro_bundle") else None
        if bundle is None or not (bundle / "model.onnx").exists():
            assert bundle is None or not list(bundle.glob("graph*.svg")), rec["id"]
            continue
        with_model += 1
        ops = {n.op_type for n in onnx.load(bundle / "model.onnx").graph.node}
        assert ops and ops <= set(svg_texts(bundle / "graph.svg")), rec["id"]
        if rec["post_pass"] == PASS:
            passed = {n.op_type for n in onnx.load(bundle / f"model.{PASS}.onnx").graph.node}
            assert passed <= set(svg_texts(bundle / f"graph.{PASS}.svg")), rec["id"]
    assert with_model >= 6  # wrong_values x 2 opsets x 2 passes, good after the pass x 2 opsets
    passed_bundle = Path(records[PASSED]["repro_bundle"])
    assert "Relu" in svg_texts(passed_bundle / "graph.svg")  # the exported model ...
    assert "Identity" in svg_texts(passed_bundle / f"graph.{PASS}.svg")  # ... and the one after the pass
    assert records["fake-fake-relu-no_file-opset13-float32-cpu"]["status"] == "export-error"
    n = sum(len(netron.bundle_pictures(r["repro_bundle"])) for r in records.values() if r.get("repro_bundle"))
    assert f"pictures: {n} of {n} graph.svg written in the repro bundles" in proc.stdout


def test_a_browser_that_cannot_start_changes_no_verdict(run, tmp_path):
    _, _, records = run
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "chromium").write_text("#!/bin/sh\necho 'this chromium cannot start' >&2\nexit 1\n")
    (fake / "chromium").chmod(0o755)
    import os

    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    proc, again = conformance(tmp_path, "b", env)
    assert {r["id"]: r["status"] for r in again} == {i: r["status"] for i, r in records.items()}
    assert not list((tmp_path / "b" / "repro").glob("*/graph*.svg"))
    assert "picture problem: Chromium exited" in proc.stdout and "this chromium cannot start" in proc.stdout
    assert re.search(r"pictures: 0 of \d+ graph.svg written", proc.stdout)


def test_view_serves_both_models_on_loopback_until_interrupted(run):
    tmp, _, records = run
    bundle = Path(records[PASSED]["repro_bundle"])
    proc = subprocess.Popen([sys.executable, "-m", "harness", "view", PASSED, "--results", tmp / "a" / "run.jsonl"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        urls = [re.search(r"(http://127\.0\.0\.1:\d+)", ln).group(1) for ln in lines[:2]]
        assert lines[0].startswith("exported model: ") and lines[1].startswith(f"after {PASS}: ")
        assert "until Ctrl-C" in lines[2]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for url, model in zip(urls, ("model.onnx", f"model.{PASS}.onnx")):
            with opener.open(f"{url}/data/{model}", timeout=10) as r:
                assert r.read() == (bundle / model).read_bytes()
            with opener.open(url + "/", timeout=10) as r:
                assert b"netron" in r.read().lower()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0, proc.stderr.read()
    for url in urls:
        host, port = url.rsplit("//", 1)[1].split(":")
        with socket.socket() as s:
            assert s.connect_ex((host, int(port))) != 0  # stopped


def test_view_picture_draws_both_models(run, tmp_path):
    tmp, _, _ = run
    bundle_dir = Path(run[2][PASSED]["repro_bundle"])
    done = harness("view", bundle_dir, "--picture", tmp_path / "g.svg")
    assert done.returncode == 0, done.stderr
    assert "Relu" in svg_texts(tmp_path / "g.svg")
    assert "Identity" in svg_texts(tmp_path / f"g.{PASS}.svg")
    assert done.stdout.count("wrote ") == 2


@pytest.mark.parametrize("target, message", [
    ("fake-fake-relu-good-opset13-float32-cpu", "pass in .*: only failing cases keep their model"),
    ("fake-fake-relu-no_file-opset13-float32-cpu", "holds no model \\(export-error at stage export"),
    ("no-such-case", "no such case in"),
])
def test_view_says_why_it_has_nothing_to_show(run, target, message):
    tmp, _, _ = run
    done = harness("view", target, "--results", tmp / "a" / "run.jsonl", "--repro-dir", tmp / "a" / "repro")
    assert done.returncode == 2
    assert re.fullmatch(f"error: {target}: .*{message}.*\n", done.stderr), done.stderr


def test_view_refuses_a_picture_name_it_cannot_write(run):
    done = harness("view", PASSED, "--results", run[0] / "a" / "run.jsonl", "--picture", "g.jpg")
    assert done.returncode == 2 and done.stderr.startswith("error: --picture g.jpg: a picture is .svg or .png")


def test_pictures_command_draws_what_is_missing(run):
    tmp, _, records = run
    results = tmp / "a" / "run.jsonl"
    missing = Path(records[PASSED]["repro_bundle"]) / "graph.svg"
    missing.unlink()
    done = harness("pictures", results)
    assert done.returncode == 0, done.stderr
    assert re.match(r"1 of 1 pictures drawn in \d+ bundles", done.stdout)
    assert "Relu" in svg_texts(missing)
    again = harness("pictures", tmp / "a" / "repro")
    assert again.returncode == 0 and "no picture missing" in again.stdout


def test_html_report_links_failing_cases_to_bundle_and_picture(run):
    tmp, _, records = run
    done = harness("report", tmp / "a" / "run.jsonl", "--out", tmp / "a" / "reports", "--no-matrix")
    assert done.returncode == 0, done.stderr
    page = (tmp / "a" / "reports" / "support.html").read_text()
    data = json.loads(re.search(r'<script type="application/json" id="details-data">(.*?)</script>', page,
                                re.S).group(1))
    cases = {c["id"]: c for cell in data.values() for c in cell["cases"]}
    assert cases[PASSED]["links"] == [["bundle", f"../repro/{PASSED}/"], ["graph", f"../repro/{PASSED}/graph.svg"],
                                      [f"graph after {PASS}", f"../repro/{PASSED}/graph.{PASS}.svg"]]
    no_model = "fake-fake-relu-no_file-opset13-float32-cpu"
    assert cases[no_model]["links"] == [["bundle", f"../repro/{no_model}/"]]
    assert str(tmp / "a" / "repro") not in page  # relative links: no bundle path of this machine
    assert all("bundle" not in c for c in cases.values())


def test_cpu_busy_reads_the_share_of_the_machine_over_the_interval(monkeypatch):
    """Busy above the threshold between two reads of /proc/stat; no /proc/stat: never busy."""
    from harness.plugin import pictures

    reads = iter([(100, 1000), (190, 1100)])  # 90 of 100 jiffies busy
    monkeypatch.setattr(pictures, "_cpu_times", lambda: next(reads))
    assert pictures.cpu_busy(0, 0.85)
    reads = iter([(100, 1000), (150, 1100)])  # half the machine
    assert not pictures.cpu_busy(0, 0.85)
    monkeypatch.setattr(pictures, "_cpu_times", lambda: None)
    assert not pictures.cpu_busy(0)
    monkeypatch.undo()
    busy, total = pictures._cpu_times()
    assert 0 <= busy <= total


def test_pictures_wait_for_a_free_cpu_until_the_last_case(monkeypatch, tmp_path):
    """While cases run and the CPU is busy, no picture is started; once the last case is done they are."""
    import threading
    import time
    from types import SimpleNamespace

    from harness.plugin import pictures

    taken, looks = [], []

    class FakePictures:
        def __init__(self, *a, **k):
            pass

        def take(self, model, picture):
            taken.append(model)

        def renice(self, nice):
            pass

        def close(self):
            pass

    monkeypatch.setattr("harness.report.netron.Pictures", FakePictures)
    monkeypatch.setattr(pictures, "cpu_busy", lambda *a, **k: looks.append(1) or True)
    monkeypatch.setattr(pictures, "LOOK_EVERY", 0.01)
    plugin = pictures.BundlePictures.__new__(pictures.BundlePictures)
    plugin.__init__(SimpleNamespace(), SimpleNamespace(pictures_wait=5, repro_dir=str(tmp_path),
                                                       results=tmp_path / "r.jsonl"))
    plugin.binary = "chromium"
    plugin.queue.put((0, 0, "m.onnx", "m.svg"))
    plugin.queued = 1
    plugin._thread = threading.Thread(target=plugin._work, daemon=True)
    plugin._thread.start()
    time.sleep(0.3)
    assert taken == [] and len(looks) > 3  # busy: it keeps looking, draws nothing
    plugin.pytest_sessionfinish(SimpleNamespace(), 0)
    assert taken == ["m.onnx"] and plugin.made == 1 and not plugin.timed_out
