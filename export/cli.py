"""`edgegan export`: a thin click command over edgegan.export.pipeline.export_checkpoint (torch is imported only when
the command runs, not when `edgegan --help` lists it)."""
from __future__ import annotations

import click

from edgegan.runtime.cli_options import EdgeganCommand, Say, check_json_path, json_option, quiet_option


@click.command("export", cls=EdgeganCommand)
@click.argument("source", metavar="RUN|CKPT", type=click.Path(exists=True, path_type=str))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Export folder (generator.onnx, variants, export_report.json).")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(13, None), help="ONNX opset.")
@click.option("--fp16", is_flag=True, help="Also write generator.fp16.onnx (float16 weights, float32 I/O).")
@click.option("--int8", is_flag=True, help="Also write generator.int8.onnx (static int8 quantization).")
@click.option("--tensorrt", is_flag=True, help="Also build generator.plan with TensorRT (needs tensorrt + CUDA).")
@click.option("--trt-batch", default="1,16,64", show_default=True, metavar="MIN,OPT,MAX",
              help="TensorRT optimization profile batch sizes; MAX is also Triton's max_batch_size.")
@click.option("--ort-format", is_flag=True, help="Also write generator.ort for onnxruntime minimal/mobile builds.")
@click.option("--triton", is_flag=True, help="Also write a Triton model repository under OUT/triton/.")
@click.option("--cuda", is_flag=True,
              help="Also write generator.cuda.onnx, the plain ConvTranspose form for onnxruntime's CUDA provider "
                   "(a folder loaded with --provider cuda opens it).")
@click.option("--web", is_flag=True,
              help="Also write OUT/web/: a static page that samples, interpolates and benchmarks in a browser "
                   "(serve it with `edgegan serve OUT/web`).")
@click.option("--web-runtime", type=click.Path(file_okay=False, path_type=str), default=None, metavar="DIR",
              help="onnxruntime-web's dist folder to copy into web/ort/ for offline use [default: a pinned, "
                   "integrity-checked CDN URL].")
@click.option("--pixels", type=click.Choice(["float", "uint8"]), default="float", show_default=True,
              help="Output float32 NCHW in [-1, 1], or uint8 NHWC with the scaling folded into the graph.")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Ship generator.onnx in the exact phase-convolution form (faster on CPU) or as torch exported it.")
@click.option("--no-ema", is_flag=True, help="Export the raw generator instead of its EMA weights.")
@click.option("--force", is_flag=True,
              help="Replace OUT as a whole (every file in it, not only an earlier export), swapped in once the new "
                   "export is complete. Without it OUT may hold other files, but none the export writes.")
@json_option("the report (as OUT/export_report.json)", bare_flag=True)
@quiet_option()
@click.option("--atol", multiple=True, metavar="F|VARIANT=F",
              help="Max absolute error every numeric check allows (vs PyTorch, vs generator.onnx, batch invariance, "
                   "onnx.reference), instead of the precision's own; repeatable per variant, e.g. --atol int8=0.08. "
                   "Recorded in the report.")
@click.option("--rtol", multiple=True, metavar="F|VARIANT=F",
              help="Relative part: a value passes when |out - ref| <= atol + rtol * |ref| [default: 0].")
@click.option("--no-quality-gate", is_flag=True,
              help="Skip the quality gate even when an evaluator is cached (the report says so).")
@click.option("--evaluator", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Evaluator .onnx for the quality gate [default: ~/.cache/edgegan/evaluators/DATASET.onnx].")
@click.option("--max-fid-delta", type=float, default=None, metavar="F",
              help="Fail when a variant's FID against the fp32 model's images exceeds F.")
@click.option("--gate-n", type=click.IntRange(4, None), default=2000, show_default=True,
              help="Images per variant the quality gate scores.")
@click.option("--min-recall", type=click.FloatRange(0, 1), default=None, metavar="R",
              help="Fail when the model's recall against the real test images (conditional: any class's) is below "
                   "R; a collapsed generator scores ~0.")
@click.option("--data-dir", type=click.Path(), default=None,
              help="Real data for --min-recall [default: the run's --data-dir].")
def export(source: str, out_dir: str, opset: int, fp16: bool, int8: bool, tensorrt: bool, trt_batch: str,
           ort_format: bool, triton: bool, cuda: bool, pixels: str, no_ema: bool, force: bool, json_path: str | None,
           quiet: bool, atol: tuple[str, ...], rtol: tuple[str, ...], no_quality_gate: bool, evaluator: str | None,
           max_fid_delta: float | None, gate_n: int, optimize: bool, min_recall: float | None,
           data_dir: str | None, web: bool, web_runtime: str | None) -> None:
    """Export a run's (or checkpoint's) generator to a verified generator.onnx plus the variants asked for.

    Every file is verified before it is moved into OUT; the checks, errors, sizes and operator counts go to
    OUT/export_report.json and are printed as a table. If anything fails, OUT is left as it was; symlinks inside
    OUT are refused, so nothing outside it is written or removed.
    """
    from edgegan.export.check_records import ToleranceOptionError, parse_tolerances
    from edgegan.export.staging import ExportOptionError
    from edgegan.export.tensorrt_build import parse_batch_profile

    try:
        batch = parse_batch_profile(trt_batch)
    except ExportOptionError as exc:
        raise click.BadParameter(str(exc), param_hint="--trt-batch") from None

    for values, flag in ((atol, "--atol"), (rtol, "--rtol")):
        try:
            parse_tolerances(values, flag)  # the numbers now; the variant names once the variants are known
        except ToleranceOptionError as exc:
            raise click.BadParameter(str(exc), param_hint=flag) from None
    check_json_path(json_path)
    if web_runtime is not None:
        if not web:
            raise click.UsageError("--web-runtime needs --web")
        from edgegan.export.variants.web import check_runtime_dir

        try:
            check_runtime_dir(web_runtime)
        except ExportOptionError as exc:
            raise click.BadParameter(str(exc), param_hint="--web-runtime") from None

    from edgegan.export.pipeline import export_checkpoint
    from edgegan.export.quality_gate import format_gate
    from edgegan.export.report import format_table

    report = export_checkpoint(
        source, out_dir, opset=opset, fp16=fp16, int8=int8, ort_format=ort_format, tensorrt=tensorrt,
        triton=triton, cuda=cuda, web=web, web_runtime=web_runtime, pixels=pixels, use_ema=not no_ema, force=force,
        trt_batch=batch, progress=not quiet,
        evaluator=evaluator, max_fid_delta=max_fid_delta, gate_n=gate_n, optimize=optimize,
        min_recall=min_recall, data_dir=data_dir, atol=list(atol) or None, rtol=list(rtol) or None,
        quality_gate=not no_quality_gate,
    )
    say = Say(quiet, json_path)
    say.result(format_table(report))
    say.result(format_gate(report.get("quality_gate")))
    say.result(f"report: {out_dir}/export_report.json")
    say.json(report, json_path)
