"""``python -m spacy_dlfa evaluate|annotate|calibrate``: what an application does with a trained pipeline (top-level commands)."""
from pathlib import Path
from typing import List, Optional

import typer

from .options import ADDRESS, GPU_ID, LANGUAGES, engine_option, fail, num_cpus_option, num_gpus_option, ray_settings, split_list


def evaluate(
    model_path: Path = typer.Argument(..., exists=True, help="Trained pipeline folder"),
    corpus_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with test-<lang>.spacy"),
    output_dir: Path = typer.Argument(..., help="Metrics folder to write (scores.json, sentences.json.gz)"),
    languages: List[str] = LANGUAGES,
    gpu_id: int = GPU_ID,
    raw_text: bool = typer.Option(True, "--raw-text/--no-raw-text", help="Also score the raw text with the pipeline's own "
                                  "tokenizer (spacy evaluate without --gold-preproc) as <lang>.raw; about doubles the time"),
) -> None:
    """`spacy evaluate --gold-preproc` on every language's test set and, unless --no-raw-text, `spacy evaluate` on its raw text."""
    from ..runs.evaluation import evaluate_languages

    evaluate_languages(model_path, corpus_dir, split_list(languages, "--languages"), output_dir, gpu_id=gpu_id, raw_text=raw_text)


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
    precision: Optional[str] = typer.Option(None, help="Load the transformer as fp32, bf16, int8, int8-all or int8-smooth "
                                            "(the last needs a calibrated pipeline, as the packaged ones are); default: as saved"),
    shard_size: int = typer.Option(10_000, help="Input lines (rows) per output part: the unit of work and of resuming"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip malformed lines (counted, listed in OUTPUT/skipped.jsonl) instead of stopping"),
    engine: str = engine_option("nlp.pipe in this process", "Ray Data over an actor pool"),
    address: Optional[str] = ADDRESS,
    concurrency: int = typer.Option(0, help="Ray: actors, each loading the pipeline once (0: as many as the cluster's CPUs, or GPUs, hold)"),
    num_cpus: float = num_cpus_option("actor"),
    num_gpus: float = num_gpus_option("actor", " (0.5 puts two actors on one GPU)"),
) -> None:
    """Annotate a collection with a trained pipeline: entities and tokens with character offsets, resumable by part."""
    from ..annotate import AnnotateSettings
    from ..annotate import annotate as run_annotate
    from ..corpora.common import CorpusFormatError

    settings = AnnotateSettings(model=model, output_dir=output_dir, output_format=output_format, text_field=text_field,
                                batch_size=batch_size, n_process=n_process, gpu_id=gpu_id, precision=precision)
    try:
        run_annotate(input_spec, settings, input_format=input_format, shard_size=shard_size, skip_invalid=skip_invalid,
                     engine=engine, cluster=ray_settings(address, concurrency, num_cpus, num_gpus))
    except (CorpusFormatError, ValueError, OSError, ImportError) as err:
        fail(err)


def calibrate(
    model_path: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline folder (fp32)"),
    corpus_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .spacy file of the training language, "
                                       "e.g. corpus/ner/train.spacy"),
    output: Optional[Path] = typer.Option(None, help="Pipeline folder to write (default: MODEL_PATH, in place)"),
    sentences: int = typer.Option(512, min=1, help="First docs of CORPUS_PATH to run"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --output folder (in place needs no flag)"),
) -> None:
    """Record the activation ranges that quantize = "int8-smooth" needs and save them with the pipeline (weights unchanged)."""
    from ..runs.calibration import calibrate as run_calibrate

    try:
        run_calibrate(model_path, corpus_path, output, sentences, overwrite)
    except (ValueError, OSError) as err:
        fail(err)
