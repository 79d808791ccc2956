"""Raw-text evaluation beside the gold tokens: per-sentence counts, the evaluate step's files, the report's columns."""
from pathlib import Path

import numpy
import pytest
import spacy
from conftest import SENTENCES
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.reporting.zero_shot import collect, markdown_table, with_raw_text, write_report
from spacy_dlfa.runs.evaluation import char_span_scores, evaluate_languages, raw_sentence_counts, sentence_counts
from spacy_dlfa.runs.results import load_counts, load_metrics, load_raw_metrics, load_scores, write_scores
from spacy_dlfa.statistics import score

TAGS = ["PROPN", "VERB", "NOUN", "ADP", "PUNCT"]
LATIN = [s for s in SENTENCES if s.isascii()]


def _example(vocab, gold_words, gold_spaces, predicted_words, predicted_spaces, **gold):
    reference = Doc(vocab, words=gold_words, spaces=gold_spaces, **gold)
    return Example(Doc(vocab, words=predicted_words, spaces=predicted_spaces), reference)


def test_raw_counts_compare_entities_by_character_span():
    vocab = spacy.blank("xx").vocab
    eg = _example(vocab, ["北京", "是", "首都"], [False, False, False], ["北", "京", "是", "首", "都"], [False] * 5,
                  ents=["B-LOC", "O", "O"])
    eg.predicted.ents = [eg.predicted.char_span(0, 2, "LOC"), eg.predicted.char_span(3, 4, "ORG")]
    counts = raw_sentence_counts([eg])
    # 北京 found; 首 (inside the gold token 首都) is a false positive, which spaCy's scorer leaves out
    assert counts["ents"] == [[1, 1, 0]]
    assert char_span_scores(counts) == {"ents_char_p": 0.5, "ents_char_r": 1.0, "ents_char_f": 2 / 3}
    assert Scorer.score_spans([eg], "ents")["ents_f"] == 1.0


def test_raw_tag_counts_reproduce_spacys_tag_acc():
    vocab = spacy.blank("xx").vocab
    # 京是 spans two gold tokens (no prediction); 北 gives 北京 its tag (right), 首都 a wrong one
    eg = _example(vocab, ["北京", "是", "首都", "。"], [False] * 4, ["北", "京是", "首都", "。"], [False] * 4,
                  tags=["PROPN", "AUX", "NOUN", ""])
    for token, tag in zip(eg.predicted, ["PROPN", "AUX", "VERB", "PUNCT"]):
        token.tag_ = tag
    counts = raw_sentence_counts([eg])
    # gold pairs (0 PROPN) (1 AUX) (2 NOUN); predicted (0 PROPN) (2 VERB); 。 has no gold tag: tp 1, fp 1, fn 2
    assert counts["tags"] == [[1, 2.5]]
    assert Scorer.score_token_attr([eg], "tag")["tag_acc"] == pytest.approx(1 / 2.5)


def test_raw_counts_on_the_gold_tokens_are_the_gold_counts():
    nlp = spacy.blank("xx")
    examples = []
    for i, sentence in enumerate(LATIN):
        words = sentence.split()
        reference = Doc(nlp.vocab, words=words, tags=[TAGS[(i + j) % 5] for j in range(len(words))],
                        ents=["B-PER"] + ["O"] * (len(words) - 1))
        predicted = Doc(nlp.vocab, words=words, tags=[TAGS[(i + 2 * j) % 5] for j in range(len(words))],
                        ents=["O", "B-PER"] + ["O"] * (len(words) - 2))
        examples.append(Example(predicted, reference))
    assert raw_sentence_counts(examples) == sentence_counts(examples)


def _write_corpus(directory: Path, task: str, split_words: bool) -> None:
    """test-ws.spacy (Latin sentences, words between spaces) and, with `split_words`, test-glued.spacy:
    every word cut after its first character with no space between, so the tokenizer glues it back."""
    vocab = spacy.blank("xx").vocab
    gold, glued = [], []
    for i, sentence in enumerate(LATIN):
        words = sentence.split()
        tags = [TAGS[(i + j) % 5] for j in range(len(words))]
        ents = ["B-PER" if j == 0 else "O" for j in range(len(words))]
        gold.append(Doc(vocab, words=words, **({"tags": tags} if task == "tagger" else {"ents": ents})))
        pieces, spaces, piece_tags, piece_ents = [], [], [], []
        for j, word in enumerate(w for w in words if len(w) > 1):
            pieces += [word[0], word[1:]]
            spaces += [False, True]
            piece_tags += [tags[j], tags[j]]
            piece_ents += ["B-LOC" if j == 0 else "O", "O"]
        glued.append(Doc(vocab, words=pieces, spaces=spaces, **({"tags": piece_tags} if task == "tagger" else {"ents": piece_ents})))
    DocBin(docs=gold).to_disk(directory / "test-ws.spacy")
    if split_words:
        DocBin(docs=glued).to_disk(directory / "test-glued.spacy")


@pytest.mark.parametrize("task", ["ner", "tagger"])
def test_raw_text_agrees_on_spaced_text_and_differs_on_glued_text(trained_pipelines, single_torch_thread, tmp_path, task):
    nlp = spacy.load(trained_pipelines[task])
    assert all([t.text for t in nlp.make_doc(s)] == s.split() for s in LATIN)  # the text tokenizes to the gold words
    _write_corpus(tmp_path, task, split_words=True)
    out = tmp_path / "metrics"
    evaluate_languages(trained_pipelines[task], tmp_path, ["ws", "glued"], out, raw_text=True)
    assert sorted(p.name for p in out.iterdir()) == ["scores.json", "sentences.json.gz"]
    assert sorted(load_scores(out)) == sorted(load_counts(out)) == ["glued", "glued.raw", "ws", "ws.raw"]
    gold, raw = load_metrics(out), load_raw_metrics(out)
    assert set(gold) == set(raw) == {"ws", "glued"}
    for scores in (*gold.values(), *raw.values()):
        scores.pop("speed")
    key = "ents_f" if task == "ner" else "tag_acc"
    # words between spaces: the pipeline's tokens are the gold ones and every score and count agrees
    assert {k: v for k, v in raw["ws"].items() if not k.startswith("ents_char")} == gold["ws"]
    counts = load_counts(out)
    count_key = "ents" if task == "ner" else "tags"  # (the NER corpus has no tags: the raw counts score none)
    assert counts["ws.raw"][count_key] == counts["ws"][count_key]
    # the paired bootstrap's score of the raw counts is the raw-text score of the report
    report_key = "ents_char_f" if task == "ner" else "tag_acc"
    for name in ("ws", "glued"):
        summed = score("f1" if task == "ner" else "accuracy", numpy.asarray(counts[f"{name}.raw"][count_key], dtype="f8"))
        assert float(summed) == pytest.approx(100.0 * (raw[name][report_key] or 0.0))
    if task == "ner":
        assert raw["ws"]["ents_char_f"] == pytest.approx(gold["ws"]["ents_f"] or 0.0)
        # every gold entity is one character (the first of a glued word): no predicted entity can match it
        assert [row[0] for row in counts["glued.raw"]["ents"]] == [0] * len(LATIN)
        assert [row[2] for row in counts["glued.raw"]["ents"]] == [1] * len(LATIN)
        assert raw["glued"]["ents_char_f"] == 0.0
    else:
        # every predicted token spans two gold tokens: no tag is scored, the F-score is 0 over 2 pairs per word
        n_pieces = [len([w for w in s.split() if len(w) > 1]) * 2 for s in LATIN]
        assert counts["glued.raw"]["tags"] == [[0, n / 2] for n in n_pieces]
        assert [row[1] for row in counts["glued"]["tags"]] == n_pieces
        assert raw["glued"][key] == 0.0
        assert gold["glued"][key] > 0.0


def test_cli_evaluate_writes_raw_text_unless_told_not_to(trained_pipelines, single_torch_thread, tmp_path):
    _write_corpus(tmp_path, "ner", split_words=False)
    runner = CliRunner()
    for flag, expected in (([], {"ws", "ws.raw"}), (["--no-raw-text"], {"ws"})):
        out = tmp_path / f"metrics{len(flag)}"
        result = runner.invoke(app, ["evaluate", str(trained_pipelines["ner"]), str(tmp_path), str(out), "--languages", "ws", *flag])
        assert result.exit_code == 0, result.output
        assert {p.name for p in out.iterdir()} == {"scores.json", "sentences.json.gz"}
        assert set(load_scores(out)) == set(load_counts(out)) == expected


def test_report_shows_raw_text_beside_gold_tokens(tmp_path):
    metrics = tmp_path / "metrics"
    for variant in ("ner_dlfa", "ner_baseline"):
        (metrics / variant).mkdir(parents=True)
    for lang, f in (("en", 0.8), ("de", 0.7), ("zh", 0.3)):
        write_scores(metrics / "ner_dlfa", lang, {"ents_f": f}, {"ents": []})
        write_scores(metrics / "ner_baseline", lang, {"ents_f": f - 0.1}, {"ents": []})
    for lang, f in (("en", 0.75), ("de", 0.6), ("zh", 0.1)):
        write_scores(metrics / "ner_dlfa", f"{lang}.raw", {"ents_f": 0.99, "ents_char_f": f}, {"ents": []})
    assert set(load_metrics(metrics / "ner_dlfa")) == {"en", "de", "zh"}
    table = markdown_table("ner", with_raw_text("ner", collect(metrics, "ner"), collect(metrics, "ner", raw=True)))
    lines = table.splitlines()
    assert lines[0] == "| NER F1 | baseline: gold tokens | baseline: raw text | dlfa: gold tokens | dlfa: raw text |"
    assert lines[2] == "| en | 70.0 | – | 80.0 | 75.0 |"
    assert lines[4] == "| zh | 20.0 | – | 30.0 | 10.0 |"
    assert lines[5] == "| **average of 2 targets** | **40.0** | – | **50.0** | **35.0** |"
    report = write_report(metrics, tmp_path / "reports").read_text()
    assert table in report and "raw text" in report
    # sentence-pair tasks keep one column per variant
    assert with_raw_text("xnli", {"dlfa": {"en": 1.0}}, {}) == {"dlfa": {"en": 1.0}}
