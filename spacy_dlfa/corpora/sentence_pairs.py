"""
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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from ..pairs import make_pair_doc
from .common import CorpusFormatError, Counts, numbered_lines, take_limit
from .hf_rows import class_name


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
    for number, line in numbered_lines(path):
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
    taken, truncated = take_limit(made, limit)  # one pair at a time: the first bad line is the one named
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
    return Pair(*texts, class_name(scheme.labels, row["label"], number, source, "label"), number)


def pair_rows_to_docs(rows: Iterable[Mapping[str, Any]], nlp: Language, separator: Sequence[str],
                      scheme: PairScheme, limit: Optional[int] = None, source: str = "pair rows"
                      ) -> Tuple[List[Doc], Counts]:
    """Docs from Hugging Face rows: ``facebook/xnli`` (``premise``, ``hypothesis``,
    ``label`` 0..2) or ``google-research-datasets/paws-x`` (``sentence1``,
    ``sentence2``, ``label`` 0/1). Errors name the 1-based row."""
    rows_taken, truncated = take_limit(rows, limit)
    pairs = [_row_pair(row, number, scheme, source) for number, row in enumerate(rows_taken, 1)]
    docs, counts = pairs_to_docs(pairs, nlp, separator, scheme.labels, None, source, unit="row")
    return docs, {**counts, "limit": limit, "truncated": truncated}
