"""Issue 19, items 6 and 7: a model whose output is NaN, and a conditional model whose label table is smaller than
the class count its metadata declares.

Before: NaN output wrote black images with exit 0 and a raw numpy RuntimeWarning; `sample --label 7` of a model
whose embedding holds 5 rows (metadata: 10 classes) ended in onnxruntime's Gather traceback.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgegan.runtime import Generator
from edgegan.runtime.contract import ContractError
from edgegan.runtime.generator import ModelOutputError
from edgegan.runtime.labels import label_tables
from tests.cli_helpers import one_error_line
from tests.cli_helpers import run as invoke
from tests.runtime.conftest import build_generator_onnx


def nan_model(tmp_path):
    path = build_generator_onnx(tmp_path / "nan" / "generator.onnx")
    model = onnx.load(str(path))
    bias = next(t for t in model.graph.initializer if t.name == "b")
    bias.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(bias).shape, np.nan, np.float32), "b"))
    onnx.save(model, str(path))
    return path


def test_nan_output_is_one_line_and_writes_nothing(tmp_path):
    path = nan_model(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw numpy RuntimeWarning on the way
        result = invoke("sample", path, "-n", 3, "-o", tmp_path / "g.png", "--npy", tmp_path / "i.npy", "-q")
    one_error_line(result, "NaN/Inf", str(path))
    assert "RuntimeWarning" not in result.output
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "i.npy").exists()
    with pytest.raises(ModelOutputError, match="NaN/Inf in 60 of 60"):
        Generator(path).sample(3, seed=0)


def lying_labels_model(tmp_path, precision="fp32"):
    """Embedding [5, nz] but edgegan.num_classes = 10 (and ten class names)."""
    names = [f"c{i}" for i in range(10)]
    return build_generator_onnx(
        tmp_path / precision / "generator.onnx",
        num_classes=5,
        precision=precision,
        class_names=names[:5],
        metadata={"edgegan.num_classes": "10", "edgegan.class_names": json.dumps(names)},
    )


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_label_table_smaller_than_the_metadata_is_refused_at_load(precision, tmp_path):
    path = lying_labels_model(tmp_path, precision)
    assert label_tables(path) == [("embed", 5)]
    with pytest.raises(ContractError, match="says 10 classes, but its label table 'embed' holds 5 rows"):
        Generator(path)
    one_error_line(
        invoke("sample", path, "-n", 1, "--label", 7, "-o", tmp_path / "g.png", "-q"), "label table", "5 rows"
    )
    assert not (tmp_path / "g.png").exists()


def test_honest_conditional_models_still_load(cond_model, uint8_model, float_model):
    assert label_tables(cond_model) == [("embed", 3)] and label_tables(float_model) == []
    for path in (cond_model, uint8_model):
        images = Generator(path).sample(3, seed=1, labels=[0, 1, 2])
        assert len(images) == 3
