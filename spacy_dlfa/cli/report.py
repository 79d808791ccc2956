"""``python -m spacy_dlfa report ...``: metrics into reports (markdown and PNG), package metadata, the metrics layout."""
from pathlib import Path

import typer

from .options import fail, group

app = group("report", "Turn metrics into reports (markdown tables, PNG charts) and package metadata.")


@app.command("zero-shot")
def zero_shot(
    metrics_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with one metrics folder per pipeline (e.g. metrics)"),
    output_dir: Path = typer.Argument(..., help="Folder for zero_shot.md and the PNG charts"),
) -> None:
    """The main job's zero-shot scores per language: markdown tables and PNG charts."""
    from ..reporting.zero_shot import write_report

    write_report(metrics_dir, output_dir)


@app.command()
def grid(
    metrics_root: Path = typer.Argument(Path("metrics/experiments"), exists=True, file_okay=False),
    output_dir: Path = typer.Argument(Path("reports")),
) -> None:
    """The grid (run grid): summary JSON, tables (mean ± std over seeds), deltas with paired-bootstrap CIs."""
    from ..reporting.grid import write_experiments_report

    write_experiments_report(metrics_root, output_dir)


@app.command()
def recipe(
    spec: Path = typer.Argument(Path("reports/recipe_results.json"), exists=True, dir_okay=False, help="The spec: which metrics folders hold what"),
    output_dir: Path = typer.Argument(Path("reports"), help="Folder for recipe_results.md"),
) -> None:
    """Issue #21's report: the shipped recipe vs the base per language (mean ± std over seeds, paired-bootstrap CIs),
    what each step added, the goals met or not."""
    from ..reporting.recipe import write_recipe_report

    try:
        write_recipe_report(spec, output_dir)
    except ValueError as err:  # a bad spec (RecipeSpecError names the file and key), runs that cannot be paired
        fail(err)


@app.command()
def study(
    metrics_root: Path = typer.Argument(Path("metrics/study")),
    output_dir: Path = typer.Argument(Path("reports")),
) -> None:
    """The study (run study): robustness.md and PNG plots, robustness vs parameter count, per writing system."""
    from ..reporting.study import write_study_report

    write_study_report(metrics_root, output_dir)


@app.command()
def meta(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline folder"),
    metrics_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Its metrics (scores.json)"),
    output: Path = typer.Argument(..., help="meta.json to write (for spacy package --meta-path)"),
    name: str = typer.Option(..., help="Package name without the language prefix, e.g. dlfa_ner"),
    version: str = typer.Option("0.1.0", help="Package version"),
) -> None:
    """Write a meta.json for `spacy package` with the package name, version and measured zero-shot scores."""
    from ..runs.packaging import write_package_meta

    write_package_meta(model_dir, metrics_dir, output, name, version)


@app.command("pack-metrics")
def pack_metrics(metrics_root: Path = typer.Argument(..., exists=True, file_okay=False)) -> None:
    """Fold runs in the old metrics layout into scores.json and sentences.json.gz per run.

    Everywhere below METRICS_ROOT, the per-language <lang>.json and <lang>.sentences.json files of a run become
    its scores.json and sentences.json.gz; runs already packed are left alone."""
    from wasabi import msg

    from ..runs.results import pack_metrics as pack

    try:
        packed = pack(metrics_root)
    except ValueError as err:
        fail(err)
    msg.good(f"packed {len(packed)} run folder(s) under {metrics_root}")
