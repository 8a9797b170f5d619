"""Signature checks against `GeneratorContract.io_spec()`: the onnxruntime session's inputs and outputs
(runtime/session.py) and a TensorRT engine's tensor names (runtime/tensorrt_backend.py), on hand-made NodeArgs
so each field of the spec is tried alone and no tensorrt is needed."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from edgegan.runtime.contract import (
    GRAPH_FORM_CONVTRANSPOSE,
    KEY_GRAPH_FORM,
    LATENT_RULE_NUMPY,
    ContractError,
    GeneratorContract,
)
from edgegan.runtime.session import check_signature
from edgegan.runtime.tensorrt_backend import TensorRTError, check_engine_tensors


def contract(num_classes: int = 3, output: str = "float_nchw") -> GeneratorContract:
    return GeneratorContract(arch="tiny", nz=8, num_classes=num_classes, channels=1, height=4, width=5, output=output)


def arg(name: str, type_: str, shape: list) -> SimpleNamespace:
    """An onnxruntime NodeArg as check_signature reads it."""
    return SimpleNamespace(name=name, type=type_, shape=shape)


def signature(**changes: SimpleNamespace) -> tuple[list, list]:
    """A conditional float_nchw generator's inputs and outputs, with `changes` replacing tensors by name."""
    tensors = {
        "z": arg("z", "tensor(float)", ["batch", 8]),
        "label": arg("label", "tensor(int64)", ["batch"]),
        "image": arg("image", "tensor(float)", ["batch", 1, 4, 5]),
    }
    tensors.update(changes)
    return [tensors["z"], tensors["label"]], [tensors["image"]]


def test_the_contract_signature_passes_symbolic_and_unknown_dims_too():
    check_signature(*signature(), contract())
    check_signature(*signature(z=arg("z", "tensor(float)", ["N", None])), contract())  # nothing fixed: accepted


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"label": arg("label", "tensor(int32)", ["batch"])},
            "input label is tensor(int32) [batch], expected tensor(int64) [batch]",
        ),
        ({"label": arg("label", "tensor(int64)", [4])}, "input label has a fixed batch of 4"),
        (
            {"z": arg("z", "tensor(float)", ["batch", 8, 1])},
            "input z is tensor(float) [batch, 8, 1], expected tensor(float) [batch, 8]",
        ),
        (
            {"image": arg("image", "tensor(float)", ["batch", 1, 4, 6])},
            "expected tensor(float) [batch, 1, 4, 5] (edgegan.output=float_nchw)",
        ),
        ({"image": arg("image", "tensor(float)", [1, 1, 4, 5])}, "output image has a fixed batch of 1"),
        ({"image": arg("pixels", "tensor(float)", ["batch", 1, 4, 5])}, "outputs are ['pixels'], expected ['image']"),
    ],
)
def test_each_part_of_the_io_spec_is_checked(changes, message):
    with pytest.raises(ContractError, match="not an edgegan generator") as info:
        check_signature(*signature(**changes), contract())
    assert message in str(info.value)


def test_every_problem_is_named_at_once():
    inputs, outputs = signature(
        z=arg("z", "tensor(double)", ["batch", 8]), image=arg("image", "tensor(float)", [2, 1, 4, 5])
    )
    with pytest.raises(ContractError) as info:
        check_signature(inputs[:1], outputs, contract())
    text = str(info.value)
    assert "takes ['z', 'label']" in text and "input z is tensor(double)" in text and "fixed batch of 2" in text


def test_uint8_output_is_nhwc():
    image = arg("image", "tensor(uint8)", ["batch", 4, 5, 1])
    check_signature(*signature(image=image), contract(output="uint8_nhwc"))
    with pytest.raises(ContractError, match=r"expected tensor\(uint8\) \[batch, 4, 5, 1\]"):
        check_signature(*signature(), contract(output="uint8_nhwc"))


def test_engine_tensor_names_follow_the_io_spec():
    check_engine_tensors(["z", "label", "image"], ["z", "label"], contract())
    check_engine_tensors(["z", "image"], ["z"], contract(num_classes=0))
    with pytest.raises(TensorRTError, match=r"inputs \['z', 'label'\], outputs \['image'\]"):
        check_engine_tensors(["z", "image"], ["z"], contract())
    with pytest.raises(TensorRTError, match="do not match the contract"):
        check_engine_tensors(["z", "label", "image", "extra"], ["z", "label"], contract())


def test_the_graph_form_changes_nothing_the_contract_promises():
    """A provider's form (edgegan.graph_form) is the same contract: io_spec, latent rule, pixels, precision."""
    for base in (
        contract(),
        contract(0, "uint8_nhwc"),
        dataclasses.replace(contract(), latent_rule=LATENT_RULE_NUMPY, precision="fp16"),
    ):
        form = base.with_graph_form(GRAPH_FORM_CONVTRANSPOSE)
        assert form.io_spec() == base.io_spec() and dataclasses.replace(form, graph_form=None) == base
        assert (form.latent_rule, form.output, form.precision) == (base.latent_rule, base.output, base.precision)
        meta = base.to_metadata()
        assert KEY_GRAPH_FORM not in meta  # files without a form keep exactly the keys they had
        assert form.to_metadata() == {**meta, KEY_GRAPH_FORM: "convtranspose"}
        assert GeneratorContract.from_metadata(form.to_metadata()) == form
        assert GeneratorContract.from_metadata(meta).graph_form is None  # older files load, recording none
    newer = contract().with_graph_form("convtranspose-nhwc-fp16")  # a newer export's form: still loads
    assert GeneratorContract.from_metadata(newer.to_metadata()) == newer


@pytest.mark.parametrize("form", ["", " phase"])
def test_a_graph_form_must_be_a_name(form):
    with pytest.raises(ContractError, match="graph form .* is not a name"):
        GeneratorContract.from_metadata({**contract().to_metadata(), KEY_GRAPH_FORM: form})
