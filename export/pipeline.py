"""`export_checkpoint`: checkpoint -> verified generator.onnx, its variants and export_report.json.

Every file is first written into a private staging folder beside `out_dir` (same filesystem), each variant is
verified there, and only when everything passed does the export reach `out_dir` (export/staging.py): moved in
beside files it does not own, or, with force, swapped in for the whole folder. A failure or Ctrl-C at any point
leaves `out_dir` as it was; nothing outside `out_dir` and its staging folder is written or removed.

generator.onnx (fp32, with the uint8 tail when asked) is built and verified here; every other file is a row of the
variant table (edgegan.export.variants.VARIANTS) that one loop builds, stamps, saves, verifies and records.

Example:
    >>> report = export_checkpoint("runs/fashion", "models/fashion", fp16=True, ort_format=True)  # doctest: +SKIP
    >>> report["variants"]["fp32"]["max_err"] <= 1e-4  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from edgegan.export import variants as variant_table
from edgegan.export.check_records import Tolerance, check_tolerance_names, parse_tolerances, resolve_tolerance
from edgegan.export.graph_forms import optimize_fp32
from edgegan.export.library_notes import captured_notes
from edgegan.export.onnx import append_uint8_tail, export_generator, fold_batchnorm, op_counts, set_contract_metadata
from edgegan.export.quality_gate import GATE_N, plan_gate, raise_if_failed, run_gate
from edgegan.export.report import REPORT_FORMAT, REPORT_NAME, tolerance_table, variant_entry, versions
from edgegan.export.staging import ExportOptionError, open_staging
from edgegan.export.triton_repository import model_name
from edgegan.export.variants import Sources, Variant, VariantError, make_options
from edgegan.export.verify import CachedReference, CheckRecord, VariantVerification, raise_for_records, verify_variant
from edgegan.runtime.contract import OUTPUT_FLOAT_NCHW, OUTPUT_UINT8_NHWC, GeneratorContract
from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.evaluation.datasets import check_data_dir
from edgegan.trainer.checkpoint import CheckpointError, resolve_checkpoint, state_dict_problem
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.contract import checkpoint_contract
from edgegan.trainer.sample import generate_images, load_generator

FP32_NAME = "generator.onnx"
PIXEL_FORMS = {"float": OUTPUT_FLOAT_NCHW, "uint8": OUTPUT_UINT8_NHWC}
FOLD_TOLERANCE = 1e-5  # BatchNorm folding changes only float rounding


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"[export] {message}", file=sys.stderr, flush=True)


def _load(source: str | os.PathLike, use_ema: bool) -> tuple[torch.nn.Module, TrainConfig, dict, Path, bool]:
    """(G in eval mode, config, checkpoint, checkpoint path, whether EMA weights were used)."""
    path = resolve_checkpoint(source)
    try:
        G, cfg, ckpt = load_generator(path, use_ema=use_ema)
    except EdgeganError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        # load_state_dict size/key mismatches and malformed configs come out as these.
        raise CheckpointError(
            f"{path} is an edgegan checkpoint, but its generator cannot be rebuilt from it: {state_dict_problem(exc)}"
        ) from exc
    return G, cfg, ckpt, path, bool(use_ema and ckpt.get("G_ema") is not None)


def _torch_reference(G: torch.nn.Module) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    model_cfg = G.cfg  # the ModelConfig an edgegan generator was built from
    if not isinstance(model_cfg, ModelConfig):
        raise TypeError(f"{type(G).__name__} is not an edgegan generator: its .cfg is not a ModelConfig")
    conditional = bool(model_cfg.num_classes)

    @torch.no_grad()
    def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        y = torch.from_numpy(labels) if conditional and labels is not None else None
        return G(torch.from_numpy(z), y).float().numpy()  # [N, C, H, W]

    return run


def _fold_record(G: torch.nn.Module, folded: torch.nn.Module, count: int, contract: GeneratorContract) -> CheckRecord:
    def images(model: torch.nn.Module) -> np.ndarray:  # [17, C, H, W] on the contract's latents (seed 0)
        return generate_images(model, 17, 0, nz=contract.nz, num_classes=contract.num_classes)

    err = np.abs(images(G) - images(folded))
    return CheckRecord(
        "batchnorm_fold",
        bool(err.max() <= FOLD_TOLERANCE),
        float(err.max()),
        float(err.mean()),
        FOLD_TOLERANCE,
        f"{count} BatchNorm layers folded into the layer before them (PyTorch, eval mode)",
    )


def _save(model: onnx.ModelProto, path: Path) -> None:
    onnx.save_model(model, str(path))


def _verify(
    name: str,
    path: Path,
    contract: GeneratorContract,
    reference: CachedReference,
    progress: bool,
    *,
    first: Sequence[CheckRecord] = (),
    baseline: VariantVerification | None = None,
    tolerance: str | Tolerance | None = None,
) -> VariantVerification:
    """verify_variant with `first` records put ahead of its own; raises ShapeError / AtolError on a failed check."""
    _say(progress, f"verifying {path.name}")
    result = verify_variant(path, contract, reference, variant=name, baseline=baseline, tolerance=tolerance)
    result.records[:0] = list(first)
    result.raise_if_failed()
    return result


def _export_variant(
    variant: Variant,
    sources: Sources,
    reference: CachedReference,
    base: VariantVerification,
    opset: int,
    progress: bool,
    tolerances: tuple[dict, dict],
) -> dict[str, Any]:
    """Build one variant in the staging folder, stamp and save its graph, verify it and return its report entry.

    tolerances: the --atol and --rtol overrides ({variant or "*": value})."""
    _say(progress, variant.step.format_map(vars(sources.options)))
    file = variant.files(model_name(sources.out_dir))[0]
    path = sources.stage / file
    with captured_notes(lambda line: _say(progress, line), variant.name):  # onnxruntime's advice, said once
        built = variant.build(sources, path)
    precision = built.precision or variant.precision
    if built.contract is not None and built.contract.with_graph_form(None) != sources.contract.with_graph_form(None):
        raise VariantError(f"{variant.name} would record another contract than generator.onnx's, not only a form")
    contract = dataclasses.replace(built.contract or sources.contract, precision=precision)
    if built.model is not None:
        set_contract_metadata(built.model, contract)
        _save(built.model, path)
    sources.written[variant.name] = path
    verification, used = None, None
    if variant.tolerance is None:  # a file onnxruntime cannot run: the build's own checks stand
        raise_for_records(variant.name, built.checks)
    else:
        tol, used = resolve_tolerance(variant.name, variant.tolerance, *tolerances)
        verification = _verify(
            variant.name,
            path,
            contract,
            reference,
            progress,
            tolerance=tol,
            baseline=base if variant.versus_fp32 else None,
        )
    return variant_entry(
        verification,
        file=file,
        path=path,
        precision=precision,
        output=contract.output,
        opset=opset if variant.has_opset else None,
        ops=built.ops,
        extra={**(built.extra or {}), **({"tolerance": used} if used else {})},
        checks=built.checks,
    )


def _recorded(options: Any) -> dict[str, Any]:
    """The variant options as the report records them (tuples as JSON lists)."""
    return {
        f.name: list(value) if isinstance(value, tuple) else value
        for f in dataclasses.fields(options)
        for value in [getattr(options, f.name)]
    }


def _check_options(opset: int, pixels: str) -> None:
    max_opset = onnx.defs.onnx_opset_version()
    if not 13 <= opset <= max_opset:
        raise ExportOptionError(f"--opset {opset} is not supported: choose 13..{max_opset} (default 18)")
    if pixels not in PIXEL_FORMS:
        raise ExportOptionError(f"--pixels {pixels!r}: choose one of {', '.join(PIXEL_FORMS)}")


def _protected(source: str | Path) -> list[str | Path]:
    """Paths a forced export must never replace: the source, the working folder and home."""
    paths: list[str | Path] = [source]
    for where in (os.getcwd, Path.home):
        try:
            paths.append(where())
        except (OSError, RuntimeError, KeyError):  # a deleted cwd, no HOME
            pass
    return paths


def _reads(source: str | Path, evaluator: str | Path | None, data_dir: str | Path | None) -> list[tuple[str, Path]]:
    """What the export reads, known before loading: the checkpoint the source resolves to, the run's checkpoints
    folder, the evaluator and data folder given (a forced export must not replace any of them)."""
    reads: list[tuple[str, Path]] = []
    try:
        checkpoint = resolve_checkpoint(source)
    except CheckpointError:
        checkpoint = None  # said once the export loads it
    if checkpoint is not None:
        reads.append(("the checkpoint", checkpoint))
        folder = Path(os.path.realpath(checkpoint)).parent
        if folder.name == "checkpoints":  # a run's folder of every epoch: `train --resume` needs all of it
            reads.append(("the run's checkpoints folder", folder))
    if evaluator is not None:
        reads.append(("the evaluator", Path(evaluator).expanduser()))
    if data_dir is not None:
        reads.append(("the data folder", Path(data_dir).expanduser()))
    return reads


def export_checkpoint(
    source: str | Path,
    out_dir: str | Path,
    *,
    opset: int = 18,
    pixels: str = "float",
    use_ema: bool = True,
    force: bool = False,
    progress: bool = True,
    evaluator: str | Path | None = None,
    max_fid_delta: float | None = None,
    gate_n: int = GATE_N,
    optimize: bool = True,
    min_recall: float | None = None,
    data_dir: str | Path | None = None,
    atol: float | dict[str, float] | list[str] | None = None,
    rtol: float | dict[str, float] | list[str] | None = None,
    quality_gate: bool = True,
    **variant_options: Any,
) -> dict:
    """Export a checkpoint's generator to a verified `generator.onnx` plus the variants asked for.

    Args:
        source: a run folder (uses RUN/checkpoints/last.pt) or a checkpoint file.
        out_dir: the export folder (created). It may exist and hold other files, which are left alone, but none
            an export writes (generator.*, export_report.json, triton/edgegan_NAME) unless force is set.
            A symlinked out_dir is followed to its real folder; symlinks inside it are refused.
        opset: ONNX default-domain opset.
        pixels: "float" (float32 NCHW in [-1, 1]) or "uint8" (uint8 NHWC, scaling folded into the graph).
        use_ema: export the EMA generator (the raw one with False, or when the run had no EMA).
        force: replace out_dir as a whole (everything in it) once the new export is complete and verified.
        progress: print each step to stderr.
        evaluator: the evaluator .onnx of the quality gate (export/quality_gate.py); None: the default one for the
            model's dataset, or the gate is skipped (and the report says why) when there is none.
        max_fid_delta: fail when a variant's FID against the fp32 model's images exceeds this (None: record only).
        gate_n: images per variant the gate scores.
        min_recall: fail when the fp32 model's recall against the real test images (or, conditional, one class's
            recall) is below this (None: not checked; export/quality_gate.py).
        data_dir: the real data for min_recall (None: the run's --data-dir).
        atol: replaces the max-error budget of every numeric check (vs PyTorch, vs generator.onnx, batch
            invariance, onnx.reference): one number for every variant, or per variant ({"int8": 0.08}, or the
            CLI's strings ["0.01", "int8=0.08"]). Recorded per variant in the report ("tolerance").
        rtol: adds a relative part: a value passes when |out - ref| <= max + rtol * |ref| (Polygraphy's rule).
        quality_gate: False skips the gate even when an evaluator is at hand (the report says why).
        variant_options: the variant table's options (edgegan.export.variants.VARIANTS; each row's help says
            what it does): a row's `option` set True also writes that variant (fp16=True, ort_format=True, ...),
            and its VariantParams take values (trt_batch=(1, 4, 8)); the rest keep the table's defaults.

    Returns:
        The report (also written to out_dir/export_report.json): per variant its file, checks with figures,
        max/mean error, size, opset and operator counts; the contract, source checkpoint and versions.

    Raises:
        EdgeganError subclasses: a bad checkpoint (CheckpointError), a bad option (ExportOptionError), an
        out_dir holding files the export would replace or a symlink (edgegan.export.staging.OutFolderError), a full or
        read-only disk (edgegan.export.staging.ExportWriteError), a failed check (edgegan.export.verify.ShapeError / AtolError),
        TensorRT missing (edgegan.runtime.tensorrt_backend.TensorRTError), a variant over --max-fid-delta or an unusable evaluator
        (edgegan.export.quality_gate.QualityGateError), a bad --atol/--rtol (ToleranceOptionError).
    """
    if not str(out_dir).strip():
        raise ExportOptionError("--out is empty; name the export folder (e.g. --out models/NAME)")
    check_data_dir(data_dir)  # an explicit --data-dir must exist (the run's own is looked up only for --min-recall)
    out_dir = Path(out_dir)
    _check_options(opset, pixels)
    table = variant_table.VARIANTS  # read now, not at import: a test may add a row
    options = make_options(table, variant_options)  # unknown keyword: TypeError; a bad value: ExportOptionError
    asked = [variant for variant in table if variant.enabled(options)]
    tolerances = parse_tolerances(atol, "--atol"), parse_tolerances(rtol, "--rtol")
    verified = ["fp32", *(variant.name for variant in asked if variant.tolerance is not None)]
    for overrides, flag in zip(tolerances, ("--atol", "--rtol")):
        check_tolerance_names(overrides, flag, verified)
    for variant in asked:
        variant.preflight()  # e.g. fail before any work when TensorRT or CUDA is missing

    # --out is checked (owned files, symlinks, writable) and the staging folder made before the long work.
    model = model_name(out_dir)
    owned = (FP32_NAME, REPORT_NAME, *(name for variant in table for name in variant.files(model)))
    staging = open_staging(
        out_dir, force=force, owned=owned, keep=_protected(source), reads=_reads(source, evaluator, data_dir)
    )
    for note in staging.notes:
        _say(progress, note)
    stage, work = staging.stage, staging.work
    try:
        _say(progress, f"loading {source}")
        G, cfg, ckpt, ckpt_path, ema = _load(source, use_ema)
        contract = checkpoint_contract(cfg, ckpt, ema, PIXEL_FORMS[pixels])
        # A bad evaluator, or real data that --min-recall cannot read, fails before any export work.
        real_data = data_dir if data_dir is not None else cfg.data_dir
        gate = plan_gate(
            evaluator, contract, max_fid_delta, gate_n, min_recall=min_recall, data_dir=real_data, skip=not quality_gate
        )
        # What the checkpoint and the gate named (the default evaluator, the run's data folder) is read too.
        staging.check_reads([("the evaluator", gate.evaluator.path)] if gate.evaluator is not None else [])
        staging.check_reads([("the data folder", real_data)] if min_recall is not None and real_data else [])
        reference = CachedReference(_torch_reference(G))
        _say(progress, "folding BatchNorm and exporting with torch.onnx")
        folded, folded_count = fold_batchnorm(G)
        fold_check = _fold_record(G, folded, folded_count, contract)
        core_contract = dataclasses.replace(contract, output=OUTPUT_FLOAT_NCHW)
        core, info = export_generator(folded, core_contract, opset=opset, fold_bn=False)
        # generator.onnx ships the exact phase-convolution form (edgegan.export.graph_forms.optimize_fp32): 0.5-0.7x the
        # plain export's latency on the CPU provider. `core` stays in ConvTranspose form for the int8 builder.
        fast = optimize_fp32(core) if optimize else core
        fp32 = append_uint8_tail(onnx.ModelProto.FromString(fast.SerializeToString())) if pixels == "uint8" else fast
        set_contract_metadata(fp32, contract)
        fp32_path = stage / FP32_NAME
        _save(fp32, fp32_path)
        fp32_tol, fp32_used = resolve_tolerance("fp32", "fp32", *tolerances)
        base = _verify("fp32", fp32_path, contract, reference, progress, first=[fold_check], tolerance=fp32_tol)
        variants: dict[str, dict[str, Any]] = {
            "fp32": variant_entry(
                base,
                file=FP32_NAME,
                path=fp32_path,
                precision="fp32",
                output=contract.output,
                opset=info.opset,
                ops=op_counts(fp32),
                extra={"tolerance": fp32_used},
            ),
        }
        sources = Sources(
            fp32=fp32,
            core=core,
            contract=contract,
            stage=stage,
            work=work,
            out_dir=out_dir,
            options=options,
            written={"fp32": fp32_path},
        )
        for variant in asked:
            variants[variant.name] = _export_variant(
                variant, sources, reference, base, info.opset, progress, tolerances
            )

        _say(progress, "quality gate: scoring each variant against fp32" if gate.evaluator else "quality gate skipped")
        gate_result = run_gate(gate, stage, variants, FP32_NAME)
        raise_if_failed(gate_result)  # before the commit: a failed gate leaves out_dir untouched

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
            "options": {
                "opset": opset,
                **_recorded(options),
                "pixels": pixels,
                "use_ema": use_ema,
                "evaluator": str(evaluator) if evaluator is not None else None,
                "max_fid_delta": max_fid_delta,
                "gate_n": gate_n,
                "optimize": optimize,
                "min_recall": min_recall,
                "atol": tolerances[0] or None,
                "rtol": tolerances[1] or None,
                "quality_gate": quality_gate,
                "force": force,
                "data_dir": str(data_dir) if data_dir is not None else None,
            },
            "tolerances": tolerance_table(),
            "versions": versions(),
            "variants": variants,
            "quality_gate": gate_result,
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
