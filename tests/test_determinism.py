"""Seeded training is reproducible, and disk and bytes round trips keep the predictions and the
fused vectors of trained tiny pipelines."""
from typing import List, Tuple

import numpy
import pytest
import spacy
from conftest import SENTENCES
from numpy.testing import assert_allclose, assert_array_equal
from pipelines import annotations, fusion_listener, train_tiny
from spacy.language import Language
from spacy.util import load_model_from_config
from thinc.api import fix_random_seed

TEXTS = SENTENCES[:5] + ["", "🙂 Paris \u200b Berlin", " ".join(["Paris", "Madrid", "."] * 30)]

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def task_of(nlp: Language) -> str:
    return "ner" if "ner" in nlp.pipe_names else "tagger"


def outputs(nlp: Language) -> Tuple[List[List[tuple]], List[numpy.ndarray], List[numpy.ndarray]]:
    """Annotations, fused vectors, and the tagger's scores (none for NER)."""
    docs = list(nlp.pipe(TEXTS))
    task = task_of(nlp)
    scores = nlp.get_pipe("tagger").predict(docs) if task == "tagger" else []
    return annotations(docs), fusion_listener(nlp, task).predict(docs), scores


def test_same_seed_same_losses_and_predictions(tiny_bert):
    nlp_a, losses_a = train_tiny("ner", tiny_bert, seed=0)
    nlp_b, losses_b = train_tiny("ner", tiny_bert, seed=0)
    assert losses_a == losses_b and all(step["ner"] > 0 for step in losses_a)
    (ents_a, vectors_a, _), (ents_b, vectors_b, _) = outputs(nlp_a), outputs(nlp_b)
    assert ents_a == ents_b
    for a, b in zip(vectors_a, vectors_b):
        assert_array_equal(a, b)
    _, losses_other_seed = train_tiny("ner", tiny_bert, seed=1, steps=1)
    assert losses_other_seed[0] != losses_a[0]


def test_tiny_training_moves_the_transformer(tiny_bert):
    """train_tiny steps the learning-rate schedule as spaCy's loop does (warmup_linear starts at 0), so the
    pipelines other tests train have moved from their initial weights."""
    import torch

    def weights(steps: int):
        nlp, _ = train_tiny("tagger", tiny_bert, seed=0, steps=steps)
        return nlp.get_pipe("transformer").model.transformer.state_dict()

    start, trained = weights(0), weights(3)  # the default; the first two steps send no gradient to the transformer (zero-initialised softmax)
    assert any(not torch.equal(start[key], trained[key]) for key in start)


@pytest.mark.parametrize("task", ["ner", "tagger"])
def test_disk_and_bytes_round_trips_keep_predictions_and_fused_vectors(task, trained_pipelines, tmp_path):
    nlp = spacy.load(trained_pipelines[task])
    reference = outputs(nlp)
    nlp.to_disk(tmp_path / "copy")
    from_disk = spacy.load(tmp_path / "copy")
    fix_random_seed(12345)  # a fresh pipeline from the same config, seeded otherwise: only the bytes can make it agree
    from_bytes = load_model_from_config(nlp.config, auto_fill=True, validate=True).from_bytes(nlp.to_bytes())
    for copy in (from_disk, from_bytes):
        copied_annotations, *copied_arrays = outputs(copy)
        assert copied_annotations == reference[0]
        for copied, original in zip(copied_arrays, reference[1:]):
            assert len(copied) == len(original)
            for a, b in zip(copied, original):
                assert a.shape == b.shape
                assert_allclose(a, b, rtol=0, atol=1e-6)
    assert sum(len(vectors) for vectors in reference[1]) == sum(len(nlp.make_doc(text)) for text in TEXTS)
