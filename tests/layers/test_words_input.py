"""words_as_input: the transformer's tokenizer gets each span's tokens as words, so every
spaCy token has wordpieces of its own whatever the spacing of the text."""
from typing import List

import numpy
import pytest
import spacy
import torch
from conftest import REPO
from spacy.tokens import Doc
from spacy.util import load_config
from spacy_transformers.span_getters import configure_get_doc_spans, configure_strided_spans
from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerFast

from spacy_dlfa.architectures import build_transformer_model
from spacy_dlfa.layers.transformer import pair_token_types
from spacy_dlfa.layers.words import SPACES_SETTING, WORDS_SETTING, tokenize_words, word_pieces
from spacy_dlfa.pairs import make_pair_doc

HANZI = list("北京是中国")
ONE_PIECE_WORDS = ["Paris", "Merkel", "visited", "Berlin", "Madrid", "in", "."]  # one piece each for the tiny BERT


@pytest.fixture(scope="module")
def sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """An XLM-R-style tokenizer (Unigram, Metaspace ``▁``, ``<s> A </s></s> B </s>``) whose
    vocabulary merges 北京 and 是中国, as multilingual-e5's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    special = ["<s>", "<pad>", "</s>", "<unk>"]
    pieces = ["▁", *HANZI, "北京", "是中国", "▁Paris", "▁de", "▁le", "de", "le", "dele", "▁dele", "."]
    vocab = [(piece, 0.0) for piece in special] + [(piece, -1.0 if len(piece) > 1 else -5.0) for piece in pieces]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", pad_token="<pad>", unk_token="<unk>", model_max_length=32)


@pytest.fixture(scope="module")
def bert_tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def transformer(tiny_bert, words_as_input: bool, get_spans=None):
    model = build_transformer_model(str(tiny_bert), get_spans or configure_strided_spans(24, 20),
                                    tokenizer_config={"use_fast": True}, words_as_input=words_as_input)
    model.initialize()
    return model


def rows(align) -> List[List[int]]:
    """The wordpiece rows of every token of a ragged alignment."""
    starts = numpy.concatenate([[0], numpy.cumsum(align.lengths)])
    return [align.dataXd[start:end].tolist() for start, end in zip(starts, starts[1:])]


def test_hanzi_get_one_piece_each_with_or_without_spaces(sentencepiece_tokenizer):
    vocab = spacy.blank("xx").vocab
    as_written = Doc(vocab, words=HANZI, spaces=[False] * 5)
    spaced = Doc(vocab, words=HANZI, spaces=[True] * 5)
    assert sentencepiece_tokenizer(as_written.text).tokens() == ["<s>", "▁", "北京", "是中国", "</s>"]  # what text input gets
    for doc in (as_written, spaced):
        wordpieces, align = word_pieces(sentencepiece_tokenizer, [doc[:]])
        assert wordpieces.strings == [["<s>", "▁", "北", "▁", "京", "▁", "是", "▁", "中", "▁", "国", "</s>"]]
        assert rows(align) == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    assert as_written.text == "北京是中国"


def test_syntactic_words_without_space_are_not_merged(sentencepiece_tokenizer):
    doc = Doc(spacy.blank("xx").vocab, words=["Paris", "de", "le", "."], spaces=[True, False, False, False])
    assert doc.text == "Paris dele."
    assert sentencepiece_tokenizer(doc.text).tokens() == ["<s>", "▁Paris", "▁dele", ".", "</s>"]
    wordpieces, align = word_pieces(sentencepiece_tokenizer, [doc[:]])
    assert wordpieces.strings == [["<s>", "▁Paris", "▁de", "▁le", "▁", ".", "</s>"]]
    assert rows(align) == [[1], [2], [3], [4, 5]]


def test_wordpiece_words_start_without_hashes(bert_tokenizer):
    doc = Doc(spacy.blank("xx").vocab, words=["de", "la", "Paris", "."], spaces=[False, True, False, False])
    assert bert_tokenizer(doc.text).tokens() == ["[CLS]", "de", "##l", "##a", "Paris", ".", "[SEP]"]
    wordpieces, align = word_pieces(bert_tokenizer, [doc[:]])
    assert wordpieces.strings == [["[CLS]", "de", "la", "Paris", ".", "[SEP]"]]
    assert rows(align) == [[1], [2], [3], [4]]


def test_whitespace_tokens_get_no_pieces(bert_tokenizer):
    vocab = spacy.blank("xx").vocab
    doc = Doc(vocab, words=["Paris", "\n", "Berlin", "  ", "\t"], spaces=[True, False, True, False, False])
    wordpieces, align = word_pieces(bert_tokenizer, [doc[:], Doc(vocab, words=["\n\n"])[:]])
    assert wordpieces.strings == [["[CLS]", "Paris", "Berlin", "[SEP]"], ["[CLS]", "[SEP]", "[PAD]", "[PAD]"]]
    assert rows(align) == [[1], [], [2], [], [], []]


def test_long_doc_aligns_every_span_of_its_own(bert_tokenizer):
    doc = Doc(spacy.blank("xx").vocab, words=[ONE_PIECE_WORDS[i % 7] for i in range(70)])
    spans = configure_strided_spans(24, 20)([doc])[0]
    assert [(span.start, span.end) for span in spans] == [(0, 24), (20, 44), (40, 64), (60, 70)]
    wordpieces, align = word_pieces(bert_tokenizer, spans)
    width = wordpieces.input_ids.shape[1]
    assert width == 26 and wordpieces.lengths == [26, 26, 26, 12]
    expected = [[s * width + 1 + i - span.start for s, span in enumerate(spans) if span.start <= i < span.end] for i in range(70)]
    assert rows(align) == expected
    assert rows(align)[22] == [23, width + 3]  # token 22 lies in the first two spans


def test_words_and_text_agree_where_the_text_is_spaced_and_are_truncated_alike(tiny_bert):
    """A 100-token span is longer than the tiny model's 64 positions: spacy-transformers keeps the
    first 64 pieces ([CLS] and 63 words, no [SEP]); words_as_input truncates exactly alike."""
    doc = Doc(spacy.blank("xx").vocab, words=[ONE_PIECE_WORDS[i % 7] for i in range(100)])
    doc_spans = configure_get_doc_spans()
    by_text = transformer(tiny_bert, False, doc_spans).predict([doc])
    by_words = transformer(tiny_bert, True, doc_spans).predict([doc])
    for batch in (by_text, by_words):
        assert batch.wordpieces.input_ids.shape == (1, 64) and batch.wordpieces.strings[0][0] == "[CLS]"
        assert rows(batch.align) == [[i + 1] for i in range(63)] + [[]] * 37
        assert batch.model_output.last_hidden_state.shape[:2] == (1, 64)
    assert by_text.wordpieces.strings == by_words.wordpieces.strings
    assert numpy.array_equal(by_text.wordpieces.input_ids, by_words.wordpieces.input_ids)
    numpy.testing.assert_allclose(by_text.model_output.last_hidden_state.numpy(),
                                  by_words.model_output.last_hidden_state.numpy(), atol=1e-6)


def test_pair_doc_gets_the_ids_and_segments_of_the_tokenizer(bert_tokenizer, sentencepiece_tokenizer, tiny_bert):
    nlp = spacy.blank("xx")
    a, b = "Angela Merkel visited Paris .", "Le musée du Louvre est à Paris ."
    doc = make_pair_doc(nlp, a, b, ["[SEP]"])
    wordpieces, align = word_pieces(bert_tokenizer, [doc[:]])
    expected = bert_tokenizer(a, b)
    assert wordpieces.input_ids[0].tolist() == expected["input_ids"]
    separator = [t.i for t in doc if t.text == "[SEP]"]
    assert rows(align)[separator[0]] == [separator[0] + 1]
    types = pair_token_types(torch.as_tensor(wordpieces.input_ids), bert_tokenizer.sep_token_id)
    assert types[0].tolist() == expected["token_type_ids"]
    xlmr_doc = make_pair_doc(nlp, "Paris", "de le", ["</s>", "</s>"])
    assert [t.text for t in xlmr_doc] == ["Paris", "</s>", "</s>", "de", "le"]
    wordpieces, align = word_pieces(sentencepiece_tokenizer, [xlmr_doc[:]])
    assert wordpieces.strings == [["<s>", "▁Paris", "</s>", "</s>", "▁de", "▁le", "</s>"]]
    assert rows(align) == [[1], [2], [3], [4], [5]]


def test_empty_docs_in_and_alone(tiny_bert):
    model = transformer(tiny_bert, True)
    vocab = spacy.blank("xx").vocab
    empty, doc = Doc(vocab, words=[]), Doc(vocab, words=["Paris", "visited"])
    batch = model.predict([empty, doc, empty])
    assert [len(data.align.lengths) for data in batch.doc_data] == [0, 2, 0]
    assert batch.doc_data[1].model_output.last_hidden_state.shape[:2] == (1, 4)
    alone = model.predict([empty, empty])
    assert [len(data.align.lengths) for data in alone.doc_data] == [0, 0]


def test_slow_tokenizer_is_a_clear_error(bert_tokenizer, tmp_path):
    vocab = sorted(bert_tokenizer.get_vocab(), key=bert_tokenizer.get_vocab().get)
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    with pytest.raises(ValueError, match="words_as_input = true needs a fast Hugging Face tokenizer"):
        tokenize_words(BertTokenizer(str(tmp_path / "vocab.txt")), [["Paris"]])


def test_setting_defaults_to_text_and_the_shipped_configs_turn_it_on(tiny_bert):
    assert transformer(tiny_bert, False).attrs[WORDS_SETTING] is False
    default = build_transformer_model(str(tiny_bert), configure_strided_spans(24, 20))
    assert default.attrs[WORDS_SETTING] is False and default.copy().attrs[WORDS_SETTING] is False
    assert transformer(tiny_bert, True).copy().attrs[WORDS_SETTING] is True
    configs = sorted((REPO / "configs").glob("*.cfg"))
    assert len(configs) == 8
    for path in configs:
        settings = load_config(path)["components"]["transformer"]["model"]
        assert settings[WORDS_SETTING] is True and SPACES_SETTING in settings, path.name


def test_doc_vectors_differ_only_where_text_merges_tokens(tiny_bert):
    """Text input splits `dela` (two tokens, no space) into de ##l ##a; word input gives it the pieces
    and the vectors of `de la`."""
    vocab = spacy.blank("xx").vocab
    spaced = Doc(vocab, words=["Paris", "de", "la", "."], spaces=[True, True, False, False])
    merged = Doc(vocab, words=["Paris", "de", "la", "."], spaces=[True, False, False, False])
    by_text, by_words = transformer(tiny_bert, False), transformer(tiny_bert, True)
    (text_spaced,), (text_merged,) = (by_text.predict([doc]).doc_data for doc in (spaced, merged))
    (words_spaced,), (words_merged,) = (by_words.predict([doc]).doc_data for doc in (spaced, merged))
    assert text_merged.wordpieces.strings[0][:6] == ["[CLS]", "Paris", "de", "##l", "##a", "."]
    assert words_merged.wordpieces.strings == words_spaced.wordpieces.strings == text_spaced.wordpieces.strings
    numpy.testing.assert_allclose(words_merged.model_output.last_hidden_state,
                                  text_spaced.model_output.last_hidden_state, atol=1e-6)
    assert rows(words_merged.align) == rows(text_spaced.align) == [[1], [2], [3], [4]]


def test_saved_pipeline_keeps_its_setting_and_one_without_it_reads_text(tiny_bert, tmp_path, single_torch_thread):
    """A pipeline saved from the shipped config reads words after spacy.load (the setting is in its
    config and in the model's saved attrs); the same pipeline saved before the setting existed (in
    neither) reads the text, as it did."""
    from pipelines import train_tiny

    nlp, _ = train_tiny("tagger", tiny_bert, steps=1)
    nlp.to_disk(tmp_path / "new")
    merged = Doc(nlp.vocab, words=["Paris", "de", "la", "."], spaces=[True, False, False, False])
    loaded = spacy.load(tmp_path / "new")
    assert loaded.get_pipe("transformer").model.attrs[WORDS_SETTING] is True
    assert loaded(merged.copy())._.trf_data.wordpieces.strings[0] == ["[CLS]", "Paris", "de", "la", ".", "[SEP]"]
    config = (tmp_path / "new" / "config.cfg").read_text(encoding="utf8")
    assert config.count("words_as_input = true\n") == 1
    del nlp.get_pipe("transformer").model.attrs[WORDS_SETTING]  # as code before the setting saved it
    nlp.to_disk(tmp_path / "old")
    (tmp_path / "old" / "config.cfg").write_text(config.replace("words_as_input = true\n", ""), encoding="utf8")
    old = spacy.load(tmp_path / "old")
    assert old.get_pipe("transformer").model.attrs[WORDS_SETTING] is False
    assert old(merged.copy())._.trf_data.wordpieces.strings[0] == ["[CLS]", "Paris", "de", "##l", "##a", ".", "[SEP]"]


def spaced_pieces(tokenizer, doc: Doc) -> List[str]:
    wordpieces, _ = word_pieces(tokenizer, [doc[:]], spaces_as_written=True)
    return wordpieces.strings[0]


def test_spaces_as_written_marks_only_the_spaces_of_the_text(sentencepiece_tokenizer):
    vocab = spacy.blank("xx").vocab
    as_written = Doc(vocab, words=HANZI, spaces=[False] * 5)
    spaced = Doc(vocab, words=HANZI, spaces=[True] * 5)
    wordpieces, align = word_pieces(sentencepiece_tokenizer, [as_written[:]], spaces_as_written=True)
    assert wordpieces.strings == [["<s>", "▁", "北", "京", "是", "中", "国", "</s>"]]
    assert rows(align) == [[1, 2], [3], [4], [5], [6]]
    assert spaced_pieces(sentencepiece_tokenizer, spaced) == ["<s>", "▁", "北", "▁", "京", "▁", "是", "▁", "中", "▁", "国", "</s>"]
    french = Doc(vocab, words=["Paris", "de", "le", "."], spaces=[True, False, False, False])
    assert spaced_pieces(sentencepiece_tokenizer, french) == ["<s>", "▁Paris", "▁de", "le", ".", "</s>"]
    # A whitespace token is a space before the next token; the first token of every span is spaced.
    lines = Doc(vocab, words=["Paris", "\n", "de", "le"], spaces=[False, False, False, False])
    assert spaced_pieces(sentencepiece_tokenizer, lines) == ["<s>", "▁Paris", "▁de", "le", "</s>"]
    wordpieces, _ = word_pieces(sentencepiece_tokenizer, [french[1:3]], spaces_as_written=True)
    assert wordpieces.strings == [["<s>", "▁de", "le", "</s>"]]


def test_spaces_as_written_gives_the_text_pieces_where_no_piece_crosses_a_token(sentencepiece_tokenizer):
    """Where the text's own pieces end at token boundaries, words with their spaces as written get
    exactly the ids that tokenizing the text gives; without the setting they do not."""
    doc = Doc(spacy.blank("xx").vocab, words=["Paris", ".", "de", "le", "."], spaces=[False, True, True, False, False])
    assert doc.text == "Paris. de le."
    by_text = sentencepiece_tokenizer(doc.text)["input_ids"]
    by_words, _ = word_pieces(sentencepiece_tokenizer, [doc[:]], spaces_as_written=True)
    assert by_words.input_ids[0].tolist() == by_text
    every_word, _ = word_pieces(sentencepiece_tokenizer, [doc[:]])
    assert every_word.input_ids[0].tolist() != by_text


def test_spaces_as_written_changes_nothing_for_wordpiece(bert_tokenizer):
    doc = Doc(spacy.blank("xx").vocab, words=["de", "la", "Paris", "."], spaces=[False, True, False, False])
    assert spaced_pieces(bert_tokenizer, doc) == ["[CLS]", "de", "la", "Paris", ".", "[SEP]"]


def test_spaces_as_written_is_an_error_where_it_cannot_work(tiny_bert, sentencepiece_tokenizer):
    from tokenizers import pre_tokenizers

    with pytest.raises(ValueError, match="spaces_as_written = true needs words_as_input = true"):
        build_transformer_model(str(tiny_bert), configure_strided_spans(24, 20), spaces_as_written=True)
    odd = PreTrainedTokenizerFast(tokenizer_object=sentencepiece_tokenizer.backend_tokenizer, pad_token="<pad>")
    odd.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace()])
    with pytest.raises(ValueError, match="pre-tokenizer Sequence, whose space marker cannot be switched off"):
        tokenize_words(odd, [["Paris"]], [[True]])


def test_spaces_as_written_is_saved_with_the_model_and_absent_means_false(tiny_bert):
    model = build_transformer_model(str(tiny_bert), configure_strided_spans(24, 20), words_as_input=True,
                                    spaces_as_written=True)
    model.initialize()
    assert model.copy().attrs[SPACES_SETTING] is True
    assert transformer(tiny_bert, True).attrs[SPACES_SETTING] is False
    loaded = transformer(tiny_bert, True).from_bytes(model.to_bytes())
    assert loaded.attrs[SPACES_SETTING] is True
