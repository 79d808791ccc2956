"""Model-size series offline: keep the first N encoder layers of a BERT folder.

:func:`truncate_model` copies a Hugging Face BERT-architecture folder
(``config.json`` with ``model_type: bert``, ``model.safetensors``) keeping the
embeddings and encoder layers ``0 .. N-1``: ``num_hidden_layers`` becomes N,
the tensors of deeper layers are dropped, every other file (tokenizer) is
copied. The result's hidden states 0..N equal the full model's (same weights,
same computation): a shallower network, not a model pretrained at that size.
:func:`count_parameters` counts parameters from the safetensors header alone.
"""
import json
import re
import shutil
from math import prod
from pathlib import Path
from typing import Dict, Union

from .folders import check_output_dir, move_into_place, temp_sibling

WEIGHTS = "model.safetensors"
LAYER_KEY = re.compile(r"^(?:bert\.)?encoder\.layer\.(\d+)\.")
# buffers some transformers versions save next to the parameters
BUFFERS = ("position_ids", "token_type_ids")


def read_bert_config(model_dir: Union[Path, str]) -> dict:
    """``config.json`` of a BERT-architecture folder with ``model.safetensors``; ValueError otherwise."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: expected a Hugging Face model folder")
    config = json.loads(config_path.read_text(encoding="utf8"))
    if config.get("model_type") != "bert":
        raise ValueError(f"{model_dir} is a {config.get('model_type')!r} model; only BERT-architecture folders "
                         "(config.json model_type 'bert', e.g. the e5-small folders) can be truncated")
    if not (model_dir / WEIGHTS).is_file():
        raise FileNotFoundError(f"{model_dir / WEIGHTS} not found: truncation reads safetensors weights only")
    return config


def check_layers(n_layers: int, depth: int) -> None:
    if not 1 <= n_layers <= depth:
        raise ValueError(f"n_layers {n_layers} is out of range: the model has {depth} layers, use 1..{depth}")


def _kept(key: str, n_layers: int) -> bool:
    match = LAYER_KEY.match(key)
    return match is None or int(match.group(1)) < n_layers


def truncate_model(source_dir: Union[Path, str], output_dir: Union[Path, str], n_layers: int, *, overwrite: bool = False) -> Path:
    """Write ``output_dir``: ``source_dir`` with its first ``n_layers`` encoder layers (see the module docstring).

    Written to a temporary sibling folder and renamed: a failure leaves nothing behind.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    source_dir, output_dir = Path(source_dir), Path(output_dir)
    config = read_bert_config(source_dir)
    check_layers(n_layers, config["num_hidden_layers"])
    check_output_dir(output_dir, overwrite)
    with safe_open(str(source_dir / WEIGHTS), framework="pt") as weights:
        metadata = weights.metadata() or {"format": "pt"}
        tensors = {key: weights.get_tensor(key) for key in weights.keys() if _kept(key, n_layers)}
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(output_dir, "tmp")
    tmp.mkdir()
    try:
        for path in source_dir.iterdir():
            if path.is_file() and path.name not in (WEIGHTS, "config.json"):
                shutil.copy2(path, tmp / path.name)
        save_file(tensors, str(tmp / WEIGHTS), metadata=metadata)
        config["num_hidden_layers"] = n_layers
        (tmp / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
        move_into_place(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output_dir


def count_parameters(model_dir: Union[Path, str]) -> Dict[str, int]:
    """``{total, embeddings, encoder, layers}`` from ``model.safetensors``'s header (buffers not counted;
    total includes a pooler if present)."""
    from safetensors import safe_open

    model_dir = Path(model_dir)
    counts = {"total": 0, "embeddings": 0, "encoder": 0}
    with safe_open(str(model_dir / WEIGHTS), framework="pt") as weights:
        for key in weights.keys():
            if key.rsplit(".", 1)[-1] in BUFFERS:
                continue
            size = prod(weights.get_slice(key).get_shape())
            counts["total"] += size
            part = (key[len("bert."):] if key.startswith("bert.") else key).split(".", 1)[0]
            if part in counts:
                counts[part] += size
    counts["layers"] = json.loads((model_dir / "config.json").read_text(encoding="utf8"))["num_hidden_layers"]
    return counts


def format_counts(counts: Dict[str, int]) -> str:
    return (f"{counts['total']:,} parameters ({counts['embeddings']:,} embeddings, {counts['encoder']:,} encoder, "
            f"{counts['layers']} layers)")
