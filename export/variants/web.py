"""The web variant: OUT/web/, a static page that samples, interpolates and benchmarks the generator in a browser.

OUT/web/ holds index.html + app.js + latents.js (edgegan.runtime's package data, runtime/web/), the models
(generator.onnx, and generator.int8.onnx when --int8 made one; byte copies), and manifest.json: the contract the page
needs (onnxruntime-web cannot read ONNX metadata), each model's size and SHA-256, and where onnxruntime-web comes from.
`edgegan serve OUT/web` serves it with the headers WASM threads need.

onnxruntime-web: `--web-runtime DIR` copies ort.min.js and its WASM files from DIR (node_modules/onnxruntime-web/dist
after `npm install`) into web/ort/, to serve offline; without it the page loads ort.min.js from a CDN at a pinned
version with a Subresource Integrity hash (the browser refuses a changed file), and its WASM from the same folder.
Why not bundle onnxruntime-web into the wheel: 15-45 MB of WASM per release that most users of the Python runtime
never load.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import onnx

from edgegan import __version__
from edgegan.export.check_records import CheckRecord
from edgegan.export.staging import ExportOptionError
from edgegan.export.variants.variant import Built, Sources
from edgegan.runtime.contract import LATENT_RULE, GeneratorContract
from edgegan.runtime.files import file_sha256

ORT_WEB_VERSION = "1.31.1"
ORT_WEB_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
# sha384 of dist/ort.min.js in the npm package onnxruntime-web 1.31.1 (the CDN serves the package's bytes).
ORT_WEB_INTEGRITY = "sha384-Gcu8U60SCeoyIiwfPwFy+eRexUuRRE9UYEXcm6vLDFVkGxcB1kk/gTv9FKTgoA6h"
ORT_SCRIPT = "ort.min.js"
# The WASM backend (SIMD, threads) is required; the .jsep pair adds WebGPU and is copied when DIR has it.
ORT_WASM = ("ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_WEBGPU = ("ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
PAGE_FILES = ("index.html", "app.js", "latents.js")
MANIFEST = "manifest.json"
WEB_KIND = "edgegan web"
WEB_FORMAT = 1
MODEL_ORDER = ("fp32", "int8")  # the variants the page offers, in its menu's order (fp16 targets GPUs)


def _contract(model_path: Path) -> GeneratorContract:
    model = onnx.load(str(model_path), load_external_data=False)
    return GeneratorContract.from_metadata({p.key: p.value for p in model.metadata_props})


def check_runtime_dir(runtime_dir: str | Path | None) -> Path | None:
    """--web-runtime DIR as a folder holding ort.min.js and the SIMD-threaded WASM pair, else ExportOptionError."""
    if runtime_dir is None:
        return None
    folder = Path(runtime_dir)
    missing = [name for name in (ORT_SCRIPT, *ORT_WASM) if not (folder / name).is_file()]
    if missing:
        raise ExportOptionError(
            f"--web-runtime {folder}: missing {', '.join(missing)}; give onnxruntime-web's dist folder (`npm install "
            f"onnxruntime-web@{ORT_WEB_VERSION}` puts it in node_modules/onnxruntime-web/dist)"
        )
    return folder


def runtime_dir_option(runtime_dir: str | Path | None) -> str | None:
    """The web row's check of --web-runtime (VariantParam.check): the folder checked, kept as text for the report."""
    check_runtime_dir(runtime_dir)
    return None if runtime_dir is None else str(runtime_dir)


def _runtime(folder: Path, runtime_dir: Path | None) -> dict[str, Any]:
    """Copy onnxruntime-web into folder/ort/ (local) or describe the pinned CDN copy; the manifest's "runtime"."""
    if runtime_dir is None:
        return {
            "package": "onnxruntime-web",
            "version": ORT_WEB_VERSION,
            "local": False,
            "script": ORT_WEB_CDN + ORT_SCRIPT,
            "integrity": ORT_WEB_INTEGRITY,
            "wasm_paths": ORT_WEB_CDN,
        }
    (folder / "ort").mkdir()
    names = [ORT_SCRIPT, *ORT_WASM, *(n for n in ORT_WEBGPU if (runtime_dir / n).is_file())]
    for name in names:
        shutil.copyfile(runtime_dir / name, folder / "ort" / name)
    version = ORT_WEB_VERSION
    package = runtime_dir.parent / "package.json"  # node_modules/onnxruntime-web/package.json, when DIR is dist/
    if package.is_file():
        try:
            version = str(json.loads(package.read_text()).get("version", version))
        except (ValueError, OSError):
            pass
    script = folder / "ort" / ORT_SCRIPT
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(script.read_bytes()).digest()).decode()
    return {
        "package": "onnxruntime-web",
        "version": version,
        "local": True,
        "script": f"ort/{ORT_SCRIPT}",
        "integrity": integrity,
        "wasm_paths": "ort/",
        "webgpu": all((folder / "ort" / n).is_file() for n in ORT_WEBGPU),
    }


def write_web(
    folder: str | Path, models: Mapping[str, str | Path], runtime_dir: str | Path | None = None, name: str | None = None
) -> dict:
    """Write the web page for generator files into `folder` (created; it must not exist yet).

    Args:
        folder: the page's folder (OUT/web).
        models: variant name ("fp32", "int8") -> its .onnx file, in the order the page offers them; the first
            one's contract (metadata) describes the page.
        runtime_dir: onnxruntime-web's dist folder to copy (None: the pinned CDN copy).
        name: the export's name, which the benchmark's rows give their models under ("NAME/generator.onnx", as
            `edgegan bench NAME/generator.onnx` does, so bench-report lines them up); default: folder's parent's.

    Returns:
        The manifest written to folder/manifest.json.
    """
    folder = Path(folder)
    runtime = check_runtime_dir(runtime_dir)
    folder.mkdir(parents=True)
    page = resources.files("edgegan.runtime") / "web"
    for file in PAGE_FILES:
        (folder / file).write_bytes((page / file).read_bytes())
    entries, contract = [], None
    for variant, source in models.items():
        source = Path(source)
        model_contract = _contract(source)
        contract = contract or model_contract
        shutil.copyfile(source, folder / source.name)
        entries.append(
            {
                "name": variant,
                "file": source.name,
                "precision": model_contract.precision,
                "bytes": source.stat().st_size,
                "sha256": file_sha256(source),
            }
        )
    if contract is None:
        raise ExportOptionError("the web page needs at least one generator file")
    manifest = {
        "kind": WEB_KIND,
        "format": WEB_FORMAT,
        "edgegan": __version__,
        "name": name or folder.resolve().parent.name,
        "contract": {key: value for key, value in contract.to_dict().items() if key not in ("train", "precision")},
        "latent_rule": contract.latent_rule,
        "seeds_match_python": contract.latent_rule == LATENT_RULE,
        "models": entries,
        "runtime": _runtime(folder, runtime),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def build(sources: Sources, path: Path) -> Built:
    """path is <stage>/web; the models are the ones this export already wrote and verified."""
    models = {name: sources.written[name] for name in MODEL_ORDER if name in sources.written}
    manifest = write_web(path, models, sources.options.web_runtime, name=sources.out_dir.name)
    checks = [
        CheckRecord(
            f"web_copy_{m['name']}",
            file_sha256(path / m["file"]) == file_sha256(models[m["name"]]),
            kind="structure",
            detail=f"web/{m['file']} is a byte copy of {m['file']}",
        )
        for m in manifest["models"]
    ]
    checks += [
        CheckRecord(
            "web_page_files",
            all((path / n).is_file() for n in (*PAGE_FILES, MANIFEST)),
            kind="structure",
            detail=", ".join((*PAGE_FILES, MANIFEST)),
        )
    ]
    return Built(
        checks=checks,
        extra={
            "web": {
                "models": [m["file"] for m in manifest["models"]],
                "runtime": manifest["runtime"]["script"],
                "seeds_match_python": manifest["seeds_match_python"],
            }
        },
    )
