"""Within a run: optimizer.averages (use_averages = true) reach the torch modules and the saved pipeline."""
from pathlib import Path
from typing import Dict, List, Tuple

import numpy
import pytest
import spacy
import torch
from numpy.testing import assert_array_equal
from spacy.training import loop
from spacy.training.initialize import init_nlp
from spacy.util import load_config
from thinc.api import Adam, PyTorchShim, PyTorchWrapper

from conftest import REPO
from pipelines import SHORT_SPANS, examples, gold_docs, load_pipeline, tiny_overrides, write_docbins
from spacy_dlfa.layers.shims import AveragedParamsHFShim, AveragedParamsPyTorchShim

# A learning rate large enough that the averages differ visibly from the last weights after a few steps.
AVERAGES = {"training.optimizer.use_averages": True, "training.optimizer.learn_rate.initial_rate": 0.01,
            "training.optimizer.learn_rate.warmup_steps": 1}


def _torch_parameters(nlp) -> List[Tuple[str, PyTorchShim, str, torch.nn.Parameter]]:
    """(pipe, shim, name, parameter) of every torch parameter in the pipeline, in walk order."""
    found = []
    for pipe_name, pipe in nlp.pipeline:
        shims = []
        for node in pipe.model.walk():
            shims.extend(shim for shim in node.shims if shim not in shims)
        for shim in shims:
            for name, parameter in shim._model.named_parameters():
                found.append((pipe_name, shim, name, parameter))
    return found


def _train_with_averages(task: str, model_path: Path, steps: int = 3):
    nlp = load_pipeline(task, model_path, extra={"components.transformer.model.get_spans": SHORT_SPANS, **AVERAGES})
    egs = examples(nlp, gold_docs(task, nlp.vocab))
    optimizer = nlp.initialize(lambda: egs)
    assert optimizer.averages is not None
    for _ in range(steps):
        nlp.update(egs, sgd=optimizer, drop=0.1)
        optimizer.step_schedules()
    return nlp, optimizer


def _snapshot(nlp) -> Dict[Tuple[int, str], numpy.ndarray]:
    return {(shim.id, name): parameter.detach().numpy().copy() for _, shim, name, parameter in _torch_parameters(nlp)}


def _linear_updates(shim_class, steps: int = 4):
    torch.manual_seed(0)
    model = PyTorchWrapper(torch.nn.Linear(3, 2))
    model.shims[0].__class__ = shim_class
    optimizer = Adam(0.1, use_averages=True)
    X = numpy.ones((5, 3), dtype="f")
    for _ in range(steps):
        Y, backprop = model.begin_update(X)
        backprop(numpy.ones_like(Y))
        model.finish_update(optimizer)
    return model, optimizer


def test_stock_pytorch_shim_ignores_the_optimizer_averages():
    """thinc's own shim: the averages are keyed (shim.id, name) and use_params never applies them."""
    model, optimizer = _linear_updates(PyTorchShim)
    shim = model.shims[0]
    weight = shim._model.weight
    average = optimizer.averages[(shim.id, "weight")]
    assert not numpy.allclose(average, weight.detach().numpy())
    with model.use_params(optimizer.averages):
        assert_array_equal(weight.detach().numpy(), shim._model.weight.detach().numpy())
        assert not numpy.allclose(shim._model.weight.detach().numpy(), average)


def test_our_pytorch_shim_applies_the_optimizer_averages_and_restores():
    model, optimizer = _linear_updates(AveragedParamsPyTorchShim)
    shim = model.shims[0]
    current = {name: p.detach().numpy().copy() for name, p in shim._model.named_parameters()}
    X = numpy.ones((1, 3), dtype="f")
    with model.use_params(optimizer.averages):
        for name, parameter in shim._model.named_parameters():
            assert_array_equal(parameter.detach().numpy(), optimizer.averages[(shim.id, name)])
        averaged_output = model.predict(X)
    for name, parameter in shim._model.named_parameters():
        assert_array_equal(parameter.detach().numpy(), current[name])
    expected = X @ optimizer.averages[(shim.id, "weight")].T + optimizer.averages[(shim.id, "bias")]
    numpy.testing.assert_allclose(averaged_output, expected, rtol=1e-6)
    assert not numpy.allclose(model.predict(X), averaged_output)


def test_use_params_restores_the_weights_after_an_error():
    model, optimizer = _linear_updates(AveragedParamsPyTorchShim)
    before = model.shims[0]._model.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="inside"):
        with model.use_params(optimizer.averages):
            raise RuntimeError("inside")
    assert_array_equal(model.shims[0]._model.weight.detach().numpy(), before)


def test_averages_of_another_shape_are_rejected():
    model, optimizer = _linear_updates(AveragedParamsPyTorchShim)
    key = (model.shims[0].id, "weight")
    with pytest.raises(ValueError, match=r"'weight' has shape \(2, 2\), the parameter \(2, 3\)"):
        with model.use_params({key: numpy.zeros((2, 2), dtype="f")}):
            pass


@pytest.mark.parametrize("task", ["ner", "tagger"])
def test_pipeline_use_params_puts_the_averages_into_transformer_and_fusion(task, tiny_bert, single_torch_thread):
    nlp, optimizer = _train_with_averages(task, tiny_bert)
    parameters = _torch_parameters(nlp)
    shim_classes = {type(shim) for _, shim, _, _ in parameters}
    assert AveragedParamsHFShim in shim_classes and any(issubclass(c, AveragedParamsPyTorchShim) and c is not AveragedParamsHFShim
                                                       for c in shim_classes)
    averaged = [(shim, name, p) for _, shim, name, p in parameters if (shim.id, name) in optimizer.averages]
    # every trained torch parameter has an average; the frozen word embeddings and the unused pooler have none
    trained = {name for _, _, name, p in parameters if p.requires_grad and not name.startswith("pooler.")}
    assert {name for _, name, _ in averaged} == trained
    assert any("word_embeddings" in name for _, shim, name, _ in parameters if (shim.id, name) not in optimizer.averages)
    current = _snapshot(nlp)
    assert any(not numpy.array_equal(current[(shim.id, name)], optimizer.averages[(shim.id, name)]) for shim, name, _ in averaged)
    with nlp.use_params(optimizer.averages):
        for shim, name, parameter in averaged:
            assert_array_equal(parameter.detach().numpy(), optimizer.averages[(shim.id, name)])
        for key, value in _snapshot(nlp).items():
            if key not in optimizer.averages:
                assert_array_equal(value, current[key])
    for key, value in _snapshot(nlp).items():
        assert_array_equal(value, current[key])


def test_spacy_training_loop_saves_the_averaged_weights(tiny_bert, tmp_path, monkeypatch, single_torch_thread):
    paths = write_docbins(tmp_path, "ner")
    overrides = {**tiny_overrides("ner", tiny_bert), **AVERAGES, "paths.train": str(paths["train"]),
                 "paths.dev": str(paths["dev"]), "training.max_steps": 4, "training.eval_frequency": 2,
                 "components.transformer.model.get_spans": SHORT_SPANS}
    config = load_config(REPO / "configs" / "ner_dlfa.cfg", overrides=overrides, interpolate=False)
    seen = {}
    original = loop.train_while_improving

    def capture(nlp, optimizer, *args, **kwargs):
        seen["optimizer"] = optimizer
        return original(nlp, optimizer, *args, **kwargs)

    monkeypatch.setattr(loop, "train_while_improving", capture)
    nlp = init_nlp(config)
    (tmp_path / "out").mkdir()
    trained, _ = loop.train(nlp, tmp_path / "out")
    averages = seen["optimizer"].averages
    in_memory = _torch_parameters(trained)
    saved = _torch_parameters(spacy.load(tmp_path / "out" / "model-last"))
    assert [(pipe, name) for pipe, _, name, _ in saved] == [(pipe, name) for pipe, _, name, _ in in_memory]
    checked = 0
    for (_, shim, name, current), (_, _, _, stored) in zip(in_memory, saved):
        key = (shim.id, name)
        if key in averages:
            assert_array_equal(stored.detach().numpy(), averages[key])
            checked += 1
        else:
            assert_array_equal(stored.detach().numpy(), current.detach().numpy())
    assert checked > 0
    assert any(not numpy.array_equal(stored.detach().numpy(), current.detach().numpy())
               for (_, _, _, current), (_, _, _, stored) in zip(in_memory, saved))
