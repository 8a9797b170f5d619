"""edgegan.runtime.progress: a tqdm bar on a TTY, plain lines at most every N seconds elsewhere, nothing when quiet."""

from __future__ import annotations

import hashlib
import io
import re
import warnings

import numpy as np
import pytest

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.progress import DEFAULT_INTERVAL, INTERVAL_ENV, Progress, progress_interval


class FakeClock:
    """Seconds that move only when the test says so: the interval logic without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _default_interval(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)


def test_plain_lines_at_most_every_interval_then_a_final_line():
    clock, out = FakeClock(), io.StringIO()
    with Progress(100, unit="step", desc="train fm", stream=out, clock=clock, interval=10) as bar:
        for _ in range(99):
            clock.now += 1.5
            bar.update()
            bar.set_postfix(loss_g=0.712345, img_s="1234")
        clock.now += 1.5
        bar.update()  # reaches the total: no periodic line, the final one says it
    lines = out.getvalue().splitlines()
    # A line once 10 s have passed since the last (every 7th update at 1.5 s each): 99 updates -> 14 lines.
    assert len(lines) == 14 + 1 and "\r" not in out.getvalue()
    assert lines[0] == "train fm: 7/100 step (7%), 0.667 step/s, eta 2:20, loss_g=0.7123, img_s=1234"
    assert lines[1].startswith("train fm: 14/100 step (14%)")
    assert lines[-1] == "train fm: done 100/100 step in 2:30, 0.667 step/s, loss_g=0.7123, img_s=1234"


def test_no_line_before_the_interval_and_one_final_line():
    clock, out = FakeClock(), io.StringIO()
    with Progress(1000, unit="image", desc="generate", stream=out, clock=clock, interval=10) as bar:
        for _ in range(9):
            clock.now += 1.0
            bar.update(100)
    assert out.getvalue().splitlines() == ["generate: stopped at 900/1000 image in 9s, 100 image/s"]


def test_close_prints_once_and_counts_from_initial_on_resume():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(50, unit="step", desc="train", initial=40, stream=out, clock=clock, interval=10)
    clock.now += 5
    bar.update(10)
    bar.close()
    bar.close()
    assert out.getvalue() == "train: done 50/50 step in 5s, 2 step/s\n"  # 10 steps in 5 s, not 50


def test_env_sets_the_interval_and_bad_values_are_refused(monkeypatch):
    assert progress_interval() == DEFAULT_INTERVAL == 10
    monkeypatch.setenv(INTERVAL_ENV, "0")
    clock, out = FakeClock(), io.StringIO()
    with Progress(3, unit="step", stream=out, clock=clock) as bar:
        bar.update()
        bar.update()
    assert out.getvalue().splitlines() == ["1/3 step (33%)", "2/3 step (67%)", "stopped at 2/3 step in 0s"]
    for bad in ("ten", "-1", "nan", "inf"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        with pytest.raises(EdgeganError, match=f"{INTERVAL_ENV}='{bad}': give the seconds between progress lines"):
            Progress(3)


def test_bytes_and_unknown_totals_read_naturally():
    clock, out = FakeClock(), io.StringIO()
    with Progress(None, unit="B", desc="download t10k.gz", stream=out, clock=clock, interval=0) as bar:
        clock.now += 2
        bar.update(3 * 1024 * 1024)
    assert out.getvalue().splitlines() == [
        "download t10k.gz: 3.0 MiB, 1.5 MiB/s",
        "download t10k.gz: done 3.0 MiB in 2s, 1.5 MiB/s",
    ]


def test_quiet_prints_nothing_on_a_pipe_or_a_terminal():
    for stream in (io.StringIO(), Terminal()):
        clock = FakeClock()
        with Progress(10, unit="step", desc="x", quiet=True, stream=stream, clock=clock, interval=0) as bar:
            for _ in range(10):
                clock.now += 100
                bar.update()
                bar.set_postfix(loss=1.0)
            bar.write("a message")
            with bar.paused():
                pass
        assert stream.getvalue() == "" and not bar.is_tty


def test_write_puts_messages_on_their_own_lines_when_piped():
    out = io.StringIO()
    with Progress(2, unit="step", desc="x", stream=out, interval=10) as bar:
        bar.update()
        bar.write("checkpoint at step 1")
        with bar.paused():
            out.write("someone else's line\n")
        bar.update()
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["checkpoint at step 1", "someone else's line"] and lines[2].startswith("x: done 2/2 step")


def test_a_terminal_gets_a_tqdm_bar():
    from tqdm import tqdm

    term = Terminal()
    with Progress(5, unit="step", desc="train fm", stream=term) as bar:
        assert bar.is_tty and isinstance(bar._bar, tqdm)
        for _ in range(5):
            bar.set_postfix(loss_g=0.5)
            bar.update()
        bar.write("a message above the bar")
        with bar.paused(), warnings.catch_warnings(record=True):
            warnings.warn("collapse", RuntimeWarning, stacklevel=2)
    text = term.getvalue()
    assert "\r" in text and "train fm" in text and "5/5" in text and "loss_g=0.5" in text
    assert "a message above the bar\n" in text
    assert "done" not in text  # no plain final line: the bar is the display
    assert Progress(5, tty=False, stream=Terminal()).is_tty is False  # the mode can be forced


def test_download_progress_is_plain_when_piped(tmp_path, capsys):
    from edgegan.runtime.evaluation.downloads import fetch

    payload = np.arange(300_000, dtype=np.uint8).tobytes()
    src = tmp_path / "src.gz"
    src.write_bytes(payload)
    dest = tmp_path / "cache" / "t10k.gz"
    fetch(src.as_uri(), dest, [hashlib.sha256(payload).hexdigest()], progress=True)
    assert dest.read_bytes() == payload
    err = capsys.readouterr().err
    assert "\r" not in err and len(err.splitlines()) == 1
    assert re.fullmatch(r"download t10k\.gz: done 293\.0 KiB/293\.0 KiB in \d+s(, [\d.]+ [KMG]?i?B/s)?\n", err)
    dest.unlink()
    fetch(src.as_uri(), dest, [hashlib.sha256(payload).hexdigest()], progress=False)
    assert capsys.readouterr().err == ""


def test_scoring_and_generating_in_counted_batches_give_the_same_images_and_figures(
    evaluator_onnx, shapes_npz, float_model, capsys, monkeypatch
):
    from edgegan.runtime.evaluation.evaluator import Evaluator
    from edgegan.runtime.evaluation.features import score_images
    from edgegan.runtime.evaluation.quality import _generate
    from edgegan.runtime.generator import Generator

    monkeypatch.setenv(INTERVAL_ENV, "0")
    gen = Generator(float_model, batch_size=7)
    images = _generate(gen, 30, 5, progress=True)
    np.testing.assert_array_equal(images, gen.sample(30, seed=5))
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("generate: 7/30 image (23%)") and "generate: done 30/30" in err

    ev = Evaluator(evaluator_onnx, batch_size=8)
    real = np.load(shapes_npz)["test_images"][:30, :, :, None]  # uint8 [30, 16, 16, 1]
    features, probs = score_images(ev, real, "score real", progress=True)
    whole_features, whole_probs = ev.run(real)
    np.testing.assert_array_equal(features, whole_features)
    np.testing.assert_array_equal(probs, whole_probs)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 3 + 1 and "score real: done 30/30 image" in err  # 8+8+8(+6 is the end), final


def test_eval_names_each_stage_when_piped_and_is_silent_without_progress(
    make_model, evaluator_onnx, shapes_npz, cache_home, capsys
):
    from edgegan.runtime.evaluation.quality import evaluate

    model = make_model("progress16/generator.onnx", nz=8, channels=1, height=16, width=16)
    report = evaluate(model, "npz", data_dir=shapes_npz, n=60, evaluator=evaluator_onnx)
    err = capsys.readouterr().err
    stages = [line for line in err.splitlines() if line.startswith("eval: ")]
    assert "\r" not in err and len(err.splitlines()) < 15
    assert stages[0] == "eval: 0/5 stage (0%), next=load and score the real reference"
    assert stages[2] == "eval: 2/5 stage (40%), next=score the generated images: FID, KID, precision, recall"
    assert stages[-1].startswith("eval: done 5/5 stage in ") and "generate: done 60/60 image" in err
    again = evaluate(model, "npz", data_dir=shapes_npz, n=60, evaluator=evaluator_onnx, progress=False)
    assert capsys.readouterr().err == "" and again.metrics == report.metrics
