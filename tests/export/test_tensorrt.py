"""--tensorrt: a clear error before anything is written where TensorRT or CUDA is missing; a real engine where
both exist (skipped otherwise, with the reason)."""
from __future__ import annotations

import hashlib
import sys

import pytest

from edgegan.export.pipeline import export_checkpoint
from edgegan.export.tensorrt import TensorRTError, check_tensorrt
from edgegan.runtime.errors import EdgeganError


def _tensorrt_usable() -> str | None:
    """None when TensorRT and a CUDA GPU are usable, else the reason."""
    try:
        check_tensorrt()
    except TensorRTError as exc:
        return str(exc)
    return None


def test_missing_tensorrt_is_a_clear_error_and_writes_nothing(dcgan_cond_ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError, as where it is absent
    with pytest.raises(TensorRTError, match="pip install tensorrt") as info:
        check_tensorrt()
    assert isinstance(info.value, EdgeganError)
    out = tmp_path / "models" / "m"
    with pytest.raises(TensorRTError, match="--tensorrt"):
        export_checkpoint(dcgan_cond_ckpt, out, tensorrt=True, fp16=True, progress=False)
    assert not (tmp_path / "models").exists()  # refused before any folder or file was made


def test_engine_build_with_batch_profile(dcgan_cond_ckpt, tmp_path):
    reason = _tensorrt_usable()
    if reason is not None:
        pytest.skip(f"TensorRT engine build needs tensorrt and CUDA: {reason}")
    out = tmp_path / "trt"
    report = export_checkpoint(dcgan_cond_ckpt, out, tensorrt=True, fp16=True, trt_batch=(1, 4, 8), progress=False)
    plan = out / "generator.plan"
    digest = (out / "generator.plan.sha256").read_text().split()[0]
    assert digest == hashlib.sha256(plan.read_bytes()).hexdigest()
    engine = report["variants"]["tensorrt"]["engine"]
    assert engine["flags"] == ["FP16"]
    assert engine["profile"]["z"] == {"min": [1, 16], "opt": [4, 16], "max": [8, 16]}
    assert engine["profile"]["label"]["max"] == [8]
