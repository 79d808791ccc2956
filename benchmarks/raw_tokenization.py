"""How close a raw-text tokenizer comes to the gold tokens of the test sets, before any model runs.

    python benchmarks/raw_tokenization.py --mirror ../shared/data

For every UD test treebank and WikiANN test set of the mirror, the gold docs are
built as ``prepare`` builds them (``spacy_dlfa.corpora``; their ``doc.text`` is
what raw-text evaluation reads) and ``doc.text`` is tokenized by spaCy's ``xx``
tokenizer, by ``spacy-dlfa.MultilingualTokenizer.v1`` (multilingual) and by
``spacy-dlfa.MultilingualTokenizer.v2`` (v1 with words joined at hyphens, as
WikiANN cuts). Per tokenizer:

* same: share of gold tokens that the tokenizer reproduces exactly;
* taggable: share of gold tokens holding at least one predicted token that lies
  inside it, the gold tokens that spaCy's tag scorer can score at all (the upper
  bound of the recall part of raw-text ``tag_acc``);
* entity bounds (WikiANN): share of gold entities whose both ends are predicted
  token boundaries, the upper bound of the raw-text entity recall by character span.

WikiANN files carry no spacing (the corpus joins the words by spaces, also the
characters of zh); the row "zh, CJK as written" drops the space wherever a
neighbour is a CJK character, the text that issue 21 item 1 asks corpora to keep.

    python benchmarks/raw_tokenization.py --corpus ../run-wt/corpus/ner \\
        --metrics metrics/words_input/ner/dlfa_l10_s2

does instead, on a NER corpus folder (train.spacy, dev.spacy, test-<lang>.spacy):
which kinds of gold tokens the tokenizers cut (``split_kinds``), how many on
each set, and, from the per-sentence counts of a run's evaluate step
(``sentences.json.gz``: gold tokens and ``<lang>.raw``, the pipeline's own
tokenizer), how many F1 points (entities by character span) each kind explains:
the raw-text F1 with the rows of the sentences holding that kind replaced by
their gold-token rows, minus the raw-text F1 (a sentence can hold several kinds,
so the kinds overlap).
"""
import gzip
import json
import re
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import spacy
import typer
from spacy.tokens import Doc, DocBin

from spacy_dlfa.corpora.ud import conllu_to_docs
from spacy_dlfa.corpora.wikiann import wikiann_to_docs
from spacy_dlfa.runs.evaluation import char_span_scores

NAME = "spacy-dlfa.MultilingualTokenizer.v1"
NAMES = {"xx": None, "multilingual": NAME, "v2": "spacy-dlfa.MultilingualTokenizer.v2"}
KINDS = ("hyphen or en dash in a word", "repeated mark (`` ** == ]])", "markup run attached (Janaki]] **London)",
         "free-standing clitic ('s)", "quote attached (''Caracara, „Stadt)", "period after a word (St. No. 1.)",
         "other punctuation attached")
QUOTES = {"'", "''", '"', "`", "``", "\u2018", "\u2019", "\u201c", "\u201d", "\u201e", "\u00ab", "\u00bb"}
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


def split_kinds(text: str, pieces: List[str]) -> Set[str]:
    """The kinds of cut (``KINDS``) that splitting the gold token `text` into `pieces` makes."""
    if len(pieces) < 2:
        return set()
    kinds = set()
    if any(p in "-\u2010\u2011\u2013" and a[-1:].isalnum() and b[:1].isalnum() for a, p, b in zip(pieces, pieces[1:], pieces[2:])):
        kinds.add(KINDS[0])
    if len(set(text)) == 1 and not text[0].isalnum():
        kinds.add(KINDS[1])
    elif re.search(r"([^\w\s])\1", text) and any(c.isalnum() for c in text) and pieces[0] not in QUOTES:
        kinds.add(KINDS[2])
    if re.fullmatch("['\u2019][a-z]{1,2}", text):
        kinds.add(KINDS[3])
    elif pieces[0] in QUOTES or pieces[-1] in QUOTES:
        kinds.add(KINDS[4])
    if pieces[-1] == "." and pieces[-2][-1:].isalnum():
        kinds.add(KINDS[5])
    return kinds or {KINDS[6]}


def sentence_kinds(doc: Doc, nlp) -> Set[str]:
    """The kinds of gold tokens of `doc` that `nlp`'s tokenizer cuts."""
    bounds = {b for t in nlp.make_doc(doc.text) for b in (t.idx, t.idx + len(t))}
    kinds: Set[str] = set()
    for token in doc:
        cuts = sorted(b - token.idx for b in bounds if token.idx < b < token.idx + len(token))
        kinds |= split_kinds(token.text, [token.text[a:b] for a, b in zip([0] + cuts, cuts + [len(token)])])
    return kinds


def f1(rows: List[list]) -> float:
    return 100.0 * (char_span_scores({"ents": rows})["ents_char_f"] or 0.0)


def kinds_report(corpus: Path, metrics: Optional[Path], tokenizers: Dict[str, object]) -> None:
    vocab = tokenizers["xx"].vocab
    sets = [("en train", "train"), ("en dev", "dev")] + [(f"test {p.stem[5:]}", p.stem) for p in sorted(corpus.glob("test-*.spacy"))]
    docs = {name: list(DocBin().from_disk(corpus / f"{stem}.spacy").get_docs(vocab)) for name, stem in sets}
    kinds = {(name, tok): [sentence_kinds(doc, tokenizers[tok]) for doc in docs[name]] for name, _ in sets for tok in ("multilingual", "v2")}
    print("Gold tokens that the tokenizer cuts, by kind (v1 / v2 = spacy-dlfa.MultilingualTokenizer.v1 / .v2): "
          "number of sentences holding the kind.\n")
    print("| kind | " + " | ".join(name for name, _ in sets) + " |")
    print("|---|" + "---:|" * len(sets))
    for kind in KINDS:
        cells = [f"{sum(kind in k for k in kinds[(name, 'multilingual')])} / {sum(kind in k for k in kinds[(name, 'v2')])}" for name, _ in sets]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    cells = [f"{sum(bool(k) for k in kinds[(name, 'multilingual')])} / {sum(bool(k) for k in kinds[(name, 'v2')])} of {len(docs[name])}" for name, _ in sets]
    print("| any | " + " | ".join(cells) + " |")
    if metrics is None:
        return
    stored = json.loads(gzip.open(metrics / "sentences.json.gz").read())
    tests = [(name, name[5:]) for name, _ in sets if name.startswith("test") and name[5:] in stored]
    print(f"\nF1 points (entities by character span) that each kind explains, v1 raw text of `{metrics}`: raw F1 with the "
          "gold-token rows for the sentences holding the kind, minus raw F1.\n")
    print("| kind | " + " | ".join(lang for _, lang in tests) + " |")
    print("|---|" + "---:|" * len(tests))
    for kind in KINDS + ("any",):
        cells = []
        for name, lang in tests:
            gold, raw = stored[lang]["ents"], stored[f"{lang}.raw"]["ents"]
            held = [bool(k) if kind == "any" else kind in k for k in kinds[(name, "multilingual")]]
            cells.append(f"{f1([g if h else r for g, r, h in zip(gold, raw, held)]) - f1(raw):+.1f}")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    cells = [f"{f1(stored[lang]['ents']) - f1(stored[f'{lang}.raw']['ents']):+.1f}" for _, lang in tests]
    print("| gold − raw (all) | " + " | ".join(cells) + " |")


def main(mirror: Path = typer.Option(Path("../shared/data"), help="The data mirror"),
         limit: int = typer.Option(1000, help="First N test sentences per set"),
         corpus: Optional[Path] = typer.Option(None, help="A NER corpus folder: report the kinds of cuts instead"),
         metrics: Optional[Path] = typer.Option(None, help="With --corpus: a run folder with sentences.json.gz")) -> None:
    tokenizers = {key: spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": name}}} if name else {}) for key, name in NAMES.items()}
    if corpus is not None:
        kinds_report(corpus, metrics, tokenizers)
        return
    vocab = tokenizers["xx"].vocab
    sets = [(f"ud {p.parent.name}", conllu_to_docs, p) for p in sorted(mirror.glob("ud/*/*-ud-test.conllu"))]
    sets += [(f"wikiann {p.parent.name}", wikiann_to_docs, p) for p in sorted(mirror.glob("wikiann/*/test-*.tsv"))]
    print(f"First {limit} test sentences per set; % of gold tokens (same, taggable) and of gold entities (entity bounds).\n")
    print("| set | " + " | ".join(f"{key} {m}" for key in tokenizers for m in ("same", "taggable", "entity bounds")) + " |")
    print("|---|" + "---:|" * 3 * len(tokenizers))
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
