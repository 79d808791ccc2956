"""Raw-text NER of one trained pipeline with its own tokenizer and with another one swapped in.

    python benchmarks/raw_text_ner.py \\
        --model ../run-wt/training/words_input/ner/dlfa_l10_s2/model-best \\
        --corpus ../run-wt/corpus/ner --metrics metrics/words_input/ner/dlfa_l10_s2 \\
        --tokenizer spacy-dlfa.MultilingualTokenizer.v2 > benchmarks/results/raw_text_ner.md

Entities are compared by character span and label (``raw_sentence_counts`` and
``char_span_scores`` of ``spacy_dlfa.runs.evaluation``, the ``ents_char_f`` of
``<lang>.raw``); predictions come from ``annotate_and_score``, the code the
evaluate step runs. Only the sentences that a tokenizer cuts differently from the
gold tokens are run through the pipeline: where the tokens are the gold ones, the
raw-text counts are the gold-token counts (same tokens and spaces, same
predictions, character spans = token spans). The gold-token rows and the
pipeline's own raw-text rows (``v1``) are read from the run's
``sentences.json.gz`` (``--metrics``, written by the evaluate step of the same
pipeline); as a check, the pipeline's own tokenizer is run again on the
sentences the new tokenizer sends to the model and compared with those stored
rows. English dev (``dev.spacy``, not in the metrics) is scored in full on the
gold tokens and the same way on raw text: it is where the tokenizer's rules
were chosen, before any target was scored.
"""
import gzip
import json
from pathlib import Path
from typing import List

import spacy
import typer
from spacy.training import Corpus, Example
from spacy.util import registry

from spacy_dlfa.runs.evaluation import annotate_and_score, char_span_scores, raw_sentence_counts, sentence_counts

TARGETS = "en de es fr nl pt ru zh ar hi tr"


def token_spans(doc) -> List[tuple]:
    return [(t.idx, t.idx + len(t)) for t in doc]


def raw_rows(nlp, tokenizer, gold_examples: List[Example], gold_rows: List[list]) -> (List[list], List[int]):
    """Per-sentence NER rows on raw text cut by `tokenizer`, and the indices run through the model."""
    examples, indices = [], []
    for i, eg in enumerate(gold_examples):
        predicted = tokenizer(eg.reference.text)
        if token_spans(predicted) != token_spans(eg.reference) or [t.whitespace_ for t in predicted] != [t.whitespace_ for t in eg.reference]:
            examples.append(Example(predicted, eg.reference))
            indices.append(i)
    rows = [list(row) for row in gold_rows]
    if examples:
        annotate_and_score(nlp, examples)
        for i, row in zip(indices, raw_sentence_counts(examples)["ents"]):
            rows[i] = row
    return rows, indices


def f1(rows: List[list]) -> float:
    return 100.0 * (char_span_scores({"ents": rows})["ents_char_f"] or 0.0)


def main(model: Path = typer.Option(..., help="Trained NER pipeline"),
         corpus: Path = typer.Option(..., help="Folder with dev.spacy and test-<lang>.spacy"),
         metrics: Path = typer.Option(..., help="The pipeline's run folder with sentences.json.gz"),
         tokenizer: str = typer.Option("spacy-dlfa.MultilingualTokenizer.v2", help="Registered tokenizer to swap in"),
         languages: str = typer.Option(TARGETS, help="Test sets, space-separated")) -> None:
    nlp = spacy.load(model)
    own = nlp.tokenizer
    other = registry.tokenizers.get(tokenizer)()(nlp)  # on the pipeline's vocab
    stored = json.loads(gzip.open(metrics / "sentences.json.gz").read())
    own_name = nlp.config["nlp"]["tokenizer"].get("@tokenizers", "?")
    print(f"Entities by character span and label (ents_char_f), `{model.name}` of `{metrics}`; "
          f"own tokenizer `{own_name}`, swapped in `{tokenizer}`.\n")
    print("| set | sentences | gold tokens | raw, own | raw, swapped | own − gold | swapped − gold | sentences re-run | re-run own = stored |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    sets = [("en dev", corpus / "dev.spacy", None)] + [(lang, corpus / f"test-{lang}.spacy", lang) for lang in languages.split()]
    for name, path, key in sets:
        gold_examples = list(Corpus(path, gold_preproc=True)(nlp))
        if key is None:
            annotate_and_score(nlp, gold_examples)
            gold = sentence_counts(gold_examples)["ents"]
            own_rows, _ = raw_rows(nlp, own, gold_examples, gold)
            check = "–"
        else:
            gold, own_rows = stored[key]["ents"], stored[f"{key}.raw"]["ents"]
        nlp.tokenizer = other
        swapped, indices = raw_rows(nlp, other, gold_examples, gold)
        nlp.tokenizer = own
        if key is not None and indices:
            rerun = [Example(own(gold_examples[i].reference.text), gold_examples[i].reference) for i in indices]
            annotate_and_score(nlp, rerun)
            same = sum(list(a) == list(own_rows[i]) for a, i in zip(raw_sentence_counts(rerun)["ents"], indices))
            check = f"{same}/{len(indices)}"
        elif key is not None:
            check = "–"
        g, o, s = f1(gold), f1(own_rows), f1(swapped)
        print(f"| {name} | {len(gold)} | {g:.1f} | {o:.1f} | {s:.1f} | {o - g:+.1f} | {s - g:+.1f} | {len(indices)} | {check} |", flush=True)


if __name__ == "__main__":
    typer.run(main)
