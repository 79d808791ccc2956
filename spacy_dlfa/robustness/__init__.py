"""Zero-shot adversarial robustness: perturb gold-annotated evaluation Docs with
their labels kept aligned, at random or by greedy black-box search.

* ``perturb``: word edits (character noise with a QWERTY model, diacritic
  stripping, case changes);
* ``lexicon``: code-switching lexicons;
* ``attacks``: doc-level attacks (``make_attack(name)`` for every name in
  ``ATTACKS``), random perturbation at a rate, rebuilt Docs;
* ``search``: doc-level objectives and the greedy adversarial search;
* ``run``: clean vs attacked scores per language (the ``attack`` command).
"""
from .attacks import (
    ATTACKS,
    Attack,
    Mention,
    Perturbed,
    doc_rng,
    editable_tokens,
    entity_swap_attack,
    make_attack,
    mention_pool,
    perturb,
    perturb_doc,
    perturb_docs,
    replace_words,
    separator_span,
    swap_entities,
    token_attack,
)
from .lexicon import Lexicon, load_lexicon, translate
from .perturb import (
    CHAR_EDITS,
    QWERTY_NEIGHBOURS,
    WORD_EDITS,
    WordEdit,
    char_noise,
    delete_char,
    insert_char,
    lowercase,
    random_case,
    strip_diacritics,
    substitute_char,
    swap_chars,
    titlecase,
    uppercase,
    valid_word,
)
from .run import AttackSettings, attack_corpus, attack_languages, pipeline_kind
from .search import (
    SearchResult,
    adversarial_search,
    entity_f1,
    example_score,
    gold_probability,
    objective,
    objective_scores,
    pair_accuracy,
    tag_accuracy,
)

__all__ = [
    "ATTACKS", "Attack", "Mention", "Perturbed", "doc_rng", "editable_tokens", "entity_swap_attack", "make_attack",
    "mention_pool", "perturb", "perturb_doc", "perturb_docs", "replace_words", "separator_span", "swap_entities",
    "token_attack", "Lexicon", "load_lexicon", "translate", "CHAR_EDITS", "QWERTY_NEIGHBOURS", "WORD_EDITS", "WordEdit",
    "char_noise", "delete_char", "insert_char", "lowercase", "random_case", "strip_diacritics", "substitute_char",
    "swap_chars", "titlecase", "uppercase", "valid_word", "AttackSettings", "attack_corpus", "attack_languages", "pipeline_kind",
    "SearchResult", "adversarial_search", "entity_f1", "example_score", "gold_probability", "objective",
    "objective_scores", "pair_accuracy", "tag_accuracy",
]
