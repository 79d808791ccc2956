"""The shipped recipe: what ``reports/recipe.json`` chose per task, as the training config the main job trains.

``reports/recipe.json`` holds, per task, the grid variant (a name of :data:`~.experiments.VARIANTS`, as in
``reports/zero_shot_summary.json``), its fused layer (``null`` for the variants without one), the config
overrides the rule adopted (dotted paths, as ``run grid --set``), the rule that chose them and the config
it describes. :func:`recipe_config` builds the config exactly as the grid built the candidates' runs
(:func:`~.experiments.run_config`), so the shipped pipeline is trained with the settings that were chosen.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from thinc.api import Config

from ..tasks import TASKS
from .experiments import VARIANTS, GridSettings, Run, run_config

REQUIRED = ("variant", "layer", "overrides", "chosen_by")
LAYERED = ("dlfa", "mean_fusion", "concat_fusion")  # the variants that fuse a lower layer


class RecipeError(ValueError):
    """A recipe file that cannot be used, naming the file and the task."""

    def __init__(self, path: Path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class Recipe:
    task: str
    variant: str
    layer: Optional[int]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    chosen_by: str = ""


def task_entries(path: Path) -> Dict[str, Any]:
    """A JSON file keyed by task (``recipe.json``, ``recipe_rule.json``)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf8"))
    except json.JSONDecodeError as err:
        raise RecipeError(path, f"not JSON (line {err.lineno}: {err.msg})") from None


def task_entry(path: Path, task: str, what: str = "recipe", entries: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The entry of ``task`` in such a file (``entries``: the file already read)."""
    entries = task_entries(path) if entries is None else entries
    if task not in entries:
        raise RecipeError(path, f"no {what} for {task} (it has {', '.join(sorted(entries)) or 'none'})")
    return entries[task]


def load_recipe(path: Path, task: str) -> Recipe:
    entry = task_entry(path, task)
    missing = [key for key in REQUIRED if key not in entry]
    if missing:
        raise RecipeError(path, f"{task}: missing {', '.join(missing)} (expected {', '.join(REQUIRED)})")
    variant, layer = entry["variant"], entry["layer"]
    if variant not in VARIANTS:
        raise RecipeError(path, f"{task}: unknown variant {variant!r} (expected one of {', '.join(VARIANTS)})")
    if (variant in LAYERED) != isinstance(layer, int):
        wanted = "a whole number" if variant in LAYERED else "null"
        raise RecipeError(path, f"{task}: variant {variant} needs layer {wanted}, got {layer!r}")
    if not isinstance(entry["overrides"], dict):
        raise RecipeError(path, f"{task}: overrides must be an object of dotted config paths, got {entry['overrides']!r}")
    return Recipe(task, variant, layer, entry["overrides"], entry["chosen_by"])


def recipe_config(recipe: Recipe, configs_dir: Path, corpus_dir: Path, transformer: str, hidden_width: int,
                  max_steps: int = 0, batch_size: int = 0, seed: int = 0) -> Config:
    """The training config of ``recipe``; ``max_steps`` / ``batch_size`` 0 keep the config's."""
    if recipe.task not in TASKS:
        raise ValueError(f"unknown task {recipe.task!r}")
    settings = GridSettings(transformer=transformer, hidden_width=hidden_width, corpus_dir=corpus_dir, training_dir=Path(),
                            metrics_dir=Path(), configs_dir=configs_dir, max_steps=max_steps, batch_size=batch_size, targets=[],
                            overrides=recipe.overrides)
    config = run_config(Run(recipe.task, recipe.variant, seed, recipe.layer), settings)
    schedule_over_max_steps(config)
    return config


def schedule_over_max_steps(config: Config) -> None:
    """A recipe's optimizer override fixes its learning-rate schedule's ``total_steps`` (and the averaging's
    ``average_start``) for the recipe's run length; over a run of another length (``--max-steps``, a joint run)
    the schedule follows ``training.max_steps`` and ``average_start`` keeps its fraction of the run
    (750 of 1,500 -> 1,500 of 3,000)."""
    optimizer = config["training"]["optimizer"]
    rate = optimizer.get("learn_rate")
    steps = config["training"]["max_steps"]
    if not isinstance(rate, dict) or not isinstance(rate.get("total_steps"), int) or rate["total_steps"] == steps:
        return
    if "average_start" in optimizer:
        optimizer["average_start"] = round(optimizer["average_start"] * steps / rate["total_steps"])
    rate["total_steps"] = "${training.max_steps}"
