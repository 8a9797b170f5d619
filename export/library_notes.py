"""What third-party libraries print while a variant is built, caught and said once, in our words.

onnxruntime's quantize_static logs "Please consider (to run) pre-processing before quantization" with
`logging.warning` on the root logger, twice per call; and a root logger without handlers
makes `logging.warning` install a stderr handler for the rest of the process. The advice does not apply: the graph
it gets is torch.onnx's, already shape-inferred and BatchNorm-folded (export/onnx.py). Inside `captured_notes`
records logged on the root logger (or reaching it) and Python warnings are collected instead of printed; on exit
the known advice is dropped and every other message becomes one line, each distinct message once.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Callable, Iterator

# Advice that does not apply to our graphs: dropped. quantize_static words it two ways, once before the work
# ("Please consider to run pre-processing ...") and once after ("Please consider pre-processing ...").
KNOWN_ADVICE = re.compile(r"^Please consider (to run )?pre-processing before quantization")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name if record.name != 'root' else 'onnxruntime'}: {record.getMessage()}")


@contextlib.contextmanager
def captured_notes(say: Callable[[str], None], what: str) -> Iterator[None]:
    """Collect what libraries log or warn inside the block; then `say` each distinct message once, as
    "<what>: <library>: <message>", leaving out KNOWN_ADVICE.

    The root logger's handlers are swapped for a collector only inside the block and restored after it.
    """
    root = logging.getLogger()
    collector = _Collect()
    saved = root.handlers[:]
    root.handlers = [collector]
    try:
        with warnings.catch_warnings(record=True) as caught:  # the filters in force still apply
            yield
    finally:
        root.handlers = saved
    messages = collector.messages + [f"{w.category.__name__}: {w.message}" for w in caught]
    for message in dict.fromkeys(messages):
        text = message.split(": ", 1)[-1]
        if not KNOWN_ADVICE.match(text):
            say(f"{what}: {message.splitlines()[0]}")
