"""Dynamic int8 inference for the transformer's linear layers on CPU.

:func:`quantize_linears` swaps chosen ``nn.Linear`` modules of a torch model
for :class:`Int8Linear`: torch's dynamic quantized linear
(``torch.ao.nn.quantized.dynamic.Linear``: int8 weights, activations
quantized on the fly per call) for the forward pass, while the module's
``state_dict`` keeps the fp32 ``weight`` and ``bias`` under the keys of the
``nn.Linear`` it replaced. A saved model is therefore the fp32 model, which
loads with or without quantization and is quantized again, to the same int8
weights, when loaded with it.

Which layers (``QUANTIZE_SCHEMES``), measured on e5-small on a 2-core AVX-512
VNNI CPU (``benchmarks/int8_routes.py``, ``benchmarks/results/int8_routes_cpu.txt``):
``"int8"`` quantizes every linear layer of the encoder's attention and
feed-forward blocks with per-channel weight scales, and leaves the feed-forward
output projection (``output.dense``, the layer with the widest input and the
largest activation outliers) in fp32. ``"int8-all"`` quantizes that one too:
raw forward 1.81× fp32 instead of 1.40×, at a fused-layer cosine of 0.987
instead of 0.9965 with 8-bit activations, and of 0.955 with 7-bit ones
(``benchmarks/results/int8_onnxruntime_cpu.txt``), so it warns on a CPU
without int8 dot products.

Activations: torch's dynamic linear quantizes them to 7 bits
(``reduce_range=True``), which keeps plain AVX2's 16-bit int8 dot products
from overflowing. A CPU with int8 dot-product instructions (AVX512-VNNI,
AVX-VNNI, AMX-INT8) accumulates in 32 bits, so there :class:`Int8Linear` uses
all 8 bits: on e5-small the fused layer's mean token cosine to fp32 goes from
0.986 to 0.9965 at the same speed (``benchmarks/results/int8_onnxruntime_cpu.txt``).

``"int8-smooth"`` also runs every linear layer in int8, and divides the feed-forward
output projection's input per channel by SmoothQuant's scales (Xiao et al. 2022,
arXiv 2211.10438), its weight columns multiplied by the same scales: the product is
unchanged in exact arithmetic, while the few channels with large activations no
longer set one int8 step for all the others. The scales need each channel's largest
activation, recorded once on text (:func:`record_input_absmax`, ``python -m
spacy_dlfa calibrate``) and saved with the pipeline. ``SMOOTHING_ALPHA`` is a fixed
choice: English dev moves more with the last bit of the arithmetic than with alpha
(``benchmarks/results/int8_smooth_cpu.txt``).

This module knows torch only; ``transformer.py`` applies it to the thinc model.
"""
import contextlib
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn


def is_ffn_output(name: str) -> bool:
    """The feed-forward block's output projection of a BERT-style encoder layer (``layer.N.output.dense``)."""
    return name.endswith(".output.dense") and ".attention." not in name


def _none(name: str) -> bool:
    return False


# quantize value -> which linear layers (by module name) stay in fp32
QUANTIZE_SCHEMES: Dict[str, Callable[[str], bool]] = {
    "int8": is_ffn_output,
    "int8-all": _none,
    "int8-smooth": _none,
}
# quantize value -> which int8 layers get their input smoothed (needs calibration)
SMOOTHED_LAYERS: Dict[str, Callable[[str], bool]] = {"int8-smooth": is_ffn_output}
SMOOTHING_ALPHA = 0.75
# schemes that quantize the feed-forward outputs, measured with 8-bit activations: what 7 bits do to them
SEVEN_BIT_RISK = {"int8-all": "and the hidden states drift far from fp32 (mean token cosine 0.955 on e5-small)",
                  "int8-smooth": "for which it was not measured"}


INT8_DOT_PRODUCT_CAPABILITIES = ("avx512_vnni", "avx_vnni", "amx_int8")  # torch.cpu.get_capabilities() names


def cpu_has_int8_dot_product() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI or AMX-INT8), as torch reports them
    (``torch.cpu.get_capabilities()``, torch 2.10+; false where torch cannot say)."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    capabilities = get_capabilities() if get_capabilities is not None else {}
    return any(bool(capabilities.get(name, False)) for name in INT8_DOT_PRODUCT_CAPABILITIES)


def check_quantize(value: Optional[str]) -> None:
    """Fail on a ``quantize`` setting that is neither null nor a known scheme."""
    if value is not None and value not in QUANTIZE_SCHEMES:
        choices = ", ".join(f'"{name}"' for name in QUANTIZE_SCHEMES)
        raise ValueError(f"quantize = {value!r}: expected null (fp32) or one of {choices}")


def _dynamic_linear(weight: torch.Tensor, bias: Optional[torch.Tensor], per_channel: bool) -> nn.Module:
    with warnings.catch_warnings():
        # torch.ao.quantization is marked deprecated in torch 2.10+, still shipped and working
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

        source = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        source.weight = nn.Parameter(weight.detach().float(), requires_grad=False)
        if bias is not None:
            source.bias = nn.Parameter(bias.detach().float(), requires_grad=False)
        source.qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        return DynamicLinear.from_float(source)


class Int8Linear(nn.Module):
    """An ``nn.Linear`` that computes in int8 (dynamic quantization) and keeps
    its fp32 weight and bias as its state. Inference only: the fp32 weight
    gets no gradient and is quantized again whenever a state dict is loaded."""

    def __init__(self, linear: nn.Linear, per_channel: bool = True, reduce_range: Optional[bool] = None):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.per_channel = per_channel
        # 7-bit activations unless the CPU accumulates int8 products in 32 bits (module docstring)
        self.reduce_range = not cpu_has_int8_dot_product() if reduce_range is None else reduce_range
        self.weight = nn.Parameter(linear.weight.detach(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.requantize()
        self.register_load_state_dict_post_hook(lambda module, keys: module.requantize())

    def int8_weight(self) -> torch.Tensor:
        """The fp32 weight that the int8 weights quantize."""
        return self.weight

    def requantize(self) -> None:
        # not a submodule: its packed weights must not appear in state_dict()
        self.__dict__["int8"] = _dynamic_linear(self.int8_weight(), self.bias, self.per_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reduce_range:
            return self.int8(x)
        # torch's dynamic Linear.forward, with reduce_range (hard-coded True there) as chosen
        packed = self.int8._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)

    def extra_repr(self) -> str:
        scales = "per channel" if self.per_channel else "per tensor"
        bits = 7 if self.reduce_range else 8
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights {scales}, {bits}-bit activations"


def smoothing_scales(input_absmax: torch.Tensor, weight: torch.Tensor, alpha: float = SMOOTHING_ALPHA) -> torch.Tensor:
    """SmoothQuant's per-input-channel scales ``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)``
    (``W`` is ``out x in``; zero ranges are clamped so that no scale is zero)."""
    weight_absmax = weight.detach().abs().amax(dim=0).float().clamp(min=1e-5)
    return (input_absmax.float().clamp(min=1e-5) ** alpha / weight_absmax ** (1 - alpha)).clamp(min=1e-5)


class SmoothedInt8Linear(Int8Linear):
    """An :class:`Int8Linear` computing ``int8(x / s) @ int8(W * s)^T + b``, which is
    ``x @ W^T + b`` before rounding. The state is the fp32 ``weight`` and ``bias``, as
    for :class:`Int8Linear`; the scales come from the calibration, not the state."""

    def __init__(self, linear: nn.Linear, scales: torch.Tensor, per_channel: bool = True,
                 reduce_range: Optional[bool] = None):
        if scales.shape != (linear.in_features,):
            raise ValueError(f"smoothing scales of shape {tuple(scales.shape)} for a linear layer of "
                             f"{linear.in_features} inputs")
        # Int8Linear.__init__ quantizes int8_weight(), which reads the scales: they come first, as a plain
        # attribute (not state; nn.Module.__init__ would drop a buffer registered before it)
        object.__setattr__(self, "scales", scales.detach().float().clone())
        super().__init__(linear, per_channel, reduce_range)

    def int8_weight(self) -> torch.Tensor:
        return self.weight * self.scales[None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x / self.scales)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, input smoothed per channel"


def encoder_linears(model: nn.Module, scope: str = "encoder.") -> List[Tuple[str, nn.Linear]]:
    """The (still fp32) ``nn.Linear`` modules whose name contains ``scope``, with their names."""
    return [(name, module) for name, module in model.named_modules() if type(module) is nn.Linear and scope in f".{name}"]


def quantize_linears(model: nn.Module, keep_fp32: Callable[[str], bool] = _none, per_channel: bool = True,
                     scope: str = "encoder.", smoothing: Optional[Dict[str, torch.Tensor]] = None) -> int:
    """Replace, in place, every ``nn.Linear`` whose name contains ``scope`` and
    for which ``keep_fp32(name)`` is false by an :class:`Int8Linear`, or by a
    :class:`SmoothedInt8Linear` where ``smoothing`` has scales for its name;
    returns how many. Already quantized layers are left as they are."""
    smoothing = smoothing or {}
    chosen = [(name, linear) for name, linear in encoder_linears(model, scope) if not keep_fp32(name)]
    for name, linear in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if name in smoothing:
            setattr(parent, child, SmoothedInt8Linear(linear, smoothing[name], per_channel))
        else:
            setattr(parent, child, Int8Linear(linear, per_channel))
    return len(chosen)


def smoothed_layer_names(model: nn.Module, scheme: str) -> List[str]:
    """The linear layers of ``model`` whose input ``scheme`` smooths (none for most schemes)."""
    smoothed = SMOOTHED_LAYERS.get(scheme, _none)
    return [name for name, _ in encoder_linears(model) if smoothed(name)]


def quantize_model(model: nn.Module, scheme: str, input_absmax: Optional[Dict[str, Sequence[float]]] = None,
                   alpha: float = SMOOTHING_ALPHA) -> int:
    """Quantize ``model`` (a Hugging Face encoder) in place by a ``QUANTIZE_SCHEMES`` entry;
    ``input_absmax`` (name -> each input channel's largest absolute activation, from
    :func:`record_input_absmax`) is needed by a scheme that smooths, with SmoothQuant's ``alpha``."""
    check_quantize(scheme)
    if scheme in SEVEN_BIT_RISK and not cpu_has_int8_dot_product():
        warnings.warn(f'quantize = "{scheme}" on a CPU without int8 dot products (VNNI, AMX-INT8): activations get 7 bits, '
                      f'{SEVEN_BIT_RISK[scheme]}; "int8" keeps a mean token cosine of 0.986 to fp32', stacklevel=2)
    names = smoothed_layer_names(model, scheme)
    missing = [name for name in names if name not in (input_absmax or {})]
    if missing:
        raise ValueError(f"quantize = {scheme!r} needs the activation ranges of {len(missing)} layers (e.g. {missing[0]}) "
                         "recorded on text and saved with the pipeline: run python -m spacy_dlfa calibrate PIPELINE "
                         "CORPUS first, or choose \"int8\"")
    smoothing = {name: smoothing_scales(torch.as_tensor(input_absmax[name]), model.get_submodule(name).weight, alpha)
                 for name in names}
    model.eval()
    return quantize_linears(model, keep_fp32=QUANTIZE_SCHEMES[scheme], smoothing=smoothing)


@contextlib.contextmanager
def record_input_absmax(model: nn.Module, names: Sequence[str]) -> Iterator[Dict[str, torch.Tensor]]:
    """Within the block, record each named linear layer's largest absolute input per
    channel over every forward pass (padded positions included, as at inference)."""
    found: Dict[str, torch.Tensor] = {}
    hooks = []
    for name in names:
        def hook(module: nn.Module, inputs, name: str = name) -> None:
            x = inputs[0].detach()
            absmax = x.abs().reshape(-1, x.shape[-1]).amax(dim=0).float()
            found[name] = torch.maximum(found[name], absmax) if name in found else absmax
        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        yield found
    finally:
        for handle in hooks:
            handle.remove()


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(module, Int8Linear) for module in model.modules())
