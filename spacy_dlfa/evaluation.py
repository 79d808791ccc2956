"""Zero-shot evaluation of one trained pipeline on many languages.

For each language this does what ``spacy evaluate --gold-preproc`` does (the
same ``Corpus`` reader, pipeline, ``Scorer`` and JSON keys; a test checks the
scores are identical) with the pipeline loaded once, and also writes
per-sentence counts that the paired bootstrap of the results report resamples.
"""
import importlib
import json
import re
import time
from pathlib import Path
from typing import Dict, List, Sequence

import spacy
import srsly
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.training import Corpus, Example
from thinc.api import require_gpu
from wasabi import msg

handle_scores_per_type = importlib.import_module("spacy.cli.evaluate").handle_scores_per_type

# spacy evaluate's keys, plus cats_micro_f: accuracy for exclusive classes (spacy evaluate shows macro F only)
SCORE_KEYS = ("token_acc", "tag_acc", "pos_acc", "ents_p", "ents_r", "ents_f", "cats_score", "cats_micro_f", "speed")


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


def _annotate_and_score(nlp: Language, examples: List[Example]) -> dict:
    """Language.evaluate, keeping the annotated docs in the examples."""
    start = time.perf_counter()
    for eg, doc in zip(examples, nlp.pipe(eg.predicted for eg in examples)):
        eg.predicted = doc
    seconds = time.perf_counter() - start
    scores = Scorer(nlp=nlp).score(examples)
    scores["speed"] = sum(len(eg.predicted) for eg in examples) / max(seconds, 1e-9)
    return scores


def _spacy_evaluate_json(scores: dict) -> dict:
    data = {re.sub(r"[\s/]", "_", key.lower()): scores[key] for key in SCORE_KEYS if key in scores}
    return handle_scores_per_type(scores, data, silent=True)


def evaluate_languages(model: Path, corpus_dir: Path, languages: Sequence[str], output_dir: Path, gpu_id: int = -1) -> Dict[str, dict]:
    """Evaluate ``corpus_dir/test-<lang>.spacy`` for every language; write
    ``output_dir/<lang>.json`` (the keys of ``spacy evaluate --output``) and
    ``output_dir/<lang>.sentences.json`` (per-sentence counts)."""
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
        examples = list(Corpus(corpus_dir / f"test-{lang}.spacy", gold_preproc=True)(nlp))
        results[lang] = _spacy_evaluate_json(_annotate_and_score(nlp, examples))
        write_scores(output_dir, lang, results[lang], sentence_counts(examples))
        shown = ", ".join(f"{key} {value:.3f}" for key, value in results[lang].items() if key in ("ents_f", "tag_acc", "cats_micro_f"))
        msg.text(f"[{number}/{len(languages)}] {lang}: {len(examples):,} sentences, {shown} ({time.perf_counter() - start:.0f} s) -> {output_dir / lang}.json")
    return results


def write_scores(output_dir: Path, lang: str, scores: dict, counts: Dict[str, list]) -> None:
    """``<lang>.json`` (the keys of ``spacy evaluate --output``) and ``<lang>.sentences.json`` (per-sentence counts)."""
    srsly.write_json(output_dir / f"{lang}.json", scores)
    srsly.write_json(output_dir / f"{lang}.sentences.json", counts)


def load_metrics(metrics_dir: Path) -> Dict[str, dict]:
    """``{lang: scores}`` from the ``<lang>.json`` files that evaluate_languages wrote
    (files with a second suffix, such as ``<lang>.sentences.json``, are not scores)."""
    paths = [p for p in sorted(metrics_dir.glob("*.json")) if "." not in p.stem]
    return {path.stem: json.loads(path.read_text(encoding="utf8")) for path in paths}
