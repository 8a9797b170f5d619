"""The trainer states the generator contract of what it trained: export stamps it, it never rebuilds it."""

from __future__ import annotations

from edgegan.runtime.contract import OUTPUT_FLOAT_NCHW, GeneratorContract
from edgegan.trainer.config import TrainConfig


def checkpoint_contract(cfg: TrainConfig, ckpt: dict, ema: bool, output: str = OUTPUT_FLOAT_NCHW) -> GeneratorContract:
    """The fp32 generator contract of a checkpoint's G (or EMA-G when `ema`), in the pixel form `output`.

    Args:
        cfg: the run's TrainConfig (checkpoint["config"] parsed).
        ckpt: the checkpoint dict (step, epoch, class_names are read).
        ema: whether the EMA weights are the ones shipped (recorded in `train`).
        output: OUTPUT_FLOAT_NCHW or OUTPUT_UINT8_NHWC.
    """
    model = cfg.model
    names = [str(n) for n in (ckpt.get("class_names") or cfg.class_names or [])]
    contract = GeneratorContract(
        arch=model.arch,
        nz=model.nz,
        num_classes=model.num_classes,
        channels=model.channels,
        height=model.image_size,
        width=model.image_size,
        class_names=names if model.num_classes and len(names) == model.num_classes else [],
        output=output,
        precision="fp32",
        dataset=cfg.dataset,
        train={
            "step": int(ckpt.get("step", 0)),
            "epoch": int(ckpt.get("epoch", 0)),
            "ema": ema,
            "seed": cfg.seed,
            "config_digest": cfg.digest(),
        },
    )
    contract.validate()
    return contract
