"""The generator contract (DESIGN.md): metadata keys, io_spec() every checker compares against, latents, pixels.

This module is the single home of the rule that ties trainer, export and runtime together, so one seed gives
the same picture from a checkpoint, from `generator.onnx` and from each of its variants. numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.latent_rule import RULE as LATENT_RULE
from edgegan.runtime.latent_rule import rule_normals
from edgegan.runtime.sample_result import fresh_seed

FORMAT_VERSION = "1"
INPUT_LATENT = "z"
INPUT_LABEL = "label"
OUTPUT_IMAGE = "image"
BATCH_AXIS = "batch"

OUTPUT_FLOAT_NCHW = "float_nchw"
OUTPUT_UINT8_NHWC = "uint8_nhwc"
OUTPUT_FORMS = (OUTPUT_FLOAT_NCHW, OUTPUT_UINT8_NHWC)
PRECISIONS = ("fp32", "fp16", "int8")

KEY_FORMAT = "edgegan.format"
KEY_ARCH = "edgegan.arch"
KEY_NZ = "edgegan.nz"
KEY_NUM_CLASSES = "edgegan.num_classes"
KEY_CLASS_NAMES = "edgegan.class_names"
KEY_IMAGE = "edgegan.image"
KEY_OUTPUT = "edgegan.output"
KEY_PRECISION = "edgegan.precision"
KEY_DATASET = "edgegan.dataset"
KEY_TRAIN = "edgegan.train"
# Optional: how seeds become latents. Absent in models exported before the language-neutral rule; they keep numpy's.
KEY_LATENT_RULE = "edgegan.latent_rule"
LATENT_RULE_NUMPY = "numpy-pcg64-ziggurat"  # np.random.default_rng(seed).standard_normal: numpy only
LATENT_RULES = (LATENT_RULE, LATENT_RULE_NUMPY)  # LATENT_RULE: runtime/latent_rule.py, every language
# Optional: the form of the graph, written where a file is one provider's form (export/variants/cuda.py); absent in
# generator.onnx and in files exported before it. It is not part of the contract's promise: io_spec, latents and
# pixels are the same whatever the form (`with_graph_form` changes nothing else). The runtime reads it when it opens
# a folder's file for a provider (runtime/session.py PROVIDER_FORMS). A form this runtime does not know still loads.
KEY_GRAPH_FORM = "edgegan.graph_form"
GRAPH_FORM_PHASE = "phase"  # stride-2 ConvTransposes as 2x2 phase convolutions (export/graph_forms.py): the CPU's
GRAPH_FORM_CONVTRANSPOSE = "convtranspose"  # torch's plain ConvTranspose, BatchNorm folded: one cuDNN kernel a layer
GRAPH_FORMS = (GRAPH_FORM_PHASE, GRAPH_FORM_CONVTRANSPOSE)
REQUIRED_KEYS = (
    KEY_FORMAT,
    KEY_ARCH,
    KEY_NZ,
    KEY_NUM_CLASSES,
    KEY_CLASS_NAMES,
    KEY_IMAGE,
    KEY_OUTPUT,
    KEY_PRECISION,
    KEY_DATASET,
    KEY_TRAIN,
)


class ContractError(EdgeganError, ValueError):
    """A model or its metadata does not follow the edgegan generator contract."""


# numpy dtype name -> the type string onnxruntime's NodeArg.type reports for it.
ORT_TYPES = {
    "float32": "tensor(float)",
    "float16": "tensor(float16)",
    "int64": "tensor(int64)",
    "uint8": "tensor(uint8)",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a generator: name, numpy dtype name, shape with BATCH_AXIS for the dynamic batch."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    @property
    def ort_type(self) -> str:
        return ORT_TYPES[self.dtype]

    def text(self) -> str:
        return f"{self.dtype} {shape_text(self.shape)}"


@dataclass(frozen=True)
class IOSpec:
    """The graph signature a contract asks for; every checker (runtime, verify, TensorRT, Triton) compares to it."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def by_name(self) -> dict[str, TensorSpec]:
        return {t.name: t for t in (*self.inputs, *self.outputs)}


def shape_text(shape: Sequence[Any]) -> str:
    """A shape as the messages write it: "[batch, 8]" (symbolic dims by name, unknown ones as None)."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def draw_latents(n: int, nz: int, seed: int | None, rule: str = LATENT_RULE) -> np.ndarray:
    """The contract's latents: float32 [n, nz] standard normal for `seed` by a model's latent rule.

    Args:
        rule: LATENT_RULE (default, what new exports record: runtime/latent_rule.py, reproducible in any
            language; row i is image i's whatever n is) or LATENT_RULE_NUMPY (models exported before it:
            np.random.default_rng(seed).standard_normal((n, nz), dtype=float32)).
        seed: None draws fresh entropy (not reproducible).
    """
    if n <= 0:
        raise ValueError(f"number of latents must be positive, got {n}")
    if rule == LATENT_RULE_NUMPY:
        return np.random.default_rng(seed).standard_normal((n, nz), dtype=np.float32)
    if rule != LATENT_RULE:
        raise ContractError(f"unknown latent rule {rule!r}; this runtime knows {', '.join(LATENT_RULES)}")
    return rule_normals(fresh_seed() if seed is None else seed, 0, n, nz)


def default_labels(n: int, num_classes: int) -> np.ndarray:
    """Labels a conditional model gets when none are given: int64 [n] = arange(n) % num_classes."""
    return (np.arange(n) % num_classes).astype(np.int64)


def to_uint8_nhwc(images: np.ndarray) -> np.ndarray:
    """float [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C]; the same formula `--pixels uint8` folds into ONNX.

    round((x + 1) * 127.5) with round-half-to-even (numpy and ONNX Round agree), clipped to [0, 255].
    """
    if images.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {images.shape}")
    pixels = np.clip(np.round((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))


@dataclass
class GeneratorContract:
    """What a `generator.onnx` says about itself in its metadata_props."""

    arch: str
    nz: int
    num_classes: int
    channels: int
    height: int
    width: int
    class_names: list[str] = field(default_factory=list)
    output: str = OUTPUT_FLOAT_NCHW
    precision: str = "fp32"
    dataset: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT_VERSION
    latent_rule: str = LATENT_RULE  # new contracts use the language-neutral rule; old files' metadata says numpy's
    graph_form: str | None = None  # KEY_GRAPH_FORM: None where the file does not record it

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def image_shape_nchw(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def io_spec(self) -> IOSpec:
        """The signature of a graph with this contract: z float32 [batch, nz] (+ label int64 [batch]) ->
        image float32 [batch, C, H, W] (`float_nchw`) or uint8 [batch, H, W, C] (`uint8_nhwc`). The precision
        never changes it: fp16 and int8 variants keep float32 inputs and outputs."""
        inputs = [TensorSpec(INPUT_LATENT, "float32", (BATCH_AXIS, self.nz))]
        if self.conditional:
            inputs.append(TensorSpec(INPUT_LABEL, "int64", (BATCH_AXIS,)))
        c, h, w = self.image_shape_nchw
        if self.output == OUTPUT_UINT8_NHWC:
            image = TensorSpec(OUTPUT_IMAGE, "uint8", (BATCH_AXIS, h, w, c))
        else:
            image = TensorSpec(OUTPUT_IMAGE, "float32", (BATCH_AXIS, c, h, w))
        return IOSpec(tuple(inputs), (image,))

    def to_metadata(self) -> dict[str, str]:
        return {
            KEY_FORMAT: self.format,
            KEY_ARCH: self.arch,
            KEY_NZ: str(self.nz),
            KEY_NUM_CLASSES: str(self.num_classes),
            KEY_CLASS_NAMES: json.dumps(list(self.class_names)),
            KEY_IMAGE: json.dumps({"channels": self.channels, "height": self.height, "width": self.width}),
            KEY_OUTPUT: self.output,
            KEY_PRECISION: self.precision,
            KEY_DATASET: self.dataset,
            KEY_TRAIN: json.dumps(self.train, sort_keys=True),
            KEY_LATENT_RULE: self.latent_rule,
            **({KEY_GRAPH_FORM: self.graph_form} if self.graph_form is not None else {}),
        }

    def with_graph_form(self, form: str | None) -> GeneratorContract:
        """This contract recording the graph form `form` (None: none): every other field, so io_spec, latents and
        pixels, stays as it is."""
        return replace(self, graph_form=form)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> GeneratorContract:
        """Parse and check metadata; raises ContractError naming every missing or bad key."""
        missing = [k for k in REQUIRED_KEYS if k not in meta]
        if missing:
            raise ContractError(
                "not an edgegan generator: metadata is missing "
                + ", ".join(missing)
                + " (export it with `edgegan export`)"
            )
        if meta[KEY_FORMAT] != FORMAT_VERSION:
            raise ContractError(
                f"unknown edgegan contract version {meta[KEY_FORMAT]!r}; this runtime reads version {FORMAT_VERSION}"
            )
        try:
            image = json.loads(meta[KEY_IMAGE])
            contract = cls(
                arch=meta[KEY_ARCH],
                nz=int(meta[KEY_NZ]),
                num_classes=int(meta[KEY_NUM_CLASSES]),
                channels=int(image["channels"]),
                height=int(image["height"]),
                width=int(image["width"]),
                class_names=[str(c) for c in json.loads(meta[KEY_CLASS_NAMES])],
                output=meta[KEY_OUTPUT],
                precision=meta[KEY_PRECISION],
                dataset=meta[KEY_DATASET],
                train=json.loads(meta[KEY_TRAIN]),
                format=meta[KEY_FORMAT],
                latent_rule=meta.get(KEY_LATENT_RULE, LATENT_RULE_NUMPY),
                graph_form=meta.get(KEY_GRAPH_FORM),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ContractError(f"edgegan metadata is malformed: {exc}") from exc
        contract.validate()
        return contract

    def validate(self) -> None:
        problems = []
        if self.nz <= 0:
            problems.append(f"nz must be positive (got {self.nz})")
        if self.num_classes < 0:
            problems.append(f"num_classes must be >= 0 (got {self.num_classes})")
        if self.class_names and len(self.class_names) != self.num_classes:
            problems.append(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if min(self.channels, self.height, self.width) <= 0:
            problems.append(f"bad image shape {self.image_shape_nchw}")
        if self.output not in OUTPUT_FORMS:
            problems.append(f"unknown output form {self.output!r} (expected one of {OUTPUT_FORMS})")
        if self.precision not in PRECISIONS:
            problems.append(f"unknown precision {self.precision!r} (expected one of {PRECISIONS})")
        if self.latent_rule not in LATENT_RULES:
            problems.append(
                f"unknown latent rule {self.latent_rule!r} (this runtime knows {', '.join(LATENT_RULES)}; "
                "a newer edgegan wrote it)"
            )
        if self.graph_form is not None and (not self.graph_form or self.graph_form != self.graph_form.strip()):
            problems.append(f"graph form {self.graph_form!r} is not a name (e.g. {', '.join(GRAPH_FORMS)})")
        if problems:
            raise ContractError("edgegan metadata is inconsistent: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
