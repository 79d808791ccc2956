"""gate-stats: the AIF gate's weight on the last layer, recorded on a trained tiny pipeline."""
import json

import pytest
import spacy
from conftest import SENTENCES
from spacy.tokens import DocBin

from spacy_dlfa.analysis.diagnostics import aif_modules, gate_statistics


def test_gate_statistics_per_language(trained_pipelines, tmp_path):
    for lang, sentences in (("de", SENTENCES[:4]), ("zh", SENTENCES[7:9])):
        DocBin(docs=[spacy.blank("xx").make_doc(s) for s in sentences]).to_disk(tmp_path / f"test-{lang}.spacy")
    stats = gate_statistics(trained_pipelines["ner"], tmp_path, ["de", "zh"], output=tmp_path / "gates.json")
    assert [stats[lang]["docs"] for lang in ("de", "zh")] == [4, 2]
    # gate_init = 0.9 and three training steps: the gate has barely moved
    assert all(s["mean"] == pytest.approx(0.9, abs=0.05) and s["p10"] - 1e-6 <= s["mean"] <= s["p90"] + 1e-6 for s in stats.values())
    assert json.loads((tmp_path / "gates.json").read_text()) == stats
    nlp = spacy.load(trained_pipelines["ner"])
    assert "gate" not in vars(aif_modules(nlp)[0])  # the recording wrapper is removed


def test_gate_statistics_need_an_aif_layer(trained_pipelines, tiny_bert, tmp_path):
    from pipelines import train_tiny

    nlp, _ = train_tiny("ner", tiny_bert, steps=1, extra={"components.ner.model.tok2vec.fusion": {"@architectures": "spacy-dlfa.MeanFusion.v1", "width": 32}})
    with pytest.raises(ValueError, match="no spacy-dlfa.AIF.v1 fusion layer"):
        aif_modules(nlp)
