"""spacy-dlfa.MultilingualTokenizer.v2: v1's tokens, then the joins that cut text as WikiANN's training data."""
import pickle

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_dlfa.tokenizer import MultilingualTokenizer, WordJoiningTokenizer

V1, V2 = "spacy-dlfa.MultilingualTokenizer.v1", "spacy-dlfa.MultilingualTokenizer.v2"


def blank(name):
    return spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": name}}})


@pytest.fixture(scope="module", name="nlp")
def v2_pipeline():
    return blank(V2)


def tokens(nlp, text):
    """The token texts; every token non-empty and the doc's text the input."""
    words = [t.text for t in nlp(text)]
    assert "".join(t.text_with_ws for t in nlp(text)) == text and all(words)
    return words


def test_hyphens_and_en_dashes_between_letters_or_digits_stay_in_the_word(nlp):
    text = "Liste des communes de la Haute-Saône (1975-1976), Saint-Gilles-des-Marais et Mumbai–Ahmedabad."
    assert tokens(blank(V1), text)[5:8] == ["Haute", "-", "Saône"]  # v1 splits them
    assert tokens(nlp, text) == [
        "Liste", "des", "communes", "de", "la", "Haute-Saône", "(", "1975-1976", ")", ",",
        "Saint-Gilles-des-Marais", "et", "Mumbai–Ahmedabad", ".",
    ]
    # not a hyphen between two words: kept apart as in v1
    assert tokens(nlp, "well- done, x -5, a - b, -word") == tokens(blank(V1), "well- done, x -5, a - b, -word")


def test_runs_of_one_repeated_mark_are_one_token(nlp):
    assert tokens(blank(V1), "** bold ]]")[:2] == ["*", "*"]
    assert tokens(nlp, "** bold ]] [[Link]] == Titel == !! ``") == [
        "**", "bold", "]]", "[[", "Link", "]]", "==", "Titel", "==", "!!", "``"]
    assert tokens(nlp, "(a)]") == ["(", "a", ")", "]"]  # different marks stay apart
    assert tokens(nlp, "好！！") == ["好", "！", "！"]  # CJK punctuation: one token per mark, as v1


def test_free_standing_clitics_are_one_token(nlp):
    assert tokens(blank(V1), "Obama 's")[1:] == ["'", "s"]
    assert tokens(nlp, "Obama 's speech , they 're ’ll 'Labour") == [
        "Obama", "'s", "speech", ",", "they", "'re", "’ll", "'", "Labour"]
    assert tokens(nlp, "Obama's it's") == ["Obama", "'s", "it", "'s"]


def test_mixed_scripts_and_cjk_stay_as_in_v1(nlp):
    text = "Berlin-Mitte 北京-上海 2008年、東京タワー Москва-Сити दिल्ली في القاهرة 서울-부산 👨\u200d👩\u200d👧"
    assert tokens(nlp, text) == [
        "Berlin-Mitte", "北", "京", "-", "上", "海", "2008", "年", "、", "東", "京", "タ", "ワ", "ー",
        "Москва-Сити", "दिल्ली", "في", "القاهرة", "서울-부산", "👨\u200d👩\u200d👧",
    ]


@pytest.mark.parametrize("text", ["", " ", "\n", "\u3000", " \t\n ", "-", "--", "'s", "a-"])
def test_empty_whitespace_and_lone_marks(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    assert len(doc) <= len(blank(V1)(text))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet="ab1 -–'’*]=北京タ、。！👨\u200d\u3000\n.,s", max_size=40))
def test_doc_text_is_the_input_and_tokens_are_unions_of_v1_tokens(text):
    doc, first = blank(V2)(text), blank(V1)(text)
    assert doc.text == text
    assert all(len(t.text) > 0 for t in doc)
    bounds = {t.idx for t in first} | {t.idx + len(t) for t in first}
    assert all(t.idx in bounds and t.idx + len(t) in bounds for t in doc)


def test_norms_explain_serialisation_and_loading(nlp, tmp_path):
    text = "Haute-Saône 's 他说：“你好”，I'm ok-ok **"
    explained = nlp.tokenizer.explain(text)
    assert [piece for _, piece in explained] == [t.text for t in nlp(text) if not t.is_space]
    assert ("JOINED", "Haute-Saône") in explained and ("CJK_CHAR", "他") in explained and ("JOINED", "**") in explained
    assert nlp("Haute-Saône ABC")[1].norm_ == "abc"
    expected = tokens(nlp, text)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert type(loaded.tokenizer) is WordJoiningTokenizer and tokens(loaded, text) == expected
    unpickled = pickle.loads(pickle.dumps(nlp.tokenizer))
    assert isinstance(unpickled, MultilingualTokenizer) and [t.text for t in unpickled(text)] == expected
    assert type(blank(V1).tokenizer) is MultilingualTokenizer  # v1 is unchanged
