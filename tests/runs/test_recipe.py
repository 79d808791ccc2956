"""The shipped recipe: reports/recipe.json read with clear errors, and the config built as the grid builds its runs."""
import json

import pytest
from conftest import REPO
from spacy.util import load_config
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.runs.experiments import GridSettings, Run, run_config
from spacy_dlfa.runs.recipe import RecipeError, load_recipe, recipe_config

AVERAGING = {"@optimizers": "spacy-dlfa.UniformAveragingAdam.v1", "use_averages": True, "average_start": 750,
             "learn_rate": {"@schedules": "warmup_linear.v1", "warmup_steps": 200, "total_steps": 1500, "initial_rate": 0.00005}}
RECIPES = {
    "ner": {"variant": "aif_last", "layer": None, "chosen_by": "rule", "config": "c",
            "overrides": {"components.transformer.model.freeze_layers": 3, "training.optimizer": AVERAGING}},
    "pos": {"variant": "dlfa", "layer": 10, "chosen_by": "rule", "config": "c", "overrides": {}},
}


def _write(tmp_path, recipes=RECIPES):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipes))
    return path


def test_the_recipe_config_is_the_grid_run_config_of_the_chosen_variant_and_overrides(tmp_path):
    recipe = load_recipe(_write(tmp_path), "ner")
    config = recipe_config(recipe, REPO / "configs", tmp_path / "corpus", "assets/e5-small", 384, max_steps=1500, batch_size=256)
    settings = GridSettings("assets/e5-small", 384, tmp_path / "corpus", tmp_path, tmp_path, REPO / "configs", 1500, 256, [],
                            overrides=RECIPES["ner"]["overrides"])
    assert config == run_config(Run("ner", "aif_last", 0), settings)
    assert config["components"]["ner"]["model"]["tok2vec"]["fusion_layer"] == -1  # aif_last: the last layer alone
    assert config["components"]["transformer"]["model"]["freeze_layers"] == 3
    assert config["training"]["optimizer"]["@optimizers"] == "spacy-dlfa.UniformAveragingAdam.v1"
    assert config["paths"]["train"] == str(tmp_path / "corpus" / "train.spacy")
    pos = recipe_config(load_recipe(_write(tmp_path), "pos"), REPO / "configs", tmp_path, "assets/e5-small", 384)
    assert pos["components"]["tagger"]["model"]["tok2vec"]["fusion_layer"] == 10
    assert pos["training"]["optimizer"]["@optimizers"] == "Adam.v1"


@pytest.mark.parametrize("recipes,task,error", [
    (RECIPES, "xnli", "no recipe for xnli (it has ner, pos)"),
    ({"ner": {"variant": "aif_last", "layer": None}}, "ner", "ner: missing overrides, chosen_by"),
    ({"ner": {**RECIPES["ner"], "variant": "aif"}}, "ner", "unknown variant 'aif'"),
    ({"ner": {**RECIPES["ner"], "variant": "dlfa"}}, "ner", "variant dlfa needs layer a whole number, got None"),
    ({"ner": {**RECIPES["ner"], "layer": 10}}, "ner", "variant aif_last needs layer null, got 10"),
    ({"ner": {**RECIPES["ner"], "overrides": ["x"]}}, "ner", "overrides must be an object"),
])
def test_a_bad_recipe_is_refused_naming_the_file_and_the_task(tmp_path, recipes, task, error):
    path = _write(tmp_path, recipes)
    with pytest.raises(RecipeError, match=error.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_recipe(path, task)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_recipe_file_that_is_not_json_names_the_line(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text('{\n  "ner": {,\n}')
    with pytest.raises(RecipeError, match="not JSON \\(line 2"):
        load_recipe(path, "ner")


def test_an_override_of_a_setting_the_config_lacks_is_refused(tmp_path):
    recipes = {"ner": {**RECIPES["ner"], "overrides": {"components.transformer.model.freez_layers": 3}}}
    with pytest.raises(KeyError, match="has no setting components.transformer.model.freez_layers"):
        recipe_config(load_recipe(_write(tmp_path, recipes), "ner"), REPO / "configs", tmp_path, "m", 384)


def test_the_recipe_command_writes_a_config_spacy_loads(tmp_path):
    out = tmp_path / "training" / "ner.cfg"
    result = CliRunner().invoke(app, ["run", "recipe", "ner", str(out), "--recipe", str(_write(tmp_path)), "--corpus-dir", "corpus/ner",
                                      "--max-steps", "1500", "--seed", "2"])
    assert result.exit_code == 0, result.output
    config = load_config(out)
    assert (config["system"]["seed"], config["training"]["max_steps"], config["training"]["optimizer"]["average_start"]) == (2, 1500, 750)
    bad = CliRunner().invoke(app, ["run", "recipe", "xnli", str(out), "--recipe", str(_write(tmp_path)), "--corpus-dir", "c"])
    assert bad.exit_code == 1 and "no recipe for xnli" in " ".join(bad.output.split())  # wasabi wraps long lines


def test_the_recipe_schedule_follows_another_run_length(tmp_path):
    recipe = load_recipe(_write(tmp_path), "ner")  # its optimizer: warmup_linear over 1,500 steps, averaging from 750

    def build(max_steps):
        config = recipe_config(recipe, REPO / "configs", tmp_path, "assets/e5-small", 384, max_steps=max_steps, batch_size=256)
        return config["training"]["optimizer"], config["training"]["max_steps"]

    optimizer, _ = build(1500)
    assert (optimizer["learn_rate"]["total_steps"], optimizer["average_start"]) == (1500, 750)  # as the candidate ran
    optimizer, steps = build(3000)
    assert (optimizer["learn_rate"]["total_steps"], optimizer["average_start"], steps) == ("${training.max_steps}", 1500, 3000)
