"""What an export variant is: its row in the table (Variant, with the options it reads: VariantParam), what it is
built from (Sources) and what its build function hands back to the pipeline (Built).

Torch- and onnx-free at import on purpose: `edgegan export --help` builds its variant flags from the table in an
install without the export extra; a row names its module, imported only when the variant is built.
VariantOptions is not written out: `options_type(VARIANTS)` derives it, one bool field per row (its `option`)
and one field per VariantParam, so a new variant is its module plus its row.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegan.runtime.errors import EdgeganError

if TYPE_CHECKING:  # annotations only: importing onnx (and verify's onnxruntime) here would cost every --help
    import onnx

    from edgegan.export.check_records import CheckRecord
    from edgegan.runtime.contract import GeneratorContract


class VariantError(EdgeganError, RuntimeError):
    """A variant could not be built from generator.onnx."""


def resolve(spec: str) -> Callable[..., Any]:
    """ "package.module:function" -> the function (the module imported now, not when the table is read)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def flag_of(name: str) -> str:
    """The command-line spelling of an option name: "ort_format" -> "--ort-format"."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class VariantParam:
    """An export option a variant reads besides its own flag (TensorRT's batch profile, the web page's runtime).

    name: the VariantOptions field, export_checkpoint keyword and (as flag_of(name)) the CLI option.
    default: the value when not given.
    help: the CLI help text.
    metavar: the CLI's placeholder for the value.
    cli_default: the default as typed on the command line, shown in --help (None: `default`, not shown).
    parse: "module:function", CLI text -> value (None: the text itself); a ValueError or EdgeganError it raises
        is a usage error.
    check: "module:function", value -> the value the variants read (e.g. ints); raises EdgeganError on a bad one.
        The CLI (a usage error) and export_checkpoint (before any work) both run it.
    needs_flag: giving it without its variant's flag is a usage error.
    """

    name: str
    default: Any
    help: str
    metavar: str | None = None
    cli_default: str | None = None
    parse: str | None = None
    check: str | None = None
    needs_flag: bool = False

    @property
    def flag(self) -> str:
        return flag_of(self.name)

    def checked(self, value: Any) -> Any:
        return resolve(self.check)(value) if self.check is not None else value


@dataclass(frozen=True)
class Sources:
    """What every variant is built from, in the staging folder of one export."""

    fp32: onnx.ModelProto  # generator.onnx as saved: graph form, uint8 tail (if any), metadata
    core: onnx.ModelProto  # torch's export, ConvTranspose form, float NCHW, no uint8 tail: what int8 quantizes
    contract: GeneratorContract  # generator.onnx's contract (fp32)
    stage: Path  # becomes --out
    work: Path  # scratch files that never reach --out
    out_dir: Path  # --out as given (Triton names its model after it)
    options: Any  # the table's options dataclass (options_type(VARIANTS))
    written: dict[str, Path] = field(
        default_factory=dict
    )  # variant name -> its file, "fp32" first; the pipeline adds each


@dataclass
class Built:
    """A build function's result.

    model: the graph to stamp with the variant's contract and save at its path; None when the build wrote the
        file itself (.ort, TensorRT engine, Triton repository).
    ops: operator counts for the report (None: not an ONNX graph, or unknown).
    checks: the variant's own checks, for variants verify_variant cannot run (their `tolerance` is None).
    extra: more keys for the variant's report entry.
    precision: the precision when it follows the options rather than the table row (TensorRT's flags).
    contract: the contract to stamp and verify when the file records more than generator.onnx's (the cuda form's
        graph form: `GeneratorContract.with_graph_form`, nothing else changed); None: generator.onnx's. Its
        precision still follows `precision` or the row.
    """

    model: onnx.ModelProto | None = None
    ops: dict[str, int] | None = None
    checks: list[CheckRecord] = field(default_factory=list)
    extra: dict[str, Any] | None = None
    precision: str | None = None
    contract: GeneratorContract | None = None


@dataclass(frozen=True)
class Variant:
    """One row of the variant table (edgegan.export.variants.VARIANTS).

    name: its key in export_report.json's "variants".
    file: its path in --out; "{model}" stands for the Triton model name (edgegan.export.triton_repository.model_name).
    precision: the contract precision its metadata states (edgegan.runtime.contract.PRECISIONS).
    module: the module that builds it: `build(sources, path in the staging folder) -> Built`, and optionally
        `preflight()`, run before anything is written, to fail fast when a dependency is missing.
    option: the VariantOptions field (an export_checkpoint keyword, and the CLI flag flag_of(option)) that asks
        for it.
    help: the CLI flag's help text.
    step: the progress line before the build, formatted with the VariantOptions fields.
    tolerance: the TOLERANCES row verify_variant judges the file by; None: onnxruntime cannot run the file
        itself, so the build's own checks stand instead.
    versus_fp32: also compare its images with generator.onnx's (a variant that must compute the same graph).
    has_opset: the file holds an ONNX graph whose opset the report gives.
    also: more files it writes beside `file`.
    params: the options it reads besides its flag (other variants may read them too: Triton reads trt_batch).
    """

    name: str
    file: str
    precision: str
    module: str
    option: str
    help: str
    step: str
    tolerance: str | None
    versus_fp32: bool = False
    has_opset: bool = True
    also: tuple[str, ...] = ()
    params: tuple[VariantParam, ...] = ()

    @property
    def flag(self) -> str:
        return flag_of(self.option)

    def enabled(self, options: Any) -> bool:
        return bool(getattr(options, self.option))

    def files(self, model: str) -> tuple[str, ...]:
        """Every path it writes, relative to --out, for the Triton model name `model`."""
        return (self.file.format(model=model), *self.also)

    def build(self, sources: Sources, path: Path) -> Built:
        return importlib.import_module(self.module).build(sources, path)

    def preflight(self) -> None:
        check = getattr(importlib.import_module(self.module), "preflight", None)
        if check is not None:
            check()


@functools.cache
def options_type(variants: tuple[Variant, ...]) -> type:
    """The options dataclass of a variant table: per row a bool field named by its `option` (default False), then
    a field per VariantParam with its default; frozen, in table order. One class per table (cached)."""
    fields: list[tuple[str, Any, Any]] = []
    for variant in variants:
        fields.append((variant.option, bool, dataclasses.field(default=False)))
        fields += [(param.name, Any, dataclasses.field(default=param.default)) for param in variant.params]
    names = [name for name, _, _ in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"the variant table names an option twice: {names}")
    cls = dataclasses.make_dataclass("VariantOptions", fields, frozen=True)
    cls.__module__ = __name__  # where it is made (Python 3.11's make_dataclass has no module= yet)
    return cls


def make_options(variants: Sequence[Variant], given: Mapping[str, Any], caller: str = "export_checkpoint") -> Any:
    """The table's options dataclass from keyword values, each param's `check` applied (defaults included).

    Raises:
        TypeError: a name the table does not know (as Python says of an unknown keyword).
        EdgeganError: a value its param's check refuses (ExportOptionError).
    """
    variants = tuple(variants)
    cls = options_type(variants)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    values = dict(given)
    for variant in variants:
        for param in variant.params:
            values[param.name] = param.checked(values.get(param.name, param.default))
    return cls(**values)
