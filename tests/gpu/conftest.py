"""GPU tests (`pytest -m gpu`): each needs CUDA and skips with the reason where it is absent (CPU CI, a laptop).

On the GPU machine onnxruntime-gpu comes from the carry (docs/gpu_machine.md); `onnxruntime.preload_dlls()`
loads the CUDA and cuDNN libraries torch's nvidia packages installed, before the first CUDA session.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _ort_cuda_reason() -> str | None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install onnxruntime-gpu)"
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()
    return None


@pytest.fixture(scope="session")
def torch_cuda():
    """torch with a CUDA device, or a skip."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: torch.cuda.is_available() is False")
    return torch


@pytest.fixture(scope="session")
def ort_cuda():
    """onnxruntime's CUDA provider, or a skip."""
    reason = _ort_cuda_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def cuda_export(tmp_path_factory, torch_cuda) -> tuple[Path, Path]:
    """(checkpoint, export folder) of a tiny conditional DCGAN 28x28 exported with --cuda and --fp16."""
    from edgegan.export.pipeline import export_checkpoint
    from tests.export.conftest import make_checkpoint

    root = tmp_path_factory.mktemp("gpu")
    ckpt = make_checkpoint(root / "dcgan.pt", arch="dcgan", num_classes=3)
    out = root / "export"
    export_checkpoint(ckpt, out, cuda=True, fp16=True, progress=False, quality_gate=False)
    return ckpt, out
