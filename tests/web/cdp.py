"""The DevTools-protocol driver the browser tests use; it lives in benchmarks/cdp.py, shared with
benchmarks/web_latency.py (neither edits sys.path: the repository root is on it under pytest and `python -m`)."""

from benchmarks.cdp import CHROMIUM_NAMES, SOFTWARE_WEBGPU, Browser, Page, PageError, find_chromium

__all__ = ["CHROMIUM_NAMES", "SOFTWARE_WEBGPU", "Browser", "Page", "PageError", "find_chromium"]
