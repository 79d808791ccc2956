"""Per-word edits: character noise, diacritic stripping and case changes.

A word edit is ``(word, rng) -> Optional[str]``: the edited word, or None when
the word offers nothing to edit. Whether a word can be edited depends on the
word only, never on the rng (attacks find their sites by probing). Edits draw
from the ``random.Random`` they are given, never from the global state.

Character noise edits letters (``str.isalpha``) only: digits, punctuation and
combining marks are left alone, so a token without letters is never edited.

* keyboard neighbours: a Latin letter whose base letter (NFD, first code
  point) is on the QWERTY keyboard is replaced by, or has inserted next to it,
  one of the letters around that key (case kept, diacritic dropped);
* other letters (Cyrillic, Arabic, CJK, ``ß``, ...) have no keyboard model:
  they are replaced by another letter of the same script found in the same
  word (none: that letter is not substituted), and an insertion repeats such a
  letter or the letter itself. The script is the first word of the Unicode
  character name (LATIN, CYRILLIC, ARABIC, CJK, HIRAGANA, ...), a stand-in for
  the Unicode Script property that the standard library lacks.
"""
import random
import unicodedata
from typing import Callable, Dict, List, Optional, Sequence

WordEdit = Callable[[str, random.Random], Optional[str]]

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> Dict[str, str]:
    """Keys around each letter on a staggered QWERTY layout: left and right,
    the two keys above (same and next column), the two below (previous and same)."""
    rows = _QWERTY_ROWS
    neighbours = {}
    for r, row in enumerate(rows):
        for c, key in enumerate(row):
            spots = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
            neighbours[key] = "".join(rows[i][j] for i, j in spots if 0 <= i < len(rows) and 0 <= j < len(rows[i]))
    return neighbours


QWERTY_NEIGHBOURS: Dict[str, str] = _qwerty_neighbours()


def script(char: str) -> str:
    """The first word of the character's Unicode name ("" if it has none)."""
    return unicodedata.name(char, "").split(" ", 1)[0]


def valid_word(word: str, original: str = "", forbidden: Sequence[str] = ()) -> bool:
    """A usable replacement token: not empty, no whitespace, different from
    `original`, and holding none of the `forbidden` strings (pair separators)."""
    return bool(word) and word != original and not any(c.isspace() for c in word) and not any(f in word for f in forbidden)


def _letters(word: str) -> List[int]:
    return [i for i, char in enumerate(word) if char.isalpha()]


def _replacements(word: str, i: int) -> str:
    """Letters that may stand in for ``word[i]``: keyboard neighbours, or other
    letters of the same script in the word."""
    char = word[i]
    base = unicodedata.normalize("NFD", char)[0].lower()
    if base in QWERTY_NEIGHBOURS:
        near = QWERTY_NEIGHBOURS[base]
        return near.upper() if char.isupper() else near
    same = script(char)
    return "".join(dict.fromkeys(c for c in word if c.isalpha() and c != char and script(c) == same))


def swap_chars(word: str, rng: random.Random) -> Optional[str]:
    """Swap two different adjacent letters."""
    spots = [i for i in range(len(word) - 1) if word[i].isalpha() and word[i + 1].isalpha() and word[i] != word[i + 1]]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def delete_char(word: str, rng: random.Random) -> Optional[str]:
    """Delete a letter (never the word's only character)."""
    spots = _letters(word) if len(word) > 1 else []
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + word[i + 1 :]


def insert_char(word: str, rng: random.Random) -> Optional[str]:
    """Insert, before or after a letter, a keyboard neighbour of it (Latin), a
    letter of its script from the word, or the letter again."""
    spots = _letters(word)
    if not spots:
        return None
    i = rng.choice(spots)
    char = rng.choice(_replacements(word, i) + word[i])
    at = i + rng.randint(0, 1)
    return word[:at] + char + word[at:]


def substitute_char(word: str, rng: random.Random) -> Optional[str]:
    """Replace a letter by a keyboard neighbour (Latin) or by another letter of
    its script from the same word."""
    spots = [i for i in _letters(word) if _replacements(word, i)]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + rng.choice(_replacements(word, i)) + word[i + 1 :]


CHAR_EDITS: Dict[str, WordEdit] = {"swap": swap_chars, "delete": delete_char, "insert": insert_char, "substitute": substitute_char}


def char_noise(word: str, rng: random.Random) -> Optional[str]:
    """One character edit, the kind drawn at random among those that apply
    (a word with a letter always takes an insertion)."""
    for edit in rng.sample(list(CHAR_EDITS.values()), len(CHAR_EDITS)):
        edited = edit(word, rng)
        if edited is not None:
            return edited
    return None


def _changed(original: str, edited: str) -> Optional[str]:
    return edited if edited and edited != original else None


def strip_diacritics(word: str, rng: Optional[random.Random] = None) -> Optional[str]:
    """NFD, drop the combining marks (canonical combining class > 0), NFC."""
    decomposed = unicodedata.normalize("NFD", word)
    return _changed(word, unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c))))


def lowercase(word: str, rng: Optional[random.Random] = None) -> Optional[str]:
    return _changed(word, word.lower())


def uppercase(word: str, rng: Optional[random.Random] = None) -> Optional[str]:
    return _changed(word, word.upper())


def titlecase(word: str, rng: Optional[random.Random] = None) -> Optional[str]:
    """First character upper case, the rest lower case (``str.capitalize`` with
    ``upper`` for the first: "türkiye'nin" -> "Türkiye'nin", not "Türkiye'Nin")."""
    return _changed(word, word[:1].upper() + word[1:].lower())


def random_case(word: str, rng: random.Random) -> Optional[str]:
    """Swap the case of each cased character with probability 1/2 (of one of
    them if that changed nothing)."""
    cased = [i for i, char in enumerate(word) if char.lower() != char.upper()]
    if not cased:
        return None
    flips = {i for i in cased if rng.random() < 0.5} or {rng.choice(cased)}
    return _changed(word, "".join(char.swapcase() if i in flips else char for i, char in enumerate(word)))


# Attack name -> word edit: the token attacks that need no extra resources.
WORD_EDITS: Dict[str, WordEdit] = {
    "char_noise": char_noise,
    **{f"char_{name}": edit for name, edit in CHAR_EDITS.items()},
    "diacritics": strip_diacritics,
    "lowercase": lowercase,
    "uppercase": uppercase,
    "titlecase": titlecase,
    "random_case": random_case,
}
