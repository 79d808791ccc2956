"""``python -m spacy_dlfa run ...``: many training runs at once, resumable (the grid, the model-size study), their average, one pipeline sharing two runs' transformer and the config training NER and POS jointly on one."""
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer

from ..runs.experiments import VARIANTS
from ..runs.study import DEFAULT_VARIANTS, FUSION_RULES
from ..tasks import TASKS
from .options import (
    ADDRESS,
    ATTACK,
    BATCH_SIZE,
    BUDGET,
    CANDIDATES,
    CONFIGS_DIR,
    CORPUS_DIR,
    GPU_ID,
    HIDDEN_WIDTH,
    LEXICON,
    MAX_STEPS,
    POOL,
    RATE,
    RECIPE_FILE,
    SEED,
    TARGETS,
    TASK,
    TRANSFORMER,
    concurrency_option,
    config_override,
    engine_option,
    fail,
    group,
    list_option,
    num_cpus_option,
    num_gpus_option,
    per_task,
    ray_settings,
    split_list,
    whole_numbers,
)

app = group("run", "Train and evaluate many runs, resumable: the grid (sweep, seeds, ablations), the model-size study, the average of runs; "
            "two runs' tasks on one shared transformer; the config training NER and POS jointly on one.")

RUN_ERRORS = (ValueError, OSError, ImportError, RuntimeError)


@app.command()
def grid(
    task: str = TASK,
    stages: List[str] = list_option(["sweep headline ablations"], "Stages to run, in order: sweep, headline, ablations"),
    layers: List[str] = list_option(["2 4 6 8 10"], "Lower layers for the sweep"),
    seeds: List[str] = list_option(["0 1 2"], "Seeds of the headline pair (the first one also for sweep and ablations)"),
    layer: int = typer.Option(-1, help="Fused layer for headline/ablations (-1: choose on English dev from the sweep)"),
    variants: List[str] = list_option([" ".join(VARIANTS)], "Run only these variants"),
    targets: List[str] = TARGETS,
    transformer: str = TRANSFORMER,
    hidden_width: int = HIDDEN_WIDTH,
    corpus_dir: Path = CORPUS_DIR,
    training_dir: Path = typer.Option(Path("training/experiments"), help="Folder for <task>/<run>/ pipelines"),
    metrics_dir: Path = typer.Option(Path("metrics/experiments"), help="Folder for <task>/<run>/ metrics"),
    configs_dir: Path = CONFIGS_DIR,
    max_steps: int = MAX_STEPS,
    batch_size: int = BATCH_SIZE,
    gpu_id: int = GPU_ID,
    overrides: List[str] = typer.Option([], "--set", help="PATH=VALUE config override for every run, repeatable, e.g. "
                                        "components.ner.model.tok2vec.fusion.gate_init=0.5 (use other --training-dir/--metrics-dir)"),
    raw_text: bool = typer.Option(False, "--raw-text/--no-raw-text", help="Also score each run on the raw text (<lang>.raw, "
                                  "about twice the evaluation time); off: the variants share one tokenizer and are compared on gold tokens"),
    engine: str = engine_option("one run after another", "the runs of a stage as Ray tasks"),
    address: Optional[str] = ADDRESS,
    num_cpus: float = num_cpus_option("run"),
    num_gpus: float = num_gpus_option("run", " (--gpu-id is then ignored: each run sees its own as device 0)"),
    concurrency: int = concurrency_option("runs"),
) -> None:
    """Resumable grid: layer sweep, baseline vs DLFA over seeds, ablations."""
    from ..runs.experiments import GridSettings, run_grid

    settings = GridSettings(transformer=transformer, hidden_width=hidden_width, corpus_dir=corpus_dir, training_dir=training_dir,
                            metrics_dir=metrics_dir, configs_dir=configs_dir, max_steps=max_steps, batch_size=batch_size,
                            targets=split_list(targets, "--targets"), gpu_id=gpu_id,
                            overrides=dict(config_override(item) for item in overrides), raw_text=raw_text)
    try:
        run_grid(task, split_list(stages, "--stages"), whole_numbers(layers, "--layers"), whole_numbers(seeds, "--seeds"), settings,
                 layer=None if layer < 0 else layer, variants=split_list(variants, "--variants"), engine=engine,
                 cluster=ray_settings(address, concurrency, num_cpus, num_gpus))
    except (KeyError, *RUN_ERRORS) as err:  # KeyError: a --set path the config lacks
        fail(err)


@app.command()
def study(
    tasks: List[str] = typer.Argument(..., help="One or more of ner, pos, xnli, pawsx"),
    models: List[str] = list_option(..., "Model folders or hub names (e.g. assets/e5-small-L4 assets/e5-small)"),
    targets: List[str] = list_option([], "Target languages or treebanks, for one task (default: every test-<lang>.spacy "
                                     "in the task's corpus folder but the training language's)"),
    corpus_dir: str = typer.Option("corpus/{task}", help="Folder with train/dev/test-<lang>.spacy (python -m spacy_dlfa "
                                   "data prepare); {task} stands for each task's name"),
    layer: str = typer.Option("6", help="Fused lower layer for a 12-layer model, adapted per size by --fusion-rule: one "
                              "number, or one per task ('ner=10 pos=10 xnli=6')"),
    fusion_rule: str = typer.Option("cap", help=f"One of {', '.join(FUSION_RULES)}. cap: min(layer, depth-1); "
                                    "relative: round(layer*depth/12), in 1..depth-1"),
    seeds: List[str] = list_option(["0"], "Training seeds"),
    variants: List[str] = list_option([" ".join(DEFAULT_VARIANTS)], "Any of baseline, dlfa, aif_last (the normalised-last-layer control)"),
    attack_name: str = ATTACK,
    rate: float = RATE,
    budget: int = BUDGET,
    candidates: int = CANDIDATES,
    attack_seed: int = typer.Option(0, help="Seed of the perturbation (the training seeds are --seeds)"),
    attack_limit: int = typer.Option(0, help="First N examples per language for the attack (0 = all)"),
    pool: Optional[Path] = POOL,
    lexicon: Optional[Path] = LEXICON,
    training_dir: Path = typer.Option(Path("training/study"), help="Folder for <model>/<task>/<run>/ pipelines"),
    metrics_dir: Path = typer.Option(Path("metrics/study"), help="Folder for <model>/<task>/<run>/ metrics and attacks"),
    reuse_training_dir: Optional[Path] = typer.Option(None, help="Reuse runs finished here with the same config "
                                                       "(e.g. training/experiments for the full model) instead of training them again"),
    configs_dir: Path = CONFIGS_DIR,
    max_steps: str = typer.Option("0", help="Training steps (0: the config's): one number, or one per task ('ner=1500 xnli=600')"),
    batch_size: str = typer.Option("0", help="Batcher size (0: the config's): one number, or one per task ('ner=256 pos=256 xnli=0')"),
    gpu_id: int = GPU_ID,
    engine: str = engine_option("one cell after another", "every cell a Ray task"),
    address: Optional[str] = ADDRESS,
    num_cpus: float = num_cpus_option("cell"),
    num_gpus: float = num_gpus_option("cell", " (--gpu-id is then ignored)"),
    concurrency: int = concurrency_option("cells"),
) -> None:
    """Robustness vs model size (resumable): train, evaluate and attack baseline and DLFA per model, for one or more tasks."""
    from ..robustness.run import AttackSettings
    from ..runs.experiments import GridSettings
    from ..runs.study import StudyTask, run_studies

    attack = AttackSettings(name=attack_name, rate=rate, budget=budget, candidates=candidates, seed=attack_seed, limit=attack_limit)
    try:
        # the transformer and its width are set per model by the study, the rest per task by study_tasks
        template = GridSettings(transformer="", hidden_width=0, corpus_dir=Path(), training_dir=training_dir, metrics_dir=metrics_dir,
                                configs_dir=configs_dir, max_steps=0, batch_size=0, targets=[], gpu_id=gpu_id)
        studies = [StudyTask(task, fused, settings) for task, fused, settings in
                   study_tasks(split_list(tasks, "TASKS"), split_list(targets, "--targets", allow_empty=True), corpus_dir, layer,
                               max_steps, batch_size, template)]
        run_studies(studies, split_list(models, "--models"), whole_numbers(seeds, "--seeds"), attack,
                    variants=split_list(variants, "--variants"), rule=fusion_rule, pool=pool, lexicon=lexicon,
                    reuse_dir=reuse_training_dir, engine=engine, cluster=ray_settings(address, concurrency, num_cpus, num_gpus))
    except RUN_ERRORS as err:
        fail(err)


def study_tasks(tasks: List[str], targets: List[str], corpus_dir: str, layer: str, max_steps: str, batch_size: str, template):
    """(task, layer, settings) per task: ``template`` with the task's corpus folder, targets, steps and batch size."""
    from ..runs.study import corpus_targets

    unknown = [task for task in tasks if task not in TASKS]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: expected {', '.join(TASKS)}", param_hint="TASKS")
    if targets and len(tasks) > 1:
        raise typer.BadParameter("give targets for one task only, or leave them out: each task then takes every target "
                                 "its corpus folder has", param_hint="--targets")
    if len(tasks) > 1 and "{task}" not in corpus_dir:
        raise typer.BadParameter(f"{corpus_dir!r} would serve several tasks: write {{task}} where the task's name goes "
                                 "(corpus/{task})", param_hint="--corpus-dir")
    layers, steps, sizes = (per_task(value, tasks, option) for value, option in
                            ((layer, "--layer"), (max_steps, "--max-steps"), (batch_size, "--batch-size")))
    for task in tasks:
        corpus = Path(corpus_dir.replace("{task}", task))
        settings = replace(template, corpus_dir=corpus, max_steps=steps[task], batch_size=sizes[task],
                           targets=targets or corpus_targets(task, corpus))
        yield task, layers[task], settings


@app.command()
def recipe(
    task: str = TASK,
    output: Path = typer.Argument(..., help="Training config to write (.cfg)"),
    recipe_file: Path = RECIPE_FILE,
    corpus_dir: Path = CORPUS_DIR,
    transformer: str = TRANSFORMER,
    hidden_width: int = HIDDEN_WIDTH,
    configs_dir: Path = CONFIGS_DIR,
    max_steps: int = MAX_STEPS,
    batch_size: int = BATCH_SIZE,
    seed: int = SEED,
) -> None:
    """Write the training config of the task's shipped recipe (reports/recipe.json), built as the grid built its runs."""
    from wasabi import msg

    from ..runs.recipe import load_recipe, recipe_config

    try:
        chosen = load_recipe(recipe_file, task)
        config = recipe_config(chosen, configs_dir, corpus_dir, transformer, hidden_width, max_steps, batch_size, seed)
    except (KeyError, *RUN_ERRORS) as err:
        fail(err)
    output.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(output)
    changes = ", ".join(f"{path} = {value!r}" for path, value in chosen.overrides.items()) or "no overrides"
    msg.good(f"{output}: {task} recipe {chosen.variant}{'' if chosen.layer is None else f' (layer {chosen.layer})'}, {changes}")


@app.command("choose-recipe")
def choose_recipe(
    rule_file: Path = typer.Argument(Path("reports/recipe_rule.json"), exists=True, dir_okay=False,
                                     help="Per task: the base's runs and the candidates' runs (metrics folders)"),
    output: Path = typer.Argument(Path("reports/recipe.json"), help="The recipes to write (read by `run recipe`)"),
) -> None:
    """Choose each task's recipe by the rule of reports/recipe_rule.md from the runs' English dev scores and write recipe.json."""
    import json

    from wasabi import msg

    from ..runs.recipe_rule import choose_recipes

    try:
        recipes = choose_recipes(rule_file)
    except (OSError, ValueError) as err:  # RecipeError is a ValueError
        fail(err)
    output.write_text(json.dumps(recipes, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    for task, recipe in recipes.items():
        layer = "" if recipe["layer"] is None else f" (layer {recipe['layer']})"
        msg.good(f"{task}: {recipe['variant']}{layer}, {', '.join(recipe['overrides']) or 'no overrides'} (run {recipe['run']})")
    msg.good(f"wrote {output}")


@app.command()
def average(
    output_dir: Path = typer.Argument(..., help="Pipeline folder to write"),
    runs: List[Path] = typer.Argument(..., help="Two or more trained pipeline folders of one config and different seeds, "
                                      "e.g. training/experiments/ner/dlfa_l10_s0/model-best"),
    heads: str = typer.Option("average", help="average: the task heads are averaged too; first: the first run's heads "
                              "(the transformer and the fusion modules are always averaged)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty OUTPUT_DIR"),
) -> None:
    """One pipeline whose weights are the uniform average of the runs' weights (runs of one config, different seeds)."""
    from wasabi import msg

    from ..runs.averaging import average_runs

    try:
        spread = average_runs(output_dir, runs, heads, overwrite)
    except (ValueError, OSError) as err:
        fail(err)
    listed = ", ".join(f"{group} {value:.4f}" for group, value in spread.items())
    msg.good(f"{output_dir}: average of {len(runs)} runs (heads: {heads}); runs' distance from the average relative to its norm: {listed}")


@app.command()
def share(
    output_dir: Path = typer.Argument(..., help="Pipeline folder to write"),
    first: Path = typer.Argument(..., metavar="FIRST_PIPELINE", help="Trained pipeline whose config and components are kept, "
                                 "e.g. training/experiments/ner/dlfa_l10_s0/model-best"),
    second: Path = typer.Argument(..., metavar="SECOND_PIPELINE", help="Trained pipeline of the same transformer settings whose "
                                  "task components are added, e.g. training/experiments/pos/dlfa_l10_s0/model-best"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty OUTPUT_DIR"),
    transformer: str = typer.Option("average", help="The shared transformer's weights: average (the elementwise mean of the "
                                    "two fine-tuned transformers), first or second (that pipeline's transformer as it is)"),
) -> None:
    """One pipeline for two tasks: FIRST's components and SECOND's task components on one shared transformer (one forward pass)."""
    from ..runs.sharing import META_KEY as SHARED_META_KEY
    from ..runs.sharing import share_runs

    try:
        nlp = share_runs(output_dir, first, second, transformer, overwrite)
    except (ValueError, OSError) as err:
        fail(err)
    from wasabi import msg

    kept = nlp.meta[SHARED_META_KEY]["keep_hidden_layers"]
    msg.good(f"{output_dir}: components {nlp.pipe_names} on one transformer ({transformer}), keeping hidden layers {kept}")


@app.command()
def joint(
    output: Path = typer.Argument(..., help="Training config to write (.cfg)"),
    ner_corpus: Path = typer.Option(..., "--ner-corpus", help="Folder with the NER train.spacy and dev.spacy, e.g. corpus/ner"),
    pos_corpus: Path = typer.Option(..., "--pos-corpus", help="Folder with the POS train.spacy and dev.spacy, e.g. corpus/pos"),
    recipe_file: Path = RECIPE_FILE,
    max_steps: int = MAX_STEPS,
    batch_size: int = BATCH_SIZE,
    seed: int = SEED,
    transformer: str = TRANSFORMER,
    hidden_width: int = HIDDEN_WIDTH,
    configs_dir: Path = CONFIGS_DIR,
) -> None:
    """Write the training config of one pipeline for NER and POS trained jointly on one transformer: the two shipped
    recipes' components (each at its own fused layer), both tasks' corpora interleaved."""
    from wasabi import msg

    from ..runs.joint import joint_config

    try:
        config = joint_config(recipe_file, ner_corpus, pos_corpus, configs_dir, transformer, hidden_width, max_steps, batch_size, seed)
    except (KeyError, *RUN_ERRORS) as err:
        fail(err)
    output.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(output)
    layers = {name: config["components"][name]["model"]["tok2vec"]["fusion_layer"] for name in config["nlp"]["pipeline"][1:]}
    msg.good(f"{output}: {config['nlp']['pipeline']} on one transformer, fused layers {layers}, {config['training']['max_steps']} steps")
