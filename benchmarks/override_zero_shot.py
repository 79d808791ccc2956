"""Zero-shot change of a trained pipeline loaded with a config override (e.g. bf16), scored on the first
``--sentences`` gold-token sentences of each target against the per-sentence counts that
``python -m spacy_dlfa evaluate`` committed for the same pipeline in fp32 (``sentences.json.gz``), so that
only the override's side is computed.

    python benchmarks/override_zero_shot.py <pipeline> corpus/ner metrics/<run> --task ner \\
        --targets "de es fr" --override '{"components": {"transformer": {"model": {"mixed_precision": true}}}}' --name bf16

``evaluate`` and this script read ``test-<target>.spacy`` with the same ``Corpus(gold_preproc=True)``, so
the first N committed counts are those of the same sentences; the share of sentences whose counts are
identical is printed as a check. The change is the paired bootstrap of ``spacy_dlfa.statistics``.
"""
import json
from pathlib import Path

import numpy
import spacy
import typer
from spacy.training import Corpus

from spacy_dlfa.runs.evaluation import annotate_and_score, sentence_counts
from spacy_dlfa.runs.results import load_counts
from spacy_dlfa.statistics import paired_bootstrap, score
from spacy_dlfa.tasks import TASKS


def main(
    pipeline: Path = typer.Argument(..., help="Trained pipeline folder", exists=True),
    corpus_dir: Path = typer.Argument(..., help="Folder with test-<target>.spacy", exists=True),
    metrics: Path = typer.Argument(..., help="Metrics folder of the same pipeline evaluated without the override", exists=True),
    task: str = typer.Option("ner", help="ner or pos"),
    targets: str = typer.Option(..., help="Targets, space-separated"),
    override: str = typer.Option(..., help="Config override as JSON, for spacy.load(config=...)"),
    name: str = typer.Option("override", help="Name printed for the override"),
    sentences: int = typer.Option(200, help="First sentences of each target (0: all)"),
) -> None:
    spec = TASKS[task]
    nlp = spacy.load(pipeline, config=json.loads(override))
    committed = load_counts(metrics)
    baseline, system, same = {}, {}, []
    print(f"# zero-shot {spec.metric}, gold tokens, first {sentences or 'all'} sentences of each target: "
          f"{pipeline} committed fp32 ({metrics}) / {name} ({override}) / change / sentences with identical counts")
    for target in targets.split():
        examples = list(Corpus(corpus_dir / f"test-{target}.spacy", gold_preproc=True, limit=sentences)(nlp))
        annotate_and_score(nlp, examples)
        system[target] = numpy.asarray([sentence_counts(examples)[spec.count_key]], dtype="f8")
        baseline[target] = numpy.asarray([committed[target][spec.count_key][:len(examples)]], dtype="f8")
        same.append(float((baseline[target] == system[target]).all(axis=-1).mean()))
        a, b = (float(score(spec.measure, counts[target])[0]) for counts in (baseline, system))
        print(f"{target:>10}: {a:6.2f} {b:6.2f} {b - a:+6.2f}  {100 * same[-1]:5.1f}%", flush=True)
    delta, low, high = paired_bootstrap(spec.measure, baseline, system)
    print(f"{name} zero-shot change: {delta:+.2f} points (95% paired bootstrap over sentences {low:+.2f} to {high:+.2f}), "
          f"{len(baseline)} targets; sentences with identical counts {100 * numpy.mean(same):.1f}%")


if __name__ == "__main__":
    typer.run(main)
