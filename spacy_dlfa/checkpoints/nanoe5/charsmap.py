"""Spec §9.2-§9.3: the SentencePiece ``precompiled_charsmap`` (a Darts-clone double-array
trie over the normalization keys) and the base + combining-mark keys the file drops."""
from __future__ import annotations

import struct
import unicodedata
from collections import deque
from typing import Any, Dict, List, Mapping

import numpy as np


def build_precompiled_charsmap(mapping: Mapping[str, str]) -> bytes:
    """Spec §9.2: a SentencePiece ``precompiled_charsmap`` for ``mapping``.

    ``mapping`` maps key strings (usually one code point) to replacements
    ("" deletes). The result is ``u32 T`` + a Darts-clone double array of
    T/4 units + a pool of NUL-terminated replacements.
    """
    pool = bytearray()
    pool_offset: Dict[bytes, int] = {}
    root: Dict[Any, Any] = {}
    for key, value in mapping.items():
        kb, vb = key.encode("utf-8"), value.encode("utf-8")
        if not kb or 0 in kb or 0 in vb:
            raise ValueError(f"charsmap keys must be non-empty and keys/values free of NUL: {key!r}")
        if vb not in pool_offset:
            pool_offset[vb] = len(pool)
            pool += vb + b"\0"
        node = root
        for byte in kb:
            node = node.setdefault(byte, {})
        node[None] = pool_offset[vb]  # None marks "a key ends here"
    units = _place_double_array(root)
    return struct.pack("<I", 4 * len(units)) + np.asarray(units, dtype="<u4").tobytes() + bytes(pool)


def _place_double_array(root: Dict[Any, Any]) -> List[int]:
    """Breadth-first placement of a byte trie into Darts-clone units (spec §9.2)."""
    units = [0]
    used = bytearray(1)
    used[0] = 1
    bases = set()
    first_free = 1
    queue = deque([(root, 0)])
    while queue:
        node, p = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        leaf = None in node
        slots = labels + [0] if leaf else labels
        if not slots:
            continue
        while first_free < len(used) and used[first_free]:
            first_free += 1
        b = _find_base(slots, used, bases, first_free)
        if (p ^ b) >= 1 << 21:
            raise ValueError("charsmap too large for a 21-bit double-array offset")
        need = (b | 0xFF) + 1
        if need > len(units):
            units.extend([0] * (need - len(units)))
            used.extend(bytes(need - len(used)))
        bases.add(b)
        units[p] |= (p ^ b) << 10 | (0x100 if leaf else 0)
        for c in labels:
            units[b ^ c] = c
            used[b ^ c] = 1
            queue.append((node[c], b ^ c))
        if leaf:
            units[b] = 0x80000000 | node[None]
            used[b] = 1
    units.extend([0] * (-len(units) % 256))
    return units


def _find_base(slots: List[int], used: bytearray, bases: set, start: int) -> int:
    """Smallest unused base b != 0 whose slots b ^ s are all free."""
    first = slots[0]
    index = start
    size = len(used)
    while True:
        if index < size:  # jump to the next free slot (C speed)
            index = used.find(0, index)
            if index < 0:
                index = size
        b = index ^ first
        if b and b not in bases and all(b ^ s >= size or not used[b ^ s] for s in slots):
            return b
        index += 1


def normalization_supplement(normalization: Mapping[int, str]) -> Dict[str, str]:
    """Spec §9.3: the base + combining mark keys HF's ``Precompiled`` can reach.

    Restores the 675 two-code-point keys of the XLM-R charsmap that the
    ``.bin`` drops, using only :mod:`unicodedata`.
    """
    variants: Dict[str, List[str]] = {}
    pairs = []
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        nfd = unicodedata.normalize("NFD", ch)
        if len(nfd) == 1 and nfd != ch:
            variants.setdefault(nfd, []).append(ch)
        elif len(nfd) == 2:
            pairs.append(nfd)
    extra: Dict[str, str] = {}
    for x, y in pairs:
        if unicodedata.combining(x) or ord(x) in normalization:
            continue
        for mark in [y, *variants.get(y, [])]:
            key = x + mark
            if len(key.encode("utf-8")) >= 6:
                continue
            nfkc = unicodedata.normalize("NFKC", key)
            if nfkc != key:
                extra[key] = "".join(normalization.get(ord(c), c) for c in nfkc)
    return extra
