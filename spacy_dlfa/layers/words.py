"""The transformer's input as the doc's tokens, not its text (``words_as_input``).

spacy-transformers tokenizes each span's *text* and aligns the wordpieces to
the spaCy tokens by character offsets. Where the text has no space between two
tokens (Chinese and Japanese as written; UD's syntactic words, e.g. French
``du`` kept as ``de le`` with the text ``dele``), the tokenizer merges
characters of several tokens into one wordpiece (``北京``, ``dele``), and those
tokens then share one vector. Here the Hugging Face fast tokenizer gets each
span's tokens as pre-tokenized words (``is_split_into_words=True``) and the
alignment comes from ``BatchEncoding.word_ids()``: no wordpiece crosses a token
boundary, every token gets pieces of its own whether or not a space precedes
it, and the doc's text is never changed.

* SentencePiece tokenizers put ``▁`` before every word (``▁北 ▁京``, ``▁Hello ▁,``),
  as they do after a space; WordPiece starts every word with a piece without ``##``.
  With ``spaces_as_written`` the space marker goes only where the text has
  whitespace before the token, or the span starts (``▁北 京``, ``▁Hello ,``), as
  when the text itself is tokenized: the pieces then differ from the text's
  only where a piece would cross a token boundary. This needs a pre-tokenizer
  whose prefix space can be switched off (SentencePiece's ``Metaspace``,
  byte-level BPE) or that has none (WordPiece's, where nothing changes).
* Whitespace tokens (``token.is_space``) are not passed to the tokenizer: they
  get no wordpieces, i.e. an empty alignment row and a zero vector after
  pooling, as spacy-transformers gives every token without pieces (so do
  tokens the tokenizer drops, e.g. control characters for BERT).
* The alignment is built per span (strided spans of long docs: a token in two
  overlapping spans aligns to its pieces in both, as with text input), then
  spacy-transformers' ``truncate_oversize_splits`` drops the pieces past the
  model's maximum length exactly as it does for text input.
* Special tokens written as tokens (the pair separator of
  ``spacy_dlfa.pairs``: ``[SEP]``, ``</s> </s>``) are recognised by the
  tokenizer inside each word and align to those tokens.
"""
import copy
import weakref
from typing import Callable, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span, Token
from spacy_transformers.align import get_token_positions
from spacy_transformers.data_classes import FullTransformerBatch, WordpieceBatch
from spacy_transformers.truncate import truncate_oversize_splits
from spacy_transformers.util import maybe_flush_pytorch_cache
from thinc.api import Model
from thinc.types import Ragged
from transformers import BatchEncoding, PreTrainedTokenizerFast

WORDS_SETTING = "words_as_input"
SPACES_SETTING = "spaces_as_written"
# A tokenizer whose backend adds no space marker of its own, per tokenizer (made once: copying the vocabulary is slow).
_UNPREFIXED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def span_words(span: Span) -> List[Token]:
    """The tokens of a span that the transformer sees as words: all but whitespace tokens."""
    return [token for token in span if not token.is_space]


def spaced_before(tokens: Sequence[Token]) -> List[bool]:
    """Whether whitespace precedes each token in its doc's text; the first token of
    the list counts as spaced, as the start of a text does."""
    return [i == 0 or bool(token.i and (token.doc[token.i - 1].whitespace_ or token.doc[token.i - 1].is_space))
            for i, token in enumerate(tokens)]


def unprefixed_tokenizer(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """A shallow copy of `tokenizer` whose pre-tokenizer adds no space marker to a
    word: a word then gets ``▁`` (or ``Ġ``) only from a space written before it."""
    if tokenizer in _UNPREFIXED:
        return _UNPREFIXED[tokenizer]
    from tokenizers import pre_tokenizers

    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    pre = backend.pre_tokenizer
    if isinstance(pre, pre_tokenizers.Metaspace):
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=pre.replacement, prepend_scheme="never", split=pre.split)
    elif isinstance(pre, pre_tokenizers.ByteLevel):
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=pre.trim_offsets,
                                                         use_regex=pre.use_regex)
    elif not isinstance(pre, (pre_tokenizers.BertPreTokenizer, pre_tokenizers.Whitespace)):
        raise ValueError(f"{SPACES_SETTING} = true: {type(tokenizer).__name__} has the pre-tokenizer "
                         f"{type(pre).__name__}, whose space marker cannot be switched off (supported: Metaspace, "
                         f"ByteLevel, BertPreTokenizer, Whitespace); set {SPACES_SETTING} = false")
    unprefixed = copy.copy(tokenizer)
    unprefixed._tokenizer = backend
    _UNPREFIXED[tokenizer] = unprefixed
    return unprefixed


def tokenize_words(tokenizer, words: Sequence[Sequence[str]],
                   spaces: Optional[Sequence[Sequence[bool]]] = None) -> BatchEncoding:
    """``tokenizer(words, is_split_into_words=True)`` padded to the longest, as NumPy
    arrays, plus the piece strings and pad token that ``WordpieceBatch`` reads.
    With `spaces` (whether whitespace precedes each word), a word gets a space
    marker only where its entry is true (``spaces_as_written``)."""
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise ValueError(
            f"{WORDS_SETTING} = true needs a fast Hugging Face tokenizer (for word_ids()), "
            f"got {type(tokenizer).__name__}: set use_fast = true in the transformer's "
            f"tokenizer_config, or {WORDS_SETTING} = false to tokenize the text"
        )
    if spaces is not None:
        tokenizer = unprefixed_tokenizer(tokenizer)
        words = [[" " + word if spaced else word for word, spaced in zip(span, span_spaces)]
                 for span, span_spaces in zip(words, spaces)]
    try:
        encoding = tokenizer(
            [list(span) for span in words],
            is_split_into_words=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="np",
            return_token_type_ids=None,  # the model's default, as spacy-transformers
            padding="longest",
        )
    except (AssertionError, ValueError) as error:
        if "add_prefix_space" not in str(error):
            raise
        raise ValueError(
            f"{WORDS_SETTING} = true: {type(tokenizer).__name__} takes pre-tokenized words only with "
            "add_prefix_space: set tokenizer_config = {\"use_fast\": true, \"add_prefix_space\": true}"
        ) from None
    encoding["input_texts"] = [tokenizer.convert_ids_to_tokens(ids) for ids in encoding["input_ids"]]
    encoding["pad_token"] = tokenizer.pad_token
    return encoding


def word_alignment(spans: Sequence[Span], span_tokens: Sequence[Sequence[Token]], encoding: BatchEncoding) -> Ragged:
    """For every distinct token of `spans` (in spacy-transformers' order), the rows of
    the flattened (spans x padded length) wordpieces whose word it is."""
    positions = get_token_positions(list(spans))
    aligned: List[List[int]] = [[] for _ in range(len(positions))]
    width = encoding["input_ids"].shape[1]
    for i, tokens in enumerate(span_tokens):
        for j, word in enumerate(encoding.word_ids(i)):
            if word is not None:
                aligned[positions[tokens[word]]].append(i * width + j)
    flat = [row for rows in aligned for row in rows]  # rows grow with i and j: already sorted
    return Ragged(numpy.asarray(flat, dtype="i"), numpy.asarray([len(rows) for rows in aligned], dtype="i"))


def word_pieces(tokenizer, spans: Sequence[Span], spaces_as_written: bool = False) -> Tuple[WordpieceBatch, Ragged]:
    """The wordpieces of the spans' tokens and their alignment, truncated to the
    tokenizer's ``model_max_length`` as spacy-transformers truncates."""
    span_tokens = [span_words(span) for span in spans]
    spaces = [spaced_before(tokens) for tokens in span_tokens] if spaces_as_written else None
    encoding = tokenize_words(tokenizer, [[token.text for token in tokens] for tokens in span_tokens], spaces)
    wordpieces = WordpieceBatch.from_batch_encoding(encoding)
    align = word_alignment(spans, span_tokens, encoding)
    return truncate_oversize_splits(wordpieces, align, tokenizer.model_max_length)


def words_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    """spacy-transformers' ``TransformerModel`` forward pass with ``word_pieces`` in
    place of tokenizing each span's text."""
    nested_spans = model.attrs["get_spans"](docs)
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    if not flat_spans:  # no tokens in any doc: no transformer call (the tokenizer would make one row of [])
        return FullTransformerBatch.empty(len(docs)), lambda d_output: docs
    maybe_flush_pytorch_cache(chance=model.attrs.get("flush_cache_chance", 0))
    wordpieces, align = word_pieces(model.tokenizer, flat_spans, bool(model.attrs.get(SPACES_SETTING)))
    model_output, backprop_tensors = model.layers[0](wordpieces, is_train)
    output = FullTransformerBatch(spans=nested_spans, wordpieces=wordpieces, model_output=model_output, align=align)

    def backprop(d_output: FullTransformerBatch) -> List[Doc]:
        backprop_tensors(d_output.model_output)
        return docs

    return output, backprop
