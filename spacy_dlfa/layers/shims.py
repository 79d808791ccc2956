"""PyTorch shims that apply the optimizer's parameter averages.

thinc 8.3's ``PyTorchShim.finish_update`` calls the optimizer with the key
``(shim.id, parameter name)``, so ``optimizer.averages`` (``use_averages =
true``) holds the torch parameters under those keys. ``PyTorchShim.use_params``
applies only string keys ``pytorch_{id}_{name}``, so ``nlp.use_params(
optimizer.averages)``, which spaCy's training loop uses to evaluate and to save
``model-best`` and ``model-last``, silently leaves every torch module at its
current weights while the thinc layers beside it do switch to their averages.
The shims here also apply the ``(id, name)`` keys.

thinc's ``PyTorchShim`` autocasts only on CUDA. ``AveragedParamsHFShim.set_cpu_precision``
gives ``mixed_precision`` its CPU meaning (``precision.py``): bfloat16 autocast
of the forward pass, or fp32; on CPU never a gradient scaler.
"""
import contextlib
from typing import Any, Dict, Iterator, Optional

import torch
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import ArgsKwargs, PyTorchGradScaler, PyTorchShim, xp2torch

from .precision import cpu_bf16_autocast, outputs_to_float32

CPU_PRECISIONS = ("bf16", "fp32")


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
    """spacy-transformers' HFShim whose ``use_params`` applies the optimizer's averages,
    and which runs ``mixed_precision`` on CPU as ``set_cpu_precision`` says."""

    cpu_precision: Optional[str] = None  # None: thinc's own (fp32, or CUDA autocast with mixed_precision)

    def set_cpu_precision(self, precision: str) -> None:
        """Run on CPU in ``"bf16"`` (autocast of the forward pass) or ``"fp32"``. Either way
        thinc's CUDA autocast is off and the gradient scaler is a disabled one: bf16 has
        fp32's exponent range, so its gradients need no loss scaling, and thinc's scaler
        refuses CPU tensors."""
        if precision not in CPU_PRECISIONS:
            raise ValueError(f"CPU precision {precision!r}: expected one of {', '.join(CPU_PRECISIONS)}")
        self.cpu_precision = precision
        self._mixed_precision = False
        self._grad_scaler = PyTorchGradScaler(enabled=False)

    def predict(self, inputs: ArgsKwargs) -> Any:
        if self.cpu_precision != "bf16":
            return super().predict(inputs)
        with cpu_bf16_autocast():
            output = super().predict(inputs)
        return outputs_to_float32(output)

    def begin_update(self, inputs: ArgsKwargs):
        if self.cpu_precision != "bf16":
            return super().begin_update(inputs)
        with cpu_bf16_autocast():
            output, backprop = super().begin_update(inputs)
        # thinc's backprop, called later, runs outside the autocast (as it must); the float32
        # casts are part of the graph, so the listeners' float32 gradients flow through them
        return outputs_to_float32(output), backprop
