"""Independent jobs on Ray: run in the driver's directory, results in order, a failure named after the
others finish; the experiment grid and the robustness study on Ray give what the local engine gives."""
import json
import os
from pathlib import Path

import pytest
from conftest import REPO

from spacy_dlfa.runs.distributed import RaySettings, run_jobs
from spacy_dlfa.runs.experiments import GridSettings
from spacy_dlfa.runs.results import load_counts, load_metrics


def test_jobs_run_in_the_drivers_directory_and_keep_their_order(local_ray, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = run_jobs(lambda item: (os.getcwd(), item * item), [3, 1, 2], "ray", RaySettings(num_cpus=1))
    assert results == [(str(tmp_path), 9), (str(tmp_path), 1), (str(tmp_path), 4)]
    assert run_jobs(lambda item: item * item, [3, 1, 2]) == [9, 1, 4]


def test_a_failed_job_is_named_after_the_others_finish(local_ray, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def job(item):
        if item == 2:
            raise ValueError("bad cell")
        open(f"done-{item}", "w").close()
        return item

    with pytest.raises(RuntimeError, match="cell 2: .*bad cell"):
        run_jobs(job, [1, 2, 3], "ray", RaySettings(concurrency=1), describe=lambda item: f"cell {item}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done-1", "done-3"]
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        run_jobs(job, [1], "spark")


def test_grid_on_ray_resumes_locally_and_chooses_the_layer_on_english_dev(local_ray, tiny_bert, shared_data, tmp_path, monkeypatch):
    from spacy_dlfa.runs.experiments import run_grid
    from spacy_dlfa.tasks import prepare_task

    monkeypatch.chdir(tmp_path)  # relative paths, as project.yml passes them
    prepare_task("ner", tmp_path / "corpus", ["de"], shared_data, train_limit=30, dev_limit=10, eval_limit=10)
    settings = GridSettings(str(tiny_bert), 32, Path("corpus"), Path("training"), Path("metrics"), REPO / "configs", 2, 256, ["de"])
    done = run_grid("ner", ["sweep", "headline"], [1, 2], [1], settings, variants=["dlfa", "baseline"], engine="ray",
                    cluster=RaySettings(num_cpus=1))
    selection = json.loads((tmp_path / "metrics" / "ner" / "selection.json").read_text())
    assert str(selection["chosen_layer"]) == max(selection["dev_scores"], key=selection["dev_scores"].get)
    assert [run.name for run in done] == ["dlfa_l1_s1", "dlfa_l2_s1", "baseline_s1", f"dlfa_l{selection['chosen_layer']}_s1"]
    for name in ("baseline_s1", "dlfa_l1_s1", "dlfa_l2_s1"):
        meta = json.loads((tmp_path / "metrics" / "ner" / name / "run.meta.json").read_text())
        assert meta["torch_threads"] == 1 and "de" in load_counts(tmp_path / "metrics" / "ner" / name)
    saved = (tmp_path / "training" / "ner" / "baseline_s1" / "config.cfg").read_text()
    assert "train = \"corpus/train.spacy\"" in saved  # the paths as given, so a local rerun finds the same config
    stamps = {p: p.stat().st_mtime for p in (tmp_path / "metrics" / "ner").rglob("*.json") if p.name != "selection.json"}
    run_grid("ner", ["sweep", "headline"], [1, 2], [1], settings, variants=["dlfa", "baseline"])
    assert {p: p.stat().st_mtime for p in stamps} == stamps


def test_study_on_ray_attacks_and_resumes_locally(local_ray, tiny_bert, shared_data, tmp_path):
    from spacy_dlfa.checkpoints.truncate import truncate_model
    from spacy_dlfa.robustness.run import AttackSettings
    from spacy_dlfa.runs.study import run_study
    from spacy_dlfa.tasks import prepare_task

    prepare_task("ner", tmp_path / "corpus", ["de"], shared_data, train_limit=20, dev_limit=5, eval_limit=5)
    model = truncate_model(tiny_bert, tmp_path / "assets" / "tiny-L2", 2)
    template = GridSettings("", 0, tmp_path / "corpus", tmp_path / "training", tmp_path / "metrics", REPO / "configs", 2, 256, ["de"])
    attack = AttackSettings("char_noise", 0.5)
    done = run_study("ner", [str(model)], 6, [0], template, attack, variants=["baseline", "dlfa"], engine="ray",
                     cluster=RaySettings(num_cpus=1))
    runs = tmp_path / "metrics" / "tiny-L2" / "ner"
    assert done == [runs / name / "attacks" / "char_noise_rate0.5_seed0" for name in ("baseline_s0", "dlfa_l1_s0")]
    assert all("de" in load_metrics(path) for path in done)
    before = {path: (path / "scores.json").stat().st_mtime for path in done}
    run_study("ner", [str(model)], 6, [0], template, attack, variants=["baseline", "dlfa"])
    assert {path: (path / "scores.json").stat().st_mtime for path in done} == before
