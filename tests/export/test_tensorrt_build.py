"""--tensorrt: the batch profile's one check and the optimization profile taken from the contract's io_spec (pure,
no TensorRT needed); a clear error before anything is written where TensorRT or CUDA is missing; a real engine
where both exist (skipped otherwise, with the reason)."""

from __future__ import annotations

import hashlib
import sys

import pytest

from edgegan.export.pipeline import export_checkpoint
from edgegan.export.staging import ExportOptionError
from edgegan.export.tensorrt_build import (
    build_engine,
    check_batch_profile,
    check_tensorrt,
    optimization_profile,
    parse_batch_profile,
)
from edgegan.runtime.contract import GeneratorContract
from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.tensorrt_backend import TensorRTError


def test_batch_profile_is_checked_once_for_every_caller(tmp_path):
    assert check_batch_profile(["1", 4, 8.0]) == (1, 4, 8) and parse_batch_profile("2,2,2") == (2, 2, 2)
    for bad in ((4, 2, 8), (0, 1, 2), (1, 2), (1, 2, 3, 4)):
        with pytest.raises(ExportOptionError, match="min <= opt <= max"):
            check_batch_profile(bad)
    for text in ("8,4,1", "1,x,3", "1,2"):
        with pytest.raises(ExportOptionError, match="give MIN,OPT,MAX"):
            parse_batch_profile(text)
    contract = GeneratorContract(arch="dcgan", nz=16, num_classes=3, channels=1, height=28, width=28)
    with pytest.raises(ExportOptionError, match="min <= opt <= max"):  # before TensorRT is imported
        build_engine(tmp_path / "g.onnx", tmp_path / "g.plan", contract, batch=(8, 4, 1))


def test_optimization_profile_comes_from_the_contract_io_spec():
    conditional = GeneratorContract(arch="dcgan", nz=16, num_classes=3, channels=1, height=28, width=28)
    assert optimization_profile(conditional, (1, 4, 8)) == {
        "z": {"min": [1, 16], "opt": [4, 16], "max": [8, 16]},
        "label": {"min": [1], "opt": [4], "max": [8]},
    }
    plain = GeneratorContract(arch="gan", nz=100, num_classes=0, channels=3, height=32, width=32, output="uint8_nhwc")
    assert optimization_profile(plain, (2, 16, 64)) == {"z": {"min": [2, 100], "opt": [16, 100], "max": [64, 100]}}
    assert list(optimization_profile(conditional, (1, 1, 1))) == [s.name for s in conditional.io_spec().inputs]


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
