"""How well each model's tokenizer covers each test language: word pieces per
word and the share of pieces that are the unknown token, side by side.

    python benchmarks/tokenizer_coverage.py assets/e5-small assets/e5-small-enpt --corpus-dir corpus/ner

Reads the first ``--limit`` docs of every ``test-<lang>.spacy`` in the corpus
folder and tokenizes their words as the transformer sees them (pre-split, no
special tokens). A vocabulary-pruned model such as ``e5-small-enpt`` is smaller
mostly because it dropped other scripts' pieces: on those languages it reads
unknown tokens, which no size comparison should forget.
"""
from pathlib import Path
from typing import List, Tuple

import spacy
import typer
from spacy.tokens import DocBin
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging


def sentence_words(path: Path, limit: int) -> List[List[str]]:
    docs = DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab)
    return [[token.text for token in doc] for _, doc in zip(range(limit), docs)]


def coverage(tokenizer, sentences: List[List[str]]) -> Tuple[float, float]:
    """(pieces per word, share of unknown pieces) over ``sentences``."""
    pieces = [tokenizer(words, is_split_into_words=True, add_special_tokens=False)["input_ids"] for words in sentences]
    total = sum(len(ids) for ids in pieces)
    unknown = sum(piece == tokenizer.unk_token_id for ids in pieces for piece in ids)
    words = sum(len(words) for words in sentences)
    return total / max(words, 1), unknown / max(total, 1)


def main(
    models: List[Path] = typer.Argument(..., help="Hugging Face model folders (their tokenizers are compared)"),
    corpus_dir: Path = typer.Option(Path("corpus/ner"), help="Folder with test-<lang>.spacy"),
    limit: int = typer.Option(500, help="First N docs per language"),
) -> None:
    hf_logging.set_verbosity_error()
    tokenizers = {model.name: AutoTokenizer.from_pretrained(str(model)) for model in models}
    paths = sorted(corpus_dir.glob("test-*.spacy"))
    if not paths:
        raise typer.BadParameter(f"no test-<lang>.spacy in {corpus_dir}")
    print(f"{corpus_dir}, first {limit} docs per language: pieces per word / unknown pieces")
    print("| language | " + " | ".join(tokenizers) + " |")
    print("|---|" + "---:|" * len(tokenizers))
    for path in paths:
        sentences = sentence_words(path, limit)
        cells = [f"{per_word:.2f} / {unknown:.1%}" for per_word, unknown in (coverage(t, sentences) for t in tokenizers.values())]
        print(f"| {path.stem[len('test-'):]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    typer.run(main)
