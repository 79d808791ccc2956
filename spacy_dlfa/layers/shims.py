"""PyTorch shims that apply the optimizer's parameter averages.

thinc 8.3's ``PyTorchShim.finish_update`` calls the optimizer with the key
``(shim.id, parameter name)``, so ``optimizer.averages`` (``use_averages =
true``) holds the torch parameters under those keys. ``PyTorchShim.use_params``
applies only string keys ``pytorch_{id}_{name}``, so ``nlp.use_params(
optimizer.averages)``, which spaCy's training loop uses to evaluate and to save
``model-best`` and ``model-last``, silently leaves every torch module at its
current weights while the thinc layers beside it do switch to their averages.
The shims here also apply the ``(id, name)`` keys.
"""
import contextlib
from typing import Dict, Iterator

import torch
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import PyTorchShim, xp2torch


class AveragedParamsPyTorchShim(PyTorchShim):
    """thinc's PyTorchShim whose ``use_params`` also applies ``(shim.id, name)`` keys.

    Parameters whose key is absent (e.g. frozen embeddings, which the
    optimizer never sees) keep their current values. The current tensors are
    put back when the block ends, also after an error.
    """

    @contextlib.contextmanager
    def use_params(self, params: Dict) -> Iterator[None]:
        current: Dict[str, torch.Tensor] = {}
        parameters = dict(self._model.named_parameters()) if self._model is not None else {}
        try:
            for name, parameter in parameters.items():
                value = params.get((self.id, name))
                if value is None:
                    continue
                if tuple(value.shape) != tuple(parameter.shape):
                    raise ValueError(f"Averaged value of torch parameter '{name}' has shape {tuple(value.shape)}, "
                                     f"the parameter {tuple(parameter.shape)}: the averages belong to another model.")
                current[name] = parameter.data
                # a copy: nothing done inside the block may change the optimizer's averages
                parameter.data = xp2torch(value.copy(), device=parameter.device).to(parameter.dtype)
            with super().use_params(params):  # string keys, as thinc applies them
                yield
        finally:
            for name, tensor in current.items():
                parameters[name].data = tensor


class AveragedParamsHFShim(AveragedParamsPyTorchShim, HFShim):
    """spacy-transformers' HFShim whose ``use_params`` applies the optimizer's averages."""
