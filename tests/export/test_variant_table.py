"""The variant table (edgegan.export.variants.VARIANTS): one row per file an export can add beside generator.onnx,
each switched on by the export_checkpoint option the row names."""
from __future__ import annotations

import dataclasses
import inspect

from edgegan.export.check_records import TOLERANCES
from edgegan.export.pipeline import FP32_NAME, export_checkpoint
from edgegan.export.variants import VARIANTS, VariantOptions
from edgegan.runtime.contract import PRECISIONS


def test_rows_follow_the_report_order():
    assert [v.name for v in VARIANTS] == ["fp16", "int8", "ort", "tensorrt", "triton", "cuda", "web"]


def test_every_row_is_switched_on_by_an_export_option():
    parameters = inspect.signature(export_checkpoint).parameters
    fields = {f.name for f in dataclasses.fields(VariantOptions)}
    for variant in VARIANTS:
        assert variant.option in fields and parameters[variant.option].default is False, variant.name
        assert variant.enabled(VariantOptions(**{variant.option: True}))
        assert not variant.enabled(VariantOptions())


def test_rows_write_distinct_files_and_name_known_precisions():
    files = [name for v in VARIANTS for name in v.files("edgegan_model")]
    assert len(set(files)) == len(files) and FP32_NAME not in files
    assert "triton/edgegan_model" in files and "generator.plan.sha256" in files
    for variant in VARIANTS:
        assert variant.precision in PRECISIONS
        assert variant.tolerance is None or variant.tolerance in TOLERANCES
