"""thinc's Optimizer with a uniform average of the weights over the later part of training.

thinc's own averages (``use_averages = true``) are an exponential moving
average with decay ``min(0.9999, (1 + t) / (10 + t))`` after update t, started
from zeros: update s ends up with weight proportional to (s+2)(s+3)...(s+9),
about s^8, so 61% of the weight lies on the last 10% of the updates, 92% on the
last 25% (for any run shorter than ~90,000 updates, where the cap starts). With
a learning rate that decays to zero that is close to the last weights.

``UniformAveragingOptimizer`` keeps in ``optimizer.averages`` the current weights
up to update ``average_start`` and, from then on, the plain mean of the weights
after every later update (checkpoint averaging at every step). spaCy's training
loop evaluates and saves under ``nlp.use_params(optimizer.averages)`` as usual.
"""
from typing import Any, Tuple

from thinc.api import Optimizer
from thinc.types import FloatsXd


class UniformAveragingOptimizer(Optimizer):
    """An Optimizer whose ``averages`` hold the uniform mean of the weights after each
    update past ``average_start`` (per parameter, counted by the optimizer's updates)."""

    def __init__(self, learn_rate: Any, *, average_start: int = 0, **kwargs: Any):
        if average_start < 0:
            raise ValueError(f"average_start = {average_start} must be 0 or more (the update after which averaging starts)")
        super().__init__(learn_rate, use_averages=True, **kwargs)
        self.average_start = average_start

    def __call__(self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0):
        if len(gradient) < 1:
            return weights, gradient
        averages, self.averages = self.averages, None  # thinc's own moving average is replaced, not kept beside
        try:
            weights, gradient = super().__call__(key, weights, gradient, lr_scale=lr_scale)
        finally:
            self.averages = averages
        if averages is None:  # set to None from outside: no averages kept
            return weights, gradient
        in_window = self.nr_update[key] - self.average_start
        if in_window <= 1 or key not in averages:
            averages[key] = weights.copy()
        else:
            averages[key] += (weights - averages[key]) / in_window
        return weights, gradient
