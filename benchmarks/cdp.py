"""Headless chromium driven through the DevTools protocol (websocket-client), for the browser tests (tests/web)
and the in-browser benchmark (benchmarks/web_latency.py).

One browser per test module: `Browser()` starts `chromium --headless --no-sandbox` on a free DevTools port bound to
127.0.0.1, `browser.open(url)` gives a `Page` whose `evaluate` runs JavaScript (awaiting promises) and returns the
value as JSON. Chromium's own binary is found by `find_chromium` (Debian: /usr/bin/chromium).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    override = os.environ.get("EDGEGAN_CHROMIUM")
    if override:
        return override
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class PageError(RuntimeError):
    """JavaScript threw (or a promise rejected) in the page; the message is the exception's description."""


class Page:
    def __init__(self, ws_url: str, timeout: float):
        import websocket  # websocket-client, the test extra

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._id = 0
        self.console: list[str] = []

    def call(self, method: str, timeout: float = 60.0, **params: Any) -> dict:
        self._id += 1
        self.ws.settimeout(timeout)
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise PageError(f"{method}: {message['error']}")
                return message["result"]
            if message.get("method") == "Runtime.consoleAPICalled":
                self.console.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in message["params"]["args"])
                )

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The JSON value of `expression` (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise PageError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Poll until `expression` is truthy; its value."""
        end = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(f"page never made {expression!r} true in {timeout:.0f} s")
            time.sleep(0.05)

    def screenshot(self, path: Path, width: int = 1000, height: int = 900) -> Path:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.ws.close()


# Software WebGPU (SwiftShader's Vulkan on the CPU): headless chromium then gives navigator.gpu an adapter, so the
# page's WebGPU path runs on a machine without a GPU (slowly: it checks the path, not the speed).
SOFTWARE_WEBGPU = (
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-angle=swiftshader",
    "--use-webgpu-adapter=swiftshader",
)


class Browser:
    def __init__(self, binary: str, timeout: float = 60.0, extra_args: tuple[str, ...] = ()):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="edgegan-chromium-")
        self.proc = subprocess.Popen(
            [
                binary,
                *extra_args,
                "--headless",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        end = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < end:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            lines.append(line)
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                self.port = int(re.search(r":(\d+)/", match.group(1)).group(1))
                return
        self.close()
        raise RuntimeError("chromium did not start: " + "".join(lines[-20:]))

    def open(self, url: str) -> Page:
        from urllib.request import urlopen

        with urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=self.timeout) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        page = Page(target["webSocketDebuggerUrl"], self.timeout)
        page.call("Runtime.enable")
        page.call("Page.enable")
        page.call("Page.navigate", url=url)
        page.wait_for("document.readyState === 'complete'", self.timeout)
        return page

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
