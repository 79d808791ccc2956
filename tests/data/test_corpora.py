"""Tests of the corpus converters (spacy_dlfa.corpora: wikiann, ud, hf_rows, docbin): WikiANN TSV, UD CoNLL-U,
Hugging Face rows, DocBin output (the local data mirror: test_corpora_mirror.py)."""

import sys
import tempfile
import types
from pathlib import Path

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.training.converters import conllu_to_docs as spacy_conllu_to_docs

from spacy_dlfa.corpora import docbin, hf_rows
from spacy_dlfa.corpora.common import CorpusFormatError
from spacy_dlfa.corpora.docbin import convert_corpus, write_docbin
from spacy_dlfa.corpora.ud import HF_UD_UPOS, UPOS_TAGS, conllu_to_docs, ud_rows_to_docs
from spacy_dlfa.corpora.wikiann import NER_LABELS, read_wikiann_tsv, repair_iob, wikiann_rows_to_docs, wikiann_to_docs

VOCAB = spacy.blank("xx").vocab

WIKIANN = "Angela\tB-PER\nMerkel\tI-PER\nin\tO\nBerlin\tB-LOC\n\nUN\tB-ORG\n"

# MWT ranges (fr "au" = "à le", en "don't" = "do n't"), an empty node (5.1),
# SpaceAfter=No on words and on a range line, comments, an MWT ending a sentence.
CONLLU = """\
# sent_id = 1
# text = Je vais au marché.
1	Je	il	PRON	_	_	2	nsubj	_	_
2	vais	aller	VERB	_	_	0	root	_	_
3-4	au	_	_	_	_	_	_	_	_
3	à	à	ADP	_	_	5	case	_	_
4	le	le	DET	_	_	5	det	_	_
5	marché	marché	NOUN	_	_	2	obl	_	SpaceAfter=No
6	.	.	PUNCT	_	_	2	punct	_	_

# sent_id = 2
# text = Sue likes coffee and Bill tea.
1	Sue	Sue	PROPN	NNP	_	2	nsubj	_	_
2	likes	like	VERB	VBZ	_	0	root	_	_
3	coffee	coffee	NOUN	NN	_	2	obj	_	_
4	and	and	CCONJ	CC	_	5	cc	_	_
5	Bill	Bill	PROPN	NNP	_	2	conj	_	_
5.1	likes	like	VERB	VBZ	_	_	_	5:conj	_
6	tea	tea	NOUN	NN	_	5	orphan	_	SpaceAfter=No
7	.	.	PUNCT	.	_	2	punct	_	_

# text = I don't
1	I	I	PRON	PRP	_	2	nsubj	_	_
2-3	don't	_	_	_	_	_	_	_	SpaceAfter=No
2	do	do	AUX	VBP	_	0	root	_	_
3	n't	not	PART	RB	_	2	advmod	_	_
"""


def conllu_line(token_id: str, form: str = "w", upos: str = "INTJ", misc: str = "_") -> str:
    """A CoNLL-U line; range lines get "_" for everything but ID, FORM and MISC."""
    if "-" in token_id:
        upos = "_"
    return "\t".join([token_id, form, "_", upos, "_", "_", "_", "_", "_", misc])


def write(tmp_path: Path, text: str, name: str = "data.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_format_error(excinfo, path: Path, line: int, expected: str) -> None:
    message = str(excinfo.value)
    assert str(path) in message and f"line {line}:" in message and expected in message, message
    assert (excinfo.value.source, excinfo.value.line) == (str(path), line)


def iob(doc):
    return [t.ent_iob_ + ("-" + t.ent_type_ if t.ent_type_ else "") for t in doc]


# --------------------------------------------------------------------------- WikiANN


def test_wikiann_docs_and_counts(tmp_path):
    docs, counts = wikiann_to_docs(write(tmp_path, WIKIANN), VOCAB)
    assert [d.text for d in docs] == ["Angela Merkel in Berlin", "UN"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Angela Merkel", "PER"), ("Berlin", "LOC")]
    assert [t.is_sent_start for t in docs[0]] == [True, False, False, False]
    assert counts["sentences"] == 2 and counts["tokens"] == 5 and counts["entities"] == 3
    assert counts["entities_by_label"] == {"PER": 1, "ORG": 1, "LOC": 1}
    assert counts["repaired_stray_I"] == 0 and counts["truncated"] is False


def test_wikiann_accepts_crlf_bom_and_extra_blank_lines(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"\xef\xbb\xbfa\tO\r\nb\tB-LOC\r\n\r\n\r\n\r\nc\tO\r\n\r\n")
    sents = list(read_wikiann_tsv(path))
    assert [s.words for s in sents] == [["a", "b"], ["c"]]
    assert [s.line for s in sents] == [1, 6]


def test_stray_inside_tags_start_an_entity(tmp_path):
    text = "a\tI-PER\nb\tI-PER\nc\tB-ORG\nd\tI-LOC\ne\tO\nf\tI-ORG\n"
    docs, counts = wikiann_to_docs(write(tmp_path, text), VOCAB)
    assert [(e.text, e.label_) for e in docs[0].ents] == [("a b", "PER"), ("c", "ORG"), ("d", "LOC"), ("f", "ORG")]
    assert counts["repaired_stray_I"] == 3 and counts["entities"] == 4
    assert repair_iob(["O", "I-PER", "I-PER", "B-LOC", "I-PER"]) == (["O", "B-PER", "I-PER", "B-LOC", "B-PER"], 2)


def test_stray_inside_tags_are_reported(tmp_path, capsys):
    convert_corpus("wikiann", write(tmp_path, "a\tO\nb\tI-LOC\n"), tmp_path / "o.spacy")
    assert "1 stray I- tags" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ("a\tO\nb\n", 2, "expected 2 tab-separated columns (token<TAB>tag), got 1"),
        ("a\tO\n\nb\tO\tO\n", 3, "expected 2 tab-separated columns (token<TAB>tag), got 3"),
        ("a\tO\nb\tB-MISC\n", 2, "unknown tag 'B-MISC', expected one of O B-PER I-PER B-ORG I-ORG B-LOC I-LOC"),
        ("a\to\n", 1, "unknown tag 'o'"),
        ("a\tO\n\tO\n", 2, "expected a non-empty token in column 1, got an empty token"),
        ("a\tO\n \tB-PER\n", 2, "got an empty token"),
        ("a\tO\n\t\n", 2, "got an empty token"),  # a line with a tab is never a blank line
    ],
)
def test_wikiann_malformed(tmp_path, text, line, expected):
    path = write(tmp_path, text, "bad.tsv")
    with pytest.raises(CorpusFormatError) as excinfo:
        wikiann_to_docs(path, VOCAB)
    assert_format_error(excinfo, path, line, expected)


def test_wikiann_not_utf8(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"a\tO\n\xff\tO\n")
    with pytest.raises(CorpusFormatError) as excinfo:
        list(read_wikiann_tsv(path))
    assert_format_error(excinfo, path, 2, "expected UTF-8 text")


def test_wikiann_language_prefix(tmp_path):
    path = write(tmp_path, "en:bar:24\tO\nen:Paris\tB-LOC\n")
    assert next(read_wikiann_tsv(path, lang_prefix="en")).words == ["bar:24", "Paris"]
    assert next(read_wikiann_tsv(path)).words == ["en:bar:24", "en:Paris"]  # kept unless asked
    with pytest.raises(CorpusFormatError) as excinfo:
        list(read_wikiann_tsv(write(tmp_path, "en:a\tO\nb\tO\n", "p.tsv"), lang_prefix="en"))
    assert_format_error(excinfo, tmp_path / "p.tsv", 2, "expected a token starting with 'en:', got 'b'")


# zh WikiANN as in the mirror (one character per token, `#` where the source had a space), Japanese,
# Korean words, CJK inside a Latin sentence, and a Latin middle dot between Han characters.
WIKIANN_CJK = {
    ("北 京 是 中 国 。", "B-LOC I-LOC O B-LOC I-LOC O"): "北京是中国。",
    ("文 化 二 路 2 1 1 號 （ 廣 達 ） # 0 3", "O O O O O O O O O B-ORG I-ORG O O O O"): "文化二路 2 1 1 號（廣達） # 0 3",
    ("東 京 タ ワ ー に 行 く", "B-LOC I-LOC I-LOC I-LOC I-LOC O O O"): "東京タワーに行く",
    ("서울 특별시 는", "B-LOC I-LOC O"): "서울 특별시 는",
    ("Tokyo ( 東 京 ) is big", "B-LOC O B-LOC I-LOC O O O"): "Tokyo ( 東京 ) is big",
    ("伍 德 · 哈 瑞 斯", "B-PER I-PER I-PER I-PER I-PER I-PER"): "伍德 · 哈瑞斯",
}


def test_wikiann_cjk_is_written_without_spaces(tmp_path):
    text = "\n".join("\n".join(f"{w}\t{t}" for w, t in zip(words.split(), tags.split())) + "\n" for words, tags in WIKIANN_CJK)
    docs, counts = wikiann_to_docs(write(tmp_path, text), VOCAB)
    assert [d.text for d in docs] == list(WIKIANN_CJK.values())
    assert [[t.text for t in d] for d in docs] == [words.split() for words, _ in WIKIANN_CJK]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("北京", "LOC"), ("中国", "LOC")]
    assert [e.text for e in docs[1].ents] == ["廣達"] and [e.text for e in docs[2].ents] == ["東京タワー"]
    assert [e.text for e in docs[4].ents] == ["Tokyo", "東京"] and counts["tokens"] == 45
    rows = [{"tokens": words.split(), "ner_tags": [NER_LABELS.index(t) for t in tags.split()]} for words, tags in WIKIANN_CJK]
    assert [d.text for d in wikiann_rows_to_docs(rows, VOCAB)[0]] == list(WIKIANN_CJK.values())
    ud_row = {"tokens": ["我", "喜欢", "Paris", "。"], "upos": [HF_UD_UPOS.index(t) for t in ("PRON", "VERB", "PROPN", "PUNCT")]}
    assert ud_rows_to_docs([ud_row], VOCAB)[0][0].text == "我喜欢 Paris 。"


# --------------------------------------------------------------------------- CoNLL-U


def test_conllu_matches_spacy_convert(tmp_path):
    docs, counts = conllu_to_docs(write(tmp_path, CONLLU, "x.conllu"), VOCAB)
    # spacy convert's default: one doc per sentence (n_sents=1), merge_subtokens=False
    reference = list(spacy_conllu_to_docs(CONLLU, n_sents=1, no_print=True))
    assert len(docs) == len(reference) == counts["sentences"] == 3
    for ours, ref in zip(docs, reference):
        assert [t.text for t in ours] == [t.text for t in ref]
        assert [t.whitespace_ for t in ours] == [t.whitespace_ for t in ref]
        assert [t.pos_ for t in ours] == [t.pos_ for t in ref]
        assert ours.text == ref.text
    assert [t.text for t in docs[0]] == ["Je", "vais", "à", "le", "marché", "."]
    assert docs[0].text == "Je vais àle marché. "  # MWT words; spaces as spaCy sets them
    assert docs[2].text == "I don't"
    assert [t.text for t in docs[1]] == ["Sue", "likes", "coffee", "and", "Bill", "tea", "."]  # empty node skipped
    assert counts["tokens"] == 16 and counts["multiword_tokens_skipped"] == 2 and counts["empty_nodes_skipped"] == 1


def test_conllu_tag_is_upos_and_sentence_starts(tmp_path):
    docs, counts = conllu_to_docs(write(tmp_path, CONLLU, "x.conllu"), VOCAB)
    for doc in docs:
        assert [t.tag_ for t in doc] == [t.pos_ for t in doc]  # spaCy would put XPOS (NNP, ...) in tag_
        assert [t.is_sent_start for t in doc] == [True] + [False] * (len(doc) - 1)
    assert counts["tags_by_label"]["PROPN"] == 2 and sum(counts["tags_by_label"].values()) == 16


def test_conllu_space_after_is_a_whole_misc_field(tmp_path):
    # spaCy matches the substring and reads CorrectSpaceAfter=No (a typo note) as no space
    text = "1\tcelle\tcelui\tPRON\t_\t_\t0\troot\t_\tCorrectSpaceAfter=No\n2\tlà\tlà\tADV\t_\t_\t1\tadvmod\t_\t_\n"
    ours = conllu_to_docs(write(tmp_path, text, "x.conllu"), VOCAB)[0][0]
    spacys = next(spacy_conllu_to_docs(text, n_sents=1, no_print=True))
    assert ours.text == "celle là " and spacys.text == "cellelà "


@pytest.mark.parametrize(
    "lines, line, expected",
    [
        (["1\tHi\thi\tINTJ\t_\t_\t0\troot\t_"], 1, "expected 10 tab-separated CoNLL-U columns, got 9"),
        ([conllu_line("1"), conllu_line("x")], 2,
         "expected word ID 2 (or a range 'N-M' or an empty node 'N.M'), got 'x'"),
        ([conllu_line("1"), conllu_line("3")], 2, "expected word ID 2"),
        ([conllu_line("1"), conllu_line("2.x")], 2, "got '2.x'"),
        ([conllu_line("1-x"), conllu_line("1")], 1, "bad range line"),
        ([conllu_line("2-3"), conllu_line("1")], 1, "expected a multiword-token range '1-M'"),
        ([conllu_line("1-1"), conllu_line("1")], 1, "with M > 1"),
        ([conllu_line("1-3"), conllu_line("1"), conllu_line("2-3")], 3, "outside any other range"),
        ([conllu_line("1-2"), conllu_line("1")], 1,
         "the range ends at word 2, expected at most the sentence's last word 1"),
        ([conllu_line("1", form="")], 1, "expected a non-empty FORM (column 2), got an empty token"),
        ([conllu_line("1", upos="INTERJ")], 1, "unknown UPOS tag 'INTERJ' in column 4, expected one of ADJ ADP"),
        ([conllu_line("1", upos="_")], 1, "unknown UPOS tag '_'"),
        ([conllu_line("1"), "# late comment"], 2, "expected a word line, got a comment inside a sentence"),
        (["# only a comment"], 1, "expected word lines after the comments, got none"),
        ([conllu_line("1"), "\t"], 2, "expected 10 tab-separated CoNLL-U columns, got 2"),
    ],
)
def test_conllu_malformed(tmp_path, lines, line, expected):
    good = "# text = ok\n" + conllu_line("1") + "\n\n"
    path = write(tmp_path, good + "\n".join(lines) + "\n", "bad.conllu")
    with pytest.raises(CorpusFormatError) as excinfo:
        conllu_to_docs(path, VOCAB)
    assert_format_error(excinfo, path, line + 3, expected)


# --------------------------------------------------------------------------- HF rows


def test_wikiann_rows():
    rows = [{"tokens": ["Angela", "Merkel", "in", "Berlin"], "ner_tags": [1, 2, 0, 5]},
            {"tokens": ["x"], "ner_tags": [4]}]
    docs, counts = wikiann_rows_to_docs(rows, VOCAB)
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Angela Merkel", "PER"), ("Berlin", "LOC")]
    assert iob(docs[1]) == ["B-ORG"] and counts["repaired_stray_I"] == 1  # id 4 is I-ORG
    assert NER_LABELS.index("I-ORG") == 4


@pytest.mark.parametrize(
    "row, expected",
    [
        ({"tokens": ["a"], "ner_tags": [7]}, "expected integer 'ner_tags' ids in 0..6, got 7"),
        ({"tokens": ["a"], "ner_tags": ["O"]}, "got 'O'"),
        ({"tokens": ["a", "b"], "ner_tags": [0]}, "expected as many 'ner_tags' as 'tokens', got 1 and 2"),
        ({"tokens": ["a"]}, "expected a row with 'tokens' and 'ner_tags'"),
        ({"tokens": [""], "ner_tags": [0]}, "expected non-empty string tokens"),
        ({"tokens": [], "ner_tags": []}, "expected at least one token"),
    ],
)
def test_wikiann_rows_malformed(row, expected):
    with pytest.raises(CorpusFormatError) as excinfo:
        wikiann_rows_to_docs([{"tokens": ["ok"], "ner_tags": [0]}, row], VOCAB)
    assert str(excinfo.value).startswith("wikiann rows, row 2: ") and expected in str(excinfo.value)


def test_ud_rows_drop_ranges_and_empty_nodes():
    assert len(HF_UD_UPOS) == 18 and HF_UD_UPOS[13] == "_" and set(HF_UD_UPOS) - {"_"} == set(UPOS_TAGS)
    ids = {name: i for i, name in enumerate(HF_UD_UPOS)}
    # as the HF script yields "I don't" + an empty node: range row "don't" has UPOS "_"
    row = {"tokens": ["I", "don't", "do", "n't", "go"], "upos": [ids["PRON"], 13, ids["AUX"], ids["PART"], ids["VERB"]],
           "head": ["2", "None", "0", "2", "None"]}
    docs, counts = ud_rows_to_docs([row], VOCAB)
    assert [(t.text, t.pos_, t.tag_) for t in docs[0]] == [
        ("I", "PRON", "PRON"), ("do", "AUX", "AUX"), ("n't", "PART", "PART")]
    assert counts["multiword_tokens_skipped"] == 1 and counts["empty_nodes_skipped"] == 1
    no_head = {k: v for k, v in row.items() if k != "head"}
    assert len(ud_rows_to_docs([no_head], VOCAB)[0][0]) == 4  # empty nodes cannot be told apart


def test_ud_rows_malformed():
    expected = r"^universal_dependencies rows, row 1: expected integer 'upos' ids in 0\.\.17, got 18$"
    with pytest.raises(CorpusFormatError, match=expected):
        ud_rows_to_docs([{"tokens": ["a"], "upos": [18]}], VOCAB)
    with pytest.raises(CorpusFormatError, match="row 1: expected at least one word"):
        ud_rows_to_docs([{"tokens": ["ab"], "upos": [13]}], VOCAB)


def test_load_hf_dataset_calls_datasets(monkeypatch):
    calls = []
    fake = types.SimpleNamespace(load_dataset=lambda *a, **k: calls.append((a, k)) or "ds")
    monkeypatch.setitem(sys.modules, "datasets", fake)  # never downloads
    assert hf_rows.load_hf_dataset("unimelb-nlp/wikiann", "de", "validation") == "ds"
    assert calls == [(("unimelb-nlp/wikiann", "de"), {"split": "validation"})]


# --------------------------------------------------------------------------- limit, DocBin


def test_limit_takes_the_first_sentences_and_says_so(tmp_path, capsys):
    path = write(tmp_path, WIKIANN + "\nz\tO\n")
    docs, counts = wikiann_to_docs(path, VOCAB, limit=2)
    assert [d.text for d in docs] == ["Angela Merkel in Berlin", "UN"] and counts["truncated"] is True
    assert wikiann_to_docs(path, VOCAB, limit=3)[1]["truncated"] is False
    assert conllu_to_docs(write(tmp_path, CONLLU, "x.conllu"), VOCAB, limit=1)[1]["sentences"] == 1
    counts = convert_corpus("wikiann", path, tmp_path / "o.spacy", limit=1)
    assert counts["truncated"] and "limit 1: kept the first 1 sentences" in capsys.readouterr().out
    with pytest.raises(ValueError):
        wikiann_to_docs(path, VOCAB, limit=-1)


@pytest.mark.parametrize("kind, text", [("wikiann", WIKIANN + "\na\tI-LOC\n"), ("ud", CONLLU)], ids=["wikiann", "ud"])
def test_docbin_round_trip(tmp_path, kind, text):
    source = write(tmp_path, text, "in.txt")
    out = tmp_path / "sub" / "out.spacy"
    counts = convert_corpus(kind, source, out)
    docs, _ = (wikiann_to_docs if kind == "wikiann" else conllu_to_docs)(source, VOCAB)
    back = list(DocBin().from_disk(out).get_docs(spacy.blank("xx").vocab))
    assert len(back) == counts["sentences"] == len(docs) and counts["output"] == str(out)
    for a, b in zip(docs, back):
        assert a.text == b.text and [t.text for t in a] == [t.text for t in b]
        assert iob(a) == iob(b) and [t.pos_ for t in a] == [t.pos_ for t in b]
        assert [t.tag_ for t in a] == [t.tag_ for t in b]
        assert [t.is_sent_start for t in a] == [t.is_sent_start for t in b]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.spacy"]  # no temporary file left


def test_write_docbin_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "out.spacy"
    out.write_bytes(b"old")
    docs, _ = wikiann_to_docs(write(tmp_path, WIKIANN), VOCAB)

    def failing_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(docbin.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_docbin(docs, out)
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["data.txt", "out.spacy"]
    monkeypatch.undo()
    assert write_docbin(docs, out) == {"docs": 2, "tokens": 5}


def test_convert_corpus_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus kind 'xnli'"):
        convert_corpus("xnli", write(tmp_path, WIKIANN), tmp_path / "o.spacy")


# --------------------------------------------------------------------------- properties

TOKENS = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp")), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(TOKENS, st.sampled_from(NER_LABELS)), min_size=1, max_size=8),
                min_size=1, max_size=4))
def test_property_wikiann_tsv_round_trip(sentences):
    text = "\n\n".join("\n".join(f"{tok}\t{tag}" for tok, tag in sent) for sent in sentences) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), text)
        read = list(read_wikiann_tsv(path))
        docs, counts = wikiann_to_docs(path, VOCAB)
    assert [list(zip(s.words, s.labels)) for s in read] == [list(s) for s in sentences]
    repaired = [repair_iob([tag for _, tag in sent]) for sent in sentences]
    assert [iob(doc) for doc in docs] == [tags for tags, _ in repaired]
    assert counts["repaired_stray_I"] == sum(n for _, n in repaired)


LINES = st.one_of(  # random text, near-valid TSV lines, near-valid CoNLL-U lines, blank lines
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=12),
    st.tuples(st.sampled_from(["a", "b:c", "", " "]), st.sampled_from(["O", "B-PER", "I-LOC", "X", "", "O "])).map(
        "\t".join),
    st.tuples(st.builds(conllu_line, st.sampled_from(["1", "2", "3", "1-2", "2-3", "1.1", "0", "x", "# c"]),
                        st.sampled_from(["w", ""]), st.sampled_from(["NOUN", "VERB", "_", "B-PER"]),
                        st.sampled_from(["_", "SpaceAfter=No"])),
              st.sampled_from(["", "\t_"])).map("".join),  # 10 or 11 columns
    st.just(""),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(LINES, min_size=1, max_size=8), st.sampled_from(["wikiann", "ud"]))
def test_property_arbitrary_lines_parse_or_raise_format_error(lines, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "\n".join(lines) + "\n")
        try:
            (wikiann_to_docs if kind == "wikiann" else conllu_to_docs)(path, VOCAB)
        except CorpusFormatError as err:
            assert str(path) in str(err) and 1 <= err.line <= len(lines)
