"""`run teach`: each task's training docs completed with the other task's annotation, as its teacher predicts it."""
import pytest
import spacy
from pipelines import entity_docs, tagged_docs
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.corpora.docbin import write_docbin
from spacy_dlfa.runs.teaching import teach_docs


@Language.component("test_capital_tagger")
def capital_tagger(doc: Doc) -> Doc:
    """A teacher tagger: PROPN for a capitalised token, NOUN otherwise."""
    for token in doc:
        token.tag_ = "PROPN" if token.text[:1].isupper() else "NOUN"
    return doc


SEEN = []  # the texts the teacher NER was given


@Language.component("test_capital_ner")
def capital_ner(doc: Doc) -> Doc:
    """A teacher NER: every capitalised token a one-token PER entity."""
    SEEN.append(doc.text)
    doc.ents = [Span(doc, i, i + 1, label="PER") for i, token in enumerate(doc) if token.text[:1].isupper()]
    return doc


def teacher(component: str) -> Language:
    nlp = spacy.blank("xx")
    nlp.add_pipe(f"test_capital_{'ner' if component == 'ner' else 'tagger'}", name=component)
    return nlp


def test_ner_docs_get_the_pos_teachers_tags_and_keep_their_entities():
    nlp = teacher("tagger")
    gold = entity_docs(nlp.vocab)
    before = [[(t.ent_iob_, t.ent_type_) for t in doc] for doc in gold]
    taught = list(teach_docs(gold, nlp, "pos"))
    assert [[(t.ent_iob_, t.ent_type_) for t in doc] for doc in taught] == before
    assert [[t.tag_ for t in doc] for doc in taught] == [["PROPN" if t.text[0].isupper() else "NOUN" for t in doc] for doc in gold]


def test_pos_docs_get_the_ner_teachers_entities_on_their_own_words_and_spaces():
    nlp = teacher("ner")
    gold = [Doc(nlp.vocab, words=["Ada", "said", "hi", "to", "Bob", "."], spaces=[True, True, True, True, False, False],
                tags=["PROPN", "VERB", "INTJ", "ADP", "PROPN", "PUNCT"])]
    assert not gold[0].has_annotation("ENT_IOB")
    SEEN.clear()
    (taught,) = teach_docs(gold, nlp, "ner")
    assert SEEN == ["Ada said hi to Bob."]
    assert [t.tag_ for t in taught] == ["PROPN", "VERB", "INTJ", "ADP", "PROPN", "PUNCT"]
    assert [(e.text, e.label_) for e in taught.ents] == [("Ada", "PER"), ("Bob", "PER")]
    assert [t.ent_iob_ for t in taught] == ["B", "O", "O", "O", "B", "O"]  # outside: O, not missing


def test_a_doc_already_carrying_the_teachers_annotation_is_an_error():
    nlp = teacher("tagger")
    with pytest.raises(ValueError, match=r"corpus/pos/train.spacy, doc 0: already has tags"):
        list(teach_docs(tagged_docs(nlp.vocab), nlp, "pos", "corpus/pos/train.spacy"))
    nlp = teacher("ner")
    with pytest.raises(ValueError, match=r"doc 0: already has entities"):
        list(teach_docs(entity_docs(nlp.vocab), nlp, "ner"))


def test_a_teacher_without_the_tasks_component_is_an_error():
    nlp = teacher("tagger")
    with pytest.raises(ValueError, match=r"the ner teacher has no 'ner' component"):
        list(teach_docs(tagged_docs(nlp.vocab), nlp, "ner"))


def test_the_cli_completes_both_training_corpora_and_copies_dev(tmp_path):
    vocab = spacy.blank("xx").vocab
    corpora = {"ner": entity_docs(vocab), "pos": tagged_docs(vocab)}
    for task, docs in corpora.items():
        for split in ("train", "dev"):
            write_docbin(docs, tmp_path / "corpus" / task / f"{split}.spacy")
    teacher("ner").to_disk(tmp_path / "ner_teacher")
    teacher("tagger").to_disk(tmp_path / "pos_teacher")
    out = tmp_path / "taught"
    result = CliRunner().invoke(app, ["run", "teach", str(out), "--ner-corpus", str(tmp_path / "corpus" / "ner"),
                                      "--pos-corpus", str(tmp_path / "corpus" / "pos"), "--ner-pipeline",
                                      str(tmp_path / "ner_teacher"), "--pos-pipeline", str(tmp_path / "pos_teacher")])
    assert result.exit_code == 0, result.output
    assert "both tasks annotated" in result.output
    for task, gold in corpora.items():
        train = list(DocBin().from_disk(out / task / "train.spacy").get_docs(vocab))
        assert [doc.text for doc in train] == [doc.text for doc in gold]
        assert all(doc.has_annotation("ENT_IOB") and doc.has_annotation("TAG") for doc in train)
        assert (out / task / "dev.spacy").read_bytes() == (tmp_path / "corpus" / task / "dev.spacy").read_bytes()


def test_the_cli_names_a_missing_corpus(tmp_path):
    result = CliRunner().invoke(app, ["run", "teach", str(tmp_path / "out"), "--ner-corpus", str(tmp_path / "none"),
                                      "--pos-corpus", str(tmp_path / "none"), "--ner-pipeline", str(tmp_path),
                                      "--pos-pipeline", str(tmp_path)])
    assert result.exit_code != 0
    assert "--ner-corpus" in result.output and "train.spacy" in result.output
