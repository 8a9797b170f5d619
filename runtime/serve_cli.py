"""`edgegan serve`: a thin click command over runtime/serve.py's make_server."""

from __future__ import annotations

from pathlib import Path

import click

from edgegan.runtime.cli_options import (
    EdgeganCommand,
    Say,
    check_json_path,
    json_option,
    quiet_option,
)


@click.command("serve", cls=EdgeganCommand)
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 lets a phone on the same network open the page.",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@json_option("where it serves ({url, host, port, folder}), once listening")
@quiet_option("No request log.")
def serve(folder: Path, host: str, port: int, json_path: str | None, quiet: bool) -> None:
    """Serve FOLDER (OUT/web from `edgegan export --web`) with the cross-origin isolation headers WASM threads need.

    Until Ctrl+C. 127.0.0.1 by default: only this machine sees it. `--host 0.0.0.0` opens it to the network (a phone
    on the same Wi-Fi opens http://THIS-MACHINE'S-ADDRESS:PORT/; there it runs WASM on one thread, since a plain-http
    LAN address is not a secure context)."""
    from edgegan.runtime.serve import make_server

    check_json_path(json_path)
    server = make_server(folder, host, port, quiet)
    bound_host, bound_port = server.server_address[:2]
    if not isinstance(bound_host, str):  # typed str | bytes; an AF_INET/AF_INET6 socket's name gives its host as str
        bound_host = bytes(bound_host).decode()
    everywhere = bound_host in ("0.0.0.0", "::")
    url = f"http://{'127.0.0.1' if everywhere else bound_host}:{bound_port}/"
    say = Say(quiet, json_path)
    say.result(f"serving {folder} at {url} (Ctrl+C stops)")
    if everywhere:
        say.result(
            f"on a phone on this network: http://THIS-MACHINE'S-LAN-ADDRESS:{bound_port}/ (plain http there is "
            "not a secure context: WASM runs on one thread)"
        )
    say.json({"url": url, "host": bound_host, "port": bound_port, "folder": str(folder)}, json_path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
