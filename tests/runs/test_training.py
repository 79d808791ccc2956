"""Training through the real `spacy train` CLI and the API on the tiny model."""
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy
import pytest
import spacy
from conftest import REPO, SENTENCES
from numpy.testing import assert_array_equal
from pipelines import entity_docs, examples, fusion_listener, load_pipeline, tagged_docs, tiny_overrides, write_docbins
from spacy.util import load_config

from spacy_dlfa.layers import transformer as transformer_module


def _cli_overrides(task: str, model_path: Path, paths) -> List[str]:
    overrides = {
        **tiny_overrides(task, model_path),
        "paths.train": str(paths["train"]),
        "paths.dev": str(paths["dev"]),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "training.optimizer.learn_rate.warmup_steps": 1,
    }
    return [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]


def _listener_outputs(nlp, texts):
    docs = list(nlp.pipe(texts))
    return docs, fusion_listener(nlp, "ner" if "ner" in nlp.pipe_names else "tagger").predict(docs)


@pytest.mark.parametrize("task", ["ner", "tagger"])
def test_spacy_train_cli_runs_the_dlfa_config(task, tiny_bert, tmp_path):
    paths = write_docbins(tmp_path, task)
    command = [sys.executable, "-m", "spacy", "train", str(REPO / "configs" / f"{task}_dlfa.cfg"), "--output", str(tmp_path / "out")]
    result = subprocess.run(command + _cli_overrides(task, tiny_bert, paths), capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert nlp.lang == "xx"
    docs, vectors = _listener_outputs(nlp, SENTENCES[:4])
    if task == "tagger":
        assert all(token.tag_ for doc in docs for token in doc)
    assert [v.shape for v in vectors] == [(len(doc), 32) for doc in docs]

    nlp.to_disk(tmp_path / "copy")
    reloaded = spacy.load(tmp_path / "copy")
    docs2, vectors2 = _listener_outputs(reloaded, SENTENCES[:4])
    for a, b in zip(vectors, vectors2):
        assert_array_equal(a, b)
    assert [[(t.tag_, t.ent_iob_, t.ent_type_) for t in d] for d in docs] == [[(t.tag_, t.ent_iob_, t.ent_type_) for t in d] for d in docs2]


def _tagger_block(tiny_bert, variant: str) -> dict:
    config = load_config(REPO / "configs" / f"tagger_{variant}.cfg", overrides=tiny_overrides("tagger", tiny_bert, variant), interpolate=True)
    return {key: value for key, value in config["components"]["tagger"].items() if key != "factory"}


def _shared_transformer_pipeline(tiny_bert, tagger_variant: str = "dlfa", tagger_first: bool = True, keep=(1, 2)):
    extra = {"components.ner.model.tok2vec.fusion_layer": 2, "components.transformer.model.keep_hidden_layers": list(keep)}
    nlp = load_pipeline("ner", tiny_bert, extra=extra)
    position = {"before": "ner"} if tagger_first else {"after": "ner"}
    nlp.add_pipe("tagger", config=_tagger_block(tiny_bert, tagger_variant), **position)
    return nlp


def _train(nlp, steps: int = 3):
    gold = [tagged for tagged in tagged_docs(nlp.vocab)]
    for tagged, ents in zip(gold, entity_docs(nlp.vocab)):
        tagged.ents = ents.ents
    egs = examples(nlp, gold)
    optimizer = nlp.initialize(lambda: egs)
    losses = {}
    for _ in range(steps):
        nlp.update(egs, sgd=optimizer, losses=losses)
    return losses


def test_tagger_and_ner_fuse_different_layers_of_one_transformer(tiny_bert, monkeypatch):
    nlp = _shared_transformer_pipeline(tiny_bert)
    fusion_listener(nlp, "tagger").layers[1].attrs["fusion_layer"] = 1
    layers_used = []
    original_add = transformer_module.HiddenGradients.add
    monkeypatch.setattr(transformer_module.HiddenGradients, "add", lambda self, layer, rows, grad: (layers_used.append(layer), original_add(self, layer, rows, grad)))
    losses = _train(nlp)
    assert set(layers_used) == {1, 2}
    assert losses["tagger"] > 0 and losses["ner"] > 0
    doc = nlp("Angela Merkel visited Paris .")
    assert all(token.tag_ for token in doc)


def _kept_layers(doc) -> List[int]:
    return [i for i, hidden in enumerate(doc._.trf_data.model_output.hidden_states) if hidden.size]


@pytest.mark.parametrize("task", ["ner", "tagger"])
def test_docs_keep_only_the_fused_layer(task, tiny_bert):
    nlp = load_pipeline(task, tiny_bert, extra={f"components.{task}.model.tok2vec.fusion_layer": -2})
    _train(nlp, steps=1)
    doc = nlp("Angela Merkel visited Paris .")
    assert len(doc._.trf_data.model_output.hidden_states) == 4 and _kept_layers(doc) == [2]
    # dropped layers must not be views that keep the batch's buffers alive
    assert all(hidden.base is None for hidden in doc._.trf_data.model_output.hidden_states if not hidden.size)
    baseline = load_pipeline(task, tiny_bert, variant="baseline")
    _train(baseline, steps=1)
    assert _kept_layers(baseline("Paris .")) == []


def test_shared_transformer_keeps_the_layers_of_both_listeners(tiny_bert):
    nlp = _shared_transformer_pipeline(tiny_bert)
    fusion_listener(nlp, "tagger").layers[1].attrs["fusion_layer"] = 1
    _train(nlp, steps=1)
    assert _kept_layers(nlp("Angela Merkel visited Paris .")) == [1, 2]


def test_a_dropped_layer_names_the_setting(tiny_bert):
    nlp = _shared_transformer_pipeline(tiny_bert, keep=[2])
    fusion_listener(nlp, "tagger").layers[1].attrs["fusion_layer"] = 1
    with pytest.raises(ValueError, match="needs hidden layer 1, but the transformer dropped it: add 1 to keep_hidden_layers"):
        _train(nlp, steps=1)


def test_the_config_decides_the_kept_layers_of_a_saved_pipeline(trained_pipelines, tmp_path):
    """keep_hidden_layers comes from the config on load (an override or an edited config.cfg), not from the saved
    model's attrs: the way to fuse another layer of a saved pipeline's transformer, as `run share` pipelines do."""
    def kept(nlp):
        return nlp.get_pipe("transformer").model.attrs[transformer_module.KEEP_SETTING]

    saved = spacy.load(trained_pipelines["tagger"])
    assert kept(saved) == [1] and _kept_layers(saved("Paris .")) == [1]
    every = spacy.load(trained_pipelines["tagger"], config={"components": {"transformer": {"model": {"keep_hidden_layers": None}}}})
    assert kept(every) is None and _kept_layers(every("Paris .")) == [0, 1, 2, 3]
    every.to_disk(tmp_path / "every")
    config = load_config(tmp_path / "every" / "config.cfg")
    config["components"]["transformer"]["model"]["keep_hidden_layers"] = [2]
    config.to_disk(tmp_path / "every" / "config.cfg")
    assert kept(spacy.load(tmp_path / "every")) == [2]


@pytest.mark.parametrize("order", ["stock_first", "fusion_first"])
def test_stock_and_fusion_listeners_share_a_transformer(tiny_bert, order):
    nlp = _shared_transformer_pipeline(tiny_bert, tagger_variant="baseline", tagger_first=order == "stock_first")
    losses = _train(nlp, steps=2)
    assert losses["tagger"] > 0 and losses["ner"] > 0


def test_negative_fusion_layer_counts_from_the_top(tiny_bert):
    nlp = load_pipeline("tagger", tiny_bert, extra={"components.tagger.model.tok2vec.fusion_layer": -2})
    _train(nlp, steps=1)
    assert all(token.tag_ for token in nlp("Paris ist schön ."))


def _update_once(nlp):
    egs = examples(nlp, tagged_docs(nlp.vocab))
    nlp.initialize(lambda: egs)
    nlp.update(egs)


@pytest.mark.parametrize("layer", [4, 17, -5])
def test_fusion_layer_out_of_range_names_the_setting_and_range(tiny_bert, layer):
    nlp = load_pipeline("tagger", tiny_bert, extra={"components.tagger.model.tok2vec.fusion_layer": layer})
    with pytest.raises(ValueError, match=rf"fusion_layer = {layer} is out of range .* 3 layers: use 0\.\.3 .* -4\.\.-1"):
        _update_once(nlp)


def test_missing_hidden_states_names_the_setting(tiny_bert):
    nlp = load_pipeline("tagger", tiny_bert, extra={"components.transformer.model": {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": str(tiny_bert),
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
    }})
    with pytest.raises(ValueError, match="output_hidden_states"):
        _update_once(nlp)


def test_width_mismatch_names_the_setting_and_the_right_value(tiny_bert):
    nlp = load_pipeline("tagger", tiny_bert, extra={"components.tagger.model.tok2vec.fusion.width": 16})
    with pytest.raises(ValueError, match="width = 16 does not match the transformer's hidden size 32"):
        _update_once(nlp)


def test_unknown_fuse_at_is_rejected(tiny_bert):
    with pytest.raises(ValueError, match="fuse_at = 'subword'"):
        load_pipeline("tagger", tiny_bert, extra={"components.tagger.model.tok2vec.fuse_at": "subword"})


def test_wordpiece_level_fusion_trains(tiny_bert):
    nlp = load_pipeline("tagger", tiny_bert, extra={"components.tagger.model.tok2vec.fuse_at": "wordpiece"})
    losses = _train(nlp, steps=2)
    assert numpy.isfinite(losses["tagger"])
    assert all(token.tag_ for token in nlp("Paris ist schön ."))


@pytest.mark.parametrize("config", sorted(path.stem for path in (REPO / "configs").glob("*.cfg")))
def test_spacy_debug_config_passes(config, tiny_bert, tmp_path):
    paths = write_docbins(tmp_path, "tagger" if config.startswith("tagger") else "ner")
    command = [sys.executable, "-m", "spacy", "debug", "config", str(REPO / "configs" / f"{config}.cfg")]
    overrides = ["--paths.transformer", str(tiny_bert), "--paths.train", str(paths["train"]), "--paths.dev", str(paths["dev"])]
    result = subprocess.run(command + overrides, capture_output=True, text=True)
    assert result.returncode == 0 and "Config is valid" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_empty_and_whitespace_docs_get_no_annotations(tiny_bert):
    nlp = load_pipeline("ner", tiny_bert)
    _train(nlp, steps=1)
    docs = list(nlp.pipe(["", "   ", "Paris ."]))
    assert [len(doc) for doc in docs[:1]] == [0]
    assert docs[0].ents == () and len(docs[2]) == 2


def test_baseline_configs_differ_from_dlfa_only_in_the_listener():
    for task in ("ner", "tagger"):
        dlfa = load_config(REPO / "configs" / f"{task}_dlfa.cfg")
        baseline = load_config(REPO / "configs" / f"{task}_baseline.cfg")
        dlfa_listener = dlfa["components"][task]["model"].pop("tok2vec")
        baseline_listener = baseline["components"][task]["model"].pop("tok2vec")
        # each keeps only the hidden layers its listener reads
        assert dlfa["components"]["transformer"]["model"].pop("keep_hidden_layers") == f"[${{components.{task}.model.tok2vec.fusion_layer}}]"
        assert baseline["components"]["transformer"]["model"].pop("keep_hidden_layers") == []
        assert dlfa == baseline
        assert dlfa_listener["@architectures"] == "spacy-dlfa.FusionListener.v1"
        assert baseline_listener["@architectures"] == "spacy-transformers.TransformerListener.v1"
