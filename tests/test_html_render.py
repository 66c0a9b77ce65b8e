"""support.html rendered by a real headless Chromium: heatmap present, script runs, no console output.

Skipped (with the reason) where no chromium binary is installed
(Debian: ``apt-get install -y chromium``).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report import build_reports
from harness.report.inputs import load

XSS = "<script>alert(1)</script>"
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM = next((p for p in map(shutil.which, BINARIES) if p), None)
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(.*)")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=f"no chromium binary on PATH (looked for "
                                                          f"{', '.join(BINARIES)})")


def chromium(tmp_path: Path, url: str, *extra: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``url``; return (stdout, console messages)."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--window-size=1280,900", *extra, url],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [m.group(1) for m in CONSOLE.finditer(proc.stderr)]


def records():
    out = []
    for opset in range(7, 16):
        for variant in ("a", "b"):
            st = "mismatch" if (variant == "b" and opset == 9) else "pass"
            out.append({"id": f"paddle-dygraph-conv2d-{variant}-opset{opset}-float32-cpu", "framework": "paddle",
                        "exporter": "dygraph", "kernel": "conv2d", "variant": variant, "opset": opset,
                        "dtype": "float32", "device": "cpu", "status": st, "max_abs": 0.5 if st != "pass" else 0.0,
                        "message": XSS if st != "pass" else "", "shared_key": "conv2d",
                        "declared": {"range": "7~12", "note": "", "in_range": opset <= 12},
                        "finished": "2026-01-01T00:00:00+00:00"})
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    src = d / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records()))
    build_reports(load([src]), d / "out", only=("support.html",))
    return d / "out" / "support.html"


def test_console_errors_are_detected(tmp_path):
    """The check below can fail: a page that throws is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, console = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert any("undefinedFunction" in m for m in console)


def test_heatmap_renders_without_console_errors(tmp_path, page):
    shot = tmp_path / "shot.png"
    _, console = chromium(tmp_path, page.as_uri(), f"--screenshot={shot}")
    assert console == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


def test_cell_details_open_as_text(tmp_path, page):
    html = page.read_text()
    key = re.search(r'data-k="([^"]+)"', html).group(1)
    dom, console = chromium(tmp_path, page.as_uri() + "#cell=" + key, "--dump-dom")
    assert console == []
    assert 'data-ready="1"' in dom  # the page's script ran to the end
    assert 'id="heatmap-0"' in dom and dom.count('class="c') == 9
    detail = dom.split('id="detail"', 1)[1]
    assert "display: block" in detail.split(">", 1)[0]
    assert "paddle-dygraph-conv2d-b-opset9-float32-cpu" in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail and XSS not in detail
