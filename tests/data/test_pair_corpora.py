"""Sentence-pair corpora (XNLI, PAWS-X): the TSV reader, HF rows, one Doc per pair
with the model's separator and one-hot cats, and the pair tasks of prepare_task."""
import tempfile
from pathlib import Path

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin

from spacy_dlfa import tasks
from spacy_dlfa.corpora.common import CorpusFormatError
from spacy_dlfa.corpora.sentence_pairs import (
    PAWSX,
    XNLI,
    XNLI_LABELS,
    Pair,
    pair_rows_to_docs,
    pair_tsv_to_docs,
    pairs_to_docs,
    read_pair_tsv,
)
from spacy_dlfa.pairs import pair_separator, split_pair
from spacy_dlfa.tasks import heldout_positions, prepare_task

NLP = spacy.blank("xx")
SEP = ["[SEP]"]  # the tiny BERT's separator (test_tiny_bert_separator)

XNLI_TSV = ("And he said, Mama, I'm home.\tHe didn't say a word.\tcontradiction\n"
            "Er sagte:  Mama, ich bin zuhause.\tEr rief seine Mutter an.\tneutral\n"
            "北京是中国的首都。\t北京在中国。\tentailment\n")
PAWSX_TSV = "Kathy is stable .\tKathy is financially stable .\t1\nA b .\tB a .\t0\n"


def write(folder: Path, text: str, name: str = "dev.tsv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(text: str):
    return [line.split("\t") for line in text.splitlines()]


def assert_pair_docs(docs, rows, labels):
    assert len(docs) == len(rows)
    for doc, (a, b, label) in zip(docs, rows):
        assert doc.text.count("".join(SEP)) == 1
        assert split_pair(doc, SEP) == (a.strip(), b.strip())
        assert doc.cats == {name: float(name == label) for name in labels}


def test_tiny_bert_separator(tiny_bert):
    from transformers import AutoTokenizer

    assert pair_separator(AutoTokenizer.from_pretrained(str(tiny_bert))) == SEP


# --------------------------------------------------------------------------- TSV files


def test_xnli_tsv_docs_and_counts(tmp_path):
    path = write(tmp_path, XNLI_TSV)
    assert [p.line for p in read_pair_tsv(path, XNLI)] == [1, 2, 3]
    docs, counts = pair_tsv_to_docs(path, NLP, SEP, XNLI)
    assert_pair_docs(docs, rows_of(XNLI_TSV), XNLI_LABELS)
    assert counts["pairs"] == counts["sentences"] == 3 and counts["truncated"] is False
    assert counts["pairs_by_label"] == {"entailment": 1, "neutral": 1, "contradiction": 1}
    assert counts["source"] == str(path) and counts["tokens"] == sum(len(d) for d in docs)


def test_pawsx_labels_are_named(tmp_path):
    docs, counts = pair_tsv_to_docs(write(tmp_path, PAWSX_TSV), NLP, SEP, PAWSX)
    assert [d.cats for d in docs] == [{"not_paraphrase": 0.0, "paraphrase": 1.0}, {"not_paraphrase": 1.0, "paraphrase": 0.0}]
    assert counts["pairs_by_label"] == {"not_paraphrase": 1, "paraphrase": 1}


def test_pair_tsv_bom_crlf_and_limit(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"\xef\xbb\xbfa\tb\t1\r\nc\td\t0\r\ne\tf\t1\r\n")
    docs, counts = pair_tsv_to_docs(path, NLP, SEP, PAWSX, limit=2)
    assert_pair_docs(docs, [("a", "b", "paraphrase"), ("c", "d", "not_paraphrase")], PAWSX.labels)
    assert counts["truncated"] is True and counts["limit"] == 2


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ("a\tb\tneutral\na\tb\n", 2, "expected 3 tab-separated columns (premise<TAB>hypothesis<TAB>label), got 2"),
        ("a\tb\tneutral\tx\n", 1, "got 4"),
        ("a\tb\tneutral\n\n", 2, "got 1"),
        ("a\tb\tNeutral\n", 1, "unknown label 'Neutral' in column 3, expected one of entailment neutral contradiction"),
        ("a\tb\tneutral\n \tb\tneutral\n", 2, "expected a non-empty premise text in column 1, got ' '"),
        ("a\t\tneutral\n", 1, "expected a non-empty hypothesis text in column 2"),
        ("a [SEP] b\tc\tneutral\n", 1, "expected texts without the pair separator token '[SEP]'"),
    ],
)
def test_xnli_tsv_malformed(tmp_path, text, line, expected):
    path = write(tmp_path, text)
    with pytest.raises(CorpusFormatError) as excinfo:
        pair_tsv_to_docs(path, NLP, SEP, XNLI)
    assert (excinfo.value.source, excinfo.value.line) == (str(path), line)
    assert f"{path}, line {line}: " in str(excinfo.value) and expected in str(excinfo.value)


def test_pawsx_unknown_label_names_the_mapping(tmp_path):
    with pytest.raises(CorpusFormatError, match=r"line 1: unknown label '2' .*0 \(not_paraphrase\) 1 \(paraphrase\)"):
        list(read_pair_tsv(write(tmp_path, "a\tb\t2\n"), PAWSX))


def test_pair_with_an_unknown_class_or_no_tokens_is_an_error():
    with pytest.raises(CorpusFormatError, match="pairs, line 7: unknown label 'maybe'"):
        pairs_to_docs([Pair("a", "b", "maybe", 7)], NLP, SEP, XNLI_LABELS)
    with pytest.raises(CorpusFormatError, match="pairs, line 3: expected a non-empty second text"):
        pairs_to_docs([Pair("a", "\n ", "neutral", 3)], NLP, SEP, XNLI_LABELS)


# --------------------------------------------------------------------------- Hugging Face rows


def test_hf_rows():
    xnli = [{"premise": "A man sleeps.", "hypothesis": "Nobody sleeps.", "label": 2},
            {"premise": "Er schläft.", "hypothesis": "Er ruht.", "label": 0}]
    docs, counts = pair_rows_to_docs(xnli, NLP, SEP, XNLI, source="facebook/xnli/de/test")
    assert_pair_docs(docs, [("A man sleeps.", "Nobody sleeps.", "contradiction"), ("Er schläft.", "Er ruht.", "entailment")], XNLI_LABELS)
    assert counts["source"] == "facebook/xnli/de/test" and counts["pairs"] == 2
    paws = [{"id": 1, "sentence1": "a b", "sentence2": "b a", "label": 1}] * 3
    docs, counts = pair_rows_to_docs(paws, NLP, SEP, PAWSX, limit=2)
    assert [d.cats["paraphrase"] for d in docs] == [1.0, 1.0] and counts["truncated"] is True


@pytest.mark.parametrize(
    "row, expected",
    [
        ({"premise": "a", "hypothesis": "b"}, "row 2: expected a row with 'premise', 'hypothesis', 'label'"),
        (["a", "b", 0], "expected a row with"),
        ({"premise": "a", "hypothesis": "b", "label": 3}, "row 2: expected integer 'label' ids in 0..2, got 3"),
        ({"premise": "a", "hypothesis": "b", "label": -1}, "got -1"),
        ({"premise": "a", "hypothesis": "b", "label": "neutral"}, "got 'neutral'"),
        ({"premise": "", "hypothesis": "b", "label": 0}, "row 2: expected a non-empty premise text in 'premise', got ''"),
        ({"premise": "a", "hypothesis": None, "label": 0}, "expected a non-empty hypothesis text in 'hypothesis', got None"),
        ({"premise": "a</s>", "hypothesis": "b", "label": 0}, "row 2: expected texts without the pair separator token '</s>'"),
    ],
)
def test_hf_rows_malformed(row, expected):
    good = {"premise": "a", "hypothesis": "b", "label": 1}
    with pytest.raises(CorpusFormatError) as excinfo:
        pair_rows_to_docs([good, row], NLP, ["</s>", "</s>"], XNLI, source="rows")
    assert excinfo.value.line == 2 and expected in str(excinfo.value)


# --------------------------------------------------------------------------- hold-out and prepare_task


def test_heldout_keeps_groups_sharing_a_text_whole():
    texts = [("p1", "h1"), ("p1", "h2"), ("p2", "h3"), ("x", "p3"), ("p3", "h4"), ("h4", "z")]
    pairs = [Pair(a, b, "neutral", i) for i, (a, b) in enumerate(texts, 1)]
    assert heldout_positions(pairs, 3) == [3, 4, 5]  # the p3/h4 group (3 pairs)
    assert heldout_positions(pairs, 2) == [2]  # the p3 group does not fit; p2 does
    assert heldout_positions(pairs, 5) == [2, 3, 4, 5]  # at most 5: the p1 group (2 pairs) does not fit
    with pytest.raises(ValueError, match="between 1 and 5"):
        heldout_positions(pairs, 6)


def docs_of(path: Path):
    return list(DocBin().from_disk(path).get_docs(NLP.vocab))


def test_prepare_xnli_on_the_real_mirror(shared_data, tiny_bert, tmp_path):
    written = prepare_task("xnli", tmp_path, ["de", "sw"], shared_data, eval_limit=20, transformer=str(tiny_bert), holdout=30)
    counts = {Path(w["output"]).stem: w["pairs"] for w in written}
    assert counts == {"train": 2460, "dev": 30, "test-en": 20, "test-de": 20, "test-sw": 20}
    train, dev = docs_of(tmp_path / "train.spacy"), docs_of(tmp_path / "dev.spacy")
    assert all(set(d.cats) == set(XNLI_LABELS) and sum(d.cats.values()) == 1.0 for d in train + dev)
    assert not {split_pair(d, SEP)[0] for d in dev} & {split_pair(d, SEP)[0] for d in train}  # no shared premise
    english, german = docs_of(tmp_path / "test-en.spacy"), docs_of(tmp_path / "test-de.spacy")
    assert [d.cats for d in german] == [d.cats for d in english] == [d.cats for d in dev[:20]]  # the same held-out lines
    assert german[0].text != english[0].text


def test_prepare_pawsx_on_the_real_mirror(shared_data, tiny_bert, tmp_path):
    written = prepare_task("pawsx", tmp_path, ["ja", "ko"], shared_data, train_limit=100, eval_limit=10, transformer=str(tiny_bert))
    counts = {Path(w["output"]).stem: w["pairs"] for w in written}
    assert counts == {"train": 100, "dev": 600, "test-en": 10, "test-ja": 10, "test-ko": 10}
    assert written[0]["truncated"] and not written[1]["truncated"]
    assert {tuple(sorted(d.cats)) for d in docs_of(tmp_path / "test-ja.spacy")} == {("not_paraphrase", "paraphrase")}


def test_prepare_pairs_from_hub_rows(tmp_path, tiny_bert, monkeypatch):
    requested = []

    def fake_load(name, config, split):
        requested.append((name, config, split))
        return [{"premise": "a", "hypothesis": "b", "label": 1}]

    monkeypatch.setattr(tasks, "load_hf_dataset", fake_load)
    prepare_task("xnli", tmp_path, ["de"], tmp_path / "no-mirror", source="hub", transformer=str(tiny_bert))
    assert requested == [("facebook/xnli", "en", "train"), ("facebook/xnli", "en", "validation"),
                         ("facebook/xnli", "en", "test"), ("facebook/xnli", "de", "test")]
    assert docs_of(tmp_path / "test-de.spacy")[0].cats["neutral"] == 1.0
    with pytest.raises(ValueError, match="holdout splits the mirror"):
        prepare_task("pawsx", tmp_path, [], tmp_path, source="hub", transformer=str(tiny_bert), holdout=10)


def test_prepare_pairs_errors(tmp_path, tiny_bert):
    for lang, n in (("en", 4), ("de", 3)):
        (tmp_path / "pawsx" / lang).mkdir(parents=True)
        write(tmp_path / "pawsx" / lang, "a\tb\t1\n" * n, f"dev-{lang}.tsv")
    with pytest.raises(ValueError, match="pawsx needs `transformer`"):
        prepare_task("pawsx", tmp_path / "out", ["de"], tmp_path)
    with pytest.raises(ValueError, match=r"dev-de\.tsv has 3 pairs, .*dev-en\.tsv 4: expected line-aligned"):
        prepare_task("pawsx", tmp_path / "out", ["de"], tmp_path, transformer=str(tiny_bert), holdout=1)
    with pytest.raises(FileNotFoundError, match=r"pawsx/fr/dev-fr\.tsv is missing"):
        prepare_task("pawsx", tmp_path / "out", ["fr"], tmp_path, transformer=str(tiny_bert), holdout=1)
    with pytest.raises(ValueError, match="holdout is for the sentence-pair tasks"):
        prepare_task("ner", tmp_path / "out", [], tmp_path, holdout=5)
    with pytest.raises(ValueError, match="unknown source 'Hub'"):
        prepare_task("xnli", tmp_path / "out", [], tmp_path, source="Hub")


# --------------------------------------------------------------------------- properties

TEXTS = st.sampled_from(["a", "Ein Satz .", "北京在中国。", "", " ", "x[SEP]y", "a  b", "\x0b"])
LINES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=16),
    st.lists(st.one_of(TEXTS, st.sampled_from(["neutral", "entailment", "Neutral", "1", ""])), min_size=1, max_size=4).map("\t".join),
    st.tuples(TEXTS, TEXTS, st.sampled_from(XNLI_LABELS)).map("\t".join),
)


def first_bad_line(lines):
    """The oracle: the first line that is not a valid XNLI pair (1-based), or None."""
    for number, line in enumerate(lines, 1):
        columns = line.split("\t")
        if (len(columns) != 3 or columns[2] not in XNLI_LABELS
                or any(not text.strip() or "[SEP]" in text for text in columns[:2])):
            return number
    return None


@settings(max_examples=150, deadline=None)
@given(st.lists(LINES, min_size=1, max_size=6))
def test_property_pair_tsv_gives_docs_or_names_the_bad_line(lines):
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "\n".join(lines) + "\n")
        lines = [lines[0].lstrip("\ufeff"), *lines[1:]]  # a BOM is not text
        try:
            docs, _ = pair_tsv_to_docs(path, NLP, SEP, XNLI)
        except CorpusFormatError as err:
            assert str(path) in str(err) and err.line == first_bad_line(lines)
        else:
            assert first_bad_line(lines) is None
            assert_pair_docs(docs, [line.split("\t") for line in lines], XNLI_LABELS)
