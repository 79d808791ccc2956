"""What several commands share: the list parser, the option definitions, the Ray settings, failing cleanly.

Lists (languages, targets, seeds, layers, models, stages, variants) are given as one space or comma
separated value (``--targets 'de zh ar'``, the form project.yml passes) or by repeating the option
(``--targets de --targets zh``), or both; :func:`split_list` reads them all the same way.
"""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Tuple, TypeVar

import typer

from ..robustness.attacks import ATTACKS
from ..tasks import TASKS

T = TypeVar("T")


def split_list(values: Iterable[str], option: str, convert: Callable[[str], T] = str, allow_empty: bool = False) -> List[T]:  # type: ignore[assignment]
    """Every item of the option's values, split on spaces and commas, each passed through `convert`:
    ``["de zh", "ar"]`` -> ``["de", "zh", "ar"]``. Raises ``typer.BadParameter`` naming the option on an
    item `convert` refuses (``--seeds: 'x' is not a whole number``) or, unless `allow_empty`, on no items."""
    items = [item for value in values for item in value.replace(",", " ").split()]
    if not items and not allow_empty:
        raise typer.BadParameter("expected at least one value (space or comma separated, or the option repeated)", param_hint=option)
    converted = []
    for item in items:
        try:
            converted.append(convert(item))
        except ValueError:
            kind = "a whole number" if convert is int else "valid here"
            raise typer.BadParameter(f"{item!r} is not {kind} (given: {' '.join(items)!r})", param_hint=option) from None
    return converted


def whole_numbers(values: Iterable[str], option: str) -> List[int]:
    return split_list(values, option, int)


def config_override(item: str) -> Tuple[str, Any]:
    """'a.b=0.5' -> ('a.b', 0.5): the value read as JSON where it parses (numbers, true, null), else as text."""
    import srsly

    path, sep, value = item.partition("=")
    if not sep or not path:
        raise typer.BadParameter(f"expected PATH=VALUE, got {item!r}", param_hint="--set")
    try:
        return path, srsly.json_loads(value)
    except ValueError:
        return path, value


def per_task(value: str, tasks: Iterable[str], option: str) -> Dict[str, int]:
    """One whole number for every task (``"10"``), or one per task (``"ner=10 pos=10 xnli=6"``; tasks named
    but not run are ignored, so one project variable serves several commands) -> {task: number}."""
    items = value.replace(",", " ").split()
    if len(items) == 1 and "=" not in items[0]:
        return {task: whole_number(items[0], option) for task in tasks}
    given = {}
    for item in items:
        task, sep, number = item.partition("=")
        if not sep or task not in TASKS:
            raise typer.BadParameter(f"expected one number or TASK=NUMBER items with TASK one of {', '.join(TASKS)}, got {item!r}",
                                     param_hint=option)
        given[task] = whole_number(number, option)
    missing = [task for task in tasks if task not in given]
    if missing:
        raise typer.BadParameter(f"no value for {', '.join(missing)} in {value!r}", param_hint=option)
    return {task: given[task] for task in tasks}


def whole_number(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a whole number", param_hint=option) from None


def optional_limit(value: int) -> Optional[int]:
    """The CLI's 0 (= all) as the code's None."""
    return value if value > 0 else None


def fail(err: BaseException) -> NoReturn:
    """Print the error as one red line and exit 1 (no traceback for bad input)."""
    from wasabi import msg

    msg.fail(err.args[0] if isinstance(err, KeyError) and err.args else str(err), exits=1)
    raise SystemExit(1)  # not reached: msg.fail exits


# ------------------------------------------------------------------ options used by several commands
# A typer OptionInfo only describes an option, so one object serves every command that takes it.

def list_option(default: Any, help: str) -> Any:
    """A list option: one space or comma separated value, repeatable (see the module docstring)."""
    return typer.Option(default, help=f"{help}; space or comma separated, or the option repeated")


TARGETS = list_option(..., "Target languages (ner, xnli, pawsx) or treebanks (pos)")
LANGUAGES = list_option(..., "Languages or treebanks (the names in test-<lang>.spacy)")
CORPUS_DIR = typer.Option(..., help="Folder with train/dev/test-<lang>.spacy (python -m spacy_dlfa data prepare)")
CONFIGS_DIR = typer.Option(Path("configs"), help="Folder with the <task>_<variant>.cfg training configs")
MAX_STEPS = typer.Option(0, help="Training steps (0: the config's)")
BATCH_SIZE = typer.Option(0, help="Batcher size (0: the config's)")
GPU_ID = typer.Option(-1, help="GPU id, -1 for CPU")
TASK = typer.Argument(..., help="ner, pos, xnli or pawsx")
TRANSFORMER = typer.Option("assets/e5-small", help="Transformer: model folder or hub name")
HIDDEN_WIDTH = typer.Option(384, help="The transformer's hidden width")
SEED = typer.Option(0, help="Training seed")
RECIPE_FILE = typer.Option(Path("reports/recipe.json"), "--recipe", help="The chosen recipes (variant, layer, overrides) per task")

# the attack (analyse attack, run study)
ATTACK = typer.Option("char_noise", "--attack", help=f"One of {', '.join(ATTACKS)} (entity_swap needs --pool, code_switch --lexicon)")
RATE = typer.Option(0.2, help="Probability that a word (entity_swap: a mention) is edited, with --budget 0")
BUDGET = typer.Option(0, help="> 0: greedy adversarial search with at most this many edited words (mentions) per example; 0: random at --rate")
CANDIDATES = typer.Option(8, help="Edits tried per greedy step (with --budget)")
POOL = typer.Option(None, help="entity_swap: .spacy file whose entity mentions replace the test set's")
LEXICON = typer.Option(None, help="code_switch: TSV file source<TAB>target")

# Ray (annotate, run grid, run study): the engine, and the size of each worker
ADDRESS = typer.Option(None, help="Ray: cluster address (auto: the one `ray start` began here, or ray://head:10001); default a local Ray")


def engine_option(local: str, ray: str) -> Any:
    return typer.Option("local", help=f"local ({local}), or ray ({ray})")


def num_cpus_option(worker: str) -> Any:
    return typer.Option(1.0, help=f"Ray: CPUs per {worker} (also its torch threads)")


def num_gpus_option(worker: str, note: str = "") -> Any:
    return typer.Option(0.0, help=f"Ray: GPUs per {worker}{note}")


def concurrency_option(workers: str) -> Any:
    return typer.Option(0, help=f"Ray: {workers} at once (0: as many as the cluster's CPUs or GPUs hold)")


def ray_settings(address: Optional[str], concurrency: int, num_cpus: float, num_gpus: float):
    """The Ray options as the code's ``distributed.RaySettings``."""
    from ..runs.distributed import RaySettings

    return RaySettings(address=address, concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus)


def group(name: str, help: str) -> typer.Typer:
    """A sub-app: ``python -m spacy_dlfa <name> --help`` lists its commands."""
    return typer.Typer(name=name, help=help, add_completion=False, no_args_is_help=True)

