"""Exact values of the fusion math on hand-set weights, and the thinc wrappers."""
import math

import numpy
import pytest
import torch
from numpy.testing import assert_allclose
from thinc.api import SGD, Ragged

from spacy_dlfa.architectures import build_aif, build_concat_fusion, build_mean_fusion
from spacy_dlfa.layers.fusion import AIFModule, ConcatFusionModule, MeanFusionModule

LAST = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, -2.0, 2.0, 8.0], [4.0, 4.0, 4.0, 4.0]])
LOWER = torch.tensor([[5.0, 6.0, 7.0, 8.0], [4.0, 2.0, -2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
LENGTHS = torch.tensor([2, 1])


def _constant_branch(branch, value: float) -> None:
    """Make a bottleneck output `value` at every position, whatever its input."""
    with torch.no_grad():
        for param in branch.parameters():
            param.zero_()
        branch.norm.bias.fill_(1.0)  # relu(LN(0) + 1) = 1 in every hidden unit
        branch.up.weight.fill_(value / branch.up.weight.shape[1])


@pytest.mark.parametrize("local,global_,weight", [(0.0, 0.0, 0.5), (math.log(3.0), 0.0, 0.75), (0.0, -math.log(3.0), 0.25)])
def test_aif_mixes_with_the_sigmoid_of_both_branches(local, global_, weight):
    aif = AIFModule(width=4, reduction=2)
    _constant_branch(aif.local_branch, local)
    _constant_branch(aif.global_branch, global_)
    fused = aif(LAST, LOWER, LENGTHS)
    assert_allclose(fused.detach().numpy(), (weight * LAST + (1 - weight) * LOWER).numpy(), rtol=1e-6)


def test_aif_global_branch_sees_the_doc_mean():
    aif = AIFModule(width=4, reduction=2)
    _constant_branch(aif.local_branch, 0.0)
    with torch.no_grad():
        branch = aif.global_branch
        branch.down.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        branch.down.bias.zero_()
        branch.norm.weight.fill_(1.0)
        branch.norm.bias.zero_()
        branch.up.weight.copy_(torch.tensor([[1.0, 0.0]] * 4))
        branch.up.bias.zero_()
    # doc 0: mean of s = last + lower over its 2 tokens is [5, 4, 5, 10] -> LN([5, 4]) = [d, -d]
    # doc 1: s = [4, 6, 4, 4] once lower[2, 1] = 2 -> LN([4, 6]) = [-d, d]; d = 0.5 / sqrt(0.25 + eps)
    lower = LOWER.clone()
    lower[2, 1] = 2.0
    d = 0.5 / math.sqrt(0.25 + 1e-5)
    # relu keeps d for doc 0 and 0 for doc 1; `up` copies hidden unit 0 to every dimension.
    expected_weights = torch.tensor([[1.0 / (1.0 + math.exp(-d))]] * 2 + [[0.5]])
    fused = aif(LAST, lower, LENGTHS)
    expected = expected_weights * LAST + (1 - expected_weights) * lower
    assert_allclose(fused.detach().numpy(), expected.numpy(), rtol=1e-6)


def test_aif_gate_init_sets_the_starting_weight():
    aif = AIFModule(width=4, reduction=2, gate_init=0.9)
    gate = aif.gate(LAST, LOWER, LENGTHS)
    assert_allclose(gate.detach().numpy(), numpy.full((3, 4), 0.9), rtol=1e-6)


def test_aif_gate_is_strictly_inside_zero_one():
    torch.manual_seed(0)
    aif = AIFModule(width=8, reduction=2)
    for scale in (1.0, 1e3, 1e6):
        x, y = torch.randn(20, 8) * scale, torch.randn(20, 8) * scale
        gate = aif.gate(x, y, torch.tensor([5, 15]))
        assert gate.shape == (20, 8)
        assert bool((gate > 0).all()) and bool((gate < 1).all())


def test_aif_normalised_inputs_are_scale_free():
    torch.manual_seed(0)
    aif = AIFModule(width=8, reduction=2, normalize_inputs=True)
    x, y = torch.randn(6, 8), torch.randn(6, 8)
    lengths = torch.tensor([6])
    assert_allclose(aif(x, y, lengths).detach().numpy(), aif(10 * x, 0.1 * y, lengths).detach().numpy(), atol=1e-3)


def test_aif_handles_a_doc_of_zero_tokens():
    aif = AIFModule(width=4, reduction=2)
    fused = aif(LAST, LOWER, torch.tensor([2, 0, 1]))
    assert fused.shape == (3, 4)
    empty = aif(torch.zeros(0, 4), torch.zeros(0, 4), torch.tensor([0]))
    assert empty.shape == (0, 4)


def test_mean_fusion_is_the_average():
    fused = MeanFusionModule()(LAST, LOWER, LENGTHS)
    assert_allclose(fused.numpy(), ((LAST + LOWER) / 2).numpy())


def test_concat_fusion_initialised_to_last_returns_last():
    fused = ConcatFusionModule(width=4, init_to_last=True)(LAST, LOWER, LENGTHS)
    assert_allclose(fused.detach().numpy(), LAST.numpy())


@pytest.mark.parametrize("build", [lambda: build_aif(width=4, reduction=2), lambda: build_mean_fusion(width=4), lambda: build_concat_fusion(width=4)])
def test_thinc_wrapper_matches_torch_gradients(build):
    layer = build()
    module = layer.shims[0]._model
    lengths = numpy.array([2, 1], dtype="i")
    last, lower = Ragged(LAST.numpy().copy(), lengths), Ragged(LOWER.numpy().copy(), lengths)
    fused, backprop = layer.begin_update((last, lower))
    assert fused.dataXd.shape == (3, 4) and list(fused.lengths) == [2, 1]
    d_fused = numpy.arange(12, dtype="f").reshape(3, 4) / 10
    d_last, d_lower = backprop(Ragged(d_fused, lengths))

    x, y = LAST.clone().requires_grad_(), LOWER.clone().requires_grad_()
    (module(x, y, torch.as_tensor(lengths).long()) * torch.as_tensor(d_fused)).sum().backward()
    assert_allclose(d_last.dataXd, x.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert_allclose(d_lower.dataXd, y.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_lr_scale_multiplies_the_learning_rate():
    layer = build_aif(width=4, reduction=2, lr_scale=10.0)
    module = layer.shims[0]._model
    before = module.local_branch.up.bias.detach().clone()
    lengths = numpy.array([3], dtype="i")
    _, backprop = layer.begin_update((Ragged(LAST.numpy().copy(), lengths), Ragged(LOWER.numpy().copy(), lengths)))
    backprop(Ragged(numpy.ones((3, 4), dtype="f"), lengths))
    gradient = module.local_branch.up.bias.grad.detach().clone()
    layer.finish_update(SGD(0.01, grad_clip=0.0))
    assert_allclose((before - module.local_branch.up.bias.detach()).numpy(), (0.1 * gradient).numpy(), rtol=1e-5)


@pytest.mark.parametrize("gate_init", [0.0, 1.0, 1.5])
def test_aif_rejects_a_gate_init_outside_zero_one(gate_init):
    with pytest.raises(ValueError, match="gate_init"):
        build_aif(width=4, gate_init=gate_init)
