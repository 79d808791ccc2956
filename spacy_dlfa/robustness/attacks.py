"""Doc-level attacks on gold-annotated evaluation Docs, labels kept aligned.

An ``Attack`` edits *sites* of a Doc: tokens for the token attacks (every name
in ``perturb.WORD_EDITS``, and ``code_switch``), entity mentions (indices into
``doc.ents``) for ``entity_swap``. Edits are proposed against the clean Doc and
applied all at once, so the site indices never shift.

* Token attacks keep the token count: the perturbed Doc has the clean Doc's
  spacing, and its tags, POS, morphology, lemmas, entity IOB/types and
  sentence starts copied by token index. Separator tokens of pair Docs are
  never sites; ``doc.cats`` is copied.
* ``entity_swap`` replaces mentions by mentions of the same type from a pool
  of Docs (e.g. other languages' dev data); the replacement may have another
  token count, so the Doc is rebuilt with each new token tracked to its source:
  kept tokens take their own annotation, a replacement's first token is B and
  the others I of the mention's type, and take the tags of the replaced
  mention's tokens by position (the last one's beyond its length).
* ``code_switch`` replaces non-entity words by a translation (see ``lexicon``).

Dependency arcs are not carried (the evaluation data of this project has none).
Randomness: ``random.Random(seed)`` per call (``doc_rng(seed, i)`` per doc of a
corpus), never the global state.
"""
import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc

from .lexicon import LexiconSource, load_lexicon, translate
from .perturb import WORD_EDITS, WordEdit, valid_word

ATTACKS: Tuple[str, ...] = (*WORD_EDITS, "entity_swap", "code_switch")

_CARRIED = ("TAG", "POS", "MORPH", "LEMMA", "SENT_START")
_PROBE = random.Random(0)  # applicability of an edit does not depend on the rng


@dataclass(frozen=True)
class Attack:
    """sites(doc): what can be edited; propose(doc, site, rng): an edit of that
    site of the clean doc, or None; apply(doc, {site: edit}): the perturbed doc."""

    name: str
    sites: Callable[[Doc], List[int]]
    propose: Callable[[Doc, int, random.Random], Optional[Any]]
    apply: Callable[[Doc, Mapping[int, Any]], Doc]


class Perturbed(NamedTuple):
    doc: Doc
    edits: int  # sites edited: tokens, or mentions for entity_swap


class Mention(NamedTuple):
    words: Tuple[str, ...]
    spaces: Tuple[bool, ...]  # after each word but the last


def doc_rng(seed: int, index: int) -> random.Random:
    """The rng of the `index`-th doc of a corpus: a doc's perturbation does not depend on the others."""
    return random.Random(f"{seed}/{index}")


def check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1] (the probability that a site is edited), got {rate}")


# --------------------------------------------------------------------------- #
# Rebuilding docs


def _attrs(doc: Doc) -> List[str]:
    attrs = [attr for attr in _CARRIED if doc.has_annotation(attr)]
    return attrs + ["ENT_IOB", "ENT_TYPE"] if doc.has_annotation("ENT_IOB") else attrs


def _array(doc: Doc, attrs: List[str]) -> numpy.ndarray:
    """(tokens, attrs), also for one attribute or none."""
    return doc.to_array(attrs).reshape(len(doc), len(attrs)) if attrs else numpy.zeros((len(doc), 0), dtype="uint64")


def _rebuild(doc: Doc, words: List[str], spaces: List[bool], attrs: List[str], array: numpy.ndarray) -> Doc:
    new = Doc(doc.vocab, words=words, spaces=spaces)
    if attrs and words:
        new.from_array(attrs, array)
    new.cats = dict(doc.cats)
    new.has_unknown_spaces = doc.has_unknown_spaces  # the scorer skips tokenization for those, as for the clean doc
    return new


def replace_words(doc: Doc, changes: Mapping[int, str]) -> Doc:
    """The doc with ``changes`` ({token index: new text}); everything else kept by index."""
    attrs = _attrs(doc)
    words = [changes.get(token.i, token.text) for token in doc]
    return _rebuild(doc, words, [bool(token.whitespace_) for token in doc], attrs, _array(doc, attrs))


def swap_entities(doc: Doc, changes: Mapping[int, Mention]) -> Doc:
    """The doc with ``changes`` ({index into doc.ents: new mention}), entities recomputed on the new tokens."""
    attrs = _attrs(doc)
    ents = doc.ents
    starts = {ents[k].start: k for k in changes}
    words: List[str] = []
    spaces: List[bool] = []
    rows: List[int] = []  # the token of `doc` whose annotation each new token takes
    inserted: List[Tuple[int, int, int]] = []  # (first new token, length, label)
    i = 0
    while i < len(doc):
        if i not in starts:
            words.append(doc[i].text)
            spaces.append(bool(doc[i].whitespace_))
            rows.append(i)
            i += 1
            continue
        ent, mention = ents[starts[i]], changes[starts[i]]
        inserted.append((len(words), len(mention.words), ent.label))
        words += mention.words
        spaces += [*mention.spaces, bool(doc[ent.end - 1].whitespace_)]
        rows += [min(ent.start + j, ent.end - 1) for j in range(len(mention.words))]
        i = ent.end
    return _rebuild(doc, words, spaces, attrs, _mark_mentions(_array(doc, attrs)[rows], attrs, inserted))


def _mark_mentions(array: numpy.ndarray, attrs: List[str], inserted: List[Tuple[int, int, int]]) -> numpy.ndarray:
    """B/I and the label on each inserted mention; no sentence start inside it."""
    column = {attr: attrs.index(attr) for attr in attrs}
    for start, length, label in inserted:
        array[start, column["ENT_IOB"]] = 3  # B
        array[start + 1 : start + length, column["ENT_IOB"]] = 1  # I
        array[start : start + length, column["ENT_TYPE"]] = label
        if "SENT_START" in column:
            inner = array[start + 1 : start + length, column["SENT_START"]]
            inner[inner != 0] = numpy.uint64(2**64 - 1)  # -1: not a sentence start
    return array


# --------------------------------------------------------------------------- #
# Sites


def separator_span(doc: Doc, separator: Sequence[str]) -> range:
    """The token indices of the first occurrence of the pair separator."""
    words, n = [token.text for token in doc], len(separator)
    for i in range(len(words) - n + 1):
        if words[i : i + n] == list(separator):
            return range(i, i + n)
    raise ValueError(f"no pair separator {''.join(separator)!r} in the doc {doc.text[:80]!r}")


def editable_tokens(doc: Doc, separator: Optional[Sequence[str]] = None) -> List[int]:
    """Every token but the pair separator's (when `separator` is given; an empty doc has none)."""
    protected = separator_span(doc, separator) if separator and len(doc) else range(0)
    return [i for i in range(len(doc)) if i not in protected]


def token_attack(name: str, edit: WordEdit, separator: Optional[Sequence[str]] = None, skip_entities: bool = False) -> Attack:
    """An attack editing single tokens with `edit` (never separator tokens, nor
    entity tokens with `skip_entities`); edits giving an invalid token are dropped."""
    forbidden = tuple(separator or ())

    def propose(doc: Doc, i: int, rng: random.Random) -> Optional[str]:
        edited = edit(doc[i].text, rng)
        return edited if edited is not None and valid_word(edited, doc[i].text, forbidden) else None

    def sites(doc: Doc) -> List[int]:
        return [i for i in editable_tokens(doc, separator)
                if not (skip_entities and doc[i].ent_iob_ in ("B", "I")) and propose(doc, i, _PROBE) is not None]

    return Attack(name, sites, propose, replace_words)


def mention_pool(docs: Iterable[Doc], forbidden: Sequence[str] = ()) -> Dict[str, List[Mention]]:
    """{label: distinct mentions} of the docs' entities, in order of appearance
    (mentions with a token that is not a valid word are left out)."""
    pool: Dict[str, Dict[Mention, None]] = {}
    for doc in docs:
        for ent in doc.ents:
            words = tuple(token.text for token in ent)
            if all(valid_word(word, "", forbidden) for word in words):
                mention = Mention(words, tuple(bool(token.whitespace_) for token in ent[:-1]))
                pool.setdefault(ent.label_, {})[mention] = None
    return {label: list(mentions) for label, mentions in pool.items()}


def entity_swap_attack(pool: Iterable[Doc], separator: Optional[Sequence[str]] = None) -> Attack:
    """Replace mentions by other mentions of the same type from the pool's docs."""
    mentions = mention_pool(pool, tuple(separator or ()))
    if not mentions:
        raise ValueError("entity_swap: the pool has no entity mentions")
    index = {label: {m.words: k for k, m in enumerate(ms)} for label, ms in mentions.items()}

    def propose(doc: Doc, k: int, rng: random.Random) -> Optional[Mention]:
        ent = doc.ents[k]
        options = mentions.get(ent.label_, [])
        own = index.get(ent.label_, {}).get(tuple(token.text for token in ent), len(options))
        others = len(options) - (own < len(options))
        if not others:
            return None
        j = rng.randrange(others)
        return options[j + 1 if j >= own else j]  # any option but its own text

    def sites(doc: Doc) -> List[int]:
        editable = set(editable_tokens(doc, separator))
        return [k for k, ent in enumerate(doc.ents)
                if all(i in editable for i in range(ent.start, ent.end)) and propose(doc, k, _PROBE) is not None]

    return Attack("entity_swap", sites, propose, swap_entities)


def make_attack(name: str, separator: Optional[Sequence[str]] = None, pool: Optional[Iterable[Doc]] = None,
                lexicon: Optional[LexiconSource] = None) -> Attack:
    """The attack called `name` (one of ATTACKS). `separator`: the pair
    separator tokens, never edited; `pool`: docs whose mentions entity_swap
    draws from; `lexicon`: code_switch's word -> translation(s) or TSV file."""
    if name in WORD_EDITS:
        return token_attack(name, WORD_EDITS[name], separator)
    if name == "entity_swap":
        if pool is None:
            raise ValueError("entity_swap needs a pool of docs with entities to draw replacements from")
        return entity_swap_attack(pool, separator)
    if name == "code_switch":
        if lexicon is None:
            raise ValueError("code_switch needs a lexicon (word -> translation, or a source<TAB>target file)")
        return token_attack(name, translate(load_lexicon(lexicon)), separator, skip_entities=True)
    raise ValueError(f"unknown attack {name!r}: use one of {', '.join(ATTACKS)}")


# --------------------------------------------------------------------------- #
# Random perturbation


def perturb(doc: Doc, attack: Attack, rate: float, rng: random.Random) -> Perturbed:
    """Edit each site with probability `rate` (the sites where the drawn edit
    turns out impossible stay as they are)."""
    check_rate(rate)
    changes = {}
    for site in attack.sites(doc):
        if rng.random() < rate:
            edit = attack.propose(doc, site, rng)
            if edit is not None:
                changes[site] = edit
    return Perturbed(attack.apply(doc, changes), len(changes))


def perturb_doc(doc: Doc, attack: Attack, rate: float, seed: int = 0) -> Doc:
    return perturb(doc, attack, rate, random.Random(seed)).doc


def perturb_docs(docs: Iterable[Doc], attack: Attack, rate: float, seed: int = 0) -> List[Doc]:
    return [perturb(doc, attack, rate, doc_rng(seed, i)).doc for i, doc in enumerate(docs)]
