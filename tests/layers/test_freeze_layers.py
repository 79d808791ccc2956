"""freeze_layers: the embeddings and the bottom k layers stay as loaded, the layers above learn
exactly as without freezing, and a fused layer inside the frozen part still works."""
from typing import Dict

import pytest
import torch
from conftest import TINY_LAYERS
from pipelines import examples, gold_docs, load_pipeline, train_tiny
from spacy.training import Example
from thinc.api import fix_random_seed
from transformers import AutoModel

FREEZE = "components.transformer.model.freeze_layers"


def _weights(nlp) -> Dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in nlp.get_pipe("transformer").model.transformer.named_parameters()}


def _frozen(name: str, k: int) -> bool:
    return name.startswith("embeddings.") or any(name.startswith(f"encoder.layer.{i}.") for i in range(k))


def test_bottom_layers_keep_their_weights(tiny_bert, single_torch_thread):
    # fusion_layer 1 (pipelines.tiny_overrides) is the output of layer 0: inside the frozen part
    before = {name: p.detach().clone() for name, p in AutoModel.from_pretrained(str(tiny_bert)).named_parameters()}
    # a constant rate: the configs' warm-up hardly moves the weights in 3 updates
    nlp, losses = train_tiny("tagger", tiny_bert, steps=3, extra={FREEZE: 1, "training.optimizer.learn_rate": 0.001})
    after = _weights(nlp)
    frozen = [name for name in after if _frozen(name, 1)]
    trained = [name for name in after if not _frozen(name, 1) and not name.startswith("pooler.")]
    assert frozen and trained
    assert all(torch.equal(before[name], after[name]) for name in frozen)
    assert all(not torch.equal(before[name], after[name]) for name in trained)
    assert losses[-1]["tagger"] < losses[0]["tagger"]


def _gradients(tiny_bert, k: int) -> Dict[str, torch.Tensor]:
    fix_random_seed(0)
    nlp = load_pipeline("tagger", tiny_bert, extra={FREEZE: k})
    egs = examples(nlp, gold_docs("tagger", nlp.vocab))
    nlp.initialize(lambda: egs)
    transformer = nlp.get_pipe("transformer").model.transformer
    nlp.update([Example(eg.predicted, eg.reference) for eg in egs], sgd=None, drop=0.0)
    return {name: p.grad.clone() for name, p in transformer.named_parameters() if p.grad is not None}


def test_layers_above_get_the_unfrozen_gradients(tiny_bert, single_torch_thread):
    full, frozen = _gradients(tiny_bert, 0), _gradients(tiny_bert, 1)
    assert set(frozen) == {name for name in full if not _frozen(name, 1)}
    for name, gradient in frozen.items():
        torch.testing.assert_close(gradient, full[name], rtol=1e-5, atol=1e-7)


def test_freezing_every_layer_is_refused(tiny_bert):
    nlp = load_pipeline("tagger", tiny_bert, extra={FREEZE: TINY_LAYERS})
    egs = examples(nlp, gold_docs("tagger", nlp.vocab))
    with pytest.raises(ValueError, match=f"freeze_layers = {TINY_LAYERS} freezes all {TINY_LAYERS} layers.*grad_factor = 0"):
        nlp.initialize(lambda: egs)
        nlp.update(egs)


def test_negative_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="freeze_layers = -1: expected 0"):
        load_pipeline("tagger", tiny_bert, extra={FREEZE: -1})
