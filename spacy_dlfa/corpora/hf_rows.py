"""Hugging Face dataset rows: the token and label columns of a row, checked, and class ids
mapped to names; errors name the 1-based row."""

import numbers
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from .common import CorpusFormatError


def row_list(row: Mapping[str, Any], key: str, number: int, source: str) -> List[Any]:
    """The column `key` of a row as a list; a string is not a list of tokens."""
    value = row[key]
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise CorpusFormatError(source, number, f"expected a list in '{key}', got {type(value).__name__}", unit="row")
    return list(value)


def row_columns(row: Mapping[str, Any], number: int, source: str, label_key: str) -> Tuple[List[str], List[Any]]:
    """The ``tokens`` and `label_key` columns of row `number`: lists of equal length, non-empty string tokens."""
    if not isinstance(row, Mapping):
        raise CorpusFormatError(source, number, f"expected a row with 'tokens' and '{label_key}', "
                                f"got {type(row).__name__}", unit="row")
    if "tokens" not in row or label_key not in row:
        raise CorpusFormatError(source, number, f"expected a row with 'tokens' and '{label_key}'", unit="row")
    tokens, labels = row_list(row, "tokens", number, source), row_list(row, label_key, number, source)
    if len(tokens) != len(labels):
        raise CorpusFormatError(source, number, f"expected as many '{label_key}' as 'tokens', got "
                                f"{len(labels)} and {len(tokens)}", unit="row")
    if not tokens:
        raise CorpusFormatError(source, number, "expected at least one token, got none", unit="row")
    for token in tokens:
        if not isinstance(token, str) or not token.strip():
            raise CorpusFormatError(source, number, f"expected non-empty string tokens, got {token!r}", unit="row")
    return tokens, labels


def class_name(names: Sequence[str], class_id: Any, number: int, source: str, key: str) -> str:
    """The name of an integer class id of column `key` (ids index `names`)."""
    if isinstance(class_id, bool) or not isinstance(class_id, numbers.Integral) or not 0 <= class_id < len(names):
        raise CorpusFormatError(source, number, f"expected integer '{key}' ids in 0..{len(names) - 1}, "
                                f"got {class_id!r}", unit="row")
    return names[int(class_id)]


def load_hf_dataset(name: str, config: Optional[str], split: str) -> Any:
    """``datasets.load_dataset(name, config, split=split)``: for online use only,
    e.g. ``load_hf_dataset("unimelb-nlp/wikiann", "de", "validation")``; feed the
    result to ``wikiann_rows_to_docs``, ``ud_rows_to_docs`` or ``pair_rows_to_docs``."""
    import datasets  # heavy import, only when used

    return datasets.load_dataset(name, config, split=split)
