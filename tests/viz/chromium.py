"""Headless Chromium driven over the Chrome DevTools Protocol (CDP), for the browser tests.

Only the system's ``chromium`` binary and the ``websockets`` package (a viser dependency) —
no playwright or selenium, which download browsers of their own. Every wait has a timeout, so
a page that never renders fails the test instead of hanging CI.

WebGL without a GPU: ``--use-angle=swiftshader --enable-unsafe-swiftshader`` runs ANGLE on
SwiftShader, the CPU Vulkan implementation that ships inside the chromium package. Debian's
Chromium 150 headless falls back to it by itself today, but that automatic fallback is being
removed upstream, hence the explicit flags; the older recipe ``--use-gl=swiftshader`` gives no
WebGL context at all (``getContext("webgl2")`` is null and viser's canvas stays blank).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in containers has no user namespaces for the sandbox
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-dev-shm-usage",  # /dev/shm of containers is often tiny
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-background-timer-throttling",  # keep rendering while "in the background"
    "--disable-renderer-backgrounding",
    "--mute-audio",
)


def chromium_binary() -> str | None:
    """The path of ``chromium`` (Debian's name) or ``chromium-browser`` on PATH, else None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """A headless Chromium process and a CDP connection to its first page.

    ``call(method, **params)`` sends one CDP command and returns its result; ``close()`` ends
    the browser's whole process group (it forks renderers and a GPU process) and removes the
    profile directory. Use as a context manager.
    """

    def __init__(self, binary: str, *, width: int = 960, height: int = 640, timeout: float = 15.0):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="any4d-chromium-")
        self._process = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",  # any free port, written to DevToolsActivePort
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, ended as one in close()
        )
        self._ids = itertools.count(1)
        self._socket = None
        try:
            port = self._devtools_port()
            self._socket = connect(
                self._page_socket_url(port),
                open_timeout=timeout,
                max_size=None,  # screenshots are megabytes
                proxy=None,
                compression=None,
            )
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------------- protocol

    def call(self, method: str, **params):
        """Send CDP ``method`` to the page; returns its ``result`` (events are dropped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {method} within {self.timeout} s")
            reply = json.loads(self._socket.recv(timeout=left))
            if reply.get("id") != message_id:
                continue  # an event, or the answer to an earlier call that timed out
            if "error" in reply:
                raise RuntimeError(f"{method} failed: {reply['error']}")
            return reply.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        """Poll ``expression`` until it is truthy; returns its value, or fails naming ``what``.

        An expression that throws counts as not yet (``document.body`` is null while a page
        loads); the last error is in the timeout's message.
        """
        deadline = time.monotonic() + timeout
        error = None
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError as thrown:
                value, error = None, thrown
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout} s (last error: {error})")
            time.sleep(0.1)

    def navigate(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def screenshot(self) -> bytes:
        """The page as PNG bytes (what is on screen, at the window's size)."""
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    # ---------------------------------------------------------------------------- process

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                self._socket.close()
            self._socket = None
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _devtools_port(self) -> int:
        """The port Chromium chose, from the ``DevToolsActivePort`` file it writes on start."""
        path = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self._process.returncode}")
            with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                return int(path.read_text().splitlines()[0])
            time.sleep(0.05)
        raise TimeoutError(f"chromium wrote no {path.name} within {self.timeout} s")

    def _page_socket_url(self, port: int) -> str:
        """The DevTools websocket of the first page target (the ``about:blank`` tab)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as reply:
                pages = [t for t in json.load(reply) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.05)
        raise TimeoutError(f"chromium showed no page target within {self.timeout} s")
