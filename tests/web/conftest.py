"""What the browser and node tests need: chromium, node, the npm packages (package.json), websocket-client.

Outside CI a missing tool skips them with the reason and the fix; with CI=true (scripts/setup.sh installs all of
them) a missing tool fails them instead, so CI never passes without having run them.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.web.cdp import find_chromium

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
ORT_WEB_DIST = NODE_MODULES / "onnxruntime-web" / "dist"
SETUP = "run `bash scripts/setup.sh` (apt-get install chromium; npm ci --ignore-scripts)"


def require(ok: bool, what: str) -> None:
    """Skip (or, under CI, fail) when a tool the test needs is missing."""
    if ok:
        return
    message = f"{what} is missing: {SETUP}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def node() -> str:
    binary = shutil.which("node")
    require(binary is not None, "node (Node.js)")
    require((NODE_MODULES / "onnxruntime-node").is_dir(), "node_modules/onnxruntime-node")
    return binary


@pytest.fixture(scope="session")
def chromium() -> str:
    binary = find_chromium()
    require(binary is not None, "chromium")
    require(ORT_WEB_DIST.is_dir(), "node_modules/onnxruntime-web")
    try:
        import websocket  # noqa: F401
    except ImportError:
        require(False, "the Python package websocket-client (pip install -e '.[test]')")
    return binary


@pytest.fixture(scope="module")
def serve() -> Iterator[Callable[[Path], str]]:
    """serve(folder) -> its URL on 127.0.0.1 (a free port, `edgegan serve`'s server); all stopped at the end."""
    from edgegan.runtime.serve import make_server

    servers = []

    def start(folder: Path) -> str:
        server = make_server(folder, "127.0.0.1", 0, quiet=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
