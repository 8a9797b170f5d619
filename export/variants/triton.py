"""The triton variant: a Triton Inference Server model repository serving generator.onnx
(triton/edgegan_NAME/{config.pbtxt, 1/model.onnx}, written by edgegan.export.triton_repository)."""

from __future__ import annotations

from pathlib import Path

from edgegan.export.triton_repository import PLATFORM, check_repository, write_repository
from edgegan.export.variants.variant import Built, Sources


def build(sources: Sources, path: Path) -> Built:
    """path is <stage>/triton/<model name>; Triton's max_batch_size is the TensorRT profile's max."""
    max_batch = sources.options.trt_batch[2]
    repo_dir, name = path.parent, path.name
    repo = write_repository(sources.written["fp32"], repo_dir, name, sources.contract, max_batch_size=max_batch)
    checks = check_repository(
        repo_dir / repo["config"],
        sources.written["fp32"],
        repo_dir / repo["model_file"],
        name,
        sources.contract,
        max_batch,
    )
    return Built(checks=checks, extra={"triton": {"model": name, "max_batch_size": max_batch, "platform": PLATFORM}})
