"""Code-switching lexicons: word -> translations, for users who have one.

A lexicon is a TSV file (``source<TAB>target``, one pair a line, UTF-8, blank
lines skipped; a word with several translations takes several lines, e.g. a
MUSE dictionary with its spaces turned into tabs) or a mapping from a word to
a translation or a list of them. Both sides must be single tokens (no
whitespace): a translation replaces one token, so tags stay aligned by index.
"""
import random
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

from ..corpora.common import CorpusFormatError, numbered_lines
from .perturb import WordEdit

Lexicon = Dict[str, Tuple[str, ...]]
LexiconSource = Union[str, Path, Mapping[str, Union[str, Sequence[str]]]]


def _single_token(word: object) -> bool:
    return isinstance(word, str) and bool(word) and not any(c.isspace() for c in word)


def _read_tsv(path: Path) -> Lexicon:
    if not path.is_file():
        raise FileNotFoundError(f"lexicon file {path} does not exist")
    lexicon: Dict[str, Dict[str, None]] = {}
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 2 or not all(_single_token(c) for c in columns):
            raise CorpusFormatError(path, number, f"expected 'source<TAB>target' with two single words, got {line!r}")
        lexicon.setdefault(columns[0], {})[columns[1]] = None
    return {word: tuple(targets) for word, targets in lexicon.items()}


def load_lexicon(source: LexiconSource) -> Lexicon:
    """``{word: translations}`` from a TSV file or a mapping (checked: single tokens)."""
    if isinstance(source, (str, Path)):
        return _read_tsv(Path(source))
    lexicon = {}
    for word, targets in source.items():
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
        if not _single_token(word) or not targets or not all(_single_token(t) for t in targets):
            raise ValueError(f"lexicon entry {word!r}: {targets!r}: expected a word and single-word translations")
        lexicon[word] = targets
    return lexicon


def _recase(target: str, like: str) -> str:
    if len(like) > 1 and like.isupper():
        return target.upper()
    return target[:1].upper() + target[1:] if like[:1].isupper() else target


def translate(lexicon: Lexicon) -> WordEdit:
    """A word edit replacing a word by one of its translations: the word's own
    entry, else its lower-cased entry with the word's case (Title, UPPER) put on."""

    def edit(word: str, rng: random.Random) -> Optional[str]:
        targets = [t for t in lexicon.get(word, ()) if t != word]
        if not targets:
            targets = [t for t in (_recase(t, word) for t in lexicon.get(word.lower(), ())) if t != word]
        return rng.choice(targets) if targets else None

    return edit
