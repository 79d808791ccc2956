"""Zero-shot evaluation of one trained pipeline on many languages.

For each language this does what ``spacy evaluate --gold-preproc`` does (the
same ``Corpus`` reader, pipeline, ``Scorer`` and JSON keys; a test checks the
scores are identical) with the pipeline loaded once, and also writes
per-sentence counts that the paired bootstrap of the results report resamples.

With ``raw_text`` it also does what ``spacy evaluate`` does without
``--gold-preproc``: the pipeline's own tokenizer reads each gold doc's text,
and spaCy's ``Scorer`` aligns the predicted tokens to the gold ones. Those
scores and counts are kept as ``<lang>.raw`` beside the gold tokens' ``<lang>``
(in the run folder's ``scores.json`` and ``sentences.json.gz``, ``results.py``).
spaCy's span scorer leaves out a predicted entity whose boundaries fall inside a gold token (it cannot be aligned), so
its ``ents_p``/``ents_f`` flatter a tokenizer that cuts finer than the gold;
``ents_char_p``/``_r``/``_f`` count every predicted entity, compared by
character span and label (on the gold tokens the two are the same).
Sentence-pair test sets (docs with ``cats``) have no raw-text form.
"""
import importlib
import re
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import spacy
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.training import Corpus, Example
from thinc.api import require_gpu
from wasabi import msg

from .results import RAW, write_scores

handle_scores_per_type = importlib.import_module("spacy.cli.evaluate").handle_scores_per_type

# spacy evaluate's keys (every component's, as spacy evaluate orders them), plus cats_micro_f, the pair tasks'
# TaskSpec.score_key: accuracy for exclusive classes (spacy evaluate shows macro F only)
EVALUATE_KEYS = ("token_acc", "tag_acc", "pos_acc", "ents_p", "ents_r", "ents_f", "cats_score", "cats_micro_f", "speed")


def sentence_counts(examples: Sequence[Example]) -> Dict[str, List[List[int]]]:
    """Per sentence: NER [true positives, false positives, false negatives]
    (exact span and label, as spaCy's scorer), tagging [correct, total] and,
    for docs with gold cats, exclusive-class [correct, 1] (top label right)."""
    ner, tags, cats = [], [], []
    for eg in examples:
        gold = {(e.start, e.end, e.label_) for e in eg.reference.ents}
        predicted = {(e.start, e.end, e.label_) for e in eg.predicted.ents}
        ner.append([len(gold & predicted), len(predicted - gold), len(gold - predicted)])
        tags.append([sum(p.tag_ == g.tag_ for p, g in zip(eg.predicted, eg.reference)), len(eg.reference)])
        if eg.reference.cats:
            top = max(eg.predicted.cats, key=eg.predicted.cats.get) if eg.predicted.cats else None
            cats.append([int(top == max(eg.reference.cats, key=eg.reference.cats.get)), 1])
    counts = {"ents": ner, "tags": tags}
    return {**counts, "cats": cats} if cats else counts


def raw_sentence_counts(examples: Sequence[Example]) -> Dict[str, List[List[float]]]:
    """Per-sentence counts when the predicted tokens are not the gold ones.

    NER ``[true positives, false positives, false negatives]`` of entities
    compared by character span and label (every predicted entity counts).
    Tagging ``[tp, tp + (fp + fn) / 2]`` over the (gold token, tag) pairs that
    spaCy's ``Scorer.score_token_attr`` compares (a predicted token aligned to
    exactly one gold token gives that gold token its tag): the ratio of the
    summed columns is spaCy's ``tag_acc``, an F-score over those pairs, and on
    the gold tokens the row is ``sentence_counts``' ``[correct, total]``."""
    ner, tags = [], []
    for eg in examples:
        gold = {(e.start_char, e.end_char, e.label_) for e in eg.reference.ents}
        predicted = {(e.start_char, e.end_char, e.label_) for e in eg.predicted.ents}
        ner.append([len(gold & predicted), len(predicted - gold), len(gold - predicted)])
        gold_tags = {(i, token.tag_) for i, token in enumerate(eg.reference) if token.tag_}
        missing = {i for i, token in enumerate(eg.reference) if not token.tag_}
        x2y = eg.alignment.x2y
        predicted_tags = {
            (x2y[token.i][0], token.tag_)
            for token in eg.predicted
            if not token.orth_.isspace() and x2y.lengths[token.i] == 1 and x2y[token.i][0] not in missing
        }
        tp = len(gold_tags & predicted_tags)
        tags.append([tp, tp + (len(predicted_tags - gold_tags) + len(gold_tags - predicted_tags)) / 2])
    return {"ents": ner, "tags": tags}


def char_span_scores(counts: Dict[str, list]) -> Dict[str, Optional[float]]:
    """``ents_char_p``, ``_r``, ``_f`` from the summed NER rows (None without any entity, as spaCy)."""
    tp, fp, fn = (sum(row[k] for row in counts["ents"]) for k in range(3))
    if not tp + fp + fn:
        return {"ents_char_p": None, "ents_char_r": None, "ents_char_f": None}
    return {"ents_char_p": tp / (tp + fp) if tp + fp else 0.0, "ents_char_r": tp / (tp + fn) if tp + fn else 0.0,
            "ents_char_f": 2 * tp / (2 * tp + fp + fn)}


def annotate_and_score(nlp: Language, examples: List[Example]) -> dict:
    """Language.evaluate, keeping the annotated docs in the examples (the attack runner scores with it too)."""
    start = time.perf_counter()
    for eg, doc in zip(examples, nlp.pipe(eg.predicted for eg in examples)):
        eg.predicted = doc
    seconds = time.perf_counter() - start
    scores = Scorer(nlp=nlp).score(examples)
    scores["speed"] = sum(len(eg.predicted) for eg in examples) / max(seconds, 1e-9)
    return scores


def spacy_evaluate_json(scores: dict) -> dict:
    data = {re.sub(r"[\s/]", "_", key.lower()): scores[key] for key in EVALUATE_KEYS if key in scores}
    return handle_scores_per_type(scores, data, silent=True)


def evaluate_languages(model: Path, corpus_dir: Path, languages: Sequence[str], output_dir: Path, gpu_id: int = -1,
                       raw_text: bool = False) -> Dict[str, dict]:
    """Evaluate ``corpus_dir/test-<lang>.spacy`` for every language on the gold tokens; add
    ``<lang>`` to ``output_dir``'s ``scores.json`` (the keys of ``spacy evaluate --gold-preproc
    --output``) and ``sentences.json.gz`` (per-sentence counts); return the gold-token scores.
    With ``raw_text`` (not for sentence pairs) also on the raw text, tokenized by the pipeline:
    ``<lang>.raw`` (``spacy evaluate --output`` keys plus ``ents_char_*``; ``raw_sentence_counts``)."""
    missing = [str(corpus_dir / f"test-{lang}.spacy") for lang in languages if not (corpus_dir / f"test-{lang}.spacy").exists()]
    if missing:
        raise FileNotFoundError(f"evaluation data missing: {', '.join(missing)}")
    if gpu_id >= 0:
        require_gpu(gpu_id)
    nlp = spacy.load(model)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for number, lang in enumerate(languages, 1):
        start = time.perf_counter()
        path = corpus_dir / f"test-{lang}.spacy"
        examples = list(Corpus(path, gold_preproc=True)(nlp))
        results[lang] = spacy_evaluate_json(annotate_and_score(nlp, examples))
        write_scores(output_dir, lang, results[lang], sentence_counts(examples))
        shown = _shown(results[lang])
        if raw_text and any(eg.reference.cats for eg in examples):
            msg.info(f"{lang}: sentence pairs, no raw-text evaluation")
        elif raw_text:
            raw_examples = list(Corpus(path, gold_preproc=False)(nlp))
            raw = spacy_evaluate_json(annotate_and_score(nlp, raw_examples))
            counts = raw_sentence_counts(raw_examples)
            if raw.get("ents_f") is not None:
                raw.update(char_span_scores(counts))
            write_scores(output_dir, f"{lang}{RAW}", raw, counts)
            shown += f"; raw text {_shown(raw)}"
        msg.text(f"[{number}/{len(languages)}] {lang}: {len(examples):,} sentences, {shown} ({time.perf_counter() - start:.0f} s) -> {output_dir}")
    return results


def _shown(scores: dict) -> str:
    return ", ".join(f"{key} {value:.3f}" for key, value in scores.items() if key in ("ents_f", "ents_char_f", "tag_acc", "cats_micro_f") and value is not None)
