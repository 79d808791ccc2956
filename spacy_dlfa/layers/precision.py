"""bfloat16 autocast for ``mixed_precision`` on CPU.

thinc's PyTorchShim autocasts only with ``device_type="cuda"``, so on CPU
``mixed_precision = true`` did nothing. Here the CPU gets bfloat16 autocast
(``torch.autocast("cpu", dtype=torch.bfloat16)``: matmuls and linear layers
in bf16, layer norms and softmax in fp32) when it computes bf16 natively
(AVX512-BF16 or AMX-BF16 on x86, the BF16 extension on ARM); without it
torch emulates bf16, which is slower than fp32.

This module knows torch only; ``shims.py`` and ``transformer.py`` apply it
to the thinc model.
"""
from typing import Any

import torch

# torch.cpu.get_capabilities() names of the instruction sets that compute bf16 natively
NATIVE_BF16_CAPABILITIES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively, as torch detects it: the public
    ``torch.cpu.get_capabilities()`` (torch 2.10+); on older torch, where that is
    missing, ``torch.cpu._is_avx512_bf16_supported()`` (AVX512-BF16; every CPU
    with AMX-BF16 has it too), which torch's own inductor uses."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        capabilities = get_capabilities()
        return any(bool(capabilities.get(name, False)) for name in NATIVE_BF16_CAPABILITIES)
    is_avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(is_avx512_bf16 is not None and is_avx512_bf16())


def cpu_bf16_autocast() -> torch.autocast:
    """The context in which the transformer's forward pass runs in bfloat16 on CPU."""
    return torch.autocast("cpu", dtype=torch.bfloat16)


def outputs_to_float32(output: Any) -> Any:
    """``output`` (a tensor, a tuple or list of them, or a Hugging Face ``ModelOutput``)
    with every floating-point tensor in float32, as spaCy and thinc expect; tensors
    already in float32 are passed as they are, gradients flow back through the casts."""
    if torch.is_tensor(output):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, (tuple, list)):
        return type(output)(outputs_to_float32(item) for item in output)
    if isinstance(output, dict):  # ModelOutput keeps its class and its key order
        return type(output)(**{key: outputs_to_float32(value) for key, value in output.items()})
    return output
