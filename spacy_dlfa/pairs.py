"""Sentence pairs as one Doc: ``A`` + the model's pair separator + ``B``.

The separator is what the model's own tokenizer puts between the two texts of
``tokenizer(a, b)`` (``[SEP]`` for BERT, ``</s></s>`` for XLM-R). Glued to
``A`` and followed by a space, it makes the Doc's text tokenize to exactly the
ids of ``tokenizer(a, b)``; for BERT-style tokenizers the transformer also
gives ``B`` segment id 1 (see ``layers/transformer.py``).
"""
from typing import List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc


def pair_separator(tokenizer) -> List[str]:
    """The special tokens between the two texts of ``tokenizer(a, b)``."""
    ids = tokenizer("a", "b")["input_ids"]
    # not the unknown token: "a" and "b" are [UNK] in a vocabulary without them (the tiny test BERT's)
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    inner = [i for i in ids[1:-1] if i in special]
    if not inner:
        raise ValueError(f"{type(tokenizer).__name__} puts no special token between the texts of a pair: it cannot encode sentence pairs")
    return tokenizer.convert_ids_to_tokens(inner)


def pair_segment_separator_id(tokenizer) -> Optional[int]:
    """The separator id when ``tokenizer(a, b)`` gives B segment id 1 (BERT style), else None."""
    encoded = tokenizer("a", "b")
    if not any(encoded.get("token_type_ids") or []):
        return None
    return tokenizer.sep_token_id


def transformer_tokenizer(nlp: Language, name: str = "transformer"):
    tokenizer = nlp.get_pipe(name).model.tokenizer
    if tokenizer is None:
        raise ValueError(f"the '{name}' component has no tokenizer yet: initialise or load the pipeline first")
    return tokenizer


def make_pair_doc(nlp: Language, text_a: str, text_b: str, separator: Optional[Sequence[str]] = None) -> Doc:
    """One Doc holding both texts (their own tokenization and spacing), joined
    by the model's separator (taken from the pipeline's transformer unless given)."""
    if separator is None:
        separator = pair_separator(transformer_tokenizer(nlp))
    first, second = nlp.make_doc(text_a.strip()), nlp.make_doc(text_b.strip())
    if not len(first) or not len(second):
        raise ValueError(f"both texts of a pair need at least one token, got {text_a!r} and {text_b!r}")
    words = [t.text for t in first] + list(separator) + [t.text for t in second]
    spaces = [bool(t.whitespace_) for t in first][:-1] + [False] + [False] * (len(separator) - 1) + [True]
    spaces += [bool(t.whitespace_) for t in second][:-1] + [False]
    return Doc(nlp.vocab, words=words, spaces=spaces)


def split_pair(doc: Doc, separator: Sequence[str]) -> Tuple[str, str]:
    """The two texts of a pair Doc."""
    words = [t.text for t in doc]
    n = len(separator)
    for i in range(1, len(words) - n):
        if words[i : i + n] == list(separator):
            return doc[:i].text, doc[i + n :].text
    raise ValueError(f"no pair separator {''.join(separator)!r} in the doc {doc.text[:80]!r}")
