"""`edgegan serve FOLDER`: serve an exported web page (OUT/web) over HTTP with the headers WASM threads need.

onnxruntime-web runs on several threads only when the page is cross-origin isolated, which takes two response
headers (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp) that Python's
`http.server` does not send, and a secure context: http://127.0.0.1 (the default host) is one; a phone opening
http://LAN-ADDRESS is not, so there the page runs WASM on one thread (SIMD still on). Standard library only.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

from edgegan.runtime.errors import EdgeganError

__all__ = ["ISOLATION_HEADERS", "ServeError", "make_server"]

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
}


class ServeError(EdgeganError, OSError):
    """The folder is not a web page export, or the address cannot be bound."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}  # noqa: RUF012 (http.server's)

    def end_headers(self) -> None:
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")  # a re-export must not be hidden by a cached model
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if not getattr(self.server, "quiet", False):
            super().log_message(format, *args)


def make_server(
    folder: str | Path, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False
) -> http.server.ThreadingHTTPServer:
    """An HTTP server of `folder` (not started: call serve_forever); port 0 picks a free port (server_address).

    Raises:
        ServeError: folder has no index.html and manifest.json, or host:port cannot be bound.
    """
    folder = Path(folder)
    missing = [n for n in ("index.html", "manifest.json") if not (folder / n).is_file()]
    if missing:
        raise ServeError(
            f"{folder} is not an edgegan web page (no {', '.join(missing)}): export one with "
            "`edgegan export RUN --out OUT --web`, then `edgegan serve OUT/web`"
        )
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ServeError(f"cannot serve on {host}:{port}: {exc.strerror or exc} (try another --port)") from exc
    server.quiet = quiet  # type: ignore[attr-defined]  # read by _Handler.log_message (an attribute of our own)
    return server
