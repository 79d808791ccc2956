"""Corpus converters: WikiANN TSV, UD CoNLL-U and Hugging Face rows -> spaCy DocBin.

Every converter builds one ``Doc`` per sentence with ``Doc(vocab, words=...,
spaces=...)`` from the corpus' own (gold) tokenization, sets the sentence start
(first token True, the others False) and returns the docs together with a dict
of counts. ``convert_corpus`` writes them to a ``.spacy`` file and prints the
counts with ``wasabi.msg``.

Gold tokenization: ``spacy train`` and ``spacy evaluate`` read these DocBins as
the reference docs, and the pipeline annotates copies of the same tokens, so
there is no retokenization and no token-alignment loss in the scores.

Nothing is dropped silently. Malformed input raises ``CorpusFormatError`` (file,
1-based line, what was expected). What is skipped on purpose (CoNLL-U
multiword-token range lines and empty nodes) or changed on purpose (a stray
WikiANN ``I-X`` read as the start of an entity) is counted and reported, and
``convert_corpus`` checks that the DocBin holds as many docs and tokens as were
read.

WikiANN (XTREME PAN-X TSV, ``token<TAB>tag``, blank line between sentences):
  * tags are IOB2 from ``NER_LABELS``; the files carry no spacing, so the words
    are joined by single spaces, except where CJK text is written without
    them: between a word ending and one starting with a CJK ideograph, kana or
    CJK punctuation mark (``spacy_dlfa.tokenizer.cjk_written_together``, the
    characters the raw-text tokenizer makes one token each). zh WikiANN, one
    character per token, so reads ``北京是中国`` as written; Latin letters and
    digits inside it keep their spaces (``路 2 1 1 號``: no language-specific
    guess), and so does Hangul (Korean is written with spaces between words,
    and its WikiANN tokens are words);
  * an ``I-X`` not preceded by ``B-X``/``I-X`` (about 480 per 10,000 sentences
    in zh) starts a new entity, as conlleval does, and is counted as repaired.
    In the mirror's zh files every one of them follows a ``#`` token (zh
    WikiANN is split into characters, with ``#`` tagged O for a space), so a
    name such as ``Jump#Festa#'06`` becomes three entities;
  * the mirror's files have no language prefixes (``en:Paris``): tokens such as
    ``bar:24`` (en) or ``at:1994`` (tr) are real tokens and are kept. Raw
    Rahimi-format files, where every token carries one, can be read with
    ``lang_prefix="en"``.

UD CoNLL-U, matching the default of ``spacy convert`` (one doc per sentence,
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
    differ per treebank). spaCy's converter would put the XPOS into ``tag_``.

Sentence pairs (XNLI, PAWS-X; XTREME TSV ``text_a<TAB>text_b<TAB>label``, one
pair a line, no header, no blank lines): one Doc per pair, made by
``spacy_dlfa.pairs.make_pair_doc`` (text A, the model's pair separator, text B;
so a pair DocBin is specific to one tokenizer family), with ``doc.cats``
one-hot over all the classes of the scheme. PAWS-X files write ``1`` for
``paraphrase`` and ``0`` for ``not_paraphrase`` (the ids of the Hugging Face
dataset); XNLI's class names are its file labels, in the order of the Hugging
Face ids (0 entailment, 1 neutral, 2 contradiction). A text that is empty, or
that holds a separator token (the model's tokenizer would read it as one), is
a ``CorpusFormatError``.
"""

import numbers
import os
import re
import uuid
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from wasabi import msg

from .pairs import make_pair_doc
from .tokenizer import cjk_written_together

# WikiANN / PAN-X labels in the order of the integer ids of the Hugging Face
# dataset `unimelb-nlp/wikiann` (ClassLabel of `ner_tags`).
NER_LABELS: Tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

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

KINDS = ("wikiann", "ud")
_INT = re.compile(r"[0-9]+")
_RANGE = re.compile(r"([0-9]+)-([0-9]+)")
_EMPTY_NODE = re.compile(r"[0-9]+\.[0-9]+")

Counts = Dict[str, Any]
VocabLike = Union[Vocab, Language]


class CorpusFormatError(ValueError):
    """Malformed corpus input: names the source, the 1-based line (or row) and
    what was expected there."""

    def __init__(self, source: Union[str, Path], line: int, expected: str, unit: str = "line"):
        self.source, self.line, self.expected = str(source), line, expected
        super().__init__(f"{source}, {unit} {line}: {expected}")


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


# --------------------------------------------------------------------------- #
# Shared helpers


def _vocab(nlp_or_vocab: VocabLike) -> Vocab:
    return nlp_or_vocab.vocab if isinstance(nlp_or_vocab, Language) else nlp_or_vocab


def _numbered_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
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


def _blocks(path: Union[str, Path]) -> Iterator[List[Tuple[int, str]]]:
    """Group the numbered lines into blocks separated by blank lines (empty or
    whitespace only; a line with a tab is never blank)."""
    block: List[Tuple[int, str]] = []
    for number, line in _numbered_lines(path):
        if line.strip() or "\t" in line:
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _take(items: Iterable[Any], limit: Optional[int]) -> Tuple[List[Any], bool]:
    """The first `limit` items (all if None) and whether the limit cut the data
    (one item more is read to know)."""
    if limit is None:
        return list(items), False
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    taken = list(islice(items, limit + 1))
    return taken[:limit], len(taken) > limit


def _sent_starts(n: int) -> List[bool]:
    return [True] + [False] * (n - 1)


def _single_spaces(words: Sequence[str]) -> List[bool]:
    """Spacing for corpora without spacing information: one space between words,
    none between CJK characters (see the module docstring)."""
    return [not cjk_written_together(left, right) for left, right in zip(words, words[1:])] + [False] * bool(words)


def _check_equal(what: str, expected: int, got: int) -> None:
    if expected != got:
        raise RuntimeError(f"count mismatch for {what}: read {expected}, got {got}")


# --------------------------------------------------------------------------- #
# WikiANN


def repair_iob(tags: Sequence[str]) -> Tuple[List[str], int]:
    """IOB2 tags with every stray ``I-X`` (not after ``B-X``/``I-X``) turned into
    ``B-X``, as conlleval reads them; returns the tags and the number repaired."""
    repaired, n_repaired, previous = [], 0, "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag, n_repaired = "B-" + tag[2:], n_repaired + 1
        repaired.append(tag)
        previous = tag
    return repaired, n_repaired


def _strip_prefix(path: Union[str, Path], number: int, token: str, lang_prefix: Optional[str]) -> str:
    if lang_prefix is None:
        return token
    prefix = lang_prefix + ":"
    if not token.startswith(prefix):
        raise CorpusFormatError(path, number, f"expected a token starting with {prefix!r}, got {token!r}")
    return token[len(prefix):]


def _parse_wikiann_line(path: Union[str, Path], number: int, line: str, lang_prefix: Optional[str]) -> Tuple[str, str]:
    columns = line.split("\t")
    if len(columns) != 2:
        raise CorpusFormatError(path, number, f"expected 2 tab-separated columns (token<TAB>tag), got {len(columns)}")
    token, tag = _strip_prefix(path, number, columns[0], lang_prefix), columns[1]
    if not token.strip():
        raise CorpusFormatError(path, number, "expected a non-empty token in column 1, got an empty token")
    if tag not in NER_LABELS:
        raise CorpusFormatError(path, number, f"unknown tag {tag!r}, expected one of {' '.join(NER_LABELS)}")
    return token, tag


def read_wikiann_tsv(path: Union[str, Path], lang_prefix: Optional[str] = None) -> Iterator[Sentence]:
    """Yield the sentences of a WikiANN ``token<TAB>tag`` file (tags as written,
    stray ``I-`` tags included; ``wikiann_to_docs`` repairs them)."""
    for block in _blocks(path):
        words, tags = [], []
        for number, line in block:
            token, tag = _parse_wikiann_line(path, number, line, lang_prefix)
            words.append(token)
            tags.append(tag)
        yield Sentence(words, tags, _single_spaces(words), line=block[0][0])


def _ner_docs(vocab: Vocab, sentences: List[Sentence]) -> Tuple[List[Doc], Counts]:
    """Docs with entities from IOB2 sentences, repairing stray I- tags."""
    docs, n_repaired, n_entities = [], 0, 0
    labels = {label[2:]: 0 for label in NER_LABELS if label != "O"}
    for sent in sentences:
        tags, repaired = repair_iob(sent.labels)
        n_repaired += repaired
        doc = Doc(vocab, words=sent.words, spaces=sent.spaces, ents=tags, sent_starts=_sent_starts(len(sent.words)))
        for tag in tags:
            if tag.startswith("B-"):
                labels[tag[2:]] += 1
                n_entities += 1
        docs.append(doc)
    _check_equal("entities", n_entities, sum(len(doc.ents) for doc in docs))
    counts = {"sentences": len(docs), "tokens": sum(len(doc) for doc in docs), "entities": n_entities,
              "entities_by_label": labels, "repaired_stray_I": n_repaired}
    return docs, counts


def wikiann_to_docs(path: Union[str, Path], nlp_or_vocab: VocabLike, limit: Optional[int] = None,
                    lang_prefix: Optional[str] = None) -> Tuple[List[Doc], Counts]:
    """Docs (one per sentence, gold tokens, entities set) from a WikiANN TSV file,
    with counts; `limit` keeps the first N sentences."""
    sentences, truncated = _take(read_wikiann_tsv(path, lang_prefix), limit)
    docs, counts = _ner_docs(_vocab(nlp_or_vocab), sentences)
    return docs, {"source": str(path), **counts, "limit": limit, "truncated": truncated}


def wikiann_rows_to_docs(rows: Iterable[Mapping[str, Any]], nlp_or_vocab: VocabLike, limit: Optional[int] = None,
                         source: str = "wikiann rows") -> Tuple[List[Doc], Counts]:
    """Docs from Hugging Face `unimelb-nlp/wikiann` rows (``tokens`` and integer
    ``ner_tags``, ids into ``NER_LABELS``). Errors name the 1-based row."""
    sentences = []
    rows_taken, truncated = _take(rows, limit)
    for number, row in enumerate(rows_taken, 1):
        tokens, tag_ids = _row_columns(row, number, source, "ner_tags")
        tags = [_class_name(NER_LABELS, tag_id, number, source, "ner_tags") for tag_id in tag_ids]
        sentences.append(Sentence(tokens, tags, _single_spaces(tokens), line=number))
    docs, counts = _ner_docs(_vocab(nlp_or_vocab), sentences)
    return docs, {"source": source, **counts, "limit": limit, "truncated": truncated}


# --------------------------------------------------------------------------- #
# Hugging Face rows


def _row_list(row: Mapping[str, Any], key: str, number: int, source: str) -> List[Any]:
    """The column `key` of a row as a list; a string is not a list of tokens."""
    value = row[key]
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise CorpusFormatError(source, number, f"expected a list in '{key}', got {type(value).__name__}", unit="row")
    return list(value)


def _row_columns(row: Mapping[str, Any], number: int, source: str, label_key: str) -> Tuple[List[str], List[Any]]:
    if not isinstance(row, Mapping):
        raise CorpusFormatError(source, number, f"expected a row with 'tokens' and '{label_key}', "
                                f"got {type(row).__name__}", unit="row")
    if "tokens" not in row or label_key not in row:
        raise CorpusFormatError(source, number, f"expected a row with 'tokens' and '{label_key}'", unit="row")
    tokens, labels = _row_list(row, "tokens", number, source), _row_list(row, label_key, number, source)
    if len(tokens) != len(labels):
        raise CorpusFormatError(source, number, f"expected as many '{label_key}' as 'tokens', got "
                                f"{len(labels)} and {len(tokens)}", unit="row")
    if not tokens:
        raise CorpusFormatError(source, number, "expected at least one token, got none", unit="row")
    for token in tokens:
        if not isinstance(token, str) or not token.strip():
            raise CorpusFormatError(source, number, f"expected non-empty string tokens, got {token!r}", unit="row")
    return tokens, labels


def _class_name(names: Sequence[str], class_id: Any, number: int, source: str, key: str) -> str:
    if isinstance(class_id, bool) or not isinstance(class_id, numbers.Integral) or not 0 <= class_id < len(names):
        raise CorpusFormatError(source, number, f"expected integer '{key}' ids in 0..{len(names) - 1}, "
                                f"got {class_id!r}", unit="row")
    return names[int(class_id)]


def _ud_row_sentence(row: Mapping[str, Any], number: int, source: str) -> Sentence:
    """Keep the syntactic words of one HF UD row: drop range rows (UPOS "_") and,
    when the row has a ``head`` column, empty nodes (head "None")."""
    tokens, upos_ids = _row_columns(row, number, source, "upos")
    heads = None if row.get("head") is None else _row_list(row, "head", number, source)
    if heads is not None and len(heads) != len(tokens):
        raise CorpusFormatError(source, number, f"expected as many 'head' as 'tokens', got {len(heads)} and "
                                f"{len(tokens)}", unit="row")
    words, tags, n_ranges, n_empty = [], [], 0, 0
    for i, (token, upos_id) in enumerate(zip(tokens, upos_ids)):
        tag = _class_name(HF_UD_UPOS, upos_id, number, source, "upos")
        if tag == "_":
            n_ranges += 1
        elif heads is not None and str(heads[i]) in ("None", "_"):
            n_empty += 1
        else:
            words.append(token)
            tags.append(tag)
    if not words:
        raise CorpusFormatError(source, number, "expected at least one word with a UPOS tag", unit="row")
    return Sentence(words, tags, _single_spaces(words), number, n_ranges, n_empty)


def ud_rows_to_docs(rows: Iterable[Mapping[str, Any]], nlp_or_vocab: VocabLike, limit: Optional[int] = None,
                    source: str = "universal_dependencies rows") -> Tuple[List[Doc], Counts]:
    """Docs from Hugging Face `universal_dependencies` rows (``tokens`` and integer
    ``upos``, ids into ``HF_UD_UPOS``). The rows hold no ids, so range rows are
    recognised by UPOS "_" and empty nodes by ``head`` "None" (without a
    ``head`` column they cannot be told apart and are kept); the rows keep no
    reliable spacing, so words are joined by single spaces (none between CJK
    characters, as for WikiANN)."""
    rows_taken, truncated = _take(rows, limit)
    sentences = [_ud_row_sentence(row, number, source) for number, row in enumerate(rows_taken, 1)]
    docs, counts = _pos_docs(_vocab(nlp_or_vocab), sentences)
    return docs, {"source": source, **counts, "limit": limit, "truncated": truncated}


def load_hf_dataset(name: str, config: Optional[str], split: str) -> Any:
    """``datasets.load_dataset(name, config, split=split)``: for online use only,
    e.g. ``load_hf_dataset("unimelb-nlp/wikiann", "de", "validation")``; feed the
    result to ``wikiann_rows_to_docs``, ``ud_rows_to_docs`` or ``pair_rows_to_docs``."""
    import datasets  # heavy import, only when used

    return datasets.load_dataset(name, config, split=split)


# --------------------------------------------------------------------------- #
# UD CoNLL-U


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
    for block in _blocks(path):
        yield _ConlluSentenceParser(path).parse(block)


def _pos_docs(vocab: Vocab, sentences: List[Sentence]) -> Tuple[List[Doc], Counts]:
    """Docs with ``pos_`` and ``tag_`` both set to the UPOS."""
    docs = [Doc(vocab, words=s.words, spaces=s.spaces, pos=s.labels, tags=s.labels,
                sent_starts=_sent_starts(len(s.words))) for s in sentences]
    tags = {tag: 0 for tag in UPOS_TAGS}
    for sent in sentences:
        for tag in sent.labels:
            tags[tag] += 1
    counts = {"sentences": len(docs), "tokens": sum(len(doc) for doc in docs),
              "multiword_tokens_skipped": sum(s.multiword_tokens for s in sentences),
              "empty_nodes_skipped": sum(s.empty_nodes for s in sentences), "tags_by_label": tags}
    _check_equal("tagged tokens", counts["tokens"], sum(tags.values()))
    return docs, counts


def conllu_to_docs(path: Union[str, Path], nlp_or_vocab: VocabLike, limit: Optional[int] = None
                   ) -> Tuple[List[Doc], Counts]:
    """Docs (one per sentence, gold words, UPOS in ``pos_`` and ``tag_``) from a
    CoNLL-U file, with counts; `limit` keeps the first N sentences."""
    sentences, truncated = _take(read_conllu(path), limit)
    docs, counts = _pos_docs(_vocab(nlp_or_vocab), sentences)
    return docs, {"source": str(path), **counts, "limit": limit, "truncated": truncated}


# --------------------------------------------------------------------------- #
# Sentence pairs (XNLI, PAWS-X)


@dataclass(frozen=True)
class PairScheme:
    """A sentence-pair corpus: its two text fields (Hugging Face column names),
    its class names (``doc.cats`` keys, in the order of the Hugging Face label
    ids) and the label each class has in its TSV files."""

    name: str
    fields: Tuple[str, str]
    labels: Tuple[str, ...]
    file_labels: Tuple[str, ...]


XNLI_LABELS: Tuple[str, ...] = ("entailment", "neutral", "contradiction")
PAWSX_LABELS: Tuple[str, ...] = ("not_paraphrase", "paraphrase")  # ids and TSV labels 0 and 1
XNLI = PairScheme("xnli", ("premise", "hypothesis"), XNLI_LABELS, XNLI_LABELS)
PAWSX = PairScheme("pawsx", ("sentence1", "sentence2"), PAWSX_LABELS, ("0", "1"))
PAIR_SCHEMES: Dict[str, PairScheme] = {scheme.name: scheme for scheme in (XNLI, PAWSX)}


class Pair(NamedTuple):
    text_a: str
    text_b: str
    label: str  # a class name of the scheme
    line: int  # 1-based line in the file (row number for HF rows)


def _check_pair_texts(source: Union[str, Path], number: int, texts: Sequence[Any], fields: Sequence[str],
                      unit: str) -> None:
    for column, (field, text) in enumerate(zip(fields, texts), 1):
        if not isinstance(text, str) or not text.strip():
            where = f"column {column}" if unit == "line" else f"'{field}'"
            raise CorpusFormatError(source, number, f"expected a non-empty {field} text in {where}, got {text!r}", unit)


def read_pair_tsv(path: Union[str, Path], scheme: PairScheme) -> Iterator[Pair]:
    """Yield the pairs of an XTREME ``text_a<TAB>text_b<TAB>label`` file, labels
    mapped to the scheme's class names."""
    layout = "<TAB>".join((*scheme.fields, "label"))
    allowed = " ".join(f"{f} ({c})" if f != c else f for f, c in zip(scheme.file_labels, scheme.labels))
    for number, line in _numbered_lines(path):
        columns = line.split("\t")
        if len(columns) != 3:
            raise CorpusFormatError(path, number, f"expected 3 tab-separated columns ({layout}), got {len(columns)}")
        _check_pair_texts(path, number, columns[:2], scheme.fields, "line")
        if columns[2] not in scheme.file_labels:
            raise CorpusFormatError(path, number, f"unknown label {columns[2]!r} in column 3, expected one of {allowed}")
        yield Pair(columns[0], columns[1], scheme.labels[scheme.file_labels.index(columns[2])], number)


def _pair_doc(nlp: Language, pair: Pair, separator: Sequence[str], labels: Sequence[str], source: str,
              unit: str) -> Doc:
    if pair.label not in labels:
        raise CorpusFormatError(source, pair.line, f"unknown label {pair.label!r}, expected one of {' '.join(labels)}", unit)
    _check_pair_texts(source, pair.line, pair[:2], ("first", "second"), unit)
    marker = next((token for token in separator for text in pair[:2] if token in text), None)
    if marker is not None:
        raise CorpusFormatError(source, pair.line, f"expected texts without the pair separator token {marker!r}", unit)
    try:
        doc = make_pair_doc(nlp, pair.text_a, pair.text_b, separator)
    except ValueError as err:
        raise CorpusFormatError(source, pair.line, f"expected two texts of at least one token each ({err})", unit) from None
    doc.cats = {label: float(label == pair.label) for label in labels}
    return doc


def pairs_to_docs(pairs: Iterable[Pair], nlp: Language, separator: Sequence[str], labels: Sequence[str],
                  limit: Optional[int] = None, source: str = "pairs", unit: str = "line") -> Tuple[List[Doc], Counts]:
    """One Doc per pair (``make_pair_doc`` with `separator`; ``doc.cats`` one-hot
    over all `labels`), with counts; `limit` keeps the first N pairs. Errors name
    `source` and the pair's line (or row, with ``unit="row"``). ``sentences`` in
    the counts is the number of docs (one per pair), as for the other converters."""
    made = ((pair.label, _pair_doc(nlp, pair, separator, labels, source, unit)) for pair in pairs)
    taken, truncated = _take(made, limit)  # one pair at a time: the first bad line is the one named
    docs = [doc for _, doc in taken]
    by_label = {label: 0 for label in labels}
    for label, _ in taken:
        by_label[label] += 1
    return docs, {"source": source, "sentences": len(docs), "pairs": len(docs), "tokens": sum(len(d) for d in docs),
                  "pairs_by_label": by_label, "limit": limit, "truncated": truncated}


def pair_tsv_to_docs(path: Union[str, Path], nlp: Language, separator: Sequence[str], scheme: PairScheme,
                     limit: Optional[int] = None) -> Tuple[List[Doc], Counts]:
    """Docs and counts from an XNLI or PAWS-X TSV file (see ``pairs_to_docs``)."""
    return pairs_to_docs(read_pair_tsv(path, scheme), nlp, separator, scheme.labels, limit, str(path))


def _row_pair(row: Any, number: int, scheme: PairScheme, source: str) -> Pair:
    keys = (*scheme.fields, "label")
    if not isinstance(row, Mapping) or any(key not in row for key in keys):
        raise CorpusFormatError(source, number, f"expected a row with {', '.join(map(repr, keys))}", unit="row")
    texts = [row[field] for field in scheme.fields]
    _check_pair_texts(source, number, texts, scheme.fields, "row")
    return Pair(*texts, _class_name(scheme.labels, row["label"], number, source, "label"), number)


def pair_rows_to_docs(rows: Iterable[Mapping[str, Any]], nlp: Language, separator: Sequence[str],
                      scheme: PairScheme, limit: Optional[int] = None, source: str = "pair rows"
                      ) -> Tuple[List[Doc], Counts]:
    """Docs from Hugging Face rows: ``facebook/xnli`` (``premise``, ``hypothesis``,
    ``label`` 0..2) or ``google-research-datasets/paws-x`` (``sentence1``,
    ``sentence2``, ``label`` 0/1). Errors name the 1-based row."""
    rows_taken, truncated = _take(rows, limit)
    pairs = [_row_pair(row, number, scheme, source) for number, row in enumerate(rows_taken, 1)]
    docs, counts = pairs_to_docs(pairs, nlp, separator, scheme.labels, None, source, unit="row")
    return docs, {**counts, "limit": limit, "truncated": truncated}


# --------------------------------------------------------------------------- #
# Output


def write_docbin(docs: Iterable[Doc], output_path: Union[str, Path]) -> Dict[str, int]:
    """Write the docs to a ``.spacy`` file atomically (a temporary file in the same
    folder, then renamed over `output_path`); returns the numbers of docs and tokens written."""
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    doc_bin = DocBin(docs=docs, store_user_data=False)
    data = doc_bin.to_bytes()
    tmp_path = output_path.with_name(f".{output_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp_path, "xb") as f:  # a new file, with the usual permissions
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, output_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return {"docs": len(doc_bin), "tokens": sum(len(tokens) for tokens in doc_bin.tokens)}


def _report(kind: str, counts: Counts) -> None:
    msg.info(f"{kind} {counts['source']}: {counts['sentences']:,} sentences, {counts['tokens']:,} tokens")
    if kind == "wikiann":
        labels = counts["entities_by_label"]
        msg.text(f"  {counts['entities']:,} entities: " + ", ".join(f"{k} {v:,}" for k, v in labels.items()))
        if counts["repaired_stray_I"]:
            msg.warn(f"  {counts['repaired_stray_I']:,} stray I- tags (no B-/I- of the same type before them) "
                     "read as the start of an entity, as conlleval does")
    else:
        msg.text("  UPOS: " + ", ".join(f"{k} {v:,}" for k, v in counts["tags_by_label"].items() if v))
        msg.text(f"  skipped as spacy convert does: {counts['multiword_tokens_skipped']:,} multiword-token "
                 f"range lines (their words are kept), {counts['empty_nodes_skipped']:,} empty nodes")
    if counts["truncated"]:
        msg.warn(f"  limit {counts['limit']:,}: kept the first {counts['sentences']:,} sentences; "
                 "the input has more (not converted)")


def convert_corpus(kind: str, input_path: Path, output_path: Path, limit: Optional[int] = None,
                   lang: str = "xx") -> Counts:
    """Convert a WikiANN TSV (kind "wikiann") or UD CoNLL-U (kind "ud") file into a
    DocBin at `output_path`; print and return the counts (``limit``: first N
    sentences only; ``lang``: the spaCy language of the vocab)."""
    converters = {"wikiann": wikiann_to_docs, "ud": conllu_to_docs}
    if kind not in converters:
        raise ValueError(f"unknown corpus kind {kind!r}, expected one of {', '.join(KINDS)}")
    docs, counts = converters[kind](input_path, spacy.blank(lang).vocab, limit=limit)
    written = write_docbin(docs, output_path)
    _check_equal("docs written (one per sentence read)", counts["sentences"], written["docs"])
    _check_equal("tokens written", counts["tokens"], written["tokens"])
    _report(kind, counts)
    msg.good(f"wrote {written['docs']:,} docs ({written['tokens']:,} tokens) to {output_path}")
    return {**counts, "output": str(output_path)}
