"""PyTorch generator -> ONNX graph that follows the generator contract (DESIGN.md).

One job: turn an eval-mode G into an `onnx.ModelProto` with inputs "z" float32 [batch, nz] (+ "label" int64
[batch]), output "image" and a dynamic axis named "batch" everywhere, then stamp the contract into
metadata_props. Verification lives in export/verify.py; files and variants in export/pipeline.py.
`export_module` is the exporter itself (dynamo first, TorchScript as the fallback, the batch axis named), which
the domain evaluator's export (export/evaluator_onnx.py) uses too.

Before export each BatchNorm is folded into the ConvTranspose/Linear before it, in a copy of G: in eval mode
BN is the affine map y = (x - mean) * gamma / sqrt(var + eps) + beta, so folding it is exact up to float
rounding and leaves a graph of ConvTranspose/Gemm + activations only. torch.nn.utils.fusion does the arithmetic.
This is the one BatchNorm folding: the TorchScript fallback exporter would keep BatchNormalization nodes, and the
pipeline checks the fold against the unfolded G in PyTorch, so export/graph_forms.py folds nothing itself.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from edgegan.export.ir_version import cap_ir_version
from edgegan.runtime.contract import (
    BATCH_AXIS,
    INPUT_LABEL,
    INPUT_LATENT,
    OUTPUT_IMAGE,
    GeneratorContract,
)
from edgegan.runtime.errors import EdgeganError, exception_summary
from edgegan.trainer.models import ConditionalBatchNorm

#: Batch size of the example inputs the exporter traces with; verification runs other sizes (1, 3, 17).
EXPORT_BATCH = 2
#: Prefix of the nodes `append_uint8_tail` adds, so later passes (fp16) can leave them alone.
TAIL_PREFIX = "edgegan_pixels/"


ModuleT = TypeVar("ModuleT", bound=nn.Module)


class ExportError(EdgeganError, RuntimeError):
    """PyTorch could not export a model (the generator, the evaluator) to ONNX with any exporter."""


@dataclass
class ExportInfo:
    """How the graph was produced: which exporter ran and why the other did not."""

    exporter: str  # "dynamo" (torch.export based) or "torchscript"
    opset: int
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"exporter": self.exporter, "opset": self.opset, "fallback_reason": self.fallback_reason}


# ---------------------------------------------------------------------------------------------------------
# BatchNorm folding


def _fold_pair(layer: nn.Module, bn: nn.Module) -> nn.Module | None:
    """A new layer computing bn(layer(x)) in eval mode (torch.nn.utils.fusion), or None when this pair cannot be
    folded."""
    if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)) or bn.running_mean is None or bn.running_var is None:
        return None  # track_running_stats=False: BN uses batch statistics even in eval mode, not foldable
    if isinstance(layer, nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d) and layer.groups == 1:
        return fuse_conv_bn_eval(layer, bn, transpose=True)  # weight [C_in, C_out, kH, kW]: scaled along C_out
    if isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        return fuse_conv_bn_eval(layer, bn)  # weight [C_out, C_in / groups, kH, kW]
    if isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d) and bn.num_features == layer.out_features:
        # fuse_linear_bn_eval needs BN's own affine, which the conditional BN's norm has not (affine=False);
        # fuse_conv_bn_weights takes gamma 1, beta 0 then, and a Linear weight [out, in] scales along dim 0.
        fused = copy.deepcopy(layer)
        fused.weight, fused.bias = fuse_conv_bn_weights(
            layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
        )
        return fused
    return None


def fold_batchnorm(model: ModuleT) -> tuple[ModuleT, int]:
    """Copy `model` with every BatchNorm that directly follows a ConvTranspose2d/Conv2d/Linear inside an
    nn.Sequential folded into that layer (the BN becomes nn.Identity).

    Args:
        model: the generator; left untouched.

    Returns:
        (folded copy in eval mode, number of BatchNorm layers folded).
    """
    folded = copy.deepcopy(model).eval()
    count = 0
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for prev, name in zip(names, names[1:]):
            norm = module._modules[name]
            # A class-conditional BatchNorm folds its normalisation; its per-class gain and bias stay (Gathers).
            target = norm.norm if isinstance(norm, ConditionalBatchNorm) else norm
            fused = _fold_pair(module._modules[prev], target)
            if fused is not None:
                module._modules[prev] = fused
                if target is norm:
                    module._modules[name] = nn.Identity()
                else:
                    norm.norm = nn.Identity()
                count += 1
    return folded, count


# ---------------------------------------------------------------------------------------------------------
# Export


class _ContractModule(nn.Module):
    """Fixes the call signature the exporter sees: (z) for unconditional G, (z, label) for conditional G."""

    def __init__(self, generator: nn.Module, conditional: bool):
        super().__init__()
        self.generator = generator
        self.conditional = conditional

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, label if self.conditional else None)  # [B, C, H, W] in [-1, 1]


def _example_inputs(contract: GeneratorContract) -> tuple[torch.Tensor, ...]:
    z = torch.randn(EXPORT_BATCH, contract.nz, generator=torch.Generator().manual_seed(0))
    if contract.conditional:
        label = torch.arange(EXPORT_BATCH, dtype=torch.int64) % contract.num_classes
        return z, label
    return (z,)


def _input_names(contract: GeneratorContract) -> list[str]:
    return [INPUT_LATENT, INPUT_LABEL] if contract.conditional else [INPUT_LATENT]


@contextlib.contextmanager
def _quiet_exporter():
    """The exporters print progress and warn about optional packages (torchvision); keep the CLI's output ours."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export_dynamo(
    module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], outputs: list[str], opset: int
) -> onnx.ModelProto:
    """torch.export-based exporter (torch.onnx.export(dynamo=True)) with a symbolic `batch` dimension."""
    batch = torch.export.Dim(BATCH_AXIS, min=1)
    dynamic = {name: {0: batch} for name in names}
    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            verbose=False,
            input_names=names,
            output_names=outputs,
            dynamic_shapes=dynamic,
            opset_version=opset,
            optimize=True,
            report=False,
        )
    if program is None:  # torch returns None only from the TorchScript exporter (dynamo=False)
        raise ExportError("torch.onnx.export(dynamo=True) returned no ONNXProgram")
    return program.model_proto


def _export_torchscript(
    module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], outputs: list[str], opset: int
) -> onnx.ModelProto:
    """The older TorchScript exporter, used only when the dynamo exporter fails."""
    buffer = io.BytesIO()
    axes = {name: {0: BATCH_AXIS} for name in [*names, *outputs]}
    with _quiet_exporter():
        torch.onnx.export(
            module,
            args,
            buffer,  # type: ignore[arg-type]  # torch types f as a path; dynamo=False writes to file objects too
            dynamo=False,
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def name_batch_axis(model: onnx.ModelProto) -> list[str]:
    """Name dim 0 of every graph input and output `batch` (exporters may call it s0, batch_size, ...).

    Returns:
        Problems found: an input/output whose dim 0 is a fixed number (a batch size baked into the graph).
    """
    problems = []
    renames: dict[str, str] = {}
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims:
            problems.append(f"{value.name} has no shape")
            continue
        if dims[0].HasField("dim_value"):
            problems.append(f"{value.name} has a fixed batch size {dims[0].dim_value}")
            continue
        if dims[0].dim_param and dims[0].dim_param != BATCH_AXIS:
            renames[dims[0].dim_param] = BATCH_AXIS
        dims[0].dim_param = BATCH_AXIS
    # Keep intermediate shapes consistent with the new name.
    for value in model.graph.value_info:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]
    return problems


def set_contract_metadata(model: onnx.ModelProto, contract: GeneratorContract) -> None:
    """Replace metadata_props with exactly the contract's keys."""
    contract.validate()
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, contract.to_metadata())


def append_uint8_tail(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold edgegan.runtime.contract.to_uint8_nhwc into the graph: float [B, C, H, W] in [-1, 1] -> uint8 [B, H, W, C].

    round((x + 1) * 127.5) (Round is half-to-even, like numpy), clipped to [0, 255], cast, transposed.
    Added as plain ONNX nodes after export so precision passes can keep them in float32.
    """
    graph = model.graph
    out = graph.output[0]
    if out.name != OUTPUT_IMAGE or out.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError("append_uint8_tail expects a float output named 'image'")
    src = f"{TAIL_PREFIX}float_image"
    for node in graph.node:
        node.output[:] = [src if o == OUTPUT_IMAGE else o for o in node.output]
        node.input[:] = [src if i == OUTPUT_IMAGE else i for i in node.input]
    p = TAIL_PREFIX
    graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.array(1.0, np.float32), p + "one"),
            onnx.numpy_helper.from_array(np.array(127.5, np.float32), p + "half_range"),
            onnx.numpy_helper.from_array(np.array(0.0, np.float32), p + "lo"),
            onnx.numpy_helper.from_array(np.array(255.0, np.float32), p + "hi"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Add", [src, p + "one"], [p + "shifted"], name=p + "add"),  # [B, C, H, W] in [0, 2]
            helper.make_node("Mul", [p + "shifted", p + "half_range"], [p + "scaled"], name=p + "mul"),  # [0, 255]
            helper.make_node("Round", [p + "scaled"], [p + "rounded"], name=p + "round"),
            helper.make_node("Clip", [p + "rounded", p + "lo", p + "hi"], [p + "clipped"], name=p + "clip"),
            helper.make_node("Cast", [p + "clipped"], [p + "nchw"], name=p + "cast", to=TensorProto.UINT8),
            helper.make_node("Transpose", [p + "nchw"], [OUTPUT_IMAGE], name=p + "nhwc", perm=[0, 2, 3, 1]),
        ]
    )
    dims = out.type.tensor_type.shape.dim
    c, h, w = (d.dim_value for d in dims[1:4])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_IMAGE, TensorProto.UINT8, [BATCH_AXIS, h, w, c]))
    return model


def export_module(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    inputs: list[str],
    outputs: list[str],
    *,
    opset: int,
    what: str = "the generator",
) -> tuple[onnx.ModelProto, ExportInfo]:
    """Export an eval-mode module with dim 0 of every input and output dynamic and named `batch`.

    Tries torch.onnx.export(dynamo=True) with dynamic_shapes first and falls back to the TorchScript exporter
    only when that raises; ExportInfo says which ran and why. The IR version is capped to what the installed
    onnxruntime loads. No metadata is set.

    Args:
        module: the module to export (its forward takes `args`, batch first).
        args: example inputs, batch size EXPORT_BATCH (verification runs other sizes).
        inputs, outputs: the graph's input and output names, in the module's order.
        opset: default-domain opset to export with.
        what: the model, as error messages name it.

    Raises:
        ExportError: both exporters failed, or the graph has a fixed batch size.
    """
    fallback_reason = None
    try:
        model = _export_dynamo(module, args, inputs, outputs, opset)
        exporter = "dynamo"
    except Exception as exc:  # noqa: BLE001 - any exporter failure: try the other exporter, keep the reason
        fallback_reason = exception_summary(exc)
        try:
            model = _export_torchscript(module, args, inputs, outputs, opset)
        except Exception as exc2:  # noqa: BLE001
            raise ExportError(
                f"PyTorch could not export {what} to ONNX (opset {opset}). dynamo exporter: {fallback_reason}; "
                f"TorchScript exporter: {type(exc2).__name__}: {exc2}. Try another --opset."
            ) from exc2
        exporter = "torchscript"
    cap_ir_version(model)  # the exporter stamps its onnx's IR version; the installed onnxruntime may load less
    problems = name_batch_axis(model)
    if problems:
        raise ExportError(f"the exported graph of {what} has no dynamic batch axis: " + "; ".join(problems))
    opset_found = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    return model, ExportInfo(exporter=exporter, opset=int(opset_found), fallback_reason=fallback_reason)


def export_generator(
    generator: nn.Module, contract: GeneratorContract, *, opset: int = 18, fold_bn: bool = True
) -> tuple[onnx.ModelProto, ExportInfo]:
    """Export G to an in-memory ONNX model carrying the contract (float output; see `append_uint8_tail`).

    Args:
        generator: G(z [B, nz], label [B] | None) -> [B, C, H, W]; should be in eval mode.
        contract: what the graph must declare; its `output` must be float_nchw here.
        opset: default-domain opset to export with.
        fold_bn: fold BatchNorm into the preceding layer first (exact in eval mode).

    Returns:
        (model with metadata set and the batch axis named, ExportInfo: export_module's).
    """
    module = _ContractModule(fold_batchnorm(generator)[0] if fold_bn else generator, contract.conditional)
    module.eval()  # both exporters trace inference: BatchNorm on running statistics, whatever G's mode
    model, info = export_module(module, _example_inputs(contract), _input_names(contract), [OUTPUT_IMAGE], opset=opset)
    set_contract_metadata(model, contract)
    return model, info


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """op_type -> count over the main graph; ops of other domains are prefixed with their domain."""
    counts = Counter(
        f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in model.graph.node
    )
    return dict(sorted(counts.items()))
