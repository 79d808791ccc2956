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

* SentencePiece tokenizers put ``▁`` before every word (``▁北 ▁京``), as they
  do after a space; WordPiece starts every word with a piece without ``##``.
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
from typing import Callable, List, Sequence, Tuple

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


def span_words(span: Span) -> List[Token]:
    """The tokens of a span that the transformer sees as words: all but whitespace tokens."""
    return [token for token in span if not token.is_space]


def tokenize_words(tokenizer, words: Sequence[Sequence[str]]) -> BatchEncoding:
    """``tokenizer(words, is_split_into_words=True)`` padded to the longest, as NumPy
    arrays, plus the piece strings and pad token that ``WordpieceBatch`` reads."""
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise ValueError(
            f"{WORDS_SETTING} = true needs a fast Hugging Face tokenizer (for word_ids()), "
            f"got {type(tokenizer).__name__}: set use_fast = true in the transformer's "
            f"tokenizer_config, or {WORDS_SETTING} = false to tokenize the text"
        )
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


def word_pieces(tokenizer, spans: Sequence[Span]) -> Tuple[WordpieceBatch, Ragged]:
    """The wordpieces of the spans' tokens and their alignment, truncated to the
    tokenizer's ``model_max_length`` as spacy-transformers truncates."""
    span_tokens = [span_words(span) for span in spans]
    encoding = tokenize_words(tokenizer, [[token.text for token in tokens] for tokens in span_tokens])
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
    wordpieces, align = word_pieces(model.tokenizer, flat_spans)
    model_output, backprop_tensors = model.layers[0](wordpieces, is_train)
    output = FullTransformerBatch(spans=nested_spans, wordpieces=wordpieces, model_output=model_output, align=align)

    def backprop(d_output: FullTransformerBatch) -> List[Doc]:
        backprop_tensors(d_output.model_output)
        return docs

    return output, backprop
