"""The command line's shape: every documented command exists with the options it is shown with, --help at every
level lists the commands, lists are read one way everywhere with a clear error."""
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import srsly
import typer
from conftest import REPO
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.cli.options import split_list

ROOT = typer.main.get_command(app)
Command = Any  # typer's own click: a group has .commands, every command .params


def is_group(command: Command) -> bool:
    return hasattr(command, "commands")


# hand-written documents and the files that run commands; generated reports are left out
DOCUMENTS = ["README.md", "project.yml", "reports/dlfa_investigation.md", "reports/robustness_conclusion.md", "reports/words_input.md",
             "reports/experiments_notes.md"]


def command_lines(path: Path) -> List[Tuple[int, str]]:
    """(line number, the command's words and options) for every ``python -m spacy_dlfa`` in the file."""
    found = []
    lines = path.read_text(encoding="utf8").splitlines()
    if path.suffix == ".yml":  # a folded script line (>-) spans several lines: the parsed YAML has it whole (numbered by script line)
        lines = [line for command in srsly.read_yaml(path)["commands"] for line in command.get("script", [])]
    for number, line in enumerate(lines, 1):
        for match in re.finditer(r"python -m spacy_dlfa([^`\"\n]*)", line):
            found.append((number, match.group(1)))
    return found


def resolve(words: List[str]) -> Tuple[Command, List[str]]:
    """The command the words name (groups followed down) and the path taken."""
    command, path = ROOT, []
    for word in words:
        if not is_group(command) or word.startswith("-"):
            break
        if word not in command.commands:
            raise LookupError(f"{' '.join(path) or 'python -m spacy_dlfa'} has no command {word!r} (it has: {', '.join(command.commands)})")
        command, path = command.commands[word], [*path, word]
    return command, path


def option_names(command: Command) -> set:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts) if name.startswith("--")} | {"--help"}


def test_the_documents_mention_commands():
    mentions = {name: len(command_lines(REPO / name)) for name in DOCUMENTS}
    assert mentions["README.md"] >= 10 and mentions["project.yml"] >= 20, mentions


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_documented_command_exists_with_its_options(document):
    problems = []
    for number, text in command_lines(REPO / document):
        words = text.split()
        if not words or words[0] in ("--help", "...", "<group>"):
            continue
        try:
            command, path = resolve(words)
        except LookupError as err:
            problems.append(f"{document}:{number}: {err}")
            continue
        if is_group(command):
            problems.append(f"{document}:{number}: {' '.join(path) or 'python -m spacy_dlfa'} is a group, not a command")
            continue
        unknown = sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)) - option_names(command))
        if unknown:
            problems.append(f"{document}:{number}: {' '.join(path)} has no option {', '.join(unknown)}")
    assert not problems, "\n".join(problems)


def test_resolve_refuses_an_old_flat_command():
    with pytest.raises(LookupError, match="has no command 'experiments'"):
        resolve(["experiments", "ner"])
    with pytest.raises(LookupError, match="report has no command 'metrics'"):
        resolve(["report", "metrics", "reports"])


def groups(command: Command, path: Tuple[str, ...] = ()) -> Dict[Tuple[str, ...], Command]:
    found = {path: command}
    for name, sub in command.commands.items():
        if is_group(sub):
            found.update(groups(sub, (*path, name)))
    return found


@pytest.mark.parametrize("path", sorted(groups(ROOT)), ids=lambda path: " ".join(path) or "top")
def test_help_at_every_level_lists_its_commands(path):
    group = groups(ROOT)[path]
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, command in group.commands.items():
        assert re.search(rf"│ {re.escape(name)} +\S", result.output), f"{name} missing from {' '.join(path)} --help:\n{result.output}"
        assert command.get_short_help_str(200), f"{' '.join((*path, name))} has no help"


def test_the_groups_hold_the_commands():
    leaves = {" ".join((*path, name)) for path, group in groups(ROOT).items() for name, command in group.commands.items()
              if not is_group(command)}
    assert leaves == {"evaluate", "annotate", "calibrate", "data model", "data prepare", "data corpus", "run grid", "run study", "run average", "run share", "run recipe", "run choose-recipe", "run joint",
                      "analyse attack", "analyse compare", "analyse gate-stats", "analyse layer-alignment", "report zero-shot",
                      "report grid", "report study", "report recipe", "report meta", "report pack-metrics"}


def test_split_list_reads_spaces_commas_and_repeats():
    assert split_list(["de zh", "ar,hi", " tr "], "--targets") == ["de", "zh", "ar", "hi", "tr"]
    assert split_list(["0 1", "2"], "--seeds", int) == [0, 1, 2]
    assert split_list([], "--languages", allow_empty=True) == []


def test_split_list_errors_name_the_option_and_the_value():
    with pytest.raises(typer.BadParameter, match="at least one value") as info:
        split_list([" "], "--targets")
    assert info.value.param_hint == "--targets"
    with pytest.raises(typer.BadParameter, match="'x' is not a whole number") as info:
        split_list(["0 x 2"], "--seeds", int)
    assert info.value.param_hint == "--seeds"


def test_a_bad_list_stops_the_command_with_the_option_named(tmp_path):
    result = CliRunner().invoke(app, ["run", "grid", "ner", "--targets", "de", "--corpus-dir", str(tmp_path), "--seeds", "0 one"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--seeds" in result.output and "'one' is not a whole number" in result.output


def test_an_unknown_task_is_refused_naming_the_tasks(tmp_path):
    result = CliRunner().invoke(app, ["analyse", "compare", "nre", str(tmp_path), str(tmp_path), "--targets", "de"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "unknown task 'nre': use one of ner, pos, xnli, pawsx" in " ".join(result.output.split())
