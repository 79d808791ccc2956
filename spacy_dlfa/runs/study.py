"""Adversarial robustness vs model size: a thin layer over the grid and the attack runner.

For every model (a folder such as ``assets/e5-small-L6``, or a hub name), the
baseline and DLFA are trained with :mod:`.experiments` (``train`` with
per-model :class:`~.experiments.GridSettings`), then the test sets are attacked
with :func:`.robustness.run.attack_languages`, whose clean pass also writes
the run's clean scores (``evaluate`` only scores them on its own when the
attack sees only its first ``limit`` examples):

* training: ``<training_dir>/<model_name>/<task>/<run>/``
* metrics:  ``<metrics_dir>/<model_name>/<task>/<run>/scores.json`` (+ sentences.json.gz, run.meta.json)
* attacks:  ``<metrics_dir>/<model_name>/<task>/<run>/attacks/<label>/scores.json`` (:func:`attack_label`)
* model:    ``<metrics_dir>/<model_name>/model.json`` (source, depth, width, parameters)

With ``reuse_dir`` (the experiments grid's ``training/experiments``), a run
finished there with the very config the study would write (same model, seed,
steps, layer: :func:`~.experiments.check_trained_with`) is evaluated and
attacked from there instead of being trained again.

``model_name`` is the last path component (``assets/e5-small-L6`` ->
``e5-small-L6``, ``intfloat/multilingual-e5-small`` -> ``multilingual-e5-small``).
Finished steps are skipped, as in the grid.

Fused layer per size (:func:`fused_layer_for_depth`): ``cap`` (default) keeps the
requested layer and caps it at ``depth - 1``: truncated models share their
lower layers with the full model, so e5-small-L8 fuses the very same layer 6
as e5-small, and L4/L6 fuse their second-to-last layer (3, 5). ``relative``
keeps the relative depth instead, ``round(layer * depth / 12)`` clipped to
``1 .. depth - 1`` (L4: 2, L6: 3, L8: 4, L12: 6).
"""
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from wasabi import msg

from ..robustness.run import AttackSettings, attack_languages, check_settings, data_files
from ..tasks import TASKS
from .distributed import RaySettings, run_jobs
from .experiments import TRAINED_MARKER, GridSettings, Run, RunMismatch, check_trained_with, job_settings, train, train_and_evaluate, write_run_meta
from .results import has_counts, load_metrics

# aif_last (the normalised last layer, the fair control for DLFA; see reports/dlfa_investigation.md) is allowed, not default
STUDY_VARIANTS = ("baseline", "dlfa", "aif_last")
DEFAULT_VARIANTS = ("baseline", "dlfa")
FUSION_RULES = ("cap", "relative")
REFERENCE_DEPTH = 12  # the depth the default fusion layer was chosen for (e5-small, mBERT, XLM-R base)


@dataclass(frozen=True)
class StudyModel:
    source: str  # folder or hub name, the spaCy config's paths.transformer
    name: str
    layers: int
    hidden: int


def model_name(source: str) -> str:
    return Path(source.rstrip("/")).name


def describe_model(source: str) -> StudyModel:
    """Depth and width from the model's config (a folder, or a hub name online)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source)
    return StudyModel(source, model_name(source), config.num_hidden_layers, config.hidden_size)


def fused_layer_for_depth(layer: int, depth: int, rule: str = "cap") -> int:
    """The lower layer fused with the last one for a model of ``depth`` layers (module docstring)."""
    if depth < 2:
        raise ValueError(f"DLFA needs at least 2 layers to fuse a lower one with the last; the model has {depth}")
    if rule == "cap":
        return max(1, min(layer, depth - 1))
    if rule == "relative":
        return max(1, min(round(layer * depth / REFERENCE_DEPTH), depth - 1))
    raise ValueError(f"unknown fusion rule {rule!r}: use one of {', '.join(FUSION_RULES)}")


def study_runs(task: str, model: StudyModel, layer: int, seeds: Sequence[int], variants: Sequence[str] = DEFAULT_VARIANTS,
               rule: str = "cap") -> List[Run]:
    unknown = sorted(set(variants) - set(STUDY_VARIANTS))
    if unknown:
        raise ValueError(f"unknown study variants {unknown}: use {', '.join(STUDY_VARIANTS)}")
    fused = fused_layer_for_depth(layer, model.layers, rule) if "dlfa" in variants else None
    return [Run(task, variant, seed, fused if variant == "dlfa" else None) for seed in seeds for variant in variants]


def model_settings(model: StudyModel, template: GridSettings) -> GridSettings:
    """``template`` with the model's transformer, width and per-model training/metrics folders."""
    return replace(template, transformer=model.source, hidden_width=model.hidden,
                   training_dir=template.training_dir / model.name, metrics_dir=template.metrics_dir / model.name)


def run_settings(run: Run, settings: GridSettings, reuse_dir: Optional[Path] = None) -> GridSettings:
    """``settings``, or the same with ``reuse_dir`` as training folder when the run is finished there with the same config."""
    own = settings.training_dir / run.task / run.name / TRAINED_MARKER
    if reuse_dir is None or own.exists() or not (reuse_dir / run.task / run.name / TRAINED_MARKER).exists():
        return settings
    shared = replace(settings, training_dir=reuse_dir)
    try:
        check_trained_with(run, shared)
    except RunMismatch:
        return settings
    msg.info(f"{run.task} {run.name}: reusing {reuse_dir / run.task / run.name} (same config)")
    return shared


def attack_label(attack: AttackSettings) -> str:
    """Names every setting that changes the result, so that another rate, budget, seed or limit is a new attack."""
    strength = f"search{attack.budget}x{attack.candidates}" if attack.budget else f"rate{attack.rate:g}"
    return f"{attack.name}_{strength}_seed{attack.seed}" + (f"_first{attack.limit}" if attack.limit else "")


def attack_dir(run: Run, settings: GridSettings, attack: AttackSettings) -> Path:
    return settings.metrics_dir / run.task / run.name / "attacks" / attack_label(attack)


def write_model_record(model: StudyModel, metrics_dir: Path) -> Path:
    path = metrics_dir / "model.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"source": model.source, "layers": model.layers, "hidden": model.hidden, "parameters": parameter_counts(model.source)}
        path.write_text(json.dumps(record, indent=2), encoding="utf8")
    return path


def parameter_counts(source: str) -> Dict[str, int]:
    """From the safetensors header of a local folder; for a hub name, from the model built on its config."""
    from ..checkpoints.truncate import WEIGHTS, count_parameters

    if (Path(source) / WEIGHTS).is_file():
        return count_parameters(source)
    from transformers import AutoConfig, AutoModel

    module = AutoModel.from_config(AutoConfig.from_pretrained(source))
    parts = {"total": 0, "embeddings": 0, "encoder": 0}
    for key, param in module.named_parameters():
        parts["total"] += param.numel()
        if key.split(".", 1)[0] in parts:
            parts[key.split(".", 1)[0]] += param.numel()
    return {**parts, "layers": module.config.num_hidden_layers}


def attack_run(run: Run, settings: GridSettings, attack: AttackSettings, pool: Optional[Path] = None,
               lexicon: Optional[Path] = None) -> Path:
    output = attack_dir(run, settings, attack)
    languages = [TASKS[run.task].source_language, *settings.targets]
    if set(languages) <= set(load_metrics(output)):
        return output
    model = train(run, settings)
    metrics = settings.metrics_dir / run.task / run.name
    evaluated = has_counts(metrics, languages)
    clean_dir = None if attack.limit or evaluated else metrics
    start = time.perf_counter()
    attack_languages(model, settings.corpus_dir, output, attack.name, languages, attack.rate, attack.budget,
                     attack.candidates, attack.seed, pool, lexicon, attack.limit, settings.gpu_id, clean_dir)
    if clean_dir is not None:
        write_run_meta(run, settings, model, time.perf_counter() - start, evaluated_by=f"attack {output.name}")
    return output


@dataclass(frozen=True)
class StudyCell:
    """One (model, run): trained, evaluated and attacked as one job."""

    model_name: str
    run: Run
    settings: GridSettings
    attack: AttackSettings
    pool: Optional[Path] = None
    lexicon: Optional[Path] = None

    def describe(self) -> str:
        return f"{self.model_name} {self.run.task} {self.run.name}"


def study_cell(cell: StudyCell) -> Path:
    output = attack_run(cell.run, cell.settings, cell.attack, cell.pool, cell.lexicon)
    train_and_evaluate(cell.run, cell.settings)  # nothing left to do unless the attack saw only its first `limit` examples
    msg.good(f"{cell.describe()}: evaluated and attacked ({cell.attack.name})")
    return output


@dataclass(frozen=True)
class StudyTask:
    """One task of a study: the fused layer for a 12-layer model and the grid settings (corpus, targets, steps)."""

    task: str
    layer: int
    template: GridSettings


def corpus_targets(task: str, corpus_dir: Path) -> List[str]:
    """Every ``test-<lang>.spacy`` of the corpus folder except the training language's."""
    return [lang for lang in data_files(corpus_dir) if lang != TASKS[task].source_language]


def run_study(task: str, models: Sequence[str], layer: int, seeds: Sequence[int], template: GridSettings, attack: AttackSettings,
              **options) -> List[Path]:
    """:func:`run_studies` for one task."""
    return run_studies([StudyTask(task, layer, template)], models, seeds, attack, **options)


def run_studies(tasks: Sequence[StudyTask], models: Sequence[str], seeds: Sequence[int], attack: AttackSettings,
                variants: Sequence[str] = DEFAULT_VARIANTS, rule: str = "cap", pool: Optional[Path] = None,
                lexicon: Optional[Path] = None, reuse_dir: Optional[Path] = None, engine: str = "local",
                cluster: Optional[RaySettings] = None) -> List[Path]:
    """Train, evaluate and attack every (task, model, variant, seed); finished steps are skipped, finished runs in
    ``reuse_dir`` with the same config are not trained again. With ``engine="ray"`` the cells of every task are Ray
    tasks of ``cluster``'s size, side by side. Returns the attack folders."""
    check_settings(attack.name, attack.rate, attack.budget, attack.candidates, pool, lexicon)
    described = [describe_model(source) for source in models]  # fail on a bad model before any training
    plans = [(study, model, study_runs(study.task, model, study.layer, seeds, variants, rule)) for study in tasks for model in described]
    cells = []
    for study, model, runs in plans:
        settings = model_settings(model, study.template)
        write_model_record(model, settings.metrics_dir)
        cells += [StudyCell(model.name, run, job_settings(run_settings(run, settings, reuse_dir), engine, cluster), attack, pool, lexicon)
                  for run in runs]
    return run_jobs(study_cell, cells, engine, cluster, describe=StudyCell.describe)
