"""--ort-format also writes generator.required_operators.config, the operators and types a reduced ("minimal")
onnxruntime build needs for generator.ort: every op the .ort and the .onnx use is in it, read back with
onnxruntime's own parser, and export_report.json records it."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from edgegan.export.variants.ort import REDUCED_BUILD_CONFIG, convert_to_ort
from edgegan.runtime.files import file_sha256

OpKey = tuple[str, int, str]  # (domain, opset the kernel is registered at, op type), as the config lists them


@pytest.fixture(scope="module")
def ort_export(dcgan_cond_ckpt, tmp_path_factory) -> tuple[Path, dict]:
    """Conditional DCGAN with the uint8 tail (so Cast/Transpose carry uint8 types), exported with --ort-format."""
    from edgegan.export.pipeline import export_checkpoint

    out = tmp_path_factory.mktemp("reduced") / "model"
    return out, export_checkpoint(dcgan_cond_ckpt, out, pixels="uint8", ort_format=True, progress=False)


def config_ops(path: Path) -> set[OpKey]:
    """Every (domain, opset, op) of a config, by onnxruntime's parser (what build.sh --include_ops_by_config reads)."""
    from onnxruntime.tools.reduced_build_config_parser import parse_config

    required, _ = parse_config(str(path))
    return {(domain, opset, op) for domain, opsets in required.items() for opset, ops in opsets.items() for op in ops}


def onnx_ops(path: Path) -> set[OpKey]:
    """Every node of an ONNX graph as (domain, the schema's since_version at the model's opset, op type)."""
    model = onnx.load(path)
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    found = set()
    for node in model.graph.node:
        domain = node.domain or "ai.onnx"
        schema = onnx.defs.get_schema(node.op_type, opsets[domain], node.domain)
        found.add((domain, schema.since_version, node.op_type))
    return found


def ort_ops(path: Path) -> set[OpKey]:
    """Every node of an .ort file's graph, and every op its saved runtime optimizations produce when replayed,
    read straight from the flatbuffer (not through the tool that wrote the config)."""
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py import fbs

    buffer = bytearray(path.read_bytes())
    graph = fbs.InferenceSession.InferenceSession.GetRootAsInferenceSession(buffer, 0).Model().Graph()
    found = set()
    for i in range(graph.NodesLength()):
        node = graph.Nodes(i)
        found.add((node.Domain().decode() or "ai.onnx", node.SinceVersion(), node.OpType().decode()))
    saved = graph.RuntimeOptimizations()
    for i in range(saved.RecordsLength() if saved is not None else 0):
        entry = saved.Records(i)
        for j in range(entry.RuntimeOptimizationRecordsLength()):
            record = entry.RuntimeOptimizationRecords(j)
            for k in range(record.ProducedOpIdsLength()):
                domain, op, opset = record.ProducedOpIds(k).decode().split(":")  # "com.microsoft:FusedConv:1"
                found.add((domain or "ai.onnx", int(opset), op))
    return found


def test_config_covers_every_op_of_the_ort_and_onnx_files(ort_export):
    out, _ = ort_export
    config = config_ops(out / REDUCED_BUILD_CONFIG)
    in_ort, in_onnx = ort_ops(out / "generator.ort"), onnx_ops(out / "generator.onnx")
    assert in_ort and in_onnx
    assert in_ort <= config, sorted(in_ort - config)
    assert in_onnx <= config, sorted(in_onnx - config)
    assert ("com.microsoft", 1, "FusedConv") in in_ort  # a saved runtime fusion: the config must hold it too
    assert config <= in_ort | in_onnx  # and nothing else: the unfused graph is generator.onnx's ops


def test_config_carries_types_and_names_the_shipped_file(ort_export):
    out, _ = ort_export
    text = (out / REDUCED_BUILD_CONFIG).read_text()
    assert "generator.ort" in text and ".ort-convert-" not in text and "/tmp" not in text  # no temp paths
    lines = {
        line.split(";")[1] + ":" + entry.split("{")[0]: entry
        for line in text.splitlines()
        if not line.startswith("#")
        for entry in _entries(line.split(";", 2)[2])
    }
    cast = json.loads(lines["13:Cast"][len("Cast") :])
    assert cast == {"inputs": {"0": ["float"]}, "outputs": {"0": ["uint8_t"]}}  # the uint8 tail: float -> uint8
    assert json.loads(lines["13:Gather"][len("Gather") :])["inputs"]["1"] == ["int64_t"]  # class labels


def _entries(ops: str) -> list[str]:
    """Split 'A{...},B,C{...}' on the commas outside braces."""
    out, depth, current = [], 0, ""
    for char in ops:
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += char
    return out + [current]


def test_report_records_the_config(ort_export):
    out, report = ort_export
    entry = report["variants"]["ort"]["reduced_build"]
    assert entry["config"] == REDUCED_BUILD_CONFIG and entry["type_reduction"] is True
    assert entry["sha256"] == file_sha256(out / REDUCED_BUILD_CONFIG)
    listed = {
        (d, int(opset), op) for d, opsets in entry["operators"].items() for opset, ops in opsets.items() for op in ops
    }
    assert listed == config_ops(out / REDUCED_BUILD_CONFIG)
    assert f"--include_ops_by_config {REDUCED_BUILD_CONFIG}" in entry["build_flags"]
    assert json.loads((out / "export_report.json").read_text())["variants"]["ort"]["reduced_build"] == entry


def test_convert_writes_the_config_only_when_asked(mlp_ckpt, tmp_path):
    from edgegan.export.pipeline import export_checkpoint

    export_checkpoint(mlp_ckpt, tmp_path / "fp32", progress=False)
    onnx_path = tmp_path / "fp32" / "generator.onnx"
    convert_to_ort(onnx_path, tmp_path / "plain.ort")
    assert not list(tmp_path.glob("*.config"))
    info = convert_to_ort(onnx_path, tmp_path / "generator.ort", config_path=tmp_path / "ops.config")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32", "generator.ort", "ops.config", "plain.ort"]
    assert ort_ops(tmp_path / "generator.ort") <= config_ops(tmp_path / "ops.config")
    assert onnx_ops(onnx_path) <= config_ops(tmp_path / "ops.config")
    assert "Gemm" in info["required_operators"]["ai.onnx"]["13"]  # the MLP generator's layers
