"""Netron pictures in a real headless Chromium (harness/report/netron.py).

The browser tests are skipped, with the reason, only where no Chromium binary is on PATH
(Debian: ``apt-get install -y chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import socket
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.report import netron

CHROMIUM = netron.chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary on PATH (looked for "
                                                             f"{', '.join(netron.CHROMIUM_NAMES)})")


def conv_model(path: Path) -> Path:
    """Conv -> Relu -> MaxPool, opset 13."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def sigmoid_model(path: Path) -> Path:
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def svg_texts(path: Path) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text(encoding="utf-8"))


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def port_open(address: str) -> bool:
    host, port = address.rsplit("//", 1)[1].split(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


@pytest.fixture(scope="module")
def pictures():
    if CHROMIUM is None:
        pytest.skip("no Chromium binary on PATH")
    with netron.Pictures(timeout=60) as p:
        yield p


@needs_chromium
def test_svg_shows_every_node_of_the_model(tmp_path, pictures):
    out = tmp_path / "graph.svg"
    done = pictures.take(conv_model(tmp_path / "m.onnx"), out)
    texts = svg_texts(out)
    for op in ("Conv", "Relu", "MaxPool"):
        assert op in texts and op in done.labels
    assert "x" in texts and "y" in texts  # the graph's input and output
    assert out.read_text().startswith("<svg") and 'id="export"' in out.read_text()
    assert not list(tmp_path.glob("*.part"))
    # nothing beyond loopback got through: what the page tried (Netron's telemetry) was failed
    assert all(not netron._is_loopback(u) for u in done.blocked)


@needs_chromium
def test_png_is_a_drawn_graph(tmp_path, pictures):
    import matplotlib.image

    out = tmp_path / "graph.png"
    pictures.take(conv_model(tmp_path / "m.onnx"), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(out)
    height, width = pixels.shape[:2]
    assert height > width > 50  # a vertical chain of 5 boxes
    dark = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.01 < dark < 0.6  # boxes and text drawn, not a blank or a solid page


@needs_chromium
def test_models_opened_in_one_page_are_not_mixed_up(tmp_path):
    """Under one served root the page is reused: each picture must show its own model."""
    a = conv_model((tmp_path / "a").mkdir() or tmp_path / "a" / "model.onnx")
    b = sigmoid_model(tmp_path / "b" / "model.onnx")
    with netron.Pictures(root=tmp_path, timeout=60) as p:
        p.take(a, tmp_path / "a.svg")
        served = p._served
        p.take(b, tmp_path / "b.svg")
        assert p._served == served  # the same server and page
        p.take(a, tmp_path / "a2.svg")
    assert "Conv" in svg_texts(tmp_path / "a.svg") and "Sigmoid" not in svg_texts(tmp_path / "a.svg")
    assert "Sigmoid" in svg_texts(tmp_path / "b.svg") and "Conv" not in svg_texts(tmp_path / "b.svg")
    assert "Conv" in svg_texts(tmp_path / "a2.svg")


@needs_chromium
def test_a_model_netron_refuses_is_an_error_and_the_next_picture_works(tmp_path):
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / "model.onnx"
    bad.write_bytes(b"\x08\x07" + b"not a model at all" * 10)
    good = conv_model((tmp_path / "good").mkdir() or tmp_path / "good" / "model.onnx")
    with netron.Pictures(root=tmp_path, timeout=30) as p:
        with pytest.raises(netron.PictureError, match="Netron: Unsupported file content"):
            p.take(bad, tmp_path / "bad.svg")
        assert not (tmp_path / "bad.svg").exists()
        p.take(good, tmp_path / "good.svg")
    assert "Conv" in svg_texts(tmp_path / "good.svg")


@needs_chromium
def test_browser_and_server_are_gone_after_close(tmp_path):
    p = netron.Pictures(timeout=60)
    p.take(conv_model(tmp_path / "m.onnx"), tmp_path / "g.svg")
    pgid, profile = p._browser.pid, Path(p._browser._profile)
    url = "http://{}:{}".format(*p._served[1])
    assert group_alive(pgid) and profile.is_dir() and port_open(url)
    p.close()
    assert not group_alive(pgid)
    assert not profile.exists()
    assert not port_open(url)


@needs_chromium
def test_abort_ends_a_picture_under_way(tmp_path):
    p = netron.Pictures(timeout=60)
    try:
        p.abort()
        with pytest.raises(netron.PictureError, match="Chromium exited"):
            p.take(conv_model(tmp_path / "m.onnx"), tmp_path / "g.svg")
    finally:
        p.close()
    assert not group_alive(p._browser.pid)


def test_no_chromium_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert netron.chromium() is None
    with pytest.raises(netron.PictureError, match="no Chromium on PATH.*apt-get install -y chromium"):
        netron.Pictures()


def test_picture_names_its_format():
    assert netron.picture_format("a/graph.SVG") == "svg" and netron.picture_format("g.png") == "png"
    with pytest.raises(ValueError, match="not '.jpg'"):
        netron.picture_format("g.jpg")


def test_netron_page_gets_todays_build_date(tmp_path):
    """Netron opens nothing once its build is 180 days old: the page is given today's date."""
    with netron.served(conv_model(tmp_path / "m.onnx")) as url:
        assert url.startswith("http://127.0.0.1:")
        page = netron._dated_index(url)
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url + "/data/m.onnx") as r:
            assert r.read() == (tmp_path / "m.onnx").read_bytes()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert re.search(rb'<meta name="date" content="' + today.encode() + rb" \d\d:\d\d:\d\d\">", page)
    assert not port_open(url)


def test_loopback_test():
    for url in ("http://127.0.0.1:8080/x.js", "http://localhost/", "data:image/png;base64,AA", "blob:x"):
        assert netron._is_loopback(url), url
    for url in ("https://analytics.google.com/g/collect", "https://ipinfo.io/json", "http://127.0.0.2/",
                "http://127.0.0.1.example.com/", "ftp://127.0.0.1/"):
        assert not netron._is_loopback(url), url


def test_bundle_pictures(tmp_path):
    assert netron.bundle_pictures(tmp_path) == []
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "model.onnxsim.onnx").write_bytes(b"")
    assert netron.bundle_pictures(tmp_path) == [(tmp_path / "model.onnx", tmp_path / "graph.svg"),
                                                (tmp_path / "model.onnxsim.onnx", tmp_path / "graph.onnxsim.svg")]


def test_missing_netron_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "netron", None)  # import netron now raises ImportError
    with pytest.raises(netron.PictureError, match=r"netron is not installed .*netron==9\.3\.3"):
        with netron.served(conv_model(tmp_path / "m.onnx")):
            pass
