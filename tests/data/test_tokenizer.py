"""spacy-dlfa.MultilingualTokenizer.v1: xx rules plus one token per CJK character, emoji sequences whole."""
import pickle
import subprocess
import sys

import pytest
import spacy
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.symbols import NORM, ORTH
from spacy.util import load_config

from spacy_dlfa.tokenizer import MultilingualTokenizer

NAME = "spacy-dlfa.MultilingualTokenizer.v1"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": NAME}}})


def tokens(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    return [t.text for t in doc]


def test_mixed_scripts(nlp):
    text = "Berlin 北京2008年、東京タワーへ行った。Москва и दिल्ली في القاهرة 서울에서"
    assert tokens(nlp, text) == [
        "Berlin", "北", "京", "2008", "年", "、", "東", "京", "タ", "ワ", "ー", "へ", "行", "っ", "た", "。",
        "Москва", "и", "दिल्ली", "في", "القاهرة", "서울에서",
    ]
    assert [t.whitespace_ for t in nlp(text)][:3] == [" ", "", ""]


def test_latin_text_is_tokenized_by_the_xx_rules_alone(nlp):
    text = "Dr. Smith's (U.S.) e-mail: smith@example.com, 3.5km! https://example.com/a?b=1"
    assert tokens(nlp, text) == [t.text for t in spacy.blank("xx")(text)]


def test_cjk_punctuation_is_one_token_per_mark(nlp):
    assert tokens(nlp, "他说：“你好！”（笑）《书》【注】「引用」『二重』〈a〉，。；？") == [
        "他", "说", "：", "“", "你", "好", "！", "”", "（", "笑", "）", "《", "书", "》", "【", "注", "】",
        "「", "引", "用", "」", "『", "二", "重", "』", "〈", "a", "〉", "，", "。", "；", "？",
    ]
    # wherever it stands, also inside Latin text; a run between CJK marks is tokenized by the rules again
    assert tokens(nlp, "Hello、world。(iPhone)于2008,在") == ["Hello", "、", "world", "。", "(", "iPhone", ")", "于", "2008", ",", "在"]


def test_full_width_digits_and_letters_stay_one_token_per_run(nlp):
    assert tokens(nlp, "２００８年ＡＢＣ社の１２３") == ["２００８", "年", "ＡＢＣ", "社", "の", "１２３"]
    assert tokens(nlp, "価格は１，０００円") == ["価", "格", "は", "１", "，", "０００", "円"]


def test_kana_marks_stay_with_their_character_and_hangul_is_not_split(nlp):
    assert tokens(nlp, "ｶﾞｷﾞとか\u3099") == ["ｶﾞ", "ｷﾞ", "と", "か\u3099"]
    assert tokens(nlp, "葛\U000e0100城") == ["葛\U000e0100", "城"]  # ideographic variation sequence
    assert tokens(nlp, "한국어 문장입니다.") == ["한국어", "문장입니다", "."]


def test_emoji_sequences_are_not_split(nlp):
    family, thumbs, flag, keycap = "👨\u200d👩\u200d👧", "👍🏻", "🇩🇪", "1\ufe0f\u20e3"
    assert spacy.blank("xx")(family)[0].text != family  # the xx rules alone split it
    assert tokens(nlp, f"I love {family}! {thumbs}ok {flag}🇫🇷 {keycap}❤\ufe0f") == [
        "I", "love", family, "!", thumbs, "ok", flag, "🇫🇷", keycap, "❤\ufe0f",
    ]
    assert tokens(nlp, f"好{thumbs}了") == ["好", thumbs, "了"]


@pytest.mark.parametrize("text", ["", " ", "   ", "\n", "\u3000", " \t\n\u3000 ", "\u200d"])
def test_empty_and_whitespace_only_text(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    assert len(doc) == (0 if text == "" else len(spacy.blank("xx")(text)))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet="北京东京タワーかな、。「」（）２０ab 1\u200d👨👩🏻\ufe0f\u3099\u3000\n!.,", max_size=40))
def test_doc_text_is_the_input(text):
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": NAME}}})
    doc = nlp(text)
    assert doc.text == text
    assert all(len(t.text) > 0 for t in doc)
    assert not any(t.text.strip() and t.text != t.text.strip() for t in doc)


def test_special_cases_norms_pipe_and_explain(nlp):
    nlp.tokenizer.add_special_case("北京大学", [{ORTH: "北京大学"}])
    nlp.tokenizer.add_special_case("ggf.", [{ORTH: "ggf.", NORM: "gegebenenfalls"}])
    doc = nlp("北京大学 ggf.北京")
    assert [t.text for t in doc] == ["北京大学", "ggf.", "北", "京"]
    assert doc[1].norm_ == "gegebenenfalls"
    assert [[t.text for t in d] for d in nlp.tokenizer.pipe(["東京", "a b"])] == [["東", "京"], ["a", "b"]]
    text = "他说：“你好”，I'm 👨\u200d👩\u200d👧 ok"
    explained = nlp.tokenizer.explain(text)
    assert [piece for _, piece in explained] == [t.text for t in nlp(text) if not t.is_space]
    assert ("CJK_CHAR", "他") in explained and ("EMOJI", "👨\u200d👩\u200d👧") in explained


def test_serialisation_round_trips(nlp, tmp_path):
    nlp.tokenizer.add_special_case("東京都", [{ORTH: "東京都"}])
    text = "東京都 と東京都、👍🏻"
    expected = tokens(nlp, text)
    assert expected[0] == "東京都"
    other = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": NAME}}})
    other.tokenizer.from_bytes(nlp.tokenizer.to_bytes())
    assert tokens(other, text) == expected
    nlp.to_disk(tmp_path / "pipeline")
    assert tokens(spacy.load(tmp_path / "pipeline"), text) == expected
    unpickled = pickle.loads(pickle.dumps(nlp.tokenizer))
    assert isinstance(unpickled, MultilingualTokenizer) and [t.text for t in unpickled(text)] == expected


def test_saved_pipeline_loads_through_the_entry_point(nlp, tmp_path):
    nlp.tokenizer.add_special_case("東京都", [{ORTH: "東京都"}])
    nlp.to_disk(tmp_path / "pipeline")
    script = (
        "import json, sys, spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        "doc = nlp('東京都 北京2008年👨\u200d👩\u200d👧')\n"
        "print(json.dumps([type(nlp.tokenizer).__module__, [t.text for t in doc]]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    module, words = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert module == "spacy_dlfa.tokenizer"
    assert words == ["東京都", "北", "京", "2008", "年", "👨\u200d👩\u200d👧"]


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.cfg")), ids=lambda p: p.name)
def test_every_shipped_config_uses_the_tokenizer(config):
    # each task's raw-text tokenizer cuts text as its English training data is cut (benchmarks/results/raw_text_ner.md):
    # WikiANN keeps hyphenated words whole (v2), UD splits them (v1)
    wanted = NAME.replace(".v1", ".v2") if config.name.startswith("ner_") else NAME
    assert load_config(config)["nlp"]["tokenizer"] == {"@tokenizers": wanted}
