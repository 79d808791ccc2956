"""Attacks keep gold labels aligned and tokens valid (hypothesis), never touch pair separators,
are seeded, respect the edit budget; the greedy search never beats the clean score (hash-based stub
models and the tiny trained pipelines); the attack command end to end on tiny DocBins."""
import json
import random
import zlib
from pathlib import Path
from typing import Iterable, List

import numpy
import pytest
import spacy
import srsly
from conftest import SENTENCES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipelines import gold_docs
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.corpora.common import CorpusFormatError
from spacy_dlfa.pairs import split_pair
from spacy_dlfa.robustness import (
    ATTACKS,
    QWERTY_NEIGHBOURS,
    adversarial_search,
    char_noise,
    insert_char,
    load_lexicon,
    make_attack,
    mention_pool,
    objective_scores,
    perturb_doc,
    perturb_docs,
    separator_span,
    strip_diacritics,
    substitute_char,
    titlecase,
    valid_word,
)
from spacy_dlfa.runs.results import load_counts, load_scores
from spacy_dlfa.statistics import score
from spacy_dlfa.tasks import TASKS

VOCAB = spacy.blank("xx").vocab
SEP = ["[SEP]"]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN_ATTACKS = [name for name in ATTACKS if name != "entity_swap"]
LEXICON = {"in": "en", "the": ["der", "la"], "is": "ist", "de": "of", "la": "the", "paris": "parigi", "naïve": "naiv",
           "visited": "besuchte", "met": "traf", "sep": "[SEP]"}  # "sep": only where [SEP] is not a separator
SAMPLE_WORDS = ["Paris", "São", "naïve", "in", "The", "IS", "sep", "Москва", "北京", "القاهرة", ".", "ß", "İstanbul", "ll", "7"]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
TAGS = ["NOUN", "VERB", "PROPN", "PUNCT"]


def ner_doc(words: List[str], iob: List[str], spaces=None, **annotation) -> Doc:
    return Doc(VOCAB, words=words, spaces=spaces, ents=iob, **annotation)


POOL = [
    ner_doc("Ho Chi Minh City is far".split(), ["B-LOC", "I-LOC", "I-LOC", "I-LOC", "O", "O"]),
    ner_doc("Putin met Angela Merkel and 北京 .".split(), ["B-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"],
            spaces=[True, True, True, True, True, False, False]),
    ner_doc(["United", "Nations"], ["B-ORG", "I-ORG"]),
]


# --------------------------------------------------------------------------- #
# Strategies and checks

words = st.one_of(
    st.sampled_from(SAMPLE_WORDS),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=6),
).filter(lambda w: not any(c.isspace() for c in w) and "[SEP]" not in w)


def valid_iob(labels: List[str]) -> List[str]:
    """An I-X not after B-X/I-X becomes B-X."""
    fixed: List[str] = []
    for label in labels:
        if label.startswith("I-") and (not fixed or fixed[-1][2:] != label[2:]):
            label = "B-" + label[2:]
        fixed.append(label)
    return fixed


@st.composite
def annotated_docs(draw, min_size: int = 0, max_size: int = 8) -> Doc:
    ws = draw(st.lists(words, min_size=min_size, max_size=max_size))
    n = len(ws)
    labels, tags = (draw(st.lists(st.sampled_from(options), min_size=n, max_size=n)) for options in (LABELS, TAGS))
    doc = ner_doc(ws, valid_iob(labels), spaces=draw(st.lists(st.booleans(), min_size=n, max_size=n)), tags=tags,
                  pos=tags, sent_starts=[True] + [False] * (n - 1) if n else None)
    if draw(st.booleans()):
        doc.cats = {"yes": 1.0, "no": 0.0}
    return doc


@st.composite
def pair_docs(draw) -> Doc:
    a, b = draw(st.lists(words, min_size=1, max_size=5)), draw(st.lists(words, min_size=1, max_size=5))
    doc = Doc(VOCAB, words=a + SEP + b, spaces=[True] * (len(a) - 1) + [False, True] + [True] * (len(b) - 1) + [False])
    doc.cats = {"entailment": 0.0, "neutral": 1.0, "contradiction": 0.0}
    return doc


def assert_valid_text(doc: Doc) -> None:
    assert all(t.text and not any(c.isspace() for c in t.text) for t in doc)
    assert doc.text == "".join(t.text + t.whitespace_ for t in doc)


def labels_by_index(doc: Doc) -> list:
    return [(t.tag_, t.pos_, t.ent_iob_, t.ent_type_, t.is_sent_start, t.whitespace_) for t in doc]


def assert_aligned(clean: Doc, new: Doc) -> None:
    assert len(new) == len(clean)
    assert labels_by_index(new) == labels_by_index(clean)
    assert [(e.start, e.end, e.label_) for e in new.ents] == [(e.start, e.end, e.label_) for e in clean.ents]
    assert new.cats == clean.cats and new.has_unknown_spaces == clean.has_unknown_spaces
    assert_valid_text(new)


def changed_tokens(clean: Doc, new: Doc) -> List[int]:
    return [i for i in range(len(clean)) if clean[i].text != new[i].text]


def attack(name: str, separator=None):
    return make_attack(name, separator=separator, pool=POOL, lexicon=LEXICON)


def sentence_doc() -> Doc:
    """All test sentences in one doc, capitalised words tagged as locations."""
    ws = " ".join(SENTENCES).split()
    return ner_doc(ws, ["B-LOC" if w[:1].isupper() else "O" for w in ws], tags=["X"] * len(ws))


# --------------------------------------------------------------------------- #
# Word edits and lexicons


def test_word_edits_on_latin_and_other_scripts():
    assert set(QWERTY_NEIGHBOURS["s"]) == set("adwezx") and set(QWERTY_NEIGHBOURS["g"]) == set("fhtyvb")
    assert [strip_diacritics(w) for w in ("São", "İstanbul", "naïve", "Москва")] == ["Sao", "Istanbul", "naive", None]
    assert titlecase("türkiye'nin") == "Türkiye'nin" and titlecase("Paris") is None
    rng = random.Random(0)
    assert substitute_char("北", rng) is None and insert_char("北", rng) == "北北"  # no other CJK letter in the word
    assert all(set(substitute_char("аб", rng)) <= set("аб") for _ in range(10))  # same script, from the word
    assert all(substitute_char("E", rng) in "WRSDF" for _ in range(10))  # a keyboard neighbour, case kept
    assert char_noise("...", rng) is None and char_noise("7", rng) is None
    assert [valid_word(w, "Paris", SEP) for w in ("Pariss", "Par is", "Par\u2009is", "", "Paris", "a[SEP]")] == [True] + [False] * 5
    assert mention_pool([ner_doc(["[SEP]", "City"], ["B-LOC", "I-LOC"])], SEP) == {}


def test_lexicon_file_and_its_errors(tmp_path):
    good = tmp_path / "lexicon.tsv"
    good.write_text("monday\tlundi\nmonday\tMontag\n\nin\ten\n", encoding="utf8")
    assert load_lexicon(good) == {"monday": ("lundi", "Montag"), "in": ("en",)}
    bad = tmp_path / "bad.tsv"
    bad.write_text("ok\tfine\nNew York\tNueva York\n", encoding="utf8")
    with pytest.raises(CorpusFormatError, match=f"{bad}, line 2: expected 'source<TAB>target'"):
        load_lexicon(bad)
    with pytest.raises(ValueError, match="single-word translations"):
        load_lexicon({"york": "nueva york"})
    doc = ner_doc("Monday in Monday .".split(), ["O", "O", "B-LOC", "O"])
    switched = perturb_doc(doc, make_attack("code_switch", lexicon=good), 1.0, seed=0)
    assert switched[0].text in ("Lundi", "Montag") and switched[1].text == "en" and switched[2].text == "Monday"


# --------------------------------------------------------------------------- #
# Labels stay aligned, text stays valid


@PROPERTY
@given(doc=annotated_docs(), name=st.sampled_from(TOKEN_ATTACKS), rate=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_token_attacks_keep_labels_aligned_and_tokens_valid(doc, name, rate, seed):
    new = perturb_doc(doc, attack(name), rate, seed)
    assert_aligned(doc, new)
    changed = changed_tokens(doc, new)
    assert not changed or rate > 0
    if name == "code_switch":
        assert all(doc[i].ent_iob_ == "O" for i in changed)


@PROPERTY
@given(doc=pair_docs(), name=st.sampled_from(TOKEN_ATTACKS), seed=st.integers(0, 2**32))
def test_pair_attacks_never_touch_the_separator(doc, name, seed):
    new = perturb_doc(doc, attack(name, SEP), 1.0, seed)
    assert_aligned(doc, new)
    span = separator_span(doc, SEP)
    assert [new[i].text for i in span] == SEP and not any("[SEP]" in new[i].text for i in range(len(new)) if i not in span)
    assert split_pair(new, SEP) == (new[: span.start].text, new[span.stop :].text)


@PROPERTY
@given(doc=annotated_docs(), rate=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_entity_swap_recomputes_entities_on_the_new_tokens(doc, rate, seed):
    new = perturb_doc(doc, attack("entity_swap"), rate, seed)
    assert_valid_text(new)
    assert new.cats == doc.cats
    outside = lambda d: [(t.text, t.whitespace_, t.ent_iob_, t.tag_, t.is_sent_start) for t in d if not t.ent_type_]  # noqa: E731
    assert outside(new) == outside(doc)
    assert [e.label_ for e in new.ents] == [e.label_ for e in doc.ents]
    pool = mention_pool(POOL)
    for old, ent in zip(doc.ents, new.ents):
        assert ent.text == old.text or tuple(t.text for t in ent) in [m.words for m in pool[ent.label_]]
        assert [t.ent_iob_ for t in ent] == ["B"] + ["I"] * (len(ent) - 1)
        assert [t.tag_ for t in ent] == [old[min(j, len(old) - 1)].tag_ for j in range(len(ent))]
        assert ent[-1].whitespace_ == old[-1].whitespace_
        assert [t.is_sent_start for t in ent] == [old[0].is_sent_start] + [False] * (len(ent) - 1)


def test_entity_swap_example_with_other_token_counts():
    doc = ner_doc("Angela Merkel visited Paris Berlin .".split(), ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "O"])
    pool = [ner_doc("Angela Merkel met Putin in Ho Chi Minh City".split(),
                    ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "I-LOC"])]
    new = perturb_doc(doc, make_attack("entity_swap", pool=pool), 1.0, seed=0)
    assert [t.text for t in new] == "Putin visited Ho Chi Minh City Ho Chi Minh City .".split()
    assert [(e.start, e.end, e.label_) for e in new.ents] == [(0, 1, "PER"), (2, 6, "LOC"), (6, 10, "LOC")]
    assert [t.ent_iob_ for t in new] == ["B", "O", "B", "I", "I", "I", "B", "I", "I", "I", "O"]


@pytest.mark.parametrize("name", ATTACKS)
def test_same_seed_same_perturbation_other_seeds_differ(name):
    doc, chosen = sentence_doc(), attack(name)
    state = random.getstate()
    first, again = perturb_doc(doc, chosen, 0.5, seed=3), perturb_doc(doc, chosen, 0.5, seed=3)
    assert random.getstate() == state  # no global random state
    assert first.text == again.text and labels_by_index(first) == labels_by_index(again)
    assert len({perturb_doc(doc, chosen, 0.5, seed).text for seed in range(8)}) > 1
    corpus = [ner_doc(s.split(), ["B-LOC" if w[:1].isupper() else "O" for w in s.split()]) for s in SENTENCES]
    texts = lambda docs: [d.text for d in docs]  # noqa: E731
    assert texts(perturb_docs(corpus, chosen, 0.5, seed=3)) == texts(perturb_docs(corpus, chosen, 0.5, seed=3))
    assert texts(perturb_docs(corpus[:5], chosen, 0.5, seed=3)) == texts(perturb_docs(corpus, chosen, 0.5, seed=3))[:5]
    assert texts(perturb_docs(corpus, chosen, 0.5, seed=3)) != texts(perturb_docs(corpus, chosen, 0.5, seed=4))


@pytest.mark.parametrize("name", ATTACKS)
def test_empty_and_one_token_docs(name):
    chosen = attack(name)
    for doc in (Doc(VOCAB, words=[]), ner_doc(["Paris"], ["B-LOC"]), Doc(VOCAB, words=["."], tags=["PUNCT"])):
        new = perturb_doc(doc, chosen, 1.0, seed=0)
        assert_valid_text(new)
        assert [e.label_ for e in new.ents] == [e.label_ for e in doc.ents]
        results = adversarial_search(HashModel("ner"), "ner", [doc], chosen, budget=3, candidates=4)
        assert results[0].score <= results[0].clean and results[0].edits <= 1


# --------------------------------------------------------------------------- #
# Adversarial search


class HashModel:
    """A stand-in pipeline whose predictions are a hash of the text: any edit may raise or lower the score."""

    def __init__(self, task: str):
        self.task, self.vocab = task, VOCAB

    def pipe(self, docs: Iterable[Doc]):
        for doc in docs:
            if self.task == "ner":
                doc.ents = [Span(doc, i, i + 1, "LOC") for i in range(len(doc)) if zlib.crc32(doc[i].text.encode()) % 3 == 0]
            elif self.task == "pos":
                for token in doc:
                    token.tag_ = TAGS[zlib.crc32(token.text.encode()) % len(TAGS)]
            else:
                p = zlib.crc32(doc.text.encode()) / 2**32
                doc.cats = {"entailment": p, "neutral": 1 - p, "contradiction": 0.0}
            yield doc


@PROPERTY
@given(docs=st.lists(annotated_docs(), min_size=1, max_size=3), task=st.sampled_from(["ner", "pos"]),
       name=st.sampled_from(ATTACKS), budget=st.integers(0, 3), candidates=st.integers(1, 4), seed=st.integers(0, 99))
def test_search_respects_the_budget_and_never_beats_the_clean_score(docs, task, name, budget, candidates, seed):
    model, chosen = HashModel(task), attack(name)
    results = adversarial_search(model, task, docs, chosen, budget, candidates, seed)
    assert [r.clean for r in results] == objective_scores(model, task, docs)
    assert [r.score for r in results] == objective_scores(model, task, [r.doc for r in results])
    for doc, result in zip(docs, results):
        assert result.score <= result.clean and result.edits <= budget
        assert (result.doc is doc) == (result.edits == 0) and (result.edits == 0 or result.score < result.clean)
        if name != "entity_swap":
            assert_aligned(doc, result.doc)
            assert len(changed_tokens(doc, result.doc)) == result.edits
    assert [r.doc.text for r in results] == [r.doc.text for r in adversarial_search(model, task, docs, chosen, budget, candidates, seed)]


@PROPERTY
@given(docs=st.lists(pair_docs(), min_size=1, max_size=3), name=st.sampled_from(TOKEN_ATTACKS), budget=st.integers(0, 3))
def test_pair_search_keeps_separator_and_cats(docs, name, budget):
    results = adversarial_search(HashModel("pairs"), "pairs", docs, attack(name, SEP), budget, candidates=3, seed=0)
    for doc, result in zip(docs, results):
        assert result.score <= result.clean and len(changed_tokens(doc, result.doc)) == result.edits <= budget
        assert_aligned(doc, result.doc)
        assert [result.doc[i].text for i in separator_span(doc, SEP)] == SEP


def iob(doc: Doc) -> List[str]:
    return [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O" for t in doc]


@pytest.fixture(scope="module")
def nlps(trained_pipelines, single_torch_thread):
    return {component: spacy.load(path) for component, path in trained_pipelines.items()}


@pytest.fixture(scope="module")
def ner_silver(nlps) -> List[Doc]:
    """The NER pipeline's predictions as gold (after 3 steps its F1 on the gold is 0, which no attack can lower),
    or the gold entities where it predicts none: every doc has entities, whatever the 3-step model predicts."""
    golds = gold_docs("ner", VOCAB)  # every gold doc has an entity and a space after every word
    predicted = nlps["ner"].pipe(Doc(nlps["ner"].vocab, words=[t.text for t in g]) for g in golds)
    return [Doc(VOCAB, words=[t.text for t in g], ents=iob(d if d.ents else g)) for g, d in zip(golds, predicted)]


@pytest.mark.parametrize("component,task,name", [("ner", "ner", "char_noise"), ("ner", "ner", "entity_swap"), ("tagger", "pos", "random_case")])
def test_search_with_trained_pipelines(nlps, ner_silver, component, task, name):
    nlp = nlps[component]
    docs = (ner_silver if component == "ner" else gold_docs(component, VOCAB))[:8]
    docs += [Doc(VOCAB, words=[]), Doc(VOCAB, words=["Paris"], ents=["B-LOC"], tags=["PROPN"])]
    results = adversarial_search(nlp, task, docs, attack(name), budget=2, candidates=3, seed=0)
    rescored = objective_scores(nlp, task, docs + [r.doc for r in results])
    assert [r.clean for r in results] == pytest.approx(rescored[: len(docs)])
    assert [r.score for r in results] == pytest.approx(rescored[len(docs) :])
    assert all(r.score <= r.clean and r.edits <= 2 for r in results)
    assert all((r.doc is d) == (r.edits == 0) == (r.score == r.clean) for d, r in zip(docs, results))  # drops: up to the model
    if name != "entity_swap":
        assert all(len(changed_tokens(d, r.doc)) == r.edits for d, r in zip(docs, results))


@pytest.mark.parametrize("name", ["char_noise", "entity_swap"])
def test_search_finds_drops_where_there_are_some(name):
    """On the hash model's own predictions (scores 1.0): crc32 and the seeded search are the same everywhere."""
    model = HashModel("ner")
    silver = [ner_doc([t.text for t in d], iob(d)) for d in model.pipe(Doc(VOCAB, words=s.split()) for s in SENTENCES) if d.ents]
    results = adversarial_search(model, "ner", silver, attack(name), budget=2, candidates=3, seed=0)
    assert len(silver) >= 5 and all(r.clean == 1.0 for r in results)
    assert sum(r.score < r.clean for r in results) >= len(silver) // 2


# --------------------------------------------------------------------------- #
# The attack command


def write_docs(path: Path, docs: List[Doc]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(path)
    return path


def invoke(*args):
    result = CliRunner().invoke(app, ["analyse", "attack", *map(str, args)])
    return result, " ".join(result.output.split())  # wasabi wraps long lines


@pytest.mark.usefixtures("single_torch_thread")
@pytest.mark.parametrize("component,name,extra", [
    ("ner", "char_noise", ["--budget", "2", "--candidates", "3"]),
    ("ner", "entity_swap", ["--rate", "1.0", "--pool", "POOL"]),
    ("tagger", "code_switch", ["--rate", "1.0", "--lexicon", "LEXICON", "--languages", "de"]),
])
def test_attack_command_end_to_end(trained_pipelines, ner_silver, tmp_path, component, name, extra):
    from spacy.cli.evaluate import evaluate

    golds = ner_silver if component == "ner" else gold_docs(component, VOCAB)
    data = tmp_path / "data"
    write_docs(data / "test-de.spacy", golds[:7])
    write_docs(data / "test-en.spacy", golds[7:])
    write_docs(tmp_path / "pool.spacy", POOL)
    (tmp_path / "lexicon.tsv").write_text("".join(f"{k}\t{v if isinstance(v, str) else v[0]}\n" for k, v in LEXICON.items()), encoding="utf8")
    extra = [{"POOL": tmp_path / "pool.spacy", "LEXICON": tmp_path / "lexicon.tsv"}.get(arg, arg) for arg in extra]
    out = tmp_path / "out"
    result, output = invoke(trained_pipelines[component], data, "--attack", name, "--seed", "0", "--output", out, *extra)
    assert result.exit_code == 0, output
    langs = ["de"] if "--languages" in extra else ["de", "en"]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{lang}.attacked.spacy" for lang in langs] + ["scores.json", "sentences.json.gz"])
    assert sorted(load_scores(out)) == sorted(load_counts(out)) == langs
    assert "[1/" in output and "success" in output
    key = "ents_f" if component == "ner" else "tag_acc"
    scores = load_scores(out)["de"]
    block = scores["attack"]
    assert block["name"] == name and block["score_key"] == key and block["examples"] == 7 and block["limit"] == 0
    assert block["rate"] == (None if "--budget" in extra else 1.0)  # the search does not use a rate
    assert block["attacked"] == scores[key] and block["clean"] == block["clean_scores"][key]
    assert block["clean_scores"]["token_acc"] == scores["token_acc"]  # gold tokens on both sides
    assert block["relative_drop"] is None or block["relative_drop"] == pytest.approx((block["clean"] - block["attacked"]) / block["clean"])
    assert 0.0 <= block["success_rate"] <= 1.0
    # the search keeps an edit only where it lowers the example's score; rate 1.0 edits every silver entity / lexicon word
    assert block["perturbed_examples"] == round(block["success_rate"] * 7) if block["search"] else block["perturbed_examples"] > 0
    task = "ner" if component == "ner" else "pos"
    counts = load_counts(out)["de"]
    for side in ("clean", "attacked"):  # the counts the study report resamples reproduce both scores
        assert score(TASKS[task].measure, numpy.asarray(counts[side][TASKS[task].count_key], dtype="f8")) == pytest.approx(100 * block[side])
    attacked = list(DocBin().from_disk(out / "de.attacked.spacy").get_docs(VOCAB))
    assert len(attacked) == 7 and [[e.label_ for e in d.ents] for d in attacked] == [[e.label_ for e in d.ents] for d in golds[:7]]
    if name != "entity_swap":
        assert all(labels_by_index(a) == labels_by_index(g) for a, g in zip(attacked, golds))
    theirs = evaluate(str(trained_pipelines[component]), out / "de.attacked.spacy", gold_preproc=True)
    ours = {k: v for k, v in scores.items() if k not in ("speed", "attack")}
    assert {**json.loads(srsly.json_dumps(theirs)), "speed": 0} == {**ours, "speed": 0}  # what spacy evaluate writes


@pytest.mark.parametrize("args,message", [
    (["--attack", "nonsense"], "unknown attack 'nonsense'"),
    (["--rate", "1.5"], "rate must be in [0, 1]"),
    (["--rate", "-0.1"], "rate must be in [0, 1]"),
    (["--budget", "-1"], "budget must be >= 0"),
    (["--candidates", "0"], "candidates must be >= 1"),
    (["--attack", "entity_swap"], "--attack entity_swap needs --pool"),
    (["--attack", "code_switch", "--lexicon", "missing.tsv"], "lexicon file missing.tsv does not exist"),
    (["--languages", "de fr"], "test-fr.spacy"),
])
def test_attack_command_bad_settings(trained_pipelines, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_docs(tmp_path / "data" / "test-de.spacy", gold_docs("ner", VOCAB))
    result, output = invoke(trained_pipelines["ner"], tmp_path / "data", "--output", tmp_path / "out", *args)
    assert result.exit_code == 1 and message in output, output
    assert not (tmp_path / "out").exists()


def test_attack_command_missing_data(trained_pipelines, tmp_path):
    result, output = invoke(trained_pipelines["ner"], tmp_path / "nowhere", "--output", tmp_path / "out")
    assert result.exit_code == 1 and f"attack data {tmp_path / 'nowhere'} does not exist" in output, output


def test_objectives_and_scores_come_from_the_task_kinds():
    from spacy_dlfa.robustness import entity_f1, example_score, gold_probability, objective, pair_accuracy, tag_accuracy

    assert [objective(kind) for kind in ("ner", "pos", "pairs")] == [entity_f1, tag_accuracy, gold_probability]
    assert [example_score(kind) for kind in ("ner", "pos", "pairs")] == [entity_f1, tag_accuracy, pair_accuracy]
    with pytest.raises(ValueError, match="unknown task kind 'xnli': use one of ner, pos, pairs"):
        objective("xnli")
    with pytest.raises(ValueError, match="unknown task kind 'tagger'"):
        adversarial_search(HashModel("pos"), "tagger", [], attack("char_noise"), budget=1, candidates=1)
