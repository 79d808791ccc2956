"""A run's two result files: what write_scores adds, the byte-for-byte determinism, and pack_metrics
folding the old per-set files (idempotent, merging into packed runs, refusing conflicting copies)."""
import gzip
import json

import pytest
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.runs.results import (
    SCORES,
    SENTENCES,
    has_counts,
    load_counts,
    load_metrics,
    load_raw_metrics,
    load_scores,
    pack_metrics,
    write_scores,
)

DE = {"ents_f": 0.5, "speed": 100.0}
DE_RAW = {"ents_f": 0.4, "ents_char_f": 0.45, "speed": 90.0}
COUNTS = {"ents": [[1, 0, 1], [0, 0, 0]], "tags": [[3, 4], [2.5, 3.0]]}


def _old_run(folder, names=("de", "de.raw", "en"), counts=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.json").write_text(json.dumps(DE_RAW if name.endswith(".raw") else DE, indent=2))
        if counts:
            (folder / f"{name}.sentences.json").write_text(json.dumps(COUNTS, indent=2))


def test_write_scores_adds_each_set_and_the_loaders_split_gold_and_raw(tmp_path):
    write_scores(tmp_path, "en", DE, COUNTS)
    write_scores(tmp_path, "de.raw", DE_RAW, COUNTS)
    write_scores(tmp_path, "de", {"ents_f": 0.1}, None)  # no counts: only the scores
    write_scores(tmp_path, "de", DE, COUNTS)  # replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == [SCORES, SENTENCES]
    assert load_metrics(tmp_path) == {"de": DE, "en": DE}
    assert load_raw_metrics(tmp_path) == {"de": DE_RAW}
    assert load_counts(tmp_path) == {"de": COUNTS, "de.raw": COUNTS, "en": COUNTS}
    assert has_counts(tmp_path, ["de", "de.raw"]) and not has_counts(tmp_path, ["de", "zh"])
    assert load_scores(tmp_path / "missing") == {} and load_counts(tmp_path / "missing") == {}
    # names sorted, no time in the gzip header: the order of evaluation does not change the bytes
    other = tmp_path / "other"
    for name, scores in (("de", DE), ("en", DE), ("de.raw", DE_RAW)):
        write_scores(other, name, scores, COUNTS)
    for name in (SCORES, SENTENCES):
        assert (other / name).read_bytes() == (tmp_path / name).read_bytes()
    assert gzip.decompress((tmp_path / SENTENCES).read_bytes()).startswith(b'{"de":{"ents":[[1,0,1]')


def test_pack_metrics_folds_old_runs_once_and_keeps_every_value(tmp_path):
    root = tmp_path / "metrics"
    _old_run(root / "ner" / "dlfa_l6_s0")
    _old_run(root / "ner" / "dlfa_l6_s0" / "attacks" / "char_noise_rate0.2_seed0", names=("de", "en"), counts=False)
    _old_run(root / "pos_dlfa", names=("de_gsd", "en_ewt"))
    (root / "ner" / "dlfa_l6_s0" / "run.meta.json").write_text('{"dev_score": 80.0}')
    (root / "ner" / "selection.json").write_text('{"chosen_layer": 6}')
    (root / "layer_alignment.json").write_text("{}")
    packed = pack_metrics(root)
    assert packed == [root / "ner" / "dlfa_l6_s0", root / "ner" / "dlfa_l6_s0" / "attacks" / "char_noise_rate0.2_seed0",
                      root / "pos_dlfa"]
    run = root / "ner" / "dlfa_l6_s0"
    assert sorted(p.name for p in run.iterdir()) == ["attacks", "run.meta.json", SCORES, SENTENCES]
    assert load_scores(run) == {"de": DE, "de.raw": DE_RAW, "en": DE} and load_counts(run)["de.raw"] == COUNTS
    assert sorted(p.name for p in packed[1].iterdir()) == [SCORES]
    assert sorted(load_metrics(root / "pos_dlfa")) == ["de_gsd", "en_ewt"]
    assert (root / "ner" / "selection.json").exists() and (root / "layer_alignment.json").exists()  # not results: untouched
    # the same bytes as write_scores gives, and a second pass changes nothing
    fresh = tmp_path / "fresh"
    for name in ("en", "de.raw", "de"):
        write_scores(fresh, name, DE_RAW if name.endswith(".raw") else DE, COUNTS)
    assert (fresh / SCORES).read_bytes() == (run / SCORES).read_bytes()
    assert (fresh / SENTENCES).read_bytes() == (run / SENTENCES).read_bytes()
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert pack_metrics(root) == []
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_run_that_finished_later_in_the_old_layout_is_merged(tmp_path):
    write_scores(tmp_path, "en", DE, COUNTS)
    _old_run(tmp_path, names=("de",))
    with pytest.raises(ValueError, match="pack-metrics"):  # the readers never silently skip old files
        load_metrics(tmp_path)
    assert pack_metrics(tmp_path) == [tmp_path]
    assert load_metrics(tmp_path) == {"de": DE, "en": DE} and sorted(load_counts(tmp_path)) == ["de", "en"]


def test_pack_metrics_refuses_two_different_copies_of_a_set(tmp_path):
    write_scores(tmp_path, "de", {"ents_f": 0.9}, COUNTS)
    _old_run(tmp_path, names=("de",))
    with pytest.raises(ValueError, match=r"de\.json: 'de' differs from the one already in .*scores\.json"):
        pack_metrics(tmp_path)
    assert (tmp_path / "de.json").exists()  # nothing deleted
    (tmp_path / "de.json").write_text('{"ents_f": 0.5,\n')
    with pytest.raises(ValueError, match=r"de\.json: line 2: not valid JSON"):
        pack_metrics(tmp_path)


def test_cli_pack_metrics(tmp_path):
    _old_run(tmp_path / "ner_dlfa")
    runner = CliRunner()
    result = runner.invoke(app, ["report", "pack-metrics", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "packed 1 run folder(s)" in result.output and sorted(load_scores(tmp_path / "ner_dlfa")) == ["de", "de.raw", "en"]
    assert "packed 0 run folder(s)" in runner.invoke(app, ["report", "pack-metrics", str(tmp_path)]).output
