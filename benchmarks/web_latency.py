"""The web page's in-browser benchmark in headless chromium beside `edgegan bench` on the same machine (README, "In
the browser and in JavaScript"), and the page's screenshot.

    python -m benchmarks.web_latency MODELS/web --threads 1,2 --batches 1,16,64 --seconds 2 --repeat 3 \
        --out benchmarks/results/web --screenshot docs/web_page.png

Repeat times, for each thread count in turn (so a change of the machine's load hits every count alike), it opens
MODELS/web/?threads=N (served by `edgegan serve`'s server on 127.0.0.1), runs the page's benchmark and saves its
JSON (what "Download JSON" gives) as OUT/browser-Nt-rR.json; then it runs `edgegan bench` on the same model files at
the same batches and threads (OUT/cpu.json, 10 interleaved rounds), merges everything with `edgegan bench-report`
(OUT/report.md) and writes OUT/summary.md: per model, batch and threads the CPU p50 beside the median (and range)
of the browser's p50s over the repeats. Needs chromium, websocket-client and onnxruntime-web in the page (export
with --web-runtime).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import threading
from pathlib import Path

from benchmarks.cdp import Browser, find_chromium
from edgegan.runtime.serve import make_server


def browser_runs(
    web: Path, threads: list[int], batches: list[int], seconds: float, repeat: int, out: Path, screenshot: Path | None
) -> list[Path]:
    server = make_server(web, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    browser = Browser(find_chromium() or "chromium")
    written = []
    try:
        for r, n in ((r, n) for r in range(repeat) for n in threads):
            page = browser.open(f"{url}?threads={n}")
            page.evaluate("window.edgegan.ready")
            load = list(os.getloadavg())
            result = page.evaluate(
                f"edgegan.bench({{batches: {json.dumps(batches)}, seconds: {seconds}, providers: ['wasm']}})",
                timeout=600,
            )
            assert all(r["error"] is None for r in result["rows"]), result["rows"]
            # The page cannot read the machine's load; this script can, and the report prints it beside the run.
            result["machine"].update(loadavg=load, loadavg_end=list(os.getloadavg()))
            path = out / f"browser-{n}t-r{r}.json"
            path.write_text(json.dumps(result, indent=2) + "\n")
            written.append(path)
            if screenshot is not None and n == threads[-1] and r == repeat - 1:
                page.evaluate(
                    "edgegan.showBench(edgegan.state.lastBench);"
                    "document.getElementById('label').value = '7';"
                    "document.getElementById('count').value = '16';"
                    "document.getElementById('draw').click(); true"
                )
                page.wait_for("document.getElementById('status').textContent.startsWith('drawing: done')")
                page.screenshot(screenshot, width=900, height=1000)
            page.close()
    finally:
        browser.close()
        server.shutdown()
    return written


def summary(cpu: Path, runs: list[Path]) -> str:
    """Markdown: CPU p50 (edgegan bench) beside the browser's median p50 over the repeats, per model/batch/threads."""

    def key(row: dict) -> tuple:
        return Path(row["model"]).name, row["batch"], row["threads"]

    native = {key(row): row["p50_ms"] for row in json.loads(cpu.read_text())["rows"] if row.get("p50_ms")}
    browser: dict[tuple, list[float]] = {}
    for run in runs:
        for row in json.loads(run.read_text())["rows"]:
            browser.setdefault(key(row), []).append(row["p50_ms"])
    lines = [
        ("| model | batch | threads | `edgegan bench` p50 ms | chromium WASM p50 ms (median, range) | WASM / native |"),
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in sorted(browser):
        times = sorted(browser[k])
        median = statistics.median(times)
        cpu_ms = native.get(k)
        lines.append(
            f"| {k[0]} | {k[1]} | {k[2]} | {cpu_ms:.3f} | {median:.2f} ({times[0]:.2f}-{times[-1]:.2f}) | "
            f"{median / cpu_ms:.1f}x |"
            if cpu_ms
            else f"| {k[0]} | {k[1]} | {k[2]} | - | {median:.2f} | - |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("web", type=Path)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/web"))
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    runs = browser_runs(args.web, threads, batches, args.seconds, args.repeat, args.out, args.screenshot)
    manifest = json.loads((args.web / "manifest.json").read_text())
    models = [str(args.web.parent / m["file"]) for m in manifest["models"]]
    cpu = args.out / "cpu.json"
    subprocess.run(
        [
            "edgegan",
            "bench",
            *models,
            "--batch-sizes",
            args.batches,
            "--threads",
            args.threads,
            "--duration",
            str(args.seconds),
            "--json",
            str(cpu),
            "-q",
        ],
        check=True,
    )
    subprocess.run(
        [
            "edgegan",
            "bench-report",
            str(cpu),
            *map(str, runs),
            "--markdown",
            str(args.out / "report.md"),
            "--json",
            str(args.out / "report.json"),
            "-q",
        ],
        check=True,
    )
    (args.out / "summary.md").write_text(summary(cpu, runs))
    print((args.out / "summary.md").read_text())


if __name__ == "__main__":
    main()
