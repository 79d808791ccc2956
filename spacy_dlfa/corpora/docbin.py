"""Writing converted docs: ``write_docbin`` (atomic), and ``convert_corpus``, the ``corpus``
command: one WikiANN TSV or CoNLL-U file -> DocBin, with its counts printed and checked."""

import os
import uuid
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

import spacy
from spacy.tokens import Doc, DocBin
from wasabi import msg

from .common import Counts, check_count
from .ud import conllu_to_docs
from .wikiann import wikiann_to_docs

KINDS = ("wikiann", "ud")


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
    check_count("docs written (one per sentence read)", counts["sentences"], written["docs"])
    check_count("tokens written", counts["tokens"], written["tokens"])
    _report(kind, counts)
    msg.good(f"wrote {written['docs']:,} docs ({written['tokens']:,} tokens) to {output_path}")
    return {**counts, "output": str(output_path)}
