"""``reports/recipe_results.md``: issue #21's report from a spec of run folders, on small fake metrics with known counts."""
import json
import re
from pathlib import Path
from typing import Dict, Optional

import pytest
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.reporting.recipe import RecipeSpecError, load_spec, write_recipe_report
from spacy_dlfa.runs.results import write_scores


def _counts(correct: int) -> list:
    return [[1, 0, 0]] * correct + [[0, 1, 1]] * (10 - correct)  # 10 sentences, F1 = correct / 10


def _write_run(root: Path, path: str, gold: Dict[str, int], raw: Optional[Dict[str, int]] = None, dev: Optional[float] = None) -> None:
    run_dir = root / path
    for lang, correct in gold.items():
        write_scores(run_dir, lang, {"ents_f": correct / 10}, {"ents": _counts(correct)})
    for lang, correct in (raw or {}).items():
        write_scores(run_dir, f"{lang}.raw", {"ents_char_f": correct / 10}, {"ents": _counts(correct)})
    if dev is not None:
        (run_dir / "run.meta.json").write_text(json.dumps({"dev_score": dev}))


def _spec(**changes) -> dict:
    ner = {
        "targets": ["de", "zh"],
        "shipped": "metrics/combo/ner/mean_fusion_l10_s*",
        "base": "metrics/words_input/ner/dlfa_l10_s*",
        "steps": [
            {"label": "1: each token its own word", "runs": "metrics/words_input/ner/dlfa_l10_s*", "against": "metrics/experiments/ner/dlfa_l10_s*"},
            {"label": "4b: seeds averaged", "runs": ["metrics/averaged/ner/uniform"], "against": "metrics/words_input/ner/dlfa_l10_s*"},
        ],
        "goals": [
            {"kind": "average", "at_least": 64, "why": "mBERT"},
            {"kind": "every_seed", "at_least": 61},
            {"kind": "target", "lang": "zh", "at_least": 60},
            {"kind": "seed_std", "at_most": 1.0},
            {"kind": "raw_gap", "at_most": 2.0},
        ],
        "reference": {"label": "mBERT", "scores": {"de": 70.0, "zh": 40.0}},
    }
    return {"root": ".", "ner": {**ner, **changes}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Shipped seeds 0, 1 (target averages 60, 70); base seeds 0-2 (40, 50, 60), raw text too; the input before
    item 1, seeds 0, 1 (30 each); an across-seed average without a seed (55)."""
    metrics = tmp_path / "metrics"
    for seed, (de, zh, dev) in enumerate([(7, 5, 82.0), (7, 7, 84.0)]):
        _write_run(metrics, f"combo/ner/mean_fusion_l10_s{seed}", {"en": 9, "de": de, "zh": zh}, dev=dev)
    for seed, (de, zh) in enumerate([(5, 3), (5, 5), (7, 5)]):
        _write_run(metrics, f"words_input/ner/dlfa_l10_s{seed}", {"en": 8, "de": de, "zh": zh}, raw={"en": 8, "de": 4, "zh": 2}, dev=80.0 + seed)
    for seed in (0, 1):
        _write_run(metrics, f"experiments/ner/dlfa_l10_s{seed}", {"en": 7, "de": 4, "zh": 2})
    _write_run(metrics, "averaged/ner/uniform", {"en": 8, "de": 6, "zh": 5})
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "recipe_results.json").write_text(json.dumps({**_spec(), "root": ".."}))
    return tmp_path


def _row(report: str, start: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(start))


def test_per_language_means_stds_seeds_raw_text_and_the_reference(project):
    report = write_recipe_report(project / "reports" / "recipe_results.json", project / "out").read_text()
    assert "| NER F1 | shipped (2 seeds) | seed 0 | seed 1 | base (3 seeds) | base, raw text | mBERT |" in report
    assert "| en | 90.0 ± 0.0 | 90.0 | 90.0 | 80.0 ± 0.0 | 80.0 ± 0.0 |  |" in report
    assert "| zh | 60.0 ± 14.1 | 50.0 | 70.0 | 43.3 ± 11.5 | 20.0 ± 0.0 | 40.0 |" in report
    # per-seed target averages: shipped 60, 70; base 40, 50, 60; base raw 30 each; the reference's 55
    assert "| **average of 2 targets** | **65.00 ± 7.07** | **60.00** | **70.00** | **50.00 ± 10.00** | **30.00 ± 0.00** | **55.00** |" in report
    assert "Shipped: `metrics/combo/ner/mean_fusion_l10_s*` (seeds 0, 1); base: `metrics/words_input/ner/dlfa_l10_s*` (seeds 0, 1, 2)." in report


def test_the_shipped_recipe_is_compared_with_the_base_on_the_seeds_both_have(project):
    report = write_recipe_report(project / "reports" / "recipe_results.json", project / "out").read_text()
    assert "Seeds: shipped 0, 1 against base 0, 1." in report
    average = _row(report, "| **average of 2 targets** | 65.00 | 45.00 | +20.00 | [")
    low, high = map(float, re.findall(r"\[([-+][\d.]+), ([-+][\d.]+)\]", average)[0])
    assert 0 < low <= 20 <= high  # the shipped runs are right on every sentence the base gets right, and on two more
    assert _row(report, "| de | 70.00 | 50.00 | +20.00 |") and _row(report, "| zh | 60.00 | 40.00 | +20.00 |")
    assert "delta, raw text" not in report  # only the base has raw text: no raw-text delta


def test_steps_pair_seeds_where_they_can_and_report_english_dev(project):
    report = write_recipe_report(project / "reports" / "recipe_results.json", project / "out").read_text()
    step1 = _row(report, "| 1: each token its own word |")
    assert "| 0, 1 / 0, 1 | +15.00 | [" in step1 and step1.endswith("| +10.00 | 80.50 / n/a |")  # base seeds 0, 1: dev 80, 81
    averaged = _row(report, "| 4b: seeds averaged |")
    assert "| `metrics/averaged/ner/uniform` |" in averaged and "| uniform / 0, 1, 2 | +5.00 | [" in averaged and averaged.endswith("| n/a / 81.00 |")
    assert "Seeds: shipped 2 (0, 1), base 3 (0, 1, 2)." in report and "resample test sentences" in report


def test_goals_are_computed_with_their_verdicts(project):
    report = write_recipe_report(project / "reports" / "recipe_results.json", project / "out").read_text()
    assert "| goal | shipped (seeds 0, 1) | verdict | base (seeds 0, 1, 2) |" in report
    assert "| average of 2 targets (mean over seeds) ≥ 64 (mBERT) | 65.00 | met | 50.00 |" in report
    assert "| average of 2 targets, lowest seed ≥ 61 | 60.00 | not met | 40.00 |" in report
    assert "| score on zh (mean over seeds) ≥ 60 | 60.00 | met | 43.33 |" in report  # the bound itself is met
    assert "| std over seeds of the average of 2 targets ≤ 1.0 | 7.07 | not met | 10.00 |" in report
    # the shipped runs have no raw text; the base's largest gap is zh, 43.33 - 20
    assert "| largest gold-token minus raw-text gap over 2 targets (means over seeds) ≤ 2.0 | n/a (no raw-text scores) | not measured | 23.33 |" in report


def test_the_report_names_its_command_and_links_the_hand_written_notes(project):
    spec, out = project / "reports" / "recipe_results.json", project / "out"
    report = write_recipe_report(spec, out).read_text()
    assert f"*Generated by `python -m spacy_dlfa report recipe {spec} {out}`" in report.splitlines()[2]
    assert "recipe_notes.md" not in report
    (out / "recipe_notes.md").write_text("# notes\n")
    assert "[recipe_notes.md](recipe_notes.md)" in write_recipe_report(spec, out).read_text()
    assert (out / "recipe_notes.md").read_text() == "# notes\n"


@pytest.mark.parametrize("spec, key, message", [
    ({"ner": {}}, "root", "relative to the spec's folder"),
    ({"root": "/abs"}, "root", "relative to the spec's folder"),
    ({"root": ".", "nre": {}}, "nre", "unknown task"),
    ({"root": ".", "ner": {"targets": ["de"]}}, "ner", "missing shipped, base, steps, goals"),
    (_spec(targets="de zh"), "ner.targets", "expected a list of target languages"),
    (_spec(shipped="/work/metrics/combo/ner/x_s*"), "ner.shipped", "relative to the spec's root"),
    (_spec(base="../metrics/x"), "ner.base", "without '..'"),
    (_spec(steps=[{"label": "1", "runs": "metrics/a"}]), "ner.steps[0].against", "expected a glob or a list of globs"),
    (_spec(goals=[{"kind": "mean", "at_least": 1}]), "ner.goals[0].kind", "expected one of average, every_seed"),
    (_spec(goals=[{"kind": "average", "at_least": 1, "at_most": 2}]), "ner.goals[0]", "exactly one number"),
    (_spec(goals=[{"kind": "target", "lang": "ja", "at_least": 1}]), "ner.goals[0].lang", "expected one of the targets (de, zh)"),
    (_spec(reference={"label": "mBERT", "scores": {"de": "78"}}), "ner.reference", "expected"),
])
def test_a_bad_spec_names_the_file_and_the_key(tmp_path, spec, key, message):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(RecipeSpecError, match=re.escape(message)) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: {key}: ") and info.value.key == key


def test_a_spec_naming_missing_runs_or_languages_fails_naming_the_key(project):
    spec = project / "reports" / "recipe_results.json"
    spec.write_text(json.dumps({**_spec(base="metrics/words/ner/*"), "root": ".."}))
    with pytest.raises(RecipeSpecError, match=re.escape(f"{spec}: ner.base: no run folder matches 'metrics/words/ner/*'")):
        write_recipe_report(spec, project / "out")
    spec.write_text(json.dumps({**_spec(targets=["de", "zh", "fr"]), "root": ".."}))
    with pytest.raises(RecipeSpecError, match=re.escape(f"{spec}: ner.shipped: ") + ".*mean_fusion_l10_s0 has no scores for fr"):
        write_recipe_report(spec, project / "out")


def test_the_command_writes_the_report_and_refuses_bad_json_in_one_line(project):
    spec, out = project / "reports" / "recipe_results.json", project / "out"
    result = CliRunner().invoke(app, ["report", "recipe", str(spec), str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "| **average of 2 targets** | 65.00 | 45.00 | +20.00 |" in (out / "recipe_results.md").read_text()
    spec.write_text('{"root": ".",\n "ner": }')
    result = CliRunner().invoke(app, ["report", "recipe", str(spec), str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and f"{spec}: (file): not JSON (line 2" in " ".join(result.output.split()) and "Traceback" not in result.output


def test_raw_text_on_some_seeds_is_measured_on_those_seeds_and_says_which(project):
    # shipped seed 1 (de 70, zh 70) scored on raw text too: de 60, zh 70; seed 0 not
    _write_run(project / "metrics", "combo/ner/mean_fusion_l10_s1", {"en": 9, "de": 7, "zh": 7}, raw={"en": 9, "de": 6, "zh": 7}, dev=84.0)
    report = write_recipe_report(project / "reports" / "recipe_results.json", project / "out").read_text()
    assert "| shipped, raw text (seeds 1) | base, raw text |" in report
    assert _row(report, "| de |").split(" | ")[5] == "60.0"  # seed 1's raw score, not a mean with a missing seed
    # the gap pairs gold and raw text on seed 1 alone: de 70 - 60
    assert "| largest gold-token minus raw-text gap over 2 targets (means over seeds) ≤ 2.0 | 10.00 (seeds 1) | not met | 23.33 |" in report
