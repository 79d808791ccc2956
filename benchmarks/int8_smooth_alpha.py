"""SmoothQuant's alpha for ``quantize = "int8-smooth"``, chosen on English dev: a calibrated pipeline
(``python -m spacy_dlfa calibrate``) scored on its English dev set in fp32, ``"int8"``, ``"int8-all"``
and ``"int8-smooth"`` at each alpha (every linear layer in int8, the feed-forward outputs' inputs
smoothed by ``smoothing_scales(ranges, weight, alpha)``).

    python benchmarks/int8_smooth_alpha.py <calibrated pipeline> corpus/ner/dev.spacy --task ner

No target language is read. ``--reciprocal`` adds, for each alpha, the same model computing
``x * (1/s)`` instead of ``x / s``: the same product up to one rounding of the last bit, so the
difference between the two rows is how far int8 rounding alone moves the score. The shipped ``SMOOTHING_ALPHA`` is the alpha whose smaller change of the
two tasks (NER F1, UPOS accuracy) is largest: the accuracy goal has to hold on both.
"""
from pathlib import Path
from typing import Optional

import numpy
import spacy
import torch
import typer
from spacy.language import Language
from spacy.training import Corpus

from spacy_dlfa.layers.quantize import SMOOTHING_ALPHA, Int8Linear, SmoothedInt8Linear, quantize_model
from spacy_dlfa.layers.transformer import CALIBRATION_SETTING
from spacy_dlfa.runs.calibration import transformer_models
from spacy_dlfa.runs.evaluation import annotate_and_score, sentence_counts
from spacy_dlfa.statistics import score
from spacy_dlfa.tasks import TASKS


def load(pipeline: Path, quantize: Optional[str] = None) -> Language:
    return spacy.load(pipeline, config={"components": {"transformer": {"model": {"quantize": quantize}}}})


def smoothed_at(pipeline: Path, alpha: float) -> Language:
    nlp = load(pipeline)
    for _, model in transformer_models(nlp):
        quantize_model(model.transformer, "int8-smooth", model.attrs[CALIBRATION_SETTING], alpha)
    return nlp


def by_reciprocal(self: SmoothedInt8Linear, x: torch.Tensor) -> torch.Tensor:
    return Int8Linear.forward(self, x * (1.0 / self.scales))


def dev_score(nlp: Language, dev: Path, task: str, limit: int) -> float:
    examples = list(Corpus(dev, gold_preproc=True, limit=limit)(nlp))
    annotate_and_score(nlp, examples)
    spec = TASKS[task]
    return float(score(spec.measure, numpy.asarray([sentence_counts(examples)[spec.count_key]], dtype="f8"))[0])


def main(
    pipeline: Path = typer.Argument(..., exists=True, help="A pipeline folder written by python -m spacy_dlfa calibrate"),
    dev: Path = typer.Argument(..., exists=True, help="The English dev .spacy file"),
    task: str = typer.Option("ner", help="ner or pos"),
    alphas: str = typer.Option("0.65 0.75 0.85 0.95", help="Alphas, space-separated"),
    limit: int = typer.Option(0, help="First dev sentences (0: all)"),
    reciprocal: bool = typer.Option(False, "--reciprocal", help="Also score each alpha computing x * (1/s)"),
) -> None:
    torch.set_num_threads(1)
    print(f"# English dev ({dev.name}, {limit or 'all'} sentences), {TASKS[task].metric}: {pipeline}; shipped alpha {SMOOTHING_ALPHA}")
    fp32 = dev_score(load(pipeline), dev, task, limit)
    print(f"{'fp32':>18}: {fp32:6.2f}", flush=True)
    for name, nlp in (("int8", lambda: load(pipeline, "int8")), ("int8-all", lambda: load(pipeline, "int8-all")),
                      ("int8-smooth", lambda: load(pipeline, "int8-smooth")),  # as loaded: the shipped alpha's row again
                      *((f"int8-smooth {alpha}", lambda alpha=alpha: smoothed_at(pipeline, float(alpha))) for alpha in alphas.split())):
        value = dev_score(nlp(), dev, task, limit)
        print(f"{name:>18}: {value:6.2f} {value - fp32:+6.2f}", flush=True)
    if reciprocal:
        forward, SmoothedInt8Linear.forward = SmoothedInt8Linear.forward, by_reciprocal
        for alpha in alphas.split():
            value = dev_score(smoothed_at(pipeline, float(alpha)), dev, task, limit)
            print(f"{f'{alpha}, x * (1/s)':>18}: {value:6.2f} {value - fp32:+6.2f}", flush=True)
        SmoothedInt8Linear.forward = forward


if __name__ == "__main__":
    typer.run(main)
