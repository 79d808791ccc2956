"""python -m spacy_dlfa calibrate: the input ranges that quantize = "int8-smooth" needs, recorded on a
corpus and saved with the pipeline, which keeps its fp32 weights and predictions and loads in
"int8-smooth" from disk."""
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from conftest import SENTENCES, TINY_LAYERS
from pipelines import annotations, gold_docs
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.layers.quantize import Int8Linear, SmoothedInt8Linear, smoothing_scales
from spacy_dlfa.layers.transformer import CALIBRATION_SETTING
from spacy_dlfa.runs.calibration import calibrate, calibrate_pipeline

SMOOTH = {"components": {"transformer": {"model": {"quantize": "int8-smooth"}}}}


def _corpus(path: Path, task: str, nlp) -> Path:
    DocBin(docs=gold_docs(task, nlp.vocab)).to_disk(path)
    return path


def _layers(nlp, kind):
    transformer = nlp.get_pipe("transformer").model.transformer
    return {name: module for name, module in transformer.named_modules() if type(module) is kind}


@pytest.mark.parametrize("task", ["ner", "tagger"])
def test_calibrated_pipeline_loads_in_int8_smooth(trained_pipelines, tmp_path: Path, task, single_torch_thread):
    fp32 = spacy.load(trained_pipelines[task])
    corpus = _corpus(tmp_path / "train.spacy", task, fp32)
    calibrate(trained_pipelines[task], corpus, tmp_path / "calibrated", sentences=2)
    # fp32: same weights, same predictions; the ranges are each feed-forward output's input width
    calibrated = spacy.load(tmp_path / "calibrated")
    assert annotations(calibrated.pipe(SENTENCES)) == annotations(fp32.pipe(SENTENCES))
    ranges = calibrated.get_pipe("transformer").model.attrs[CALIBRATION_SETTING]
    assert sorted(ranges) == [f"encoder.layer.{i}.output.dense" for i in range(TINY_LAYERS)]
    assert all(len(values) == fp32.get_pipe("transformer").model.transformer.config.intermediate_size for values in ranges.values())
    # int8-smooth: every linear in int8, the feed-forward outputs smoothed by the saved ranges
    smooth = spacy.load(tmp_path / "calibrated", config=SMOOTH)
    smoothed = _layers(smooth, SmoothedInt8Linear)
    assert sorted(smoothed) == sorted(ranges) and len(_layers(smooth, Int8Linear)) == 5 * TINY_LAYERS
    name = sorted(smoothed)[0]
    expected = smoothing_scales(torch.tensor(ranges[name]), _layers(fp32, torch.nn.Linear)[name].weight)
    assert torch.equal(smoothed[name].scales, expected)
    assert annotations(smooth.pipe(SENTENCES)) == annotations(smooth.pipe(SENTENCES))
    # saved in int8-smooth, it round-trips: fp32 weights and ranges on disk, the same int8 model back
    smooth.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    assert again.get_pipe("transformer").model.attrs[CALIBRATION_SETTING] == ranges
    assert set(_layers(again, SmoothedInt8Linear)) == set(smoothed)
    assert annotations(again.pipe(SENTENCES)) == annotations(smooth.pipe(SENTENCES))


def test_the_ranges_are_the_largest_inputs_seen(trained_pipelines, single_torch_thread):
    nlp = spacy.load(trained_pipelines["ner"])
    layer = _layers(nlp, torch.nn.Linear)["encoder.layer.1.output.dense"]
    seen = []
    handle = layer.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach().abs().amax(dim=(0, 1))))
    counts = calibrate_pipeline(nlp, [nlp.make_doc(text) for text in SENTENCES], batch_size=2)
    handle.remove()
    assert counts == {"transformer": TINY_LAYERS} and len(seen) > 1
    numpy.testing.assert_array_equal(nlp.get_pipe("transformer").model.attrs[CALIBRATION_SETTING]["encoder.layer.1.output.dense"],
                                     torch.stack(seen).amax(0).numpy())


def test_calibration_errors(trained_pipelines, tmp_path: Path, single_torch_thread):
    uncalibrated = trained_pipelines["tagger"]
    with pytest.raises(ValueError, match=r"int8-smooth.*needs the activation ranges.*python -m spacy_dlfa calibrate"):
        spacy.load(uncalibrated, config=SMOOTH)
    quantized = spacy.load(uncalibrated, config={"components": {"transformer": {"model": {"quantize": "int8"}}}})
    with pytest.raises(ValueError, match="already quantized \\(quantize = 'int8'\\): calibrate the pipeline loaded in fp32"):
        calibrate_pipeline(quantized, [quantized.make_doc("a b")])
    nlp = spacy.load(uncalibrated)
    with pytest.raises(ValueError, match="no text to calibrate on"):
        calibrate_pipeline(nlp, [])
    blank = spacy.blank("en")
    with pytest.raises(ValueError, match="no component of this pipeline has a spacy-dlfa.TransformerModel.v1"):
        calibrate_pipeline(blank, [blank.make_doc("a")])
    result = CliRunner().invoke(app, ["calibrate", str(uncalibrated), str(tmp_path / "missing.spacy")], env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "does not exist" in result.output


def test_int8_smooth_warns_without_int8_dot_products(trained_pipelines, tmp_path: Path, monkeypatch, single_torch_thread):
    nlp = spacy.load(trained_pipelines["tagger"])
    calibrate(trained_pipelines["tagger"], _corpus(tmp_path / "train.spacy", "tagger", nlp), tmp_path / "calibrated")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True}, raising=False)
    with pytest.warns(UserWarning, match='"int8-smooth" on a CPU without int8 dot products.*7 bits, for which it was not measured'):
        smooth = spacy.load(tmp_path / "calibrated", config=SMOOTH)
    assert all(module.reduce_range for module in _layers(smooth, SmoothedInt8Linear).values())


def test_calibrate_writes_atomically_in_place_or_to_a_free_folder(trained_pipelines, tmp_path: Path, monkeypatch, single_torch_thread):
    import shutil

    from spacy.language import Language

    model = tmp_path / "model"
    shutil.copytree(trained_pipelines["ner"], model)
    corpus = _corpus(tmp_path / "train.spacy", "ner", spacy.load(model))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="taken exists and is not empty"):
        calibrate(model, corpus, taken)
    assert (taken / "keep.txt").exists()
    # interrupted while writing: the pipeline stays as it was, no temporary folder is left
    def interrupted(self, path, **kwargs):
        Path(path).mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(Language, "to_disk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        calibrate(model, corpus)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "taken", "train.spacy"]
    assert spacy.load(model).get_pipe("transformer").model.attrs[CALIBRATION_SETTING] is None
    calibrate(model, corpus)  # in place
    assert spacy.load(model).get_pipe("transformer").model.attrs[CALIBRATION_SETTING]
    calibrate(model, corpus, taken, overwrite=True)
    assert not (taken / "keep.txt").exists() and spacy.load(taken).get_pipe("transformer").model.attrs[CALIBRATION_SETTING]
