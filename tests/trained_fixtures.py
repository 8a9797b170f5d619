"""The real trained fixtures (tests/fixtures/*.pt, made by scripts/make_fixtures.py) and the ways the int8 tests
damage a quantized file on purpose.

Each fixture file is a complete edgegan checkpoint holding only the EMA generator (also under "G"), so export,
sample and the trainer's loaders read it as they read a user's run; `run_folder` lays it out as RUN/checkpoints/
last.pt for the code paths that take a run folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"
#: name -> what it is (tests/fixtures/README.md has the recipes and CPU time)
TRAINED = {
    "fm_dcgan": "Fashion-MNIST DCGAN, width 64 (the default), 2,811 steps: the old int8 check refused it",
    "mnist_cdcgan": "conditional MNIST DCGAN, width 32, 2,000 steps",
    "mnist_gan": "MNIST MLP GAN, width 32, 2,000 steps",
}


def fixture_checkpoint(name: str) -> Path:
    """tests/fixtures/NAME.pt; a missing file is a broken checkout, not a reason to skip."""
    path = FIXTURE_DIR / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run python scripts/make_fixtures.py --only {name}")
    return path


def fixture_record(name: str) -> dict:
    """The fixture's recipe and cost as scripts/make_fixtures.py wrote them (tests/fixtures/fixtures.json)."""
    return json.loads((FIXTURE_DIR / "fixtures.json").read_text())[name]


def run_folder(name: str, parent: Path) -> Path:
    """parent/NAME laid out as a run folder (checkpoints/last.pt, a copy of the fixture)."""
    run = parent / name
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fixture_checkpoint(name), run / "checkpoints" / "last.pt")
    return run


def export_core(ckpt: Path, work: Path):
    """Export `ckpt` as `edgegan export` does, without verifying: (fp32 path in the shipped graph form, core path
    (torch's export, what int8 quantizes), fp32 contract, CachedReference of the PyTorch generator)."""
    from edgegan.export.graph_forms import optimize_fp32
    from edgegan.export.onnx import export_generator, fold_batchnorm, set_contract_metadata
    from edgegan.export.pipeline import _torch_reference
    from edgegan.export.verify import CachedReference
    from edgegan.runtime.contract import OUTPUT_FLOAT_NCHW
    from edgegan.trainer.contract import checkpoint_contract
    from edgegan.trainer.sample import load_generator

    G, cfg, state = load_generator(ckpt)
    contract = checkpoint_contract(cfg, state, ema=True, output=OUTPUT_FLOAT_NCHW)
    folded, _ = fold_batchnorm(G)
    core, _ = export_generator(folded, contract, fold_bn=False)
    core_path, fp32_path = work / "core.onnx", work / "generator.onnx"
    onnx.save(core, core_path)
    fp32 = optimize_fp32(core)
    set_contract_metadata(fp32, contract)
    onnx.save(fp32, fp32_path)
    return fp32_path, core_path, contract, CachedReference(_torch_reference(G))


# ---------------------------------------------------------------------------------------------------------
# deliberate damage to a QDQ int8 file: what a quantizer bug or a bad calibration would do


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def _scale_initializer(model: onnx.ModelProto, name: str, factor: float) -> None:
    inits = _initializers(model)
    array = numpy_helper.to_array(inits[name]) * np.float32(factor)
    inits[name].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))


def weight_dequantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The DequantizeLinear nodes of quantized weights (their input is an int8 initializer), in graph order."""
    inits = _initializers(model)
    return [
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in inits
        and inits[n.input[0]].data_type == onnx.TensorProto.INT8
    ]


def activation_quantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The QuantizeLinear nodes of activations (their input is computed, not stored), in graph order."""
    inits = _initializers(model)
    return [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]


def wrong_weight_scale(src: Path, dst: Path, factor: float = 1.5, index: int = 0) -> str:
    """Multiply the weight scale of the `index`-th quantized layer by `factor` (every output channel of it):
    the layer's output grows by that factor, as a quantizer that mixed up two scales would make it. Returns the
    weight's name."""
    model = onnx.load(src)
    node = weight_dequantizers(model)[index]
    _scale_initializer(model, node.input[1], factor)
    onnx.save(model, dst)
    return node.input[0]


def clipped_activation_range(src: Path, dst: Path, fraction: float = 0.25, index: int = 0) -> str:
    """Shrink the calibrated range of the `index`-th quantized activation to `fraction` of itself (its scale
    times `fraction`, shared by its QuantizeLinear and DequantizeLinear): values beyond it saturate, as after
    a calibration that saw too few or too tame latents. Returns the activation's name."""
    model = onnx.load(src)
    node = activation_quantizers(model)[index]
    _scale_initializer(model, node.input[1], fraction)
    onnx.save(model, dst)
    return node.input[0]


# ---------------------------------------------------------------------------------------------------------
# pytest fixtures (imported by tests/conftest.py)


@pytest.fixture(scope="session", params=sorted(TRAINED))
def trained_checkpoint(request) -> Path:
    """Each real trained fixture in turn (a checkpoint file)."""
    return fixture_checkpoint(request.param)


@pytest.fixture(scope="session")
def fm_dcgan_checkpoint() -> Path:
    return fixture_checkpoint("fm_dcgan")


@pytest.fixture(scope="session")
def mnist_cdcgan_checkpoint() -> Path:
    return fixture_checkpoint("mnist_cdcgan")


@pytest.fixture(scope="session")
def mnist_gan_checkpoint() -> Path:
    return fixture_checkpoint("mnist_gan")
