"""Within a run: optimizer.averages (use_averages = true) reach the torch modules and the saved pipeline."""
import configparser
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy
import pytest
import spacy
import torch
from conftest import REPO
from numpy.testing import assert_array_equal
from pipelines import SHORT_SPANS, examples, gold_docs, load_pipeline, tiny_overrides, write_docbins
from spacy.training import loop
from spacy.training.initialize import init_nlp
from spacy.util import load_config
from thinc.api import Adam, PyTorchShim, PyTorchWrapper

from spacy_dlfa.layers.shims import AveragedParamsHFShim, AveragedParamsPyTorchShim
from spacy_dlfa.optimizers import UniformAveragingOptimizer

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


def test_stock_hf_shim_leaves_the_transformer_at_its_current_weights(tiny_bert, single_torch_thread):
    """spacy-transformers' own HFShim inherits thinc's use_params: the transformer ignores the averages."""
    from spacy_transformers.layers.hf_shim import HFShim

    nlp, optimizer = _train_with_averages("tagger", tiny_bert)
    transformer = [(shim, name, p) for pipe, shim, name, p in _torch_parameters(nlp) if pipe == "transformer"]
    transformer[0][0].__class__ = HFShim
    current = _snapshot(nlp)
    averaged = [(shim, name, p) for shim, name, p in transformer if (shim.id, name) in optimizer.averages]
    assert averaged and any(not numpy.array_equal(current[(s.id, n)], optimizer.averages[(s.id, n)]) for s, n, _ in averaged)
    with nlp.use_params(optimizer.averages):
        for shim, name, parameter in averaged:
            assert_array_equal(parameter.detach().numpy(), current[(shim.id, name)])


UNIFORM = {"training.optimizer": {"@optimizers": "spacy-dlfa.UniformAveragingAdam.v1", "average_start": 2, "L2": 0.01,
                                   "learn_rate": {"@schedules": "warmup_linear.v1", "warmup_steps": 1, "total_steps": 4,
                                                  "initial_rate": 0.01}}}


@pytest.mark.parametrize("optimizer", ["thinc", "uniform"])
def test_spacy_training_loop_saves_the_averaged_weights(optimizer, tiny_bert, tmp_path, monkeypatch, single_torch_thread):
    paths = write_docbins(tmp_path, "ner")
    overrides = {**tiny_overrides("ner", tiny_bert), **(AVERAGES if optimizer == "thinc" else UNIFORM), "paths.train": str(paths["train"]),
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
    assert isinstance(seen["optimizer"], UniformAveragingOptimizer) == (optimizer == "uniform")
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


@pytest.mark.parametrize("start", [0, 3])
def test_uniform_averaging_optimizer_keeps_the_mean_after_the_start(start):
    optimizer = UniformAveragingOptimizer(0.1, average_start=start, L2=0.01)
    rng = numpy.random.default_rng(0)
    weights = rng.normal(size=(4, 3)).astype("f")
    after = []
    for update in range(1, 8):
        weights, _ = optimizer((7, "W"), weights, rng.normal(size=(4, 3)).astype("f"))
        after.append(weights.copy())
        average = optimizer.averages[(7, "W")]
        assert average is not weights
        if update <= start + 1:
            assert_array_equal(average, weights)
        else:
            numpy.testing.assert_allclose(average, numpy.mean(after[start:], axis=0), rtol=1e-5, atol=1e-6)
            assert not numpy.allclose(average, weights)
    assert optimizer.nr_update[(7, "W")] == 7


def test_uniform_averaging_optimizer_updates_like_adam():
    ours = UniformAveragingOptimizer(0.1, average_start=2, L2=0.01)
    adam = Adam(0.1, L2=0.01, use_averages=False)
    rng = numpy.random.default_rng(1)
    mine = theirs = rng.normal(size=5).astype("f")
    for _ in range(4):
        gradient = rng.normal(size=5).astype("f")
        mine, _ = ours((1, "b"), mine.copy(), gradient.copy())
        theirs, _ = adam((1, "b"), theirs.copy(), gradient.copy())
    assert_array_equal(mine, theirs)


def test_negative_average_start_is_rejected():
    with pytest.raises(ValueError, match="average_start = -1 must be 0 or more"):
        UniformAveragingOptimizer(0.1, average_start=-1)


def test_the_optimizer_resolves_through_its_entry_point_in_a_fresh_process(tmp_path):
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    lines = parser["options.entry_points"]["thinc_optimizers"].strip().splitlines()
    names = [line.split("=")[0].strip() for line in lines]
    assert names == ["spacy-dlfa.UniformAveragingAdam.v1"]
    script = ("import sys, spacy\n"
              f"optimizer = spacy.registry.optimizers.get({names[0]!r})(0.1, average_start=5)\n"
              "assert 'spacy_dlfa' in type(optimizer).__module__ and optimizer.average_start == 5\n")
    # not from the repository root, where a stale ignored spacy_dlfa.egg-info can shadow the installed entry points
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)


def test_uniform_averaging_adam_takes_an_adam_config_and_refuses_no_averages():
    from spacy_dlfa.architectures import build_uniform_averaging_adam

    optimizer = build_uniform_averaging_adam(0.1, L2=0.01, use_averages=True, average_start=10)
    assert optimizer.averages == {} and optimizer.average_start == 10 and optimizer.L2 == 0.01
    with pytest.raises(ValueError, match="use_averages = false: spacy-dlfa.UniformAveragingAdam.v1 always averages"):
        build_uniform_averaging_adam(0.1, use_averages=False)
