"""Sentence pairs: one Doc per pair with the model's separator, segment ids, and the
xnli/pawsx textcat configs trained through `spacy train`, saved and loaded."""
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import spacy
import torch
from conftest import REPO, SENTENCES, TINY_WIDTH
from spacy.tokens import DocBin
from spacy.util import load_config
from transformers import AutoTokenizer

from spacy_dlfa.pairs import make_pair_doc, pair_segment_separator_id, pair_separator, split_pair

PAIRS = [(SENTENCES[i], SENTENCES[(i + 3) % len(SENTENCES)]) for i in range(len(SENTENCES))]
LABELS = {"xnli": ["entailment", "neutral", "contradiction"], "pawsx": ["paraphrase", "not_paraphrase"]}


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def test_pair_doc_holds_both_texts_and_one_separator(tokenizer):
    nlp = spacy.blank("xx")
    separator = pair_separator(tokenizer)
    assert separator == ["[SEP]"]
    for a, b in PAIRS + [("Mama, I'm  home.", " He didn't say a word. ")]:
        doc = make_pair_doc(nlp, a, b, separator)
        assert [t.text for t in doc].count("[SEP]") == 1
        assert split_pair(doc, separator) == (a.strip(), b.strip())
        assert tokenizer(doc.text)["input_ids"] == tokenizer(a.strip(), b.strip())["input_ids"]


def test_empty_side_of_a_pair_is_an_error():
    with pytest.raises(ValueError, match="both texts of a pair need at least one token"):
        make_pair_doc(spacy.blank("xx"), "Paris .", "  ", ["[SEP]"])


def test_segment_separator_only_for_bert_style_tokenizers(tokenizer):
    assert pair_segment_separator_id(tokenizer) == tokenizer.sep_token_id


def _write_pairs(path: Path, task: str, separator: List[str]) -> None:
    nlp = spacy.blank("xx")
    labels = LABELS[task]
    docs = []
    for i, (a, b) in enumerate(PAIRS):
        doc = make_pair_doc(nlp, a, b, separator)
        doc.cats = {label: float(label == labels[i % len(labels)]) for label in labels}
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)


def _train(task: str, variant: str, tiny_bert: Path, tmp_path: Path, tokenizer) -> Path:
    data = tmp_path / "pairs.spacy"
    _write_pairs(data, task, pair_separator(tokenizer))
    overrides = {"paths.train": data, "paths.dev": data, "paths.transformer": tiny_bert, "training.max_steps": 4,
                 "training.eval_frequency": 2, "training.optimizer.learn_rate.warmup_steps": 1}
    if variant == "dlfa":
        overrides.update({"components.textcat.model.tok2vec.fusion.width": TINY_WIDTH, "components.textcat.model.tok2vec.fusion_layer": 1})
    command = [sys.executable, "-m", "spacy", "train", str(REPO / "configs" / f"{task}_{variant}.cfg"), "--output", str(tmp_path / "out")]
    command += [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "out" / "model-last"


@pytest.mark.parametrize("task,variant", [("xnli", "dlfa"), ("pawsx", "baseline")])
def test_pair_configs_train_save_and_load(task, variant, tiny_bert, tmp_path, tokenizer):
    nlp = spacy.load(_train(task, variant, tiny_bert, tmp_path, tokenizer))
    assert set(nlp.get_pipe("textcat").labels) == set(LABELS[task])
    docs = [make_pair_doc(nlp, a, b) for a, b in PAIRS[:4]]
    predicted = [nlp(doc).cats for doc in docs]
    assert all(set(cats) == set(LABELS[task]) and sum(cats.values()) == pytest.approx(1.0, abs=1e-5) for cats in predicted)
    nlp.to_disk(tmp_path / "copy")
    reloaded = spacy.load(tmp_path / "copy")
    again = [reloaded(make_pair_doc(reloaded, a, b)).cats for a, b in PAIRS[:4]]
    for cats, cats_again in zip(predicted, again):
        assert cats == pytest.approx(cats_again, abs=1e-6)


def test_second_text_gets_segment_id_one_like_the_tokenizer(tiny_bert, tmp_path, tokenizer):
    nlp = spacy.load(_train("xnli", "dlfa", tiny_bert, tmp_path, tokenizer))
    seen = []
    hf_model = nlp.get_pipe("transformer").model.transformer
    hook = hf_model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["token_type_ids"]), with_kwargs=True)
    a, b = PAIRS[0]
    try:
        nlp(make_pair_doc(nlp, a, b))
        nlp(nlp.make_doc(a))
    finally:
        hook.remove()
    expected = tokenizer(a, b, return_tensors="pt")["token_type_ids"]
    assert torch.equal(seen[0][:, : expected.shape[1]], expected) and int(expected.sum()) > 0
    assert int(seen[1].sum()) == 0


def test_pair_baselines_differ_from_dlfa_only_in_the_listener():
    for task in LABELS:
        dlfa = load_config(REPO / "configs" / f"{task}_dlfa.cfg")
        baseline = load_config(REPO / "configs" / f"{task}_baseline.cfg")
        dlfa_listener = dlfa["components"]["textcat"]["model"].pop("tok2vec")
        baseline_listener = baseline["components"]["textcat"]["model"].pop("tok2vec")
        assert dlfa["components"]["transformer"]["model"].pop("keep_hidden_layers") == "[${components.textcat.model.tok2vec.fusion_layer}]"
        assert baseline["components"]["transformer"]["model"].pop("keep_hidden_layers") == []
        assert dlfa == baseline
        assert dlfa_listener["@architectures"] == "spacy-dlfa.FusionListener.v1"
        assert baseline_listener["@architectures"] == "spacy-transformers.TransformerListener.v1"


def test_sentence_counts_of_pairs_are_top_label_hits():
    from spacy.training import Example

    from spacy_dlfa.runs.evaluation import sentence_counts
    from spacy_dlfa.statistics import score
    from spacy_dlfa.tasks import TASKS

    nlp = spacy.blank("xx")
    examples = []
    for predicted_top, gold_top in (("neutral", "neutral"), ("entailment", "contradiction"), ("contradiction", "contradiction")):
        gold = make_pair_doc(nlp, "A man sleeps .", "Nobody sleeps .", ["[SEP]"])
        gold.cats = {label: float(label == gold_top) for label in LABELS["xnli"]}
        predicted = gold.copy()
        predicted.cats = {label: 0.8 if label == predicted_top else 0.1 for label in LABELS["xnli"]}
        examples.append(Example(predicted, gold))
    counts = sentence_counts(examples)["cats"]
    assert counts == [[1, 1], [0, 1], [1, 1]]
    assert float(score(TASKS["xnli"].measure, __import__("numpy").asarray(counts, dtype="f8"))) == pytest.approx(200 / 3)
