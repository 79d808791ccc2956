"""A tokenizer for raw text in every script: spaCy's rules plus one token per CJK character.

``MultilingualTokenizer`` is spaCy's rule-based ``Tokenizer`` (with the ``xx``
rules in the shipped configs: prefixes, suffixes, infixes, special cases, URL
and token matches) followed by a second pass over the tokens:

* **one token per CJK ideograph and per kana**, as mBERT's basic tokenizer
  (``_tokenize_chinese_chars``) does for ideographs: CJK Unified Ideographs and
  all extensions (A to I), compatibility ideographs and their supplement,
  radicals, strokes, bopomofo, the enclosed and compatibility CJK symbols
  (``㈱``, ``㎡``) and ``々 〆 〇``. mBERT leaves kana to WordPiece; we split
  them too (hiragana, katakana, half-width katakana, kana supplements): the
  corpora's Japanese gold tokens are words of one or more characters (UD
  ja_gsd: ``これ``, ``示す``, ``まし``) or single characters (WikiANN ja), and a
  character never crosses a gold boundary, while a run of kana, such as
  ``これに``, crosses them all the time and then cannot be aligned to any gold
  token. Combining marks (voiced-sound marks, half-width ``ﾞ ﾟ``, variation
  selectors) stay with their character;
* **Hangul is not split**: Korean is written with spaces between words
  (eojeol), which the rules already split at; one token per syllable would be
  far finer than any Korean gold tokenization (and than mBERT);
* **CJK punctuation** (``、。「」『』【】〈〉（）！？：；，`` and the rest of the
  CJK symbols and punctuation, full-width, vertical and small forms) is one
  token per character, wherever it stands. The ideographic space U+3000 is
  whitespace, as in spaCy;
* what is left between those characters (Latin, digits, full-width digits and
  letters, other symbols) is tokenized by the rules again, so ``2008年`` gives
  ``2008 年`` and ``（iPhone）`` gives ``（ iPhone ）``. A run of full-width
  digits or letters (``２００８``, ``ＡＢＣ``) stays one token, like its ASCII
  form;
* **an emoji sequence is one token**: a base emoji with its modifiers (skin
  tones, variation selectors, tags, keycaps) and ZWJ joins (``👨‍👩‍👧``), and a
  regional-indicator flag pair (``🇩🇪``). spaCy's ``xx`` rules split these
  apart (``👨 ‍ 👩 ‍ 👧``, and ``👍🏻ok`` into ``👍 🏻ok``).

Text without any of these characters is tokenized by the rules alone.
``doc.text`` is always the input: inserted boundaries get no space, the last
piece of a split token keeps the token's whitespace. A token that is itself
a special case of the rules (``tokenizer.add_special_case("北京大学", ...)``)
is left whole, and the norms of the tokens that the second pass leaves whole
are kept.

The tokenizer serialises as spaCy's (the rules; the second pass has no
state), so a saved pipeline loads with ``spacy.load``; the registered name is
found through the ``spacy_tokenizers`` entry point, without ``--code``.
"""
import re
from typing import Callable, Dict, Iterable, Iterator, List, Set, Tuple

from spacy import util
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.util import registry

_IDEOGRAPHS = (
    "\u2e80-\u2fdf\u2ff0-\u2fff\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3100-\u312f\u3190-\u31ef"
    "\u3200-\u33ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\U00030000-\U000323af"
)
_KANA = "\u3041-\u3096\u309d-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9d\U0001aff0-\U0001b16f"
_CJK_PUNCT = (
    "\u3001-\u3004\u3008-\u3020\u3030-\u3037\u303c-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40"
    "\uff5b-\uff65\ufe10-\ufe19\ufe30-\ufe4f\ufe50-\ufe6b"
)
# Marks that belong to the character before them.
_ATTACHED = "\u0300-\u036f\u3099-\u309c\u302a-\u302f\uff9e\uff9f\ufe00-\ufe0f\U000e0100-\U000e01ef"
_CJK_CHAR = re.compile(f"[{_IDEOGRAPHS}{_KANA}{_CJK_PUNCT}][{_ATTACHED}]*")
_ENDS_WITH_CJK_CHAR = re.compile(f"[{_IDEOGRAPHS}{_KANA}{_CJK_PUNCT}][{_ATTACHED}]*$")

_EMOJI_BASE = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u25fe\u2600-\u27bf"
    "\u2934\u2935\u2b05-\u2b55\U0001f000-\U0001f1e5\U0001f200-\U0001faff"
)
_EMOJI_MODIFIER = "\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
_EMOJI_ONE = f"[{_EMOJI_BASE}][{_EMOJI_MODIFIER}]*"
_EMOJI = re.compile(
    f"[\U0001f1e6-\U0001f1ff]{{2}}|[0-9#*]\ufe0f?\u20e3|{_EMOJI_ONE}(?:\u200d{_EMOJI_ONE})*|[\U0001f1e6-\U0001f1ff]"
)
Span = Tuple[int, int]
# Any character that can make the second pass change something.
_SECOND_PASS = re.compile(f"[{_IDEOGRAPHS}{_KANA}{_CJK_PUNCT}{_EMOJI_BASE}\U0001f1e6-\U0001f1ff\u20e3\u200d]")


class MultilingualTokenizer(Tokenizer):
    """spaCy's rule-based tokenizer, then one token per CJK character and one
    per emoji sequence (see the module docstring). Constructed, serialised and
    pickled exactly as ``spacy.tokenizer.Tokenizer``."""

    def __call__(self, text: str) -> Doc:
        doc = super().__call__(text)
        if not _SECOND_PASS.search(text):
            return doc
        words: List[str] = []
        spaces: List[bool] = []
        norms: Dict[int, str] = {}  # index in the new doc -> norm that the rules gave the same token
        rules = self.rules
        for tokens in _chunks(doc):
            chunk = "".join(token.text for token in tokens)
            first_pass = _offsets(token.text for token in tokens)
            by_rules = {(start, end): token.norm_ for start, end, token in zip(first_pass, first_pass[1:], tokens)}
            bounds = self._second_pass_bounds(chunk, first_pass, [token.text in rules for token in tokens], by_rules)
            for start, end in zip(bounds, bounds[1:]):
                if (start, end) in by_rules:
                    norms[len(words)] = by_rules[(start, end)]
                words.append(chunk[start:end])
                spaces.append(False)
            spaces[-1] = bool(tokens[-1].whitespace_)
        if words == [token.text for token in doc]:
            return doc
        new = Doc(self.vocab, words=words, spaces=spaces)
        for i, norm in norms.items():
            new[i].norm_ = norm
        return new

    def _second_pass_bounds(self, chunk: str, first_pass: List[int], special: List[bool], by_rules: Dict[Span, str]) -> List[int]:
        """Token boundaries (character offsets, 0 and len included) inside a run of tokens without
        spaces; `special`: per token of the first pass, whether it is a special case (kept whole);
        `by_rules` (span -> norm) gets the tokens of the pieces that the rules tokenize again."""
        bounds: Set[int] = set(first_pass)
        inside: Set[int] = {i for start, end, keep in zip(first_pass, first_pass[1:], special) if keep for i in range(start + 1, end)}
        for match in _CJK_CHAR.finditer(chunk):
            bounds.update(match.span())
            inside.update(range(match.start() + 1, match.end()))
        ordered = sorted(bounds)
        for start, end in zip(ordered, ordered[1:]):
            piece = chunk[start:end]
            if (start, end) not in by_rules and not _CJK_CHAR.match(piece):
                again = super().__call__(piece)
                offsets = [start + offset for offset in _offsets(t.text for t in again)]
                bounds.update(offsets)
                by_rules.update({(a, b): t.norm_ for a, b, t in zip(offsets, offsets[1:], again)})
        for match in _EMOJI.finditer(chunk):
            bounds.update(match.span())
            inside.update(range(match.start() + 1, match.end()))
        return sorted(bounds - inside)

    def explain(self, text: str) -> List[Tuple[str, str]]:
        """``Tokenizer.explain`` for the tokens of this tokenizer: the rule's name where
        the rules made the token, ``CJK_CHAR``, ``EMOJI`` or ``RULES_RUN`` (a piece
        between CJK characters, retokenized by the rules) where the second pass did."""
        rules = super().explain(text)
        if not _SECOND_PASS.search(text):
            return rules
        by_span, cursor = {}, 0
        for name, substring in rules:
            start = text.index(substring, cursor)
            by_span[(start, start + len(substring))] = name
            cursor = start + len(substring)
        explained = []
        for token in MultilingualTokenizer.__call__(self, text):  # v1's tokens, also for the subclass
            if token.is_space:
                continue
            span = (token.idx, token.idx + len(token))
            if span in by_span:
                explained.append((by_span[span], token.text))
            elif _CJK_CHAR.fullmatch(token.text):
                explained.append(("CJK_CHAR", token.text))
            elif _EMOJI.fullmatch(token.text):
                explained.append(("EMOJI", token.text))
            else:
                explained.append(("RULES_RUN", token.text))
        return explained


_HYPHENS = "-\u2010\u2011\u2013"  # hyphen-minus, hyphen, non-breaking hyphen, en dash
_CLITIC = re.compile("['\u2019][a-z]{1,2}")


class WordJoiningTokenizer(MultilingualTokenizer):
    """``MultilingualTokenizer`` (v1's tokens), then three joins that cut text the way
    WikiANN's English training data is cut (benchmarks/raw_tokenization.py measures them):

    * a hyphen or en dash (``- \u2010 \u2011 \u2013``) between two letters or digits, with
      no space around it, stays inside the word: ``Haute-Saône``, ``Saint-Gilles-des-Marais``,
      ``1975-1976``, ``Mumbai\u2013Ahmedabad`` (the rules split them at the hyphen);
    * a run of one repeated punctuation mark or symbol is one token: ``**``, ``]]``, ``[[``,
      ``==``, ``!!`` (the rules give one token per mark), CJK punctuation excepted (one
      token per mark, as in v1);
    * a clitic written as a word of its own (an apostrophe and one or two lower-case
      letters between spaces: ``'s``, ``'re``, ``\u2019ll``) is one token (the rules cut the
      apostrophe off).

    CJK characters are never joined (one token each, as in v1), and ``doc.text`` is the
    input. Constructed, serialised and pickled exactly as ``spacy.tokenizer.Tokenizer``."""

    def __call__(self, text: str) -> Doc:
        doc = super().__call__(text)
        joins = _joined_boundaries(doc)
        if not joins:
            return doc
        words: List[str] = []
        spaces: List[bool] = []
        norms: Dict[int, str] = {}
        for token in doc:
            if token.i in joins:
                words[-1] += token.text
                norms.pop(len(words) - 1, None)
            else:
                norms[len(words)] = token.norm_
                words.append(token.text)
                spaces.append(False)
            spaces[-1] = bool(token.whitespace_)
        new = Doc(self.vocab, words=words, spaces=spaces)
        for i, norm in norms.items():
            new[i].norm_ = norm
        return new

    def explain(self, text: str) -> List[Tuple[str, str]]:
        """``MultilingualTokenizer.explain``, with ``JOINED`` for the tokens that the joins made."""
        first = [(t.idx, t.idx + len(t)) for t in MultilingualTokenizer.__call__(self, text) if not t.is_space]
        by_span = dict(zip(first, super().explain(text)))
        return [by_span.get((t.idx, t.idx + len(t)), ("JOINED", t.text)) for t in self(text) if not t.is_space]


def _word_char(char: str) -> bool:
    return char.isalnum() and not _CJK_CHAR.match(char)


def _repeated_mark(text: str) -> bool:
    return (len(set(text)) == 1 and not text[0].isalnum() and not text[0].isspace()
            and not _CJK_CHAR.match(text[0]) and not _EMOJI.match(text[0]))


def _joined_boundaries(doc: Doc) -> Set[int]:
    """Indices of the tokens that join the token before them (no whitespace between)."""
    joins: Set[int] = set()
    for tokens in _chunks(doc):
        if len(tokens) < 2:
            continue
        texts = [t.text for t in tokens]
        if len(tokens) == 2 and texts[0] in ("'", "\u2019") and _CLITIC.fullmatch(texts[0] + texts[1]):
            joins.add(tokens[1].i)
        for k in range(1, len(tokens)):
            left, right = texts[k - 1], texts[k]
            if _repeated_mark(left) and _repeated_mark(right) and left[0] == right[0]:
                joins.add(tokens[k].i)
            elif (right in _HYPHENS and len(right) == 1 and k + 1 < len(tokens)
                  and _word_char(left[-1]) and _word_char(texts[k + 1][0])):
                joins.update((tokens[k].i, tokens[k + 1].i))
    return joins


def cjk_written_together(left: str, right: str) -> bool:
    """Whether `left` ends and `right` starts with a character that this tokenizer makes a
    token of its own (a CJK ideograph, kana or CJK punctuation mark, with its attached
    marks): CJK text is written without a space there, and the tokenizer splits it there
    all the same. Hangul is not such a character (Korean puts spaces between words)."""
    return bool(_ENDS_WITH_CJK_CHAR.search(left)) and bool(_CJK_CHAR.match(right))


def _chunks(doc: Doc) -> Iterator[List]:
    """Maximal runs of tokens with no whitespace between them; a whitespace token is a run of its own."""
    run: List = []
    for token in doc:
        if token.is_space:
            if run:
                yield run
                run = []
            yield [token]
            continue
        run.append(token)
        if token.whitespace_:
            yield run
            run = []
    if run:
        yield run


def _offsets(texts: Iterable[str]) -> List[int]:
    offsets = [0]
    for text in texts:
        offsets.append(offsets[-1] + len(text))
    return offsets


@registry.tokenizers("spacy-dlfa.MultilingualTokenizer.v1")
def create_multilingual_tokenizer() -> Callable[[Language], MultilingualTokenizer]:
    """The tokenizer factory for ``[nlp.tokenizer]``: the language's rules (``xx`` in the
    shipped configs: prefixes, suffixes, infixes, special cases, token and URL
    matches, as ``spacy.Tokenizer.v1``), then one token per CJK ideograph, kana
    and CJK punctuation mark, and one per emoji sequence."""

    def tokenizer_factory(nlp: Language) -> MultilingualTokenizer:
        defaults = nlp.Defaults
        return MultilingualTokenizer(
            nlp.vocab,
            rules=defaults.tokenizer_exceptions,
            prefix_search=util.compile_prefix_regex(defaults.prefixes).search if defaults.prefixes else None,
            suffix_search=util.compile_suffix_regex(defaults.suffixes).search if defaults.suffixes else None,
            infix_finditer=util.compile_infix_regex(defaults.infixes).finditer if defaults.infixes else None,
            token_match=defaults.token_match,
            url_match=defaults.url_match,
        )

    return tokenizer_factory


@registry.tokenizers("spacy-dlfa.MultilingualTokenizer.v2")
def create_word_joining_tokenizer() -> Callable[[Language], WordJoiningTokenizer]:
    """The tokenizer factory for ``[nlp.tokenizer]``: ``spacy-dlfa.MultilingualTokenizer.v1``'s
    tokens (the language's rules, one token per CJK ideograph, kana and CJK punctuation
    mark, one per emoji sequence), then the joins of ``WordJoiningTokenizer``: a hyphen or
    en dash between letters or digits stays in the word, a run of one repeated
    punctuation mark is one token, a free-standing clitic (``'s``) is one token."""

    def tokenizer_factory(nlp: Language) -> WordJoiningTokenizer:
        rules = create_multilingual_tokenizer()(nlp)
        return WordJoiningTokenizer(
            nlp.vocab, rules=rules.rules, prefix_search=rules.prefix_search, suffix_search=rules.suffix_search,
            infix_finditer=rules.infix_finditer, token_match=rules.token_match, url_match=rules.url_match,
        )

    return tokenizer_factory
