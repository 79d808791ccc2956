"""Scores from per-sentence counts and the paired bootstrap over sentences.

Counts come from ``evaluation.sentence_counts``: NER rows are
``[true positives, false positives, false negatives]`` (micro F1, as spaCy's
``ents_f``), tagging rows ``[correct, total]`` (accuracy, as ``tag_acc``),
sentence-pair rows ``[correct, 1]`` (accuracy, as ``cats_micro_f``).
"""
from typing import Dict, Sequence, Tuple

import numpy

COUNT_KEY = {"ner": "ents", "pos": "tags", "xnli": "cats", "pawsx": "cats"}


def score(task: str, counts: numpy.ndarray) -> numpy.ndarray:
    """Score in percent over the last-but-one axis (sentences)."""
    summed = counts.sum(axis=-2)
    if task == "ner":
        tp, fp, fn = summed[..., 0], summed[..., 1], summed[..., 2]
        return 100.0 * 2 * tp / numpy.maximum(2 * tp + fp + fn, 1)
    return 100.0 * summed[..., 0] / numpy.maximum(summed[..., 1], 1)


def paired_bootstrap(
    task: str,
    baseline: Dict[str, numpy.ndarray],
    system: Dict[str, numpy.ndarray],
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Tuple[float, float, float]:
    """Delta (system - baseline) of the score averaged over languages and seeds,
    with a percentile confidence interval from resampling each language's
    sentences (the same resample for both systems and every seed).

    baseline, system: ``{lang: counts}``, counts of shape (seeds, sentences, k).
    """
    rng = numpy.random.default_rng(seed)
    deltas = numpy.zeros(samples)
    observed = 0.0
    for lang in baseline:
        a, b = baseline[lang], system[lang]
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"{lang}: {a.shape[1]} vs {b.shape[1]} sentences; a paired bootstrap needs the same sentences")
        index = rng.integers(0, a.shape[1], size=(samples, a.shape[1]))
        deltas += score(task, b[:, index]).mean(axis=0) - score(task, a[:, index]).mean(axis=0)
        observed += float(score(task, b).mean() - score(task, a).mean())
    deltas /= len(baseline)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = numpy.percentile(deltas, [tail, 100.0 - tail])
    return observed / len(baseline), float(low), float(high)


def stack_seeds(per_seed: Sequence[Dict[str, list]], key: str) -> numpy.ndarray:
    """(seeds, sentences, k) array from the per-seed sentence-count dicts."""
    return numpy.asarray([counts[key] for counts in per_seed], dtype="f8")
