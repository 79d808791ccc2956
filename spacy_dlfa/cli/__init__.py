"""Command line: ``python -m spacy_dlfa <group> <command> ...``; ``--help`` at every level lists the commands.

The commands are grouped by what users do, one module a group:

* ``data``     (data.py)     the transformer folder, a task's DocBins, one corpus file
* ``evaluate``, ``annotate``, ``calibrate`` (pipeline.py) what applications do with a trained pipeline, at the top level
* ``run``      (run.py)      many runs, resumable: the grid, the model-size study, the average of runs, two runs on one shared transformer
* ``analyse``  (analyse.py)  attacks, two runs compared, the AIF gate, the layers
* ``report``   (report.py)   reports from metrics, package metadata

Options shared by several commands are defined once in options.py.
"""
import typer

from . import analyse, data, report, run
from .pipeline import annotate, calibrate, evaluate

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="spacy-dlfa: dual-layer feature aggregation for zero-shot cross-lingual transfer.")
app.add_typer(data.app)
app.command()(evaluate)
app.command()(annotate)
app.command()(calibrate)
app.add_typer(run.app)
app.add_typer(analyse.app)
app.add_typer(report.app)

__all__ = ["app"]
