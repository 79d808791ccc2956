"""analyse compare: per-language scores from the per-sentence counts, '–' where a run lacks a set, and the change
of the target average with its paired-bootstrap interval (exact values)."""
from spacy_dlfa.analysis.compare import compare_runs
from spacy_dlfa.runs.results import SENTENCES, counts_bytes


def write_run(folder, counts, raw=None):
    folder.mkdir(parents=True)
    rows = {**{lang: {"ents": rows} for lang, rows in counts.items()}, **{f"{lang}.raw": {"ents": rows} for lang, rows in (raw or {}).items()}}
    (folder / SENTENCES).write_bytes(counts_bytes(rows))


def test_two_runs_side_by_side(tmp_path):
    write_run(tmp_path / "a", {"en": [[1, 0, 0]], "de": [[1, 0, 1], [1, 0, 1]], "zh": [[0, 1, 1]]})
    write_run(tmp_path / "b", {"en": [[1, 0, 0]], "de": [[1, 0, 0], [1, 0, 0]], "zh": [[1, 0, 0]]},
              raw={"de": [[1, 1, 0], [1, 1, 0]]})
    lines = compare_runs("ner", tmp_path / "a", tmp_path / "b", ["en", "de", "zh"], ["de", "zh"])
    assert lines[2] == "| en | 100.0 | 100.0 | +0.0 | – | – | – |"
    assert lines[3] == "| de | 66.7 | 100.0 | +33.3 | – | – | – |"  # F1 = 2tp / (2tp + fp + fn)
    assert lines[4] == "| zh | 0.0 | 100.0 | +100.0 | – | – | – |"
    # (33.33 + 100) / 2; every resample of de keeps 2 tp and 2 fn before, 2 tp after
    assert "after 100.00, change +66.67 [+66.67, +66.67]" in lines[5]
    assert lines[6] == "\nraw text: 0 of 2 targets scored in both runs, no average"
