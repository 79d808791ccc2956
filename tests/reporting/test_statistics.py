"""Scores from per-sentence counts and the paired bootstrap."""
import numpy
import pytest

from spacy_dlfa.statistics import drop_difference, paired_bootstrap, ranks, score, spearman


def test_ner_score_is_micro_f1_over_sentences():
    counts = numpy.array([[2, 1, 0], [1, 0, 2]], dtype="f8")  # tp 3, fp 1, fn 2
    assert score("f1", counts) == pytest.approx(100 * 6 / 9)


def test_pos_score_is_token_accuracy():
    counts = numpy.array([[3, 4], [5, 6]], dtype="f8")
    assert score("accuracy", counts) == pytest.approx(80.0)


def test_scores_broadcast_over_seeds_and_resamples():
    counts = numpy.array([[[1, 2], [1, 2]], [[2, 2], [0, 2]]], dtype="f8")  # 2 seeds
    assert score("accuracy", counts).tolist() == [50.0, 50.0]


def test_identical_systems_have_a_zero_delta_and_interval():
    counts = {"de": numpy.random.default_rng(0).integers(0, 5, size=(1, 50, 3)).astype("f8")}
    assert paired_bootstrap("f1", counts, counts, samples=200) == (0.0, 0.0, 0.0)


def test_a_system_better_on_every_sentence_has_an_interval_above_zero():
    rng = numpy.random.default_rng(1)
    total = rng.integers(5, 20, size=(3, 200, 1))
    worse = numpy.concatenate([total // 2, total], axis=2).astype("f8")
    better = numpy.concatenate([total // 2 + 1, total], axis=2).astype("f8")
    delta, low, high = paired_bootstrap("accuracy", {"de": worse, "zh": worse}, {"de": better, "zh": better}, samples=300)
    assert 0 < low <= delta <= high
    assert delta == pytest.approx(float(score("accuracy", better).mean() - score("accuracy", worse).mean()))


def test_bootstrap_is_reproducible_and_checks_pairing():
    a = {"de": numpy.random.default_rng(2).integers(0, 5, size=(2, 40, 3)).astype("f8")}
    b = {"de": numpy.random.default_rng(3).integers(0, 5, size=(2, 40, 3)).astype("f8")}
    assert paired_bootstrap("f1", a, b, samples=100, seed=7) == paired_bootstrap("f1", a, b, samples=100, seed=7)
    with pytest.raises(ValueError, match="same sentences"):
        paired_bootstrap("f1", a, {"de": b["de"][:, :30]})


def test_drop_difference_exact_value():
    def pos(*rows):  # one seed, [correct, total] per sentence
        return numpy.array([rows], dtype="f8")

    baseline = {"de": (pos([1, 2], [1, 2]), pos([0, 2], [1, 2]))}  # 50% -> 25%: drop 50 points
    system = {"de": (pos([2, 2], [1, 2]), pos([1, 2], [1, 2]))}  # 75% -> 50%: drop 33.3 points
    delta, low, high = drop_difference("accuracy", baseline, system, samples=200)
    assert delta == pytest.approx(100 / 3 - 50)
    assert low <= high


def test_drop_difference_of_identical_systems_is_zero():
    rng = numpy.random.default_rng(4)
    pair = (rng.integers(0, 5, size=(2, 60, 3)).astype("f8"), rng.integers(0, 5, size=(2, 60, 3)).astype("f8"))
    assert drop_difference("f1", {"de": pair, "ru": pair}, {"de": pair, "ru": pair}, samples=100) == (0.0, 0.0, 0.0)


def test_a_system_that_keeps_every_sentence_drops_less_with_an_interval_below_zero():
    rng = numpy.random.default_rng(5)
    total = rng.integers(5, 20, size=(2, 150, 1))
    clean = numpy.concatenate([total - 1, total], axis=2).astype("f8")
    attacked = numpy.concatenate([total - 3, total], axis=2).astype("f8")
    delta, low, high = drop_difference("accuracy", {"de": (clean, attacked)}, {"de": (clean, clean)}, samples=300)
    assert low <= delta <= high < 0
    assert delta == pytest.approx(-100 * (1 - score("accuracy", attacked).mean() / score("accuracy", clean).mean()))


def test_drop_difference_checks_pairing():
    counts = numpy.ones((1, 40, 2))
    with pytest.raises(ValueError, match="same sentences"):
        drop_difference("accuracy", {"de": (counts, counts)}, {"de": (counts, counts[:, :30])})


def test_ranks_share_ties_and_spearman_exact_values():
    assert ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * (0 + 1 + 1 + 0) / (4 * 15)
    assert spearman([1, 2], [2, 1]) is None and spearman([1, 1, 1], [1, 2, 3]) is None
