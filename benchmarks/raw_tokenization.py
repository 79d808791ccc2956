"""How close a raw-text tokenizer comes to the gold tokens of the test sets, before any model runs.

    python benchmarks/raw_tokenization.py --mirror ../shared/data

For every UD test treebank and WikiANN test set of the mirror, the gold docs are
built as ``prepare`` builds them (``spacy_dlfa.corpora``; their ``doc.text`` is
what raw-text evaluation reads) and ``doc.text`` is tokenized by spaCy's ``xx``
tokenizer and by ``spacy-dlfa.MultilingualTokenizer.v1``. Per tokenizer:

* same: share of gold tokens that the tokenizer reproduces exactly;
* taggable: share of gold tokens holding at least one predicted token that lies
  inside it, the gold tokens that spaCy's tag scorer can score at all (the upper
  bound of the recall part of raw-text ``tag_acc``);
* entity bounds (WikiANN): share of gold entities whose both ends are predicted
  token boundaries, the upper bound of the raw-text entity recall by character span.

WikiANN files carry no spacing (the corpus joins the words by spaces, also the
characters of zh); the row "zh, CJK as written" drops the space wherever a
neighbour is a CJK character, the text that issue 21 item 1 asks corpora to keep.
"""
import re
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import typer
from spacy.tokens import Doc

from spacy_dlfa.corpora.ud import conllu_to_docs
from spacy_dlfa.corpora.wikiann import wikiann_to_docs

NAME = "spacy-dlfa.MultilingualTokenizer.v1"
CJK = re.compile("[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def as_written(doc: Doc) -> Doc:
    """The doc with no space next to a CJK character (entities kept)."""
    words = [t.text for t in doc]
    spaces = [bool(t.whitespace_) and not (CJK.search(w) or (i + 1 < len(words) and CJK.search(words[i + 1])))
              for i, (t, w) in enumerate(zip(doc, words))]
    return Doc(doc.vocab, words=words, spaces=spaces, ents=[t.ent_iob_ + ("-" + t.ent_type_ if t.ent_type_ else "") for t in doc])


def spans(doc: Doc) -> List[Tuple[int, int]]:
    return [(t.idx, t.idx + len(t)) for t in doc if not t.is_space]


def agreement(gold_docs: List[Doc], nlp) -> Dict[str, float]:
    same = taggable = tokens = entities = bounded = 0
    for gold in gold_docs:
        predicted = spans(nlp.make_doc(gold.text))
        predicted_set = set(predicted)
        bounds = {b for span in predicted for b in span}
        for start, end in spans(gold):
            tokens += 1
            same += (start, end) in predicted_set
            taggable += any(start <= a and b <= end for a, b in predicted)
        for ent in gold.ents:
            entities += 1
            bounded += ent.start_char in bounds and ent.end_char in bounds
    result = {"same": 100.0 * same / max(tokens, 1), "taggable": 100.0 * taggable / max(tokens, 1)}
    if entities:
        result["entity bounds"] = 100.0 * bounded / entities
    return result


def main(mirror: Path = typer.Option(Path("../shared/data"), help="The data mirror"),
         limit: int = typer.Option(1000, help="First N test sentences per set")) -> None:
    tokenizers = {"xx": spacy.blank("xx"), "multilingual": spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": NAME}}})}
    vocab = tokenizers["xx"].vocab
    sets = [(f"ud {p.parent.name}", conllu_to_docs, p) for p in sorted(mirror.glob("ud/*/*-ud-test.conllu"))]
    sets += [(f"wikiann {p.parent.name}", wikiann_to_docs, p) for p in sorted(mirror.glob("wikiann/*/test-*.tsv"))]
    print(f"First {limit} test sentences per set; % of gold tokens (same, taggable) and of gold entities (entity bounds).\n")
    print("| set | xx same | xx taggable | xx entity bounds | ours same | ours taggable | ours entity bounds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, convert, path in sets:
        docs, _ = convert(path, vocab, limit=limit)
        cells = []
        for nlp in tokenizers.values():
            scores = agreement(docs, nlp)
            cells += [f"{scores['same']:.1f}", f"{scores['taggable']:.1f}", f"{scores['entity bounds']:.1f}" if "entity bounds" in scores else "–"]
        print(f"| {name} | " + " | ".join(cells) + " |")
        if name == "wikiann zh":
            written = [as_written(doc) for doc in docs]
            cells = []
            for nlp in tokenizers.values():
                scores = agreement(written, nlp)
                cells += [f"{scores['same']:.1f}", f"{scores['taggable']:.1f}", f"{scores['entity bounds']:.1f}"]
            print("| wikiann zh, CJK as written | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    typer.run(main)
