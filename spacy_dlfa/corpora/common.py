"""What every corpus format shares: ``CorpusFormatError`` (file, 1-based line or row, what was
expected), the sentence record, numbered UTF-8 lines and blank-line blocks, the sentence limit,
spacing for corpora without spacing information, a doc's bare words and spaces, and the count check."""

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..tokenizer import cjk_written_together

Counts = Dict[str, Any]
VocabLike = Union[Vocab, Language]


class CorpusFormatError(ValueError):
    """Malformed corpus input: names the source, the 1-based line (or row) and
    what was expected there."""

    def __init__(self, source: Union[str, Path], line: int, expected: str, unit: str = "line"):
        self.source, self.line, self.expected = str(source), line, expected
        super().__init__(f"{source}, {unit} {line}: {expected}")



def bare(doc: Doc, vocab: Vocab) -> Doc:
    """The words and spaces of ``doc`` and nothing else: what a pipeline annotates."""
    return Doc(vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])

@dataclass
class Sentence:
    """One sentence as read from a corpus file: gold words and one label each
    (an IOB2 tag for WikiANN, a UPOS tag for UD)."""

    words: List[str]
    labels: List[str]
    spaces: List[bool]
    line: int  # the sentence's first line in the file (its row number for HF rows)
    multiword_tokens: int = 0
    empty_nodes: int = 0

    def to_doc(self, nlp_or_vocab: VocabLike, **annotations: Any) -> Doc:
        """The sentence as one Doc: its words and spaces, the first token starting the sentence,
        and `annotations` (``ents``, ``pos``, ``tags``: one per word)."""
        sent_starts = [True] + [False] * (len(self.words) - 1)
        return Doc(vocab_of(nlp_or_vocab), words=self.words, spaces=self.spaces, sent_starts=sent_starts, **annotations)


def vocab_of(nlp_or_vocab: VocabLike) -> Vocab:
    """The vocab of a pipeline, or the vocab itself."""
    return nlp_or_vocab.vocab if isinstance(nlp_or_vocab, Language) else nlp_or_vocab


def numbered_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """Yield (1-based line number, line without its line break); UTF-8 with an
    optional BOM; an undecodable line is a CorpusFormatError."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CorpusFormatError(path, number, f"expected UTF-8 text ({err.reason})") from None
            if number == 1:
                line = line.lstrip("\ufeff")
            yield number, line.rstrip("\r\n")


def line_blocks(path: Union[str, Path]) -> Iterator[List[Tuple[int, str]]]:
    """Group the numbered lines into blocks separated by blank lines (empty or
    whitespace only; a line with a tab is never blank)."""
    block: List[Tuple[int, str]] = []
    for number, line in numbered_lines(path):
        if line.strip() or "\t" in line:
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def take_limit(items: Iterable[Any], limit: Optional[int]) -> Tuple[List[Any], bool]:
    """The first `limit` items (all if None) and whether the limit cut the data
    (one item more is read to know)."""
    if limit is None:
        return list(items), False
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    taken = list(islice(items, limit + 1))
    return taken[:limit], len(taken) > limit


def single_spaces(words: Sequence[str]) -> List[bool]:
    """Spacing for corpora without spacing information: one space between words,
    none between CJK characters (see ``spacy_dlfa.corpora.wikiann``)."""
    return [not cjk_written_together(left, right) for left, right in zip(words, words[1:])] + [False] * bool(words)


def check_count(what: str, expected: int, got: int) -> None:
    """RuntimeError when what was written (`got`) differs from what was read (`expected`)."""
    if expected != got:
        raise RuntimeError(f"count mismatch for {what}: read {expected}, got {got}")
