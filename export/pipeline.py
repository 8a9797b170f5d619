"""`export_checkpoint`: checkpoint -> verified generator.onnx, its variants and export_report.json.

Every file is first written into a private staging folder beside `out_dir` (same filesystem), each variant is
verified there, and only when everything passed does the export reach `out_dir` (export/staging.py): moved in
beside files it does not own, or, with force, swapped in for the whole folder. A failure or Ctrl-C at any point
leaves `out_dir` as it was; nothing outside `out_dir` and its staging folder is written or removed.

Example:
    >>> report = export_checkpoint("runs/fashion", "models/fashion", fp16=True, ort_format=True)  # doctest: +SKIP
    >>> report["variants"]["fp32"]["max_err"] <= 1e-4  # doctest: +SKIP
    True
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import torch

from edgegan.export.graph_forms import optimize_fp32
from edgegan.export.onnx import append_uint8_tail, export_generator, fold_batchnorm, op_counts, set_contract_metadata
from edgegan.export.report import REPORT_FORMAT, REPORT_NAME, tolerance_table, variant_entry, versions
from edgegan.export.variants import convert_fp16, convert_to_ort
from edgegan.export.quality_gate import GATE_N, plan_gate, raise_if_failed, run_gate
from edgegan.export.staging import ExportOptionError, open_staging
from edgegan.export.triton import model_name
from edgegan.export.verify import CachedReference, CheckRecord, VariantVerification, raise_for_records, verify_variant
from edgegan.runtime.contract import OUTPUT_FLOAT_NCHW, OUTPUT_UINT8_NHWC, GeneratorContract, default_labels, draw_latents
from edgegan.runtime.errors import EdgeganError
from edgegan.trainer.checkpoint import CheckpointError, resolve_checkpoint
from edgegan.trainer.config import TrainConfig
from edgegan.trainer.contract import checkpoint_contract

FP32_NAME = "generator.onnx"
FP16_NAME = "generator.fp16.onnx"
INT8_NAME = "generator.int8.onnx"
ORT_NAME = "generator.ort"
PLAN_NAME = "generator.plan"
TRITON_DIR = "triton"
#: Files an export may write in out_dir (with the report and triton/edgegan_NAME): without force none may exist.
ARTIFACTS = (FP32_NAME, FP16_NAME, INT8_NAME, ORT_NAME, PLAN_NAME, PLAN_NAME + ".sha256")
PIXEL_FORMS = {"float": OUTPUT_FLOAT_NCHW, "uint8": OUTPUT_UINT8_NHWC}
FOLD_TOLERANCE = 1e-5  # BatchNorm folding changes only float rounding


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"[export] {message}", file=sys.stderr, flush=True)


def _load(source: str | os.PathLike, use_ema: bool) -> tuple[torch.nn.Module, TrainConfig, dict, Path, bool]:
    """(G in eval mode, config, checkpoint, checkpoint path, whether EMA weights were used)."""
    from edgegan.trainer.sample import load_generator

    path = resolve_checkpoint(source)
    try:
        G, cfg, ckpt = load_generator(path, use_ema=use_ema)
    except EdgeganError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        # load_state_dict size/key mismatches and malformed configs come out as these.
        raise CheckpointError(
            f"{path} is an edgegan checkpoint, but its generator cannot be rebuilt from it: {str(exc).splitlines()[0]}"
        ) from exc
    return G, cfg, ckpt, path, bool(use_ema and ckpt.get("G_ema") is not None)


def _torch_reference(G: torch.nn.Module) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    conditional = bool(G.cfg.num_classes)

    @torch.no_grad()
    def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        y = torch.from_numpy(labels) if conditional and labels is not None else None
        return G(torch.from_numpy(z), y).float().numpy()  # [N, C, H, W]

    return run


def _fold_record(G: torch.nn.Module, folded: torch.nn.Module, count: int, contract: GeneratorContract) -> CheckRecord:
    reference = _torch_reference(G)
    z = draw_latents(17, contract.nz, 0)
    labels = default_labels(17, contract.num_classes) if contract.conditional else None
    err = np.abs(reference(z, labels) - _torch_reference(folded)(z, labels))
    return CheckRecord("batchnorm_fold", bool(err.max() <= FOLD_TOLERANCE), float(err.max()), float(err.mean()),
                       FOLD_TOLERANCE, f"{count} BatchNorm layers folded into the layer before them (PyTorch, eval mode)")


def _save(model: onnx.ModelProto, path: Path) -> None:
    onnx.save_model(model, str(path))


def _check_options(opset: int, pixels: str, trt_batch: tuple[int, int, int]) -> None:
    max_opset = onnx.defs.onnx_opset_version()
    if not 13 <= opset <= max_opset:
        raise ExportOptionError(f"--opset {opset} is not supported: choose 13..{max_opset} (default 18)")
    if pixels not in PIXEL_FORMS:
        raise ExportOptionError(f"--pixels {pixels!r}: choose one of {', '.join(PIXEL_FORMS)}")
    if len(trt_batch) != 3 or not 1 <= trt_batch[0] <= trt_batch[1] <= trt_batch[2]:
        raise ExportOptionError(f"TensorRT batch profile must be min <= opt <= max, all >= 1; got {tuple(trt_batch)}")


def _protected(source: str | Path) -> list[str | Path]:
    """Paths a forced export must never replace: the source, the working folder and home."""
    paths: list[str | Path] = [source]
    for where in (os.getcwd, Path.home):
        try:
            paths.append(where())
        except (OSError, RuntimeError, KeyError):  # a deleted cwd, no HOME
            pass
    return paths


def export_checkpoint(
    source: str | Path,
    out_dir: str | Path,
    *,
    opset: int = 18,
    fp16: bool = False,
    int8: bool = False,
    ort_format: bool = False,
    tensorrt: bool = False,
    triton: bool = False,
    pixels: str = "float",
    use_ema: bool = True,
    force: bool = False,
    trt_batch: tuple[int, int, int] = (1, 16, 64),
    progress: bool = True,
    evaluator: str | Path | None = None,
    max_fid_delta: float | None = None,
    gate_n: int = GATE_N,
    optimize: bool = True,
    min_recall: float | None = None,
    data_dir: str | Path | None = None,
) -> dict:
    """Export a checkpoint's generator to a verified `generator.onnx` plus the variants asked for.

    Args:
        source: a run folder (uses RUN/checkpoints/last.pt) or a checkpoint file.
        out_dir: the export folder (created). It may exist and hold other files, which are left alone, but none
            an export writes (generator.*, export_report.json, triton/edgegan_NAME) unless force is set.
            A symlinked out_dir is followed to its real folder; symlinks inside it are refused.
        opset: ONNX default-domain opset.
        fp16: also write generator.fp16.onnx (float16 weights and compute, float32 inputs/outputs).
        int8: also write generator.int8.onnx (static quantization, export/int8.py).
        ort_format: also write generator.ort (onnxruntime's format for minimal/mobile builds).
        tensorrt: also build generator.plan (+ .sha256) with TensorRT; needs tensorrt and a CUDA GPU.
        triton: also write a Triton model repository under out_dir/triton/.
        pixels: "float" (float32 NCHW in [-1, 1]) or "uint8" (uint8 NHWC, scaling folded into the graph).
        use_ema: export the EMA generator (the raw one with False, or when the run had no EMA).
        force: replace out_dir as a whole (everything in it) once the new export is complete and verified.
        trt_batch: TensorRT optimization profile (min, opt, max) batch; max is also Triton's max_batch_size.
        progress: print each step to stderr.
        evaluator: the evaluator .onnx of the quality gate (export/quality_gate.py); None: the default one for the
            model's dataset, or the gate is skipped (and the report says why) when there is none.
        max_fid_delta: fail when a variant's FID against the fp32 model's images exceeds this (None: record only).
        gate_n: images per variant the gate scores.
        min_recall: fail when the fp32 model's recall against the real test images (or, conditional, one class's
            recall) is below this (None: not checked; export/quality_gate.py).
        data_dir: the real data for min_recall (None: the run's --data-dir).

    Returns:
        The report (also written to out_dir/export_report.json): per variant its file, checks with figures,
        max/mean error, size, opset and operator counts; the contract, source checkpoint and versions.

    Raises:
        EdgeganError subclasses: a bad checkpoint (CheckpointError), a bad option (ExportOptionError), an
        out_dir holding files the export would replace or a symlink (edgegan.export.staging.OutFolderError), a full or
        read-only disk (edgegan.export.staging.ExportWriteError), a failed check (edgegan.export.verify.ShapeError / AtolError),
        TensorRT missing, a variant over --max-fid-delta or an unusable evaluator
        (edgegan.export.quality_gate.QualityGateError).
    """
    out_dir = Path(out_dir)
    trt_batch = tuple(int(b) for b in trt_batch)  # type: ignore[assignment]
    _check_options(opset, pixels, trt_batch)
    if tensorrt:
        from edgegan.export.tensorrt import check_tensorrt

        check_tensorrt()  # fail before any work when TensorRT or CUDA is missing
    if int8:
        try:
            from edgegan.export.int8 import build_int8
        except ImportError as exc:
            raise ExportOptionError(f"--int8 is not available in this install ({exc})") from exc

    # --out is checked (owned files, symlinks, writable) and the staging folder made before the long work.
    owned = (*ARTIFACTS, REPORT_NAME, f"{TRITON_DIR}/{model_name(out_dir)}")
    staging = open_staging(out_dir, force=force, owned=owned, keep=_protected(source))
    for note in staging.notes:
        _say(progress, note)
    stage, work = staging.stage, staging.work
    try:
        _say(progress, f"loading {source}")
        G, cfg, ckpt, ckpt_path, ema = _load(source, use_ema)
        contract = checkpoint_contract(cfg, ckpt, ema, PIXEL_FORMS[pixels])
        # A bad evaluator, or real data that --min-recall cannot read, fails before any export work.
        gate = plan_gate(evaluator, contract, max_fid_delta, gate_n, min_recall=min_recall,
                         data_dir=data_dir if data_dir is not None else cfg.data_dir)
        core_contract = GeneratorContract(**{**contract.to_dict(), "output": OUTPUT_FLOAT_NCHW})
        reference = CachedReference(_torch_reference(G))
        _say(progress, "folding BatchNorm and exporting with torch.onnx")
        folded, folded_count = fold_batchnorm(G)
        fold_check = _fold_record(G, folded, folded_count, contract)
        core, info = export_generator(folded, core_contract, opset=opset, fold_bn=False)
        # generator.onnx ships the exact phase-convolution form (edgegan.export.graph_forms.optimize_fp32): 0.5-0.7x the
        # plain export's latency on the CPU provider. `core` stays in ConvTranspose form for the int8 builder.
        fast = optimize_fp32(core) if optimize else core
        fp32 = append_uint8_tail(onnx.ModelProto.FromString(fast.SerializeToString())) if pixels == "uint8" else fast
        set_contract_metadata(fp32, contract)
        fp32_path = stage / FP32_NAME
        _save(fp32, fp32_path)

        variants: dict[str, dict[str, Any]] = {}

        def verify(name: str, path: Path, variant_contract: GeneratorContract, first: list[CheckRecord] = (),
                   baseline: VariantVerification | None = None) -> VariantVerification:
            _say(progress, f"verifying {path.name}")
            result = verify_variant(path, variant_contract, reference, variant=name, baseline=baseline)
            result.records[:0] = list(first)
            result.raise_if_failed()
            return result

        base = verify("fp32", fp32_path, contract, [fold_check])
        variants["fp32"] = variant_entry(base, file=FP32_NAME, path=fp32_path, precision="fp32",
                                         output=contract.output, opset=info.opset, ops=op_counts(fp32))

        if fp16:
            _say(progress, "converting to float16")
            c16 = GeneratorContract(**{**contract.to_dict(), "precision": "fp16"})
            model16 = convert_fp16(fp32)
            set_contract_metadata(model16, c16)
            path16 = stage / FP16_NAME
            _save(model16, path16)
            result = verify("fp16", path16, c16)
            variants["fp16"] = variant_entry(result, file=FP16_NAME, path=path16, precision="fp16",
                                             output=c16.output, opset=info.opset, ops=op_counts(model16))

        if int8:
            _say(progress, "quantizing to int8")
            c8 = GeneratorContract(**{**contract.to_dict(), "precision": "int8"})
            core_path, raw8_path = work / "core.fp32.onnx", work / "core.int8.onnx"
            _save(core, core_path)
            # The int8 module quantizes the float graph; the uint8 tail (if any) is appended after, in fp32.
            int8_info = build_int8(core_path, raw8_path, GeneratorContract(**{**c8.to_dict(), "output": OUTPUT_FLOAT_NCHW}))
            model8 = onnx.load(str(raw8_path))
            if pixels == "uint8":
                model8 = append_uint8_tail(model8)
            set_contract_metadata(model8, c8)
            path8 = stage / INT8_NAME
            _save(model8, path8)
            result = verify("int8", path8, c8)
            extra = {"int8": json.loads(json.dumps(int8_info, default=str))} if int8_info else None
            variants["int8"] = variant_entry(result, file=INT8_NAME, path=path8, precision="int8",
                                             output=c8.output, opset=info.opset, ops=op_counts(model8), extra=extra)

        if ort_format:
            _say(progress, "converting to onnxruntime's .ort format")
            ort_path = stage / ORT_NAME
            conversion = convert_to_ort(fp32_path, ort_path)
            result = verify("ort", ort_path, contract, baseline=base)
            optimized = conversion["optimized_onnx"]
            variants["ort"] = variant_entry(
                result, file=ORT_NAME, path=ort_path, precision="fp32", output=contract.output, opset=info.opset,
                ops=op_counts(optimized) if optimized is not None else None,
                extra={"optimization_style": conversion["optimization_style"]},
            )

        if tensorrt:
            from edgegan.export.tensorrt import build_engine

            _say(progress, f"building a TensorRT engine (batch profile {trt_batch})")
            plan_path = stage / PLAN_NAME
            engine = build_engine(stage / (INT8_NAME if int8 else FP32_NAME), plan_path, contract,
                                  batch=trt_batch, fp16=fp16, int8=int8)
            check = CheckRecord("engine_deserializes", True, kind="structure",
                                detail=f"TensorRT {engine['tensorrt']} engine with io tensors {engine['io_tensors']}; "
                                       "numeric checks of the engine run in `edgegan bench/sample --provider tensorrt`")
            variants["tensorrt"] = variant_entry(
                None, file=PLAN_NAME, path=plan_path, precision="fp16" if fp16 else ("int8" if int8 else "fp32"),
                output=contract.output, opset=None, ops=None, checks=[check],
                extra={"engine": {k: engine[k] for k in ("tensorrt", "profile", "flags")}},
            )

        if triton:
            from edgegan.export.triton import write_repository

            _say(progress, "writing the Triton model repository")
            name = model_name(out_dir)
            repo = write_repository(fp32_path, stage / TRITON_DIR, name, contract, max_batch_size=trt_batch[2])
            records = _triton_checks(stage / TRITON_DIR / repo["config"], fp32_path, stage / TRITON_DIR / repo["model_file"],
                                     name, contract, trt_batch[2])
            raise_for_records("triton", records)
            variants["triton"] = variant_entry(
                None, file=f"{TRITON_DIR}/{name}", path=stage / TRITON_DIR / name, precision="fp32",
                output=contract.output, opset=info.opset, ops=None, checks=records,
                extra={"triton": {"model": name, "max_batch_size": trt_batch[2], "platform": "onnxruntime_onnx"}},
            )

        _say(progress, "quality gate: scoring each variant against fp32" if gate.evaluator else "quality gate skipped")
        quality_gate = run_gate(gate, stage, variants, FP32_NAME)
        raise_if_failed(quality_gate)  # before the commit: a failed gate leaves out_dir untouched

        report = {
            "format": REPORT_FORMAT,
            "passed": all(v["passed"] for v in variants.values()),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": str(ckpt_path),
            "out_dir": str(out_dir),
            "contract": contract.to_dict(),
            "exporter": info.to_dict(),
            "batchnorm_folded": folded_count,
            "graph_form": "edgegan.export.graph_forms.optimize_fp32" if optimize else "as exported",
            "options": {"opset": opset, "fp16": fp16, "int8": int8, "ort_format": ort_format, "tensorrt": tensorrt,
                        "triton": triton, "pixels": pixels, "use_ema": use_ema, "trt_batch": list(trt_batch),
                        "evaluator": str(evaluator) if evaluator is not None else None,
                        "max_fid_delta": max_fid_delta, "gate_n": gate_n, "optimize": optimize,
                        "min_recall": min_recall},
            "tolerances": tolerance_table(),
            "versions": versions(),
            "variants": variants,
            "quality_gate": quality_gate,
        }
        (stage / REPORT_NAME).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        _say(progress, f"all checks passed; {'replacing' if force else 'moving files into'} {out_dir}")
        staging.commit(REPORT_NAME)
        return report
    except OSError as exc:
        error = staging.write_error(exc)  # disk full / read-only -> one line naming --out, not a staging file
        if error is None:
            raise
        raise error from exc
    finally:
        staging.close()


def _triton_checks(config_path: Path, onnx_path: Path, model_file: Path, name: str, contract: GeneratorContract,
                   max_batch_size: int) -> list[CheckRecord]:
    """The repository's model is byte-identical to generator.onnx, and Triton's own protobuf parses the config
    into the fields the contract implies."""
    from edgegan.runtime.files import file_sha256
    from edgegan.export.triton import load_model_config_pb2, parse_config

    same = file_sha256(onnx_path) == file_sha256(model_file)
    records = [CheckRecord("model_file", same, kind="structure",
                           detail="1/model.onnx is generator.onnx" if same else "1/model.onnx differs from generator.onnx")]
    if load_model_config_pb2() is None:
        records.append(CheckRecord("config_parses", True, kind="structure", skipped=True,
                                   detail="tritonclient not installed: config.pbtxt not parsed"))
        return records
    try:
        cfg = parse_config(config_path)
    except Exception as exc:  # noqa: BLE001 - a parse error is a failed check, reported with the rest
        return [*records, CheckRecord("config_parses", False, kind="structure", detail=str(exc)[:500])]
    c, h, w = contract.image_shape_nchw
    want_out = ("TYPE_UINT8", [h, w, c]) if contract.output == OUTPUT_UINT8_NHWC else ("TYPE_FP32", [c, h, w])
    pb2 = load_model_config_pb2()
    dtype = pb2.DataType.Name
    problems = []
    if cfg.name != name or cfg.platform != "onnxruntime_onnx" or cfg.max_batch_size != max_batch_size:
        problems.append(f"name/platform/max_batch_size {cfg.name}/{cfg.platform}/{cfg.max_batch_size}")
    if not cfg.HasField("dynamic_batching"):
        problems.append("no dynamic_batching")
    inputs = {i.name: (dtype(i.data_type), list(i.dims)) for i in cfg.input}
    want_in = {"z": ("TYPE_FP32", [contract.nz])}
    if contract.conditional:
        want_in["label"] = ("TYPE_INT64", [1])
    if inputs != want_in:
        problems.append(f"inputs {inputs} != {want_in}")
    outputs = {o.name: (dtype(o.data_type), list(o.dims)) for o in cfg.output}
    if outputs != {"image": want_out}:
        problems.append(f"outputs {outputs} != {{'image': {want_out}}}")
    records.append(CheckRecord("config_parses", not problems, kind="structure",
                               detail="; ".join(problems) or "Triton's ModelConfig protobuf parses config.pbtxt; "
                                                             "name, platform, batching, inputs and outputs match"))
    return records
