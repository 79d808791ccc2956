"""quantize = "int8" on spacy-dlfa.TransformerModel.v1: a saved pipeline loads in int8 by a config
override, predicts deterministically and close to fp32, saves fp32 weights and loads back to the same
int8 model; ignored with a warning off CPU, refused in training and for unknown values."""
from pathlib import Path
from typing import Dict

import numpy
import pytest
import spacy
import torch
from conftest import SENTENCES, TINY_LAYERS
from pipelines import annotations, examples, gold_docs, load_pipeline, train_tiny
from thinc.api import NumpyOps

from spacy_dlfa.layers.quantize import (
    QUANTIZE_SCHEMES,
    Int8Linear,
    SmoothedInt8Linear,
    check_quantize,
    quantize_model,
    record_input_absmax,
    smoothing_scales,
)

QUANTIZE = "components.transformer.model.quantize"
INT8 = {"components": {"transformer": {"model": {"quantize": "int8"}}}}


def _int8_layers(nlp) -> Dict[str, Int8Linear]:
    transformer = nlp.get_pipe("transformer").model.transformer
    return {name: module for name, module in transformer.named_modules() if isinstance(module, Int8Linear)}


def _last_hidden(nlp):
    return numpy.concatenate([doc._.trf_data.model_output.last_hidden_state.reshape(-1, doc._.trf_data.width)
                              for doc in nlp.pipe(SENTENCES)])


def test_saved_pipeline_loads_in_int8_and_predicts_deterministically(trained_pipelines, single_torch_thread):
    fp32 = spacy.load(trained_pipelines["tagger"])
    int8 = spacy.load(trained_pipelines["tagger"], config=INT8)
    assert not _int8_layers(fp32)
    # per layer: query, key, value, attention output in int8; the feed-forward input too, its output in fp32
    names = set(_int8_layers(int8))
    assert len(names) == 5 * TINY_LAYERS
    assert not any(QUANTIZE_SCHEMES["int8"](name) for name in names)
    first, second = annotations(int8.pipe(SENTENCES)), annotations(int8.pipe(SENTENCES))
    assert first == second
    numpy.testing.assert_array_equal(_last_hidden(int8), _last_hidden(int8))
    reference, quantized = _last_hidden(fp32), _last_hidden(int8)
    assert not numpy.array_equal(reference, quantized)
    cosine = (reference * quantized).sum(1) / (numpy.linalg.norm(reference, axis=1) * numpy.linalg.norm(quantized, axis=1))
    assert cosine.mean() > 0.95


def test_int8_pipeline_saves_fp32_weights_and_round_trips(trained_pipelines, tmp_path: Path, single_torch_thread):
    int8 = spacy.load(trained_pipelines["ner"], config=INT8)
    int8.to_disk(tmp_path / "saved")
    # on disk: exactly the fp32 weights it was loaded from, loadable without quantization
    original = spacy.load(trained_pipelines["ner"]).get_pipe("transformer").model.transformer.state_dict()
    reloaded_fp32 = spacy.load(tmp_path / "saved", config={"components": {"transformer": {"model": {"quantize": None}}}})
    assert not _int8_layers(reloaded_fp32)
    saved = reloaded_fp32.get_pipe("transformer").model.transformer.state_dict()
    assert saved.keys() == original.keys()
    assert all(torch.equal(saved[key], original[key]) for key in original)
    # loaded with its own config (quantize = "int8"): quantized again, to the same predictions
    reloaded = spacy.load(tmp_path / "saved")
    assert set(_int8_layers(reloaded)) == set(_int8_layers(int8))
    numpy.testing.assert_array_equal(_last_hidden(reloaded), _last_hidden(int8))
    assert annotations(reloaded.pipe(SENTENCES)) == annotations(int8.pipe(SENTENCES))


class GpuLikeOps(NumpyOps):
    """NumpyOps that says it is a GPU: what the quantize check looks at."""

    name = "gpu-like"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.device_type = "gpu"


def test_quantize_is_ignored_with_a_warning_off_cpu(tiny_bert, single_torch_thread):
    nlp = load_pipeline("tagger", tiny_bert, extra={QUANTIZE: "int8"})
    nlp.get_pipe("transformer").model.ops = GpuLikeOps()
    egs = examples(nlp, gold_docs("tagger", nlp.vocab))
    with pytest.warns(UserWarning, match=r"quantize = 'int8' ignored: int8 runs on CPU only.*GpuLikeOps.*stays fp32"):
        nlp.initialize(lambda: egs)
    assert not _int8_layers(nlp)
    assert len(list(nlp.pipe(SENTENCES))) == len(SENTENCES)


def test_quantize_applies_after_initialize_and_training_is_refused(tiny_bert, single_torch_thread):
    with pytest.raises(ValueError, match=r"quantize = 'int8' is for inference only.*quantize = null"):
        train_tiny("tagger", tiny_bert, steps=1, extra={QUANTIZE: "int8"})
    nlp = load_pipeline("tagger", tiny_bert, extra={QUANTIZE: "int8"})
    nlp.initialize(lambda: examples(nlp, gold_docs("tagger", nlp.vocab)))
    assert len(_int8_layers(nlp)) == 5 * TINY_LAYERS


def test_int8_all_quantizes_every_linear_and_warns_without_int8_dot_products(trained_pipelines, monkeypatch,
                                                                            single_torch_thread):
    int8 = spacy.load(trained_pipelines["tagger"], config=INT8)
    every = spacy.load(trained_pipelines["tagger"], config={"components": {"transformer": {"model": {"quantize": "int8-all"}}}})
    assert len(_int8_layers(every)) == 6 * TINY_LAYERS and set(_int8_layers(int8)) < set(_int8_layers(every))
    assert annotations(every.pipe(SENTENCES)) == annotations(every.pipe(SENTENCES))
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True}, raising=False)
    with pytest.warns(UserWarning, match='"int8-all" on a CPU without int8 dot products'):
        spacy.load(trained_pipelines["tagger"], config={"components": {"transformer": {"model": {"quantize": "int8-all"}}}})


@pytest.mark.parametrize("value", ["int4", "INT8", ""])
def test_unknown_quantize_is_refused_at_build_time(tiny_bert, value):
    with pytest.raises(ValueError, match=f"quantize = '{value}': expected null \\(fp32\\) or one of \"int8\", \"int8-all\", \"int8-smooth\""):
        load_pipeline("tagger", tiny_bert, extra={QUANTIZE: value})
    check_quantize(None)
    check_quantize("int8")


def _int8_error(reduce_range: bool) -> float:
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    x = torch.randn(16, 64)
    x[:, 3] *= 20.0  # an outlier channel, as in transformer activations
    with torch.no_grad():
        return (Int8Linear(linear, reduce_range=reduce_range)(x) - linear(x)).abs().max().item()


@pytest.mark.skipif(not torch.backends.quantized.supported_engines or "fbgemm" not in torch.backends.quantized.supported_engines
                    and "x86" not in torch.backends.quantized.supported_engines, reason="no x86 quantized engine in this torch build")
def test_8_bit_activations_are_closer_to_fp32_than_7_bit():
    seven, eight = _int8_error(reduce_range=True), _int8_error(reduce_range=False)
    assert eight < 0.75 * seven  # one more bit: about half the activation rounding error


@pytest.mark.parametrize("capabilities, reduce_range", [({"avx512_vnni": True}, False), ({"amx_int8": True}, False),
                                                         ({"avx_vnni": True}, False), ({"avx2": True, "avx512_vnni": False}, True)])
def test_activations_use_8_bits_only_where_the_cpu_has_int8_dot_products(monkeypatch, capabilities, reduce_range):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
    layer = Int8Linear(torch.nn.Linear(8, 4))
    assert layer.reduce_range is reduce_range
    assert f"{7 if reduce_range else 8}-bit activations" in repr(layer)
    assert set(layer.state_dict()) == {"weight", "bias"}  # still the fp32 state of the nn.Linear it replaced


def test_smoothing_scales_are_smoothquants():
    # s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), W out x in: column maxima 1 and 4
    weight = torch.tensor([[1.0, -4.0], [-0.5, 2.0]])
    assert torch.equal(smoothing_scales(torch.tensor([4.0, 1.0]), weight, alpha=0.5), torch.tensor([2.0, 0.5]))
    assert torch.equal(smoothing_scales(torch.tensor([4.0, 1.0]), weight, alpha=1.0), torch.tensor([4.0, 1.0]))
    # a channel never active gets the clamped range, not a zero scale: 1e-5^0.75 / 1^0.25; 16^0.75 / 16^0.25 = 4
    torch.testing.assert_close(smoothing_scales(torch.tensor([0.0, 16.0]), torch.tensor([[1.0, 16.0]]), alpha=0.75),
                               torch.tensor([1e-5 ** 0.75, 4.0]))


def _outlier_batch() -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randn(32, 64)
    x[:, 3] *= 40.0  # an outlier channel, as in the feed-forward output's input
    return x


def test_smoothed_int8_is_the_same_product_before_rounding_and_closer_to_fp32():
    torch.manual_seed(1)
    linear, x = torch.nn.Linear(64, 32), _outlier_batch()
    scales = smoothing_scales(x.abs().amax(0), linear.weight)
    smoothed = SmoothedInt8Linear(linear, scales, reduce_range=False)
    with torch.no_grad():
        torch.testing.assert_close(torch.nn.functional.linear(x / scales, smoothed.int8_weight(), linear.bias), linear(x))
        plain_error = (Int8Linear(linear, reduce_range=False)(x) - linear(x)).abs().mean().item()
        smoothed_error = (smoothed(x) - linear(x)).abs().mean().item()
    assert smoothed_error < 0.5 * plain_error
    assert set(smoothed.state_dict()) == {"weight", "bias"} and torch.equal(smoothed.weight, linear.weight)
    with pytest.raises(ValueError, match=r"smoothing scales of shape \(63,\) for a linear layer of 64 inputs"):
        SmoothedInt8Linear(linear, scales[:63])


def test_record_input_absmax_keeps_the_largest_input_per_channel_and_removes_its_hooks():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    with record_input_absmax(model, ["0"]) as found, torch.no_grad():
        model(torch.tensor([[1.0, -5.0, 0.0]]))
        model(torch.tensor([[[-2.0, 1.0, 0.5]]]))
    assert torch.equal(found["0"], torch.tensor([2.0, 5.0, 0.5]))
    assert not model[0]._forward_pre_hooks
    with torch.no_grad():
        model(torch.tensor([[9.0, 9.0, 9.0]]))
    assert torch.equal(found["0"], torch.tensor([2.0, 5.0, 0.5]))


def test_int8_smooth_without_input_ranges_is_refused(tiny_bert):
    from transformers import AutoModel

    with pytest.raises(ValueError, match=rf'quantize = .int8-smooth. needs the activation ranges of {TINY_LAYERS} layers '
                                         r'\(e.g. encoder.layer.0.output.dense\).*python -m spacy_dlfa calibrate'):
        quantize_model(AutoModel.from_pretrained(tiny_bert), "int8-smooth")
