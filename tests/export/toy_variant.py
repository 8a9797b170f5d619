"""A toy export variant for tests/export/test_variant_table.py: the one module a new variant needs (its row is
the test's). It writes the level it was given, so the test sees the CLI's value reach the builder."""

from __future__ import annotations

from pathlib import Path

from edgegan.export.check_records import CheckRecord
from edgegan.export.variants import Built, Sources

PREFLIGHTS: list[str] = []  # one entry per preflight run


def preflight() -> None:
    PREFLIGHTS.append("toy")


def build(sources: Sources, path: Path) -> Built:
    """generator.toy.txt: "toy level N" (N: the toy_level option)."""
    path.write_text(f"toy level {sources.options.toy_level}\n")
    check = CheckRecord(
        "toy_written",
        path.read_text() == f"toy level {sources.options.toy_level}\n",
        kind="structure",
        detail="the toy file holds its level",
    )
    return Built(checks=[check], extra={"toy_level": sources.options.toy_level})
