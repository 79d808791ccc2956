"""The whole path transformer -> FusionListener -> AIF -> loss against pure PyTorch."""
import copy
from typing import Dict, List

import numpy
import pytest
import torch
from pipelines import examples, fusion_listener, load_pipeline, tagged_docs
from spacy.training import Example
from spacy_transformers.layers.transformer_model import _convert_transformer_outputs

FUSED_LAYER = 2


def _relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).norm() / reference.norm().clamp(min=1e-12))


def _spacy_gradients(nlp, docs, d_outputs: List[numpy.ndarray]) -> Dict[str, torch.Tensor]:
    """Run one update through the Transformer component and the listener; no optimizer step."""
    transformer = nlp.get_pipe("transformer")
    listener = fusion_listener(nlp, "tagger")
    transformer.update([Example(doc, doc) for doc in docs], sgd=None)
    outputs, backprop = listener.begin_update(docs)
    backprop(d_outputs)
    return {name: p.grad.detach().clone() for name, p in transformer.model.transformer.named_parameters() if p.grad is not None}


def _reference_gradients(nlp, docs, d_outputs: List[numpy.ndarray]) -> Dict[str, torch.Tensor]:
    """The same computation in plain PyTorch on copies of the same weights."""
    transformer = nlp.get_pipe("transformer")
    hf_model = copy.deepcopy(transformer.model.transformer)
    hf_model.zero_grad(set_to_none=True)
    aif = copy.deepcopy(fusion_listener(nlp, "tagger").layers[1].layers[0].shims[0]._model)
    batch = transformer.model.predict(docs)
    wordpieces = batch.wordpieces
    hidden_states = hf_model(
        input_ids=torch.as_tensor(wordpieces.input_ids),
        attention_mask=torch.as_tensor(wordpieces.attention_mask),
        output_hidden_states=True,
    ).hidden_states
    fuse_at = fusion_listener(nlp, "tagger").layers[1].attrs["fuse_at"]
    token_vectors = []
    for start, doc_data in enumerate(batch.doc_data):
        assert doc_data.model_output.last_hidden_state.shape[0] == 1, "one span per doc in this test"
        rows = [layer[start].reshape(-1, layer.shape[-1]) for layer in (hidden_states[-1], hidden_states[FUSED_LAYER])]
        pieces = torch.as_tensor(doc_data.align.dataXd, dtype=torch.long)
        token_ids = torch.repeat_interleave(torch.as_tensor(doc_data.align.lengths, dtype=torch.long))
        def pool(x, token_ids=token_ids, n_tokens=len(doc_data.align.lengths)):
            return torch.zeros(n_tokens, x.shape[1]).index_add_(0, token_ids, x) / torch.bincount(token_ids)[:, None]
        if fuse_at == "token":
            last, lower = (pool(layer_rows[pieces]) for layer_rows in rows)
            token_vectors.append(aif(last, lower, torch.as_tensor([len(last)])))
        else:
            last, lower = (layer_rows[pieces] for layer_rows in rows)
            token_vectors.append(pool(aif(last, lower, torch.as_tensor([len(last)]))))
    fused = torch.cat(token_vectors)
    (fused * torch.as_tensor(numpy.concatenate(d_outputs))).sum().backward()
    return {name: p.grad for name, p in hf_model.named_parameters() if p.grad is not None}


@pytest.fixture(params=["token", "wordpiece"])
def trained_tagger(tiny_bert, request):
    settings = {"components.tagger.model.tok2vec.fusion_layer": FUSED_LAYER, "components.tagger.model.tok2vec.fuse_at": request.param}
    nlp = load_pipeline("tagger", tiny_bert, extra=settings)
    docs = tagged_docs(nlp.vocab)
    nlp.initialize(lambda: examples(nlp, docs))
    rng = numpy.random.default_rng(0)
    d_outputs = [rng.standard_normal((len(doc), 32)).astype("f") for doc in docs]
    return nlp, docs, d_outputs


def _comparable(reference: Dict[str, torch.Tensor]) -> List[str]:
    # A key bias shifts every attention logit of a query equally, so softmax
    # cancels it: its exact gradient is zero and a relative error is noise/noise.
    return [n for n in reference if not n.endswith("attention.self.key.bias")]


def _errors_below_fused_layer(ours, reference) -> List[float]:
    names = [n for n in _comparable(reference) if n.startswith("encoder.layer.") and int(n.split(".")[2]) < FUSED_LAYER]
    assert names, "the reference has gradients for the layers below the fused one"
    return [_relative_error(ours[n], reference[n]) for n in names]


def test_gradients_match_pytorch_reference(trained_tagger):
    nlp, docs, d_outputs = trained_tagger
    ours = _spacy_gradients(nlp, docs, d_outputs)
    reference = _reference_gradients(nlp, docs, d_outputs)
    assert set(ours) == set(reference)
    print(f"max relative gradient error below layer {FUSED_LAYER}, ours: {max(_errors_below_fused_layer(ours, reference)):.2e}")
    assert max(_errors_below_fused_layer(ours, reference)) <= 1e-4
    assert max(_relative_error(ours[n], reference[n]) for n in _comparable(reference)) <= 1e-4
    scale = max(float(g.abs().max()) for g in reference.values())
    assert all(float(ours[n].abs().max()) <= 1e-5 * scale for n in reference if n not in _comparable(reference))


def test_stock_output_conversion_fails_the_same_check(trained_tagger):
    nlp, docs, d_outputs = trained_tagger
    nlp.get_pipe("transformer").model.layers[0].attrs["convert_outputs"] = _convert_transformer_outputs
    try:
        ours = _spacy_gradients(nlp, docs, d_outputs)
    except RuntimeError:
        return  # torch refused the mismatched gradient list: the stock path cannot pass either
    reference = _reference_gradients(nlp, docs, d_outputs)
    print(f"max relative gradient error below layer {FUSED_LAYER}, stock conversion: {max(_errors_below_fused_layer(ours, reference)):.2e}")
    assert max(_errors_below_fused_layer(ours, reference)) > 1e-2
