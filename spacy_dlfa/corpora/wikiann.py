"""WikiANN NER (XTREME PAN-X TSV, ``token<TAB>tag``, blank line between sentences):
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
"""

from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from .common import CorpusFormatError, Counts, Sentence, VocabLike, check_count, line_blocks, single_spaces, take_limit
from .hf_rows import class_name, row_columns

# WikiANN / PAN-X labels in the order of the integer ids of the Hugging Face
# dataset `unimelb-nlp/wikiann` (ClassLabel of `ner_tags`).
NER_LABELS: Tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


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
    for block in line_blocks(path):
        words, tags = [], []
        for number, line in block:
            token, tag = _parse_wikiann_line(path, number, line, lang_prefix)
            words.append(token)
            tags.append(tag)
        yield Sentence(words, tags, single_spaces(words), line=block[0][0])


def _ner_docs(nlp_or_vocab: VocabLike, sentences: List[Sentence]) -> Tuple[List[Doc], Counts]:
    """Docs with entities from IOB2 sentences, repairing stray I- tags."""
    docs, n_repaired, n_entities = [], 0, 0
    labels = {label[2:]: 0 for label in NER_LABELS if label != "O"}
    for sent in sentences:
        tags, repaired = repair_iob(sent.labels)
        n_repaired += repaired
        doc = sent.to_doc(nlp_or_vocab, ents=tags)
        for tag in tags:
            if tag.startswith("B-"):
                labels[tag[2:]] += 1
                n_entities += 1
        docs.append(doc)
    check_count("entities", n_entities, sum(len(doc.ents) for doc in docs))
    counts = {"sentences": len(docs), "tokens": sum(len(doc) for doc in docs), "entities": n_entities,
              "entities_by_label": labels, "repaired_stray_I": n_repaired}
    return docs, counts


def wikiann_to_docs(path: Union[str, Path], nlp_or_vocab: VocabLike, limit: Optional[int] = None,
                    lang_prefix: Optional[str] = None) -> Tuple[List[Doc], Counts]:
    """Docs (one per sentence, gold tokens, entities set) from a WikiANN TSV file,
    with counts; `limit` keeps the first N sentences."""
    sentences, truncated = take_limit(read_wikiann_tsv(path, lang_prefix), limit)
    docs, counts = _ner_docs(nlp_or_vocab, sentences)
    return docs, {"source": str(path), **counts, "limit": limit, "truncated": truncated}


def wikiann_rows_to_docs(rows: Iterable[Mapping[str, Any]], nlp_or_vocab: VocabLike, limit: Optional[int] = None,
                         source: str = "wikiann rows") -> Tuple[List[Doc], Counts]:
    """Docs from Hugging Face `unimelb-nlp/wikiann` rows (``tokens`` and integer
    ``ner_tags``, ids into ``NER_LABELS``). Errors name the 1-based row."""
    sentences = []
    rows_taken, truncated = take_limit(rows, limit)
    for number, row in enumerate(rows_taken, 1):
        tokens, tag_ids = row_columns(row, number, source, "ner_tags")
        tags = [class_name(NER_LABELS, tag_id, number, source, "ner_tags") for tag_id in tag_ids]
        sentences.append(Sentence(tokens, tags, single_spaces(tokens), line=number))
    docs, counts = _ner_docs(nlp_or_vocab, sentences)
    return docs, {"source": source, **counts, "limit": limit, "truncated": truncated}
