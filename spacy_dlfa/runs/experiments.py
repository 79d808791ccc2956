"""Resumable experiment grid: baseline vs DLFA, layer sweep, seeds, ablations.

Every run trains with ``spacy train`` on a config written next to its output
(``training/experiments/<task>/<run>/config.cfg``) and is evaluated on English
and every target; finished runs (metrics present) are skipped, after checking
that their saved config is the one this run would train with. The fused layer
is chosen on the English dev score alone (the best dev score ``spacy train``
saved in model-best's meta.json), never on target-language data.
"""
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from spacy.util import dict_to_dot, dot_to_object, load_config, registry, set_dot_to_object
from thinc.api import Config
from wasabi import msg

from ..tasks import TASKS
from .distributed import RaySettings, run_jobs
from .evaluation import evaluate_languages
from .results import RAW, RUN_META, has_counts, load_run_meta

# aif_last: the AIF module fusing the last layer with itself, a control that
# separates what normalising and rescaling the last layer gives from what the
# lower layer gives. first_token_pooling: the pair tasks' DLFA pooled by the
# pair's first word instead of the mean, the pooling comparison.
VARIANTS = ("baseline", "dlfa", "mean_fusion", "concat_fusion", "aif_last", "first_token_pooling")
# written only after spacy train exits successfully; holds the training seconds
TRAINED_MARKER = "train_seconds.json"
# settings that change memory use, not what a run learns: a run trained before they existed is still reused.
# The tokenizer too: training and dev read the gold tokens (gold_preproc = true); it only tokenizes raw text.
RESULT_NEUTRAL_SETTINGS = frozenset({"components.transformer.model.keep_hidden_layers", "nlp.tokenizer.@tokenizers",
                                     "training.logger.progress_bar"})  # what the log shows, not what is trained


class RunMismatch(ValueError):
    """A finished run was trained with other settings than the ones asked for now."""


@dataclass(frozen=True)
class Run:
    task: str
    variant: str
    seed: int
    layer: Optional[int] = None

    @property
    def name(self) -> str:
        layer = "" if self.layer is None else f"_l{self.layer}"
        return f"{self.variant}{layer}_s{self.seed}"


@dataclass
class GridSettings:
    transformer: str
    hidden_width: int
    corpus_dir: Path
    training_dir: Path
    metrics_dir: Path
    configs_dir: Path
    max_steps: int
    batch_size: int
    targets: Sequence[str]
    gpu_id: int = -1
    # dotted config paths -> values, applied to every run last (the investigation knobs, e.g.
    # {"components.ner.model.tok2vec.fusion.gate_init": 0.5}); give such runs their own training/metrics folders
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # also score the raw text (<lang>.raw): off for the grid, whose variants share one tokenizer and are
    # compared on the gold tokens; it would double each run's evaluation. The main job's evaluate step has it on.
    raw_text: bool = False


def run_config(run: Run, settings: GridSettings):
    spec = TASKS[run.task]
    component = spec.component
    config = load_config(settings.configs_dir / f"{spec.config_prefix}_{'baseline' if run.variant == 'baseline' else 'dlfa'}.cfg")
    config["paths"].update(
        train=str(settings.corpus_dir / "train.spacy"), dev=str(settings.corpus_dir / "dev.spacy"), transformer=settings.transformer
    )
    config["system"]["seed"] = run.seed
    if settings.max_steps:
        config["training"]["max_steps"] = settings.max_steps
    if settings.batch_size:
        config["training"]["batcher"]["size"] = settings.batch_size
    listener = config["components"][component]["model"]["tok2vec"]
    if run.variant != "baseline":
        listener["fusion_layer"] = -1 if run.variant == "aif_last" else run.layer
        fusion = listener["fusion"]
        fusion["width"] = settings.hidden_width
        if run.variant == "mean_fusion":
            listener["fusion"] = {"@architectures": "spacy-dlfa.MeanFusion.v1", "width": settings.hidden_width, "normalize_inputs": fusion["normalize_inputs"]}
        elif run.variant == "concat_fusion":
            listener["fusion"] = {
                "@architectures": "spacy-dlfa.ConcatFusion.v1",
                "width": settings.hidden_width,
                "dropout": fusion["dropout"],
                "normalize_inputs": fusion["normalize_inputs"],
                "init_to_last": True,
                "lr_scale": fusion["lr_scale"],
            }
    if run.variant == "first_token_pooling":
        if not spec.is_pair:
            pair_tasks = ", ".join(name for name, task in TASKS.items() if task.is_pair)
            raise ValueError(f"first_token_pooling pools a sentence pair ({pair_tasks}), not a {run.task} token")
        config["components"][component]["model"].update(use_reduce_first=True, use_reduce_mean=False)
    return apply_overrides(config, settings.overrides, run)


def apply_overrides(config, overrides: Mapping[str, Any], run: Run):
    """Set each dotted path; every part of it must already exist, so a typo fails instead of adding a setting."""
    for path, value in overrides.items():
        parts = path.split(".")
        for depth in range(1, len(parts) + 1):
            try:
                dot_to_object(config, ".".join(parts[:depth]))
            except KeyError:
                raise KeyError(f"--set {path}: the {run.task} {run.variant} config has no setting {'.'.join(parts[:depth])}") from None
        set_dot_to_object(config, path, value)
    return config


def with_defaults(config: Config) -> Dict[str, Any]:
    """The config with the components' registered functions' default arguments filled in, so a setting added to
    an architecture after a run was trained (``freeze_layers = 0``) is no difference when it keeps its default."""
    filled = dict(config)
    filled["components"] = registry.fill(config.get("components", {}), validate=False)
    return filled


def config_differences(trained: Config, wanted: Config) -> Dict[str, Tuple[Any, Any]]:
    """Settings of ``wanted`` that ``trained`` lacks or sets otherwise: path -> (trained value, wanted value)."""
    trained_settings = dict_to_dot(with_defaults(trained))
    pairs = ((path, trained_settings.get(path, "<missing>"), value) for path, value in dict_to_dot(with_defaults(wanted)).items())
    return {path: (old, new) for path, old, new in pairs if old != new and path not in RESULT_NEUTRAL_SETTINGS}


def check_trained_with(run: Run, settings: GridSettings) -> None:
    """Refuse to reuse a finished run whose saved config differs from the one this run would train with."""
    output = settings.training_dir / run.task / run.name
    # runs trained by the main job keep only model-best's (filled) config
    saved = next((path for path in (output / "config.cfg", output / "model-best" / "config.cfg") if path.exists()), None)
    if saved is None:
        return
    differences = config_differences(load_config(saved), run_config(run, settings))
    if differences:
        listed = "; ".join(f"{path} = {old!r}, asked {new!r}" for path, (old, new) in sorted(differences.items()))
        raise RunMismatch(f"{output} is finished but was trained with other settings ({listed}): "
                          "give this run its own --training-dir and --metrics-dir, or delete the folder to train it again")


def train(run: Run, settings: GridSettings) -> Path:
    output = settings.training_dir / run.task / run.name
    model = output / "model-best"
    # spacy train rewrites model-last at every checkpoint, so only the marker written after it exits means finished
    if (output / TRAINED_MARKER).exists():
        check_trained_with(run, settings)
        return model
    output.mkdir(parents=True, exist_ok=True)
    run_config(run, settings).to_disk(output / "config.cfg")
    msg.info(f"training {run.task} {run.name} -> {output}")
    command = [sys.executable, "-m", "spacy", "train", str(output / "config.cfg"), "--output", str(output), "--gpu-id", str(settings.gpu_id)]
    start = time.perf_counter()
    with open(output / "train.log", "w", encoding="utf8") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    (output / TRAINED_MARKER).write_text(json.dumps(round(time.perf_counter() - start)), encoding="utf8")
    return model


def dev_score(run: Run, settings: GridSettings) -> float:
    """English dev score of model-best, kept with the run's metrics."""
    run_dir = settings.metrics_dir / run.task / run.name
    if (run_dir / RUN_META).exists():
        return float(load_run_meta(run_dir)["dev_score"])
    meta = json.loads((settings.training_dir / run.task / run.name / "model-best" / "meta.json").read_text(encoding="utf8"))
    return 100.0 * meta["performance"][TASKS[run.task].score_key]


def torch_threads() -> int:
    """Threads spacy train gets (the subprocess inherits OMP_NUM_THREADS): timings mean little without it."""
    import torch

    return torch.get_num_threads()


def train_and_evaluate(run: Run, settings: GridSettings) -> Path:
    """The run's metrics folder: trains the run (``train``, skipped when trained) and evaluates it on English
    and every target, unless its metrics are already there (then only checks it was trained with these settings)."""
    metrics = settings.metrics_dir / run.task / run.name
    languages = [TASKS[run.task].source_language, *settings.targets]
    wanted = list(languages)
    if settings.raw_text and not TASKS[run.task].is_pair:  # sentence pairs have no raw-text form
        wanted += [f"{lang}{RAW}" for lang in languages]
    if has_counts(metrics, wanted):
        check_trained_with(run, settings)
        return metrics
    model = train(run, settings)
    start = time.perf_counter()
    evaluate_languages(model, settings.corpus_dir, languages, metrics, settings.gpu_id, settings.raw_text)
    write_run_meta(run, settings, model, time.perf_counter() - start)
    return metrics


def write_run_meta(run: Run, settings: GridSettings, model: Path, evaluate_seconds: float, **extra) -> None:
    """``run.meta.json`` beside a run's scores: English dev score, training and evaluation seconds, overrides."""
    train_seconds = model.parent / TRAINED_MARKER
    record = {
        "dev_score": dev_score(run, settings),
        "train_seconds": json.loads(train_seconds.read_text()) if train_seconds.exists() else None,
        "evaluate_seconds": round(evaluate_seconds),
        "overrides": dict(settings.overrides),
        "torch_threads": torch_threads(),
        **extra,
    }
    (settings.metrics_dir / run.task / run.name / RUN_META).write_text(json.dumps(record), encoding="utf8")


def complete(run: Run, settings: GridSettings) -> Path:
    start = time.perf_counter()
    metrics = train_and_evaluate(run, settings)
    msg.good(f"{run.task} {run.name} done ({time.perf_counter() - start:.0f} s)")
    return metrics


def choose_layer(task: str, layers: Sequence[int], seed: int, settings: GridSettings) -> int:
    scores = {layer: dev_score(Run(task, "dlfa", seed, layer), settings) for layer in layers}
    chosen = max(scores, key=scores.get)
    selection = {"criterion": f"English dev {TASKS[task].score_key} (model-best)", "dev_scores": scores, "chosen_layer": chosen}
    (settings.metrics_dir / task).mkdir(parents=True, exist_ok=True)
    (settings.metrics_dir / task / "selection.json").write_text(json.dumps(selection, indent=2), encoding="utf8")
    msg.info(f"{task}: fused layer {chosen} chosen on English dev ({scores})")
    return chosen


def plan(task: str, stage: str, layers: Sequence[int], seeds: Sequence[int], chosen: Optional[int]) -> List[Run]:
    """sweep: DLFA with every layer, first seed; headline: baseline and DLFA at
    the chosen layer, every seed; ablations: mean and concat fusion at the
    chosen layer and the AIF on the last layer alone, first seed."""
    if stage == "sweep":
        return [Run(task, "dlfa", seeds[0], layer) for layer in layers]
    if stage == "headline":
        return [run for seed in seeds for run in (Run(task, "baseline", seed), Run(task, "dlfa", seed, chosen))]
    if stage == "ablations":
        pooling = [Run(task, "first_token_pooling", seeds[0], chosen)] if TASKS[task].is_pair else []
        return [Run(task, variant, seeds[0], chosen) for variant in ("mean_fusion", "concat_fusion")] + [Run(task, "aif_last", seeds[0])] + pooling
    raise ValueError(f"unknown stage {stage!r}: use sweep, headline or ablations")


def check_variants(task: str, stages: Sequence[str], layers: Sequence[int], seeds: Sequence[int], variants: Sequence[str]) -> None:
    """Refuse unknown variants, and variants that none of the stages runs (which would finish doing nothing)."""
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {', '.join(unknown)}: use {', '.join(VARIANTS)}")
    # which variants a stage runs does not depend on the fused layer
    planned = {stage: {run.variant for run in plan(task, stage, layers, seeds, 0)} for stage in stages}
    if planned and not any(set(variants) & found for found in planned.values()):
        listed = "; ".join(f"{stage} runs {', '.join(sorted(found))}" for stage, found in planned.items())
        raise ValueError(f"no stage runs {', '.join(variants)} ({listed}): add the stage that does to --stages")


def complete_job(job: Tuple[Run, GridSettings]) -> Path:
    """``complete`` for one (run, settings) pair: a job for ``distributed.run_jobs``."""
    return complete(*job)


def job_settings(settings: GridSettings, engine: str, cluster: Optional[RaySettings]) -> GridSettings:
    """On Ray a job with GPUs sees only its own, as device 0; a job without sees none."""
    if engine != "ray":
        return settings
    return replace(settings, gpu_id=0 if cluster is not None and cluster.num_gpus > 0 else -1)


def run_grid(
    task: str,
    stages: Sequence[str],
    layers: Sequence[int],
    seeds: Sequence[int],
    settings: GridSettings,
    layer: Optional[int] = None,
    variants: Sequence[str] = VARIANTS,
    engine: str = "local",
    cluster: Optional[RaySettings] = None,
) -> List[Run]:
    """Run the stages in order, skipping finished runs. Without ``layer`` the
    fused layer is chosen on English dev from the sweep. With ``engine="ray"``
    the runs of a stage are Ray tasks of ``cluster``'s size, run side by side."""
    check_variants(task, stages, layers, seeds, variants)
    done: List[Run] = []
    selection = settings.metrics_dir / task / "selection.json"
    if layer is not None and not selection.exists():
        selection.parent.mkdir(parents=True, exist_ok=True)
        selection.write_text(json.dumps({"criterion": "fixed with --layer, not chosen by a sweep", "chosen_layer": layer}, indent=2), encoding="utf8")
    for stage in stages:
        chosen = layer
        if chosen is None and stage != "sweep":
            chosen = choose_layer(task, layers, seeds[0], settings)
        runs = [run for run in plan(task, stage, layers, seeds, chosen) if run.variant in variants]
        jobs = [(run, job_settings(settings, engine, cluster)) for run in runs]
        run_jobs(complete_job, jobs, engine, cluster, describe=lambda job: f"{job[0].task} {job[0].name}")
        done.extend(runs)
    return done


def parse_run_name(name: str) -> Dict[str, Optional[int]]:
    """'dlfa_l6_s2' -> {'variant': 'dlfa', 'layer': 6, 'seed': 2}."""
    parts = name.split("_")
    seed = int(parts.pop()[1:])
    layer = int(parts.pop()[1:]) if parts[-1].startswith("l") and parts[-1][1:].isdigit() else None
    return {"variant": "_".join(parts), "layer": layer, "seed": seed}
