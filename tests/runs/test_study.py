"""Robustness vs model size: layer truncation, the study plan, the study report."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY_LAYERS
from typer.testing import CliRunner

from spacy_dlfa.checkpoints.truncate import count_parameters, truncate_model
from spacy_dlfa.cli import app
from spacy_dlfa.reporting.study import script_of, write_study_report
from spacy_dlfa.runs.experiments import GridSettings
from spacy_dlfa.runs.results import SCORES, SENTENCES, counts_bytes, load_counts, load_scores, write_scores
from spacy_dlfa.runs.study import StudyModel, fused_layer_for_depth, model_name, model_settings, study_runs


def _hidden_states(path: Path):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(path, add_pooling_layer=False).eval()
    ids = torch.tensor([[2, 10, 11, 12, 13, 3], [2, 20, 21, 3, 0, 0]])
    with torch.no_grad():
        return model, model(input_ids=ids, attention_mask=(ids > 0).long(), output_hidden_states=True).hidden_states


@pytest.mark.parametrize("n_layers", [1, 2, TINY_LAYERS])
def test_truncation_keeps_the_first_layers_hidden_states(tiny_bert, tmp_path, n_layers):
    out = truncate_model(tiny_bert, tmp_path / "cut", n_layers)
    full_model, full = _hidden_states(tiny_bert)
    cut_model, cut = _hidden_states(out)
    assert len(cut) == n_layers + 1 and cut_model.config.num_hidden_layers == n_layers
    for k in range(n_layers + 1):
        assert torch.allclose(cut[k], full[k], atol=1e-6, rtol=0)
    assert (out / "tokenizer.json").is_file() and (out / "tokenizer_config.json").is_file()
    counts, full_counts = count_parameters(out), count_parameters(tiny_bert)
    assert counts["total"] == sum(p.numel() for p in cut_model.parameters())
    assert full_counts["total"] == sum(p.numel() for p in full_model.parameters())
    assert counts["embeddings"] == full_counts["embeddings"] and counts["layers"] == n_layers
    assert counts["encoder"] == full_counts["encoder"] * n_layers // TINY_LAYERS
    assert counts["total"] == counts["embeddings"] + counts["encoder"]


@pytest.mark.parametrize("n_layers", [0, -1, TINY_LAYERS + 1])
def test_truncation_range_errors(tiny_bert, tmp_path, n_layers):
    with pytest.raises(ValueError, match=rf"n_layers {n_layers} .*1\.\.{TINY_LAYERS}"):
        truncate_model(tiny_bert, tmp_path / "cut", n_layers)
    assert not (tmp_path / "cut").exists()


def test_truncation_refuses_other_architectures(tiny_bert, tmp_path):
    import shutil

    other = tmp_path / "roberta"
    shutil.copytree(tiny_bert, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "xlm-roberta"}))
    with pytest.raises(ValueError, match="'xlm-roberta' model; only BERT"):
        truncate_model(other, tmp_path / "cut", 1)


def test_model_command_with_layers(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["data", "model", "tiny", str(tmp_path / "full")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "model", "tiny", str(tmp_path / "L2"), "--layers", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "L2" / "config.json").read_text())["num_hidden_layers"] == 2
    assert "2 layers" in result.output and f"{count_parameters(tmp_path / 'L2')['total']:,} parameters" in result.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the full temporary model is removed
    result = runner.invoke(app, ["data", "model", str(tmp_path / "full"), str(tmp_path / "L1"), "--layers", "1"])
    assert result.exit_code == 0 and count_parameters(tmp_path / "L1")["total"] < count_parameters(tmp_path / "L2")["total"]
    result = runner.invoke(app, ["data", "model", str(tmp_path / "full"), str(tmp_path / "L9"), "--layers", "9"])
    assert result.exit_code == 1 and "use 1..3" in result.output


def test_fusion_layer_rules_and_the_study_plan(tmp_path):
    assert [fused_layer_for_depth(6, depth) for depth in (2, 4, 6, 8, 12)] == [1, 3, 5, 6, 6]
    assert [fused_layer_for_depth(6, depth, "relative") for depth in (2, 4, 6, 8, 12)] == [1, 2, 3, 4, 6]
    with pytest.raises(ValueError, match="at least 2 layers"):
        fused_layer_for_depth(6, 1)
    with pytest.raises(ValueError, match="unknown fusion rule"):
        fused_layer_for_depth(6, 4, "half")
    assert model_name("assets/e5-small-L4") == "e5-small-L4" and model_name("intfloat/multilingual-e5-small") == "multilingual-e5-small"
    model = StudyModel("assets/e5-small-L4", "e5-small-L4", 4, 384)
    assert [r.name for r in study_runs("ner", model, 6, [0, 1])] == ["baseline_s0", "dlfa_l3_s0", "baseline_s1", "dlfa_l3_s1"]
    with pytest.raises(ValueError, match="unknown study variants"):
        study_runs("ner", model, 6, [0], ["mean_fusion"])
    template = GridSettings("", 0, tmp_path / "corpus", tmp_path / "training", tmp_path / "metrics", REPO / "configs", 2, 256, ["de"])
    settings = model_settings(model, template)
    assert (settings.transformer, settings.hidden_width) == ("assets/e5-small-L4", 384)
    assert (settings.training_dir, settings.metrics_dir) == (tmp_path / "training" / "e5-small-L4", tmp_path / "metrics" / "e5-small-L4")


def _write_attack(root: Path, model: str, run: str, scores: dict, parameters: int, layers: int, task: str = "ner") -> None:
    (root / model).mkdir(parents=True, exist_ok=True)
    (root / model / "model.json").write_text(json.dumps({"source": f"assets/{model}", "layers": layers, "hidden": 32,
                                                         "parameters": {"total": parameters}}))
    folder = root / model / task / run / "attacks" / "char_noise_rate0.2_seed0"
    folder.mkdir(parents=True)
    for lang, (clean, attacked) in scores.items():
        block = {"name": "char_noise", "rate": 0.2, "budget": 0, "seed": 0, "examples": 10, "clean": clean, "attacked": attacked}
        write_scores(folder, lang, {"ents_f": attacked, "attack": block}, None)
        (folder / f"{lang}.attacked.spacy").write_bytes(b"")


def test_study_report_tables_plot_and_scripts(tmp_path):
    root = tmp_path / "study"
    _write_attack(root, "e5-small-L4", "baseline_s0", {"en": (0.9, 0.8), "de": (0.6, 0.3), "ru": (0.4, 0.3)}, 2_000_000, 4)
    _write_attack(root, "e5-small-L4", "dlfa_l3_s0", {"en": (0.9, 0.8), "de": (0.6, 0.4), "ru": (0.4, 0.4)}, 2_000_000, 4)
    _write_attack(root, "e5-small", "baseline_s0", {"en": (0.9, 0.9), "de": (0.8, 0.6), "ru": (0.6, 0.6)}, 3_000_000, 12)
    _write_attack(root, "e5-small", "baseline_s1", {"en": (0.9, 0.9), "de": (0.6, 0.4), "ru": (0.6, 0.6)}, 3_000_000, 12)
    report = write_study_report(root, tmp_path / "reports").read_text()
    assert "| model | parameters | variant | clean (avg of 2 targets) | attacked | relative drop |" in report
    assert "| e5-small-L4 | 2,000,000 | baseline | 50.0 | 30.0 | 40.0% |" in report
    assert "| e5-small-L4 | 2,000,000 | dlfa | 50.0 | 40.0 | 20.0% |" in report
    assert "| e5-small | 3,000,000 | baseline | 65.0 | 55.0 | 15.4% |" in report  # seeds averaged per language first
    assert "| model | variant | Latin (de) | Cyrillic (ru) |" in report and "| e5-small-L4 | baseline | 0.500 | 0.750 |" in report
    # drops 40, 20, 15.4 at sizes 2M, 2M, 3M and clean 50, 50, 65: ranks (1.5, 1.5, 3) vs (3, 2, 1), rho = -1.5 / sqrt(3)
    assert ("Across the 3 learned cells (models and variants), Spearman's rank correlation of the relative drop with the "
            "parameter count is -0.87, with the clean score -0.87.") in report
    assert "truncation is not pretraining at another size" in report and "e5-small-L4 are the full model's first N layers" in report
    assert (tmp_path / "reports" / "robustness_ner_char_noise_rate0.2_seed0.png").stat().st_size > 1000
    assert "| e5-small-L4 | 2,000,000 | 40.0% / 20.0% |" in report and "| e5-small | 3,000,000 | 15.4% / – |" in report
    assert "robustness_conclusion.md" not in report and "above chance" not in report
    (tmp_path / "reports" / "robustness_conclusion.md").write_text("# Conclusion\n")
    assert "[robustness_conclusion.md](robustness_conclusion.md)" in write_study_report(root, tmp_path / "reports").read_text()


def test_study_report_search_attack_success_rate_and_settings(tmp_path):
    root = tmp_path / "study"
    _write_attack(root, "e5-small-L4", "baseline_s0", {"en": (0.9, 0.8), "de": (0.6, 0.3)}, 2_000_000, 4)
    for run, rates in (("baseline_s0", (0.5, 0.2, 0.4)), ("baseline_s1", (0.5, 0.3, 0.6))):  # en, de, ru per seed
        folder = root / "e5-small-L4" / "ner" / run / "attacks" / "char_noise_search2x8_seed0_first100"
        folder.mkdir(parents=True)
        for lang, rate in zip(("en", "de", "ru"), rates):
            block = {"name": "char_noise", "rate": None, "budget": 2, "candidates": 8, "seed": 0, "limit": 100, "clean": 0.5,
                     "attacked": 0.25, "success_rate": rate}
            write_scores(folder, lang, {"ents_f": 0.25, "attack": block}, None)
    _write_attack(root, "e5-small", "baseline_s0", {"en": (0.9, 0.8)}, 3_000_000, 12)  # still running: source language only
    report = write_study_report(root, tmp_path / "reports").read_text()
    assert "| e5-small |" not in report
    assert "| relative drop | attack success rate |" in report
    assert "| clean (avg of 2 targets, first 100 examples each) |" in report
    # mean over seeds per language (de 25%, ru 50%), then over targets; the source language en is left out
    assert "| e5-small-L4 | 2,000,000 | baseline | 50.0 | 25.0 | 50.0% | 37.5% |" in report
    assert "| e5-small-L4 | 2,000,000 | baseline | 60.0 | 30.0 | 50.0% | – |" in report  # random attack without success rates
    assert ("char_noise_search2x8_seed0_first100: char_noise greedy search, at most 2 edits per example, 8 candidates per step, "
            "seed 0, first 100 examples per language") in report
    assert "char_noise_rate0.2_seed0: char_noise at random, rate 0.2, seed 0" in report
    assert "the greedy search is stronger but black-box" in report


def test_study_report_drop_difference_with_and_without_sentence_counts(tmp_path):
    root = tmp_path / "study"
    kept, halved = [[1, 0, 0], [1, 0, 0]], [[1, 0, 0], [0, 1, 1]]  # NER [tp, fp, fn] per sentence: F1 100 and 50
    for run, attacked in (("baseline_s0", halved), ("dlfa_l3_s0", kept)):
        _write_attack(root, "e5-small-L4", run, {"en": (1.0, 1.0), "de": (1.0, 0.5 if attacked is halved else 1.0)}, 2_000_000, 4)
        folder = root / "e5-small-L4" / "ner" / run / "attacks" / "char_noise_rate0.2_seed0"
        (folder / SENTENCES).write_bytes(counts_bytes({lang: {"clean": {"ents": kept}, "attacked": {"ents": attacked}} for lang in ("en", "de")}))
    _write_attack(root, "e5-small", "baseline_s0", {"en": (0.9, 0.9), "de": (0.8, 0.6)}, 3_000_000, 12)
    _write_attack(root, "e5-small", "dlfa_l10_s0", {"en": (0.9, 0.9), "de": (0.8, 0.7)}, 3_000_000, 12)
    report = write_study_report(root, tmp_path / "reports").read_text()
    # baseline drops 50 points, DLFA none; resampling 2 sentences gives drops 0, 50 or 100 for the baseline
    assert "| e5-small-L4 | -50.00 | [-100.00, +0.00] | 0 / 0 |" in report
    assert "| e5-small | -12.50 | – (attacked before per-sentence counts were written) | 0 / 0 |" in report


def test_pair_tasks_report_the_drop_of_the_margin_above_chance(tmp_path):
    root = tmp_path / "study"
    # XNLI (3 classes, chance 33.3): clean 53.3, attacked 43.3 -> 10 of the 20-point margin lost
    _write_attack(root, "e5-small", "baseline_s0", {"en": (0.8, 0.8), "de": (0.6, 0.5), "ru": (0.4666, 0.3666)}, 3_000_000, 12, "xnli")
    # at chance when clean: no margin to lose
    _write_attack(root, "e5-small", "dlfa_l6_s0", {"en": (0.8, 0.8), "de": (0.3, 0.3), "ru": (0.3, 0.2)}, 3_000_000, 12, "xnli")
    # PAWS-X (2 classes, chance 50): 70 -> 60 loses half the margin
    _write_attack(root, "e5-small", "baseline_s0", {"en": (0.8, 0.8), "de": (0.7, 0.6)}, 3_000_000, 12, "pawsx")
    _write_attack(root, "e5-small", "baseline_s0", {"en": (0.8, 0.8), "de": (0.7, 0.6)}, 3_000_000, 12, "ner")
    report = write_study_report(root, tmp_path / "reports").read_text()
    assert "| relative drop | drop of the margin above chance (33.3) | clean balanced accuracy (whole test sets) |" in report
    assert "| e5-small | 3,000,000 | baseline | 53.3 | 43.3 | 18.8% | 50.0% | – |" in report
    assert "| e5-small | 3,000,000 | dlfa | 30.0 | 25.0 | 16.7% | – | – |" in report
    assert "| relative drop | drop of the margin above chance (50.0) | clean balanced accuracy (whole test sets) |" in report
    assert "| e5-small | 3,000,000 | baseline | 70.0 | 60.0 | 14.3% | 50.0% | – |" in report
    assert report.count("drop of the margin above chance (") == 2  # not in the NER table
    assert "The relative drop of PAWS-X and XNLI depends on how far" in report


def test_a_pair_run_at_chance_balanced_accuracy_is_marked_as_not_learned(tmp_path):
    root = tmp_path / "study"
    for run, recalls in (("baseline_s0", {"de": 0.5, "ja": 0.52}), ("dlfa_l3_s0", {"de": 0.6, "ja": 0.62})):
        _write_attack(root, "e5-small-L4", run, {"en": (0.8, 0.8), "de": (0.62, 0.62), "ja": (0.6, 0.58)}, 2_000_000, 4, "pawsx")
        for lang, recall in recalls.items():  # the run's clean scores, beside its attacks folder
            write_scores(root / "e5-small-L4" / "pawsx" / run, lang, {"cats_macro_r": recall}, None)
    report = write_study_report(root, tmp_path / "reports").read_text()
    assert "| e5-small-L4 | 2,000,000 | baseline † | 61.0 | 60.0 | 1.6% | 9.1% | 51.0 |" in report  # 51 < 50 + 5
    assert "| e5-small-L4 | 2,000,000 | dlfa | 61.0 | 60.0 | 1.6% | 9.1% | 61.0 |" in report
    assert "| e5-small-L4 | 2,000,000 | 1.6%† / 1.6% |" in report
    assert "| e5-small-L4 † | +0.00 |" in report
    assert "† did not learn the task: clean balanced accuracy (macro recall) less than 5 points above chance" in report


def test_study_report_without_data(tmp_path):
    result = CliRunner().invoke(app, ["report", "study", str(tmp_path / "missing"), str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    assert "No study metrics found" in (tmp_path / "reports" / "robustness.md").read_text()
    (tmp_path / "empty").mkdir()
    assert "No study metrics found" in write_study_report(tmp_path / "empty", tmp_path / "r2").read_text()
    assert list((tmp_path / "r2").glob("*.png")) == []


def test_script_map():
    assert [script_of(x) for x in ("de", "ru", "ar", "hi", "ja_gsd", "th", "fi_tdt")] == ["Latin", "Cyrillic", "Arabic", "Devanagari", "CJK", "Other", "Latin"]


def test_tiny_study_end_to_end_and_resume(tiny_bert, shared_data, tmp_path):
    from spacy_dlfa.robustness.run import AttackSettings
    from spacy_dlfa.runs.study import run_study
    from spacy_dlfa.tasks import prepare_task

    prepare_task("ner", tmp_path / "corpus", ["de"], shared_data, train_limit=20, dev_limit=5, eval_limit=5)
    model = truncate_model(tiny_bert, tmp_path / "assets" / "tiny-L2", 2)
    template = GridSettings("", 0, tmp_path / "corpus", tmp_path / "training", tmp_path / "metrics", REPO / "configs", 2, 256, ["de"])
    attack = AttackSettings("char_noise", 0.5)
    done = run_study("ner", [str(model)], 6, [0], template, attack, variants=["dlfa"])
    run_dir = tmp_path / "metrics" / "tiny-L2" / "ner" / "dlfa_l1_s0"
    attacked = run_dir / "attacks" / "char_noise_rate0.5_seed0"
    assert done == [attacked]
    block = load_scores(attacked)["de"]["attack"]
    assert block["rate"] == 0.5
    # the attack's clean pass is the run's evaluation: one pass over each clean set
    assert load_scores(run_dir)["de"]["ents_f"] == block["clean"]
    assert "de" in load_counts(run_dir) and "de" in load_counts(attacked)
    assert json.loads((run_dir / "run.meta.json").read_text())["evaluated_by"] == "attack char_noise_rate0.5_seed0"
    record = json.loads((tmp_path / "metrics" / "tiny-L2" / "model.json").read_text())
    assert (record["layers"], record["hidden"], record["parameters"]) == (2, 32, count_parameters(model))
    before = (attacked / SCORES).stat().st_mtime
    run_study("ner", [str(model)], 6, [0], template, attack, variants=["dlfa"])
    assert (attacked / SCORES).stat().st_mtime == before
    clean_before = (run_dir / SCORES).stat().st_mtime
    first2 = attacked.with_name(attacked.name + "_first2")
    assert run_study("ner", [str(model)], 6, [0], template, replace(attack, limit=2), variants=["dlfa"]) == [first2]
    assert (block["limit"], load_scores(first2)["de"]["attack"]["limit"]) == (0, 2)
    assert (run_dir / SCORES).stat().st_mtime == clean_before  # a partial attack never replaces the clean scores
    assert "| tiny-L2 |" in write_study_report(tmp_path / "metrics", tmp_path / "reports").read_text()


def test_tiny_pair_study_attacks_and_scores_xnli(tiny_bert, shared_data, tmp_path):
    from spacy_dlfa.robustness.run import AttackSettings
    from spacy_dlfa.runs.study import run_study
    from spacy_dlfa.tasks import prepare_task

    model = truncate_model(tiny_bert, tmp_path / "assets" / "tiny-L2", 2)
    prepare_task("xnli", tmp_path / "corpus", ["de"], shared_data, train_limit=30, eval_limit=8, transformer=str(model), holdout=30)
    template = GridSettings("", 0, tmp_path / "corpus", tmp_path / "training", tmp_path / "metrics", REPO / "configs", 2, 0, ["de"])
    done = run_study("xnli", [str(model)], 6, [0], template, AttackSettings("char_noise", 0.5), variants=["baseline"])
    run_dir = tmp_path / "metrics" / "tiny-L2" / "xnli" / "baseline_s0"
    assert done == [run_dir / "attacks" / "char_noise_rate0.5_seed0"]
    block = load_scores(done[0])["de"]["attack"]
    assert load_scores(run_dir)["de"]["cats_micro_f"] == block["clean"]
    counts = load_counts(done[0])["de"]
    assert len(counts["clean"]["cats"]) == len(counts["attacked"]["cats"]) == 8
    assert "## XNLI" in write_study_report(tmp_path / "metrics", tmp_path / "reports").read_text()


@pytest.mark.parametrize("attack,limit,label", [
    (("char_noise", 0.2), 0, "char_noise_rate0.2_seed0"),
    (("char_noise", 0.05, 0, 8, 3), 0, "char_noise_rate0.05_seed3"),
    (("char_noise", 0.2, 2, 4), 100, "char_noise_search2x4_seed0_first100"),
])
def test_attack_folders_name_every_setting_that_changes_the_result(attack, limit, label):
    from spacy_dlfa.robustness.run import AttackSettings
    from spacy_dlfa.runs.study import attack_label

    assert attack_label(AttackSettings(*attack, limit=limit)) == label


def _study_cli(monkeypatch, args):
    """Run ``run study`` with run_studies replaced; returns (exit code, output, what run_studies got)."""
    import spacy_dlfa.runs.study

    seen = {}
    monkeypatch.setattr(spacy_dlfa.runs.study, "run_studies",
                        lambda studies, models, seeds, attack, **options: seen.update(studies=studies, attack=attack, seeds=seeds))
    result = CliRunner().invoke(app, ["run", "study", *args])
    return result.exit_code, result.output, seen


def test_the_study_cli_passes_the_attack_seed_and_candidates(monkeypatch, tmp_path):
    code, output, seen = _study_cli(monkeypatch, ["ner", "--models", "m", "--targets", "de", "--corpus-dir", str(tmp_path), "--seeds", "1 2",
                                                  "--budget", "2", "--candidates", "4", "--attack-seed", "3", "--attack-limit", "5"])
    assert code == 0, output
    assert (seen["seeds"], seen["attack"].budget, seen["attack"].candidates, seen["attack"].seed) == ([1, 2], 2, 4, 3)
    assert seen["attack"].limit == 5
    [study] = seen["studies"]
    assert (study.task, study.layer, study.template.corpus_dir, list(study.template.targets)) == ("ner", 6, tmp_path, ["de"])


def _corpus(root: Path, task: str, languages):
    (root / task).mkdir(parents=True)
    for lang in languages:
        (root / task / f"test-{lang}.spacy").write_bytes(b"")


def test_one_study_command_runs_several_tasks_each_with_its_own_settings(monkeypatch, tmp_path):
    _corpus(tmp_path, "ner", ["en", "de", "zh"])
    _corpus(tmp_path, "xnli", ["en", "sw"])
    code, output, seen = _study_cli(monkeypatch, ["ner", "xnli", "--models", "m", "--corpus-dir", f"{tmp_path}/{{task}}",
                                                  "--layer", "ner=10 pos=8 xnli=6", "--max-steps", "ner=1500,xnli=600",
                                                  "--batch-size", "ner=256 xnli=0"])
    assert code == 0, output
    got = [(s.task, s.layer, s.template.corpus_dir, list(s.template.targets), s.template.max_steps, s.template.batch_size)
           for s in seen["studies"]]
    # targets: every test-<lang>.spacy of the task's folder but the training language's
    assert got == [("ner", 10, tmp_path / "ner", ["de", "zh"], 1500, 256), ("xnli", 6, tmp_path / "xnli", ["sw"], 600, 0)]


@pytest.mark.parametrize("args,error", [
    (["--layer", "ner=10"], "no value for xnli"),
    (["--layer", "ner=ten xnli=6"], "'ten' is not a whole number"),
    (["--max-steps", "nre=10"], "TASK one of ner, pos, xnli, pawsx"),
    (["--targets", "de"], "give targets for one task only"),
    (["--corpus-dir", "corpus"], "write {task} where the task's name goes"),
])
def test_study_settings_for_several_tasks_are_checked(monkeypatch, tmp_path, args, error):
    _corpus(tmp_path, "ner", ["en", "de"])
    _corpus(tmp_path, "xnli", ["en", "sw"])
    code, output, seen = _study_cli(monkeypatch, ["ner", "xnli", "--models", "m", "--corpus-dir", f"{tmp_path}/{{task}}", *args])
    assert code != 0 and not seen
    assert error in " ".join(output.replace("│", " ").split())


def test_a_study_task_without_test_files_is_refused(monkeypatch, tmp_path):
    (tmp_path / "ner").mkdir()
    code, output, seen = _study_cli(monkeypatch, ["ner", "--models", "m", "--corpus-dir", str(tmp_path / "ner")])
    assert code == 1 and not seen
    assert "no test-<lang>.spacy files in" in output


def test_the_control_variant_may_join_the_study():
    from spacy_dlfa.runs.study import StudyModel, study_runs

    runs = study_runs("ner", StudyModel("m", "m", 4, 32), 6, [0], ["baseline", "dlfa", "aif_last"])
    assert [(r.variant, r.layer) for r in runs] == [("baseline", None), ("dlfa", 3), ("aif_last", None)]
    with pytest.raises(ValueError, match="unknown study variants"):
        study_runs("ner", StudyModel("m", "m", 4, 32), 6, [0], ["mean"])


def test_a_run_finished_elsewhere_with_the_same_config_is_reused(tmp_path):
    from spacy_dlfa.runs.experiments import TRAINED_MARKER, Run, run_config
    from spacy_dlfa.runs.study import run_settings

    grid = GridSettings("assets/e5-small", 384, tmp_path / "corpus", tmp_path / "experiments", tmp_path / "metrics", REPO / "configs", 100, 128, ["de"])
    full = model_settings(StudyModel("assets/e5-small", "e5-small", 12, 384), replace(grid, training_dir=tmp_path / "study"))
    small = model_settings(StudyModel("assets/e5-small-L4", "e5-small-L4", 4, 384), replace(grid, training_dir=tmp_path / "study"))
    run = Run("ner", "dlfa", 0, 6)
    assert run_settings(run, full, grid.training_dir) == full  # nothing finished there yet
    finished = grid.training_dir / "ner" / run.name
    finished.mkdir(parents=True)
    run_config(run, grid).to_disk(finished / "config.cfg")
    (finished / TRAINED_MARKER).write_text("1")
    assert run_settings(run, full, grid.training_dir).training_dir == grid.training_dir
    assert run_settings(run, full, None) == full
    assert run_settings(run, small, grid.training_dir) == small  # another transformer: trained anew
    assert run_settings(run, replace(full, max_steps=200), grid.training_dir).max_steps == 200
    assert run_settings(run, replace(full, max_steps=200), grid.training_dir).training_dir == full.training_dir
    own = full.training_dir / "ner" / run.name
    own.mkdir(parents=True)
    (own / TRAINED_MARKER).write_text("1")
    assert run_settings(run, full, grid.training_dir) == full  # the study's own finished run comes first
