"""Scores from per-sentence counts, the paired bootstrap over sentences, rank correlation: pure functions.

Counts come from ``evaluation.sentence_counts``: NER rows are
``[true positives, false positives, false negatives]`` (micro F1, as spaCy's
``ents_f``), tagging rows ``[correct, total]`` (accuracy, as ``tag_acc``),
sentence-pair rows ``[correct, 1]`` (accuracy, as ``cats_micro_f``). Every
function takes the `measure` the rows make: ``"f1"`` for the NER rows,
``"accuracy"`` for the others (a task's ``TaskSpec.measure``).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy


def score(measure: str, counts: numpy.ndarray) -> numpy.ndarray:
    """Score in percent over the last-but-one axis (sentences): micro F1 of
    ``[tp, fp, fn]`` rows (`measure` ``"f1"``) or the ratio of the summed
    columns of ``[correct, total]`` rows (``"accuracy"``)."""
    if measure not in ("f1", "accuracy"):
        raise ValueError(f"unknown measure {measure!r}: expected 'f1' ([tp, fp, fn] rows) or 'accuracy' ([correct, total] rows)")
    summed = counts.sum(axis=-2)
    if measure == "f1":
        tp, fp, fn = summed[..., 0], summed[..., 1], summed[..., 2]
        return 100.0 * 2 * tp / numpy.maximum(2 * tp + fp + fn, 1)
    return 100.0 * summed[..., 0] / numpy.maximum(summed[..., 1], 1)


def paired_bootstrap(
    measure: str,
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
        deltas += score(measure, b[:, index]).mean(axis=0) - score(measure, a[:, index]).mean(axis=0)
        observed += float(score(measure, b).mean() - score(measure, a).mean())
    deltas /= len(baseline)
    return (observed / len(baseline), *_percentile_interval(deltas, confidence))


def _percentile_interval(deltas: numpy.ndarray, confidence: float) -> Tuple[float, float]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = numpy.percentile(deltas, [tail, 100.0 - tail])
    return float(low), float(high)


def drop_difference(
    measure: str,
    baseline: Dict[str, Tuple[numpy.ndarray, numpy.ndarray]],
    system: Dict[str, Tuple[numpy.ndarray, numpy.ndarray]],
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Tuple[float, float, float]:
    """Difference (system - baseline) of the relative drop under an attack,
    ``1 - attacked / clean`` of the scores averaged over languages and seeds,
    in percentage points, with a percentile interval from resampling each
    language's sentences (one resample for clean and attacked, both systems
    and every seed: an attack keeps the sentences one to one).

    baseline, system: ``{lang: (clean, attacked)}``, counts of shape (seeds, sentences, k).
    """
    rng = numpy.random.default_rng(seed)
    resampled = {name: numpy.zeros((2, samples)) for name in ("baseline", "system")}
    observed = {name: numpy.zeros(2) for name in resampled}
    for lang in baseline:
        pairs = {"baseline": baseline[lang], "system": system[lang]}
        sizes = {array.shape[1] for pair in pairs.values() for array in pair}
        if len(sizes) != 1:
            raise ValueError(f"{lang}: clean and attacked sets of both systems need the same sentences, got sizes {sorted(sizes)}")
        (sentences,) = sizes
        index = rng.integers(0, sentences, size=(samples, sentences))
        for name, pair in pairs.items():
            for i, counts in enumerate(pair):
                resampled[name][i] += score(measure, counts[:, index]).mean(axis=0)
                observed[name][i] += score(measure, counts).mean()

    def drop(clean_attacked: numpy.ndarray) -> numpy.ndarray:
        return 100.0 * (1.0 - clean_attacked[1] / numpy.maximum(clean_attacked[0], 1e-12))

    deltas = drop(resampled["system"]) - drop(resampled["baseline"])
    return (float(drop(observed["system"]) - drop(observed["baseline"])), *_percentile_interval(deltas, confidence))


def stack_seeds(per_seed: Sequence[Dict[str, list]], key: str) -> numpy.ndarray:
    """(seeds, sentences, k) array from the per-seed sentence-count dicts."""
    return numpy.asarray([counts[key] for counts in per_seed], dtype="f8")


def ranks(values: Sequence[float]) -> List[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            result[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Spearman's rank correlation; None for fewer than 3 points or a constant side."""
    if len(x) < 3:
        return None
    rx, ry = numpy.asarray(ranks(x)), numpy.asarray(ranks(y))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(numpy.corrcoef(rx, ry)[0, 1])
