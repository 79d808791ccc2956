"""Across runs: run average writes a pipeline whose weights are the runs' elementwise mean."""
import shutil
from pathlib import Path
from typing import Dict

import numpy
import pytest
import spacy
from conftest import SENTENCES
from numpy.testing import assert_array_equal
from pipelines import train_fast
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.runs.averaging import average_arrays, average_runs, config_differences, weight_slots


@pytest.fixture(scope="module")
def two_runs(tiny_bert, tmp_path_factory, single_torch_thread) -> Dict[str, list]:
    """Per task, two pipelines trained from seeds 0 and 1 on the tiny model, saved to disk."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for task in ("tagger", "ner"):
        runs[task] = []
        for seed in (0, 1):
            nlp = train_fast(task, tiny_bert, seed)
            nlp.to_disk(root / f"{task}_s{seed}")
            runs[task].append(root / f"{task}_s{seed}")
    return runs


def _weights(path: Path):
    nlp = spacy.load(path)
    return nlp, [(group, label, owner, key) for group, label, owner, key in weight_slots(nlp)]


def _value(owner, key) -> numpy.ndarray:
    if hasattr(owner, "get_param"):
        return numpy.asarray(owner.get_param(key))
    return owner[key].detach().numpy()


def test_average_arrays_is_the_elementwise_mean():
    a = numpy.array([[1.0, 2.0], [3.0, -4.0]], dtype="f")
    b = numpy.array([[3.0, 2.0], [0.0, 4.0]], dtype="f")
    mean = average_arrays([a, b])
    assert mean.dtype == numpy.float32
    assert_array_equal(mean, numpy.array([[2.0, 2.0], [1.5, 0.0]], dtype="f"))
    assert_array_equal(average_arrays([a, b, numpy.full((2, 2), 3.0, dtype="f")]), numpy.array([[7 / 3, 7 / 3], [2.0, 1.0]], dtype="f"))
    with pytest.raises(ValueError, match=r"different shapes \[\(2,\), \(2, 2\)\]"):
        average_arrays([a, numpy.zeros(2, dtype="f")])


def test_config_differences_allow_only_seed_and_data_paths():
    base = {"system": {"seed": 0}, "training": {"seed": 0, "max_steps": 2000}, "paths": {"train": "a", "dev": "b", "transformer": "e5"}}
    other = {"system": {"seed": 1}, "training": {"seed": 1, "max_steps": 2000}, "paths": {"train": "c", "dev": "d", "transformer": "e5"}}
    assert config_differences([base, other]) == {}
    other["training"]["max_steps"] = 1000
    other["paths"]["transformer"] = "mbert"
    assert config_differences([base, other]) == {"paths.transformer": ["e5", "mbert"], "training.max_steps": [2000, 1000]}
    del other["training"]["max_steps"]
    assert config_differences([base, other])["training.max_steps"] == [2000, "<missing>"]


@pytest.mark.parametrize("task", ["tagger", "ner"])
def test_averaged_pipeline_holds_the_elementwise_mean_and_predicts(task, two_runs, tmp_path, single_torch_thread):
    output = tmp_path / "averaged" / task  # its parent does not exist yet
    spread = average_runs(output, two_runs[task])
    assert set(spread) == {"transformer", "fusion", "heads"} and all(value > 0 for value in spread.values())
    (_, first), (_, second) = (_weights(run) for run in two_runs[task])
    nlp, averaged = _weights(output)
    assert [label for _, label, _, _ in averaged] == [label for _, label, _, _ in first]
    groups = set()
    for (group, label, owner, key), (_, _, owner_a, key_a), (_, _, owner_b, key_b) in zip(averaged, first, second):
        a, b = _value(owner_a, key_a), _value(owner_b, key_b)
        if numpy.issubdtype(a.dtype, numpy.floating):
            expected = ((a.astype("float64") + b) / 2).astype(a.dtype)
            assert_array_equal(_value(owner, key), expected, err_msg=label)
            groups.add(group) if not numpy.array_equal(a, b) else None
        else:
            assert_array_equal(_value(owner, key), a, err_msg=label)
    assert groups == {"transformer", "fusion", "heads"}
    assert nlp.meta["spacy_dlfa_averaged"]["runs"] == [str(run) for run in two_runs[task]]
    docs = list(nlp.pipe(SENTENCES))
    if task == "tagger":
        assert all(token.tag_ for doc in docs for token in doc)
    else:
        assert all(ent.label_ in {"PER", "ORG", "LOC"} for doc in docs for ent in doc.ents)


def test_heads_first_keeps_the_first_runs_heads(two_runs, tmp_path, single_torch_thread):
    spread = average_runs(tmp_path / "averaged", two_runs["tagger"], heads="first")
    assert "heads" not in spread
    (_, first), (_, second) = (_weights(run) for run in two_runs["tagger"])
    _, averaged = _weights(tmp_path / "averaged")
    for (group, label, owner, key), (_, _, owner_a, key_a), (_, _, owner_b, key_b) in zip(averaged, first, second):
        a, b = _value(owner_a, key_a), _value(owner_b, key_b)
        if group == "heads":
            assert_array_equal(_value(owner, key), a, err_msg=label)
        elif numpy.issubdtype(a.dtype, numpy.floating):
            assert_array_equal(_value(owner, key), ((a.astype("float64") + b) / 2).astype(a.dtype), err_msg=label)


def test_runs_with_different_settings_are_refused_naming_the_setting(two_runs, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(two_runs["tagger"][1], changed)
    config = (changed / "config.cfg").read_text(encoding="utf8")
    assert "\nmax_steps = 2000\n" in config and "\nseed = 1\n" in config
    average_runs(tmp_path / "seed-only", [two_runs["tagger"][0], changed])  # another seed is allowed
    (changed / "config.cfg").write_text(config.replace("\nmax_steps = 2000\n", "\nmax_steps = 1000\n"), encoding="utf8")
    with pytest.raises(ValueError, match=rf"training.max_steps: {two_runs['tagger'][0]} = 2000, {changed} = 1000"):
        average_runs(tmp_path / "out", [two_runs["tagger"][0], changed])
    assert not (tmp_path / "out").exists()


def _invoke(*args: str):
    result = CliRunner().invoke(app, ["run", "average", *args])
    return result.exit_code, " ".join(result.output.split())  # wasabi wraps long lines


def test_cli_writes_the_average_and_fails_clearly(two_runs, tmp_path, single_torch_thread):
    output = tmp_path / "averaged"
    code, output_text = _invoke(str(output), *map(str, two_runs["ner"]), "--heads", "first")
    assert code == 0, output_text
    assert "average of 2 runs (heads: first)" in output_text and "transformer 0." in output_text
    assert spacy.load(output).meta["spacy_dlfa_averaged"]["heads"] == "first"
    code, output_text = _invoke(str(output), *map(str, two_runs["ner"]))
    assert code == 1 and "exists and is not empty" in output_text
    code, output_text = _invoke(str(tmp_path / "mixed"), str(two_runs["ner"][0]), str(two_runs["tagger"][0]))
    assert code == 1 and "different settings (components.ner.factory: " in output_text and " more); only the seed" in output_text
    code, output_text = _invoke(str(tmp_path / "one"), str(two_runs["ner"][0]))
    assert code == 1 and "two or more runs, got 1" in output_text
    code, output_text = _invoke(str(tmp_path / "bad"), *map(str, two_runs["ner"]), "--heads", "last")
    assert code == 1 and "heads = 'last'" in output_text


def test_a_training_folder_is_not_a_pipeline(two_runs, tmp_path):
    (tmp_path / "run" / "model-best").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"not a spaCy pipeline folder .*: pass .*model-best or .*model-last"):
        average_runs(tmp_path / "out", [tmp_path / "run", two_runs["ner"][0]])


def test_the_average_drops_int8_smooth_ranges_of_the_first_run(two_runs, tmp_path, single_torch_thread):
    from spacy_dlfa.layers.transformer import CALIBRATION_SETTING
    from spacy_dlfa.runs.calibration import calibrate_pipeline

    nlp = spacy.load(two_runs["tagger"][0])
    calibrate_pipeline(nlp, [nlp.make_doc("Ein Satz über Berlin .")])
    nlp.to_disk(tmp_path / "calibrated")
    assert nlp.get_pipe("transformer").model.attrs[CALIBRATION_SETTING]
    average_runs(tmp_path / "averaged", [tmp_path / "calibrated", two_runs["tagger"][1]])
    assert spacy.load(tmp_path / "averaged").get_pipe("transformer").model.attrs[CALIBRATION_SETTING] is None
