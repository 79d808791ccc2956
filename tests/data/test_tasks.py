"""Task data preparation from a mirror folder and from (mocked) Hugging Face rows."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_dlfa import tasks
from spacy_dlfa.tasks import prepare_task

WIKIANN = "Angela\tB-PER\nMerkel\tI-PER\nin\tO\nBerlin\tB-LOC\n\nParis\tB-LOC\n\n"


def _fake_mirror(root: Path) -> Path:
    for lang, splits in {"en": ("train", "dev", "test"), "de": ("test",), "zh": ("test",)}.items():
        (root / "wikiann" / lang).mkdir(parents=True)
        for split in splits:
            (root / "wikiann" / lang / f"{split}-{lang}.tsv").write_text(WIKIANN, encoding="utf8")
    return root


def _docs(path: Path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab))


def test_prepare_ner_from_a_mirror(tmp_path):
    mirror = _fake_mirror(tmp_path / "mirror")
    written = prepare_task("ner", tmp_path / "corpus", ["de", "zh"], mirror, eval_limit=1)
    names = sorted(Path(w["output"]).name for w in written)
    assert names == ["dev.spacy", "test-de.spacy", "test-en.spacy", "test-zh.spacy", "train.spacy"]
    train = _docs(tmp_path / "corpus" / "train.spacy")
    assert [[(e.text, e.label_) for e in doc.ents] for doc in train] == [[("Angela Merkel", "PER"), ("Berlin", "LOC")], [("Paris", "LOC")]]
    assert len(_docs(tmp_path / "corpus" / "test-de.spacy")) == 1  # eval_limit


def test_missing_mirror_file_names_the_file(tmp_path):
    mirror = _fake_mirror(tmp_path / "mirror")
    with pytest.raises(FileNotFoundError, match=r"wikiann/fr/test-fr\.tsv is missing"):
        prepare_task("ner", tmp_path / "corpus", ["fr"], mirror)


def test_prepare_ner_from_hub_rows(tmp_path, monkeypatch):
    requested = []

    def fake_load(name, config, split):
        requested.append((name, config, split))
        return [{"tokens": ["Angela", "Merkel"], "ner_tags": [1, 2]}, {"tokens": ["Paris"], "ner_tags": [5]}]

    monkeypatch.setattr(tasks, "load_hf_dataset", fake_load)
    prepare_task("ner", tmp_path / "corpus", ["de"], tmp_path / "no-mirror", source="hub")
    assert requested == [("unimelb-nlp/wikiann", "en", "train"), ("unimelb-nlp/wikiann", "en", "validation"),
                         ("unimelb-nlp/wikiann", "en", "test"), ("unimelb-nlp/wikiann", "de", "test")]
    assert [e.label_ for e in _docs(tmp_path / "corpus" / "test-de.spacy")[0].ents] == ["PER"]


def test_unknown_task_and_hub_ud_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'dep'"):
        prepare_task("dep", tmp_path, [], tmp_path)
    with pytest.raises(ValueError, match="UD has no hub source"):
        prepare_task("pos", tmp_path, [], tmp_path, source="hub")


def test_prepare_pos_on_the_real_mirror(shared_data, tmp_path):
    written = prepare_task("pos", tmp_path, ["ja_gsd", "ar_pud"], shared_data, train_limit=50, dev_limit=20, eval_limit=30)
    counts = {Path(w["output"]).stem: w["sentences"] for w in written}
    assert counts == {"train": 50, "dev": 20, "test-en_ewt": 30, "test-ja_gsd": 30, "test-ar_pud": 30}
    assert all(token.tag_ for doc in _docs(tmp_path / "test-ja_gsd.spacy") for token in doc)


KIND_FIELDS = ("component", "factories", "score_key", "raw_score_key", "count_key", "measure", "objective", "example_score")


def test_task_specs_agree_within_a_kind_and_name_known_keys():
    from spacy_dlfa.statistics import score
    from spacy_dlfa.tasks import KINDS, TASKS, kind_spec, task_spec

    assert KINDS == ("ner", "pos", "pairs")
    for spec in TASKS.values():
        assert {field: getattr(spec, field) for field in KIND_FIELDS} == {field: getattr(kind_spec(spec.kind), field) for field in KIND_FIELDS}
        assert spec.component in spec.factories and spec.score_key.startswith(("ents_", "tag_", "cats_"))
        assert (spec.chance is not None) == spec.is_pair == (spec.raw_score_key is None)
        assert float(score(spec.measure, __import__("numpy").asarray([[1, 1, 1]] if spec.measure == "f1" else [[1, 2]], dtype="f8"))) == 50.0
    assert (TASKS["xnli"].chance, TASKS["pawsx"].chance) == (pytest.approx(100 / 3), 50.0)
    assert [TASKS[name].count_key for name in ("ner", "pos", "xnli", "pawsx")] == ["ents", "tags", "cats", "cats"]
    with pytest.raises(ValueError, match="unknown task 'dep'"):
        task_spec("dep")
    with pytest.raises(ValueError, match="unknown task kind 'xnli'"):
        kind_spec("xnli")
    with pytest.raises(ValueError, match="unknown measure 'ner'"):
        score("ner", __import__("numpy").zeros((1, 3)))


def test_evaluate_and_package_keys_hold_every_task_score():
    from spacy_dlfa.runs.evaluation import EVALUATE_KEYS
    from spacy_dlfa.runs.packaging import PACKAGE_KEYS
    from spacy_dlfa.tasks import TASKS

    assert {spec.score_key for spec in TASKS.values()} <= set(EVALUATE_KEYS)
    assert PACKAGE_KEYS == ("ents_f", "ents_p", "ents_r", "tag_acc", "pos_acc", "cats_macro_f")
