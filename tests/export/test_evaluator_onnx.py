"""export/evaluator_onnx.py: a trained evaluator exported by the generator's exporter and verified like a generator
(checker, interface, metadata, logits and features against PyTorch at three batch sizes); a graph that computes
something else is refused and nothing is written."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgegan.export import evaluator_onnx
from edgegan.export.check_records import AtolError
from edgegan.export.evaluator_onnx import evaluator_path, export_evaluator
from edgegan.export.staging import ExportOptionError
from edgegan.runtime.evaluation.quality import Evaluator
from edgegan.trainer.evaluator_training import EvaluatorConfig, PixelsEvaluator, train_evaluator
from tests.quality_helpers import CLASS_NAMES, train_tiny_evaluator


@pytest.fixture(scope="module")
def trained(shapes_npz):
    cfg = EvaluatorConfig(
        dataset="npz",
        data_dir=str(shapes_npz),
        epochs=20,
        batch_size=32,
        width=4,
        feature_dim=16,
        max_steps=30,
        lr=1e-2,
        dropout=0.0,
        threads=1,
    )
    return train_evaluator(cfg, progress=False)


def test_train_and_export(shapes_npz, tmp_path):
    path = train_tiny_evaluator(shapes_npz, tmp_path / "ev.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    assert session.get_inputs()[0].type == "tensor(uint8)"
    assert sorted(o.name for o in session.get_outputs()) == ["features", "logits"]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["edgegan.evaluator"] == "1" and meta["edgegan.evaluator.dataset"] == "npz"
    assert meta["edgegan.evaluator.feature_dim"] == "16" and "fc1" in meta["edgegan.evaluator.feature_layer"]
    ev = Evaluator(path)
    assert ev.info.class_names == CLASS_NAMES and ev.info.num_classes == 3
    assert ev.info.train["accuracy_split"] == "test" and ev.info.train["accuracy_images"] == 150
    assert ev.info.train["steps"] == 60 and ev.info.train["onnx_max_logit_err"] < 1e-3
    # The stored accuracy is the exported file's own, on the test split.
    data = np.load(shapes_npz)
    _, probs = ev.run(data["test_images"][:, :, :, None])
    assert ev.info.test_accuracy == pytest.approx((probs.argmax(1) == data["test_labels"]).mean())
    assert ev.info.test_accuracy >= 0.8  # three shapes are easy
    for batch in (1, 9):  # dynamic batch axis
        logits, features = session.run(None, {"pixels": data["test_images"][:batch, :, :, None]})
        assert logits.shape[0] == batch and features.shape == (batch, 16)


def test_verified_like_a_generator(trained, tmp_path):
    result = export_evaluator(trained, tmp_path / "ev.onnx")
    records = {r.name: r for r in result.records}
    assert list(records) == [
        "onnx_checker",
        "interface",
        "metadata",
        "vs_torch_batch1",
        "vs_torch_batch3",
        "vs_torch_batch17",
    ]
    assert all(r.passed for r in result.records)
    assert "pixels uint8 ['batch', 16, 16, 1]" in records["interface"].detail
    assert records["vs_torch_batch17"].max_err <= 1e-4 and result.info.train["onnx_max_logit_err"] < 1e-4
    model = onnx.load(str(result.path))
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}  # folded, as a generator's is
    assert {p.key: p.value for p in model.metadata_props} == result.info.to_metadata()


def test_a_graph_that_disagrees_with_torch_is_refused_and_nothing_is_written(trained, tmp_path, monkeypatch):
    real = evaluator_onnx.export_graph

    def wrong(module, image_shape):  # the graph of another network: fc2's bias moved
        other = PixelsEvaluator(copy.deepcopy(module.net)).eval()
        with torch.no_grad():
            other.net.fc2.bias += 0.5
        return real(other, image_shape)

    monkeypatch.setattr(evaluator_onnx, "export_graph", wrong)
    with pytest.raises(AtolError, match="vs_torch_batch1") as info:
        export_evaluator(trained, tmp_path / "ev.onnx")
    assert "logits max err 0.5" in str(info.value)
    assert not list(tmp_path.iterdir())


def test_the_path_must_be_an_onnx_file(tmp_path, monkeypatch):
    with pytest.raises(ExportOptionError, match="ending in .onnx"):
        evaluator_path(tmp_path / "e.pt", "npz")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert evaluator_path(None, "fashion-mnist") == tmp_path / "xdg" / "edgegan" / "evaluators" / "fashion-mnist.onnx"
