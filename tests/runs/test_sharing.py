"""One pipeline for two tasks: run share puts a NER and a tagger pipeline on one shared transformer."""
import shutil
from pathlib import Path
from typing import Dict

import numpy
import pytest
import spacy
from conftest import SENTENCES
from numpy.testing import assert_array_equal
from pipelines import annotations, train_fast
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.runs.sharing import META_KEY, share_runs, transformer_weights

# the tagger fuses another layer than the NER (tiny_overrides: layer 1)
TAGGER_LAYER = 2
TEXTS = [*SENTENCES, "Ein ganz anderer Satz über Berlin und Paris, mit mehr Wörtern als die anderen."]


@pytest.fixture(scope="module")
def singles(tiny_bert, tmp_path_factory, single_torch_thread) -> Dict[str, Path]:
    """A NER and a tagger pipeline trained on the tiny model (their transformers differ everywhere), saved to disk."""
    root = tmp_path_factory.mktemp("singles")
    paths = {}
    for task, extra in (("ner", {}), ("tagger", {"components.tagger.model.tok2vec.fusion_layer": TAGGER_LAYER})):
        paths[task] = root / task
        train_fast(task, tiny_bert, steps=10, extra=extra).to_disk(paths[task])  # ten: the tiny NER then predicts entities
    return paths


def _numpy(weights) -> Dict[str, numpy.ndarray]:
    return {key: tensor.detach().numpy().copy() for key, tensor in weights.items()}


def test_shared_pipeline_sets_both_tasks_keeps_both_layers_and_round_trips(singles, tmp_path, single_torch_thread):
    output = tmp_path / "pipelines" / "shared"  # its parent does not exist yet
    share_runs(output, singles["ner"], singles["tagger"])
    nlp = spacy.load(output)
    assert nlp.pipe_names == ["transformer", "ner", "tagger"]
    # the shipped NER and tagger configs differ in raw-text tokenizer (v2 / v1): the first pipeline's is kept
    assert nlp.config["nlp"]["tokenizer"] == spacy.load(singles["ner"]).config["nlp"]["tokenizer"]
    assert nlp.config["nlp"]["tokenizer"] != spacy.load(singles["tagger"]).config["nlp"]["tokenizer"]
    assert nlp.config["components"]["transformer"]["model"]["keep_hidden_layers"] == [1, TAGGER_LAYER]
    assert nlp.get_pipe("transformer").model.attrs["keep_hidden_layers"] == [1, TAGGER_LAYER]
    assert nlp.meta[META_KEY] == {"pipelines": [str(singles["ner"]), str(singles["tagger"])], "transformer": "average",
                                  "keep_hidden_layers": [1, TAGGER_LAYER]}
    docs = list(nlp.pipe(TEXTS))
    assert all(token.tag_ for doc in docs for token in doc)
    assert any(doc.ents for doc in docs) and all(ent.label_ in {"PER", "ORG", "LOC"} for doc in docs for ent in doc.ents)
    nlp.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    assert annotations(again.pipe(TEXTS)) == annotations(docs)
    fresh = spacy.blank("xx").from_config(nlp.config)
    fresh.from_disk(output)
    assert annotations(fresh.pipe(TEXTS)) == annotations(docs)


@pytest.mark.parametrize("choice, task, attribute", [("first", "ner", "ents"), ("second", "tagger", "tags")])
def test_one_pipelines_transformer_reproduces_that_pipeline(singles, tmp_path, single_torch_thread, choice, task, attribute):
    share_runs(tmp_path / "shared", singles["ner"], singles["tagger"], transformer=choice)
    shared, single = spacy.load(tmp_path / "shared"), spacy.load(singles[task])
    shared_docs, single_docs = list(shared.pipe(TEXTS)), list(single.pipe(TEXTS))
    if attribute == "ents":
        found = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in shared_docs]
        assert found == [[(e.start, e.end, e.label_) for e in doc.ents] for doc in single_docs]
        assert any(found)
    else:
        found = [[token.tag_ for token in doc] for doc in shared_docs]
        assert found == [[token.tag_ for token in doc] for doc in single_docs]
    assert_array_equal(shared_docs[-1].tensor, single_docs[-1].tensor)  # the shared transformer's last layer


def test_average_transformer_is_the_exact_mean(singles, tmp_path, single_torch_thread):
    share_runs(tmp_path / "shared", singles["ner"], singles["tagger"])
    ner, tagger, shared = (_numpy(transformer_weights(spacy.load(path), "transformer"))
                           for path in (singles["ner"], singles["tagger"], tmp_path / "shared"))
    assert list(shared) == list(ner) == list(tagger)
    differing = 0
    for key, value in shared.items():
        a, b = ner[key], tagger[key]
        if numpy.issubdtype(a.dtype, numpy.floating):
            assert_array_equal(value, ((a.astype("float64") + b) / 2).astype(a.dtype), err_msg=key)
            differing += not numpy.array_equal(a, b)
        else:
            assert_array_equal(value, a, err_msg=key)
    assert differing > 10  # the two tasks' transformers differ, so the mean is neither of them


def test_pipelines_on_different_transformer_settings_are_refused(singles, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(singles["tagger"], changed)
    config = (changed / "config.cfg").read_text(encoding="utf8")
    assert "\nwindow = 24\n" in config and "\nwords_as_input = true\n" in config
    config = config.replace("\nwindow = 24\n", "\nwindow = 20\n").replace("\nwords_as_input = true\n", "\nwords_as_input = false\n")
    (changed / "config.cfg").write_text(config, encoding="utf8")
    with pytest.raises(ValueError, match=rf"do not share a transformer architecture \(transformer.model.get_spans.window: "
                                         rf"{singles['ner']} = 24, {changed} = 20; transformer.model.words_as_input: "):
        share_runs(tmp_path / "out", singles["ner"], changed)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"Both pipelines have a component named 'ner'"):
        share_runs(tmp_path / "out", singles["ner"], singles["ner"])
    with pytest.raises(ValueError, match=r"not a spaCy pipeline folder"):
        share_runs(tmp_path / "out", singles["ner"], tmp_path)


def _invoke(*args: str):
    result = CliRunner().invoke(app, ["run", "share", *args])
    return result.exit_code, " ".join(result.output.split())  # wasabi wraps long lines


def test_cli_writes_the_shared_pipeline_and_fails_clearly(singles, tmp_path, single_torch_thread):
    output = tmp_path / "shared"
    code, text = _invoke(str(output), str(singles["ner"]), str(singles["tagger"]), "--transformer", "second")
    assert code == 0, text
    assert "components ['transformer', 'ner', 'tagger'] on one transformer (second), keeping hidden layers [1, 2]" in text
    assert spacy.load(output).meta[META_KEY]["transformer"] == "second"
    code, text = _invoke(str(output), str(singles["ner"]), str(singles["tagger"]))
    assert code == 1 and "exists and is not empty" in text
    code, text = _invoke(str(tmp_path / "bad"), str(singles["ner"]), str(singles["tagger"]), "--transformer", "pos")
    assert code == 1 and "transformer = 'pos': use one of average, first, second" in text


@pytest.mark.parametrize("choice, kept", [("first", True), ("average", False)])
def test_int8_smooth_ranges_stay_only_with_the_weights_they_were_recorded_on(singles, tmp_path, single_torch_thread, choice, kept):
    from spacy_dlfa.layers.transformer import CALIBRATION_SETTING
    from spacy_dlfa.runs.calibration import calibrate_pipeline

    nlp = spacy.load(singles["ner"])
    calibrate_pipeline(nlp, [nlp.make_doc(text) for text in TEXTS])
    nlp.to_disk(tmp_path / "calibrated")
    ranges = nlp.get_pipe("transformer").model.attrs[CALIBRATION_SETTING]
    share_runs(tmp_path / "shared", tmp_path / "calibrated", singles["tagger"], transformer=choice)
    saved = spacy.load(tmp_path / "shared").get_pipe("transformer").model.attrs[CALIBRATION_SETTING]
    assert saved == (ranges if kept else None)
