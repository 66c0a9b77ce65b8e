"""Netron views and pictures of ONNX models, on loopback only.

:func:`served` serves one model with Netron's own server (``netron.start``, ``netron==9.3.3``)
on 127.0.0.1 and a free port. :class:`Pictures` takes pictures of models: a headless
Chromium, driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: no
debugging port is opened), loads the served Netron page and calls Netron's own export (its
"Export as SVG/PNG" menu entries, ``netron_export.js``), whose file is handed back instead of
downloaded. There is no export without a browser: Netron lays the graph out in the page.

What the page is given so that it renders unattended and offline:

* the ``consent`` cookie, set before the page loads: without it Netron first asks a country
  service and then waits on a cookie banner (all that a plain ``chromium --screenshot`` shows);
* today's date as its build date (``<meta name="date">``): Netron opens nothing, asking for an
  update, once its build is 180 days old, and offline it cannot update;
* no network beyond loopback: every request for another host is failed by the page's request
  interception (and listed in :attr:`Picture.blocked`: Netron's telemetry and country look-up
  try), and the browser itself resolves no host name and has a dead proxy for anything that
  is not loopback (``--host-resolver-rules``, ``--proxy-server``).

The browser runs in its own process group with a fresh profile; :meth:`Pictures.close` (also
on any error) ends the group and removes the profile, and every Netron server is stopped
when its picture is done.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import select
import shutil
import signal
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

#: Chromium binaries looked for on PATH, in this order.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: Picture formats (Netron exports both).
FORMATS = ("svg", "png")
#: The page-side export (a real file, called with ``Runtime.callFunctionOn``).
SCRIPT = Path(__file__).with_name("netron_export.js")
#: Loopback host everything is served on.
HOST = "127.0.0.1"
_DATE = re.compile(rb'<meta name="date" content="[^"]*">')


class PictureError(RuntimeError):
    """A picture could not be taken (no Chromium, Netron showed an error, a timeout)."""


@dataclass
class Picture:
    """One picture written: where, its format, what Netron drew, how long it took."""

    path: str
    format: str
    seconds: float
    #: the texts of the graph's nodes (op types, names) as Netron drew them
    labels: list[str] = field(default_factory=list)
    #: URLs the page tried to reach beyond loopback (all failed by the interception)
    blocked: list[str] = field(default_factory=list)


def chromium() -> str | None:
    """The first Chromium binary found on PATH (:data:`CHROMIUM_NAMES`), or None."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def picture_format(out: str | Path) -> str:
    """``svg`` or ``png`` from the file name; ValueError for any other suffix."""
    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{out}: a picture is .svg or .png, not {Path(out).suffix or 'no suffix'!r}")
    return fmt


@contextlib.contextmanager
def served(model: str | Path) -> Iterator[str]:
    """Serve ``model`` with Netron on 127.0.0.1 and a free port; yield its address; stop on exit.

    Netron's server also serves the files beside the model (external data).
    """
    netron = _netron()
    with _logging_left_alone():
        host, port = netron.start(str(model), address=(HOST, 0), browse=False)
    try:
        yield f"http://{host}:{port}"
    finally:
        _stop((host, port))


def _stop(address: tuple[str, int], wait: float = 5.0) -> None:
    """Stop Netron's server at ``address`` and wait (at most ``wait`` s) until its thread has ended."""
    netron = _netron()
    netron.stop(address)
    deadline = time.monotonic() + wait
    while netron.status(address) and time.monotonic() < deadline:
        time.sleep(0.02)


def _netron():
    """The ``netron`` package, or PictureError saying how to install it."""
    try:
        import netron
    except ImportError:
        raise PictureError("netron is not installed in this Python (the harness pins netron==9.3.3: "
                           "pip install -e .)") from None
    return netron


@contextlib.contextmanager
def _logging_left_alone() -> Iterator[None]:
    """Keep ``netron.serve`` from configuring logging: it calls ``logging.basicConfig()`` when the
    root logger has no handler, which would change the logging of the whole process."""
    guard = logging.NullHandler()
    logging.getLogger().addHandler(guard)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(guard)


def _is_loopback(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws") and parts.hostname in (HOST, "localhost", "::1")


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` is still there (not yet reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number >= 10, so that mapping the pipe onto fds 3 and 4 cannot clobber it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """A headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the child).

    Messages are JSON objects ended by a NUL byte. :meth:`send` waits for a command's answer
    and hands the events that arrive meanwhile to :attr:`handlers` (method -> callable taking
    the event's params and session id), which may :meth:`post` further commands.
    """

    def __init__(self, binary: str | None = None, timeout: float = 60.0) -> None:
        self.binary = binary or chromium()
        if not self.binary:
            raise PictureError(f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}; "
                               f"Debian: apt-get install -y chromium)")
        self.timeout = timeout
        self.handlers: dict[str, Callable[[dict, str | None], None]] = {}
        self._next_id = 0
        self._answers: dict[int, dict] = {}
        self._buffer = b""
        self._profile = tempfile.mkdtemp(prefix="harness-chromium-")
        child_in, self._to_child = os.pipe()
        self._from_child, child_out = os.pipe()
        child_in, child_out = _high_fd(child_in), _high_fd(child_out)
        log = os.path.join(self._profile, "chromium.log")
        self._log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # posix_spawn maps the pipe onto the child's fds 3 and 4 (what --remote-debugging-pipe
            # reads and writes) without a shell; setsid: its own process group, ended as a whole
            self.pid = os.posix_spawn(self.binary, [self.binary, *self.flags(self._profile)], dict(os.environ),
                                      file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                                    (os.POSIX_SPAWN_DUP2, self._log_fd, 1),
                                                    (os.POSIX_SPAWN_DUP2, self._log_fd, 2),
                                                    (os.POSIX_SPAWN_DUP2, child_in, 3),
                                                    (os.POSIX_SPAWN_DUP2, child_out, 4)],
                                      setsid=True)
        except OSError:
            self._close_fds()
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self.returncode: int | None = None

    @staticmethod
    def flags(profile: str) -> list[str]:
        """Chromium's command line: headless, a fresh profile, no background traffic, loopback only."""
        flags = [
            "--headless", "--disable-gpu", "--remote-debugging-pipe", f"--user-data-dir={profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
            "--disable-breakpad", "--disable-domain-reliability", "--no-pings", "--mute-audio",
            "--hide-scrollbars", "--window-size=1600,1200",
            # nothing beyond loopback: no name resolves, and every other address goes to a dead proxy
            f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}", f"--proxy-server={HOST}:9",
        ]
        if os.geteuid() == 0:  # Chromium refuses to run as root inside its sandbox
            flags.append("--no-sandbox")
        return [*flags, "about:blank"]

    def post(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        """Send a command without waiting; return its id."""
        self._next_id += 1
        msg: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_child, data):]
        except BrokenPipeError:
            raise PictureError(f"Chromium exited (before {method}): {self.log_tail()}") from None
        return self._next_id

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send a command and return its result; PictureError on an error answer or a timeout."""
        msg_id = self.post(method, params, session)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while msg_id not in self._answers:
            self._read(deadline, method)
        answer = self._answers.pop(msg_id)
        if "error" in answer:
            raise PictureError(f"Chromium refused {method}: {answer['error'].get('message', answer['error'])}")
        return answer.get("result", {})

    def _read(self, deadline: float, waiting_for: str) -> None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PictureError(f"Chromium did not answer {waiting_for} within {self.timeout:g} s")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise PictureError(f"Chromium exited (while waiting for {waiting_for}): {self.log_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        msg = json.loads(raw)
        if "id" in msg:
            self._answers[msg["id"]] = msg
        elif msg.get("method") in self.handlers:
            self.handlers[msg["method"]](msg.get("params", {}), msg.get("sessionId"))

    def log_tail(self, lines: int = 5) -> str:
        """The last lines Chromium printed (for error messages)."""
        try:
            text = Path(self._profile, "chromium.log").read_text(errors="replace")
        except OSError:
            return "(no output)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"

    def poll(self, wait: float = 0.0) -> int | None:
        """Chromium's exit status once it has exited (waiting up to ``wait`` seconds), else None."""
        deadline = time.monotonic() + wait
        while self.returncode is None:
            pid, code = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(code)
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(0.05)
        return self.returncode

    def close(self) -> None:
        """Ask Chromium to quit, end its process group (after 5 s, by force) and remove its profile."""
        if self.poll() is None:
            with contextlib.suppress(OSError):
                self.post("Browser.close")
            self.poll(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # its zygote and renderers too
        self.poll(5)
        deadline = time.monotonic() + 5
        while _group_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._close_fds()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _close_fds(self) -> None:
        for fd in (self._to_child, self._from_child, self._log_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class Pictures:
    """Pictures of ONNX models through Netron, in one headless Chromium page; a context manager.

    One Netron server serves ``root`` (default: each model's own folder) and the page stays
    open: the first model of a root loads the page, every further model under the same root
    is opened in it (Netron's own open-from-URL step), which is several times cheaper than a
    page load. After a failed picture the next one starts from a fresh server and page.
    ``timeout`` bounds each browser step and each picture's rendering (seconds); ``nice``
    lowers the browser's CPU priority (e.g. while conformance cases run beside it).
    """

    def __init__(self, binary: str | None = None, timeout: float = 60.0, root: str | Path | None = None,
                 nice: int = 0) -> None:
        self.timeout = timeout
        self.root = Path(root).resolve() if root is not None else None
        self._browser = Browser(binary, timeout)
        self._blocked: list[str] = []
        self._index: bytes | None = None
        self._served: tuple[Path, tuple[str, int]] | None = None  # root, address
        try:
            if nice:
                self.renice(nice)
            self._page = self._open_page()
        except BaseException:
            self._browser.close()
            raise

    def __enter__(self) -> Pictures:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the Netron server and end the browser (see :meth:`Browser.close`)."""
        self._stop_server()
        self._browser.close()

    def abort(self) -> None:
        """End the browser's processes now (safe from another thread): a picture under way fails."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._browser.pid, signal.SIGKILL)

    def renice(self, nice: int) -> None:
        """Set the browser's CPU priority (raising it back needs the privilege to; else unchanged)."""
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PGRP, self._browser.pid, nice)

    def _open_page(self) -> str:
        b = self._browser
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        page = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.handlers["Fetch.requestPaused"] = self._intercept
        b.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}, page)
        b.send("Page.enable", {}, page)
        b.send("Network.enable", {}, page)
        b.send("Network.setCookie", {"name": "consent", "value": str(int(time.time() * 1000)),
                                     "url": f"http://{HOST}/", "expires": time.time() + 86400}, page)
        return page

    def _intercept(self, params: dict, session: str | None) -> None:
        """Fetch.requestPaused: fail what is not loopback; serve Netron's index page with today's date."""
        url, rid = params["request"]["url"], params["requestId"]
        if not _is_loopback(url):
            parts = urllib.parse.urlsplit(url)
            self._blocked.append(f"{parts.scheme}://{parts.netloc}{parts.path}")
            self._browser.post("Fetch.failRequest", {"requestId": rid, "errorReason": "BlockedByClient"}, session)
        elif params.get("resourceType") == "Document" and self._index is not None:
            self._browser.post("Fetch.fulfillRequest", {
                "requestId": rid, "responseCode": 200,
                "responseHeaders": [{"name": "Content-Type", "value": "text/html"}],
                "body": base64.b64encode(self._index).decode()}, session)
        else:
            self._browser.post("Fetch.continueRequest", {"requestId": rid}, session)

    def _stop_server(self) -> None:
        if self._served is not None:
            _stop(self._served[1])
            self._served = None

    def _serve(self, root: Path, model: Path) -> str:
        """A Netron server for ``root`` whose page opens ``model`` first; return its address."""
        netron = _netron()
        self._stop_server()
        with _logging_left_alone():
            # Netron's server serves the files under the folder of the model it is given; giving
            # `model`'s bytes as if they lay in `root` makes it serve all of `root`.
            address = netron.serve(str(root / model.name), bytearray(model.read_bytes()),
                                   address=(HOST, 0), browse=False)
        self._served = (root, address)
        url = f"http://{address[0]}:{address[1]}"
        self._index = _dated_index(url)
        return url

    def take(self, model: str | Path, out: str | Path) -> Picture:
        """Write the graph of ``model`` to ``out`` (.svg or .png, Netron's own export); return what was done."""
        fmt = picture_format(out)
        model = Path(model).resolve()
        if not model.is_file():
            raise PictureError(f"{model}: no such model file")
        root = self.root if self.root is not None and self.root in model.parents else model.parent
        t0 = time.perf_counter()
        self._blocked = []
        b, page = self._browser, self._page
        try:
            if self._served is not None and self._served[0] == root:
                rel = urllib.parse.quote(model.relative_to(root).as_posix())
                value = self._export(fmt, f"/data/{rel}", model.name)
            else:
                nav = b.send("Page.navigate", {"url": self._serve(root, model) + "/"}, page)
                if nav.get("errorText"):
                    raise PictureError(f"Chromium could not open Netron's page: {nav['errorText']}")
                value = self._export(fmt, None, None)
            if value.get("error"):
                raise PictureError(f"{model}: {value['error']}")
        except PictureError:
            self._stop_server()  # the page may be in any state: the next picture starts afresh
            raise
        data = value["data"].encode() if fmt == "svg" else base64.b64decode(value["data"])
        part = Path(f"{out}.part")
        part.write_bytes(data)
        os.replace(part, out)  # a picture is there whole or not at all
        return Picture(str(out), fmt, time.perf_counter() - t0, list(value.get("labels", [])),
                       list(dict.fromkeys(self._blocked)))

    def _export(self, fmt: str, url: str | None, name: str | None) -> dict:
        """Run ``netron_export.js`` in the page: open ``url`` there first (if given), export the graph."""
        b, page = self._browser, self._page
        window = b.send("Runtime.evaluate", {"expression": "globalThis"}, page)["result"]["objectId"]
        done = b.send("Runtime.callFunctionOn", {
            "objectId": window, "functionDeclaration": SCRIPT.read_text(encoding="utf-8"),
            "arguments": [{"value": fmt}, {"value": self.timeout * 1000}, {"value": url}, {"value": name}],
            "awaitPromise": True, "returnByValue": True}, page, timeout=self.timeout + 5)
        if "exceptionDetails" in done:
            detail = done["exceptionDetails"]
            return {"error": f"the export script failed: {detail.get('exception', {}).get('description', detail)}"}
        return done["result"].get("value") or {"error": "the export script returned nothing"}


def _dated_index(url: str) -> bytes:
    """Netron's index page from its server, with today's date as its build date (see the module doc)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    with opener.open(url + "/", timeout=10) as resp:
        page = resp.read()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return _DATE.sub(f'<meta name="date" content="{today}">'.encode(), page, count=1)


def take_picture(model: str | Path, out: str | Path, binary: str | None = None, timeout: float = 60.0) -> Picture:
    """One picture of ``model`` in a browser of its own (see :class:`Pictures` for many)."""
    with Pictures(binary, timeout) as pictures:
        return pictures.take(model, out)


#: picture of a repro bundle's exported model
BUNDLE_PICTURE = "graph.svg"


def bundle_pictures(bundle: str | Path) -> list[tuple[Path, Path]]:
    """(model, picture) pairs of a repro bundle: ``model.onnx`` -> ``graph.svg``, and the model
    after a post-export pass, ``model.<pass>.onnx`` -> ``graph.<pass>.svg``; only models present."""
    bundle = Path(bundle)
    out = []
    if (bundle / "model.onnx").is_file():
        out.append((bundle / "model.onnx", bundle / BUNDLE_PICTURE))
    for model in sorted(bundle.glob("model.*.onnx")):
        out.append((model, bundle / f"graph.{model.name[len('model.'):-len('.onnx')]}.svg"))
    return out
