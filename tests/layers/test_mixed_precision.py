"""mixed_precision = true on spacy-dlfa.TransformerModel.v1 on CPU: bfloat16 autocast of the forward pass
(prediction and training) where the CPU computes bf16 natively, float32 arrays handed on, predictions
deterministic, round-trips, turned on for a saved pipeline by a config override; fp32 with a warning where
the CPU lacks bf16; never a gradient scaler on CPU; refused together with quantize."""
import re
import warnings
from pathlib import Path
from typing import List

import numpy
import pytest
import spacy
import torch
from conftest import SENTENCES
from pipelines import annotations, examples, gold_docs, load_pipeline, train_tiny
from spacy_transformers.span_getters import configure_strided_spans

import spacy_dlfa.layers.transformer as transformer_module
from spacy_dlfa.architectures import build_transformer_model
from spacy_dlfa.layers.precision import cpu_has_native_bf16

MIXED = "components.transformer.model.mixed_precision"
OVERRIDE = {"components": {"transformer": {"model": {"mixed_precision": True}}}}
OFF = {"components": {"transformer": {"model": {"mixed_precision": False}}}}
FALLBACK = r"mixed_precision = true runs in fp32 on this CPU: it has no native bfloat16"
needs_bf16 = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bfloat16 (AVX512-BF16, "
                                "AMX-BF16 or ARM BF16), so mixed_precision runs in fp32 here (tested with the check patched)")


def _last_hidden(nlp) -> numpy.ndarray:
    return numpy.concatenate([doc._.trf_data.model_output.last_hidden_state.reshape(-1, doc._.trf_data.width)
                              for doc in nlp.pipe(SENTENCES)])


def _watch_query(nlp) -> List[tuple]:
    """(output dtype, CPU autocast on) of every call of the first layer's query projection."""
    calls: List[tuple] = []
    query = nlp.get_pipe("transformer").model.transformer.encoder.layer[0].attention.self.query
    query.register_forward_hook(lambda module, args, output: calls.append((output.dtype, torch.is_autocast_enabled("cpu"))))
    return calls


def _no_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(transformer_module, "cpu_has_native_bf16", lambda: False)


@needs_bf16
def test_saved_pipeline_runs_bf16_by_override_float32_out_close_and_deterministic(trained_pipelines, single_torch_thread):
    fp32 = spacy.load(trained_pipelines["tagger"])
    bf16 = spacy.load(trained_pipelines["tagger"], config=OVERRIDE)
    fp32_calls, bf16_calls = _watch_query(fp32), _watch_query(bf16)
    reference, mixed = _last_hidden(fp32), _last_hidden(bf16)
    assert set(fp32_calls) == {(torch.float32, False)}
    assert set(bf16_calls) == {(torch.bfloat16, True)}
    for doc in bf16.pipe(SENTENCES):
        assert {array.dtype for array in doc._.trf_data.model_output.hidden_states} == {numpy.dtype("float32")}
    assert mixed.dtype == numpy.float32
    # bf16 matmul inputs keep 8 significant bits: close, not equal. Tolerance: every token's cosine to fp32
    # above 0.9999 and no value off by more than 0.01 (measured on the tiny model: 0.9999998 and 3e-4,
    # for values up to 3.5; e5-small's last layer: mean cosine 0.99999)
    assert not numpy.array_equal(reference, mixed)
    cosine = (reference * mixed).sum(1) / (numpy.linalg.norm(reference, axis=1) * numpy.linalg.norm(mixed, axis=1))
    assert cosine.min() > 0.9999
    numpy.testing.assert_allclose(mixed, reference, rtol=0, atol=0.01)
    numpy.testing.assert_array_equal(_last_hidden(bf16), mixed)
    assert annotations(bf16.pipe(SENTENCES)) == annotations(bf16.pipe(SENTENCES))


@needs_bf16
def test_bf16_pipeline_round_trips(trained_pipelines, tmp_path: Path, single_torch_thread):
    bf16 = spacy.load(trained_pipelines["ner"], config=OVERRIDE)
    bf16.to_disk(tmp_path / "saved")
    reloaded = spacy.load(tmp_path / "saved")  # its saved config says mixed_precision = true
    calls = _watch_query(reloaded)
    numpy.testing.assert_array_equal(_last_hidden(reloaded), _last_hidden(bf16))
    assert annotations(reloaded.pipe(SENTENCES)) == annotations(bf16.pipe(SENTENCES))
    assert set(calls) == {(torch.bfloat16, True)}
    # weights on disk stay float32; the override turns it off again
    fp32 = spacy.load(tmp_path / "saved", config=OFF)
    assert {p.dtype for p in fp32.get_pipe("transformer").model.transformer.parameters()} == {torch.float32}
    numpy.testing.assert_array_equal(_last_hidden(fp32), _last_hidden(spacy.load(trained_pipelines["ner"])))


def test_without_native_bf16_it_runs_fp32_with_a_warning(trained_pipelines, monkeypatch, single_torch_thread):
    _no_native_bf16(monkeypatch)
    with pytest.warns(UserWarning, match=FALLBACK) as caught:
        fallback = spacy.load(trained_pipelines["tagger"], config=OVERRIDE)
    assert len([w for w in caught if "mixed_precision" in str(w.message)]) == 1
    calls = _watch_query(fallback)
    numpy.testing.assert_array_equal(_last_hidden(fallback), _last_hidden(spacy.load(trained_pipelines["tagger"])))
    assert set(calls) == {(torch.float32, False)}


@pytest.mark.parametrize("native", [pytest.param(True, marks=needs_bf16), False], ids=["bf16", "fp32-fallback"])
def test_training_step_with_mixed_precision(tiny_bert, monkeypatch, native, single_torch_thread):
    if not native:
        _no_native_bf16(monkeypatch)
    before, _ = train_tiny("tagger", tiny_bert, steps=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp, losses = train_tiny("tagger", tiny_bert, steps=2, extra={MIXED: True, "training.optimizer.learn_rate": 0.001})
    assert len([w for w in caught if re.search(FALLBACK, str(w.message))]) == (0 if native else 1)
    assert all(numpy.isfinite(step["tagger"]) and step["tagger"] > 0 for step in losses)
    model = nlp.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    assert shim.cpu_precision == ("bf16" if native else "fp32")
    assert not shim._grad_scaler._enabled  # thinc's scaler refuses CPU tensors; bf16 needs none
    trained = dict(model.transformer.named_parameters())
    initial = dict(before.get_pipe("transformer").model.transformer.named_parameters())
    query = "encoder.layer.0.attention.self.query.weight"
    assert trained[query].dtype == torch.float32
    assert not torch.equal(trained[query], initial[query])
    # the forward pass of a step autocasts, its backward does not (thinc's rule for autocast)
    calls = _watch_query(nlp)
    in_backward: List[bool] = []
    trained[query].register_hook(lambda grad: in_backward.append(torch.is_autocast_enabled("cpu")) or grad)
    nlp.update(examples(nlp, gold_docs("tagger", nlp.vocab)), drop=0.0)
    assert set(calls) == ({(torch.bfloat16, True)} if native else {(torch.float32, False)})
    assert in_backward and not any(in_backward)


def test_default_grad_scaler_config_is_not_shared_between_models(tiny_bert):
    # HFShim writes "enabled" into the grad_scaler_config it gets: a mixed-precision model built first
    # must not turn on the scaler of every later model built with the default
    spans = configure_strided_spans(window=24, stride=20)
    build_transformer_model(str(tiny_bert), spans, mixed_precision=True)
    plain = build_transformer_model(str(tiny_bert), spans)
    assert not plain.layers[0].shims[0]._grad_scaler._enabled


def test_mixed_precision_with_quantize_is_refused_at_build_time(tiny_bert):
    with pytest.raises(ValueError, match=r"quantize = 'int8' and mixed_precision = true: choose one.*\"mixed_precision\": False"):
        load_pipeline("tagger", tiny_bert, extra={MIXED: True, "components.transformer.model.quantize": "int8"})
