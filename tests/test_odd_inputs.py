"""Long and odd text through trained tiny NER and tagger pipelines: empty, one-token and 5,000-token
docs (many strided spans), whitespace, emoji, zero-width characters, mixed and right-to-left scripts,
languages never seen in training, a token longer than the model's window."""
from typing import Dict, List

import numpy
import pytest
import spacy
from conftest import TINY_WIDTH
from numpy.testing import assert_allclose
from pipelines import SHORT_SPANS, annotations, fusion_listener
from spacy.language import Language
from spacy.tokens import Doc

ODD_TEXTS: Dict[str, str] = {
    "empty": "",
    "one_token": "Paris",
    "whitespace_only": " \t\n   \n",
    "emoji": "🙂 Angela Merkel 🎉👍🏽 visited 👨‍👩‍👧 Paris 🇫🇷",
    "zero_width_inside_words": "Par\u200bis Mer\u200dkel \ufeffBerlin",
    "zero_width_only": "\u200b \u200d \ufeff \u200b\u200d\ufeff",
    "mixed_scripts": "Paris 北京 Москва القاهرة Αθήνα İstanbul",
    "arabic": "ذهب محمد إلى القاهرة يوم الأحد .",
    "hebrew": "ראש הממשלה ביקר בירושלים ביום שני .",
    "bidi_controls": "Merkel \u202bقالت שלום\u202c in \u200fBerlin\u200e .",
    "unseen_georgian": "საქართველოს დედაქალაქი თბილისია .",
    "unseen_thai_no_spaces": "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "control_characters": "Paris\x00 \x07Berlin\x1b[0m \x7f",
    "token_longer_than_the_window": "ab" * 45,  # WordPiece splits it into more pieces than the 64 positions
}
# Each of these is one wordpiece of the tiny tokenizer, so a long doc of them aligns every token.
ONE_PIECE_WORDS = ["Paris", "Merkel", "visited", "Berlin", "Madrid", "in", "."]
LONG_DOC_TOKENS = 5000

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module", params=["ner", "tagger"])
def trained(request, trained_pipelines) -> Language:
    return spacy.load(trained_pipelines[request.param])


def task_of(nlp: Language) -> str:
    return "ner" if "ner" in nlp.pipe_names else "tagger"


def assert_fully_annotated(nlp: Language, doc: Doc) -> None:
    assert len(doc) == len(nlp.make_doc(doc.text))
    if task_of(nlp) == "tagger":
        assert all(token.tag_ for token in doc), [(t.text, t.tag_) for t in doc]
    else:
        assert all(token.ent_iob_ in ("B", "I", "O") for token in doc), [(t.text, t.ent_iob_) for t in doc]
        assert all(0 <= ent.start < ent.end <= len(doc) for ent in doc.ents)


def fused_vectors(nlp: Language, docs: List[Doc]) -> List[numpy.ndarray]:
    return fusion_listener(nlp, task_of(nlp)).predict(docs)


@pytest.mark.parametrize("name", list(ODD_TEXTS))
def test_odd_text_is_annotated_alike_by_call_and_pipe(trained, name):
    text = ODD_TEXTS[name]
    doc = trained(text)
    assert_fully_annotated(trained, doc)
    piped = list(trained.pipe([text, "Angela Merkel visited Paris .", text], batch_size=2))
    assert annotations(piped[::2]) == annotations([doc, doc])
    (vectors,) = fused_vectors(trained, [doc])
    assert vectors.shape == (len(doc), TINY_WIDTH) and numpy.isfinite(vectors).all()


def test_odd_texts_in_one_batch_match_one_by_one(trained):
    texts = list(ODD_TEXTS.values())
    one_by_one = [trained(text) for text in texts]
    batched = list(trained.pipe(texts, batch_size=len(texts)))
    assert annotations(batched) == annotations(one_by_one)
    # Padding to the batch's longest span may change the last bits, nothing more.
    for alone, together in zip(fused_vectors(trained, one_by_one), fused_vectors(trained, batched)):
        assert_allclose(alone, together, atol=1e-5)


def test_doc_far_longer_than_the_window(trained):
    text = " ".join(ONE_PIECE_WORDS[i % len(ONE_PIECE_WORDS)] for i in range(LONG_DOC_TOKENS))
    doc = trained(text)
    assert len(doc) == LONG_DOC_TOKENS
    assert_fully_annotated(trained, doc)
    trf_data = doc._.trf_data
    window, stride = SHORT_SPANS["window"], SHORT_SPANS["stride"]
    assert len(trf_data.wordpieces.input_ids) == -(-(LONG_DOC_TOKENS - window) // stride) + 1  # strided spans
    assert len(trf_data.align) == LONG_DOC_TOKENS and (trf_data.align.lengths > 0).all()
    (vectors,) = fused_vectors(trained, [doc])
    assert vectors.shape == (LONG_DOC_TOKENS, TINY_WIDTH) and numpy.isfinite(vectors).all()
    assert (numpy.abs(vectors).sum(axis=1) > 0).all()
    piped = list(trained.pipe(["", text, "Paris"], batch_size=3))
    assert annotations(piped[1:2]) == annotations([doc]) and len(piped[0]) == 0 and len(piped[2]) == 1
