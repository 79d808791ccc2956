"""Spec §7: Q4_0 dequantization (one f16 scale and 32 4-bit values per block)."""
from __future__ import annotations

from typing import Union

import numpy as np

from .format import QK

#: one Q4_0 block: f16 scale followed by 16 bytes of packed nibbles (§7)
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
assert Q4_BLOCK.itemsize == 18


def dequantize_q4_0(raw: Union[bytes, memoryview], count: int) -> np.ndarray:
    """Spec §7: Q4_0 bytes -> flat float32 array of ``count`` elements.

    ``w[k] = d * (nibble_k - 8)``; elements 0-15 are the low nibbles of
    ``qs[0..15]``, elements 16-31 the high nibbles. Raises ``ValueError`` on a
    non-finite scale.
    """
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=count // QK)
    d = blocks["d"].astype(np.float32)  # exact, subnormals included
    bad = np.flatnonzero(~np.isfinite(d))
    if bad.size:
        raise ValueError(f"non-finite fp16 block scale in block {bad[0]}")
    qs = blocks["qs"]
    out = np.empty((len(blocks), QK), dtype=np.float32)
    np.bitwise_and(qs, 0x0F, out=out[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=out[:, 16:], casting="unsafe")
    out -= 8.0
    out *= d[:, None]
    return out.reshape(-1)
