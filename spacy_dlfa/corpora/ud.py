"""UD CoNLL-U, matching the default of ``spacy convert`` (one doc per sentence,
``spacy/training/converters/conllu_to_docs.py`` with ``merge_subtokens=False``):
  * multiword-token range lines (``1-2``) are skipped and their syntactic words
    kept as tokens; the words inside a range get no space after them, the last
    one takes ``SpaceAfter`` from the range line (so ``du`` = ``de le`` gives
    the text ``dele``). Empty nodes (``8.1``) are skipped;
  * ``SpaceAfter=No`` must be a whole MISC field. spaCy tests for the substring,
    so it also reads ``CorrectSpaceAfter=No`` (a typo annotation: the text has
    the space) as no space: on the mirror's 21 UD files that is the only
    difference from spaCy's converter in words, spacing and UPOS (2 tokens in
    fr_gsd dev). ``SpacesAfter``
    (other whitespace) is ignored, as by spaCy: a single space;
  * ``token.pos_`` is the UPOS and so is ``token.tag_``: spaCy's ``tagger``
    predicts ``tag_``, and this project tags UPOS across languages (XPOS sets
"""

import re
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from spacy.tokens import Doc

from .common import CorpusFormatError, Counts, Sentence, VocabLike, check_count, line_blocks, single_spaces, take_limit
from .hf_rows import class_name, row_columns, row_list

# The 17 UPOS tags of Universal Dependencies v2.
UPOS_TAGS: Tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)

# Class ids of `upos` in the Hugging Face `universal_dependencies` dataset. Source:
# the ClassLabel names in its loading script (huggingface/datasets,
# datasets/universal_dependencies/universal_dependencies.py, `_info`). The list
# has 18 entries: the 17 UPOS tags plus "_" (id 13), the UPOS of the
# multiword-token range lines that the script keeps as rows (it emits every
# line `conllu.parse_incr` yields: ranges, words and empty nodes).
HF_UD_UPOS: Tuple[str, ...] = (
    "NOUN", "PUNCT", "ADP", "NUM", "SYM", "SCONJ", "ADJ", "PART", "DET",
    "CCONJ", "PROPN", "PRON", "X", "_", "ADV", "INTJ", "VERB", "AUX",
)

_INT = re.compile(r"[0-9]+")
_RANGE = re.compile(r"([0-9]+)-([0-9]+)")
_EMPTY_NODE = re.compile(r"[0-9]+\.[0-9]+")


class _ConlluSentenceParser:
    """Parse the lines of one CoNLL-U sentence, validating ids and columns."""

    def __init__(self, path: Union[str, Path]):
        self.path = path
        self.words: List[str] = []
        self.upos: List[str] = []
        self.spaces: List[bool] = []
        self.range_end, self.range_space, self.range_line = 0, True, 0
        self.n_ranges = self.n_empty = 0

    def error(self, number: int, expected: str) -> CorpusFormatError:
        return CorpusFormatError(self.path, number, expected)

    def parse(self, block: List[Tuple[int, str]]) -> Sentence:
        for number, line in block:
            self.add_line(number, line)
        if not self.words:
            raise self.error(block[0][0], "expected word lines after the comments, got none")
        if self.range_end > len(self.words):
            raise self.error(self.range_line, f"bad range line: the range ends at word {self.range_end}, "
                             f"expected at most the sentence's last word {len(self.words)}")
        return Sentence(self.words, self.upos, self.spaces, block[0][0], self.n_ranges, self.n_empty)

    def add_line(self, number: int, line: str) -> None:
        if line.startswith("#"):
            if self.words or self.n_ranges or self.n_empty:
                raise self.error(number, "expected a word line, got a comment inside a sentence")
            return
        columns = line.split("\t")
        if len(columns) != 10:
            raise self.error(number, f"expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
        token_id = columns[0]
        if _EMPTY_NODE.fullmatch(token_id):
            self.n_empty += 1
        elif "-" in token_id:
            self.add_range(number, token_id, columns[9])
        else:
            self.add_word(number, token_id, columns[1], columns[3], columns[9])

    def add_range(self, number: int, token_id: str, misc: str) -> None:
        match = _RANGE.fullmatch(token_id)
        start = len(self.words) + 1
        if (not match or int(match.group(1)) != start or int(match.group(2)) <= start
                or self.range_end >= start):
            raise self.error(number, f"bad range line: expected a multiword-token range '{start}-M' "
                             f"with M > {start} outside any other range, got {token_id!r}")
        self.range_end, self.range_line = int(match.group(2)), number
        self.range_space = "SpaceAfter=No" not in misc.split("|")
        self.n_ranges += 1

    def add_word(self, number: int, token_id: str, form: str, upos: str, misc: str) -> None:
        expected_id = len(self.words) + 1
        if not _INT.fullmatch(token_id) or int(token_id) != expected_id:
            raise self.error(number, f"expected word ID {expected_id} (or a range 'N-M' or an empty node "
                             f"'N.M'), got {token_id!r}")
        if not form.strip():
            raise self.error(number, "expected a non-empty FORM (column 2), got an empty token")
        if upos not in UPOS_TAGS:
            raise self.error(number, f"unknown UPOS tag {upos!r} in column 4, expected one of {' '.join(UPOS_TAGS)}")
        if expected_id < self.range_end:
            space = False
        elif expected_id == self.range_end:
            space = self.range_space
        else:
            space = "SpaceAfter=No" not in misc.split("|")
        self.words.append(form)
        self.upos.append(upos)
        self.spaces.append(space)


def read_conllu(path: Union[str, Path]) -> Iterator[Sentence]:
    """Yield the sentences of a CoNLL-U file: syntactic words with UPOS and spacing,
    range lines and empty nodes counted and skipped (as ``spacy convert``)."""
    for block in line_blocks(path):
        yield _ConlluSentenceParser(path).parse(block)


def _pos_docs(nlp_or_vocab: VocabLike, sentences: List[Sentence]) -> Tuple[List[Doc], Counts]:
    """Docs with ``pos_`` and ``tag_`` both set to the UPOS."""
    docs = [s.to_doc(nlp_or_vocab, pos=s.labels, tags=s.labels) for s in sentences]
    tags = {tag: 0 for tag in UPOS_TAGS}
    for sent in sentences:
        for tag in sent.labels:
            tags[tag] += 1
    counts = {"sentences": len(docs), "tokens": sum(len(doc) for doc in docs),
              "multiword_tokens_skipped": sum(s.multiword_tokens for s in sentences),
              "empty_nodes_skipped": sum(s.empty_nodes for s in sentences), "tags_by_label": tags}
    check_count("tagged tokens", counts["tokens"], sum(tags.values()))
    return docs, counts


def conllu_to_docs(path: Union[str, Path], nlp_or_vocab: VocabLike, limit: Optional[int] = None
                   ) -> Tuple[List[Doc], Counts]:
    """Docs (one per sentence, gold words, UPOS in ``pos_`` and ``tag_``) from a
    CoNLL-U file, with counts; `limit` keeps the first N sentences."""
    sentences, truncated = take_limit(read_conllu(path), limit)
    docs, counts = _pos_docs(nlp_or_vocab, sentences)
    return docs, {"source": str(path), **counts, "limit": limit, "truncated": truncated}


def _ud_row_sentence(row: Mapping[str, Any], number: int, source: str) -> Sentence:
    """Keep the syntactic words of one HF UD row: drop range rows (UPOS "_") and,
    when the row has a ``head`` column, empty nodes (head "None")."""
    tokens, upos_ids = row_columns(row, number, source, "upos")
    heads = None if row.get("head") is None else row_list(row, "head", number, source)
    if heads is not None and len(heads) != len(tokens):
        raise CorpusFormatError(source, number, f"expected as many 'head' as 'tokens', got {len(heads)} and "
                                f"{len(tokens)}", unit="row")
    words, tags, n_ranges, n_empty = [], [], 0, 0
    for i, (token, upos_id) in enumerate(zip(tokens, upos_ids)):
        tag = class_name(HF_UD_UPOS, upos_id, number, source, "upos")
        if tag == "_":
            n_ranges += 1
        elif heads is not None and str(heads[i]) in ("None", "_"):
            n_empty += 1
        else:
            words.append(token)
            tags.append(tag)
    if not words:
        raise CorpusFormatError(source, number, "expected at least one word with a UPOS tag", unit="row")
    return Sentence(words, tags, single_spaces(words), number, n_ranges, n_empty)


def ud_rows_to_docs(rows: Iterable[Mapping[str, Any]], nlp_or_vocab: VocabLike, limit: Optional[int] = None,
                    source: str = "universal_dependencies rows") -> Tuple[List[Doc], Counts]:
    """Docs from Hugging Face `universal_dependencies` rows (``tokens`` and integer
    ``upos``, ids into ``HF_UD_UPOS``). The rows hold no ids, so range rows are
    recognised by UPOS "_" and empty nodes by ``head`` "None" (without a
    ``head`` column they cannot be told apart and are kept); the rows keep no
    reliable spacing, so words are joined by single spaces (none between CJK
    characters, as for WikiANN)."""
    rows_taken, truncated = take_limit(rows, limit)
    sentences = [_ud_row_sentence(row, number, source) for number, row in enumerate(rows_taken, 1)]
    docs, counts = _pos_docs(nlp_or_vocab, sentences)
    return docs, {"source": source, **counts, "limit": limit, "truncated": truncated}
