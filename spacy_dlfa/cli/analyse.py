"""``python -m spacy_dlfa analyse ...``: look into trained pipelines and evaluated runs (attacks, run pairs, the gate, the layers)."""
from pathlib import Path
from typing import List, Optional

import typer

from .options import ATTACK, BUDGET, CANDIDATES, GPU_ID, LANGUAGES, LEXICON, POOL, RATE, TASK, fail, group, list_option, split_list

app = group("analyse", "Look into trained pipelines and runs: attacks, two runs compared, the AIF gate, how language-neutral each layer is.")


@app.command()
def attack(
    model_path: Path = typer.Argument(..., help="Trained pipeline folder (ner, tagger or textcat)"),
    data: Path = typer.Argument(..., help="Folder with test-<lang>.spacy, or one .spacy file"),
    attack_name: str = ATTACK,
    rate: float = RATE,
    budget: int = BUDGET,
    candidates: int = CANDIDATES,
    seed: int = typer.Option(0, help="Seed of the perturbation"),
    output: Path = typer.Option(..., help="Folder for the scores, counts and <lang>.attacked.spacy"),
    languages: List[str] = list_option([], "Languages of DATA's test-<lang>.spacy (default: all)"),
    pool: Optional[Path] = POOL,
    lexicon: Optional[Path] = LEXICON,
    limit: int = typer.Option(0, help="First N examples per language (0 = all)"),
    gpu_id: int = GPU_ID,
) -> None:
    """Attack the test sets (labels kept aligned); write attacked spacy-evaluate scores with clean score, drop and success rate."""
    from ..robustness.run import attack_languages

    try:
        attack_languages(model_path, data, output, attack_name, split_list(languages, "--languages", allow_empty=True), rate=rate,
                         budget=budget, candidates=candidates, seed=seed, pool=pool, lexicon=lexicon, limit=limit, gpu_id=gpu_id)
    except (ValueError, OSError) as err:
        fail(err)


@app.command()
def compare(
    task: str = TASK,
    before: Path = typer.Argument(..., exists=True, file_okay=False, help="Metrics folder of one run (sentences.json.gz)"),
    after: Path = typer.Argument(..., exists=True, file_okay=False, help="Metrics folder of the other run"),
    targets: List[str] = list_option(..., "Target languages or treebanks (the source language is shown too)"),
    output: Optional[Path] = typer.Option(None, help="Also write the table to this markdown file"),
) -> None:
    """Two evaluated runs per language, gold tokens and raw text, and the change of the target average with its paired-bootstrap interval."""
    from ..analysis.compare import compare_runs
    from ..tasks import task_spec

    try:
        spec = task_spec(task)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="TASK") from None
    names = split_list(targets, "--targets")
    lines = compare_runs(task, before, after, [spec.source_language, *names], names)
    print("\n".join(lines))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines) + "\n", encoding="utf8")


@app.command("gate-stats")
def gate_stats(
    model: Path = typer.Argument(..., exists=True, help="Trained pipeline with an AIF fusion layer"),
    corpus_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with test-<lang>.spacy"),
    languages: List[str] = LANGUAGES,
    limit: int = typer.Option(500, help="First N docs per language"),
    output: Optional[Path] = typer.Option(None, help="JSON file for the statistics (inside a metrics folder name it <x>.stats.json: "
                                          "single-suffix JSONs there are scores)"),
) -> None:
    """The AIF gate's weight on the last layer (1 - w on the lower layer), per language."""
    from ..analysis.diagnostics import gate_statistics

    gate_statistics(model, corpus_dir, split_list(languages, "--languages"), limit=limit, output=output)


@app.command("layer-alignment")
def layer_alignment(
    model: str = typer.Argument(..., help="Hugging Face model folder or hub name"),
    data_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="XNLI folder with <lang>/dev-<lang>.tsv, line-aligned with en"),
    output: Path = typer.Argument(..., help="JSON file for the per-layer scores"),
    languages: List[str] = list_option(["ar bg de el es fr hi ru sw th tr ur vi zh"], "Languages besides en"),
    limit: int = typer.Option(400, help="First N distinct premises per language"),
) -> None:
    """How language-neutral each hidden layer is: translation retrieval and language ID, per layer, no training."""
    from ..analysis.layer_alignment import format_table, write_layer_alignment

    print(format_table(write_layer_alignment(model, data_dir, split_list(languages, "--languages"), limit, output)))
