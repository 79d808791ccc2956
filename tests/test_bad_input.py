"""Bad input everywhere: damaged pipeline and transformer folders fail with an error naming the
damaged file; a fusion layer the transformer lacks stops `spacy train` with the message; garbage,
truncated and malformed corpora (files and Hugging Face rows) give a complete DocBin or a
CorpusFormatError naming source and line, never another exception, a half-written file or a
dropped sentence (hypothesis)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pytest
import spacy
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipelines import entity_docs, examples, load_pipeline, tiny_overrides, write_docbins
from spacy.tokens import DocBin

from spacy_dlfa.corpora.common import CorpusFormatError
from spacy_dlfa.corpora.docbin import convert_corpus
from spacy_dlfa.corpora.ud import HF_UD_UPOS, UPOS_TAGS, ud_rows_to_docs
from spacy_dlfa.corpora.wikiann import NER_LABELS, wikiann_rows_to_docs

pytestmark = pytest.mark.usefixtures("single_torch_thread")

NAMES_NO_FILE = "spaCy's own loader (Language.from_disk: srsly msgpack, the config parser) does not name the damaged file"


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def replace_with_hf_folder_without_weights(pipeline: Path, tiny_bert: Path) -> None:
    """The spacy-transformers 1.0 layout: transformer/model is a Hugging Face folder."""
    (pipeline / "transformer" / "model").unlink()
    shutil.copytree(tiny_bert, pipeline / "transformer" / "model")
    (pipeline / "transformer" / "model" / "model.safetensors").unlink()


# name: (damage(pipeline folder, tiny_bert), the file the error must name, relative to the pipeline folder)
PIPELINE_DAMAGE: Dict[str, Tuple[Callable[[Path, Path], None], str]] = {
    "transformer_weights_missing": (lambda d, _: (d / "transformer" / "model").unlink(), "transformer/model"),
    "transformer_weights_truncated": (lambda d, _: truncate(d / "transformer" / "model"), "transformer/model"),
    "transformer_folder_without_weights": (replace_with_hf_folder_without_weights, "transformer/model"),
    "ner_weights_missing": (lambda d, _: (d / "ner" / "model").unlink(), "ner/model"),
    "ner_weights_truncated": (lambda d, _: truncate(d / "ner" / "model"), "ner/model"),
    "config_missing": (lambda d, _: (d / "config.cfg").unlink(), "config.cfg"),
    "config_truncated": (lambda d, _: truncate(d / "config.cfg"), "config.cfg"),
}
PIPELINE_NAMES_NO_FILE = {"transformer_weights_truncated", "ner_weights_truncated", "config_truncated"}


def with_xfails(cases: Dict[str, Any], failing: Set[str]) -> List[Any]:
    # raises=AssertionError: a damaged folder that loads without any error still fails the test.
    mark = pytest.mark.xfail(strict=True, raises=AssertionError, reason=NAMES_NO_FILE)
    return [pytest.param(name, marks=mark if name in failing else ()) for name in cases]


@pytest.mark.filterwarnings("ignore:Automatically converting a transformer component:UserWarning")
@pytest.mark.parametrize("damage", with_xfails(PIPELINE_DAMAGE, PIPELINE_NAMES_NO_FILE))
def test_damaged_pipeline_fails_naming_the_file(damage, trained_pipelines, tiny_bert, tmp_path):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(trained_pipelines["ner"], pipeline)
    make_damage, damaged_file = PIPELINE_DAMAGE[damage]
    make_damage(pipeline, tiny_bert)
    with pytest.raises(Exception) as info:
        spacy.load(pipeline)("Paris .")
    assert str(pipeline / damaged_file) in str(info.value), f"{type(info.value).__name__}: {info.value}"


# name: (damage(transformer folder), the file or folder the error must name, relative to the folder)
TRANSFORMER_DAMAGE: Dict[str, Tuple[Callable[[Path], None], str]] = {
    "weights_missing": (lambda d: (d / "model.safetensors").unlink(), ""),
    "weights_truncated": (lambda d: truncate(d / "model.safetensors"), "model.safetensors"),
    "config_truncated": (lambda d: truncate(d / "config.json"), "config.json"),
    "tokenizer_truncated": (lambda d: truncate(d / "tokenizer.json"), "tokenizer.json"),
    "folder_missing": (shutil.rmtree, ""),
}
TRANSFORMER_NAMES_NO_FILE: Set[str] = set()


@pytest.mark.parametrize("damage", with_xfails(TRANSFORMER_DAMAGE, TRANSFORMER_NAMES_NO_FILE))
def test_damaged_transformer_folder_fails_naming_the_file(damage, tiny_bert, tmp_path):
    folder = tmp_path / "transformer"
    shutil.copytree(tiny_bert, folder)
    make_damage, damaged_file = TRANSFORMER_DAMAGE[damage]
    make_damage(folder)
    nlp = load_pipeline("ner", folder)
    egs = examples(nlp, entity_docs(nlp.vocab))
    with pytest.raises(Exception) as info:
        nlp.initialize(lambda: egs)  # loads the transformer from paths.transformer
    assert str(folder / damaged_file) in str(info.value), f"{type(info.value).__name__}: {info.value}"


def test_spacy_train_stops_on_a_fusion_layer_the_transformer_lacks(tiny_bert, tmp_path):
    paths = write_docbins(tmp_path, "tagger")
    overrides = {**tiny_overrides("tagger", tiny_bert), "paths.train": paths["train"], "paths.dev": paths["dev"],
                 "training.max_steps": 2, "components.tagger.model.tok2vec.fusion_layer": 7}
    command = [sys.executable, "-m", "spacy", "train", str(REPO / "configs" / "tagger_dlfa.cfg")]
    command += [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "fusion_layer = 7 is out of range for a transformer with 3 layers" in result.stderr, result.stderr[-2000:]


# --------------------------------------------------------------------------- corpus files

TOKENS = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp")), min_size=1, max_size=5)
GARBAGE_LINES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=20)
SENTENCES = st.lists(st.lists(TOKENS, min_size=1, max_size=6), min_size=1, max_size=5)
# convert_corpus builds a blank pipeline per call (~0.1 s): few examples.
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def corpus_text(kind: str, sentences: List[List[str]]) -> str:
    """A valid WikiANN or CoNLL-U file, labels cycling through the label set."""
    lines = []
    for sentence in sentences:
        if kind == "wikiann":
            lines += [f"{token}\t{NER_LABELS[i % len(NER_LABELS)]}" for i, token in enumerate(sentence)]
        else:
            lines.append("# text = x")
            lines += ["\t".join([str(i + 1), token, "_", UPOS_TAGS[i % len(UPOS_TAGS)], "_", "_", "_", "_", "_", "_"])
                      for i, token in enumerate(sentence)]
        lines.append("")
    return "\n".join(lines)


def count_blocks(text: str) -> int:
    """Sentences in a file: runs of lines that are not blank (a line with a tab is never blank)."""
    blocks, inside = 0, False
    for line in text.lstrip("\ufeff").split("\n"):  # as the reader: BOMs opening the file go
        blank = not line.strip() and "\t" not in line
        blocks += not blank and not inside
        inside = not blank
    return blocks


def convert_or_format_error(kind: str, data: bytes) -> Optional[List[Any]]:
    """convert_corpus on `data`: the docs written, or None after a CorpusFormatError that names the
    file and a line of it and left the previous output as it was."""
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "in.txt", Path(folder) / "out.spacy"
        source.write_bytes(data)
        output.write_bytes(b"previous output")
        try:
            counts = convert_corpus(kind, source, output)
        except CorpusFormatError as err:
            assert err.source == str(source) and f"{source}, line {err.line}:" in str(err)
            assert 1 <= err.line <= data.count(b"\n") + 1
            assert output.read_bytes() == b"previous output"
            assert sorted(p.name for p in Path(folder).iterdir()) == ["in.txt", "out.spacy"]
            return None
        docs = list(DocBin().from_disk(output).get_docs(spacy.blank("xx").vocab))
        assert len(docs) == counts["sentences"]
        assert sorted(p.name for p in Path(folder).iterdir()) == ["in.txt", "out.spacy"]
        return docs


@PROPERTY
@given(st.sampled_from(["wikiann", "ud"]), SENTENCES)
def test_property_every_valid_sentence_is_written(kind, sentences):
    docs = convert_or_format_error(kind, corpus_text(kind, sentences).encode("utf-8"))
    assert docs is not None
    assert [[token.text for token in doc] for doc in docs] == sentences


@PROPERTY
@given(st.sampled_from(["wikiann", "ud"]), SENTENCES, st.data())
def test_property_garbage_lines_give_a_format_error_or_every_sentence(kind, sentences, data):
    lines = corpus_text(kind, sentences).split("\n")
    for _ in range(data.draw(st.integers(1, 3), label="garbage lines")):
        lines.insert(data.draw(st.integers(0, len(lines)), label="at"), data.draw(GARBAGE_LINES, label="line"))
    text = "\n".join(lines)
    docs = convert_or_format_error(kind, text.encode("utf-8"))
    if docs is not None:
        assert len(docs) == count_blocks(text)


@PROPERTY
@given(st.sampled_from(["wikiann", "ud"]), SENTENCES, st.data())
def test_property_truncated_file_gives_a_format_error_or_every_sentence(kind, sentences, data):
    raw = corpus_text(kind, sentences).encode("utf-8")
    cut = raw[: data.draw(st.integers(0, len(raw)), label="cut")]  # may split a UTF-8 character
    docs = convert_or_format_error(kind, cut)
    if docs is not None:
        assert len(docs) == count_blocks(cut.decode("utf-8"))
        # Sentences before the cut are whole; the cut one keeps its lines before the cut.
        words = [[token.text for token in doc] for doc in docs]
        if words:
            assert words[:-1] == sentences[: len(words) - 1]
            assert words[-1] == sentences[len(words) - 1][: len(words[-1])]


# --------------------------------------------------------------------------- Hugging Face rows

GARBAGE = st.one_of(st.none(), st.integers(-2, 20), st.floats(), st.text(max_size=3), st.binary(max_size=2))
COLUMN = st.one_of(GARBAGE, st.lists(GARBAGE, max_size=4), st.dictionaries(st.text(max_size=2), GARBAGE, max_size=2))
DAMAGE = st.dictionaries(st.sampled_from(["tokens", "ner_tags", "upos", "head", "id"]), COLUMN, max_size=3)
VALID_ROW = st.lists(TOKENS, min_size=1, max_size=4).flatmap(lambda tokens: st.fixed_dictionaries({
    "tokens": st.just(tokens),
    "ner_tags": st.lists(st.integers(0, len(NER_LABELS) - 1), min_size=len(tokens), max_size=len(tokens)),
    "upos": st.lists(st.integers(0, len(HF_UD_UPOS) - 1), min_size=len(tokens), max_size=len(tokens)),
}))
ROWS = st.lists(st.one_of(VALID_ROW, COLUMN, DAMAGE, st.builds(lambda row, damage: {**row, **damage}, VALID_ROW, DAMAGE)),
                min_size=1, max_size=4)
ROW_CONVERTERS: Dict[str, Callable] = {"wikiann": wikiann_rows_to_docs, "ud": ud_rows_to_docs}
VOCAB = spacy.blank("xx").vocab


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(ROW_CONVERTERS)), ROWS)
def test_property_rows_give_a_doc_each_or_a_format_error(kind, rows):
    try:
        docs, counts = ROW_CONVERTERS[kind](rows, VOCAB, source="rows")
    except CorpusFormatError as err:
        assert str(err).startswith(f"rows, row {err.line}: ") and 1 <= err.line <= len(rows)
        return
    assert len(docs) == counts["sentences"] == len(rows)


@pytest.mark.parametrize("row, expected", [
    (None, "expected a row with 'tokens' and 'ner_tags', got NoneType"),
    ({"tokens": None, "ner_tags": [0]}, "expected a list in 'tokens', got NoneType"),
    ({"tokens": "Paris", "ner_tags": [5, 6, 6, 6, 6]}, "expected a list in 'tokens', got str"),  # not 5 one-letter tokens
    ({"tokens": ["Paris"], "ner_tags": 5}, "expected a list in 'ner_tags', got int"),
])
def test_malformed_wikiann_rows(row, expected):
    with pytest.raises(CorpusFormatError, match=f"^rows, row 1: {re.escape(expected)}$"):
        wikiann_rows_to_docs([row], VOCAB, source="rows")


@pytest.mark.parametrize("head, expected", [
    (["0"], "expected as many 'head' as 'tokens', got 1 and 2"),
    (0, "expected a list in 'head', got int"),
])
def test_malformed_ud_row_heads(head, expected):
    row = {"tokens": ["a", "b"], "upos": [0, 0], "head": head}
    with pytest.raises(CorpusFormatError, match=f"^rows, row 1: {re.escape(expected)}$"):
        ud_rows_to_docs([row], VOCAB, source="rows")
