"""The corpus converters on the local data mirror (../shared/data; skipped where it is absent):
sentence and entity counts per file, the zh stray I- tags, spaCy's CoNLL-U converter on fr_gsd,
CJK text as written."""

from pathlib import Path

import pytest
import spacy
from spacy.training.converters import conllu_to_docs as spacy_conllu_to_docs

from spacy_dlfa.corpora.ud import conllu_to_docs, read_conllu
from spacy_dlfa.corpora.wikiann import read_wikiann_tsv, repair_iob, wikiann_to_docs

MIRROR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"local data mirror not found at {MIRROR}")

VOCAB = spacy.blank("xx").vocab

WIKIANN_SENTENCES = {"en": {"train": 20000, "dev": 10000, "test": 10000}, "hi": {"dev": 1000, "test": 1000}}
WIKIANN_SENTENCES.update({lang: {"dev": 10000, "test": 10000} for lang in "de es fr nl pt ru zh ar tr".split()})
UD_SENTENCES = {
    "en_ewt": {"train": 12544, "dev": 2001, "test": 2077}, "de_gsd": {"dev": 799, "test": 977},
    "fr_gsd": {"dev": 1476, "test": 416}, "es_gsd": {"dev": 1400, "test": 427}, "zh_gsd": {"dev": 500, "test": 500},
    "ru_gsd": {"dev": 579, "test": 601}, "ja_gsd": {"dev": 507, "test": 543}, "fi_tdt": {"dev": 1364, "test": 1555},
    "tr_imst": {"dev": 1100, "test": 1100}, "ar_pud": {"test": 1000}, "hi_pud": {"test": 1000},
}
UD_FAST = [(tb, split) for tb, splits in UD_SENTENCES.items() for split in splits if (tb, split) != ("en_ewt", "train")]


def wikiann_path(lang: str, split: str) -> Path:
    return MIRROR / "wikiann" / lang / f"{split}-{lang}.tsv"


def ud_path(treebank: str, split: str) -> Path:
    return MIRROR / "ud" / treebank / f"{treebank}-ud-{split}.conllu"


@needs_mirror
def test_mirror_en_ewt_train_counts():
    sents = list(read_conllu(ud_path("en_ewt", "train")))
    assert len(sents) == 12544 and sum(len(s.words) for s in sents) == 204577
    assert sum(s.multiword_tokens for s in sents) == 2614 and sum(s.empty_nodes for s in sents) == 37


@needs_mirror
@pytest.mark.parametrize("treebank, split", UD_FAST)
def test_mirror_ud_sentence_counts(treebank, split):
    assert sum(1 for _ in read_conllu(ud_path(treebank, split))) == UD_SENTENCES[treebank][split]


@needs_mirror
def test_mirror_wikiann_de_dev():
    path = wikiann_path("de", "dev")
    sents = list(read_wikiann_tsv(path))
    assert len(sents) == 10000 and sum(len(s.words) for s in sents) == 97805
    docs, counts = wikiann_to_docs(path, VOCAB, limit=500)
    assert len(docs) == counts["sentences"] == 500 and counts["truncated"] is True
    assert counts["entities"] == sum(tag.startswith("B-") for s in sents[:500] for tag in repair_iob(s.labels)[0])


@needs_mirror
@pytest.mark.parametrize("split, repaired", [("dev", 476), pytest.param("test", 483, marks=pytest.mark.slow)])
def test_mirror_wikiann_zh_stray_inside_tags(split, repaired):
    sents = list(read_wikiann_tsv(wikiann_path("zh", split)))
    assert len(sents) == 10000 and sum(repair_iob(s.labels)[1] for s in sents) == repaired


@needs_mirror
@pytest.mark.parametrize("lang, split", [("en", "train"), ("hi", "dev"), ("hi", "test")])
def test_mirror_wikiann_sentence_counts(lang, split):
    assert sum(1 for _ in read_wikiann_tsv(wikiann_path(lang, split))) == WIKIANN_SENTENCES[lang][split]


@needs_mirror
def test_mirror_fr_gsd_test_matches_spacy_convert():
    path = ud_path("fr_gsd", "test")  # 280 multiword tokens
    reference = list(spacy_conllu_to_docs(path.read_text(encoding="utf-8"), n_sents=1, no_print=True))
    docs, counts = conllu_to_docs(path, VOCAB)
    assert counts["multiword_tokens_skipped"] == 280 and len(docs) == len(reference) == 416
    for ours, ref in zip(docs, reference):
        assert [(t.text, t.whitespace_, t.pos_) for t in ours] == [(t.text, t.whitespace_, t.pos_) for t in ref]


@needs_mirror
def test_mirror_wikiann_zh_text_as_written_tokenizes_back_to_the_gold_tokens():
    """No space between Han characters; the raw-text tokenizer gives back every gold token of zh dev."""
    from spacy_dlfa.tokenizer import create_multilingual_tokenizer

    docs, counts = wikiann_to_docs(wikiann_path("zh", "dev"), VOCAB)
    assert [d.text for d in docs[:3]] == [
        "前鎮區", "# 埃居布朗", "廣達店 # 桃園縣龜山鄉文化二路 2 1 1 號（廣達電腦） # 0 3 - 3 9 6 - 0 3 0 3"]
    # 203,682 spaces before (one after every token but the last): 134,923 between CJK characters went
    assert sum(t.whitespace_ == " " for d in docs for t in d) == 68759 and counts["tokens"] == 213682
    tokenizer = create_multilingual_tokenizer()(spacy.blank("xx"))
    assert all([t.text for t in tokenizer(d.text)] == [t.text for t in d] for d in docs)


@needs_mirror
@pytest.mark.parametrize("treebank", ["zh_gsd", "ja_gsd"])
def test_mirror_ud_cjk_text_is_the_sentence_text(treebank):
    """SpaceAfter=No is honoured: without multiword tokens the doc's text is the treebank's # text."""
    path = ud_path(treebank, "test")
    texts = [line[len("# text = "):].rstrip("\n") for line in path.open(encoding="utf-8") if line.startswith("# text = ")]
    docs, counts = conllu_to_docs(path, VOCAB)
    assert counts["multiword_tokens_skipped"] == 0 and len(docs) == len(texts) == UD_SENTENCES[treebank]["test"]
    assert [d.text.rstrip() for d in docs] == [t.rstrip() for t in texts]


@pytest.mark.slow
@needs_mirror
@pytest.mark.parametrize("lang, split", [(lang, split) for lang, splits in WIKIANN_SENTENCES.items()
                                         for split in splits])
def test_mirror_every_wikiann_file(lang, split):
    assert sum(1 for _ in read_wikiann_tsv(wikiann_path(lang, split))) == WIKIANN_SENTENCES[lang][split]
