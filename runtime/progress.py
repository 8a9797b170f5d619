"""Progress that fits where it is shown: a tqdm bar on a terminal, a few plain lines in a pipe or a log file.

A tqdm bar redraws itself with `\\r`; piped into a file (CI logs, nohup, notebooks) every redraw becomes text, so
a 5-epoch run wrote ~470 frames. `Progress` draws a bar only when its stream is a TTY; otherwise it prints one
plain line at most every `interval` seconds (default 10, $EDGEGAN_PROGRESS_SECONDS overrides it) and one final
line when it closes. Torch-free: stdlib, plus tqdm on the TTY path only.

API:
    Progress(total, unit="it", desc="", *, quiet=False, initial=0, stream=None, interval=None, leave=True,
             tty=None, rate=True, clock=time.monotonic)
        total: the count that means done (None: unknown, no percentage or ETA). unit: what is counted ("step",
        "image", "B": byte counts are shown in KiB/MiB). desc: what is running, the start of every line.
        quiet: print nothing at all (no bar, no lines, and `write` is dropped too). initial: the count already
        done (a resumed run); rates count from it. stream: where to print (default: sys.stderr at construction,
        so pytest's capture sees it). interval: seconds between plain lines (None: $EDGEGAN_PROGRESS_SECONDS or
        10; 0 prints on every update). leave: keep the bar on screen when it closes (TTY only; plain mode always
        prints its final line). tty: force the mode (None: stream.isatty()). rate: show the rate and ETA (False
        for counts of unequal parts, e.g. stages). clock: seconds, monotonic (tests pass a fake one).
    Use it as a context manager (or call close() yourself); close() prints the final line, once:
        with Progress(total=470, unit="step", desc="train fm") as bar:
            for step in ...:
                bar.set_postfix(loss_g=0.71, img_s=1234)   # key figures, shown in the bar and in each plain line
                bar.update(1)                              # or bar.update(done - bar.n) to jump to a count
                bar.write("checkpoint saved")              # a message above the bar (a plain line otherwise)
                with bar.paused():                         # let something else print (warnings.warn) cleanly
                    warnings.warn("...")
    Attributes: n (the count so far), total, is_tty (a tqdm bar is drawn), quiet.

A plain line looks like (figures after the comma come from set_postfix, floats with 4 significant digits):
    train fm: 120/470 step (26%), 12.3 step/s, eta 0:28, loss_g=0.7102, img_s=1234
    train fm: done 470/470 step in 38s, 12.4 step/s, loss_g=0.6931, img_s=1240
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from edgegan.runtime.errors import EdgeganError

__all__ = ["Progress", "progress_interval", "INTERVAL_ENV", "DEFAULT_INTERVAL"]

INTERVAL_ENV = "EDGEGAN_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 10.0


def progress_interval() -> float:
    """Seconds between plain progress lines: $EDGEGAN_PROGRESS_SECONDS if set, else 10.

    Raises:
        EdgeganError: the variable is not a number >= 0.
    """
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise EdgeganError(
            f"{INTERVAL_ENV}={raw!r}: give the seconds between progress lines, a number >= 0 "
            f"(default {DEFAULT_INTERVAL:g})"
        )
    return value


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed file
        return False


def _amount(value: float, unit: str) -> str:
    """A count in its unit: bytes as B/KiB/MiB/GiB, anything else as a plain number."""
    if unit != "B":
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    if abs(value) < 1024:
        return f"{value:.0f} B"
    for prefix in ("Ki", "Mi", "Gi"):
        value /= 1024
        if abs(value) < 1024 or prefix == "Gi":
            break
    return f"{value:.1f} {prefix}B"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _rate(per_second: float) -> str:
    """3 significant digits, never in e-notation: 2483, 12.3, 0.0417."""
    return f"{per_second:.0f}" if per_second >= 100 else f"{per_second:.3g}"


def _figure(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Progress:
    """A progress display: tqdm on a TTY, plain lines every `interval` seconds elsewhere. See the module docstring."""

    def __init__(
        self,
        total: float | None,
        unit: str = "it",
        desc: str = "",
        *,
        quiet: bool = False,
        initial: float = 0,
        stream: TextIO | None = None,
        interval: float | None = None,
        leave: bool = True,
        tty: bool | None = None,
        rate: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.unit, self.desc, self.quiet, self.show_rate = total, unit, desc, quiet, rate
        self.n = self._initial = initial
        self.stream = stream if stream is not None else sys.stderr
        self.interval = progress_interval() if interval is None else float(interval)
        self.is_tty = (not quiet) and (_is_tty(self.stream) if tty is None else tty)
        self._clock = clock
        self._start = self._last_line = clock()
        self._postfix: dict[str, Any] = {}
        self._closed = False
        self._bar = None
        if self.is_tty:
            from tqdm import tqdm

            scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
            shape = {} if rate else {"bar_format": "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"}
            self._bar = tqdm(
                total=total,
                initial=initial,
                unit=unit,
                desc=desc or None,
                file=self.stream,
                dynamic_ncols=True,
                leave=leave,
                **scale,
                **shape,
            )

    # ------------------------------------------------------------------------------------------------ counting
    def update(self, n: float = 1) -> None:
        """Count `n` more; in plain mode print a line if `interval` seconds passed since the last one."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif not self.quiet and not self._done():
            now = self._clock()
            if now - self._last_line >= self.interval:
                self._last_line = now
                self._print(self.line())

    def set_postfix(self, **figures: Any) -> None:
        """Key figures (loss, images/s) shown after the count; replaces the previous set. Floats get 4
        significant digits; pass a string to choose the format yourself."""
        self._postfix = dict(figures)
        if self._bar is not None:
            self._bar.set_postfix({k: _figure(v) for k, v in figures.items()}, refresh=False)

    def _done(self) -> bool:
        return self.total is not None and self.n >= self.total  # close() prints the final line

    # ------------------------------------------------------------------------------------------------ messages
    def write(self, message: str) -> None:
        """Print `message` on its own line above the bar (plain mode: just the line). Dropped when quiet."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            self._print(message)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """While inside, others may print to the terminal (warnings.warn): the bar is cleared, then redrawn below."""
        if self._bar is None:
            yield
            return
        with self._bar.external_write_mode(file=self.stream):
            yield

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    # ---------------------------------------------------------------------------------------------------- lines
    def line(self, final: bool = False) -> str:
        """The plain line for the count so far (the final one when `final`)."""
        elapsed = self._clock() - self._start
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else None
        count = (
            _amount(self.n, self.unit)
            if self.total is None
            else f"{_amount(self.n, self.unit)}/{_amount(self.total, self.unit)}"
        )
        unit = "" if self.unit == "B" else f" {self.unit}"
        parts = [f"{self.desc}: " if self.desc else ""]
        if final:
            parts.append(
                f"{'done' if self._done() or self.total is None else 'stopped at'} {count}{unit} "
                f"in {_duration(elapsed)}"
            )
        else:
            pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            parts.append(f"{count}{unit}{pct}")
        figures = []
        if self.show_rate and rate is not None and rate > 0:
            figures.append(f"{_amount(rate, 'B')}/s" if self.unit == "B" else f"{_rate(rate)} {self.unit}/s")
            if not final and self.total is not None and self.n < self.total:
                figures.append(f"eta {_duration((self.total - self.n) / rate)}")
        figures += [f"{k}={_figure(v)}" for k, v in self._postfix.items()]
        return "".join(parts) + "".join(f", {f}" for f in figures)

    # ---------------------------------------------------------------------------------------------------- close
    def close(self) -> None:
        """Close the bar, or print the final plain line; only the first call does anything."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif not self.quiet:
            self._print(self.line(final=True))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
