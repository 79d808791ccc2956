"""The project's smoke workflow end to end, and a packaged pipeline loaded in a fresh process."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from conftest import REPO

from spacy_dlfa.runs.results import load_counts, load_scores


def _run(command, cwd: Path, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory, request) -> Path:
    if not (REPO.parent / "shared" / "data").exists():
        pytest.skip("the smoke workflow reads a few sentences from the data mirror ../shared/data, which is absent")
    project = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "project.yml", project)
    shutil.copytree(REPO / "configs", project / "configs")
    _run([sys.executable, "-m", "spacy", "project", "run", "smoke", ".", "--vars.data_mirror", str(REPO.parent / "shared" / "data")], project)
    return project


def test_smoke_workflow_writes_metrics_and_report(smoke_project):
    metrics = smoke_project / "training" / "smoke" / "metrics" / "ner_dlfa"
    names = ["ar", "ar.raw", "de", "de.raw", "en", "en.raw", "zh", "zh.raw"]
    assert sorted(load_scores(metrics)) == sorted(load_counts(metrics)) == names
    assert "ents_f" in load_scores(metrics)["de"]
    report = (smoke_project / "training" / "smoke" / "reports" / "zero_shot.md").read_text()
    assert "average of 3 targets" in report and "| zh |" in report
    assert (smoke_project / "training" / "smoke" / "reports" / "ner_zero_shot.png").stat().st_size > 1000


def test_evaluation_matches_spacy_evaluate_and_per_sentence_counts(smoke_project, tmp_path):
    metrics = smoke_project / "training" / "smoke" / "metrics" / "ner_dlfa"
    model = smoke_project / "training" / "smoke" / "ner_dlfa" / "model-last"
    corpus = smoke_project / "training" / "smoke" / "corpus" / "test-de.spacy"
    _run([sys.executable, "-m", "spacy", "evaluate", str(model), str(corpus), "--gold-preproc", "--output", str(tmp_path / "de.json")], tmp_path)
    ours, theirs = load_scores(metrics)["de"], json.loads((tmp_path / "de.json").read_text())
    ours.pop("speed"), theirs.pop("speed")
    assert ours == theirs
    counts = load_counts(metrics)["de"]
    tp, fp, fn = (sum(row[i] for row in counts["ents"]) for i in range(3))
    assert len(counts["ents"]) == 10
    assert abs(2 * tp / max(1, 2 * tp + fp + fn) - ours["ents_f"]) < 1e-9


def test_raw_text_evaluation_matches_spacy_evaluate_without_gold_preproc(smoke_project, tmp_path):
    metrics = smoke_project / "training" / "smoke" / "metrics" / "ner_dlfa"
    model = smoke_project / "training" / "smoke" / "ner_dlfa" / "model-last"
    corpus = smoke_project / "training" / "smoke" / "corpus" / "test-zh.spacy"
    _run([sys.executable, "-m", "spacy", "evaluate", str(model), str(corpus), "--output", str(tmp_path / "zh.json")], tmp_path)
    ours, theirs = load_scores(metrics)["zh.raw"], json.loads((tmp_path / "zh.json").read_text())
    ours.pop("speed"), theirs.pop("speed")
    assert {key: value for key, value in ours.items() if not key.startswith("ents_char_")} == theirs
    counts = load_counts(metrics)["zh.raw"]
    tp, fp, fn = (sum(row[i] for row in counts["ents"]) for i in range(3))
    assert ours["ents_char_f"] == (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None)


def test_smoke_rerun_skips_finished_steps(smoke_project):
    result = _run([sys.executable, "-m", "spacy", "project", "run", "smoke", ".", "--vars.data_mirror", str(REPO.parent / "shared" / "data")], smoke_project)
    assert result.stdout.count("Skipping") >= 4, result.stdout


TEXTS = ["Angela Merkel besuchte Peking .", "北京是中国的首都。", "ذهب محمد إلى القاهرة ."]
# per text: IOB tags, entities, and a checksum of the transformer output
PREDICTIONS = (
    "def predictions(nlp, texts):\n"
    "    return [([t.ent_iob_ + t.ent_type_ for t in d], [[e.text, e.label_] for e in d.ents],\n"
    "             float(abs(d._.trf_data.model_output.last_hidden_state).sum())) for d in nlp.pipe(texts)]\n"
)


def test_packaged_pipeline_loads_in_a_fresh_process(smoke_project, tmp_path):
    model = smoke_project / "training" / "smoke" / "ner_dlfa" / "model-last"
    meta = tmp_path / "meta.json"
    _run([sys.executable, "-m", "spacy_dlfa", "report", "meta", str(model), str(smoke_project / "training" / "smoke" / "metrics" / "ner_dlfa"), str(meta), "--name", "smoke_ner"], tmp_path)
    # as package-ner does: the activation ranges for quantize = "int8-smooth" go into the packaged folder
    calibrated = tmp_path / "model-package"
    _run([sys.executable, "-m", "spacy_dlfa", "calibrate", str(model), str(smoke_project / "training" / "smoke" / "corpus" / "train.spacy"),
          "--output", str(calibrated)], tmp_path)
    (tmp_path / "packages").mkdir()
    _run([sys.executable, "-m", "spacy", "package", str(calibrated), str(tmp_path / "packages"), "--meta-path", str(meta), "--build", "wheel"], tmp_path)
    wheel = next((tmp_path / "packages").glob("xx_smoke_ner-*/dist/*.whl"))
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], tmp_path)
    script = (
        "import json, sys, spacy\n"
        "nlp = spacy.load('xx_smoke_ner')\n"
        "assert 'spacy_dlfa' in sys.modules  # loaded through the entry points, not by hand\n"
        f"texts = {TEXTS!r}\n"
        f"{PREDICTIONS}\n"
        "smooth = spacy.load('xx_smoke_ner', config={'components': {'transformer': {'model': {'quantize': 'int8-smooth'}}}})\n"
        "smoothed = sum(type(m).__name__ == 'SmoothedInt8Linear' for m in smooth.get_pipe('transformer').model.transformer.modules())\n"
        "print(json.dumps({'tokens': [len(nlp(t)) for t in texts], 'meta': nlp.meta, 'predictions': predictions(nlp, texts),\n"
        "                  'smoothed': smoothed, 'smooth_tokens': [len(d) for d in smooth.pipe(texts)]}))\n"
    )
    result = _run([sys.executable, "-c", script], tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(tmp_path / "site")})
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(n > 0 for n in output["tokens"])
    # the wheel loads in int8-smooth: every layer's feed-forward output smoothed by the ranges it carries
    assert output["smoothed"] == spacy.load(model).get_pipe("transformer").model.transformer.config.num_hidden_layers
    assert output["smooth_tokens"] == output["tokens"]
    namespace: dict = {}
    exec(PREDICTIONS, namespace)
    expected = json.loads(json.dumps(namespace["predictions"](spacy.load(model), TEXTS)))
    assert [p[:2] for p in output["predictions"]] == [p[:2] for p in expected]
    assert [p[2] for p in output["predictions"]] == pytest.approx([p[2] for p in expected], rel=1e-5)
    assert set(output["meta"]["zero_shot"]) == {"ar", "de", "en", "zh"}
    assert any(req.startswith("spacy-dlfa") for req in output["meta"]["requirements"])
