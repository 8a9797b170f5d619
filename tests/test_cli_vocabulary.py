"""One option vocabulary across every `edgegan` command: the same name means the same idea (issue 12).

Reads every command's click parameters (nothing runs), then checks the old spellings still work as hidden
aliases and that the fixes error messages suggest are commands that parse."""

from __future__ import annotations

import re
import shlex

import click
import pytest
from click.testing import CliRunner

from edgegan.cli import COMMANDS, main
from edgegan.runtime.cli_options import CommaList, EdgeganCommand, deprecated_alias
from edgegan.runtime.providers import PROVIDERS


def _commands() -> dict[str, click.Command]:
    found = {}
    for name in COMMANDS:
        command = main.get_command(click.Context(main), name)
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                found[f"{name} {sub.name}"] = sub
        else:
            found[name] = command
    return found


COMMANDS_BY_NAME = _commands()


def _options(command: click.Command, visible: bool = True) -> dict[str, click.Option]:
    return {
        flag: p
        for p in command.params
        if isinstance(p, click.Option) and (p.hidden != visible)
        for flag in (*p.opts, *p.secondary_opts)
    }


def test_every_command_is_listed():
    assert set(COMMANDS_BY_NAME) >= {"train", "export", "sample", "bench", "eval", "evaluator train"}


@pytest.mark.parametrize("name", sorted(COMMANDS_BY_NAME))
def test_quiet_and_json_file_everywhere(name):
    options = _options(COMMANDS_BY_NAME[name])
    quiet = options.get("-q")
    assert quiet is not None and quiet is options.get("--quiet") and quiet.is_flag
    json = options.get("--json")
    assert json is not None and json.metavar == "FILE" and json.name == "json_path"
    assert isinstance(json.type, click.Path) and json.type.allow_dash  # `-`: stdout


@pytest.mark.parametrize("name", sorted(COMMANDS_BY_NAME))
def test_same_name_same_idea(name):
    command = COMMANDS_BY_NAME[name]
    options = _options(command)
    assert "--batch" not in options  # a list of sizes is --batch-sizes
    if "--batch-size" in options:  # one size
        assert isinstance(options["--batch-size"].type, click.IntRange) and options["--batch-size"].type.min == 1
    if "--batch-sizes" in options:
        assert isinstance(options["--batch-sizes"].type, CommaList) and options["--batch-sizes"].type.choices is None
    if "--threads" in options:  # intra-op threads: one count, or in bench a comma list of counts
        kind = options["--threads"].type
        assert (isinstance(kind, click.IntRange) and kind.min == 1) or (
            isinstance(kind, CommaList) and kind.choices is None
        )
    if "--provider" in options:  # validated against the one list, as a choice or a comma list of choices
        kind = options["--provider"].type
        assert tuple(kind.choices) == PROVIDERS
    if "--out" in options:  # a folder
        kind = options["--out"].type
        assert isinstance(kind, click.Path) and not kind.file_okay
    if "-o" in options:  # one file
        assert options["-o"] is options["--output"] and not options["-o"].type.dir_okay
    assert isinstance(command, EdgeganCommand)  # hidden aliases are applied


@pytest.mark.parametrize(
    "name, old, new",
    [("bench", "--batch", "--batch-sizes"), ("sample", "--out", "--output"), ("evaluator train", "--out", "--output")],
)
def test_old_spellings_are_hidden_aliases(name, old, new):
    hidden = _options(COMMANDS_BY_NAME[name], visible=False)
    assert old in hidden and new in _options(COMMANDS_BY_NAME[name])
    result = CliRunner().invoke(main, [*name.split(), "--help"])
    assert result.exit_code == 0 and not re.search(rf"\s{old}\s", result.output.replace(new, ""))


def test_alias_sets_the_new_parameter_in_either_order():
    @click.command(cls=EdgeganCommand)
    @click.option("--batch-sizes", "batches", type=CommaList(), default="1")
    @deprecated_alias("--batch", "batches", "--batch-sizes", type=CommaList())
    @click.option("-v", is_flag=True)
    def probe(batches, v):
        click.echo(f"batches={batches}")

    for args in (["--batch", "2,4", "-v"], ["-v", "--batch", "2,4"]):
        result = CliRunner().invoke(probe, args)
        assert result.exit_code == 0 and "batches=(2, 4)" in result.stdout
        assert "--batch is deprecated" in result.stderr
    assert "batches=(1,)" in CliRunner().invoke(probe, []).stdout
    both = CliRunner().invoke(probe, ["--batch", "2", "--batch-sizes", "3"])
    assert both.exit_code == 2 and "give only --batch-sizes" in both.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--provider", "gpu"], "unknown provider gpu; choose from cpu, cuda, tensorrt, auto"),
        (["--provider", "cpu,gpu"], "unknown provider gpu"),
        (["--batch-sizes", "1,0"], "--batch-sizes takes positive integers"),
        (["--batch", "x"], "--batch takes positive integers"),
        (["--threads", "two"], "--threads takes positive integers"),
    ],
)
def test_bench_lists_are_checked_as_they_are_parsed(args, fragment, tmp_path):
    result = CliRunner().invoke(main, ["bench", str(tmp_path / "none.onnx"), *args])
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output


def test_eval_refuses_an_unknown_dataset_with_a_fix_that_parses(tmp_path):
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "g.onnx"), "--dataset", "cifar10"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "evaluator train --dataset cifar10" not in result.output
    assert "--dataset folder --data-dir DIR" in result.output


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", "npz", "folder", "cifar10"])
def test_evaluator_suggestions_are_commands_that_parse(dataset, tmp_path):
    from edgegan.runtime.evaluation.evaluator import how_to_make_evaluator

    for suggested in re.findall(r"`(edgegan [^`]+)`", how_to_make_evaluator(dataset)):
        argv = shlex.split(suggested.replace("PATH", str(tmp_path)).replace("DIR", str(tmp_path)))[1:]
        if argv == ["evaluator", "train"]:
            continue  # the bare command, named as where to look
        command = COMMANDS_BY_NAME[" ".join(argv[:2])] if argv[0] == "evaluator" else COMMANDS_BY_NAME[argv[0]]
        rest = argv[2:] if argv[0] == "evaluator" else argv[1:]
        command.make_context(argv[0], rest)  # raises UsageError if the suggestion does not parse


def test_evaluator_train_output_folder_must_exist(tmp_path):
    result = CliRunner().invoke(
        main,
        ["evaluator", "train", "--dataset", "npz", "--data-dir", str(tmp_path), "-o", str(tmp_path / "no" / "e.onnx")],
    )
    assert result.exit_code == 1 and "does not exist" in result.output and not (tmp_path / "no").exists()
