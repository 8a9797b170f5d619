"""tests/real_data.py: a test needing real data skips where it is absent, and fails instead under CI."""

from __future__ import annotations

import pytest

from tests import real_data


@pytest.mark.parametrize(
    "ci, outcome",
    [
        (None, pytest.skip.Exception),
        ("", pytest.skip.Exception),
        ("false", pytest.skip.Exception),
        ("true", pytest.fail.Exception),
        ("1", pytest.fail.Exception),
    ],
)
def test_absent_data_skips_unless_ci_is_set(monkeypatch, ci, outcome):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="real no-such-set is not installed"):
        real_data.real_dataset("no-such-set")


def test_edgegan_data_is_searched_after_the_system_folder(monkeypatch, tmp_path):
    (tmp_path / "fashion-mnist").mkdir()
    (tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setattr(real_data, "SYSTEM_DATA", tmp_path / "empty")
    monkeypatch.setattr(real_data, "_ENV_DATA", str(tmp_path))
    assert real_data.find_dataset("fashion-mnist") == tmp_path / "fashion-mnist"
    assert real_data.find_dataset("mnist") is None
