"""The recipe rule as code: each rule's threshold, rule 4 between alternatives, rule 3's combinations, and the
committed reports/recipe.json regenerated from the committed metrics."""
import json
import re

import pytest
from conftest import REPO
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.runs.recipe import RecipeError, load_recipe
from spacy_dlfa.runs.recipe_rule import Candidate, choose_recipe, judge

BASE = [80.0, 81.0, 82.0]  # m 81, s 1
SINGLES = [Candidate("avg", "r/avg", cheaper=True), Candidate("slow", "r/slow"), Candidate("last", "r/last", cheaper=True, kind="fusion"),
           Candidate("mean", "r/mean", kind="fusion")]


def _verdicts(dev, candidates):
    verdicts, chosen = judge(BASE, dev, candidates)
    return {v.name: v for v in verdicts}, chosen


def test_cheaper_changes_need_m_minus_s_and_others_m_plus_s_inclusive():
    verdicts, chosen = _verdicts({"avg": 80.0, "slow": 81.9, "last": 79.9, "mean": 82.0}, SINGLES)
    assert verdicts["avg"].needs == pytest.approx(80.0) and verdicts["avg"].passed
    assert verdicts["slow"].needs == pytest.approx(82.0) and not verdicts["slow"].passed
    assert not verdicts["last"].passed and verdicts["mean"].passed
    assert chosen == "mean"  # no combination ran: the kept single change with the highest dev score


def test_rule_4_keeps_the_better_alternative_and_a_combination_needs_every_part_kept():
    combos = [Candidate("last+avg", "r/la", parts=("last", "avg")), Candidate("mean+avg", "r/ma", parts=("mean", "avg"))]
    dev = {"avg": 81.0, "slow": 70.0, "last": 81.5, "mean": 82.5, "last+avg": 90.0, "mean+avg": 82.0}
    verdicts, chosen = _verdicts(dev, SINGLES + combos)
    assert verdicts["last"].passed and not verdicts["last"].kept and "mean (82.50) is kept" in verdicts["last"].note
    assert verdicts["last+avg"].passed and not verdicts["last+avg"].kept  # its best dev score does not make it eligible
    assert verdicts["mean+avg"].needs == pytest.approx(82.0)  # holds a rule-2 change
    assert chosen == "mean+avg"
    dev["mean+avg"] = 81.99
    assert _verdicts(dev, SINGLES + combos)[1] == "mean"  # the combination fails: the best kept single change


def test_a_combination_of_cheaper_changes_needs_m_minus_s_and_more_parts_win():
    combos = [Candidate("last+avg", "r/la", parts=("last", "avg")), Candidate("all", "r/all", parts=("last", "avg", "slow"))]
    dev = {"avg": 81.0, "slow": 82.0, "last": 81.5, "mean": 70.0, "last+avg": 80.0, "all": 82.0}
    verdicts, chosen = _verdicts(dev, SINGLES + combos)
    assert verdicts["last+avg"].needs == pytest.approx(80.0) and verdicts["last+avg"].kept
    assert chosen == "all"


def test_nothing_passes_keeps_the_base():
    assert _verdicts({"avg": 70.0, "slow": 70.0, "last": 70.0, "mean": 70.0}, SINGLES)[1] is None


def _run(root, name, dev, overrides):
    folder = root / "metrics" / name
    folder.mkdir(parents=True)
    (folder / "run.meta.json").write_text(json.dumps({"dev_score": dev, "overrides": overrides}))
    return f"metrics/{name}"


def _rule(tmp_path, ner):
    path = tmp_path / "rule.json"
    path.write_text(json.dumps({"ner": ner}))
    return path


def test_the_recipe_is_the_chosen_runs_variant_layer_and_overrides_and_the_cli_writes_what_run_recipe_reads(tmp_path):
    base = [_run(tmp_path, f"base/dlfa_l10_s{seed}", dev, {}) for seed, dev in enumerate(BASE)]
    freeze = {"components.transformer.model.freeze_layers": 3}
    candidates = [{"name": "freeze3", "run": _run(tmp_path, "freeze/dlfa_l10_s0", 81.0, freeze), "cheaper": True},
                  {"name": "mean", "run": _run(tmp_path, "mean/mean_fusion_l8_s0", 82.0, {}), "kind": "fusion"},
                  {"name": "mean+freeze3", "run": _run(tmp_path, "combo/mean_fusion_l8_s0", 82.1, freeze), "parts": ["mean", "freeze3"]}]
    rule = _rule(tmp_path, {"base": base, "candidates": candidates})
    recipe = choose_recipe(rule, "ner", tmp_path)
    assert (recipe["variant"], recipe["layer"], recipe["overrides"]) == ("mean_fusion", 8, freeze)
    assert recipe["run"] == "metrics/combo/mean_fusion_l8_s0"
    assert recipe["english_dev"] == {"base": BASE, "freeze3": 81.0, "mean": 82.0, "mean+freeze3": 82.1}
    assert "chosen: mean+freeze3" in recipe["chosen_by"]
    output = tmp_path / "recipe.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = CliRunner().invoke(app, ["run", "choose-recipe", str(rule), str(output)])
    assert result.exit_code == 0, result.output
    assert load_recipe(output, "ner").overrides == freeze


@pytest.mark.parametrize("ner, expected", [
    ({"base": [], "candidates": [{"name": "a", "run": "x"}]}, "ner.base: expected a non-empty list"),
    ({"base": ["b"], "candidates": [{"run": "x"}]}, "ner.candidates[0]: expected an object with name and run"),
    ({"base": ["b"], "candidates": [{"name": "a", "run": "x", "cheap": True}]}, "ner.candidates[0]: unknown keys cheap"),
    ({"base": ["b"], "candidates": [{"name": "a", "run": "x"}, {"name": "a", "run": "y"}]}, "names repeat (a)"),
])
def test_a_bad_rule_file_names_the_file_and_the_key(tmp_path, ner, expected):
    rule = _rule(tmp_path, ner)
    with pytest.raises(RecipeError, match=re.escape(expected)) as err:
        choose_recipe(rule, "ner", tmp_path)
    assert str(rule) in str(err.value)


def test_a_missing_run_names_its_folder(tmp_path):
    rule = _rule(tmp_path, {"base": ["metrics/none_s0"], "candidates": [{"name": "a", "run": "metrics/none_s1"}]})
    with pytest.raises(FileNotFoundError, match="none_s0"):
        choose_recipe(rule, "ner", tmp_path)


@pytest.mark.parametrize("task", ["ner", "pos"])
def test_the_committed_recipe_is_what_the_rule_chooses_from_the_committed_metrics(task):
    committed = json.loads((REPO / "reports" / "recipe.json").read_text())[task]
    assert choose_recipe(REPO / "reports" / "recipe_rule.json", task, REPO) == committed
