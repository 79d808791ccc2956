import json
from pathlib import Path

import numpy
import pytest
from conftest import TINY_LAYERS
from typer.testing import CliRunner

from spacy_dlfa.analysis.layer_alignment import centroid_accuracy, layer_scores, parallel_sentences, retrieval_accuracy
from spacy_dlfa.corpora.common import CorpusFormatError

EN = ["A man walks.\tHe moves.\tentailment", "A man walks.\tHe sleeps.\tcontradiction", "The sky is blue.\tIt rains.\tneutral",
      "Birds fly south.\tBirds move.\tentailment"]
DE = ["Ein Mann geht.\tEr bewegt sich.\tentailment", "Ein Mann geht.\tEr schläft.\tcontradiction",
      "Der Himmel ist blau.\tEs regnet.\tneutral", "Vögel fliegen nach Süden.\tVögel ziehen.\tentailment"]


def _write(root: Path, lang: str, lines) -> Path:
    (root / lang).mkdir(parents=True, exist_ok=True)
    path = root / lang / f"dev-{lang}.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def test_retrieval_accuracy_counts_rows_whose_nearest_candidate_is_their_own():
    queries = numpy.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert retrieval_accuracy(queries, queries * 3.0) == 1.0  # cosine: the scale does not matter
    assert retrieval_accuracy(queries, queries[[1, 0, 2]]) == pytest.approx(1 / 3)


def test_centroid_accuracy_is_the_share_of_test_rows_nearest_their_own_centroid():
    train = [numpy.array([[0.0, 0.0], [2.0, 0.0]]), numpy.array([[10.0, 0.0], [12.0, 0.0]])]  # centroids (1, 0), (11, 0)
    test = [numpy.array([[0.0, 0.0], [7.0, 0.0]]), numpy.array([[11.0, 1.0], [9.0, 0.0]])]
    assert centroid_accuracy(train, test) == 0.75


def test_layer_scores_on_identical_and_on_shifted_languages():
    rng = numpy.random.default_rng(0)
    english = rng.normal(size=(2, 6, 8))
    owners = numpy.arange(6)
    same = layer_scores({"en": english, "xx": english.copy()}, {"en": (english, owners), "xx": (english.copy(), owners)})
    assert [row["retrieval_mean"] for row in same] == [1.0, 1.0]
    assert [row["sentence_language_id"] for row in same] == [0.5, 0.5]  # identical centroids: the tie goes to the first
    shifted = english + 100.0
    apart = layer_scores({"en": english, "xx": shifted}, {"en": (english, owners), "xx": (shifted, owners)})
    assert [(row["sentence_language_id"], row["token_language_id"], row["retrieval_centred_mean"]) for row in apart] == [(1.0, 1.0, 1.0)] * 2


def test_parallel_sentences_take_distinct_premises_at_the_english_positions(tmp_path):
    _write(tmp_path, "en", EN)
    _write(tmp_path, "de", DE)
    assert parallel_sentences(tmp_path, ["de"], 2) == {"en": ["A man walks.", "The sky is blue."], "de": ["Ein Mann geht.", "Der Himmel ist blau."]}


def test_a_language_file_out_of_line_with_english_is_named(tmp_path):
    _write(tmp_path, "en", EN)
    bad = _write(tmp_path, "de", DE[:3])
    with pytest.raises(CorpusFormatError, match=f"{bad}.*expected 4 lines"):
        parallel_sentences(tmp_path, ["de"], 2)


def test_cli_scores_every_hidden_layer_of_the_tiny_model(tiny_bert, tmp_path, single_torch_thread):
    from spacy_dlfa.cli import app

    _write(tmp_path / "xnli", "en", EN)
    _write(tmp_path / "xnli", "de", DE)
    output = tmp_path / "alignment.json"
    result = CliRunner().invoke(app, ["analyse", "layer-alignment", str(tiny_bert), str(tmp_path / "xnli"), str(output), "--languages", "de", "--limit", "3"])
    assert result.exit_code == 0, result.output
    scores = json.loads(output.read_text())
    assert (scores["languages"], scores["sentences"], len(scores["layers"])) == (["en", "de"], 3, TINY_LAYERS + 1)
    assert all(0.0 <= row["token_language_id"] <= 1.0 and set(row["retrieval"]) == {"de"} for row in scores["layers"])
    assert result.output.count("\n| ") == TINY_LAYERS + 1  # one table row per hidden layer
