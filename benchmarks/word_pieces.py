"""What the transformer reads: wordpieces of the text (spacy-transformers) vs of the tokens as
words (``words_as_input``), on the data mirror's gold docs.

    python benchmarks/word_pieces.py assets/e5-small --data ../shared/data --limit 500 --examples 1

For every corpus: the share of gold tokens that share a wordpiece with another token, the share
that have no piece of their own (only shared pieces, or none: a merged token gets its
neighbour's vector) and the pieces per token, for
  * ``text``: each doc's text, aligned by character offsets (``words_as_input = false``);
  * ``words``: each token a word, aligned by ``word_ids()`` (``words_as_input = true``);
and for WikiANN also ``text, spaced``: the text with a space after every token, as the
corpora wrote WikiANN before CJK text was kept as written. Then a few docs whose pieces differ,
before and after.
"""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import spacy
import typer
from spacy.tokens import Doc
from spacy_transformers.align import get_alignment_via_offset_mapping
from spacy_transformers.data_classes import WordpieceBatch
from spacy_transformers.layers.transformer_model import huggingface_tokenize
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from spacy_dlfa.corpora.ud import conllu_to_docs
from spacy_dlfa.corpora.wikiann import wikiann_to_docs
from spacy_dlfa.layers.words import word_pieces

# English and the 10 targets of each task (project.yml); ja WikiANN is not in the mirror.
CORPORA = tuple(f"wikiann/{lang}/test-{lang}.tsv" for lang in "en de es fr nl pt ru zh ar hi tr".split()) + tuple(
    f"ud/{tb}/{tb}-ud-test.conllu" for tb in "en_ewt de_gsd fr_gsd es_gsd zh_gsd ru_gsd ja_gsd fi_tdt tr_imst ar_pud hi_pud".split())


def pieces_by_token(tokenizer, doc: Doc, words: bool) -> Tuple[List[str], List[List[int]]]:
    """The doc's wordpieces (no padding) and, per token, the indices of its pieces."""
    if words:
        wordpieces, align = word_pieces(tokenizer, [doc[:]])
    else:
        encoding = huggingface_tokenize(tokenizer, [doc.text])
        wordpieces = WordpieceBatch.from_batch_encoding(encoding)
        align = get_alignment_via_offset_mapping([doc[:]], encoding["offset_mapping"])
    rows, start = [], 0
    for length in align.lengths.tolist():
        rows.append(align.dataXd[start:start + length].tolist())
        start += length
    return wordpieces.strings[0][: wordpieces.lengths[0]], rows


def n_sharing(rows: Sequence[List[int]]) -> Tuple[int, int]:
    """How many tokens have a piece that another token also has, and how many have no
    piece of their own (no piece at all, or only shared ones: merged with a neighbour)."""
    owners: Dict[int, int] = {}
    for row in rows:
        for piece in row:
            owners[piece] = owners.get(piece, 0) + 1
    shared = sum(any(owners[piece] > 1 for piece in row) for row in rows)
    return shared, sum(all(owners[piece] > 1 for piece in row) for row in rows)


def spaced(doc: Doc) -> Doc:
    return Doc(doc.vocab, words=[t.text for t in doc], spaces=[True] * len(doc))


def main(
    model: Path = typer.Argument(..., help="Hugging Face model folder"),
    data: Path = typer.Option(Path("../shared/data"), help="The data mirror"),
    limit: int = typer.Option(500, help="First N sentences per corpus"),
    examples: int = typer.Option(2, help="Docs whose pieces differ, shown per corpus"),
) -> None:
    hf_logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    vocab = spacy.blank("xx").vocab
    print(f"{model.name}, first {limit} sentences: tokens sharing a wordpiece with another token / tokens "
          "without a piece of their own / pieces per token")
    print("| corpus | text, spaced | text | words |\n|---|---:|---:|---:|")
    shown: List[str] = []
    for name in CORPORA:
        path = data / name
        convert = wikiann_to_docs if path.suffix == ".tsv" else conllu_to_docs
        docs, _ = convert(path, vocab, limit=limit)
        views = {"text": (docs, False), "words": (docs, True)}
        if path.suffix == ".tsv":
            views = {"text, spaced": ([spaced(doc) for doc in docs], False), **views}
        cells = {}
        n_tokens = sum(len(doc) for doc in docs)
        results = {}
        for view, (view_docs, words) in views.items():
            results[view] = [pieces_by_token(tokenizer, doc, words) for doc in view_docs]
            counts = [n_sharing(rows) for _, rows in results[view]]
            n_shared, n_no_own = sum(c[0] for c in counts), sum(c[1] for c in counts)
            n_pieces = sum(len(pieces) - 2 for pieces, _ in results[view])
            cells[view] = f"{n_shared / n_tokens:.1%} / {n_no_own / n_tokens:.1%} / {n_pieces / n_tokens:.2f}"
        print(f"| {path.stem} | {cells.get('text, spaced', '')} | {cells['text']} | {cells['words']} |")
        differing = [i for i, ((a, _), (b, _)) in enumerate(zip(results["text"], results["words"])) if a != b]
        for i in differing[:examples]:
            lines = [f"{path.stem} #{i}: {docs[i].text!r}"]
            for view in views:
                lines.append(f"  {view:>12}: {' '.join(results[view][i][0][1:-1])}")
            shown.append("\n".join(lines))
    print("\n" + "\n".join(shown))


if __name__ == "__main__":
    typer.run(main)
